// The "post_processor" of a tokenizer.json: the special tokens around one text or a pair, with
// token type ids, as `tokenizers` encode(a, b, add_special_tokens=True) builds them.
// TemplateProcessing, BertProcessing ([CLS] A [SEP] B [SEP], types 0 then 1) and
// RobertaProcessing (<s> A </s></s> B </s>, types all 0) are read as templates; ByteLevel
// changes no ids; a Sequence may hold one template besides ByteLevel steps. Without a
// post-processor a pair is A B with type ids 0 and 1.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace lorascope {

struct TokenizerEncoding {
  std::vector<int64_t> ids;
  std::vector<int64_t> type_ids;  // one per id: 0 for the first text, 1 for the second (BERT)
};

class TokenizerPostProcessor {
 public:
  static TokenizerPostProcessor from_json(const nlohmann::json& j, const std::string& where);
  static TokenizerPostProcessor bert(int64_t cls_id, int64_t sep_id);  // BertProcessing

  // How many special ids the template adds around one text (pair false) or two.
  size_t added_tokens(bool pair) const;
  // a (and b when not null) are the texts' ids; without add_special_tokens only the texts'
  // type ids apply.
  TokenizerEncoding apply(const std::vector<int64_t>& a, const std::vector<int64_t>* b, bool add_special_tokens) const;

  struct Item {
    int sequence = -1;         // 0: text A, 1: text B, -1: special ids
    std::vector<int64_t> ids;  // special ids
    int64_t type_id = 0;
  };

 private:
  std::vector<Item> single_ = {{0, {}, 0}};
  std::vector<Item> pair_ = {{0, {}, 0}, {1, {}, 1}};
};

}  // namespace lorascope
