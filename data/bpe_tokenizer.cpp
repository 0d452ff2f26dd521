#include "data/bpe_tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <queue>
#include <sstream>
#include <stdexcept>

#include "util/json_file.h"

namespace lorascope {

using nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::runtime_error(where + ": " + what);
}

// Splits a string into its characters (as UTF-8 strings); an invalid byte is a character.
std::vector<std::string> utf8_chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    if (i + n > s.size()) n = 1;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) n = 1;
    }
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

uint64_t pair_key(int64_t a, int64_t b) { return static_cast<uint64_t>(a) << 32 | static_cast<uint64_t>(b); }

// Whether a normalizer / pre-tokenizer JSON prepends "▁" to the text (LLaMA 2, Mistral).
bool prepends_space(const json& normalizer, const json& pre_tokenizer) {
  bool found = false;
  const auto visit = [&](const json& j, const char* list, auto&& self) -> void {
    if (!j.is_object()) return;
    const std::string type = j.value("type", std::string());
    if (type == "Prepend" || (type == "Metaspace" && j.value("prepend_scheme", std::string("always")) != "never")) found = true;
    if (j.contains(list) && j[list].is_array()) {
      for (const auto& s : j[list]) self(s, list, self);
    }
  };
  visit(normalizer, "normalizers", visit);
  visit(pre_tokenizer, "pretokenizers", visit);
  return found;
}

const json& key_or_null(const json& j, const char* key) {
  static const json null;
  return j.contains(key) ? j[key] : null;
}

}  // namespace

BpeTokenizer BpeTokenizer::load(const std::string& path) {
  if (!std::filesystem::exists(path)) throw std::runtime_error(path + ": tokenizer.json not found");
  return from_json(read_json_file(path), path);
}

