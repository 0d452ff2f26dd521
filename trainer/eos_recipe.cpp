#include "trainer/eos_recipe.h"
#include "trainer/run_directory.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "models/balanced_two_cycle.h"

namespace lorascope {

using nlohmann::json;

EosSetup eos_setup(const EosConfig& cfg) {
  std::mt19937_64 rng(static_cast<uint64_t>(cfg.seed));
  const int64_t d = cfg.d;
  const bool diagonal = cfg.network == "diagonal";
  EosTarget t;
  t.s = cfg.target_sv;
  const bool identity = diagonal || cfg.target_basis == "identity";
  t.U = identity ? Mat::Identity(d, d) : random_orthogonal(d, rng);
  t.V = identity ? Mat::Identity(d, d) : random_orthogonal(d, rng);
  Vec s = Vec::Zero(d);
  for (size_t i = 0; i < t.s.size(); ++i) s(i) = t.s[i];
  t.M = t.U * s.asDiagonal() * t.V.transpose();
  auto net = DeepLinear::init(d, cfg.depth, parse_deep_init(cfg.init), cfg.alpha, cfg.loss_scale(),
                              diagonal, rng);
  return {std::move(t), std::move(net)};
}

json eos_theory(const EosConfig& cfg) {
  // Hessian eigenvalues scale with 2c: Lemma 1 is for c = 1/2.
  const double k = 2 * cfg.loss_scale();
  const auto& s = cfg.target_sv;
  const int L = cfg.depth;
  const double lambda1 = k * lemma1_self(s[0], L);
  json th = {{"loss_scale", cfg.loss_scale()}, {"lambda_1", lambda1}, {"lr_threshold", 2 / lambda1}};
  if (s.size() > 1) {
    // The second Hessian eigenvalue: the (1, 2) interaction for the deep network, which the
    // diagonal network lacks (Theorem 3); there it is the self term of s_2.
    const double lambda2 = cfg.network == "diagonal" ? k * lemma1_self(s[1], L)
                                                     : k * lemma1_pair(s[0], s[1], L);
    th["lambda_2"] = lambda2;
    th["lr_second_component"] = 2 / lambda2;
  }
  return th;
}

json train_eos_point(const EosConfig& cfg, const EosSetup& setup, double eta, MetricsSink& sink) {
  DeepLinear net = setup.net;
  const auto& target = setup.target;
  const double tol = cfg.amplitude_tol * target.s.front();
  LatePhase late(cfg.late_window, tol);
  std::vector<Mat> grad;
  json point = {{"lr", eta}};
  json sharp_last = json::array();
  std::string status = "completed";
  double loss = NAN;
  int64_t step = 0;
  const uint64_t lanczos_seed = static_cast<uint64_t>(cfg.seed) + 7;
  for (;; ++step) {
    loss = net.loss_and_grad(target.M, grad);
    if (!std::isfinite(loss)) {
      status = "diverged";
      point["diverged_at_step"] = step;
      break;
    }
    const bool in_late = step > cfg.steps - cfg.late_window;
    const bool last = step == cfg.steps;
    const bool log = step % cfg.log_every == 0 || last;
    const bool sharp = (cfg.sharpness_every > 0 && step % cfg.sharpness_every == 0) ||
                       step >= cfg.steps - 1;
    if (in_late) {
      const Mat P = net.product();
      Eigen::JacobiSVD<Mat> svd(P);
      late.observe(target_projections(P, target), svd.singularValues()(0));
    }
    if (log || sharp) {
      json rec = {{"lr", eta}, {"step", step}, {"loss", loss}};
      if (log) rec.update(eos_record(net, target, cfg.log_layers));
      if (sharp) {
        rec["sharpness"] = sharpness(net, target.M, cfg.sharpness_k, cfg.lanczos_iters, lanczos_seed);
        if (step >= cfg.steps - 1) sharp_last.push_back(rec["sharpness"]);
      }
      sink.write(rec);
    }
    if (last) break;
    net.gd_step(grad, eta);
  }
  point["status"] = status;
  point["steps"] = step;
  point["final_loss"] = std::isfinite(loss) ? json(loss) : json(nullptr);
  if (status == "completed") {
    point.update(late.summary());
    // Sharpness at the last two steps: both points of a 2-cycle.
    point["sharpness_last2"] = sharp_last;
    double top = 0;
    for (const auto& s : sharp_last) top += s[0].get<double>() / sharp_last.size();
    point["sharpness_late_mean"] = top;
  }
  // Theorem 1 with the corrected g (models/balanced_two_cycle.h), in theory units: 2c eta.
  if (auto cyc = two_cycle_values(target.s.front(), cfg.depth, 2 * cfg.loss_scale() * eta)) {
    point["predicted_two_cycle"] = {cyc->first, cyc->second};
  }
  return point;
}

EosOutcome train_eos(const EosConfig& cfg, MetricsSink& sink) {
  const EosSetup setup = eos_setup(cfg);
  const auto lrs = cfg.learning_rates();
  const auto start = std::chrono::steady_clock::now();
  json summary = {{"name", cfg.name}, {"depth", cfg.depth}, {"d", cfg.d},
                  {"network", cfg.network}, {"init", cfg.init}, {"alpha", cfg.alpha},
                  {"convention", cfg.convention}, {"target_sv", cfg.target_sv},
                  {"theory", eos_theory(cfg)}, {"points", json::array()}};
  int diverged = 0;
  for (double eta : lrs) {
    auto point = train_eos_point(cfg, setup, eta, sink);
    diverged += point["status"] == "diverged";
    summary["points"].push_back(point);
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  summary["train_seconds"] = elapsed;
  summary["diverged_points"] = diverged;
  const std::string status = lrs.size() == 1 && diverged ? "diverged" : "completed";
  summary["status"] = status;
  if (status == "diverged") {
    summary["message"] = "loss became NaN/Inf at step " +
                         summary["points"][0]["diverged_at_step"].dump() + " (lr " +
                         std::to_string(lrs[0]) + ")";
  }
  return {status, summary};
}

EosOutcome run_eos(const RunSpec& run, const std::string& run_dir) {
  const EosConfig cfg = EosConfig::from_json(run.config);
  return run_in_directory(run, run_dir, [&](JsonlWriter& metrics) { return train_eos(cfg, metrics); });
}

}  // namespace lorascope
