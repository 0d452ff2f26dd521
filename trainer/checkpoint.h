// Training checkpoints: RUN_DIR/checkpoints/step_<N>/{trained.pt, optimizer.pt, rng.pt, state.json,
// manifest.json}.
//
// trained.pt holds only what trains (LoRA: the adapter factors and the modules trained in full;
// full training: every parameter and buffer); the frozen base is not copied into every checkpoint
// (about 5 GB for a 1B model), state.json records its fingerprint instead (base_fingerprint()) and
// resuming checks it. Checkpoints written before this (model.pt with the whole model) still load:
// their trained tensors are read from model.pt.
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

// The named tensors of `model` whose names are in `names` (detached, shared storage).
TensorDict named_tensors(torch::nn::Module& model, const std::vector<std::string>& names);

// A fingerprint of the frozen tensors: per tensor its shape and float64 sum, sum of squares and
// sum weighted by a fixed sequence over the positions (which sees a permutation within the
// tensor, e.g. two rows swapped). Equal fingerprints mean (up to a collision of all three sums)
// the same base weights.
nlohmann::json base_fingerprint(torch::nn::Module& model, const std::vector<std::string>& frozen);
// Empty when equal, else the first difference named ("model.layers.0.mlp.up_proj.weight: sum
// 1.25 in the checkpoint, 1.5 now"). A fingerprint of older checkpoints (no weighted sum) is
// compared on the sums it has; an unreadable entry is named as such.
std::string fingerprint_mismatch(const nlohmann::json& saved, const nlohmann::json& now);

// meta (the resolved run config, the base fingerprint, ...) is merged into state.json so that
// --resume can refuse a checkpoint written under other settings or on another base. Besides the
// trained tensors and the optimizer, the checkpoint holds the random generators' states
// (trainer/rng_state.h).
void save_checkpoint(const std::string& run_dir, const TensorDict& trained, const Optimizer& optimizer,
                     const TrainState& state, const nlohmann::json& meta = nullptr, int keep = 3);
// Empty when every file of the checkpoint DIR matches its manifest, else what is wrong.
std::string verify_checkpoint(const std::string& dir);
// The newest checkpoint directory that passes verify_checkpoint, if any; each newer one that
// fails is appended to `rejected` as "DIR: reason".
std::optional<std::string> latest_checkpoint(const std::string& run_dir,
                                             std::vector<std::string>* rejected = nullptr);
// state.json of a checkpoint (its TrainState fields and the meta given to save_checkpoint).
nlohmann::json checkpoint_meta(const std::string& dir);
// Loads the tensors named in `trained` into the model (all must be present), the optimizer state and
// the generators. A note about generator states that could not be restored goes to *warning.
TrainState load_checkpoint(const std::string& dir, torch::nn::Module& model, const std::vector<std::string>& trained,
                           Optimizer& optimizer, std::string* warning = nullptr);

}  // namespace lorascope
