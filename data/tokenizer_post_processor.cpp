#include "data/tokenizer_post_processor.h"

#include <nlohmann/json.hpp>

#include <stdexcept>

namespace lorascope {

using nlohmann::json;
using Item = TokenizerPostProcessor::Item;

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) { throw std::runtime_error(where + ": " + what); }

// ["[CLS]", 101] of BertProcessing / RobertaProcessing.
int64_t token_pair_id(const json& j, const char* key, const std::string& where, const std::string& at) {
  if (!j.contains(key) || !j[key].is_array() || j[key].size() != 2 || !j[key][0].is_string() ||
      !j[key][1].is_number_integer() || j[key][1].get<int64_t>() < 0) {
    fail(where, at + "." + key + ": expected [\"token\", id]");
  }
  return j[key][1].get<int64_t>();
}

std::vector<Item> parse_template(const json& j, const json& specials, const std::string& where, const std::string& at) {
  if (!j.is_array()) fail(where, at + ": expected an array of {\"Sequence\": ...} / {\"SpecialToken\": ...}");
  std::vector<Item> out;
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string here = at + "[" + std::to_string(i) + "]";
    const json& e = j[i];
    Item item;
    const json* body = nullptr;
    if (e.is_object() && e.contains("Sequence") && e["Sequence"].is_object()) {
      body = &e["Sequence"];
      const std::string id = body->value("id", std::string());
      if (id != "A" && id != "B") fail(where, here + ".Sequence.id: expected \"A\" or \"B\"");
      item.sequence = id == "A" ? 0 : 1;
    } else if (e.is_object() && e.contains("SpecialToken") && e["SpecialToken"].is_object()) {
      body = &e["SpecialToken"];
      const std::string name = body->contains("id") && (*body)["id"].is_string() ? (*body)["id"].get<std::string>() : "";
      if (!specials.is_object() || !specials.contains(name) || !specials[name].is_object() ||
          !specials[name].contains("ids") || !specials[name]["ids"].is_array()) {
        fail(where, here + ".SpecialToken: \"" + name + "\" is not in post_processor.special_tokens");
      }
      for (const auto& v : specials[name]["ids"]) {
        if (!v.is_number_integer() || v.get<int64_t>() < 0) {
          fail(where, "post_processor.special_tokens." + name + ".ids: expected non-negative integers");
        }
        item.ids.push_back(v.get<int64_t>());
      }
    } else {
      fail(where, here + ": expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    }
    if (body->contains("type_id")) {
      if (!(*body)["type_id"].is_number_integer() || (*body)["type_id"].get<int64_t>() < 0) {
        fail(where, here + ".type_id: expected a non-negative integer");
      }
      item.type_id = (*body)["type_id"].get<int64_t>();
    }
    out.push_back(std::move(item));
  }
  return out;
}

}  // namespace

TokenizerPostProcessor TokenizerPostProcessor::bert(int64_t cls_id, int64_t sep_id) {
  TokenizerPostProcessor p;
  p.single_ = {{-1, {cls_id}, 0}, {0, {}, 0}, {-1, {sep_id}, 0}};
  p.pair_ = {{-1, {cls_id}, 0}, {0, {}, 0}, {-1, {sep_id}, 0}, {1, {}, 1}, {-1, {sep_id}, 1}};
  return p;
}

TokenizerPostProcessor TokenizerPostProcessor::from_json(const json& j, const std::string& where) {
  TokenizerPostProcessor p;
  if (j.is_null()) return p;
  std::vector<const json*> steps;
  if (j.is_object() && j.value("type", std::string()) == "Sequence") {
    if (!j.contains("processors") || !j["processors"].is_array()) fail(where, "post_processor.processors: expected an array");
    for (const auto& s : j["processors"]) steps.push_back(&s);
  } else {
    steps.push_back(&j);
  }
  bool have_template = false;
  for (const json* s : steps) {
    if (!s->is_object() || !s->contains("type") || !(*s)["type"].is_string()) {
      fail(where, "post_processor: expected an object with a \"type\"");
    }
    const std::string type = (*s)["type"].get<std::string>();
    if (type == "ByteLevel") continue;  // offsets only
    if (have_template) fail(where, "post_processor: a Sequence with more than one template is not supported");
    have_template = true;
    const std::string at = "post_processor";
    if (type == "TemplateProcessing") {
      const json specials = s->contains("special_tokens") ? (*s)["special_tokens"] : json::object();
      p.single_ = parse_template(s->contains("single") ? (*s)["single"] : json(), specials, where, at + ".single");
      p.pair_ = parse_template(s->contains("pair") ? (*s)["pair"] : json(), specials, where, at + ".pair");
    } else if (type == "BertProcessing") {
      p = bert(token_pair_id(*s, "cls", where, at), token_pair_id(*s, "sep", where, at));
    } else if (type == "RobertaProcessing") {
      const int64_t cls = token_pair_id(*s, "cls", where, at), sep = token_pair_id(*s, "sep", where, at);
      p.single_ = {{-1, {cls}, 0}, {0, {}, 0}, {-1, {sep}, 0}};
      p.pair_ = {{-1, {cls}, 0}, {0, {}, 0}, {-1, {sep, sep}, 0}, {1, {}, 0}, {-1, {sep}, 0}};
    } else {
      fail(where, "post_processor: unsupported type \"" + type +
                      "\" (expected TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel or Sequence)");
    }
  }
  return p;
}

size_t TokenizerPostProcessor::added_tokens(bool pair) const {
  size_t n = 0;
  for (const auto& item : pair ? pair_ : single_) n += item.ids.size();
  return n;
}

TokenizerEncoding TokenizerPostProcessor::apply(const std::vector<int64_t>& a, const std::vector<int64_t>* b,
                                                bool add_special_tokens) const {
  TokenizerEncoding out;
  for (const auto& item : b ? pair_ : single_) {
    if (item.sequence < 0) {
      if (!add_special_tokens) continue;
      out.ids.insert(out.ids.end(), item.ids.begin(), item.ids.end());
      out.type_ids.insert(out.type_ids.end(), item.ids.size(), item.type_id);
    } else {
      const auto& seq = item.sequence == 0 || !b ? a : *b;
      out.ids.insert(out.ids.end(), seq.begin(), seq.end());
      out.type_ids.insert(out.type_ids.end(), seq.size(), item.type_id);
    }
  }
  return out;
}

}  // namespace lorascope
