// lorascope analyze: the adapters of one or two finished fine-tuning runs against their base
// weights (trainer/run_analysis.h), as numbers (analysis.json, layers.csv, similarity.csv) and
// figures (scripts/plot_analysis.py); or, with --weights, the ESD alpha of every matrix of a
// safetensors file.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "apps/python_script.h"
#include "trainer/config.h"
#include "trainer/metrics_writer.h"
#include "trainer/run_analysis.h"

namespace lorascope::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct AnalyzeArgs {
  std::vector<std::string> runs;
  std::string out, weights;
  GeometryOptions geometry;
  bool plots = true;
};

std::string csv_number(const json& v) {
  if (!v.is_number()) return "";
  std::ostringstream s;
  s.precision(10);
  s << v.get<double>();
  return s.str();
}

std::string layers_csv(const json& runs) {
  std::ostringstream out;
  out << "run,module,rows,cols,base_k,align_left,align_right,intruders,intruder_sv,erank,stable_rank,"
         "alpha_W,alpha_merged\n";
  for (const auto& run : runs) {
    for (const auto& l : run["layers"]) {
      out << run["run"].get<std::string>() << "," << l["module"].get<std::string>() << "," << l["shape"][0] << ","
          << l["shape"][1] << "," << l["base_k"] << "," << csv_number(l["align_left"]) << ","
          << csv_number(l["align_right"]) << "," << l["intruders"] << "," << csv_number(l["intruder_sv"]) << ","
          << csv_number(l["erank"]) << "," << csv_number(l["stable_rank"]) << ","
          << csv_number(l["esd_W"]["alpha"]) << "," << csv_number(l["esd_merged"]["alpha"]) << "\n";
    }
  }
  return out.str();
}

// phi(i, j) per layer, one row per (layer, factor, i, j).
std::string similarity_csv(const json& cmp) {
  std::ostringstream out;
  out << "module,factor,i,j,phi\n";
  for (const auto& l : cmp["layers"]) {
    for (const char* f : {"phi_A", "phi_B"}) {
      const auto& g = l[f];
      for (size_t i = 0; i < g.size(); ++i) {
        for (size_t j = 0; j < g[i].size(); ++j) {
          out << l["module"].get<std::string>() << "," << (f[4]) << "," << i + 1 << "," << j + 1 << ","
              << csv_number(g[i][j]) << "\n";
        }
      }
    }
  }
  return out.str();
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path.string() + ".tmp");
  out << text;
  out.close();
  if (!out) throw std::runtime_error(path.string() + ": cannot write");
  fs::rename(path.string() + ".tmp", path);
}

}  // namespace

Command add_analyze_command(CLI::App& app) {
  auto args = std::make_shared<AnalyzeArgs>();
  auto* cmd = app.add_subcommand(
      "analyze", "adapters of finished runs against their base: alignment, intruder dimensions, ESD alpha of W and "
                 "W + delta W, and the subspace similarity of two runs' adapters");
  cmd->add_option("runs", args->runs, "one or two run directories (config.json + adapter/ from finetune)")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--out", args->out, "output directory (default: RUN/analysis for one run, ./analysis for two)");
  cmd->add_option("--weights", args->weights,
                  "instead of runs: ESD alpha (weightwatcher's rule) of every matrix of this safetensors file")
      ->check(CLI::ExistingFile);
  cmd->add_option("--base-k", args->geometry.base_k, "W's top-k singular subspaces for the alignment (0: the adapter's r)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--intruder-k", args->geometry.intruder_top_k,
                  "top singular vectors of W + delta W checked for intruders (PEFT's top_k)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--intruder-epsilon", args->geometry.intruder_epsilon,
                  "intruder when max |cos| with W's singular vectors is below this (PEFT's threshold_epsilon)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("!--no-plots", args->plots, "numbers only, no figures");

  return [args]() -> int {
    if (!args->weights.empty()) {
      if (!args->runs.empty()) throw ConfigError("analyze: give run directories or --weights, not both");
      const json esd = analyze_weights_file(args->weights);
      const fs::path out = args->out.empty() ? fs::path("analysis") : fs::path(args->out);
      fs::create_directories(out);
      write_json_atomic((out / "esd.json").string(), esd);
      std::printf("%s\n", (out / "esd.json").string().c_str());
      return 0;
    }
    if (args->runs.empty() || args->runs.size() > 2) {
      throw ConfigError("analyze: expected one or two run directories, got " + std::to_string(args->runs.size()));
    }
    // Everything is read and checked before anything is written.
    std::vector<RunAdapters> runs;
    for (const auto& d : args->runs) runs.push_back(load_run_adapters(d));
    if (runs.size() == 2) check_comparable(runs[0], runs[1]);
    json doc = {{"runs", json::array()}};
    for (const auto& r : runs) doc["runs"].push_back(analyze_run(r, args->geometry));
    if (runs.size() == 2) doc["similarity"] = compare_runs(runs[0], runs[1]);
    const fs::path out = !args->out.empty() ? fs::path(args->out)
                         : runs.size() == 1 ? fs::path(args->runs[0]) / "analysis"
                                            : fs::path("analysis");
    fs::create_directories(out);
    write_json_atomic((out / "analysis.json").string(), doc);
    write_text(out / "layers.csv", layers_csv(doc["runs"]));
    if (runs.size() == 2) write_text(out / "similarity.csv", similarity_csv(doc["similarity"]));
    std::printf("%s\n", (out / "analysis.json").string().c_str());
    if (!args->plots) return 0;
    return run_python_script("plot_analysis.py", {"--out", out.string(), (out / "analysis.json").string()});
  };
}

}  // namespace lorascope::cli
