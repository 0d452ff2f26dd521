#include "trainer/optimizer_factory.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "optim/adamw.h"
#include "optim/hybrid.h"
#include "optim/muon.h"
#include "optim/normuon.h"
#include "optim/sgd.h"

namespace lorascope {

using nlohmann::json;

void add_optimizer_keys(ConfigSchema& s) {
  s.string("optim.name", "muon", {"muon", "specgd", "normuon", "sgd", "gd", "adamw", "lora_fa", "hybrid"},
           "optimizer. muon = Muon as its users know it (momentum 0.95, Nesterov, 5 Newton-Schulz "
           "steps); specgd = the paper's SpecGD (exact U V^T, momentum 0); normuon = Muon plus "
           "NorMuon's row-wise second-moment normalization (optim.normuon_*); gd = sgd with momentum "
           "0; lora_fa = LoRA-FA as PEFT runs it (A frozen after init, B by HF AdamW on the "
           "preconditioned gradient s^-2 grad_B (A A^T + 1e-8 I)^-1; LoRA fine-tuning only); hybrid = "
           "muon (old name). Transformers: Muon/SpecGD/NorMuon on the adapter factors (LoRA) or "
           "hidden matrices (pretrain), AdamW (optim.adamw_lr, optim.adamw_weight_decay) on the rest");
  auto& lr = s.number("optim.lr", 0.01, "base learning rate (Muon: step length in spectral norm)");
  lr.min = 0;
  lr.min_exclusive = true;
  // Unset: the optimizer's own default (resolved_optim()), so that muon and specgd each mean
  // what their users expect and sgd keeps momentum 0.
  auto& mom = s.number("optim.momentum", nullptr,
                       "momentum mu (paper eq. (1)); default: muon 0.95, specgd/sgd/gd 0");
  mom.min = 0;
  mom.max = 0.9999;
  s.boolean("optim.nesterov", false, "Nesterov momentum; default: muon true, others false").default_value = nullptr;
  s.string("optim.orthogonalizer", nullptr, {"exact", "smoothed", "newton_schulz", "thin_exact", "polar_express"},
           "Muon's T: exact U V^T (SVD), smoothed T_beta (eq. 6), Newton-Schulz quintic, thin_exact "
           "(exact U V^T through the r x r Gram matrix of a thin factor), or polar_express (Amsel "
           "et al. 2025 minimax coefficients, optim.ns_steps iterations); default: muon/normuon "
           "newton_schulz, specgd exact");
  s.number("optim.beta", 0.0, "beta of T_beta (smoothed only)").min = 0;
  auto& ns = s.integer("optim.ns_steps", MuonOptions{}.ortho.ns_steps, "Newton-Schulz iterations");
  ns.min = 1;
  ns.max = 100;
  s.string("optim.lr_scaling", "none", {"none", "original", "match_adamw_rms"},
           "Muon per-matrix lr scale: 1, sqrt(max(1,rows/cols)) or 0.2*sqrt(max(rows,cols))");
  s.number("optim.weight_decay", 0.0, "decoupled weight decay (muon, adamw); L2 for sgd").min = 0;
  s.number("optim.adamw_weight_decay", nullptr,
           "weight decay of the AdamW side of a Muon/SpecGD run (default: optim.weight_decay)").min = 0;
  auto& b1 = s.number("optim.beta1", 0.9, "AdamW first-moment decay");
  b1.min = 0;
  b1.max = 0.9999;
  auto& b2 = s.number("optim.beta2", 0.999, "AdamW second-moment decay");
  b2.min = 0;
  b2.max = 0.999999;
  auto& eps = s.number("optim.eps", 1e-8, "AdamW epsilon");
  eps.min = 0;
  eps.min_exclusive = true;
  auto& alr = s.number("optim.adamw_lr", 1e-3,
                       "every Muon/SpecGD run of a transformer: the learning rate of its AdamW side "
                       "(heads, embeddings, norms, biases, modules_to_save); optim.lr is Muon's");
  alr.min = 0;
  alr.min_exclusive = true;
  // LoRA-specific routing (trainer/optimizer_routing.h); checked for applicability below.
  auto& ratio = s.number("optim.lora_plus_ratio", 1.0,
                         "LoRA+ (Hayou et al. 2024): adapter B factors at this multiple of optim.lr (A at "
                         "optim.lr); 1 = off. LoRA fine-tuning with adamw/sgd/gd only");
  ratio.min = 0;
  ratio.min_exclusive = true;
  s.string("optim.muon_on", "both", {"both", "A", "B"},
           "which adapter factor Muon/SpecGD/NorMuon trains; the other goes to AdamW at optim.adamw_lr "
           "(A or B). LoRA fine-tuning with muon/specgd/normuon only");
  s.string("optim.precondition", "none", {"none", "riemannian"},
           "riemannian = Riemannian preconditioned LoRA (Zhang & Pilanci 2024): grad_A <- (B^T B + "
           "delta I)^-1 grad_A, grad_B <- grad_B (A A^T + delta I)^-1 before the optimizer. LoRA "
           "fine-tuning with adamw/sgd/gd only");
  s.number("optim.precondition_delta", 1e-2, "delta of optim.precondition=riemannian (PEFT's default)").min = 0;
  auto& nb2 = s.number("optim.normuon_beta2", nullptr, "normuon: decay of the row second moment (default 0.95)");
  nb2.min = 0;
  nb2.max = 0.999999;
  auto& neps = s.number("optim.normuon_eps", nullptr, "normuon: epsilon added to sqrt(v) (default 1e-8)");
  neps.min = 0;
  neps.min_exclusive = true;
  s.string("optim.normuon_rescale", nullptr, {"paper", "preserve_norm"},
           "normuon: rescale to update RMS 0.2 (paper) or keep ||O||_F (the authors' code); default paper");
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

json optim_with_defaults(json optim) {
  ConfigSchema schema;
  add_optimizer_keys(schema);
  const std::string prefix = "optim.";
  const json defaults = schema.defaults();  // items() refers to it: a temporary would dangle
  for (const auto& [key, value] : defaults.items()) {
    if (key.rfind(prefix, 0) != 0) continue;  // schedule.*
    const std::string k = key.substr(prefix.size());
    if (!optim.contains(k)) optim[k] = value;
  }
  return optim;
}

json resolved_optim(const json& given) {
  json o = given;
  const std::string name = o.at("name");
  const bool muon = name == "muon" || name == "hybrid" || name == "normuon";
  const MuonOptions defaults = name == "specgd" ? specgd_options() : MuonOptions{};
  if (!o.contains("momentum") || o["momentum"].is_null()) o["momentum"] = muon ? defaults.momentum : 0.0;
  if (!o.contains("nesterov") || o["nesterov"].is_null()) {
    // Nesterov with momentum 0 is plain momentum 0; muon's default follows an explicit 0.
    o["nesterov"] = muon && o["momentum"].get<double>() > 0 ? defaults.nesterov : false;
  }
  if (!o.contains("orthogonalizer") || o["orthogonalizer"].is_null()) {
    o["orthogonalizer"] = name == "specgd" ? "exact" : (muon ? "newton_schulz" : "exact");
  }
  if (!o.contains("adamw_weight_decay") || o["adamw_weight_decay"].is_null()) {
    o["adamw_weight_decay"] = o.at("weight_decay");
  }
  const NorMuonOptions nm;
  if (!o.contains("normuon_beta2") || o["normuon_beta2"].is_null()) o["normuon_beta2"] = nm.beta2;
  if (!o.contains("normuon_eps") || o["normuon_eps"].is_null()) o["normuon_eps"] = nm.eps;
  if (!o.contains("normuon_rescale") || o["normuon_rescale"].is_null()) o["normuon_rescale"] = "paper";
  if (!o.contains("lora_plus_ratio")) o["lora_plus_ratio"] = 1.0;
  if (!o.contains("muon_on")) o["muon_on"] = "both";
  if (!o.contains("precondition")) o["precondition"] = "none";
  if (!o.contains("precondition_delta")) o["precondition_delta"] = 1e-2;
  return o;
}

void check_optimizer_config(const json& config, const std::string& where) {
  const auto& given = config.at("optim");
  const json o = resolved_optim(given);
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
  // Options of one optimizer or of LoRA's factor routing: an error where they would not act.
  const bool lora = config.value("mode", "") == "finetune";
  const bool muon_family = name == "muon" || name == "specgd" || name == "normuon" || name == "hybrid";
  const bool first_order = name == "adamw" || name == "sgd" || name == "gd";
  const auto refuse = [&](const std::string& key, const std::string& expected) {
    throw ConfigError(where + ": optim." + key + ": applies to " + expected + ", not to optim.name=" + name +
                      (lora ? "" : " outside LoRA fine-tuning (mode finetune)"));
  };
  if (o.at("lora_plus_ratio").get<double>() != 1.0 && !(lora && first_order)) {
    refuse("lora_plus_ratio", "LoRA fine-tuning with adamw, sgd or gd (1 = off)");
  }
  if (o.at("muon_on") != "both" && !(lora && muon_family)) {
    refuse("muon_on", "LoRA fine-tuning with muon, specgd or normuon (both = default)");
  }
  if (o.at("precondition") != "none") {
    if (!(lora && first_order)) refuse("precondition", "LoRA fine-tuning with adamw, sgd or gd (none = default)");
    if (o.at("lora_plus_ratio").get<double>() != 1.0) {
      throw ConfigError(where + ": optim.precondition: riemannian preconditions A and B from the same step's "
                        "factors, which needs both in one group; expected optim.lora_plus_ratio=1 with it");
    }
  }
  if (name == "lora_fa" && !lora) {
    throw ConfigError(where + ": optim.name: lora_fa freezes adapter A factors; expected mode finetune");
  }
  for (const char* key : {"normuon_beta2", "normuon_eps", "normuon_rescale"}) {
    if (name != "normuon" && given.contains(key) && !given[key].is_null()) refuse(key, "optim.name=normuon");
  }
}

namespace {
MuonOptions muon_options(const json& given) {
  const json o = resolved_optim(given);
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

AdamWOptions adamw_options(const json& given) {
  const json o = resolved_optim(given);
  AdamWOptions adamw;
  adamw.lr = o.at("lr");
  adamw.beta1 = o.at("beta1");
  adamw.beta2 = o.at("beta2");
  adamw.eps = o.at("eps");
  adamw.weight_decay = o.at("weight_decay");
  return adamw;
}
}  // namespace

AdamWOptions adamw_side_options(const json& given) {
  const json o = resolved_optim(given);
  AdamWOptions adamw = adamw_options(o);
  adamw.lr = o.at("adamw_lr");
  adamw.weight_decay = o.at("adamw_weight_decay");
  return adamw;
}

MuonOptions muon_side_options(const json& optim) { return muon_options(optim); }

NorMuonOptions normuon_options(const json& given) {
  const json o = resolved_optim(given);
  NorMuonOptions n;
  n.beta2 = o.at("normuon_beta2");
  n.eps = o.at("normuon_eps");
  n.rescale = parse_normuon_rescale(o.at("normuon_rescale"));
  return n;
}

std::unique_ptr<Optimizer> make_hybrid(const json& o, ParamSplit split) {
  auto adamw = adamw_side_options(o);
  return std::make_unique<Hybrid>(std::move(split), muon_options(o), adamw);
}

std::unique_ptr<Optimizer> make_optimizer(const json& given, std::vector<at::Tensor> params) {
  const json o = resolved_optim(given);
  const std::string name = o.at("name");
  const MuonOptions muon = muon_options(o);
  AdamWOptions adamw = adamw_options(o);
  if (name == "muon" || name == "specgd") return std::make_unique<Muon>(std::move(params), muon);
  if (name == "normuon") return std::make_unique<NorMuon>(std::move(params), muon, normuon_options(o));
  if (name == "adamw") return std::make_unique<AdamW>(std::move(params), adamw);
  if (name == "hybrid") return std::make_unique<Hybrid>(split_for_muon(params), muon, adamw_side_options(o));
  if (name == "lora_fa") throw std::logic_error("make_optimizer: lora_fa needs the adapter pairs (make_routed_optimizer)");
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
