#include "models/transformer_config.h"

#include <stdexcept>
#include <utility>
#include <vector>

namespace lorascope {

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& key, const std::string& what,
                       const std::string& got) {
  throw std::runtime_error(where + ": " + key + ": expected " + what + ", got " + got);
}

int64_t read_int(const nlohmann::json& j, const std::string& where, const std::string& key,
                 int64_t min, int64_t fallback, bool required) {
  if (!j.contains(key)) {
    if (required) throw std::runtime_error(where + ": " + key + ": missing (expected an integer)");
    return fallback;
  }
  const auto& v = j.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < min) {
    fail(where, key, "an integer >= " + std::to_string(min), v.dump());
  }
  return v.get<int64_t>();
}

double read_positive(const nlohmann::json& j, const std::string& where, const std::string& key,
                     double fallback) {
  if (!j.contains(key)) return fallback;
  const auto& v = j.at(key);
  if (!v.is_number() || !(v.get<double>() > 0)) fail(where, key, "a positive number", v.dump());
  return v.get<double>();
}

}  // namespace

nlohmann::json TransformerConfig::to_json() const {
  return {{"arch", arch},
          {"vocab_size", vocab_size},
          {"hidden_size", hidden_size},
          {"num_layers", num_layers},
          {"num_heads", num_heads},
          {"num_kv_heads", num_kv_heads},
          {"intermediate_size", intermediate_size},
          {"max_positions", max_positions},
          {"rms_norm_eps", rms_norm_eps},
          {"layer_norm_eps", layer_norm_eps},
          {"rope_theta", rope_theta},
          {"tie_embeddings", tie_embeddings},
          {"pad_token_id", pad_token_id},
          {"type_vocab_size", type_vocab_size},
          {"head_dim", explicit_head_dim},
          {"rope_type", rope_type},
          {"rope_factor", rope_factor},
          {"rope_low_freq_factor", rope_low_freq_factor},
          {"rope_high_freq_factor", rope_high_freq_factor},
          {"rope_original_max_positions", rope_original_max_positions},
          {"positions", positions},
          {"pooling", pooling},
          {"normalize_pooled", normalize_pooled}};
}

