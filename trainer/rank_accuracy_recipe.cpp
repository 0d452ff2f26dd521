#include "trainer/rank_accuracy_recipe.h"
#include "trainer/run_directory.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>

#include "data/mf_target.h"
#include "models/lora_flow_closed_form.h"
#include "models/spectral_stats.h"
#include "optim/flow_integrator.h"
#include "optim/lora_alternating_gd.h"

namespace lorascope {

using nlohmann::json;

namespace {

const auto f64 = at::TensorOptions().dtype(at::kDouble);

at::Tensor make_w0(const RankAccuracyConfig& cfg, at::Generator& gen) {
  if (cfg.w0 == "gaussian") return at::randn({cfg.n, cfg.m}, gen, f64) * cfg.w0_scale;
  return make_target(cfg.n, cfg.m, cfg.target_sv, gen, at::kDouble).Y;
}

// State [B, A, U] of the LoRA pair and the full-rank reference, advanced by one method.
class Stepper {
 public:
  Stepper(const RankAccuracyConfig& cfg, const LoraFlowProblem& problem, FlowState state)
      : cfg_(cfg), problem_(problem), state_(std::move(state)) {
    field_ = [&problem](double, const FlowState& S) {
      auto [gB, gA] = problem.lora_grads(S[0], S[1]);
      return FlowState{-gB, -gA, -problem.grad(S[2])};
    };
    if (cfg.method == "rk45") {
      RK45Options o;
      o.rtol = cfg.rtol;
      o.atol = cfg.atol;
      rk45_ = std::make_unique<DormandPrince>(field_, state_, 0.0, o);
    }
  }

  void advance_to(double t_target) {
    if (rk45_) {
      rk45_->advance_to(t_target);
      t_ = rk45_->t();
      steps_ = rk45_->stats().accepted;
      return;
    }
    const double h = cfg_.step_time();
    const int64_t target_steps = std::llround(t_target / h);
    for (; steps_ < target_steps; ++steps_) {
      if (cfg_.method == "rk4") {
        state_ = rk4_step(field_, t_, state_, h);
      } else if (cfg_.method == "euler") {
        state_ = euler_step(field_, t_, state_, h);
      } else {  // algorithm1: the LoRA pair by eq. (4)-(5), U by k plain GD steps of alpha
        AlternatingGdOptions o{cfg_.dt, cfg_.lambda, cfg_.k};
        alternating_gd_iteration(
            state_[0], state_[1],
            [this](const at::Tensor& B, const at::Tensor& A) { return problem_.lora_grads(B, A).first; },
            [this](const at::Tensor& B, const at::Tensor& A) { return problem_.lora_grads(B, A).second; },
            o);
        for (int64_t j = 0; j < cfg_.k; ++j) state_[2] = state_[2] - problem_.grad(state_[2]) * cfg_.dt;
      }
      t_ = static_cast<double>(steps_ + 1) * h;
    }
  }

  const FlowState& state() const { return rk45_ ? rk45_->state() : state_; }
  double t() const { return t_; }
  int64_t steps() const { return steps_; }
  json stats() const {
    if (!rk45_) return {{"steps", steps_}};
    const auto& s = rk45_->stats();
    return {{"accepted", s.accepted}, {"rejected", s.rejected}, {"evaluations", s.evaluations}};
  }

 private:
  const RankAccuracyConfig& cfg_;
  const LoraFlowProblem& problem_;
  FlowState state_;
  VectorField field_;
  std::unique_ptr<DormandPrince> rk45_;
  double t_ = 0;
  int64_t steps_ = 0;
};

double max_abs(const at::Tensor& a) { return a.numel() ? a.abs().max().item<double>() : 0.0; }
double fro(const at::Tensor& a) { return a.norm().item<double>(); }

// Singular values of B A (n x m, rank <= r) from thin QR of B and A^T and an r x r SVD.
std::vector<double> product_sv(const at::Tensor& B, const at::Tensor& A) {
  const auto qb = at::linalg_qr(B), qa = at::linalg_qr(A.t());
  return to_vector(at::linalg_svdvals(at::matmul(std::get<1>(qb), std::get<1>(qa).t())));
}

// Everything one run compares against: W0's SVD, the initial A0 and the closed forms.
struct Reference {
  LoraFlowProblem problem;
  at::Tensor A0, U0, Ur, Vr;  // Ur, Vr: top-r singular vectors of W0, (n, r), (m, r)
  std::vector<double> w0_sv, x0;  // x0: spectral init's diagonal (A0 V)_ii
  std::optional<TraceSquaredFlow> trace_flow;  // trace_squared with Tr(W0) != 0
  bool spectral = false;

