// LoRA adapters, with PEFT's conventions (tuners/lora):
//   y = base(x) + scaling * lora_B(lora_A(dropout(x))),  lora_A: (r, in), lora_B: (out, r)
//   scaling = alpha / r, or alpha / sqrt(r) with rslora
// Every linear layer of lorascope's models is a lorascope::Linear that can carry one adapter,
// registered as submodules "lora_A" and "lora_B" (parameter names
// "<module path>.lora_A.weight", "<module path>.lora_B.weight", PEFT's keys without the adapter
// name). The adapter's name is its module path, also its key in logs and saved files.
#pragma once

#include <torch/nn/module.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lorascope {

struct LoraConfig {
  int64_t r = 8;
  double alpha = 16;
  bool rslora = false;
  double dropout = 0.0;
  // A linear layer is adapted when its qualified name equals a target or ends with "." + target
  // (e.g. "q_proj", "query"), or fully matches target_regex; exclusions win (same name rule).
  // A non-empty target_regex replaces the list, as a string target_modules does in PEFT.
  std::vector<std::string> targets = {"q_proj", "v_proj"};
  std::string target_regex;
  std::vector<std::string> exclude;
  // "peft":     A Kaiming-uniform (a = sqrt(5)), B = 0          (PEFT default)
  // "gaussian": A ~ N(0, init_scale^2), B = 0                    (the paper's small init)
  // "spectral": A = sqrt(S_r) V_r^T, B = U_r sqrt(S_r) of the base weight's top-r SVD, scaled so
  //             that scaling * B A equals the top-r part, which is subtracted from the base
  //             weight (PiSSA-style) so the model output is unchanged at init.
  // "olora":    B = Q_r, A = R_r of the base weight's thin QR, subtracted from the base (OLoRA,
  //             PEFT's "olora"; models/lora_init.h).
  // "lora_ga", "lora_ga_peft", "lora_one": from the full-weight gradient on the first training
  //             batches (models/lora_init.h states each variant and its scaling). attach_lora
  //             gives them the "peft" init (B = 0, so the output is the base's); the trainer then
  //             computes the gradients and calls apply_gradient_lora_init.
  std::string init = "peft";
  double init_scale = 1e-3;
  double init_gamma = 16;  // lora_ga / lora_ga_peft: stable gamma; lora_one: gamma
  // Modules trained in full besides the adapters (e.g. the classifier head "score").
  std::vector<std::string> modules_to_save;
  // PEFT's rank_pattern / alpha_pattern: a module whose dotted name matches a pattern (regex on
  // the name's tail, (.*\.)?(PATTERN)$, the first matching pattern in order) gets that r / alpha
  // instead of r / alpha. Scaling is then alpha_m / r_m (alpha_m / sqrt(r_m) with rslora).
  std::vector<std::pair<std::string, int64_t>> rank_pattern;
  std::vector<std::pair<std::string, double>> alpha_pattern;
};

// Inits that subtract the adapter's starting product from the base weight (spectral, olora,
// lora_ga, lora_ga_peft): their adapter is only valid with that modified base, and a PEFT export
// carries the starting factors too (models/peft_adapter.h).
bool lora_init_changes_base(const std::string& init);
// Inits computed from the base weight's gradient (lora_ga, lora_ga_peft, lora_one).
bool lora_init_needs_gradient(const std::string& init);

// r and alpha of the module `name` under the config's patterns (PEFT's get_pattern_key).
std::pair<int64_t, double> lora_rank_alpha(const LoraConfig& config, const std::string& name);
// alpha / r, or alpha / sqrt(r) with rslora.
double lora_scaling(const LoraConfig& config, int64_t r, double alpha);

// A view of one attached adapter for monitors, optimizers and checkpoints.
struct AdapterRef {
  std::string name;  // module path, e.g. "model.layers.0.self_attn.q_proj"
  at::Tensor A;      // lora_A.weight (r, in)  -- the live parameter
  at::Tensor B;      // lora_B.weight (out, r)
  double scaling;
};

// Attaches adapters to every matching linear layer, freezes all other parameters except those
// of modules_to_save, and returns the adapters in module order. Throws std::runtime_error naming
// the unmatched target and listing the available linear layer names if a target matches nothing.
std::vector<AdapterRef> attach_lora(torch::nn::Module& model, const LoraConfig& config,
                                    at::Generator& gen);
// LoRA-GA / LoRA-One (config.init): replaces the placeholder factors of each adapted layer by the
// method's factors from its base weight's gradient (`gradients`: layer name -> dL/dW (out, in),
// one for every adapter), and corrects the base weight where the method does (lora_ga*). Every
// layer is computed before any is changed, so a failure leaves the model as it was.
void apply_gradient_lora_init(torch::nn::Module& model, const LoraConfig& config,
                              const std::map<std::string, at::Tensor>& gradients);
// The adapters of the model's role table (models/parameter_roles.h), in module order.
std::vector<AdapterRef> find_adapters(torch::nn::Module& model);
// Qualified names of every lorascope::Linear in the model.
std::vector<std::string> linear_layer_names(torch::nn::Module& model);
class Linear;
std::map<std::string, std::shared_ptr<Linear>> linear_layers_by_name(torch::nn::Module& model);
// PEFT's modules_to_save rule: the parameter-name prefixes ("classifier.") of the modules that a
// name or suffix selects; throws for a name that matches nothing.
std::vector<std::string> modules_to_save_prefixes(torch::nn::Module& model, const std::vector<std::string>& modules);
// requires_grad only for adapter factors and parameters under the given prefixes (the
// parameter-role table's LoRA rule, models/parameter_roles.h).
void freeze_for_lora(torch::nn::Module& model, const std::vector<std::string>& saved_prefixes);
// W <- W + scaling * B A (checks the result is finite) / W <- W - scaling * B A; forward is
// unchanged either way (a merged layer skips its adapter).
void merge_lora(torch::nn::Module& model);
void unmerge_lora(torch::nn::Module& model);

}  // namespace lorascope
