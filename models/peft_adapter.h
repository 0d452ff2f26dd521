// LoRA adapters in PEFT's on-disk format (what PeftModel.save_pretrained writes and
// PeftModel.from_pretrained reads):
//   DIR/adapter_config.json      {"peft_type": "LORA", "task_type": "CAUSAL_LM" | "SEQ_CLS", "r",
//                                 "lora_alpha", "target_modules", "lora_dropout", "bias": "none",
//                                 "use_rslora", "modules_to_save", "fan_in_fan_out": false, ...}
//   DIR/adapter_model.safetensors base_model.model.<HF module path>.lora_A.weight (r, in),
//                                 ...lora_B.weight (out, r), and modules_to_save parameters as
//                                 base_model.model.<HF parameter name> (PEFT drops the adapter
//                                 name and the "modules_to_save" level on save).
// rank_pattern / alpha_pattern give some modules their own r / alpha (models/lora.h); PEFT matches
// them against Hugging Face module names, and so does the loader here.
// Module paths are Hugging Face's (models/hf_checkpoint.h), so an adapter trained here loads onto
// the transformers model of the same checkpoint, and one trained with PEFT loads here.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <utility>

#include "models/lora.h"
#include "models/parameter_roles.h"
#include "models/sequence_model.h"

namespace lorascope {

// The starting factors (A0, B0) of each adapted layer (lorascope name) under an init that
// subtracted s B0 A0 from the base weight (lora_init_changes_base: spectral, olora, lora_ga*).
using InitialAdapters = std::map<std::string, std::pair<at::Tensor, at::Tensor>>;
// Copies (on the CPU) of the model's adapter factors as they are now, right after an init that
// changed the base; empty for any other init (nothing to carry into an export).
InitialAdapters starting_factors(torch::nn::Module& model, const LoraConfig& lora);

// Writes the model's adapters (and the parameters of lora.modules_to_save) to dir. lora gives
// r, alpha, rslora, dropout and the target names recorded in adapter_config.json. Throws for a
// model without adapters.
// An adapter of an init that changed the base (lora_init_changes_base) is valid only with that
// base; with its starting factors (`initial`) it is written as PEFT writes PiSSA / OLoRA /
// LoRA-GA adapters for the unmodified base (save_pretrained's
// path_initial_model_for_weight_conversion): rank 2r, lora_A = [A; A0], lora_B = [B, -B0], and
// lora_alpha (and alpha_pattern) times 2, or sqrt(2) with rsLoRA, so the scaling is unchanged and
// W + s (B A - B0 A0) = W' + s B A. Without `initial` such an adapter is refused.
// A classifier on sentence-transformers pooling (config.pooling "mean" or "cls", MiniLM) is not
// what PEFT's SEQ_CLS models compute: the export then also writes dir/README.md saying so
// (pooled_head_readme) and the trainer warns.
void save_peft_adapter(SequenceModel& model, const LoraConfig& lora, const std::string& dir,
                       const std::string& base_model_name_or_path = "", const InitialAdapters* initial = nullptr);
// The same from the model's role table (models/parameter_roles.h), which says what trained: the
// adapters of roles.adapters, and the parameters whose role is trained_in_full, listed in
// adapter_config.json as roles.trained_in_full_modules (lora.modules_to_save is not read: a run
// started from a PEFT adapter trains the modules_to_save of that adapter). The overload above
// builds the table from lora.modules_to_save.
void save_peft_adapter(SequenceModel& model, const ParameterRoles& roles, const LoraConfig& lora,
                       const std::string& dir, const std::string& base_model_name_or_path = "",
                       const InitialAdapters* initial = nullptr);
std::string pooled_head_readme(const TransformerConfig& config);

// Attaches the adapters stored in dir to a model without adapters, loads modules_to_save
// parameters, and freezes everything else (ready for evaluation or continued training).
// Returns the adapter's LoraConfig. Throws naming the file and key: unsupported settings (DoRA,
// fan_in_fan_out, bias other than "none"), a module the model does not
// have, a shape mismatch, r not matching the config.
LoraConfig load_peft_adapter(SequenceModel& model, const std::string& dir);

// adapter_config.json as PEFT writes it (exposed for tests).
nlohmann::json peft_adapter_config(const LoraConfig& lora, const std::string& task_type,
                                   const std::string& family, const std::string& base_model_name_or_path);

}  // namespace lorascope
