#include "models/hf_checkpoint.h"

#include <torch/nn/module.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <utility>

#include "models/parameter_roles.h"
#include "models/sentence_pooling.h"
#include "util/json_file.h"

namespace lorascope {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& key, const std::string& what) {
  throw std::runtime_error(where + ": " + key + ": " + what);
}

int64_t get_int(const json& j, const std::string& where, const std::string& key, int64_t fallback,
                bool required, int64_t min = 1) {
  const JsonFields f(j, where);
  return required || f.has(key) ? f.integer(key, min) : fallback;
}

double get_positive(const json& j, const std::string& where, const std::string& key, double fallback) {
  const JsonFields f(j, where);
  return f.has(key) ? f.positive(key) : fallback;
}

void expect_value(const json& j, const std::string& where, const std::string& key, const json& allowed,
                  const std::string& why) {
  if (!j.contains(key) || j.at(key).is_null()) return;
  for (const auto& a : allowed) {
    if (j.at(key) == a) return;
  }
  fail(where, key, "expected " + allowed.dump() + " (" + why + "), got " + j.at(key).dump());
}

const std::vector<std::pair<std::string, std::string>> kArchitectures = {
    {"LlamaForCausalLM", "llama"},
    {"LlamaForSequenceClassification", "llama"},
    {"LlamaModel", "llama"},
    {"RobertaForSequenceClassification", "roberta"},
    {"RobertaForMaskedLM", "roberta"},
    {"RobertaModel", "roberta"},
    {"BertForSequenceClassification", "bert"},
    {"BertForMaskedLM", "bert"},
    {"BertForPreTraining", "bert"},
    {"BertModel", "bert"},
};

// rope_scaling (transformers 4.x) or rope_parameters (5.x, which also holds rope_theta).
void read_rope(const json& j, const std::string& where, TransformerConfig& c) {
  c.rope_theta = get_positive(j, where, "rope_theta", 10000.0);
  std::string key = "rope_scaling";
  const json* r = nullptr;
  if (j.contains("rope_parameters") && j.at("rope_parameters").is_object()) {
    key = "rope_parameters";
    r = &j.at(key);
    c.rope_theta = get_positive(*r, where + ": " + key, "rope_theta", c.rope_theta);
  } else if (j.contains(key) && !j.at(key).is_null()) {
    r = &j.at(key);
    if (!r->is_object()) fail(where, key, "expected an object or null, got " + r->dump());
  }
  if (!r) return;
  const std::string at = where + ": " + key;
  std::string type = "default";
  for (const char* k : {"rope_type", "type"}) {
    if (r->contains(k) && r->at(k).is_string()) {
      type = r->at(k).get<std::string>();
      break;
    }
  }
  if (type != "default" && type != "linear" && type != "llama3") {
    fail(at, "rope_type", "unsupported \"" + type + "\" (lorascope implements default, linear and llama3)");
  }
  c.rope_type = type;
  if (type == "default") return;
  if (!r->contains("factor")) fail(at, "factor", "missing (expected a positive number)");
  c.rope_factor = get_positive(*r, at, "factor", 1.0);
  if (type == "llama3") {
    for (const char* k : {"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
      if (!r->contains(k)) fail(at, k, "missing (needed by rope_type llama3)");
    }
    c.rope_low_freq_factor = get_positive(*r, at, "low_freq_factor", 1.0);
    c.rope_high_freq_factor = get_positive(*r, at, "high_freq_factor", 4.0);
    c.rope_original_max_positions = get_int(*r, at, "original_max_position_embeddings", 8192, true);
  }
}

int64_t labels_of(const json& j, const std::string& where) {
  if (j.contains("id2label") && j.at("id2label").is_object() && !j.at("id2label").empty()) {
    return static_cast<int64_t>(j.at("id2label").size());
  }
  return get_int(j, where, "num_labels", 2, false);
}

// BERT's renamed parts, lorascope prefix -> HF prefix; the longest matching prefix wins.
const std::vector<std::pair<std::string, std::string>> kBertNames = {
    {"classifier.dense.", "bert.pooler.dense."},
    {"classifier.out_proj.", "classifier."},
    {"roberta.", "bert."},
    {"lm_head.dense.", "cls.predictions.transform.dense."},
    {"lm_head.layer_norm.", "cls.predictions.transform.LayerNorm."},
    {"lm_head.bias", "cls.predictions.bias"},
};

std::string swap_prefix(const std::string& name, bool to_hf) {
  const std::pair<std::string, std::string>* best = nullptr;
  for (const auto& p : kBertNames) {
    const std::string& from = to_hf ? p.first : p.second;
    if (name.rfind(from, 0) == 0 && (!best || from.size() > (to_hf ? best->first : best->second).size())) best = &p;
  }
  if (!best) return name;
  const std::string& from = to_hf ? best->first : best->second;
  const std::string& to = to_hf ? best->second : best->first;
  return to + name.substr(from.size());
}

std::string body_prefix(const std::string& family) {
  return family == "llama" ? "model." : family == "bert" ? "bert." : "roberta.";
}

// Checkpoint tensors that a model legitimately leaves unused.
bool ignorable(const std::string& hf, const std::string& family, const SequenceModel& model) {
  const auto ends_with = [&](const std::string& s) {
    return hf.size() >= s.size() && hf.compare(hf.size() - s.size(), s.size(), s) == 0;
  };
  if (ends_with("position_ids") || ends_with("rotary_emb.inv_freq")) return true;  // buffers of old saves
  if (family == "llama") {
    if (hf == "lm_head.weight") return model.head() == "classification" || model.config().tie_embeddings;
    if (hf == "score.weight") return model.head() != "classification";
    return false;
  }
  // MLM heads, RoBERTa's pooler (unused by RobertaForSequenceClassification), and BERT's when
  // the head reads the pooled tokens instead.
  const bool pooler = hf.rfind(body_prefix(family) + "pooler.", 0) == 0 || hf.rfind("pooler.", 0) == 0;
  return hf.rfind("lm_head.", 0) == 0 || hf.rfind("cls.", 0) == 0 ||
         (pooler && (family == "roberta" || model.config().pooling != "pooler"));
}

}  // namespace

