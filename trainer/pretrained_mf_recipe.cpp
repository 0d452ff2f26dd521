#include "trainer/pretrained_mf_recipe.h"
#include "trainer/run_directory.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "util/json_file.h"

namespace lorascope {

using nlohmann::json;
namespace fs = std::filesystem;

PretrainedMFSetup pretrained_mf_setup(const PretrainedMFConfig& cfg) {
  PretrainedMFShape shape;
  shape.m = cfg.m;
  shape.n = cfg.n;
  shape.h = cfg.h;
  shape.scale = cfg.scale;
  shape.sigma = cfg.sigma;
  shape.pair = parse_target_pair(cfg.pair);
  Gaussian gauss(static_cast<uint64_t>(cfg.seed));
  PretrainedMF mf = make_pretrained_mf(shape, gauss);
  LoraFactors lora = init_lora(mf, parse_pretrained_lora_init(cfg.init), cfg.rank, cfg.alpha, gauss);
  return {std::move(mf), std::move(lora)};
}

PretrainedMFOutcome train_pretrained_mf(const PretrainedMFConfig& cfg, PretrainedMFSetup& setup,
                                        MetricsSink& sink) {
  const auto& mf = setup.mf;
  auto& f = setup.lora;
  PretrainedMFDescent gd(mf, f);
  const auto start = std::chrono::steady_clock::now();
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  json summary = {{"name", cfg.name},
                  {"init", cfg.init},
                  {"alpha", cfg.alpha},
                  {"pair", cfg.pair},
                  {"sigma", mf.sigma},
                  {"sigma_W2", mf.sigma_W2},
                  {"sigma_W1", mf.sigma_W1},
                  {"delta_w", mf.delta_w()},
                  {"Y_pre_sv", std::vector<double>(mf.S.data(), mf.S.data() + mf.S.size())}};
  std::string status = "completed";
  double loss = NAN, initial_loss = NAN;
  AlignmentStats last_stats;
  json align_step = nullptr, drop_step = nullptr;
  int64_t step = 0;
  for (;; ++step) {
    const bool last = step == cfg.steps;
    const bool log = step % cfg.log_every == 0 || last;
    // gd.step returns the loss at the point it starts from; a logged step needs the factors of
    // that point too, so it evaluates first and steps after writing the record.
    loss = log ? pretrained_mf_loss(mf, f) : gd.step(f, cfg.lr);
    if (step == 0) initial_loss = loss;
    if (!std::isfinite(loss)) {
      status = "diverged";
      summary["diverged_at_step"] = step;
      summary["message"] = "loss became " + std::string(std::isnan(loss) ? "NaN" : "Inf") +
                           " at step " + std::to_string(step);
      break;
    }
    if (log) {
      last_stats = alignment_stats(mf, f);
      if (align_step.is_null() && last_stats.one_minus_cos <= 1e-3) align_step = step;
      if (drop_step.is_null() && loss <= 0.5 * initial_loss) drop_step = step;
      sink.write({{"step", step},
                  {"t", static_cast<double>(step) * cfg.lr},
                  {"loss", loss},
                  {"one_minus_cos", last_stats.one_minus_cos},
                  {"z1_norm", last_stats.z1_norm},
                  {"z2_norm", last_stats.z2_norm},
                  {"wall_s", seconds()}});
      if (last) break;
      (void)gd.step(f, cfg.lr);
    }
  }
  const double elapsed = seconds();
  summary["status"] = status;
  summary["steps"] = step;
  summary["flow_time"] = static_cast<double>(step) * cfg.lr;
  summary["initial_loss"] = initial_loss;
  summary["final_loss"] = std::isfinite(loss) ? json(loss) : json(nullptr);
  summary["final_one_minus_cos"] = last_stats.one_minus_cos;
  summary["final_z1_norm"] = last_stats.z1_norm;
  summary["final_z2_norm"] = last_stats.z2_norm;
  summary["align_step"] = align_step;
  summary["drop_step"] = drop_step;
  summary["train_seconds"] = elapsed;
  summary["steps_per_second"] = elapsed > 0 ? static_cast<double>(step) / elapsed : 0.0;
  return {status, summary};
}

PretrainedMFOutcome run_pretrained_mf(const RunSpec& run, const std::string& run_dir) {
  const auto cfg = PretrainedMFConfig::from_json(run.config);
  auto setup = pretrained_mf_setup(cfg);
  return run_in_directory(run, run_dir,
                          [&](JsonlWriter& metrics) { return train_pretrained_mf(cfg, setup, metrics); });
}

namespace {

// Mean and population standard deviation.
json mean_std(const std::vector<double>& x) {
  if (x.empty()) return {{"mean", nullptr}, {"std", nullptr}};
  double mean = 0;
  for (double v : x) mean += v;
  mean /= static_cast<double>(x.size());
  double var = 0;
  for (double v : x) var += (v - mean) * (v - mean);
  var /= static_cast<double>(x.size());
  return {{"mean", mean}, {"std", std::sqrt(var)}};
}

}  // namespace

json summarize_over_seeds(const std::string& out_dir) {
  const fs::path out(out_dir);
  const json index = read_json_file((out / "index.json").string());
  struct Group {
    json label;
    std::vector<int64_t> seeds;
    std::vector<double> loss, log_loss, misalign;
  };
  std::map<std::string, Group> groups;
  std::vector<std::string> order;  // first appearance, as in index.json
  for (const auto& entry : index.at("runs")) {
    if (entry.value("status", "") != "completed") continue;
    const fs::path dir = out / entry.at("dir").get<std::string>();
    json cfg = read_json_file((dir / "config.json").string());
    const json summary = read_json_file((dir / "summary.json").string());
    const int64_t seed = cfg.at("seed");
    cfg.erase("seed");
    cfg.erase("name");
    const std::string key = cfg.dump();
    if (!groups.count(key)) {
      json label = entry.value("overrides", json::object());
      label.erase("seed");
      groups[key].label = label;
      order.push_back(key);
    }
    auto& g = groups[key];
    const double loss = summary.at("final_loss");
    g.seeds.push_back(seed);
    g.loss.push_back(loss);
    g.log_loss.push_back(std::log10(std::max(loss, 1e-300)));
    g.misalign.push_back(summary.at("final_one_minus_cos"));
  }
  json result = {{"groups", json::array()}};
  for (const auto& key : order) {
    const auto& g = groups[key];
    const json cfg = json::parse(key);
    result["groups"].push_back({{"label", g.label},
                                {"init", cfg.at("lora").at("init")},
                                {"alpha", cfg.at("lora").at("alpha")},
                                {"pair", cfg.at("task").at("pair")},
                                {"seeds", g.seeds},
                                {"final_loss", mean_std(g.loss)},
                                {"log10_final_loss", mean_std(g.log_loss)},
                                {"final_one_minus_cos", mean_std(g.misalign)}});
  }
  write_json_atomic((out / "seed_summary.json").string(), result);
  return result;
}

}  // namespace lorascope
