// ESD power-law alpha (models/esd_alpha.h) against weightwatcher's own numbers on the matrices of
// tests/golden/esd_alpha/cases.json (regenerate with tests/golden/make_esd_alpha.py), and the
// MLE against a sample of a known power law.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <random>

#include "models/esd_alpha.h"

namespace lorascope {
namespace {

TEST(EsdAlphaTest, MatchesWeightwatcherOnGoldenMatrices) {
  const std::string path = std::string(LORASCOPE_SOURCE_DIR) + "/tests/golden/esd_alpha/cases.json";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path << " missing: run tests/golden/make_esd_alpha.py";
  const auto doc = nlohmann::json::parse(in);
  ASSERT_GE(doc["cases"].size(), 5u);
  for (const auto& c : doc["cases"]) {
    const auto w = c["weights"].get<std::vector<double>>();
    const int64_t rows = c["shape"][0], cols = c["shape"][1];
    const auto W = at::from_blob(const_cast<double*>(w.data()), {rows, cols}, at::kDouble).to(at::kFloat);
    const auto fit = esd_alpha(W);
    const std::string name = c["name"];
    ASSERT_EQ(fit.status, c["status"].get<std::string>()) << name;
    if (fit.status != "success") {
      EXPECT_TRUE(std::isnan(fit.alpha)) << name;
      continue;
    }
    // Same float64 eigenvalues up to LAPACK rounding (~1e-15): the fits agree far below 1e-9.
    EXPECT_NEAR(fit.alpha, c["alpha"].get<double>(), 1e-9 * c["alpha"].get<double>()) << name;
    EXPECT_NEAR(fit.xmin, c["xmin"].get<double>(), 1e-12 * c["xmin"].get<double>()) << name;
    EXPECT_NEAR(fit.D, c["D"].get<double>(), 1e-9) << name;
    EXPECT_NEAR(fit.sigma, c["sigma"].get<double>(), 1e-9) << name;
    EXPECT_EQ(fit.num_pl_spikes, c["num_pl_spikes"].get<int64_t>()) << name;
    EXPECT_EQ(fit.num_evals, c["num_evals"].get<int64_t>()) << name;
  }
}

TEST(EsdAlphaTest, RecoversTheExponentOfAPowerLawSample) {
  // x = xmin * u^(-1 / (alpha - 1)) is Pareto with density ~ x^-alpha above xmin; below it,
  // a bulk of small values that the KS scan must cut off.
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  const double alpha = 2.5, xmin = 1.0;
  std::vector<double> ev;
  for (int i = 0; i < 3000; ++i) ev.push_back(xmin * std::pow(1.0 - uni(rng), -1.0 / (alpha - 1.0)));
  for (int i = 0; i < 1000; ++i) ev.push_back(0.05 + 0.5 * uni(rng));
  const auto fit = fit_power_law(ev);
  ASSERT_EQ(fit.status, "success");
  // Standard error (alpha - 1) / sqrt(n) = 0.027 for n = 3000 (more as the KS scan may start
  // the tail above the true xmin, but every tail above it is Pareto with the same alpha); the
  // bulk below 0.55 must be cut off.
  EXPECT_NEAR(fit.alpha, alpha, 0.15);
  EXPECT_GE(fit.xmin, 1.0);
  EXPECT_LT(fit.xmin, 2.5);
  EXPECT_GT(fit.num_pl_spikes, 1000);
  // The MLE at the chosen xmin, recomputed here.
  double s = 0;
  int64_t n = 0;
  for (double e : ev) {
    if (e >= fit.xmin) {
      s += std::log(e / fit.xmin);
      ++n;
    }
  }
  EXPECT_EQ(n, fit.num_pl_spikes);
  EXPECT_NEAR(fit.alpha, 1.0 + n / s, 1e-9);
}

TEST(EsdAlphaTest, DegenerateInputs) {
  EXPECT_EQ(fit_power_law({}).status, "failed");
  EXPECT_EQ(fit_power_law({1e-7, 1e-6}).status, "failed");  // nothing above weightwatcher's 1e-5
  const auto equal = fit_power_law(std::vector<double>(12, 2.0));
  EXPECT_EQ(equal.status, "success");
  EXPECT_EQ(equal.alpha, 0.0);  // what WWFit reports: its arrays' initial alpha = 0, D = 1
  EXPECT_EQ(esd_alpha(at::ones({5, 30})).status, "skipped");  // M < min_evals = 8
}

}  // namespace
}  // namespace lorascope