std::string hf_family(const TransformerConfig& c) {
  if (c.arch == "llama") return "llama";
  return c.positions == "absolute" ? "bert" : "roberta";
}

std::string hf_parameter_name(const std::string& name, const std::string& family) {
  return family == "bert" ? swap_prefix(name, true) : name;
}

std::string lorascope_parameter_name(const std::string& hf_name, const std::string& family) {
  return family == "bert" ? swap_prefix(hf_name, false) : hf_name;
}

HfModelInfo parse_hf_config(const json& j, const std::string& where) try {
  if (!j.is_object()) throw std::runtime_error(where + ": expected a JSON object");
  HfModelInfo info;
  if (j.contains("architectures") && j.at("architectures").is_array() && !j.at("architectures").empty() &&
      j.at("architectures")[0].is_string()) {
    info.architecture = j.at("architectures")[0].get<std::string>();
  } else if (j.contains("model_type") && j.at("model_type").is_string()) {
    const std::string t = j.at("model_type").get<std::string>();
    info.architecture = t == "llama" ? "LlamaForCausalLM" : t == "roberta" ? "RobertaModel" : t == "bert" ? "BertModel" : t;
  } else {
    fail(where, "architectures", "missing (and no model_type)");
  }
  std::string names;
  for (const auto& [arch, family] : kArchitectures) {
    names += (names.empty() ? "" : ", ") + arch;
    if (arch == info.architecture) info.family = family;
  }
  if (info.family.empty()) {
    fail(where, "architectures", "unsupported architecture \"" + info.architecture + "\" (lorascope loads " + names + ")");
  }
  if (info.architecture.find("ForSequenceClassification") != std::string::npos) info.num_labels = labels_of(j, where);

  TransformerConfig c;
  c.arch = info.family == "llama" ? "llama" : "roberta";
  c.vocab_size = get_int(j, where, "vocab_size", 0, true);
  c.hidden_size = get_int(j, where, "hidden_size", 0, true);
  c.num_layers = get_int(j, where, "num_hidden_layers", 0, true);
  c.num_heads = get_int(j, where, "num_attention_heads", 0, true);
  c.intermediate_size = get_int(j, where, "intermediate_size", 0, true);
  if (info.family == "llama") {
    expect_value(j, where, "hidden_act", {"silu"}, "LLaMA's SwiGLU");
    expect_value(j, where, "attention_bias", {false}, "lorascope's LLaMA has no attention biases");
    expect_value(j, where, "mlp_bias", {false}, "lorascope's LLaMA has no MLP biases");
    c.num_kv_heads = get_int(j, where, "num_key_value_heads", c.num_heads, false);
    c.max_positions = get_int(j, where, "max_position_embeddings", 2048, false);
    c.rms_norm_eps = get_positive(j, where, "rms_norm_eps", 1e-6);
    c.explicit_head_dim = get_int(j, where, "head_dim", 0, false, 0);
    if (c.explicit_head_dim * c.num_heads == c.hidden_size) c.explicit_head_dim = 0;  // derived anyway
    read_rope(j, where, c);
    c.tie_embeddings = false;  // LlamaConfig's default
    if (j.contains("tie_word_embeddings") && !j.at("tie_word_embeddings").is_null()) {
      if (!j.at("tie_word_embeddings").is_boolean()) {
        fail(where, "tie_word_embeddings", "expected true or false, got " + j.at("tie_word_embeddings").dump());
      }
      c.tie_embeddings = j.at("tie_word_embeddings").get<bool>();
    }
    // LLaMA 3 has no pad token; the padding row only matters for gradients of the (frozen)
    // embedding, and batches are padded with the tokenizer's id under an attention mask.
    c.pad_token_id = get_int(j, where, "pad_token_id", 0, false, 0);
    if (c.pad_token_id >= c.vocab_size) c.pad_token_id = 0;
  } else {
    expect_value(j, where, "hidden_act", {"gelu"}, "the exact erf GELU");
    expect_value(j, where, "position_embedding_type", {"absolute"}, "learned absolute positions");
    c.num_kv_heads = c.num_heads;
    c.max_positions = get_int(j, where, "max_position_embeddings", 512, false);
    c.layer_norm_eps = get_positive(j, where, "layer_norm_eps", 1e-12);
    c.type_vocab_size = get_int(j, where, "type_vocab_size", 2, false);
    c.pad_token_id = get_int(j, where, "pad_token_id", info.family == "bert" ? 0 : 1, false, 0);
    c.positions = info.family == "bert" ? "absolute" : "padding_offset";
  }
  try {
    info.config = TransformerConfig::from_json(c.to_json(), where);
  } catch (const std::runtime_error& e) {
    // Keys named as lorascope's; say which HF keys they come from.
    throw std::runtime_error(std::string(e.what()) +
                             " (from config.json's num_attention_heads / num_key_value_heads / hidden_size / "
                             "head_dim / pad_token_id / max_position_embeddings)");
  }
  return info;
} catch (const nlohmann::json::exception& e) {
  // A well-formed JSON file of the wrong shape (a number where an object belongs, ...).
  throw std::runtime_error(where + ": unexpected JSON structure (" + e.what() + ")");
}