  Reference(const RankAccuracyConfig& cfg, at::Tensor W0, at::Tensor A0_)
      : problem(std::move(W0), parse_lora_loss(cfg.loss)), A0(std::move(A0_)) {
    U0 = at::zeros({cfg.n, cfg.m}, f64);  // B0 A0 with B0 = 0
    const auto svd = at::linalg_svd(problem.W0(), false);
    w0_sv = to_vector(std::get<1>(svd));
    Ur = std::get<0>(svd).slice(1, 0, cfg.rank);
    Vr = std::get<2>(svd).slice(0, 0, cfg.rank).t();
    spectral = cfg.init == "spectral";
    if (spectral) x0 = to_vector(at::matmul(A0, Vr).diagonal());
    const double c = problem.W0().trace().item<double>();
    const double n2 = A0.square().sum().item<double>();
    if (problem.kind() == LoraLoss::TraceSquared && c != 0 && n2 > 0) trace_flow.emplace(c, n2);
  }

  // y_i x_i of each of the r spectral modes at time t (eq. 50).
  std::vector<double> modes_closed(double t) const {
    std::vector<double> out;
    for (size_t i = 0; i < x0.size(); ++i) {
      const double s0 = w0_sv[i], x = x0[i];
      if (s0 == 0 || x == 0) {
        out.push_back(0.0);
        continue;
      }
      const TraceSquaredFlow mode(s0, x * x);
      out.push_back(mode.p(t) * mode.q(t) * s0 * x * x);
    }
    return out;
  }
};

json record(const Reference& ref, const FlowState& S, double t, int64_t step) {
  const auto& B = S[0];
  const auto& A = S[1];
  const auto& U = S[2];
  const auto BA = at::matmul(B, A);
  json rec = {{"step", step}, {"t", t}, {"loss", ref.problem.loss(BA)},
              {"loss_full", ref.problem.loss(U)},
              {"rel_error", fro(BA - U) / std::max(fro(U), 1e-300)},
              {"sv", product_sv(B, A)}};
  rec["full_gap"] = max_abs(U - full_rank_flow(ref.problem.W0(), ref.U0, t,
                                               ref.problem.kind() == LoraLoss::TraceSquared));
  if (ref.problem.kind() == LoraLoss::TraceSquared) {
    rec["a"] = (ref.problem.W0() - BA).trace().item<double>();
    if (ref.trace_flow) {
      const auto& f = *ref.trace_flow;
      rec["a_closed"] = f.a(t);
      rec["p_closed"] = f.p(t);
      rec["q_closed"] = f.q(t);
      // eq. (377)-(378): Y = q c X0^T, X = p X0.
      rec["closed_gap"] = std::max(max_abs(B - ref.A0.t() * (f.q(t) * f.c())),
                                   max_abs(A - ref.A0 * f.p(t)));
    }
  } else {
    rec["modes"] = to_vector(at::matmul(at::matmul(ref.Ur.t(), BA), ref.Vr).diagonal());
    if (ref.spectral) {
      const auto closed = ref.modes_closed(t);
      rec["modes_closed"] = closed;
      rec["closed_gap"] = max_abs(at::tensor(rec["modes"].get<std::vector<double>>(), f64) -
                                  at::tensor(closed, f64));
    }
  }
  return rec;
}

bool finite_state(const FlowState& S) {
  for (const auto& s : S) {
    if (!at::isfinite(s).all().item<bool>()) return false;
  }
  return true;
}

RankAccuracyOutcome monte_carlo(const RankAccuracyConfig& cfg, const at::Tensor& W0,
                                at::Generator& gen, MetricsSink& sink, json summary) {
  double sum_r2 = 0, sum_r2_sq = 0, sum_r = 0, worst_gap = 0;
  for (int64_t i = 0; i < cfg.samples; ++i) {
    const LoraFlowProblem problem(W0, parse_lora_loss(cfg.loss));
    auto [B0, A0] = problem.init(cfg.rank, parse_lora_init(cfg.init), cfg.sigma, gen);
    Stepper stepper(cfg, problem, {B0, A0, at::zeros({cfg.n, cfg.m}, f64)});
    try {
      stepper.advance_to(cfg.t_end);
    } catch (const std::runtime_error& e) {
      summary["message"] = std::string("sample ") + std::to_string(i) + ": " + e.what();
      summary["status"] = "diverged";
      return {"diverged", summary};
    }
    const auto& S = stepper.state();
    const auto BA = at::matmul(S[0], S[1]);
    const double R = fro(BA - S[2]) / fro(S[2]), R33 = relative_error_limit(A0);
    sum_r += R, sum_r2 += R * R, sum_r2_sq += R * R * R * R;
    worst_gap = std::max(worst_gap, std::abs(R - R33));
    sink.write({{"sample", i}, {"t", stepper.t()}, {"loss", problem.loss(BA)}, {"R", R},
                {"R_eq33", R33}, {"R2", R * R}, {"step", stepper.steps()}});
  }
  const double N = static_cast<double>(cfg.samples), mean = sum_r2 / N;
  const double var = std::max(0.0, sum_r2_sq / N - mean * mean) * N / std::max(1.0, N - 1);
  const double expected = expected_squared_relative_error(cfg.n, cfg.rank);
  summary["status"] = "completed";
  summary["samples"] = cfg.samples;
  summary["mean_R2"] = mean;
  summary["sem_R2"] = std::sqrt(var / N);
  summary["expected_R2_eq34"] = expected;
  summary["R2_rel_diff"] = mean / expected - 1;
  summary["mean_R"] = sum_r / N;
  summary["jensen_bound_eq35"] = std::sqrt(expected);
  summary["max_abs_R_minus_eq33"] = worst_gap;
  return {"completed", summary};
}

}  // namespace

RankAccuracyOutcome train_rank_accuracy(const RankAccuracyConfig& cfg, MetricsSink& sink) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(cfg.seed));
  const auto W0 = make_w0(cfg, gen);  // drawn first: runs that differ in the solver share W0
  const auto start = std::chrono::steady_clock::now();
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  json summary = {{"name", cfg.name}, {"loss", cfg.loss}, {"n", cfg.n}, {"m", cfg.m},
                  {"rank", cfg.rank}, {"method", cfg.method}, {"t_end", cfg.t_end},
                  {"trace_w0", W0.trace().item<double>()}};
  if (cfg.samples > 1) {
    auto out = monte_carlo(cfg, W0, gen, sink, summary);
    out.summary["train_seconds"] = seconds();
    return out;
  }

  const LoraFlowProblem problem(W0, parse_lora_loss(cfg.loss));
  auto [B0, A0] = problem.init(cfg.rank, parse_lora_init(cfg.init), cfg.sigma, gen);
  const Reference ref(cfg, W0, A0);
  summary["w0_sv"] = ref.w0_sv;
  Stepper stepper(cfg, problem, {B0, A0, ref.U0});

  std::string status = "completed";
  double max_closed_gap = 0, max_full_gap = 0;
  json last;
  const int64_t logs = static_cast<int64_t>(std::ceil(cfg.t_end / cfg.log_every_t - 1e-9));
  for (int64_t j = 0; j <= logs; ++j) {
    const double t = std::min(cfg.t_end, static_cast<double>(j) * cfg.log_every_t);
    try {
      stepper.advance_to(t);
    } catch (const std::runtime_error& e) {
      status = "diverged";
      summary["message"] = e.what();
      break;
    }
    const auto& S = stepper.state();
    if (!finite_state(S)) {
      status = "diverged";
      summary["message"] = "state became non-finite by t = " + std::to_string(t);
      break;
    }
    last = record(ref, S, t, stepper.steps());
    if (cfg.method == "rk45") last["flow"] = stepper.stats();
    last["wall_s"] = seconds();
    max_closed_gap = std::max(max_closed_gap, last.value("closed_gap", 0.0));
    max_full_gap = std::max(max_full_gap, last["full_gap"].get<double>());
    sink.write(last);
  }
  summary["status"] = status;
  if (status != "completed") summary["diverged_at_t"] = stepper.t();
  summary["steps"] = stepper.steps();
  summary["solver"] = stepper.stats();
  if (!last.is_null()) {
    summary["final_loss"] = last["loss"];
    summary["final_loss_full"] = last["loss_full"];
    summary["final_rel_error"] = last["rel_error"];
    summary["final_sv"] = last["sv"];
  }
  summary["max_full_gap"] = max_full_gap;
  if (last.contains("closed_gap")) summary["max_closed_gap"] = max_closed_gap;
  if (problem.kind() == LoraLoss::TraceSquared) {
    summary["rel_error_eq33"] = relative_error_limit(A0);
    summary["expected_R2_eq34"] = expected_squared_relative_error(cfg.n, cfg.rank);
    if (ref.trace_flow && status == "completed") {
      // eq. (32): Y X -> (c / ||X0||^2) X0^T X0.
      const auto limit = at::matmul(A0.t(), A0) * (ref.trace_flow->c() * ref.trace_flow->pq_limit());
      summary["limit_gap_eq32"] = max_abs(at::matmul(stepper.state()[0], stepper.state()[1]) - limit);
    }
  } else {
    summary["eckart_young_loss"] = eckart_young_loss(ref.w0_sv, cfg.rank);
    if (!last.is_null()) {
      summary["final_modes"] = last["modes"];
      if (last.contains("modes_closed")) summary["final_modes_closed"] = last["modes_closed"];
    }
  }
  summary["train_seconds"] = seconds();
  return {status, summary};
}

RankAccuracyOutcome run_rank_accuracy(const RunSpec& run, const std::string& run_dir) {
  const auto cfg = RankAccuracyConfig::from_json(run.config);
  return run_in_directory(run, run_dir,
                          [&](JsonlWriter& metrics) { return train_rank_accuracy(cfg, metrics); });
}

}  // namespace lorascope
