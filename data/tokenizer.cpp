#include "data/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <unordered_map>

#include "data/bpe_tokenizer.h"
#include "data/spm_backend.h"

namespace lorascope {

namespace fs = std::filesystem;

Tokenizer Tokenizer::train(const std::vector<std::string>& texts, int64_t vocab_size,
                           const std::string& model_path, uint64_t seed) {
  if (vocab_size < 8) {
    throw std::invalid_argument("tokenizer: vocab_size: expected at least 8, got " +
                                std::to_string(vocab_size));
  }
  // Reproducible: one thread, every sentence in corpus order (no sampling, no shuffle), and
  // the library's global seed set for whatever it still draws.
  const std::unordered_map<std::string, std::string> args = {
      {"model_type", "unigram"},
      {"vocab_size", std::to_string(vocab_size)},
      {"pad_id", "0"},
      {"unk_id", "1"},
      {"bos_id", "2"},
      {"eos_id", "3"},
      {"character_coverage", "1.0"},
      {"num_threads", "1"},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"max_sentence_length", "65536"},
      // A corpus too small for vocab_size gives a smaller vocabulary instead of failing.
      {"hard_vocab_limit", "false"},
      {"minloglevel", "2"},
  };
  std::string proto;
  const std::string error = spm_backend().train(texts, args, static_cast<uint32_t>(seed), &proto);
  if (!error.empty()) {
    throw std::runtime_error("tokenizer: training a " + std::to_string(vocab_size) +
                             "-piece model failed: " + error);
  }
  const fs::path path(model_path);
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  {
    std::ofstream out(model_path, std::ios::binary | std::ios::trunc);
    out.write(proto.data(), static_cast<std::streamsize>(proto.size()));
    if (!out) throw std::runtime_error(model_path + ": cannot write the tokenizer model");
  }
  return load(model_path);
}

Tokenizer Tokenizer::load(const std::string& model_path) {
  if (!fs::is_regular_file(model_path)) {
    throw std::runtime_error(model_path + ": tokenizer model not found");
  }
  Tokenizer tok;
  if (fs::path(model_path).extension() == ".json") {
    tok.bpe_ = std::make_shared<const BpeTokenizer>(BpeTokenizer::load(model_path));
    tok.path_ = model_path;
    return tok;
  }
  const std::string error = spm_backend().load(model_path, &tok.sp_);
  if (!error.empty()) {
    throw std::runtime_error(model_path + ": not a sentencepiece model (" + error + ")");
  }
  tok.path_ = model_path;
  return tok;
}

std::vector<int64_t> Tokenizer::encode(const std::string& text) const {
  if (bpe_) return bpe_->encode(text);
  std::vector<int> ids;
  const std::string error = spm_backend().encode(*sp_, text, &ids);
  if (!error.empty()) throw std::runtime_error(path_ + ": encode failed: " + error);
  return {ids.begin(), ids.end()};
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  if (bpe_) return bpe_->decode(ids);
  std::vector<int> narrow;
  narrow.reserve(ids.size());
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab_size()) {
      throw std::out_of_range(path_ + ": decode: id " + std::to_string(id) + " outside [0, " +
                              std::to_string(vocab_size()) + ")");
    }
    narrow.push_back(static_cast<int>(id));
  }
  std::string text;
  const std::string error = spm_backend().decode(*sp_, narrow, &text);
  if (!error.empty()) throw std::runtime_error(path_ + ": decode failed: " + error);
  return text;
}

int64_t Tokenizer::vocab_size() const { return bpe_ ? bpe_->vocab_size() : spm_backend().id(*sp_, 'n'); }
int64_t Tokenizer::pad_id() const {
  const int64_t pad = bpe_ ? bpe_->pad_id() : spm_backend().id(*sp_, 'p');
  if (pad >= 0) return pad;
  if (unk_id() >= 0) return unk_id();
  return eos_id() >= 0 ? eos_id() : 0;  // LLaMA 3 has neither pad nor unk; padding is masked anyway
}
int64_t Tokenizer::bos_id() const { return bpe_ ? bpe_->bos_id() : spm_backend().id(*sp_, 'b'); }
int64_t Tokenizer::eos_id() const { return bpe_ ? bpe_->eos_id() : spm_backend().id(*sp_, 'e'); }
int64_t Tokenizer::unk_id() const { return bpe_ ? bpe_->unk_id() : spm_backend().id(*sp_, 'u'); }

}  // namespace lorascope
