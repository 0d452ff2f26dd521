// The transformer recipes (torchtune-style: one readable function from config to results).
//
//   pretrain: data -> tokenizer (trained on the training split unless given) -> model (random)
//             -> optimizer over every parameter -> causal-LM training. Writes the base model:
//             RUN_DIR/{model.pt, model_config.json, tokenizer.model}.
//   finetune: base model + its tokenizer -> task head (classification for labelled data, else
//             the LM head) -> LoRA adapters (base frozen) -> optimizer (muon/hybrid: Muon on the
//             adapter matrices, AdamW on the head; adamw; sgd) -> training with evaluation,
//             per-adapter spectra and checkpoints.
//
// Both write RUN_DIR/{config.json, metrics.jsonl, summary.json} and checkpoints; --resume
// continues from the newest checkpoint on the same trajectory (same batches, same RNG state).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "trainer/config.h"

namespace lorascope {

struct TrainOutcome {
  std::string status;  // "completed" | "diverged"
  nlohmann::json summary;
};

// Checks what can be checked before writing anything (data present, base readable).
void validate_train_run(const RunSpec& run);
TrainOutcome run_train(const RunSpec& run, const std::string& run_dir, bool resume);

}  // namespace lorascope
