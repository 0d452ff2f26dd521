#include "data/wordpiece_tokenizer.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "data/unicode.h"

namespace lorascope {

using nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) { throw std::runtime_error(where + ": " + what); }

bool continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

size_t char_count(const std::string& s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return !continuation(c); }));
}

// The WordPiece decoder's cleanup of one token (tokenizers' decoders::wordpiece::cleanup).
std::string cleanup(std::string s) {
  static const std::pair<const char*, const char*> rules[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
      {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : rules) {
    const std::string f = from, t = to;
    std::string out;
    size_t pos = 0;
    for (size_t at; (at = s.find(f, pos)) != std::string::npos; pos = at + f.size()) {
      out.append(s, pos, at - pos);
      out += t;
    }
    out.append(s, pos, std::string::npos);
    s = std::move(out);
  }
  return s;
}

}  // namespace

WordPieceTokenizer WordPieceTokenizer::from_json(const json& j, const std::string& where) try {
  WordPieceTokenizer t;
  t.where_ = where;
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) fail(where, "model: missing");
  const auto& m = j["model"];
  if (m.value("type", std::string()) != "WordPiece") fail(where, "model.type: expected \"WordPiece\", got " + m["type"].dump());
  if (!m.contains("vocab") || !m["vocab"].is_object()) fail(where, "model.vocab: expected an object {token: id}");
  for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      fail(where, "model.vocab: \"" + it.key() + "\": expected a non-negative id, got " + it.value().dump());
    }
    t.vocab_[it.key()] = it.value().get<int64_t>();
  }
  if (m.contains("unk_token")) {
    if (!m["unk_token"].is_string()) fail(where, "model.unk_token: expected a string");
    t.unk_token_ = m["unk_token"].get<std::string>();
  }
  if (m.contains("continuing_subword_prefix")) {
    if (!m["continuing_subword_prefix"].is_string()) fail(where, "model.continuing_subword_prefix: expected a string");
    t.prefix_ = m["continuing_subword_prefix"].get<std::string>();
  }
  if (m.contains("max_input_chars_per_word")) {
    if (!m["max_input_chars_per_word"].is_number_integer() || m["max_input_chars_per_word"].get<int64_t>() < 0) {
      fail(where, "model.max_input_chars_per_word: expected a non-negative integer");
    }
    t.max_chars_ = m["max_input_chars_per_word"].get<size_t>();
  }
  t.normalizer_ = TokenizerNormalizer::from_json(j.contains("normalizer") ? j["normalizer"] : json(), where);
  t.pre_tokenizer_ = TokenizerPreTokenizer::from_json(j.contains("pre_tokenizer") ? j["pre_tokenizer"] : json(), where);
  t.post_ = TokenizerPostProcessor::from_json(j.contains("post_processor") ? j["post_processor"] : json(), where);
  if (j.contains("decoder") && j["decoder"].is_object() && j["decoder"].value("type", std::string()) == "WordPiece") {
    t.decoder_cleanup_ = j["decoder"].value("cleanup", true);
  }
  t.finish(TokenizerAddedTokens::parse(j.contains("added_tokens") ? j["added_tokens"] : json(), where));
  if (j.contains("padding") && j["padding"].is_object() && j["padding"].contains("pad_id") &&
      j["padding"]["pad_id"].is_number_integer()) {
    t.pad_ = j["padding"]["pad_id"].get<int64_t>();
  }
  return t;
} catch (const json::exception& e) {
  throw std::runtime_error(where + ": unexpected JSON structure (" + e.what() + ")");
}

WordPieceTokenizer WordPieceTokenizer::from_vocab_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": vocabulary file not found");
  std::stringstream ss;
  ss << in.rdbuf();
  return from_vocab_text(ss.str(), path);
}