namespace {

// Appends the command that fetches dir's model to an error about it, when there is one.
template <typename F>
auto with_fetch_hint(const std::string& dir, F f) -> decltype(f()) {
  const std::string fetch = fetch_command_for(dir);
  if (fetch.empty()) return f();
  try {
    return f();
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    if (what.find(fetch) != std::string::npos) throw;
    throw std::runtime_error(what + "; " + fetch + " fetches it");
  }
}

HfModelInfo read_config_json(const std::string& dir) {
  const std::string path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(path)) throw std::runtime_error(path + ": not found (a Hugging Face model directory has config.json)");
  return parse_hf_config(read_json_file(path), path);
}

}  // namespace

std::string fetch_command_for(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();  // "DIR/"
  return p.filename() == "all-MiniLM-L6-v2" ? "bash scripts/fetch_model.sh" : "";
}

void check_fetched_model(const std::string& dir) {
  if (fetch_command_for(dir).empty()) return;
  with_fetch_hint(dir, [&] {
    if (!fs::is_directory(dir)) throw std::runtime_error(dir + ": model directory not found");
    for (const char* f : {"config.json", "model.safetensors", "tokenizer.json"}) {
      const auto path = fs::path(dir) / f;
      if (!fs::is_regular_file(path)) throw std::runtime_error(path.string() + ": missing");
    }
    (void)SafetensorsCheckpoint(dir);  // header, offsets and the file's size agree
  });
}

HfModelInfo read_hf_config(const std::string& dir) {
  return with_fetch_hint(dir, [&] {
    check_fetched_model(dir);
    auto info = read_config_json(dir);
    if (info.family != "llama") read_sentence_transformers_modules(dir, info.config);
    return info;
  });
}

bool is_hf_checkpoint_dir(const std::string& dir) {
  const fs::path d(dir);
  return (fs::exists(d / "config.json") &&
          (fs::exists(d / "model.safetensors") || fs::exists(d / "model.safetensors.index.json"))) ||
         !fetch_command_for(dir).empty();
}

