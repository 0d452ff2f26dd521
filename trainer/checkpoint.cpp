#include "trainer/checkpoint.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)

#include <algorithm>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <stdexcept>

#include "data/matrix_json.h"
#include "optim/state_io.h"
#include "trainer/fault_injection.h"
#include "trainer/file_integrity.h"
#include "trainer/rng_state.h"
#include "trainer/metrics_writer.h"

namespace lorascope {

namespace fs = std::filesystem;
using nlohmann::json;

json TrainState::to_json() const {
  return {{"step", step}, {"epoch", epoch}, {"batch", batch}, {"skipped_steps", skipped_steps},
          {"tokens", tokens}, {"seconds", seconds}, {"last_loss", last_loss}};
}

TrainState TrainState::from_json(const json& j) {
  TrainState s;
  s.step = j.at("step");
  s.epoch = j.at("epoch");
  s.batch = j.at("batch");
  s.skipped_steps = j.at("skipped_steps");
  s.tokens = j.at("tokens");
  s.seconds = j.value("seconds", 0.0);
  s.last_loss = j.value("last_loss", 0.0);
  return s;
}

TensorDict module_state(torch::nn::Module& module) {
  TensorDict out;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) out[p.key()] = p.value().detach();
  for (const auto& b : module.named_buffers(/*recurse=*/true)) out[b.key()] = b.value().detach();
  return out;
}

void load_module_state(torch::nn::Module& module, const TensorDict& state, const std::string& where,
                       const std::vector<std::string>& allow_missing_prefixes) {
  at::NoGradGuard no_grad;
  auto load_one = [&](const std::string& key, at::Tensor target) {
    auto it = state.find(key);
    if (it == state.end()) {
      for (const auto& prefix : allow_missing_prefixes) {
        if (key.rfind(prefix, 0) == 0 || key.find("." + prefix) != std::string::npos) return;
      }
      throw std::runtime_error(where + ": missing tensor \"" + key + "\"");
    }
    if (!it->second.sizes().equals(target.sizes())) {
      throw std::runtime_error(where + ": " + key + ": expected shape " + c10::str(target.sizes()) +
                               ", got " + c10::str(it->second.sizes()));
    }
    target.copy_(it->second);
  };
  for (const auto& p : module.named_parameters(true)) load_one(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) load_one(b.key(), b.value());
}