WordPieceTokenizer WordPieceTokenizer::from_vocab_text(const std::string& text, const std::string& path) {
  WordPieceTokenizer t;
  t.where_ = path;
  std::istringstream in(text);
  std::string line;
  int64_t index = 0;
  while (std::getline(in, line)) {
    // Rust's lines() drops a \r before the \n, then trim_end() any trailing whitespace.
    auto u = unicode::decode_utf8(line);
    while (!u.empty() && (u.back() == U'\r' || unicode::props(u.back()).bert_split == unicode::BertSplit::Space)) u.pop_back();
    t.vocab_[unicode::encode_utf8(u)] = index++;
  }
  if (index == 0) throw std::runtime_error(path + ": empty vocabulary");
  t.normalizer_ = TokenizerNormalizer::bert(BertNormalizerOptions{});
  t.pre_tokenizer_ = TokenizerPreTokenizer::bert();
  std::vector<AddedToken> specials;
  for (const char* name : {"[UNK]", "[SEP]", "[CLS]", "[PAD]", "[MASK]"}) {
    const auto it = t.vocab_.find(name);
    if (it == t.vocab_.end()) continue;
    AddedToken a;
    a.content = name;
    a.id = it->second;
    a.special = true;
    a.normalized = false;
    specials.push_back(a);
  }
  t.finish(specials);
  for (const char* name : {"[CLS]", "[SEP]"}) {
    if (!t.vocab_.count(name)) throw std::runtime_error(path + ": " + name + " is not in the vocabulary");
  }
  t.post_ = TokenizerPostProcessor::bert(t.vocab_.at("[CLS]"), t.vocab_.at("[SEP]"));
  return t;
}

void WordPieceTokenizer::finish(const std::vector<AddedToken>& added) {
  const auto unk = vocab_.find(unk_token_);
  if (unk == vocab_.end()) fail(where_, "model.unk_token: \"" + unk_token_ + "\" is not in the vocabulary");
  unk_ = unk->second;
  added_ = TokenizerAddedTokens(added, normalizer_);
  int64_t max_id = -1;
  for (const auto& [tok, id] : vocab_) max_id = std::max(max_id, id);
  for (const auto& a : added) max_id = std::max(max_id, a.id);
  vocab_size_ = max_id + 1;
  id_to_token_.assign(static_cast<size_t>(vocab_size_), "");
  special_.assign(static_cast<size_t>(vocab_size_), false);
  for (const auto& [tok, id] : vocab_) id_to_token_[static_cast<size_t>(id)] = tok;
  for (const auto& a : added) {
    id_to_token_[static_cast<size_t>(a.id)] = a.content;
    special_[static_cast<size_t>(a.id)] = a.special;
  }
  pad_ = token_id("[PAD]");
}

int64_t WordPieceTokenizer::token_id(const std::string& token) const {
  const int64_t added = added_.id_of(token);
  if (added >= 0) return added;
  const auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

std::vector<std::string> WordPieceTokenizer::word_pieces(const std::string& word) const {
  if (char_count(word) > max_chars_) return {unk_token_};
  std::vector<std::string> pieces;
  for (size_t start = 0; start < word.size();) {
    size_t end = word.size();
    bool found = false;
    while (start < end) {  // end moves back one character per round
      std::string sub = word.substr(start, end - start);
      if (start > 0) sub = prefix_ + sub;
      if (vocab_.count(sub)) {
        pieces.push_back(std::move(sub));
        found = true;
        break;
      }
      do {
        --end;
      } while (end > start && continuation(word[end]));
    }
    if (!found) return {unk_token_};
    start = end;
  }
  return pieces;
}

std::vector<int64_t> WordPieceTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const auto& piece : added_.split(text, normalizer_)) {
    if (piece.id >= 0) {
      ids.push_back(piece.id);
      continue;
    }
    for (const auto& word : pre_tokenizer_.split(piece.text, piece.at_start)) {
      for (const auto& wp : word_pieces(word)) ids.push_back(vocab_.at(wp));
    }
  }
  return ids;
}

std::string WordPieceTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  bool first = true;
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab_size_ || (id_to_token_[static_cast<size_t>(id)].empty() && !vocab_.count(""))) {
      throw std::out_of_range(where_ + ": decode: id " + std::to_string(id) + " is not in the vocabulary");
    }
    if (special_[static_cast<size_t>(id)]) continue;
    std::string tok = id_to_token_[static_cast<size_t>(id)];
    if (!first) {
      if (tok.compare(0, prefix_.size(), prefix_) == 0) {
        tok.erase(0, prefix_.size());
      } else {
        tok = " " + tok;
      }
    }
    first = false;
    out += decoder_cleanup_ ? cleanup(tok) : tok;
  }
  return out;
}

}  // namespace lorascope