BpeTokenizer BpeTokenizer::from_json(const json& j, const std::string& where) try {
  BpeTokenizer t;
  t.where_ = where;
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) fail(where, "model: missing");
  const auto& m = j["model"];
  if (m.value("type", std::string("BPE")) != "BPE") {
    fail(where, "model.type: expected \"BPE\", got " + m["type"].dump() +
                    " (a sentencepiece model is read from tokenizer.model)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (m.contains(key) && !m[key].is_null() && m[key] != "") fail(where, std::string("model.") + key + ": not supported, expected null");
  }
  if (m.contains("dropout") && !m["dropout"].is_null() && m["dropout"] != 0 && m["dropout"] != 0.0) {
    fail(where, "model.dropout: expected null (BPE dropout is for training)");
  }
  const auto flag = [&](const char* key) {
    if (!m.contains(key) || m[key].is_null()) return false;
    if (!m[key].is_boolean()) fail(where, std::string("model.") + key + ": expected true or false, got " + m[key].dump());
    return m[key].get<bool>();
  };
  t.ignore_merges_ = flag("ignore_merges");
  t.byte_fallback_ = flag("byte_fallback");
  t.fuse_unk_ = flag("fuse_unk");
  if (!m.contains("vocab") || !m["vocab"].is_object()) fail(where, "model.vocab: expected an object {token: id}");
  int64_t max_id = -1;
  for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      fail(where, "model.vocab: \"" + it.key() + "\": expected a non-negative id, got " + it.value().dump());
    }
    t.vocab_[it.key()] = it.value().get<int64_t>();
    max_id = std::max(max_id, it.value().get<int64_t>());
  }
  if (!m.contains("merges") || !m["merges"].is_array()) fail(where, "model.merges: expected an array");
  int64_t rank = 0;
  for (const auto& merge : m["merges"]) {
    const std::string at = "model.merges[" + std::to_string(rank) + "]";
    std::string a, b;
    if (merge.is_string()) {  // "a b" (tokenizers < 0.20)
      const std::string s = merge.get<std::string>();
      const auto sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size() || s.find(' ', sp + 1) != std::string::npos) {
        fail(where, at + ": expected \"left right\", got " + merge.dump());
      }
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
      a = merge[0].get<std::string>();  // ["a", "b"] (tokenizers >= 0.20)
      b = merge[1].get<std::string>();
    } else {
      fail(where, at + ": expected \"left right\" or [\"left\", \"right\"], got " + merge.dump());
    }
    for (const auto* part : {&a, &b}) {
      if (!t.vocab_.count(*part)) fail(where, at + ": \"" + *part + "\" is not in model.vocab");
    }
    if (!t.vocab_.count(a + b)) fail(where, at + ": the merged token \"" + a + b + "\" is not in model.vocab");
    // A merge listed twice keeps its last rank: tokenizers collects the list into a map.
    t.merges_[pair_key(t.vocab_[a], t.vocab_[b])] = {rank, t.vocab_[a + b]};
    ++rank;
  }
  if (m.contains("unk_token") && !m["unk_token"].is_null()) {
    if (!m["unk_token"].is_string() || !t.vocab_.count(m["unk_token"].get<std::string>())) {
      fail(where, "model.unk_token: expected a token of model.vocab, got " + m["unk_token"].dump());
    }
    t.model_unk_ = t.vocab_[m["unk_token"].get<std::string>()];
  }
  t.byte_ids_.assign(256, -1);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    const auto it = t.vocab_.find(name);
    if (it != t.vocab_.end()) t.byte_ids_[static_cast<size_t>(b)] = it->second;
  }

  t.normalizer_ = TokenizerNormalizer::from_json(key_or_null(j, "normalizer"), where);
  t.pre_tokenizer_ = TokenizerPreTokenizer::from_json(key_or_null(j, "pre_tokenizer"), where);
  t.prepends_space_ = prepends_space(key_or_null(j, "normalizer"), key_or_null(j, "pre_tokenizer"));
  const auto added = TokenizerAddedTokens::parse(key_or_null(j, "added_tokens"), where);
  t.added_ = TokenizerAddedTokens(added, t.normalizer_);
  for (const auto& a : added) max_id = std::max(max_id, a.id);
  t.vocab_size_ = max_id + 1;
  t.id_to_token_.assign(static_cast<size_t>(t.vocab_size_), "");
  t.added_id_.assign(static_cast<size_t>(t.vocab_size_), false);
  for (const auto& [tok, id] : t.vocab_) t.id_to_token_[static_cast<size_t>(id)] = tok;
  for (const auto& a : added) {
    t.id_to_token_[static_cast<size_t>(a.id)] = a.content;
    t.added_id_[static_cast<size_t>(a.id)] = true;
  }
  const auto first = [&](std::initializer_list<const char*> names) -> int64_t {
    for (const char* n : names) {
      if (t.token_id(n) >= 0) return t.token_id(n);
    }
    return -1;
  };
  t.bos_ = first({"<|begin_of_text|>", "<s>", "<|endoftext|>"});
  t.eos_ = first({"<|end_of_text|>", "</s>", "<|endoftext|>"});
  t.pad_ = first({"<pad>", "<|finetune_right_pad_id|>", "<|pad|>"});
  t.unk_ = first({"<unk>"});
  if (m.contains("unk_token") && m["unk_token"].is_string()) t.unk_ = t.token_id(m["unk_token"].get<std::string>());
  return t;
} catch (const nlohmann::json::exception& e) {
  // A well-formed JSON file of the wrong shape (a number where an object belongs, ...).
  throw std::runtime_error(where + ": unexpected JSON structure (" + e.what() + ")");
}

