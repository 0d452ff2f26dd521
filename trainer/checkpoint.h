// Training checkpoints: RUN_DIR/checkpoints/step_<N>/{model.pt, optimizer.pt, rng.pt, state.json,
// manifest.json}.
//
// Crash safety: a checkpoint is written into a temporary directory, each file is fsynced, then
// manifest.json (size and CRC-32 of every other file), then the directory is fsynced, renamed into
// place and its parent fsynced. Only then are the older ones beyond the newest `keep` deleted. A
// killed run therefore never loses its last complete checkpoint; a checkpoint damaged later (a
// truncated or flipped file) fails its manifest, and resuming falls back to the newest one that
// passes.
#pragma once

#include <torch/nn/module.h>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "optim/optimizer.h"

namespace lorascope {

struct TrainState {
  int64_t step = 0;            // optimizer steps done
  int64_t epoch = 0;           // current epoch
  int64_t batch = 0;           // micro-batches of this epoch already consumed
  int64_t skipped_steps = 0;   // steps skipped for non-finite values
  double tokens = 0;           // tokens trained on so far
  double seconds = 0;          // wall time of the run so far (summary rates stay right on resume)
  double last_loss = 0;        // loss of the last step (summary of a run resumed when complete)
  nlohmann::json to_json() const;
  static TrainState from_json(const nlohmann::json& j);
};

TensorDict module_state(torch::nn::Module& module);
// Copies tensors by name; throws naming the first missing key or shape mismatch. Keys listed in
// allow_missing_prefixes (e.g. a fresh classification head, adapters) may be absent.
void load_module_state(torch::nn::Module& module, const TensorDict& state, const std::string& where,
                       const std::vector<std::string>& allow_missing_prefixes = {});

// config (the resolved run config) is stored in state.json so that --resume can refuse a
// checkpoint written under other settings.
void save_checkpoint(const std::string& run_dir, torch::nn::Module& model, const Optimizer& optimizer,
                     const TrainState& state, const nlohmann::json& config = nullptr, int keep = 3);
// Empty when every file of the checkpoint DIR matches its manifest, else what is wrong.
std::string verify_checkpoint(const std::string& dir);
// The newest checkpoint directory that passes verify_checkpoint, if any; each newer one that
// fails is appended to `rejected` as "DIR: reason".
std::optional<std::string> latest_checkpoint(const std::string& run_dir,
                                             std::vector<std::string>* rejected = nullptr);
TrainState load_checkpoint(const std::string& dir, torch::nn::Module& model, Optimizer& optimizer);

}  // namespace lorascope
