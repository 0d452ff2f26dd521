#include "trainer/optimizer_factory.h"

#include <algorithm>
#include <cmath>

#include "optim/adamw.h"
#include "optim/hybrid.h"
#include "optim/muon.h"
#include "optim/sgd.h"

namespace lorascope {

using nlohmann::json;

void add_optimizer_keys(ConfigSchema& s) {
  s.string("optim.name", "muon", {"muon", "specgd", "sgd", "gd", "adamw", "hybrid"},
           "optimizer; specgd = muon with momentum 0, gd = sgd with momentum 0");
  auto& lr = s.number("optim.lr", 0.01, "base learning rate (Muon: step length in spectral norm)");
  lr.min = 0;
  lr.min_exclusive = true;
  auto& mom = s.number("optim.momentum", 0.0, "momentum mu (paper eq. (1)); 0 = no momentum");
  mom.min = 0;
  mom.max = 0.9999;
  s.boolean("optim.nesterov", false, "Nesterov momentum");
  s.string("optim.orthogonalizer", "exact", {"exact", "smoothed", "newton_schulz"},
           "Muon's T: exact U V^T, smoothed T_beta (eq. 6), or Newton-Schulz quintic");
  s.number("optim.beta", 0.0, "beta of T_beta (smoothed only)").min = 0;
  auto& ns = s.integer("optim.ns_steps", 5, "Newton-Schulz iterations");
  ns.min = 1;
  ns.max = 100;
  s.string("optim.lr_scaling", "none", {"none", "original", "match_adamw_rms"},
           "Muon per-matrix lr scale: 1, sqrt(max(1,rows/cols)) or 0.2*sqrt(max(rows,cols))");
  s.number("optim.weight_decay", 0.0, "decoupled weight decay (muon, adamw); L2 for sgd").min = 0;
  auto& b1 = s.number("optim.beta1", 0.9, "AdamW first-moment decay");
  b1.min = 0;
  b1.max = 0.9999;
  auto& b2 = s.number("optim.beta2", 0.999, "AdamW second-moment decay");
  b2.min = 0;
  b2.max = 0.999999;
  auto& eps = s.number("optim.eps", 1e-8, "AdamW epsilon");
  eps.min = 0;
  eps.min_exclusive = true;
  auto& alr = s.number("optim.adamw_lr", 1e-3, "hybrid only: AdamW's learning rate");
  alr.min = 0;
  alr.min_exclusive = true;
  s.string("schedule.kind", "constant", {"constant", "cosine"}, "learning-rate schedule");
  s.integer("schedule.warmup_steps", 0, "linear warmup steps").min = 0;
  auto& wf = s.number("schedule.warmup_fraction", 0.0,
                      "warmup as a fraction of all steps (rounded; the larger of this and warmup_steps)");
  wf.min = 0;
  wf.max = 0.5;
  auto& mf = s.number("schedule.min_factor", 0.0, "cosine: final lr as a fraction of the base");
  mf.min = 0;
  mf.max = 1;
}

void check_optimizer_config(const json& config, const std::string& where) {
  const auto& o = config.at("optim");
  const std::string name = o.at("name");
  const double mu = o.at("momentum");
  if ((name == "specgd" || name == "gd") && mu != 0.0) {
    throw ConfigError(where + ": optim.momentum: " + name +
                      " has no momentum; use optim.name=" + (name == "gd" ? "sgd" : "muon") +
                      " for momentum " + json(mu).dump());
  }
  if (o.at("nesterov").get<bool>() && mu == 0.0) {
    throw ConfigError(where + ": optim.nesterov: expected optim.momentum > 0 with nesterov");
  }
}

namespace {
MuonOptions muon_options(const json& o) {
  const std::string name = o.at("name");
  MuonOptions muon;
  muon.lr = o.at("lr");
  muon.momentum = name == "specgd" ? 0.0 : o.at("momentum").get<double>();
  muon.nesterov = o.at("nesterov");
  muon.ortho.kind = parse_ortho_kind(o.at("orthogonalizer"));
  muon.ortho.beta = o.at("beta");
  muon.ortho.ns_steps = o.at("ns_steps");
  muon.lr_scaling = parse_lr_scaling(o.at("lr_scaling"));
  muon.weight_decay = o.at("weight_decay");
  return muon;
}

AdamWOptions adamw_options(const json& o) {
  AdamWOptions adamw;
  adamw.lr = o.at("lr");
  adamw.beta1 = o.at("beta1");
  adamw.beta2 = o.at("beta2");
  adamw.eps = o.at("eps");
  adamw.weight_decay = o.at("weight_decay");
  return adamw;
}
}  // namespace

std::unique_ptr<Optimizer> make_hybrid(const json& o, ParamSplit split) {
  auto adamw = adamw_options(o);
  adamw.lr = o.at("adamw_lr");
  return std::make_unique<Hybrid>(std::move(split), muon_options(o), adamw);
}

std::unique_ptr<Optimizer> make_optimizer(const json& o, std::vector<at::Tensor> params) {
  const std::string name = o.at("name");
  const MuonOptions muon = muon_options(o);
  AdamWOptions adamw = adamw_options(o);
  if (name == "muon" || name == "specgd") return std::make_unique<Muon>(std::move(params), muon);
  if (name == "adamw") return std::make_unique<AdamW>(std::move(params), adamw);
  if (name == "hybrid") {
    adamw.lr = o.at("adamw_lr");
    return std::make_unique<Hybrid>(split_for_muon(params), muon, adamw);
  }
  SGDOptions sgd;
  sgd.lr = o.at("lr");
  sgd.momentum = name == "gd" ? 0.0 : o.at("momentum").get<double>();
  sgd.nesterov = o.at("nesterov");
  sgd.weight_decay = o.at("weight_decay");
  return std::make_unique<SGD>(std::move(params), sgd);
}

LrSchedule make_schedule(const json& s, int64_t total_steps) {
  LrSchedule schedule;
  schedule.kind = parse_schedule_kind(s.at("kind"));
  const auto fraction_steps =
      static_cast<int64_t>(std::llround(s.value("warmup_fraction", 0.0) * static_cast<double>(total_steps)));
  schedule.warmup_steps = std::max(s.at("warmup_steps").get<int64_t>(), fraction_steps);
  schedule.min_factor = s.at("min_factor");
  schedule.total_steps = total_steps;
  return schedule;
}

}  // namespace lorascope
