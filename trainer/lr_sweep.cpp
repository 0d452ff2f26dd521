#include "trainer/lr_sweep.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include "trainer/metrics_writer.h"
#include "util/json_file.h"

namespace lorascope {

namespace fs = std::filesystem;
using nlohmann::json;

void add_lr_sweep_keys(ConfigSchema& s) {
  auto& list = s.number_list("sweep.lr", nullptr,
                             "compare: learning rates to try for this run (each one sets optim.lr in a run "
                             "NAME-lrVALUE); the report ranks each run by its best point");
  list.min = 0;
  list.min_exclusive = true;
  for (const char* end : {"from", "to"}) {
    auto& k = s.number(std::string("sweep.lr.") + end, nullptr,
                       std::string("compare: ") + end + " of a log-spaced learning-rate range (with "
                       "sweep.lr.points; instead of a sweep.lr list)");
    k.min = 0;
    k.min_exclusive = true;
  }
  auto& points = s.integer("sweep.lr.points", nullptr, "compare: learning rates in the range, ends included");
  points.min = 2;
  points.max = static_cast<double>(kMaxSweepPoints);
}

namespace {

// 3 significant digits: the run name then shows the value that runs.
double round3(double x) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", x);
  return std::strtod(text, nullptr);
}

std::string lr_label(double lr) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", lr);
  return text;
}

}  // namespace

std::vector<double> sweep_learning_rates(const json& config, const std::string& where) {
  if (!config.contains("sweep") || !config["sweep"].contains("lr")) return {};
  const json& lr = config["sweep"]["lr"];
  std::vector<double> out;
  if (lr.is_array()) {
    if (lr.empty() || lr.size() > static_cast<size_t>(kMaxSweepPoints)) {
      throw ConfigError(where + ": sweep.lr: expected 1 to " + std::to_string(kMaxSweepPoints) +
                        " learning rates, got " + std::to_string(lr.size()));
    }
    std::set<double> seen;
    for (const auto& v : lr) {
      if (!seen.insert(v.get<double>()).second) {
        throw ConfigError(where + ": sweep.lr: expected distinct learning rates, got " + v.dump() + " twice");
      }
      out.push_back(v.get<double>());
    }
    return out;
  }
  // The schema has checked each of from / to / points; here they must come together.
  for (const char* key : {"from", "to", "points"}) {
    if (!lr.contains(key)) {
      throw ConfigError(where + ": sweep.lr." + key + ": expected with the other two of sweep.lr.from, "
                        "sweep.lr.to, sweep.lr.points (a log-spaced range), got nothing");
    }
  }
  const double from = lr["from"], to = lr["to"];
  const int64_t points = lr["points"];
  if (!(to > from)) {
    throw ConfigError(where + ": sweep.lr.to: expected a number > sweep.lr.from (" + json(from).dump() +
                      "), got " + json(to).dump());
  }
  for (int64_t i = 0; i < points; ++i) {
    const double x = round3(from * std::pow(to / from, static_cast<double>(i) / static_cast<double>(points - 1)));
    if (out.empty() || x != out.back()) out.push_back(x);
  }
  if (static_cast<int64_t>(out.size()) < points) {
    throw ConfigError(where + ": sweep.lr.points: " + std::to_string(points) + " points between " +
                      json(from).dump() + " and " + json(to).dump() + " repeat at 3 significant digits; "
                      "expected fewer points or a wider range");
  }
  return out;
}

