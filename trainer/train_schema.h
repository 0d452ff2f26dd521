// Config keys of the transformer recipes (pretrain, finetune, compare) and their typed view.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "data/text_datasets.h"
#include "models/lora.h"
#include "models/transformer_config.h"
#include "trainer/config.h"

namespace lorascope {

const ConfigSchema& train_schema();
// Cross-key checks (ConfigError): sizes divide, fractions fit, optimizer combinations.
void check_train_config(const nlohmann::json& config, const std::string& where);

struct TrainConfig {
  std::string name;
  std::string mode;  // "pretrain" | "finetune"
  int64_t seed = 0;
  std::string device;
  bool bf16 = false;
  TransformerConfig model;  // pretrain: the architecture; finetune: read from the base
  std::string base;         // finetune: directory written by pretrain, or a Hugging Face checkpoint
  std::string tokenizer_path;
  int64_t tokenizer_vocab = 0;
  std::string data_kind, data_path;
  LoadOptions load;
  double validation_fraction = 0.1, test_fraction = 0.1;
  int64_t max_len = 128;
  LoraConfig lora;
  std::string adapter_path;  // finetune: PEFT adapter to start from ("" = fresh adapters)
  bool export_peft = true;
  int64_t init_batches = 8;  // lora.init_batches: micro-batches of a gradient-based init
  bool train_head = true;  // classification: train the new head when modules_to_save is empty
  nlohmann::json optim, schedule;
  int64_t epochs = 1, max_steps = 0, batch_size = 16, grad_accum = 1;
  double clip_norm = 1.0;
  int64_t eval_every = 0, log_every = 10, checkpoint_every = 0, monitor_every = 10;
  int64_t eval_batches = 0;
  int64_t geometry_every = 0, geometry_base_k = 0, intruder_k = 10;  // monitor.*: GeometryOptions
  double intruder_epsilon = 0.5;
  std::string base_svd_dtype = "float64";  // monitor.base_svd_dtype: "float64" | "float32"
  bool tensorboard = false;  // logging.tensorboard
  std::string nonfinite;  // "stop" | "skip"
  int64_t halt_at_step = 0;
  int64_t keep_checkpoints = 3;

  static TrainConfig from_json(const nlohmann::json& config);
};

}  // namespace lorascope
