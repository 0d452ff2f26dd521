// BPE from a Hugging Face tokenizer.json, as the `tokenizers` library encodes: byte-level files
// (GPT-2, RoBERTa, LLaMA 3, cl100k/o200k-style) and sentencepiece-style ones (LLaMA 2, Mistral:
// "▁" for spaces, byte fallback).
//   1. added tokens (specials like <s>, <mask>, <|begin_of_text|>) are cut out of the text first,
//      with their lstrip / rstrip / single_word / normalized flags (tokenizer_added_tokens.h);
//   2. each stretch between them is normalized (null, or Prepend / Replace / NFD / Lowercase ...,
//      tokenizer_normalizer.h) and pre-tokenized (ByteLevel with GPT-2's regex, Split with any
//      behavior, Metaspace, or none; tokenizer_pre_tokenizer.h); a ByteLevel step maps each
//      piece's UTF-8 bytes to printable characters (GPT-2's bytes_to_unicode);
//   3. each piece, unless the model has ignore_merges and the whole piece is in the vocabulary,
//      starts as its characters (a character outside the vocabulary becomes its <0xNN> byte
//      tokens with byte_fallback, else the unk token, consecutive ones fused with fuse_unk) and
//      is merged pairwise: always the pair of lowest merge rank, the leftmost on ties, through a
//      priority queue over adjacent pairs (O(n log n) in the piece length, as tokenizers' Word).
// The regexes' Unicode classes are tokenizers' own (Unicode 16, tokenizer_regex.h).
// No special tokens are added around the text (the post-processor's job, data/tokenizer.h).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "data/tokenizer_added_tokens.h"
#include "data/tokenizer_normalizer.h"
#include "data/tokenizer_pre_tokenizer.h"  // byte_to_unicode

namespace lorascope {

class BpeTokenizer {
 public:
  // where names the file in errors ("PATH: model.merges[3]: expected ...").
  static BpeTokenizer from_json(const nlohmann::json& j, const std::string& where);
  static BpeTokenizer load(const std::string& path);

  std::vector<int64_t> encode(const std::string& text) const;
  // Byte-level files: the exact bytes (added tokens as their text). Others: tokens concatenated,
  // <0xNN> tokens as their byte, "▁" as a space, less the space the normalizer or Metaspace
  // prepended to the text.
  std::string decode(const std::vector<int64_t>& ids) const;
  // The pieces of step 2 for a text without added tokens, before the byte mapping (for tests).
  std::vector<std::string> pre_tokenize(const std::string& segment) const;

  int64_t vocab_size() const { return vocab_size_; }  // 1 + the largest id (vocabulary and added tokens)
  int64_t token_id(const std::string& token) const;   // -1 when absent
  // Special tokens found by their usual names (-1 when the tokenizer has none).
  int64_t bos_id() const { return bos_; }
  int64_t eos_id() const { return eos_; }
  int64_t pad_id() const { return pad_; }
  int64_t unk_id() const { return unk_; }

 private:
  std::vector<int64_t> bpe(const std::string& piece) const;  // step 3 on one piece

  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> id_to_token_;
  // (left id << 32 | right id) -> (rank, merged id)
  std::unordered_map<uint64_t, std::pair<int64_t, int64_t>> merges_;
  TokenizerNormalizer normalizer_;
  TokenizerPreTokenizer pre_tokenizer_;
  TokenizerAddedTokens added_;
  std::vector<bool> added_id_;  // id -> is an added token
  std::vector<int64_t> byte_ids_;  // byte -> id of "<0xNN>" (-1 when absent), for byte_fallback
  bool ignore_merges_ = false, byte_fallback_ = false, fuse_unk_ = false;
  bool prepends_space_ = false;  // a Prepend("▁") normalizer or a prepending Metaspace (decode)
  int64_t vocab_size_ = 0;
  int64_t bos_ = -1, eos_ = -1, pad_ = -1, unk_ = -1;
  int64_t model_unk_ = -1;  // model.unk_token's id: characters outside the vocabulary; -1 drops them
  std::string where_;
};

}  // namespace lorascope
