// What the transformer recipes build before training (setup) and the one step they repeat
// (train_step). trainer/train_recipe.cpp runs the loop around them with hooks
// (trainer/train_hooks.h).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/batching.h"
#include "data/text_datasets.h"
#include "data/tokenizer.h"
#include "models/lora.h"
#include "models/parameter_roles.h"
#include "models/peft_adapter.h"
#include "models/sequence_model.h"
#include "optim/lr_schedule.h"
#include "optim/optimizer.h"
#include "trainer/checkpoint.h"
#include "trainer/distributed.h"
#include "trainer/grad_reducer.h"
#include "trainer/optimizer_routing.h"
#include "trainer/train_schema.h"

namespace lorascope {

// Everything the loop needs, built by setup() in this order: device, data and its seeded split,
// tokenizer, model (+ base weights, + adapters), parameter roles, optimizer routing, schedule.
struct Session {
  TrainConfig cfg;
  at::Device device = at::kCPU;
  DatasetSplits splits;
  std::shared_ptr<Tokenizer> tokenizer;
  std::vector<TokenizedExample> train, validation, test;
  std::vector<TokenizedExample> eval_sample;  // evaluated during training (trainer/evaluation_sample.h)
  std::shared_ptr<SequenceModel> model;
  ParameterRoles roles;             // decided once; freezing, routing, checkpoints, monitor read it
  std::vector<ParamGroup> groups;   // which optimizer trains which parameters
  std::unique_ptr<Optimizer> optimizer;
  LrSchedule schedule;
  int64_t batches_per_epoch = 0, total_steps = 0;
  int64_t skipped_records = 0;  // malformed dataset records left out (data.skip_malformed)
  bool classification = false;
  LoraConfig lora;                 // as attached or imported (what a PEFT export records)
  InitialAdapters initial_adapters;  // starting factors of an init that changed the base (export)
  std::vector<std::string> trained;  // names of the tensors a checkpoint holds
  nlohmann::json base_fingerprint;   // of the frozen tensors (null for full training)
  // Data parallel (null comm: one process).
  Communicator* comm = nullptr;
  std::unique_ptr<GradReducer> reducer;
  int rank = 0, world = 1;
  bool sharded_muon = false, overlap = false;  // for the summary

  const std::vector<AdapterRef>& adapters() const { return roles.adapters; }
};

bool is_classification(const TrainConfig& cfg);
// tokenizer.path, else the checkpoint's tokenizer.json, else its tokenizer.model.
std::string hf_tokenizer_path(const TrainConfig& c);

// ConfigError naming train.grad_accum when one step needs more than an epoch's micro-batches.
void check_grad_accum(const TrainConfig& c, int64_t micro_batches, int64_t examples);

// Builds the session; run_dir receives a trained tokenizer (pretrain). Throws ConfigError on
// unusable input (a grad_accum beyond an epoch's micro-batches, a tokenizer that does not fit).
void setup(Session& s, const std::string& run_dir);

// The model's logits for one batch on the session's device (mask only where padded, token type
// ids where the batch has them, bf16 autocast when configured).
at::Tensor forward_batch(Session& s, const Batch& b);

// One epoch's micro-batches of `data` (shuffled by seed and epoch for training).
std::vector<Batch> epoch_batches(const Session& s, const std::vector<TokenizedExample>& data, int64_t epoch,
                                 bool shuffle);

struct StepResult {
  double loss = 0;       // mean over the step's targets (all micro-batches, all ranks)
  double grad_norm = 0;  // global, before clipping
  double tokens = 0;     // tokens of the step's micro-batches
  double comm_seconds = 0, optimizer_seconds = 0;  // data-parallel wait, optimizer update
  std::string nonfinite;  // empty, or what was not finite ("loss is NaN"); then no update was made
};

// One optimizer step over micro-batches: the loss of each is its loss_sum over the step's total
// target count (trainer/sequence_loss.h), so the gradient is that of the mean over all the step's
// targets; after_backward runs between the last backward and the finiteness check (fault
// injection). A non-finite loss or gradient leaves the weights as they were.
StepResult train_step(Session& s, const std::vector<Batch>& micro, int64_t step,
                      const std::function<void()>& after_backward = {});

// Mean loss and accuracy (classification) or perplexity over `data`, in eval mode.
nlohmann::json evaluate(Session& s, const std::vector<TokenizedExample>& data);

}  // namespace lorascope
