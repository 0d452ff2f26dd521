#include "data/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "data/bpe_tokenizer.h"
#include "data/spm_backend.h"
#include "data/wordpiece_tokenizer.h"
#include "util/json_file.h"

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
  tok.path_ = model_path;
  const auto extension = fs::path(model_path).extension();
  if (extension == ".json") {
    const nlohmann::json j = read_json_file(model_path);
    const bool wordpiece = j.is_object() && j.contains("model") && j["model"].is_object() &&
                           j["model"].value("type", std::string()) == "WordPiece";
    if (wordpiece) {
      tok.wordpiece_ = std::make_shared<const WordPieceTokenizer>(WordPieceTokenizer::from_json(j, model_path));
      tok.post_ = tok.wordpiece_->post_processor();
    } else {
      tok.bpe_ = std::make_shared<const BpeTokenizer>(BpeTokenizer::from_json(j, model_path));
      tok.post_ = TokenizerPostProcessor::from_json(j.contains("post_processor") ? j["post_processor"] : nlohmann::json(),
                                                    model_path);
    }
    return tok;
  }
  if (extension == ".txt") {
    tok.wordpiece_ = std::make_shared<const WordPieceTokenizer>(WordPieceTokenizer::from_vocab_file(model_path));
    tok.post_ = tok.wordpiece_->post_processor();
    return tok;
  }
  const std::string error = spm_backend().load(model_path, &tok.sp_);
  if (!error.empty()) {
    throw std::runtime_error(model_path + ": not a sentencepiece model (" + error + ")");
  }
  return tok;
}

std::vector<int64_t> Tokenizer::encode(const std::string& text) const {
  if (bpe_) return bpe_->encode(text);
  if (wordpiece_) return wordpiece_->encode(text);
  std::vector<int> ids;
  const std::string error = spm_backend().encode(*sp_, text, &ids);
  if (!error.empty()) throw std::runtime_error(path_ + ": encode failed: " + error);
  return {ids.begin(), ids.end()};
}

TokenizerEncoding Tokenizer::encode_with_specials(const std::string& text, const std::string* pair,
                                                  int64_t max_len) const {
  auto a = encode(text);
  std::vector<int64_t> b;
  if (pair) b = encode(*pair);
  if (max_len > 0) {
    const auto added = static_cast<int64_t>(post_.added_tokens(pair != nullptr));
    if (max_len < added) {
      throw std::runtime_error(path_ + ": max_len " + std::to_string(max_len) + " leaves no room for the " +
                                  std::to_string(added) + " special tokens");
    }
    // tokenizers' truncate_encodings, LongestFirst, from the right.
    const auto budget = static_cast<size_t>(max_len - added);
    if (!pair) {
      a.resize(std::min(a.size(), budget));
    } else if (a.size() + b.size() > budget) {
      size_t n1 = std::min(a.size(), b.size()), n2 = std::max(a.size(), b.size());
      n2 = n1 > budget ? n1 : std::max(n1, budget - n1);
      if (n1 + n2 > budget) {
        n1 = budget / 2;
        n2 = n1 + budget % 2;
      }
      if (a.size() > b.size()) std::swap(n1, n2);
      a.resize(std::min(a.size(), n1));
      b.resize(std::min(b.size(), n2));
    }
  }
  return post_.apply(a, pair ? &b : nullptr, true);
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  if (bpe_) return bpe_->decode(ids);
  if (wordpiece_) return wordpiece_->decode(ids);
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

int64_t Tokenizer::vocab_size() const {
  if (wordpiece_) return wordpiece_->vocab_size();
  return bpe_ ? bpe_->vocab_size() : spm_backend().id(*sp_, 'n');
}
int64_t Tokenizer::pad_id() const {
  const int64_t pad = wordpiece_ ? wordpiece_->pad_id() : bpe_ ? bpe_->pad_id() : spm_backend().id(*sp_, 'p');
  if (pad >= 0) return pad;
  if (unk_id() >= 0) return unk_id();
  return eos_id() >= 0 ? eos_id() : 0;  // LLaMA 3 has neither pad nor unk; padding is masked anyway
}
int64_t Tokenizer::bos_id() const {
  if (wordpiece_) return -1;
  return bpe_ ? bpe_->bos_id() : spm_backend().id(*sp_, 'b');
}
int64_t Tokenizer::eos_id() const {
  if (wordpiece_) return -1;
  return bpe_ ? bpe_->eos_id() : spm_backend().id(*sp_, 'e');
}
int64_t Tokenizer::unk_id() const {
  if (wordpiece_) return wordpiece_->unk_id();
  return bpe_ ? bpe_->unk_id() : spm_backend().id(*sp_, 'u');
}
int64_t Tokenizer::token_id(const std::string& token) const {
  if (wordpiece_) return wordpiece_->token_id(token);
  return bpe_ ? bpe_->token_id(token) : -1;
}

}  // namespace lorascope
