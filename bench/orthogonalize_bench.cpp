// Orthogonalizers on thin LoRA-factor shapes (r x n float32, CPU): time per call and distance
// from the exact polar factor U V^T, printed as a Markdown table (BENCHMARKS.md).
//
//   build/bench/lorascope_ortho_bench --threads 1
//
// Methods, each as Muon calls it through orthogonalize():
//   thin_exact        (G G^T)^(-1/2) G via a float64 r x r eigh (optim/thin_polar.h)
//   newton_schulz     quintic, 5 steps (the Eigen kernel for a small side <= 64, optim/small_matrix.h)
//   polar_express     5 and 8 steps (ATen, optim/polar_express.h)
//   svd_exact         the exact path of orthogonalize(): Householder QR + r x r Jacobi SVD (Eigen)
//   svd_aten          at::linalg_svd, the reference path
// Error: max_i |sigma_i(X) - 1| and max |X - U V^T| against a float64 SVD of G.
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "optim/orthogonalize.h"
#include "optim/polar_express.h"
#include "optim/thin_polar.h"

namespace {

using Clock = std::chrono::steady_clock;

// Best (minimum) seconds per call over at least `min_reps` calls and ~0.3 s: on a shared machine
// the minimum is the least disturbed estimate of the cost.
double time_call(const std::function<at::Tensor()>& f, int min_reps) {
  (void)f();  // warm-up
  std::vector<double> samples;
  const auto start = Clock::now();
  for (int i = 0; i < 1000 && (i < min_reps || std::chrono::duration<double>(Clock::now() - start).count() < 0.3); ++i) {
    const auto t0 = Clock::now();
    auto out = f();
    samples.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return *std::min_element(samples.begin(), samples.end());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"orthogonalizers on r x n float32 matrices: time and error"};
  int threads = 1, reps = 5;
  std::vector<int64_t> ranks = {8, 16, 64}, widths = {384, 1024, 2048, 4096};
  app.add_option("--threads", threads, "intra-op threads");
  app.add_option("--reps", reps, "minimum calls per timing");
  app.add_option("--ranks", ranks);
  app.add_option("--widths", widths);
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(threads);
  at::manual_seed(0);

  using lorascope::OrthoKind;
  struct Method {
    std::string name;
    std::function<at::Tensor(const at::Tensor&)> run;
  };
  const std::vector<Method> methods = {
      {"thin_exact", [](const at::Tensor& G) { return lorascope::orthogonalize(G, {OrthoKind::ThinExact}); }},
      {"newton_schulz (5)", [](const at::Tensor& G) { return lorascope::orthogonalize(G, {OrthoKind::NewtonSchulz, 0.0, 5}); }},
      {"polar_express (5)", [](const at::Tensor& G) { return lorascope::orthogonalize(G, {OrthoKind::PolarExpress, 0.0, 5}); }},
      {"polar_express (8)", [](const at::Tensor& G) { return lorascope::orthogonalize(G, {OrthoKind::PolarExpress, 0.0, 8}); }},
      {"svd_exact (QR + Jacobi)", [](const at::Tensor& G) { return lorascope::orthogonalize(G, {OrthoKind::Exact}); }},
      {"svd_aten (linalg_svd)", [](const at::Tensor& G) { return lorascope::orthogonalize_exact(G); }},
  };
  std::printf("threads %d, float32, Gaussian G (r x n), best time per call\n\n", threads);
  std::printf("| r | n | method | time (us) | vs thin_exact | max abs(sigma - 1) | max abs(X - U V^T) |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- |\n");
  for (int64_t r : ranks) {
    for (int64_t n : widths) {
      auto G = at::randn({r, n}, at::kFloat);
      auto [U, S, Vh] = at::linalg_svd(G.to(at::kDouble), false);
      auto polar = at::matmul(U, Vh);
      double t_thin = 0;
      for (const auto& m : methods) {
        const double t = time_call([&] { return m.run(G); }, reps);
        if (m.name == "thin_exact") t_thin = t;
        auto X = m.run(G).to(at::kDouble);
        const double sv_err = (at::linalg_svdvals(X) - 1).abs().max().item<double>();
        const double polar_err = (X - polar).abs().max().item<double>();
        std::printf("| %lld | %lld | %s | %.1f | %.2fx | %.1e | %.1e |\n", static_cast<long long>(r),
                    static_cast<long long>(n), m.name.c_str(), t * 1e6, t / t_thin, sv_err, polar_err);
      }
    }
  }
  return 0;
}
