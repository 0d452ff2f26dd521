#include "trainer/mf_recipe.h"
#include "trainer/run_directory.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "data/matrix_json.h"
#include "models/spectral_stats.h"
#include "trainer/device.h"
#include "trainer/mf_flow.h"
#include "trainer/mf_monitor.h"
#include "trainer/optimizer_factory.h"

namespace lorascope {

using nlohmann::json;

namespace {

std::vector<at::Tensor> load_factors(const MFConfig& cfg) {
  const auto j = read_json_file(cfg.init_file);
  const std::string where = cfg.init_file + ": factors";
  if (!j.contains("factors") || !j["factors"].is_array()) {
    throw std::runtime_error(where + ": expected a list of " + std::to_string(cfg.depth) +
                             " matrices");
  }
  const auto& list = j["factors"];
  if (static_cast<int>(list.size()) != cfg.depth) {
    throw std::runtime_error(where + ": expected " + std::to_string(cfg.depth) +
                             " matrices (task.depth), got " + std::to_string(list.size()));
  }
  std::vector<at::Tensor> f;
  for (int k = 0; k < cfg.depth; ++k) {
    const int64_t rows = k == 0 ? cfg.m : cfg.rank, cols = k == cfg.depth - 1 ? cfg.n : cfg.rank;
    f.push_back(json_to_matrix(list[k], where + "[" + std::to_string(k) + "]", rows, cols));
  }
  return f;
}

// Least-squares slope of y against x.
double slope(const std::vector<double>& x, const std::vector<double>& y) {
  const double n = static_cast<double>(x.size());
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < x.size(); ++i) sx += x[i], sy += y[i], sxx += x[i] * x[i], sxy += x[i] * y[i];
  const double den = n * sxx - sx * sx;
  return den > 0 ? (n * sxy - sx * sy) / den : NAN;
}

// Tracks d_i over logged steps to summarise the order and the rate at which modes are learned.
class ModeTracker {
 public:
  ModeTracker(std::vector<double> sigma, int64_t modes, int depth)
      : sigma_(std::move(sigma)), modes_(modes), depth_(depth), t95_(modes, -1), x_(modes), y_(modes) {}

  void observe(int64_t step, const std::vector<double>& d) {
    for (int64_t i = 0; i < modes_; ++i) {
      const double ratio = d[i] / sigma_[i];
      if (t95_[i] < 0 && ratio >= 0.95) t95_[i] = step;
      // The linear phase of d_i^(1/L): active (below 80% of target) and past the onset.
      if (ratio >= 0.1 && ratio <= 0.8) {
        x_[i].push_back(static_cast<double>(step));
        y_[i].push_back(std::pow(d[i], 1.0 / depth_));
      }
    }
  }

  void summarise(json& s, double lr) const {
    json t95 = json::array(), rate = json::array();
    for (int64_t i = 0; i < modes_; ++i) {
      t95.push_back(t95_[i] < 0 ? json(nullptr) : json(t95_[i]));
      const double r = x_[i].size() >= 3 ? slope(x_[i], y_[i]) : NAN;
      rate.push_back(std::isfinite(r) ? json(r) : json(nullptr));
    }
    s["time_to_95"] = t95;
    s["root_growth_per_step"] = rate;  // slope of d_i^(1/L) per step while 10-80% learned
    s["root_growth_per_lr"] = json::array();
    for (const auto& r : rate) {
      s["root_growth_per_lr"].push_back(r.is_null() ? json(nullptr) : json(r.get<double>() / lr));
    }
    bool non_increasing = true, non_decreasing = true, all_equal = true, all_reached = true;
    for (int64_t i = 0; i < modes_; ++i) all_reached = all_reached && t95_[i] >= 0;
    for (int64_t i = 1; i < modes_ && all_reached; ++i) {
      non_increasing = non_increasing && t95_[i] <= t95_[i - 1];
      non_decreasing = non_decreasing && t95_[i] >= t95_[i - 1];
      all_equal = all_equal && t95_[i] == t95_[i - 1];
    }
    s["learning_order"] = !all_reached || modes_ < 2 ? "undetermined"
                          : all_equal                ? "simultaneous"
                          : non_increasing           ? "smallest_first"
                          : non_decreasing           ? "largest_first"
                                                     : "mixed";
  }

 private:
  std::vector<double> sigma_;
  int64_t modes_;
  int depth_;
  std::vector<int64_t> t95_;
  std::vector<std::vector<double>> x_, y_;
};

}  // namespace

MFSetup mf_setup(const MFConfig& cfg) {
  const auto dtype = cfg.dtype == "float32" ? at::kFloat : at::kDouble;
  const auto options = at::TensorOptions().dtype(dtype).device(pick_device(cfg.device));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(cfg.seed));
  MFTarget target = cfg.target_file.empty()
                        ? make_target(cfg.m, cfg.n, cfg.target_sv, gen, dtype)
                        : load_target(cfg.target_file, cfg.m, cfg.n, dtype);
  target.Y = target.Y.to(options);
  auto init = parse_factor_init(cfg.init);
  Factorization factors =
      cfg.init_file.empty()
          ? Factorization::random_init(cfg.m, cfg.n, cfg.rank, cfg.depth, cfg.gamma, init, gen, options)
          : [&] {
              auto f = load_factors(cfg);
              for (auto& t : f) t = t.to(options);
              return Factorization(f);
            }();
  return {std::move(target), std::move(factors)};
}