int64_t BpeTokenizer::token_id(const std::string& token) const {
  const int64_t added = added_.id_of(token);
  if (added >= 0) return added;
  const auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

std::vector<std::string> BpeTokenizer::pre_tokenize(const std::string& segment) const {
  return pre_tokenizer_.split(normalizer_.normalize(segment), true, /*map_bytes=*/false);
}

std::vector<int64_t> BpeTokenizer::bpe(const std::string& piece) const {
  if (piece.empty()) return {};
  if (ignore_merges_) {
    const auto it = vocab_.find(piece);
    if (it != vocab_.end()) return {it->second};
  }
  // The word as symbols in a doubly linked list; a merged-away symbol gets len 0.
  struct Symbol {
    int64_t id;
    int64_t prev, next;
    size_t len;
  };
  std::vector<Symbol> sym;
  const auto add = [&](int64_t id, size_t len) {
    const auto n = static_cast<int64_t>(sym.size());
    sym.push_back({id, n - 1, n + 1, len});
  };
  int64_t unk_len = 0;  // pending unk symbol (fuse_unk joins consecutive ones)
  const auto flush_unk = [&] {
    if (unk_len > 0) add(model_unk_, static_cast<size_t>(unk_len));
    unk_len = 0;
  };
  for (const auto& c : utf8_chars(piece)) {
    const auto it = vocab_.find(c);
    if (it != vocab_.end()) {
      flush_unk();
      add(it->second, c.size());
      continue;
    }
    if (byte_fallback_ && std::all_of(c.begin(), c.end(), [&](char b) { return byte_ids_[static_cast<unsigned char>(b)] >= 0; })) {
      // As tokenizers' merge_word: a pending unk is not flushed first, it follows these bytes.
      for (char b : c) add(byte_ids_[static_cast<unsigned char>(b)], 1);
      continue;
    }
    if (model_unk_ < 0) continue;  // no unk token: tokenizers drops the character
    if (unk_len > 0 && !fuse_unk_) flush_unk();
    unk_len += static_cast<int64_t>(c.size());
  }
  flush_unk();
  if (sym.empty()) return {};
  sym.back().next = -1;

  // Lowest rank first, then leftmost (tokenizers' Merge ordering).
  struct Merge {
    int64_t rank;
    int64_t pos;
    int64_t new_id;
    bool operator<(const Merge& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Merge> queue;
  const auto push = [&](int64_t pos) {
    if (pos < 0 || sym[static_cast<size_t>(pos)].next < 0) return;
    const auto it = merges_.find(pair_key(sym[static_cast<size_t>(pos)].id, sym[static_cast<size_t>(sym[static_cast<size_t>(pos)].next)].id));
    if (it != merges_.end()) queue.push({it->second.first, pos, it->second.second});
  };
  for (int64_t i = 0; i + 1 < static_cast<int64_t>(sym.size()); ++i) push(i);
  // Each round either drops a stale entry or merges (at most sym.size() - 1 merges, each
  // pushing at most 2 entries): the loop is bounded.
  while (!queue.empty()) {
    const Merge top = queue.top();
    queue.pop();
    auto& left = sym[static_cast<size_t>(top.pos)];
    if (left.len == 0 || left.next < 0) continue;
    const auto right_pos = left.next;
    auto& right = sym[static_cast<size_t>(right_pos)];
    // A stale entry: the pair at pos changed since it was queued.
    const auto now = merges_.find(pair_key(left.id, right.id));
    if (now == merges_.end() || now->second.second != top.new_id) continue;
    left.id = top.new_id;
    left.len += right.len;
    left.next = right.next;
    right.len = 0;
    if (right.next >= 0) sym[static_cast<size_t>(right.next)].prev = top.pos;
    push(left.prev);
    push(top.pos);
  }
  std::vector<int64_t> ids;
  for (const auto& s : sym) {
    if (s.len > 0) ids.push_back(s.id);
  }
  return ids;
}

std::vector<int64_t> BpeTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const auto& piece : added_.split(text, normalizer_)) {
    if (piece.id >= 0) {
      ids.push_back(piece.id);
      continue;
    }
    for (const auto& word : pre_tokenizer_.split(piece.text, piece.at_start)) {
      const auto w = bpe(word);
      ids.insert(ids.end(), w.begin(), w.end());
    }
  }
  return ids;
}

std::string BpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  static const std::unordered_map<std::string, unsigned char> inverse = [] {
    std::unordered_map<std::string, unsigned char> m;
    for (int b = 0; b < 256; ++b) m[byte_to_unicode()[static_cast<size_t>(b)]] = static_cast<unsigned char>(b);
    return m;
  }();
  std::string out;
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab_size_ || id_to_token_[static_cast<size_t>(id)].empty()) {
      throw std::out_of_range(where_ + ": decode: id " + std::to_string(id) + " is not in the vocabulary");
    }
    const auto& tok = id_to_token_[static_cast<size_t>(id)];
    if (added_id_[static_cast<size_t>(id)]) {
      out += tok;
      continue;
    }
    if (!pre_tokenizer_.byte_level()) {
      const auto byte = std::find(byte_ids_.begin(), byte_ids_.end(), id);
      if (byte_fallback_ && byte != byte_ids_.end()) {
        out += static_cast<char>(byte - byte_ids_.begin());
      } else {
        out += tok;
      }
      continue;
    }
    for (const auto& ch : utf8_chars(tok)) {
      const auto it = inverse.find(ch);
      if (it == inverse.end()) throw std::runtime_error(where_ + ": decode: token \"" + tok + "\" is not byte-level");
      out += static_cast<char>(it->second);
    }
  }
  if (pre_tokenizer_.byte_level()) return out;
  // Sentencepiece-style: "▁" is a space, less the one prepended to the text.
  std::string spaced;
  const std::string bar = "\xE2\x96\x81";
  size_t pos = 0;
  for (size_t at; (at = out.find(bar, pos)) != std::string::npos; pos = at + bar.size()) {
    spaced.append(out, pos, at - pos);
    spaced += ' ';
  }
  spaced.append(out, pos, std::string::npos);
  if (prepends_space_ && !spaced.empty() && spaced[0] == ' ') spaced.erase(0, 1);
  return spaced;
}

}  // namespace lorascope
