// Byte-level BPE from a Hugging Face tokenizer.json (GPT-2, RoBERTa, LLaMA 3), as the
// `tokenizers` library encodes:
//   1. added tokens (specials like <s>, <|begin_of_text|>) are cut out of the text first, the
//      longest match at the leftmost position, and map to their ids directly;
//   2. each remaining segment is pre-tokenized: a ByteLevel pre-tokenizer (GPT-2 / RoBERTa:
//      optional prefix space, then the GPT-2 regex) or a Sequence of Split(regex, Isolated)
//      and ByteLevel(use_regex false) (LLaMA 3); matches and the gaps between them are pieces;
//   3. each piece's UTF-8 bytes are mapped to printable characters (GPT-2's bytes_to_unicode),
//      and, unless the model has ignore_merges and the whole piece is in the vocabulary, merged
//      pairwise: always the pair of lowest merge rank, the leftmost one on ties.
// The regexes use Unicode classes (\p{L}, \p{N}) through PCRE2 in UTF + UCP mode.
// No special tokens are added around the text (the post-processor's job; the trainer adds bos).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/tokenizer_pre_tokenizer.h"  // byte_to_unicode

namespace lorascope {

class BpeTokenizer {
 public:
  // where names the file in errors ("PATH: model.merges[3]: expected ...").
  static BpeTokenizer from_json(const nlohmann::json& j, const std::string& where);
  static BpeTokenizer load(const std::string& path);

  std::vector<int64_t> encode(const std::string& text) const;
  std::string decode(const std::vector<int64_t>& ids) const;
  // The pieces of step 2, before the byte mapping (for tests).
  std::vector<std::string> pre_tokenize(const std::string& segment) const;

  int64_t vocab_size() const { return vocab_size_; }  // 1 + the largest id (vocabulary and added tokens)
  int64_t token_id(const std::string& token) const;   // -1 when absent
  // Special tokens found by their usual names (-1 when the tokenizer has none).
  int64_t bos_id() const { return bos_; }
  int64_t eos_id() const { return eos_; }
  int64_t pad_id() const { return pad_; }
  int64_t unk_id() const { return unk_; }

  struct Regex;  // a compiled PCRE2 pattern (bpe_tokenizer.cpp)

 private:
  std::vector<std::string> bpe(const std::string& mapped) const;

  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, int64_t> merge_rank_;  // "a b" -> rank
  std::vector<std::pair<std::string, int64_t>> added_;    // content, id; longest first
  std::vector<bool> added_id_;                            // id -> is an added token
  std::vector<std::shared_ptr<const Regex>> splits_;     // applied in order
  bool add_prefix_space_ = false;
  bool ignore_merges_ = false;
  int64_t vocab_size_ = 0;
  int64_t bos_ = -1, eos_ = -1, pad_ = -1, unk_ = -1;
  std::string where_;
};

}  // namespace lorascope