// The size keys are required (a model's shape should never come from a default); the rest
// default to the struct's values, and num_kv_heads to num_heads. Keys starting with "_" are
// notes, as in every lorascope config.
TransformerConfig TransformerConfig::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw std::runtime_error(where + ": expected a JSON object, got " + j.dump());
  const TransformerConfig d;
  const auto known = d.to_json();
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.key().empty() && it.key()[0] == '_') continue;
    if (!known.contains(it.key())) {
      std::string keys;
      for (auto k = known.begin(); k != known.end(); ++k) keys += (keys.empty() ? "" : ", ") + k.key();
      throw std::runtime_error(where + ": " + it.key() + ": unknown key (expected one of " + keys + ")");
    }
  }

  TransformerConfig c;
  if (!j.contains("arch")) throw std::runtime_error(where + ": arch: missing (expected \"llama\" or \"roberta\")");
  if (!j.at("arch").is_string() ||
      (j.at("arch").get<std::string>() != "llama" && j.at("arch").get<std::string>() != "roberta")) {
    fail(where, "arch", "\"llama\" or \"roberta\"", j.at("arch").dump());
  }
  c.arch = j.at("arch").get<std::string>();
  c.vocab_size = read_int(j, where, "vocab_size", 1, 0, true);
  c.hidden_size = read_int(j, where, "hidden_size", 1, 0, true);
  c.num_layers = read_int(j, where, "num_layers", 1, 0, true);
  c.num_heads = read_int(j, where, "num_heads", 1, 0, true);
  c.intermediate_size = read_int(j, where, "intermediate_size", 1, 0, true);
  c.num_kv_heads = read_int(j, where, "num_kv_heads", 1, c.num_heads, false);
  c.max_positions = read_int(j, where, "max_positions", 1, d.max_positions, false);
  c.pad_token_id = read_int(j, where, "pad_token_id", 0, d.pad_token_id, false);
  c.type_vocab_size = read_int(j, where, "type_vocab_size", 1, d.type_vocab_size, false);
  c.rms_norm_eps = read_positive(j, where, "rms_norm_eps", d.rms_norm_eps);
  c.layer_norm_eps = read_positive(j, where, "layer_norm_eps", d.layer_norm_eps);
  c.rope_theta = read_positive(j, where, "rope_theta", d.rope_theta);
  c.explicit_head_dim = read_int(j, where, "head_dim", 0, 0, false);
  c.rope_factor = read_positive(j, where, "rope_factor", d.rope_factor);
  c.rope_low_freq_factor = read_positive(j, where, "rope_low_freq_factor", d.rope_low_freq_factor);
  c.rope_high_freq_factor = read_positive(j, where, "rope_high_freq_factor", d.rope_high_freq_factor);
  c.rope_original_max_positions =
      read_int(j, where, "rope_original_max_positions", 1, d.rope_original_max_positions, false);
  const auto read_choice = [&](const std::string& key, const std::vector<std::string>& choices,
                               const std::string& fallback) {
    if (!j.contains(key)) return fallback;
    const auto& v = j.at(key);
    std::string list;
    for (const auto& ch : choices) {
      list += (list.empty() ? "" : " or ") + ("\"" + ch + "\"");
      if (v.is_string() && v.get<std::string>() == ch) return ch;
    }
    fail(where, key, list, v.dump());
  };
  c.rope_type = read_choice("rope_type", {"default", "linear", "llama3"}, d.rope_type);
  c.positions = read_choice("positions", {"padding_offset", "absolute"}, d.positions);
  c.pooling = read_choice("pooling", {"pooler", "cls", "mean"}, d.pooling);
  for (auto [key, flag] : {std::pair<const char*, bool*>{"tie_embeddings", &c.tie_embeddings},
                           {"normalize_pooled", &c.normalize_pooled}}) {
    if (!j.contains(key)) continue;
    if (!j.at(key).is_boolean()) fail(where, key, "true or false", j.at(key).dump());
    *flag = j.at(key).get<bool>();
  }

  // Relations between keys, reported at the key that has to change.
  const auto n = [](int64_t v) { return std::to_string(v); };
  if (c.explicit_head_dim == 0 && c.hidden_size % c.num_heads != 0) {
    fail(where, "num_heads", "a divisor of hidden_size (" + n(c.hidden_size) + ")", n(c.num_heads));
  }
  if (c.num_heads % c.num_kv_heads != 0) {
    fail(where, "num_kv_heads", "a divisor of num_heads (" + n(c.num_heads) + ")", n(c.num_kv_heads));
  }
  if (c.arch == "roberta" && c.explicit_head_dim != 0 && c.explicit_head_dim * c.num_heads != c.hidden_size) {
    fail(where, "head_dim", "hidden_size / num_heads for roberta", n(c.explicit_head_dim));
  }
  if (c.rope_type == "llama3" && !(c.rope_high_freq_factor > c.rope_low_freq_factor)) {
    fail(where, "rope_high_freq_factor", "a value above rope_low_freq_factor (" + std::to_string(c.rope_low_freq_factor) + ")",
         std::to_string(c.rope_high_freq_factor));
  }
  if (c.arch == "roberta" && c.num_kv_heads != c.num_heads) {
    fail(where, "num_kv_heads", "num_heads (" + n(c.num_heads) + ") for roberta", n(c.num_kv_heads));
  }
  if (c.arch == "llama" && c.head_dim() % 2 != 0) {
    fail(where, "num_heads", "an even head_dim = hidden_size / num_heads for rotary positions",
         "head_dim " + n(c.head_dim()));
  }
  if (c.arch == "llama" && (c.pooling != d.pooling || c.normalize_pooled)) {
    fail(where, c.pooling != d.pooling ? "pooling" : "normalize_pooled",
         "the default for llama (its classifier reads the last token)",
         c.pooling != d.pooling ? "\"" + c.pooling + "\"" : "true");
  }
  if (c.pad_token_id >= c.vocab_size) {
    fail(where, "pad_token_id", "an id below vocab_size (" + n(c.vocab_size) + ")", n(c.pad_token_id));
  }
  // RoBERTa's position ids start at pad_token_id + 1.
  if (c.arch == "roberta" && c.positions == "padding_offset" && c.max_positions < c.pad_token_id + 2) {
    fail(where, "max_positions", "at least pad_token_id + 2 (" + n(c.pad_token_id + 2) + ") for roberta",
         n(c.max_positions));
  }
  return c;
}

}  // namespace lorascope
