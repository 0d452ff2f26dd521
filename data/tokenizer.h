// Subword tokenizer on sentencepiece: train one on a corpus with the library's trainer, or load
// an existing tokenizer.model. Ids: pad 0, unk 1, bos 2, eos 3 for tokenizers trained here.
// The library is reached through the liblorascope_spm.so plugin (why: data/spm_backend.h).
// load() of a ".json" file reads a Hugging Face byte-level BPE tokenizer.json instead
// (data/bpe_tokenizer.h); every method then answers for it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace lorascope {

class BpeTokenizer;

class Tokenizer {
 public:
  // Trains a unigram model of vocab_size pieces on the texts (each non-empty line one
  // sentence, fed from memory), saves it as model_path (".model" included), and loads it.
  // Same texts, size and seed give the same model file. A corpus too small for vocab_size
  // gives fewer pieces (see vocab_size()) rather than an error.
  static Tokenizer train(const std::vector<std::string>& texts, int64_t vocab_size,
                         const std::string& model_path, uint64_t seed = 0);
  // Throws std::runtime_error naming the path when it is missing or not a sentencepiece model.
  static Tokenizer load(const std::string& model_path);

  std::vector<int64_t> encode(const std::string& text) const;  // no bos/eos added
  std::string decode(const std::vector<int64_t>& ids) const;
  int64_t vocab_size() const;
  // never -1: falls back to unk, then eos, then 0 when the model has no pad piece
  int64_t pad_id() const;
  int64_t bos_id() const;
  int64_t eos_id() const;
  int64_t unk_id() const;
  const std::string& path() const { return path_; }

 private:
  std::shared_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::shared_ptr<const BpeTokenizer> bpe_;
  std::string path_;
};

}  // namespace lorascope