namespace {

constexpr const char* kManifest = "manifest.json";

// Every step_<N> directory (complete or not), oldest first.
std::vector<std::pair<int64_t, fs::path>> checkpoints(const std::string& run_dir) {
  std::vector<std::pair<int64_t, fs::path>> found;
  const fs::path root = fs::path(run_dir) / "checkpoints";
  if (!fs::exists(root)) return found;
  for (const auto& entry : fs::directory_iterator(root)) {
    const auto name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind("step_", 0) != 0) continue;
    const auto digits = name.substr(5);
    if (digits.empty() || digits.size() > 18 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    found.emplace_back(std::stoll(digits), entry.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

json file_entry(const fs::path& path) {
  uint64_t bytes = 0;
  const uint32_t crc = file_crc32(path.string(), &bytes);
  return {{"bytes", bytes}, {"crc32", crc}};
}

}  // namespace

TensorDict named_tensors(torch::nn::Module& module, const std::vector<std::string>& names) {
  const auto all = module_state(module);
  TensorDict out;
  for (const auto& n : names) {
    auto it = all.find(n);
    if (it == all.end()) throw std::logic_error("checkpoint: the model has no tensor \"" + n + "\"");
    out[n] = it->second;
  }
  return out;
}

namespace {

// sum_i w_i x_i over the flat (row-major) index i, w_i = 1 + frac(i (sqrt(5) - 1) / 2): weights in
// [1, 2) that never repeat, so values moved between positions (two rows swapped, heads permuted)
// change it where the sum and the sum of squares stay. In chunks, so that the weights never take
// more memory than a chunk. x: (n) float64.
double position_weighted_sum(const at::Tensor& x) {
  constexpr int64_t kChunk = int64_t{1} << 22;
  constexpr double kGolden = 0.6180339887498949;
  const int64_t n = x.numel();
  double total = 0;
  for (int64_t lo = 0; lo < n; lo += kChunk) {
    const int64_t len = std::min(kChunk, n - lo);
    const auto w = at::arange(lo, lo + len, x.options()).mul_(kGolden).frac_().add_(1.0);  // (len)
    total += x.narrow(0, lo, len).dot(w).item<double>();
  }
  return total;
}

}  // namespace

json base_fingerprint(torch::nn::Module& model, const std::vector<std::string>& frozen) {
  at::NoGradGuard no_grad;
  json out = json::object();
  for (const auto& [name, t] : named_tensors(model, frozen)) {
    const auto x = t.to(at::kCPU, at::kDouble).reshape({-1}).contiguous();  // (numel)
    out[name] = {{"shape", t.sizes().vec()},
                 {"sum", x.sum().item<double>()},
                 {"sum_sq", x.square().sum().item<double>()},
                 {"weighted_sum", position_weighted_sum(x)}};
  }
  return out;
}

std::string fingerprint_mismatch(const json& saved, const json& now) {
  for (const auto& [name, want] : saved.items()) {
    if (!want.is_object() || !want.contains("shape") || !want.contains("sum") || !want.contains("sum_sq")) {
      return name + ": the checkpoint's fingerprint entry is not readable (" + want.dump().substr(0, 80) + ")";
    }
    if (!now.contains(name)) return name + ": in the checkpoint's base, not in this one";
    const auto& got = now.at(name);
    if (got.at("shape") != want.at("shape")) {
      return name + ": shape " + want.at("shape").dump() + " in the checkpoint's base, " + got.at("shape").dump() + " now";
    }
    // Fingerprints written before the weighted sum have only the two sums; they are compared on those.
    for (const char* k : {"sum", "sum_sq", "weighted_sum"}) {
      if (!want.contains(k)) continue;
      if (!want.at(k).is_number()) {
        return name + ": " + k + " " + want.at(k).dump() + " in the checkpoint's fingerprint is not a number";
      }
      const double a = want.at(k), b = got.at(k);
      if (std::abs(a - b) > 1e-9 * std::max({1.0, std::abs(a), std::abs(b)})) {
        return name + ": " + k + " " + json(a).dump() + " in the checkpoint's base, " + json(b).dump() + " now";
      }
    }
  }
  for (const auto& [name, v] : now.items()) {
    if (!saved.contains(name)) return name + ": in this base, not in the checkpoint's";
  }
  return "";
}

void save_checkpoint(const std::string& run_dir, const TensorDict& trained, const Optimizer& optimizer,
                     const TrainState& state, const json& meta, int keep) {
  static int64_t saves = 0;  // this process's checkpoint writes, for fault injection
  ++saves;
  const fs::path root = fs::path(run_dir) / "checkpoints";
  if (fs::exists(root)) {  // temporaries of a save that was killed
    for (const auto& entry : fs::directory_iterator(root)) {
      if (entry.path().filename().string().rfind(".tmp_", 0) == 0) fs::remove_all(entry.path());
    }
  }
  const fs::path final_dir = root / ("step_" + std::to_string(state.step));
  const fs::path tmp = root / (".tmp_step_" + std::to_string(state.step));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  save_tensor_dict(trained, (tmp / "trained.pt").string());
  if (fault_requested("kill_in_checkpoint", saves)) std::raise(SIGKILL);
  save_tensor_dict(optimizer.state_dict(), (tmp / "optimizer.pt").string());
  json st = state.to_json();
  if (meta.is_object()) {
    for (const auto& [k, v] : meta.items()) st[k] = v;
  }
  save_tensor_dict(generator_states(), (tmp / "rng.pt").string());
  write_json_atomic((tmp / "state.json").string(), st);
  json manifest = {{"step", state.step}, {"files", json::object()}};
  for (const char* f : {"trained.pt", "optimizer.pt", "rng.pt", "state.json"}) {
    fsync_path((tmp / f).string());
    manifest["files"][f] = file_entry(tmp / f);
  }
  write_json_atomic((tmp / kManifest).string(), manifest);  // fsynced
  fsync_path(tmp.string());
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
  fsync_path(root.string());
  auto all = checkpoints(run_dir);
  for (size_t i = 0; i + static_cast<size_t>(std::max(keep, 1)) < all.size(); ++i) {
    fs::remove_all(all[i].second);
  }
}

std::string verify_checkpoint(const std::string& dir) {
  const fs::path manifest_path = fs::path(dir) / kManifest;
  if (!fs::exists(manifest_path)) return "no manifest.json (incomplete checkpoint)";
  json manifest;
  try {
    manifest = read_json_file(manifest_path.string());
    if (!manifest.contains("files") || !manifest["files"].is_object() || manifest["files"].empty()) {
      return "manifest.json: expected an object \"files\"";
    }
    for (const auto& [name, want] : manifest["files"].items()) {
      const fs::path f = fs::path(dir) / name;
      if (name.find('/') != std::string::npos || !fs::exists(f)) return name + ": missing";
      const json got = file_entry(f);
      if (got["bytes"] != want.at("bytes")) {
        return name + ": " + got["bytes"].dump() + " bytes, the manifest says " +
               want.at("bytes").dump() + " (truncated?)";
      }
      if (got["crc32"] != want.at("crc32")) return name + ": checksum mismatch (corrupted)";
    }
  } catch (const std::exception& e) {
    return std::string("manifest.json: unreadable (") + e.what() + ")";
  }
  return "";
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir,
                                             std::vector<std::string>* rejected) {
  auto all = checkpoints(run_dir);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const std::string dir = it->second.string();
    const std::string problem = verify_checkpoint(dir);
    if (problem.empty()) return dir;
    if (rejected) rejected->push_back(dir + ": " + problem);
  }
  return std::nullopt;
}

json checkpoint_meta(const std::string& dir) { return read_json_file(dir + "/state.json"); }

TrainState load_checkpoint(const std::string& dir, torch::nn::Module& model, const std::vector<std::string>& trained,
                           Optimizer& optimizer, std::string* warning) {
  // A checkpoint from before trained.pt holds the whole model in model.pt.
  const std::string file = fs::exists(dir + "/trained.pt") ? dir + "/trained.pt" : dir + "/model.pt";
  const auto saved = load_tensor_dict(file);
  auto targets = named_tensors(model, trained);
  at::NoGradGuard no_grad;
  for (auto& [name, target] : targets) {
    auto it = saved.find(name);
    if (it == saved.end()) {
      throw std::runtime_error(file + ": missing tensor \"" + name + "\" (a checkpoint of another adapter setup?)");
    }
    if (!it->second.sizes().equals(target.sizes())) {
      throw std::runtime_error(file + ": " + name + ": expected shape " + c10::str(target.sizes()) + ", got " +
                               c10::str(it->second.sizes()));
    }
    target.copy_(it->second);
  }
  optimizer.load_state_dict(load_tensor_dict(dir + "/optimizer.pt"));
  const std::string problem = restore_generator_states(load_tensor_dict(dir + "/rng.pt"));
  if (warning) *warning = problem;
  return TrainState::from_json(checkpoint_meta(dir));
}

}  // namespace lorascope
