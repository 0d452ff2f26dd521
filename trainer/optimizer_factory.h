// Builds optimizers and schedules from the "optim" / "schedule" sections of any config.
//   optim.name: muon   Muon as its users know it: momentum 0.95, Nesterov, 5 Newton-Schulz steps
//               specgd the paper's SpecGD: exact U V^T, momentum 0
//               normuon Muon + NorMuon's row-wise normalization (optim.normuon_beta2/eps/rescale)
//               lora_fa LoRA-FA (LoRA fine-tuning only; built by trainer/optimizer_routing.cpp)
//               sgd | gd (= sgd, momentum 0) | adamw |
//               hybrid (muon for 2-D tensors, adamw for the rest; the trainer treats it as muon)
// optim.momentum / nesterov / orthogonalizer are unset by default and take the named
// optimizer's defaults (optim/muon.h MuonOptions, specgd_options()); resolved_optim() fills them.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>

#include "optim/hybrid.h"
#include "optim/lr_schedule.h"
#include "optim/normuon.h"
#include "optim/optimizer.h"
#include "trainer/config.h"

namespace lorascope {

// Declares the optim.* and schedule.* keys (shared by every command's schema).
void add_optimizer_keys(ConfigSchema& schema);
// Cross-key checks: specgd/gd with momentum, nesterov without momentum, ... (ConfigError).
void check_optimizer_config(const nlohmann::json& config, const std::string& where);
// `optim` (an optim section, at least "name") with the schema's defaults (add_optimizer_keys) for
// the keys it leaves out, as a config file resolves it: for callers without a config file
// (benchmarks, tests). Keys whose default is unset stay absent (resolved_optim() fills them).
nlohmann::json optim_with_defaults(nlohmann::json optim);
// The optim section with the keys left unset filled from the named optimizer's defaults
// (momentum, nesterov, orthogonalizer; adamw_weight_decay = weight_decay).
nlohmann::json resolved_optim(const nlohmann::json& optim);
// Muon's options from optim.*; the AdamW side of a Muon run (optim.adamw_lr, adamw_weight_decay).
MuonOptions muon_side_options(const nlohmann::json& optim);
AdamWOptions adamw_side_options(const nlohmann::json& optim);
NorMuonOptions normuon_options(const nlohmann::json& optim);

std::unique_ptr<Optimizer> make_optimizer(const nlohmann::json& optim,
                                          std::vector<at::Tensor> params);
// Muon (optim.lr) on split.muon and AdamW (optim.adamw_lr) on split.adamw: the optimizer of
// optim.name muon/specgd/hybrid for transformers, where only some tensors are matrices to
// orthogonalize (LoRA factors, hidden weights).
std::unique_ptr<Optimizer> make_hybrid(const nlohmann::json& optim, ParamSplit split);
LrSchedule make_schedule(const nlohmann::json& schedule, int64_t total_steps);

}  // namespace lorascope
