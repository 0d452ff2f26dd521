// The kernels of Muon's fused step on thin float32 factors (optim/thin_factor_kernels.h) against
// float64 formulas, and the fused step on ill-conditioned gradients against the float64
// Newton-Schulz iteration.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "optim/muon.h"
#include "optim/orthogonalize.h"
#include "optim/thin_factor_kernels.h"
#include "optim/thin_muon_step.h"
#include "tensor_fixtures.h"

namespace lorascope {
namespace {

// The r x n view of a contiguous factor as the kernels see it: the factor itself when wide,
// its transpose when tall.
at::Tensor view_of(const at::Tensor& factor) { return factor.size(0) <= factor.size(1) ? factor : factor.t(); }

struct Case {
  int64_t rows, cols;
};

// Wide and tall, each rank the kernels are built for; widths with tails past the 8-column
// vectors and the 128-column blocks.
std::vector<Case> cases() {
  return {{8, 1000}, {1000, 8}, {16, 2048}, {2051, 16}, {32, 389}, {389, 32}, {16, 128}};
}

// Runs body with the AVX-512 kernels (where the CPU has them) and with the portable ones.
template <typename Body>
void on_both_paths(Body body) {
  for (bool avx512 : {true, false}) {
    SCOPED_TRACE(avx512 ? "AVX-512 allowed" : "portable");
    thin_factor_kernels_allow_avx512(avx512);
    body();
  }
  thin_factor_kernels_allow_avx512(true);
}

void check_direction_and_gram_follow_float64() {
  for (const auto& c : cases()) {
    const bool wide = c.rows <= c.cols;
    const int64_t r = wide ? c.rows : c.cols, n = wide ? c.cols : c.rows;
    ASSERT_TRUE(thin_factor_kernels_support(r));
    for (int mode = 0; mode < 4; ++mode) {  // none, heavy ball, Nesterov, Nesterov from a fresh buffer
      const auto g = randn({c.rows, c.cols}, 7 + mode).to(at::kFloat);
      auto m = randn({c.rows, c.cols}, 17 + mode).to(at::kFloat);
      auto d = at::full({c.rows, c.cols}, 1e30, at::kFloat);
      const auto g64 = g.to(at::kDouble), m64 = m.to(at::kDouble);
      ThinMomentum mom;
      mom.enabled = mode > 0;
      mom.nesterov = mode >= 2;
      mom.fresh = mode == 3;
      mom.mu = 0.9f;
      std::vector<double> gram(r * r);
      thin_direction_gram(g.data_ptr<float>(), m.data_ptr<float>(), d.data_ptr<float>(), mom, r, n, wide,
                          gram.data());
      const auto m_ref = mode == 0 ? m64 : mode == 3 ? g64 : g64 + 0.9 * m64;  // mu in float32: 0.9f
      const auto direction = mode == 0 ? g : mode == 1 ? m : d;
      if (mode > 0) {
        EXPECT_LT(max_abs(m.to(at::kDouble) - m_ref), 1e-6 * max_abs(m_ref)) << c.rows << "x" << c.cols;
      }
      if (mode >= 2) {
        const auto d_ref = g64 + 0.9 * m_ref;
        EXPECT_LT(max_abs(d.to(at::kDouble) - d_ref), 1e-6 * max_abs(d_ref)) << c.rows << "x" << c.cols;
      }
      // The Gram matrix of the float32 direction the kernel wrote, to float64 rounding.
      const auto X = view_of(direction.to(at::kDouble));
      const auto ref = at::matmul(X, X.t());
      const auto got = at::from_blob(gram.data(), {r, r}, at::kDouble).clone();
      EXPECT_LT(max_abs(got - ref), 1e-13 * max_abs(ref)) << c.rows << "x" << c.cols << " mode " << mode;
    }
  }
}

TEST(ThinFactorKernelsTest, DirectionAndGramFollowFloat64) {
  on_both_paths(check_direction_and_gram_follow_float64);
}

void check_decayed_update_follows_float64() {
  for (const auto& c : cases()) {
    const bool wide = c.rows <= c.cols;
    const int64_t r = wide ? c.rows : c.cols, n = wide ? c.cols : c.rows;
    auto w = randn({c.rows, c.cols}, 3).to(at::kFloat);
    const auto x = randn({c.rows, c.cols}, 4).to(at::kFloat), q = randn({r, r}, 5).to(at::kFloat);
    const auto w0 = w.to(at::kDouble);
    thin_decayed_update(w.data_ptr<float>(), q.data_ptr<float>(), x.data_ptr<float>(), r, n, wide, 0.99f, 0.02f);
    // In the r x n view: W <- keep W - rate Q X.
    const auto step = at::matmul(q.to(at::kDouble), view_of(x.to(at::kDouble)));
    const auto ref = double(0.99f) * w0 - double(0.02f) * (wide ? step : step.t());
    // float32 products and sums over r terms.
    EXPECT_LT(max_abs(w.to(at::kDouble) - ref), 1e-6 * (max_abs(w0) + 0.02 * max_abs(step)))
        << c.rows << "x" << c.cols;
    EXPECT_GT(max_abs(w.to(at::kDouble) - w0), 1e-2);  // it moved
  }
}

TEST(ThinFactorKernelsTest, DecayedUpdateFollowsFloat64) {
  on_both_paths(check_decayed_update_follows_float64);
  EXPECT_FALSE(thin_factor_kernels_support(12));
  EXPECT_THROW(thin_direction_gram(nullptr, nullptr, nullptr, ThinMomentum{}, 12, 100, true, nullptr),
               std::invalid_argument);
}

void check_fused_step_on_ill_conditioned_gradients() {
  // With momentum 0, no decay, lr 1 and W = 0, the step leaves W = -NS(G). The float64 Gram
  // matrix makes a restart unnecessary: the result must stay as close to the float64 direct
  // iteration as the float32 direct iteration does (seen: within 2.1x; a float32 Gram matrix
  // without a restart: up to 190x).
  for (const auto& c : std::vector<Case>{{16, 2048}, {2048, 16}, {8, 4096}, {32, 1000}}) {
    const int64_t k = std::min(c.rows, c.cols);
    for (double cond : {1.0, 1e-3, 1e-5}) {
      std::vector<double> spectrum;
      for (int64_t i = 0; i < k; ++i) spectrum.push_back(std::pow(cond, static_cast<double>(i) / (k - 1)));
      const auto G = with_spectrum(c.rows, c.cols, spectrum, 90 + c.cols);
      const auto ref = newton_schulz(G, 5);
      const auto G32 = G.to(at::kFloat);
      const double direct_err = max_abs(newton_schulz(G32, 5).to(at::kDouble) - ref);
      MuonOptions o;
      o.momentum = 0;
      o.lr = 1;
      auto w = at::zeros({c.rows, c.cols}, at::kFloat);
      w.mutable_grad() = G32;
      ASSERT_TRUE(thin_muon_step_applies(w, o));
      at::Tensor no_momentum;
      thin_muon_step(w, no_momentum, o, 1.0);
      const double err = max_abs(-w.to(at::kDouble) - ref);
      EXPECT_LT(err, std::max(4.0 * direct_err, 1e-6)) << c.rows << "x" << c.cols << " cond " << cond
                                                       << " direct " << direct_err;
    }
  }
}

TEST(ThinFactorKernelsTest, FusedMuonStepOnIllConditionedGradientsIsAsAccurateAsTheDirectForm) {
  on_both_paths(check_fused_step_on_ill_conditioned_gradients);
}

}  // namespace
}  // namespace lorascope
