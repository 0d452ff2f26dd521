#include "trainer/eos_schema.h"

#include <algorithm>

#include "models/deep_linear.h"

namespace lorascope {

using nlohmann::json;

namespace {
ConfigSchema build() {
  ConfigSchema s;
  s.string("name", "eos", {}, "run name (a directory under --out)");
  s.integer("seed", 0, "seeds the target's singular vectors and random inits").min = 0;
  auto& d = s.integer("task.d", 5, "side of M* and of every layer (d x d)");
  d.min = 1;
  d.max = 64;
  auto& depth = s.integer("task.depth", 3, "number of layers L");
  depth.min = 1;
  depth.max = 16;
  auto& sv = s.number_list("task.target_sv", json::array({10, 6, 3}),
                           "singular values of M*, descending (App. B.1: 10, 6, 3)");
  sv.min = 0;
  sv.min_exclusive = true;
  s.string("task.target_basis", "random", {"random", "identity"},
           "singular vectors of M*: random orthogonal (seeded), or the identity (M* diagonal; "
           "a deep network then never leaves the diagonal)");
  s.string("model.network", "deep", {"deep", "diagonal"},
           "deep linear network W_L...W_1, or the diagonal linear network of eq. (5)");
  s.string("model.init", "balanced", {"balanced", "unbalanced", "orthogonal", "gaussian"},
           "balanced: W_l = alpha I; unbalanced: W_L = 0, others alpha I (eq. 3); orthogonal / "
           "gaussian: W_L = 0, others alpha P_l / alpha N(0,1) (App. B.4)");
  auto& alpha = s.number("model.alpha", 0.01, "initialisation scale alpha");
  alpha.min = 0;
  alpha.min_exclusive = true;
  s.string("loss.convention", "theory", {"theory", "figures"},
           "theory: 1/2 ||W - M*||^2 (eq. 1); figures: ||W - M*||^2, the paper's code, whose "
           "learning rates are half the theory's");
  auto& lr = s.number("optim.lr", 0.0154, "GD learning rate eta (when eos.lrs and eos.lr_range are empty)");
  lr.min = 0;
  lr.min_exclusive = true;
  s.number_list("eos.lrs", json::array(), "learning rates, one trajectory each (a bifurcation sweep)")
      .min = 0;
  s.number_list("eos.lr_range", json::array(),
                "[first, last, count]: count evenly spaced learning rates (inclusive)");
  s.string("eos.lr_unit", "absolute", {"absolute", "threshold"},
           "absolute; or threshold: every learning rate is a multiple of 2/lambda_1 (Lemma 1's "
           "sharpness at the minimum, in this run's loss convention)");
  auto positive_int = [&](const std::string& key, int64_t def, const std::string& doc) -> KeySpec& {
    auto& k = s.integer(key, def, doc);
    k.min = 1;
    return k;
  };
  positive_int("train.steps", 4000, "GD steps per learning rate");
  positive_int("train.log_every", 10, "log a metrics record every N steps (and the last step)");
  positive_int("train.late_window", 200,
               "the last N steps form the late phase: amplitude, period and the values of the "
               "bifurcation diagram");
  s.integer("monitor.sharpness_every", 100,
            "top Hessian eigenvalues by Lanczos every N steps (0 = only in the late phase's last "
            "two steps)").min = 0;
  auto& k = positive_int("monitor.sharpness_k", 3, "how many top Hessian eigenvalues to log");
  k.max = 64;
  positive_int("monitor.lanczos_iters", 60, "Lanczos iterations (capped at the parameter count)");
  s.boolean("monitor.layers", true,
            "log per-layer singular values, the balance gap and the subspace distance (eq. 11)");
  auto& tol = s.number("eos.amplitude_tol", 1e-6,
                       "a component oscillates when its late max - min exceeds tol * s_1");
  tol.min = 0;
  tol.min_exclusive = true;
  return s;
}
}  // namespace

const ConfigSchema& eos_schema() {
  static const ConfigSchema schema = build();
  return schema;
}

void check_eos_config(const json& c, const std::string& where) {
  const auto& t = c.at("task");
  const int64_t d = t.at("d");
  const auto sv = t.at("target_sv").get<std::vector<double>>();
  if (sv.empty() || static_cast<int64_t>(sv.size()) > d) {
    throw ConfigError(where + ": task.target_sv: expected 1 to task.d = " + std::to_string(d) +
                      " values, got " + std::to_string(sv.size()));
  }
  if (!std::is_sorted(sv.rbegin(), sv.rend())) {
    throw ConfigError(where + ": task.target_sv: expected values in descending order, got " +
                      t.at("target_sv").dump());
  }
  const auto& m = c.at("model");
  if (m.at("network") == "diagonal" && m.at("init") != "balanced" && m.at("init") != "unbalanced") {
    throw ConfigError(where + ": model.init: a diagonal network takes balanced or unbalanced, got " +
                      m.at("init").get<std::string>());
  }
  const auto& e = c.at("eos");
  const auto range = e.at("lr_range").get<std::vector<double>>();
  if (!range.empty()) {
    if (range.size() != 3 || !(range[0] > 0) || !(range[1] >= range[0]) || !(range[2] >= 1) ||
        range[2] != static_cast<double>(static_cast<int64_t>(range[2]))) {
      throw ConfigError(where + ": eos.lr_range: expected [first > 0, last >= first, integer count >= 1], got " +
                        e.at("lr_range").dump());
    }
    if (!e.at("lrs").empty()) {
      throw ConfigError(where + ": eos.lrs: give eos.lrs or eos.lr_range, not both");
    }
  }
  for (double lr : e.at("lrs").get<std::vector<double>>()) {
    if (!(lr > 0)) throw ConfigError(where + ": eos.lrs: expected positive learning rates, got " + e.at("lrs").dump());
  }
  if (c.at("train").at("late_window") > c.at("train").at("steps")) {
    throw ConfigError(where + ": train.late_window: expected at most train.steps = " +
                      c.at("train").at("steps").dump() + ", got " + c.at("train").at("late_window").dump());
  }
}

std::vector<double> EosConfig::learning_rates() const {
  std::vector<double> out = lrs;
  if (!lr_range.empty()) {
    const auto n = static_cast<int64_t>(lr_range[2]);
    for (int64_t i = 0; i < n; ++i) {
      out.push_back(n == 1 ? lr_range[0] : lr_range[0] + (lr_range[1] - lr_range[0]) * i / (n - 1));
    }
  }
  if (out.empty()) out.push_back(lr);
  if (lr_unit == "threshold") {
    const double lambda1 = 2 * loss_scale() * lemma1_self(target_sv.front(), depth);
    for (double& x : out) x *= 2 / lambda1;
  }
  return out;
}

EosConfig EosConfig::from_json(const json& c) {
  EosConfig e;
  e.name = c.at("name");
  e.seed = c.at("seed");
  const auto& t = c.at("task");
  e.d = t.at("d");
  e.depth = t.at("depth");
  e.target_sv = t.at("target_sv").get<std::vector<double>>();
  e.target_basis = t.at("target_basis");
  e.network = c.at("model").at("network");
  e.init = c.at("model").at("init");
  e.alpha = c.at("model").at("alpha");
  e.convention = c.at("loss").at("convention");
  e.lr = c.at("optim").at("lr");
  e.lrs = c.at("eos").at("lrs").get<std::vector<double>>();
  e.lr_range = c.at("eos").at("lr_range").get<std::vector<double>>();
  e.lr_unit = c.at("eos").at("lr_unit");
  e.amplitude_tol = c.at("eos").at("amplitude_tol");
  e.steps = c.at("train").at("steps");
  e.log_every = c.at("train").at("log_every");
  e.late_window = c.at("train").at("late_window");
  e.sharpness_every = c.at("monitor").at("sharpness_every");
  e.sharpness_k = c.at("monitor").at("sharpness_k");
  e.lanczos_iters = c.at("monitor").at("lanczos_iters");
  e.log_layers = c.at("monitor").at("layers");
  return e;
}

}  // namespace lorascope