HfLoadReport load_hf_weights(SequenceModel& model, const SafetensorsCheckpoint& ckpt) {
  const std::string family = hf_family(model.config());
  // A bare body (LlamaModel, RobertaModel saved alone) has no "model." / "roberta." prefix.
  const std::string prefix = body_prefix(family);
  bool prefixed = false;
  for (const auto& n : ckpt.names()) prefixed = prefixed || n.rfind(prefix, 0) == 0;
  const auto to_hf = [&](const std::string& name) {
    std::string hf = hf_parameter_name(name, family);
    if (!prefixed && hf.rfind(prefix, 0) == 0) hf = hf.substr(prefix.size());
    return hf;
  };
  // Head parameters may be fresh (for BERT the pooler too: lorascope's classifier.dense).
  const std::string head = model.head_module();
  const bool head_optional = model.head() == "classification";
  const auto in_head = [&](const std::string& name) { return name.rfind(head + ".", 0) == 0; };

  HfLoadReport report;
  std::set<std::string> used;
  at::NoGradGuard no_grad;
  const auto roles = parameter_roles(model);
  for (auto& p : model.named_parameters(/*recurse=*/true)) {
    const std::string& name = p.key();
    if (roles.is_adapter_factor(name)) continue;  // adapters are not part of a base checkpoint
    const std::string hf = to_hf(name);
    if (!ckpt.contains(hf)) {
      if (head_optional && in_head(name)) {
        report.fresh.push_back(name);
        continue;
      }
      throw std::runtime_error(ckpt.file_of(hf) + ": missing tensor \"" + hf + "\" (lorascope's " + name + " of a " +
                               family + " model with " + std::to_string(model.config().num_layers) + " layers)");
    }
    const auto shape = ckpt.shape(hf);
    if (!p.value().sizes().equals(shape)) {
      throw std::runtime_error(ckpt.file_of(hf) + ": " + hf + ": expected shape " + c10::str(p.value().sizes()) +
                               " (from config.json), got " + c10::str(at::IntArrayRef(shape)));
    }
    const auto t = ckpt.tensor(hf);
    if (!t.is_floating_point()) {
      throw std::runtime_error(ckpt.file_of(hf) + ": " + hf + ": expected floating-point weights, got " +
                               c10::toString(t.scalar_type()));
    }
    p.value().copy_(t);
    used.insert(hf);
  }
  if (head_optional && family != "bert") {  // BertModel saves the pooler without the classifier
    // All of the head or none of it: a half-loaded head is a wrong model.
    size_t head_params = 0;
    for (const auto& p : model.named_parameters(true)) head_params += in_head(p.key()) ? 1 : 0;
    if (!report.fresh.empty() && report.fresh.size() != head_params) {
      throw std::runtime_error(ckpt.dir() + ": the checkpoint has part of the head \"" + head + "\" but not \"" +
                               to_hf(report.fresh.front()) + "\"");
    }
  }
  for (const auto& n : ckpt.names()) {
    if (used.count(n)) continue;
    if (!ignorable(n, family, model)) {
      throw std::runtime_error(ckpt.file_of(n) + ": unexpected tensor \"" + n + "\": a " + family + " model with " +
                               std::to_string(model.config().num_layers) +
                               " layers has no such parameter (config.json does not match the weights?)");
    }
    report.ignored.push_back(n);
  }
  return report;
}

std::shared_ptr<SequenceModel> load_hf_model(const std::string& dir, const std::string& head, int64_t num_labels,
                                             at::Generator& gen, HfLoadReport* report) {
  return load_hf_model(dir, read_hf_config(dir), head, num_labels, gen, report);
}

std::shared_ptr<SequenceModel> load_hf_model(const std::string& dir, const HfModelInfo& info, const std::string& head,
                                             int64_t num_labels, at::Generator& gen, HfLoadReport* report) {
  return with_fetch_hint(dir, [&] {
    const SafetensorsCheckpoint ckpt(dir);
    if (head == "classification" && num_labels <= 0) num_labels = info.num_labels > 0 ? info.num_labels : 2;
    auto model = make_model(info.config, head, head == "classification" ? num_labels : 0, gen);
    auto r = load_hf_weights(*model, ckpt);
    if (report) *report = r;
    return model;
  });
}

}  // namespace lorascope