std::vector<RunSpec> expand_lr_sweeps(const std::vector<RunSpec>& runs, const std::vector<std::string>& sets,
                                      const std::string& where, LrSweepPlan* plan) {
  bool set_lr = false;
  for (const auto& s : sets) set_lr = set_lr || parse_override(s).first == "optim.lr";
  std::vector<RunSpec> out;
  std::set<std::string> names;
  for (const auto& run : runs) names.insert(run.name);
  for (const auto& run : runs) {
    const std::string run_where = where + " (run " + run.name + ")";
    const auto lrs = sweep_learning_rates(run.config, run_where);
    if (lrs.empty()) {
      out.push_back(run);
      continue;
    }
    if (set_lr) {
      throw ConfigError("--set optim.lr: " + run.name + " sweeps sweep.lr; --set would give every point "
                        "the same learning rate. Remove one of the two");
    }
    if (run.overrides.contains("optim.lr")) {
      throw ConfigError(run_where + ": sweep.lr: the run (or the grid) also sets optim.lr to " +
                        run.overrides["optim.lr"].dump() + "; the sweep sets it. Remove one of the two");
    }
    LrSweepGroup group{run.name, lrs, {}};
    for (double lr : lrs) {
      RunSpec point = run;
      point.config.erase("sweep");
      point.config["optim"]["lr"] = lr;
      point.name = run.name + "-lr" + lr_label(lr);
      point.config["name"] = point.name;
      for (auto it = run.overrides.begin(); it != run.overrides.end(); ++it) {
        if (it.key().rfind("sweep.", 0) == 0) point.overrides.erase(it.key());
      }
      point.overrides["optim.lr"] = lr;
      if (!names.insert(point.name).second) {
        throw ConfigError(run_where + ": sweep.lr: the point " + point.name + " has the name of another run; "
                          "rename one of them");
      }
      group.runs.push_back(point.name);
      out.push_back(std::move(point));
    }
    if (plan) plan->push_back(std::move(group));
  }
  return out;
}

std::string sweep_metric(const std::vector<SweepPoint>& points) {
  for (const auto& p : points) {
    if (p.status == "completed" && p.validation.is_object() && p.validation.contains("accuracy")) return "accuracy";
  }
  return "loss";
}

int best_point(const std::vector<SweepPoint>& points, const std::string& metric) {
  const bool higher = metric == "accuracy";
  int best = -1;
  double best_value = 0;
  for (size_t i = 0; i < points.size(); ++i) {
    const auto& p = points[i];
    if (p.status != "completed" || !p.validation.is_object() || !p.validation.contains(metric) ||
        !p.validation[metric].is_number()) {
      continue;
    }
    const double v = p.validation[metric].get<double>();
    if (!std::isfinite(v)) continue;
    const bool better = best < 0 || (higher ? v > best_value : v < best_value) ||
                        (v == best_value && p.lr < points[static_cast<size_t>(best)].lr);
    if (better) best = static_cast<int>(i), best_value = v;
  }
  return best;
}

json summarize_lr_sweeps(const LrSweepPlan& plan, const std::string& out_dir) {
  std::vector<std::vector<SweepPoint>> groups;
  std::vector<SweepPoint> all;
  for (const auto& g : plan) {
    std::vector<SweepPoint> points;
    for (size_t i = 0; i < g.runs.size(); ++i) {
      SweepPoint p{g.lrs[i], g.runs[i], "missing", json()};
      const fs::path summary = fs::path(out_dir) / g.runs[i] / "summary.json";
      if (fs::exists(summary)) {
        const json s = read_json_file(summary.string());
        p.status = s.value("status", std::string("missing"));
        p.validation = s.value("validation", json());
      }
      points.push_back(p);
      all.push_back(p);
    }
    groups.push_back(std::move(points));
  }
  const std::string metric = sweep_metric(all);
  json doc = {{"metric", metric}, {"better", metric == "accuracy" ? "higher" : "lower"}, {"groups", json::array()}};
  for (size_t k = 0; k < plan.size(); ++k) {
    json points = json::array();
    for (const auto& p : groups[k]) {
      points.push_back({{"lr", p.lr}, {"run", p.run}, {"status", p.status}, {"validation", p.validation}});
    }
    const int best = best_point(groups[k], metric);
    doc["groups"].push_back({{"name", plan[k].name},
                             {"points", points},
                             {"best", best < 0 ? json(nullptr) : points[static_cast<size_t>(best)]}});
  }
  write_json_atomic((fs::path(out_dir) / "sweep.json").string(), doc);
  return doc;
}

}  // namespace lorascope
