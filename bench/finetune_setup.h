// Setup shared by the LoRA fine-tuning benchmarks (lorascope_bench finetune, minilm_step): the
// model shapes they time, a model with its adapters attached, and the optimizer the trainer would
// build for it. What trains and which optimizer takes it come from the trainer's own decisions
// (models/parameter_roles.h, trainer/optimizer_routing.h), never from parameter names.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "models/lora.h"
#include "models/parameter_roles.h"
#include "models/sequence_model.h"
#include "optim/optimizer.h"

namespace lorascope::bench {

// LLaMA-3.2-1B with `layers` blocks (16 in the real model).
TransformerConfig llama32_1b(int64_t layers);
// The demo's base model (configs/lm/pretrain_brown.json: runs/base/brown).
TransformerConfig demo_small_llama();
// all-MiniLM-L6-v2 (BERT, 6 layers, width 384, the normalized mean-pooled embedding).
TransformerConfig minilm_config();

struct FinetuneSpec {
  // llama1b (random, causal LM) | small (the demo's LLaMA, random, 2-label classification) |
  // minilm (the real all-MiniLM-L6-v2 from minilm_dir, 2-label classification) |
  // minilm_random (MiniLM's shapes, random weights)
  std::string model = "llama1b";
  std::string minilm_dir = ".cache/models/all-MiniLM-L6-v2";
  std::string targets = "qv";  // qv | all (every linear layer of the blocks)
  int64_t r = 8;               // alpha = 2 r
  int layers = 16;             // llama1b only
};

// A model with its adapters attached (a classification head trained in full), and the LoRA
// config it got.
struct FinetuneModel {
  std::shared_ptr<SequenceModel> model;
  LoraConfig lora;
  // The role table as the trainer decides it (adapter factors, the modules_to_save trained in
  // full, the rest frozen), applied to requires_grad. After model->to(device), which may replace
  // the tensors.
  ParameterRoles roles() const;
};

// Model, then adapters, drawn from gen in that order. Throws naming the directory when minilm's
// checkpoint is missing.
FinetuneModel build_finetune_model(const FinetuneSpec& spec, at::Generator& gen);

// The trainer's optimizer for the optim section `optim` (optim_with_defaults() fills what it leaves
// out) over the parameters that train in `roles`: routing_rules + route_parameters +
// make_routed_optimizer, e.g. Muon on the adapter factors and AdamW on the head for muon.
std::unique_ptr<Optimizer> routed_optimizer(const nlohmann::json& optim, const ParameterRoles& roles);

// CPU time of the whole process (all threads), seconds: on a shared machine wall time also counts
// the waits for a core.
double cpu_seconds();

}  // namespace lorascope::bench
