// Cost of the per-adapter geometry statistics (trainer/geometry_monitor.h) per log, beside the
// spectra the monitor already logs (trainer/adapter_monitor.h), on the q/v adapters (r = 8) of
// LLaMA-3.2-1B (16 layers: q_proj 2048 x 2048, v_proj 512 x 2048) and of all-MiniLM-L6-v2 (6
// layers: query, value 384 x 384). One JSON object per configuration:
//
//   base_svd_s      the one-time SVD of every base weight (the monitor's cache), and its bytes
//                   (--base-dtype float32: U and V cached in float32, monitor.base_svd_dtype)
//   spectra_s       adapter_spectra(): singular values, erank, stable rank (logged today)
//   geometry_s      GeometryMonitor::observe(): alignment, intruders, drift (mean over --logs);
//                   *_cpu_s: CPU seconds of all threads (the work, on a machine shared with others)
//   krylov_dims     Krylov space dimension per adapter (0: solved densely)
//
// Base weights: --base gaussian (Marchenko-Pastur bulk, the hardest case for the Krylov solver:
// the top singular values of W + delta W sit in a crowded edge), powerlaw (sigma_i ~ i^-0.5, a
// heavy-tailed spectrum like pretrained weights'), or minilm (the real MiniLM weights from
// --minilm DIR/model.safetensors). Adapters: A ~ N(0, 1/in), B ~ N(0, 0.02^2), changed a little
// between logs so drift has something to measure.
//
//   build/bench/lorascope_geometry_bench --model llama --base powerlaw --threads 2
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)

#include <chrono>
#include <cmath>
#include <memory>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "models/lora.h"
#include "models/safetensors.h"
#include "trainer/adapter_monitor.h"
#include "trainer/geometry_monitor.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
// CPU seconds of the whole process (all threads): on a shared machine, the work itself.
double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

struct Shape {
  std::string name;
  int64_t out, in;
};

std::vector<Shape> shapes(const std::string& model) {
  std::vector<Shape> s;
  if (model == "llama") {
    for (int l = 0; l < 16; ++l) {
      s.push_back({"model.layers." + std::to_string(l) + ".self_attn.q_proj", 2048, 2048});
      s.push_back({"model.layers." + std::to_string(l) + ".self_attn.v_proj", 512, 2048});
    }
  } else {
    for (int l = 0; l < 6; ++l) {
      s.push_back({"encoder.layer." + std::to_string(l) + ".attention.self.query", 384, 384});
      s.push_back({"encoder.layer." + std::to_string(l) + ".attention.self.value", 384, 384});
    }
  }
  return s;
}

at::Tensor base_weight(const Shape& s, const std::string& kind, at::Generator& gen, const lorascope::SafetensorsFile* file) {
  if (kind == "minilm") return file->tensor(s.name + ".weight");
  if (kind == "gaussian") return at::randn({s.out, s.in}, gen) * 0.02;
  const int64_t p = std::min(s.out, s.in);
  const auto U = std::get<0>(at::linalg_qr(at::randn({s.out, p}, gen), "reduced"));
  const auto V = std::get<0>(at::linalg_qr(at::randn({s.in, p}, gen), "reduced"));
  const auto sv = at::pow(at::arange(1, p + 1, at::kFloat), -0.5);
  return at::matmul(U * sv.unsqueeze(0), V.t());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cost of the adapter geometry statistics per log"};
  std::string model = "llama", base = "powerlaw", minilm, base_dtype = "float64";
  int threads = 1, logs = 3, r = 8;
  app.add_option("--model", model)->check(CLI::IsMember({"llama", "minilm"}));
  app.add_option("--base", base)->check(CLI::IsMember({"gaussian", "powerlaw", "minilm"}));
  app.add_option("--minilm", minilm, "directory of all-MiniLM-L6-v2 (for --base minilm)");
  app.add_option("--base-dtype", base_dtype)->check(CLI::IsMember({"float64", "float32"}));
  app.add_option("--threads", threads);
  app.add_option("--logs", logs);
  app.add_option("--r", r);
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(threads);
  at::NoGradGuard no_grad;
  std::unique_ptr<lorascope::SafetensorsFile> file;
  if (base == "minilm") file = std::make_unique<lorascope::SafetensorsFile>(minilm + "/model.safetensors");

  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  std::vector<lorascope::GeometryInput> inputs;
  std::vector<lorascope::AdapterRef> refs;
  for (const auto& s : shapes(model)) {
    lorascope::GeometryInput g{s.name, base_weight(s, base, gen, file.get()),
                               at::randn({r, s.in}, gen) / std::sqrt(static_cast<double>(s.in)),
                               at::randn({s.out, r}, gen) * 0.02, 2.0};
    refs.push_back({s.name, g.A, g.B, g.scaling});
    inputs.push_back(std::move(g));
  }
  const at::ScalarType storage = base_dtype == "float32" ? at::kFloat : at::kDouble;
  lorascope::GeometryMonitor monitor(lorascope::GeometryOptions{}, storage);
  // The first observation computes and caches the base SVDs; time them apart.
  auto t = Clock::now();
  const double base_c0 = cpu_seconds();
  std::vector<lorascope::BaseSpectrum> bases;
  for (const auto& in : inputs) bases.push_back(lorascope::base_spectrum(in.W, storage));
  const double base_svd = seconds_since(t), base_svd_cpu = cpu_seconds() - base_c0;
  (void)monitor.observe(inputs);
  double spectra = 0, geometry = 0, geometry_cpu = 0;
  json krylov = json::array();
  for (int i = 0; i < logs; ++i) {
    for (auto& in : inputs) in.B.add_(at::randn(in.B.sizes(), gen) * 0.002);
    t = Clock::now();
    (void)lorascope::adapter_spectra(refs);
    spectra += seconds_since(t);
    t = Clock::now();
    const double c0 = cpu_seconds();
    (void)monitor.observe(inputs);
    geometry += seconds_since(t);
    geometry_cpu += cpu_seconds() - c0;
  }
  lorascope::GeometryOptions opt;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto& in = inputs[i];
    krylov.push_back(lorascope::updated_top_svd(bases[i], in.B, in.A, in.scaling, opt.intruder_top_k).krylov_dim);
  }
  const json row = {{"model", model}, {"base", base}, {"threads", threads}, {"base_dtype", base_dtype}, {"adapters", inputs.size()}, {"r", r},
                    {"base_svd_s", base_svd}, {"base_svd_cpu_s", base_svd_cpu},
                    {"cache_bytes", monitor.cached_bytes()}, {"spectra_s", spectra / logs},
                    {"geometry_s", geometry / logs}, {"geometry_cpu_s", geometry_cpu / logs}, {"krylov_dims", krylov}};
  std::printf("%s\n", row.dump().c_str());
  return 0;
}
