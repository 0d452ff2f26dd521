// The transformer recipes (torchtune-style: one readable function from config to results).
//
//   pretrain: data -> tokenizer (trained on the training split unless given) -> model (random)
//             -> optimizer over every parameter -> causal-LM training. Writes the base model:
//             RUN_DIR/{model.pt, model_config.json, tokenizer.model}.
//   finetune: base model + its tokenizer -> task head (classification for labelled data, else
//             the LM head) -> LoRA adapters (base frozen) -> optimizer routed by parameter role
//             (trainer/optimizer_routing.h: muon/specgd on the adapter factors, AdamW on the
//             modules trained in full; adamw; sgd) -> training with evaluation, per-adapter
//             spectra and checkpoints.
//
// run_train is setup (trainer/train_session.h), then train(): a loop around train_step() with
// ordered hooks (trainer/train_hooks.h), inside run_in_directory (trainer/run_directory.h).
// Both write RUN_DIR/{config.json, metrics.jsonl, summary.json} and checkpoints of what trains;
// --resume continues from the newest checkpoint on the same trajectory (same batches, same RNG
// state) after checking the config and the base model's fingerprint.
//
// Data parallel (a DataParallel with a Communicator): every rank builds the same global batches
// (train.batch_size is the global micro-batch, the data order does not depend on the world size)
// and reads its contiguous share of rows; each rank's loss is its rows' sum divided by the
// global batch's count, so the all-reduced sum of gradients (trainer/grad_reducer.h) is the
// gradient of the global mean loss and the logged loss is the global mean. Muon's Newton-Schulz
// is sharded across the ranks (optim/muon.h). Rank 0 alone evaluates, runs the spectral
// monitor and writes metrics, summary and checkpoints; every rank resumes from them. With
// dropout > 0 the ranks draw different masks, so only dropout-free runs match one process.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "trainer/config.h"
#include "trainer/distributed.h"

namespace lorascope {

struct TrainOutcome {
  std::string status;  // "completed" | "diverged" | "halted" (then summary is null)
  nlohmann::json summary;
};

struct Session;
struct TrainState;
class MetricsSink;
class TrainHook;

struct DataParallel {
  Communicator* comm = nullptr;
  bool shard_muon = true;   // split Newton-Schulz across ranks (false: every rank runs all of it)
  bool overlap = true;      // all-reduce buckets from gradient hooks during backward
  int64_t bucket_bytes = 25 << 20;  // DDP's default bucket size
};

// Checks what can be checked before writing anything (data present, base readable).
void validate_train_run(const RunSpec& run);
// The training loop alone, from state `from`, records to `metrics`: testable without files.
TrainOutcome train(Session& s, const TrainState& from, MetricsSink& metrics,
                   std::vector<std::unique_ptr<TrainHook>>& hooks);
// dp: null or a DataParallel whose comm is null for a single-process run.
TrainOutcome run_train(const RunSpec& run, const std::string& run_dir, bool resume,
                       const DataParallel* dp = nullptr);

}  // namespace lorascope
