#include "trainer/rank_accuracy_schema.h"

#include <algorithm>
#include <cmath>

namespace lorascope {

using nlohmann::json;

namespace {
ConfigSchema build() {
  ConfigSchema s;
  s.string("name", "rank_accuracy", {}, "run name (a directory under --out)");
  s.integer("seed", 0, "draws W0 first, then X0 (one X0 per Monte-Carlo sample)").min = 0;
  s.string("task.loss", "trace_squared", {"trace_squared", "frobenius"},
           "1/2 Tr^2(W0 - BA) (eq. 18) or 1/2 ||W0 - BA||_F^2 (eq. 36)");
  auto& n = s.integer("task.n", 8, "rows of W0 (B is n x r)");
  n.min = 2;
  n.max = 512;
  auto& m = s.integer("task.m", 8, "columns of W0 (A is r x m); = n for trace_squared");
  m.min = 2;
  m.max = 512;
  s.integer("task.rank", 2, "LoRA rank r < min(n, m)").min = 1;
  s.string("task.w0", "gaussian", {"gaussian", "spectrum"},
           "W0 = w0_scale N(0, 1) entries, or U diag(target_sv) V^T with Haar U, V");
  auto& w0s = s.number("task.w0_scale", 1.0, "scale of the Gaussian W0");
  w0s.min = 0;
  w0s.min_exclusive = true;
  s.number_list("task.target_sv", json::array({4, 3, 2, 1, 0.5}),
                "singular values of W0 for task.w0=spectrum, descending (missing ones are 0)")
      .min = 0;
  s.string("task.init", "gaussian", {"gaussian", "spectral"},
           "B0 = 0 and A0 ~ N(0, sigma^2) (eq. 22), or A0 = diag(x0) V_r^T (eq. 45)");
  auto& sigma = s.number("task.sigma", 0.5, "standard deviation of the initial A0 entries");
  sigma.min = 0;
  sigma.min_exclusive = true;
  s.string("solver.method", "rk45", {"euler", "rk4", "rk45", "algorithm1"},
           "gradient flow by Euler (= GD), RK4 or adaptive RK45, or the paper's Algorithm 1");
  auto& dt = s.number("solver.dt", 0.01, "step of euler/rk4; alpha of algorithm1");
  dt.min = 0;
  dt.min_exclusive = true;
  auto& lambda = s.number("solver.lambda", 1.0, "algorithm1: 1 = simultaneous, 0 = sequential");
  lambda.min = 0;
  lambda.max = 1;
  auto& k = s.integer("solver.k", 1, "algorithm1: inner steps per factor and iteration");
  k.min = 1;
  k.max = 1000;
  auto& rtol = s.number("solver.rtol", 1e-10, "rk45 relative tolerance");
  rtol.min = 0;
  auto& atol = s.number("solver.atol", 1e-12, "rk45 absolute tolerance");
  atol.min = 0;
  auto& t_end = s.number("train.t_end", 5.0, "flow time to integrate to");
  t_end.min = 0;
  t_end.min_exclusive = true;
  auto& log = s.number("train.log_every_t", 0.1, "log every this much flow time (and at t_end)");
  log.min = 0;
  log.min_exclusive = true;
  auto& samples = s.integer("mc.samples", 1,
                            "> 1: Monte Carlo over X0 draws, one metrics line per sample (trace_squared)");
  samples.min = 1;
  samples.max = 100000;
  return s;
}

// x / unit is an integer up to rounding.
bool is_multiple(double x, double unit) {
  const double q = x / unit;
  return std::abs(q - std::round(q)) <= 1e-9 * std::max(1.0, q) && std::round(q) >= 1;
}
}  // namespace

const ConfigSchema& rank_accuracy_schema() {
  static const ConfigSchema schema = build();
  return schema;
}

void check_rank_accuracy_config(const json& config, const std::string& where) {
  const auto c = RankAccuracyConfig::from_json(config);
  if (c.loss == "trace_squared" && c.n != c.m) {
    throw ConfigError(where + ": task.m: the trace-squared loss needs a square W0, expected " +
                      std::to_string(c.n) + " (task.n), got " + std::to_string(c.m));
  }
  if (c.rank >= std::min(c.n, c.m)) {
    throw ConfigError(where + ": task.rank: expected an integer < min(task.n, task.m) = " +
                      std::to_string(std::min(c.n, c.m)) + ", got " + std::to_string(c.rank));
  }
  if (c.w0 == "spectrum") {
    if (c.target_sv.empty() || static_cast<int64_t>(c.target_sv.size()) > std::min(c.n, c.m)) {
      throw ConfigError(where + ": task.target_sv: expected 1 to min(task.n, task.m) = " +
                        std::to_string(std::min(c.n, c.m)) + " values, got " +
                        std::to_string(c.target_sv.size()));
    }
    if (!std::is_sorted(c.target_sv.rbegin(), c.target_sv.rend())) {
      throw ConfigError(where + ": task.target_sv: expected values in descending order, got " +
                        json(c.target_sv).dump());
    }
  }
  if (c.method == "rk45" && c.rtol + c.atol <= 0) {
    throw ConfigError(where + ": solver.rtol: expected rtol or atol > 0 for rk45");
  }
  if (c.method != "rk45") {
    const double h = c.step_time();
    const std::vector<std::pair<std::string, double>> times = {
        {"train.t_end", c.t_end}, {"train.log_every_t", c.log_every_t}};
    for (const auto& [key, value] : times) {
      if (!is_multiple(value, h)) {
        throw ConfigError(where + ": " + key + ": expected a positive multiple of the step time " +
                          json(h).dump() + " (solver.dt" + (c.method == "algorithm1" ? " * solver.k" : "") +
                          "), got " + json(value).dump());
      }
    }
  }
  if (c.samples > 1 && c.loss != "trace_squared") {
    throw ConfigError(where + ": mc.samples: Monte Carlo over X0 is the trace-squared claim (eq. "
                      "34); expected 1 with task.loss=" + c.loss + ", got " + std::to_string(c.samples));
  }
}

RankAccuracyConfig RankAccuracyConfig::from_json(const json& c) {
  RankAccuracyConfig r;
  r.name = c.at("name");
  r.seed = c.at("seed");
  const auto& t = c.at("task");
  r.loss = t.at("loss");
  r.n = t.at("n");
  r.m = t.at("m");
  r.rank = t.at("rank");
  r.w0 = t.at("w0");
  r.w0_scale = t.at("w0_scale");
  r.target_sv = t.at("target_sv").get<std::vector<double>>();
  r.init = t.at("init");
  r.sigma = t.at("sigma");
  const auto& s = c.at("solver");
  r.method = s.at("method");
  r.dt = s.at("dt");
  r.lambda = s.at("lambda");
  r.k = s.at("k");
  r.rtol = s.at("rtol");
  r.atol = s.at("atol");
  r.t_end = c.at("train").at("t_end");
  r.log_every_t = c.at("train").at("log_every_t");
  r.samples = c.at("mc").at("samples");
  return r;
}

}  // namespace lorascope
