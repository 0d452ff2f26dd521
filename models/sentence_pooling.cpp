#include "models/sentence_pooling.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "util/json_file.h"

namespace lorascope {

namespace fs = std::filesystem;
using nlohmann::json;

at::Tensor mean_pool(const at::Tensor& h, const at::Tensor& attention_mask) {
  if (!attention_mask.defined()) return h.mean(1);
  const auto m = attention_mask.ne(0).to(h.scalar_type()).unsqueeze(-1);  // (B, T, 1)
  return (h * m).sum(1) / m.sum(1).clamp_min(1e-9);                        // (B, C)
}

at::Tensor pool_tokens(const at::Tensor& h, const at::Tensor& attention_mask, const std::string& pooling) {
  if (pooling == "mean") return mean_pool(h, attention_mask);
  if (pooling == "cls") return h.select(1, 0);
  throw std::invalid_argument("pool_tokens: pooling: expected \"cls\" or \"mean\", got \"" + pooling + "\"");
}

at::Tensor l2_normalize(const at::Tensor& x) {
  return x / x.norm(2, {-1}, /*keepdim=*/true).clamp_min(1e-12);
}

namespace {

json read_json(const fs::path& path) {
  if (!fs::exists(path)) throw std::runtime_error(path.string() + ": not found (named by modules.json)");
  return read_json_file(path.string());
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// 1_Pooling/config.json: one pooling_mode_* key true.
std::string pooling_mode(const fs::path& path, const TransformerConfig& config) {
  const json j = read_json(path);
  if (!j.is_object()) throw std::runtime_error(path.string() + ": expected a JSON object");
  const std::string where = path.string();
  if (j.contains("word_embedding_dimension") &&
      !(j.at("word_embedding_dimension").is_number_integer() &&
        j.at("word_embedding_dimension").get<int64_t>() == config.hidden_size)) {
    throw std::runtime_error(where + ": word_embedding_dimension: expected hidden_size of config.json (" +
                             std::to_string(config.hidden_size) + "), got " + j.at("word_embedding_dimension").dump());
  }
  std::vector<std::string> modes;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key().rfind("pooling_mode_", 0) != 0) continue;
    if (!it.value().is_boolean()) throw std::runtime_error(where + ": " + it.key() + ": expected true or false");
    if (it.value().get<bool>()) modes.push_back(it.key());
  }
  if (modes.size() != 1) {
    throw std::runtime_error(where + ": pooling_mode_*: expected exactly one mode set (lorascope pools one way), got " +
                             std::to_string(modes.size()));
  }
  if (modes[0] == "pooling_mode_mean_tokens") return "mean";
  if (modes[0] == "pooling_mode_cls_token") return "cls";
  throw std::runtime_error(where + ": " + modes[0] +
                           ": unsupported (lorascope implements pooling_mode_mean_tokens and pooling_mode_cls_token)");
}

}  // namespace

void read_sentence_transformers_modules(const std::string& dir, TransformerConfig& config) {
  const fs::path modules_path = fs::path(dir) / "modules.json";
  if (!fs::exists(modules_path)) return;
  const std::string where = modules_path.string();
  const json modules = read_json(modules_path);
  if (!modules.is_array()) throw std::runtime_error(where + ": expected a list of modules");
  std::string pooling;
  bool normalize = false;
  for (size_t i = 0; i < modules.size(); ++i) {
    const auto& m = modules[i];
    const std::string at = where + ": module " + std::to_string(i);
    if (!m.is_object() || !m.contains("type") || !m.at("type").is_string()) {
      throw std::runtime_error(at + ": type: expected a string such as \"sentence_transformers.models.Pooling\"");
    }
    const std::string type = m.at("type").get<std::string>();
    if (ends_with(type, ".Transformer")) {
      if (i != 0) throw std::runtime_error(at + ": " + type + ": expected the Transformer as module 0");
    } else if (ends_with(type, ".Pooling")) {
      const std::string rel = m.value("path", std::string());
      if (rel.empty() || rel.find("..") != std::string::npos || rel[0] == '/') {
        throw std::runtime_error(at + ": path: expected a folder inside " + dir + ", got \"" + rel + "\"");
      }
      pooling = pooling_mode(fs::path(dir) / rel / "config.json", config);
    } else if (ends_with(type, ".Normalize")) {
      if (pooling.empty()) throw std::runtime_error(at + ": " + type + ": expected after the Pooling module");
      normalize = true;
    } else {
      throw std::runtime_error(at + ": type: unsupported \"" + type +
                               "\" (lorascope implements Transformer -> Pooling -> Normalize)");
    }
  }
  if (pooling.empty()) return;  // the Transformer alone: token embeddings, the model's own head
  config.pooling = pooling;
  config.normalize_pooled = normalize;
}

}  // namespace lorascope
