// WordPiece (BERT, MiniLM) as the `tokenizers` library encodes:
//   1. added tokens ([CLS], [SEP], [MASK], ...) are cut out of the text (tokenizer_added_tokens.h);
//   2. each stretch between them is normalized: BertNormalizer (clean text, spaces around CJK
//      ideographs, strip accents = NFD then drop Mn marks, lowercase) or what the file names;
//   3. pre-tokenized: BertPreTokenizer (split on whitespace, isolate each punctuation mark) or
//      what the file names;
//   4. each word becomes pieces greedily, longest match first from the left, every piece after
//      the first looked up with the "##" prefix; a word with no full cover, or longer than
//      max_input_chars_per_word (100) characters, is the single unk token [UNK].
// Special tokens around a text ([CLS] A [SEP], pairs with type ids) are the post-processor's
// (data/tokenizer_post_processor.h, through Tokenizer::encode_with_specials).
// Loads tokenizer.json (model type "WordPiece") or a BERT vocab.txt (one token per line, id =
// line number) with the defaults of tokenizers' BertWordPieceTokenizer: BertNormalizer
// lowercasing, BertPreTokenizer, [CLS] A [SEP] / [CLS] A [SEP] B [SEP].
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/tokenizer_added_tokens.h"
#include "data/tokenizer_normalizer.h"
#include "data/tokenizer_post_processor.h"
#include "data/tokenizer_pre_tokenizer.h"

namespace lorascope {

class WordPieceTokenizer {
 public:
  // where names the file in errors ("PATH: model.vocab: ...").
  static WordPieceTokenizer from_json(const nlohmann::json& j, const std::string& where);
  // A vocab.txt with BERT's defaults (lowercasing; the vocabulary's [PAD] [UNK] [CLS] [SEP] [MASK]).
  static WordPieceTokenizer from_vocab_file(const std::string& path);
  // The same from the file's text (where names it in errors).
  static WordPieceTokenizer from_vocab_text(const std::string& text, const std::string& where);

  std::vector<int64_t> encode(const std::string& text) const;  // no special tokens added
  // Tokens joined by spaces, "##" pieces glued to the one before, special tokens skipped, and
  // the WordPiece decoder's cleanup (" ." -> ".", " n't" -> "n't", ...).
  std::string decode(const std::vector<int64_t>& ids) const;
  // Step 4 on one word (for tests).
  std::vector<std::string> word_pieces(const std::string& word) const;

  int64_t vocab_size() const { return vocab_size_; }  // 1 + the largest id
  int64_t token_id(const std::string& token) const;   // -1 when absent
  int64_t unk_id() const { return unk_; }
  int64_t pad_id() const { return pad_; }
  const TokenizerPostProcessor& post_processor() const { return post_; }

 private:
  void finish(const std::vector<AddedToken>& added);

  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> special_;  // id -> a special added token (skipped by decode)
  std::string unk_token_ = "[UNK]", prefix_ = "##";
  size_t max_chars_ = 100;
  bool decoder_cleanup_ = true;
  TokenizerNormalizer normalizer_;
  TokenizerPreTokenizer pre_tokenizer_;
  TokenizerAddedTokens added_;
  TokenizerPostProcessor post_;
  int64_t vocab_size_ = 0, unk_ = -1, pad_ = -1;
  std::string where_;
};

}  // namespace lorascope