MFOutcome train_mf(const MFConfig& cfg, MFSetup& setup, MetricsSink& sink) {
  auto& F = setup.factors;
  const auto& target = setup.target;
  auto optimizer = make_optimizer(cfg.optim, F.factors());
  const auto schedule = make_schedule(cfg.schedule, cfg.steps);
  const int64_t modes = std::min<int64_t>(cfg.rank, target.rank());
  ModeTracker tracker(to_vector(target.sigma), modes, cfg.depth);

  const auto start = std::chrono::steady_clock::now();
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  double t = 0;  // flow time: sum of the learning rates taken so far
  json summary = {{"name", cfg.name}, {"rank", cfg.rank}, {"depth", cfg.depth},
                  {"target_sv", to_vector(target.sigma)},
                  {"best_rank_loss", target.best_rank_loss(cfg.rank)}};
  // flow.method != none: the factors follow the optimizer's vector field; step k still advances
  // t by lr_k, so runs with and without a flow are compared at the same t.
  const FlowMethod flow = parse_flow_method(cfg.flow_method);
  VectorField field;
  std::unique_ptr<DormandPrince> rk45;
  if (flow != FlowMethod::None) field = mf_flow_field(cfg.optim, target.Y);
  if (flow == FlowMethod::RK45) {
    RK45Options o;
    o.rtol = cfg.flow_rtol;
    o.atol = cfg.flow_atol;
    FlowState start;
    for (const auto& f : F.factors()) start.push_back(f.clone());
    rk45 = std::make_unique<DormandPrince>(field, std::move(start), 0.0, o);
  }
  auto flow_stats = [&]() -> json {
    if (!rk45) return nullptr;
    const auto& st = rk45->stats();
    return {{"accepted", st.accepted}, {"rejected", st.rejected}, {"evaluations", st.evaluations}};
  };
  std::string status = "completed";
  int64_t step = 0;
  double loss = NAN;
  for (;; ++step) {
    loss = F.loss_and_grad(target.Y);
    if (!std::isfinite(loss)) {
      status = "diverged";
      summary["diverged_at_step"] = step;
      summary["message"] = "loss became " + std::string(std::isnan(loss) ? "NaN" : "Inf") +
                           " at step " + std::to_string(step);
      break;
    }
    const bool last = step == cfg.steps || (cfg.stop_loss > 0 && loss < cfg.stop_loss);
    if (step % cfg.log_every == 0 || last) {
      json rec = {{"step", step}, {"t", t}, {"lr", optimizer->lr()}, {"loss", loss}};
      rec.update(mf_spectral_record(F, target, cfg.log_factors));
      if (rk45) rec["flow"] = flow_stats();
      tracker.observe(step, rec["d"].get<std::vector<double>>());
      rec["wall_s"] = seconds();
      sink.write(rec);
    }
    if (last) break;
    optimizer->set_lr_factor(schedule.factor(step));
    if (flow == FlowMethod::None) {
      optimizer->step();
    } else {
      FlowState next;
      try {
        next = flow == FlowMethod::Euler ? euler_step(field, t, F.factors(), optimizer->lr())
               : flow == FlowMethod::RK4 ? rk4_step(field, t, F.factors(), optimizer->lr())
                                         : (rk45->advance_to(t + optimizer->lr()), rk45->state());
      } catch (const std::runtime_error& e) {  // rk45 step-size underflow: the flow blew up
        status = "diverged";
        summary["diverged_at_step"] = step;
        summary["message"] = e.what();
        break;
      }
      for (size_t k = 0; k < next.size(); ++k) F.factors()[k].copy_(next[k]);
    }
    t += optimizer->lr();
  }
  const double elapsed = seconds();
  summary["status"] = status;
  summary["steps"] = step;
  summary["final_loss"] = std::isfinite(loss) ? json(loss) : json(nullptr);
  summary["flow_time"] = t;
  summary["train_seconds"] = elapsed;
  summary["steps_per_second"] = elapsed > 0 ? static_cast<double>(step) / elapsed : 0.0;
  tracker.summarise(summary, optimizer->base_lr());
  summary["optimizer"] = optimizer->name();
  summary["flow_method"] = cfg.flow_method;
  if (rk45) summary["flow"] = flow_stats();
  return {status, summary};
}

MFOutcome run_mf(const RunSpec& run, const std::string& run_dir) {
  const MFConfig cfg = MFConfig::from_json(run.config);
  MFSetup setup = mf_setup(cfg);  // may throw on a bad target/init file: before any output
  return run_in_directory(run, run_dir, [&](JsonlWriter& metrics) { return train_mf(cfg, setup, metrics); });
}

}  // namespace lorascope
