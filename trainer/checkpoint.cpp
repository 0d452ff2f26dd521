#include "trainer/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "data/matrix_json.h"
#include "optim/state_io.h"
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
std::vector<std::pair<int64_t, fs::path>> checkpoints(const std::string& run_dir) {
  std::vector<std::pair<int64_t, fs::path>> found;
  const fs::path root = fs::path(run_dir) / "checkpoints";
  if (!fs::exists(root)) return found;
  for (const auto& entry : fs::directory_iterator(root)) {
    const auto name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind("step_", 0) != 0) continue;
    if (!fs::exists(entry.path() / "state.json")) continue;
    try {
      found.emplace_back(std::stoll(name.substr(5)), entry.path());
    } catch (const std::exception&) {
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}
}  // namespace

void save_checkpoint(const std::string& run_dir, torch::nn::Module& model, const Optimizer& optimizer,
                     const TrainState& state, const json& config, int keep) {
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
  save_tensor_dict(module_state(model), (tmp / "model.pt").string());
  save_tensor_dict(optimizer.state_dict(), (tmp / "optimizer.pt").string());
  json st = state.to_json();
  if (!config.is_null()) st["config"] = config;
  // The default CPU generator drives dropout; its state makes the resumed trajectory identical.
  auto gen_state = at::detail::getDefaultCPUGenerator().get_state();
  save_tensor_dict({{"cpu_generator", gen_state}}, (tmp / "rng.pt").string());
  write_json_atomic((tmp / "state.json").string(), st);
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
  auto all = checkpoints(run_dir);
  for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) fs::remove_all(all[i].second);
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  auto all = checkpoints(run_dir);
  if (all.empty()) return std::nullopt;
  return all.back().second.string();
}

TrainState load_checkpoint(const std::string& dir, torch::nn::Module& model, Optimizer& optimizer) {
  load_module_state(model, load_tensor_dict(dir + "/model.pt"), dir + "/model.pt");
  optimizer.load_state_dict(load_tensor_dict(dir + "/optimizer.pt"));
  auto rng = load_tensor_dict(dir + "/rng.pt");
  at::Generator gen = at::detail::getDefaultCPUGenerator();  // a handle to the global one
  gen.set_state(rng.at("cpu_generator"));
  return TrainState::from_json(read_json_file(dir + "/state.json"));
}

}  // namespace lorascope
