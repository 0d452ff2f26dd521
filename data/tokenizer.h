// Subword tokenizer on sentencepiece: train one on a corpus with the library's trainer, or load
// an existing tokenizer.model. Ids: pad 0, unk 1, bos 2, eos 3 for tokenizers trained here.
// The library is reached through the liblorascope_spm.so plugin (why: data/spm_backend.h).
// load() also reads Hugging Face files: a tokenizer.json with a BPE model (data/bpe_tokenizer.h)
// or a WordPiece model (data/wordpiece_tokenizer.h), or a BERT vocab.txt (WordPiece with BERT's
// defaults); every method then answers for it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/tokenizer_post_processor.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace lorascope {

class BpeTokenizer;
class WordPieceTokenizer;

class Tokenizer {
 public:
  // Trains a unigram model of vocab_size pieces on the texts (each non-empty line one
  // sentence, fed from memory), saves it as model_path (".model" included), and loads it.
  // Same texts, size and seed give the same model file. A corpus too small for vocab_size
  // gives fewer pieces (see vocab_size()) rather than an error.
  static Tokenizer train(const std::vector<std::string>& texts, int64_t vocab_size,
                         const std::string& model_path, uint64_t seed = 0);
  // By the file: "*.json" a Hugging Face tokenizer.json (BPE or WordPiece model), "*.txt" a
  // WordPiece vocabulary, anything else a sentencepiece model. Throws std::runtime_error naming
  // the path (and the key) when the file is missing or not what it should be.
  static Tokenizer load(const std::string& model_path);

  std::vector<int64_t> encode(const std::string& text) const;  // no bos/eos added
  // The model input as `tokenizers` encode(text, pair, add_special_tokens=True) builds it: the
  // post-processor's special tokens around text (and pair), with type ids ([CLS] A [SEP] B [SEP]
  // for BERT). max_len > 0 truncates the texts first, longest first as tokenizers' LongestFirst
  // strategy, so that the result, special tokens included, has at most max_len ids; a max_len
  // below the number of special tokens is an error. Without a post-processor (sentencepiece, a
  // tokenizer.json without one) nothing is added and a pair's type ids are 0 and 1.
  TokenizerEncoding encode_with_specials(const std::string& text, const std::string* pair = nullptr,
                                         int64_t max_len = 0) const;
  std::string decode(const std::vector<int64_t>& ids) const;
  int64_t vocab_size() const;
  // never -1: falls back to unk, then eos, then 0 when the model has no pad piece
  int64_t pad_id() const;
  // -1 for WordPiece: BERT's [CLS] and [SEP] are the post-processor's (encode_with_specials).
  int64_t bos_id() const;
  // True when model inputs are built by encode_with_specials rather than from bos_id / eos_id
  // (WordPiece: BERT, MiniLM); data/batching.h tokenize() follows it.
  bool specials_from_post_processor() const { return wordpiece_ != nullptr; }
  int64_t eos_id() const;
  int64_t unk_id() const;
  // The id of a token of a Hugging Face file; -1 when absent (always for sentencepiece models).
  int64_t token_id(const std::string& token) const;
  const std::string& path() const { return path_; }

 private:
  std::shared_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::shared_ptr<const BpeTokenizer> bpe_;
  std::shared_ptr<const WordPieceTokenizer> wordpiece_;
  TokenizerPostProcessor post_;
  std::string path_;
};

}  // namespace lorascope
