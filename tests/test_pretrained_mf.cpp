// LoRA on a pretrained two-factor model (lora-learning-dynamics-matrix-factorization.md):
// the Section 5.1 construction, the analytic gradients against autograd, and the paper's claims
// on lorascope's own runs (m = n = 10, h = 100, r = 4, sigma = 5). The paper's GD step is 1e-4;
// to stay fast most claim tests take 10x the step for 1/10 of the steps (same flow time 3, by
// which every final loss has settled): on these tasks the two give the same final losses to three
// digits (seed 0, alpha 1e-3: 2.264e-12 with 30000 steps of 1e-4, 2.255e-12 with 3000 of 1e-3).
// AlignmentPhaseComesBeforeTheLossDrops keeps the paper's step.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "models/pretrained_lora_mf.h"
#include "tests/memory_sink.h"
#include "trainer/pretrained_mf_recipe.h"
#include "trainer/pretrained_mf_schema.h"

namespace lorascope {
namespace {

using Eigen::MatrixXd;
using Eigen::VectorXd;
using nlohmann::json;

struct Run {
  PretrainedMFOutcome outcome;
  std::vector<json> records;
  double final_loss() const { return outcome.summary["final_loss"].get<double>(); }
};

Run run(const std::vector<std::string>& sets) {
  auto specs = resolve_runs_json(json::object(), "test", sets, pretrained_mf_schema(),
                                 check_pretrained_mf_config);
  const auto cfg = PretrainedMFConfig::from_json(specs.at(0).config);
  auto setup = pretrained_mf_setup(cfg);
  MemorySink sink;
  Run r;
  r.outcome = train_pretrained_mf(cfg, setup, sink);
  r.records = std::move(sink.records);
  EXPECT_EQ(r.outcome.status, "completed");
  return r;
}

PretrainedMF task(int64_t seed, TargetPair pair) {
  PretrainedMFShape shape;
  shape.pair = pair;
  Gaussian gauss(static_cast<uint64_t>(seed));
  return make_pretrained_mf(shape, gauss);
}

double max_abs(const MatrixXd& M) { return M.cwiseAbs().maxCoeff(); }

TEST(PretrainedMFTest, PretrainedModelSatisfiesAssumptions21And22) {
  for (auto pair : {TargetPair::Top, TargetPair::Bottom}) {
    const auto mf = task(3, pair);
    const int64_t i = pair == TargetPair::Top ? 0 : 9;
    EXPECT_EQ(mf.pair_index, i);
    // Assumption 2.1: W2 W1 = Y_pre, G orthogonal.
    EXPECT_LT(max_abs(mf.W2 * mf.W1 - mf.Y_pre), 1e-13);
    EXPECT_LT(max_abs(mf.G.transpose() * mf.G - MatrixXd::Identity(100, 100)), 1e-13);
    // (u, v) is a singular pair of Y_pre, checked with an independent SVD of Y_pre.
    Eigen::BDCSVD<MatrixXd> svd(mf.Y_pre);
    EXPECT_NEAR(mf.S(i), svd.singularValues()(i), 1e-12);
    EXPECT_LT((mf.Y_pre * mf.v() - mf.S(i) * mf.u()).norm(), 1e-12);
    // W2 = 1.05 U_Y S^(1/2) G^T: singular values 1.05 sqrt(S), W2^T u = sigma_W2 g, W1 v = sigma_W1 g.
    Eigen::BDCSVD<MatrixXd> w2(mf.W2);
    EXPECT_NEAR(w2.singularValues()(i), 1.05 * std::sqrt(svd.singularValues()(i)), 1e-12);
    EXPECT_LT((mf.W2.transpose() * mf.u() - mf.sigma_W2 * mf.g()).norm(), 1e-12);
    EXPECT_LT((mf.W1 * mf.v() - mf.sigma_W1 * mf.g()).norm(), 1e-12);
    EXPECT_NEAR(mf.delta_w(), 1 / (1.05 * 1.05), 1e-14);
    // Assumption 2.2: Delta Y = 5 u v^T, a rank-one update along Y_pre's own singular pair.
    const MatrixXd dY = mf.Y_ft - mf.Y_pre;
    Eigen::BDCSVD<MatrixXd> d(dY);
    EXPECT_NEAR(d.singularValues()(0), 5.0, 1e-12);
    EXPECT_LT(d.singularValues()(1), 1e-12);
    EXPECT_LT(max_abs(dY - 5.0 * mf.u() * mf.v().transpose()), 1e-14);
  }
}

at::Tensor to_tensor(const MatrixXd& M) {
  // Eigen is column-major: its buffer is M^T in row-major order.
  auto t = at::from_blob(const_cast<double*>(M.data()), {M.cols(), M.rows()}, at::kDouble);
  return t.t().contiguous();
}

double max_diff(const at::Tensor& t, const MatrixXd& M) {
  return (t - to_tensor(M)).abs().max().item<double>();
}

TEST(PretrainedMFTest, AnalyticGradientsMatchAutogradForAllFourFactors) {
  const auto mf = task(1, TargetPair::Top);
  Gaussian gauss(7);
  LoraFactors f = init_lora(mf, PretrainedLoraInit::Small, 4, 0.3, gauss);
  f.B1 = 0.2 * gauss.matrix(100, 4);  // a generic point: B = 0 would zero two of the gradients
  f.B2 = 0.2 * gauss.matrix(10, 4);
  LoraFactors g;
  const double loss = pretrained_mf_loss(mf, f, &g);

  auto B2 = to_tensor(f.B2).set_requires_grad(true), A2 = to_tensor(f.A2).set_requires_grad(true);
  auto B1 = to_tensor(f.B1).set_requires_grad(true), A1 = to_tensor(f.A1).set_requires_grad(true);
  auto P = at::matmul(to_tensor(mf.W2) + at::matmul(B2, A2), to_tensor(mf.W1) + at::matmul(B1, A1));
  auto L = 0.5 * (P - to_tensor(mf.Y_ft)).pow(2).sum();
  auto grads = torch::autograd::grad({L}, {B2, A2, B1, A1});
  EXPECT_NEAR(loss, L.item<double>(), 1e-12 * loss);
  const double scale = grads[0].abs().max().item<double>();
  EXPECT_LT(max_diff(grads[0], g.B2), 1e-12 * scale);
  EXPECT_LT(max_diff(grads[1], g.A2), 1e-12 * scale);
  EXPECT_LT(max_diff(grads[2], g.B1), 1e-12 * scale);
  EXPECT_LT(max_diff(grads[3], g.A1), 1e-12 * scale);

  // The allocation-free GD step takes the same step from the same point.
  LoraFactors stepped = f;
  PretrainedMFDescent gd(mf, stepped);
  EXPECT_DOUBLE_EQ(gd.step(stepped, 1e-3), loss);
  EXPECT_LT(max_abs(stepped.A1 - (f.A1 - 1e-3 * g.A1)), 1e-15);
  EXPECT_LT(max_abs(stepped.B1 - (f.B1 - 1e-3 * g.B1)), 1e-15);
  EXPECT_LT(max_abs(stepped.A2 - (f.A2 - 1e-3 * g.A2)), 1e-15);
  EXPECT_LT(max_abs(stepped.B2 - (f.B2 - 1e-3 * g.B2)), 1e-15);
}

TEST(PretrainedMFTest, AlignmentStatsMatchTheDefinition) {
  const auto mf = task(2, TargetPair::Top);
  Gaussian gauss(5);
  LoraFactors f = init_lora(mf, PretrainedLoraInit::Small, 4, 1.0, gauss);
  f.B1 = gauss.matrix(100, 4);
  // Plant gamma_1 = [g; v] as the dominant direction of Z1 = [B1; A1^T], tilted by a known angle.
  VectorXd gamma(110), w(110);
  gamma << mf.g(), mf.v();
  gamma.normalize();
  w = gauss.matrix(110, 1);
  w -= w.dot(gamma) * gamma;
  w.normalize();
  const double theta = 1e-3;
  const VectorXd dir = std::cos(theta) * gamma - std::sin(theta) * w;
  // Other columns orthogonal to dir and smaller: dir is exactly the top left singular vector.
  MatrixXd Z1(110, 4);
  Z1 << f.B1, f.A1.transpose();
  Z1 -= dir * (dir.transpose() * Z1);
  Z1.col(0) = 50.0 * dir;
  f.B1 = Z1.topRows(100);
  f.A1 = Z1.bottomRows(10).transpose();
  const auto a = alignment_stats(mf, f);
  // Reference: dense SVD of Z1, cos from the plain inner product.
  Eigen::BDCSVD<MatrixXd> svd(Z1, Eigen::ComputeThinU);
  const double cos_ref = std::abs(svd.matrixU().col(0).dot(gamma));
  EXPECT_NEAR(a.one_minus_cos, 1 - cos_ref, 1e-12);
  EXPECT_NEAR(a.one_minus_cos, 1 - std::cos(theta), 1e-14);  // the planted angle
  EXPECT_NEAR(a.z1_norm, svd.singularValues()(0), 1e-12);
  MatrixXd Z2(110, 4);
  Z2 << f.B2, f.A2.transpose();
  EXPECT_NEAR(a.z2_norm, Eigen::BDCSVD<MatrixXd>(Z2).singularValues()(0), 1e-12);
}

// Theorem 4.1: under spectral initialization the dynamics stay diagonal in the (U_Y, V_Y)
// basis and GD drives the loss to machine precision whatever alpha is.
TEST(PretrainedMFTest, SpectralInitReachesMachinePrecisionAndStaysDiagonal) {
  for (double alpha : {1e-3, 1e-4, 1e-5}) {
    const auto mf = task(0, TargetPair::Top);
    Gaussian gauss(11);
    LoraFactors f = init_lora(mf, PretrainedLoraInit::Spectral, 4, alpha, gauss);
    PretrainedMFDescent gd(mf, f);
    for (int s = 0; s < 3000; ++s) gd.step(f, 1e-3);
    const double loss = pretrained_mf_loss(mf, f);
    EXPECT_LT(loss, 1e-10) << "alpha " << alpha;  // measured ~1e-26
    const MatrixXd D = mf.U_Y.transpose() * lora_update(mf, f) * mf.V_Y;
    MatrixXd off = D;
    off.diagonal().setZero();
    EXPECT_LT(max_abs(off), 1e-12 * max_abs(D)) << "alpha " << alpha;
    EXPECT_NEAR(D(0, 0), 5.0, 1e-6);
  }
}

// Theorem 3.1 / Fig. 1: under small initialization the loss settles at a floor that shrinks
// with alpha (averaged over seeds), while spectral init goes below 1e-10; Claim 3.2: smaller
// alpha also leaves U_{Z1}^S better aligned with gamma_1. The paper's rates are loose upper
// bounds here: Claim 3.2 gives 1 - cos^2 <= c4 alpha^((1+dw)/(3+dw)) ~ alpha^0.49 and eq. (15) a
// floor linear in that; the simulation gives 1 - cos ~ alpha^2 and a floor ~ alpha^4 ~ (1 - cos)^2.
TEST(PretrainedMFTest, SmallInitFinalLossAndMisalignmentShrinkWithAlpha) {
  const std::vector<double> alphas = {1e-3, 1e-4, 1e-5};
  std::vector<double> mean_loss, mean_misalign;
  for (double alpha : alphas) {
    double loss = 0, mis = 0;
    for (int seed : {0, 1, 2}) {
      auto r = run({"lora.alpha=" + json(alpha).dump(), "seed=" + std::to_string(seed),
                    "train.lr=1e-3", "train.steps=3000"});
      loss += r.final_loss() / 3;
      mis += r.outcome.summary["final_one_minus_cos"].get<double>() / 3;
    }
    mean_loss.push_back(loss);
    mean_misalign.push_back(mis);
    auto spectral = run({"lora.init=spectral", "lora.alpha=" + json(alpha).dump(),
                         "train.lr=1e-3", "train.steps=3000"});
    EXPECT_LT(spectral.final_loss(), 1e-10) << "alpha " << alpha;
  }
  std::printf("mean final loss over 3 seeds for alpha 1e-3, 1e-4, 1e-5: %.3e %.3e %.3e\n",
              mean_loss[0], mean_loss[1], mean_loss[2]);
  std::printf("mean final 1-cos: %.3e %.3e %.3e\n", mean_misalign[0], mean_misalign[1],
              mean_misalign[2]);
  for (size_t k = 0; k + 1 < alphas.size(); ++k) {
    // Measured: about 1e4 per decade of alpha (the floor scales like alpha^4); ask for 1e2.
    EXPECT_LT(mean_loss[k + 1], 1e-2 * mean_loss[k]) << "alpha " << alphas[k + 1];
    EXPECT_LT(mean_misalign[k + 1], 1e-1 * mean_misalign[k]) << "alpha " << alphas[k + 1];
  }
  EXPECT_GT(mean_loss[0], 1e-16);  // a real floor, not machine precision
}

// Sec. 3.2 / Fig. 1 right: U_{Z1}^S aligns with gamma_1 while the loss has not moved and ||Z1||
// is still tiny; only then does ||Z1|| grow and the loss drop.
TEST(PretrainedMFTest, AlignmentPhaseComesBeforeTheLossDrops) {
  auto r = run({"lora.alpha=1e-5", "train.steps=12000", "train.log_every=50"});
  const auto& s = r.outcome.summary;
  ASSERT_FALSE(s["align_step"].is_null());
  ASSERT_FALSE(s["drop_step"].is_null());
  const int64_t align = s["align_step"], drop = s["drop_step"];
  std::printf("align_step %lld (1-cos <= 1e-3), drop_step %lld (loss <= L(0)/2)\n",
              static_cast<long long>(align), static_cast<long long>(drop));
  EXPECT_LT(2 * align, drop);
  const double L0 = r.records.front()["loss"];
  for (const auto& rec : r.records) {
    const int64_t step = rec["step"];
    if (step == align) {
      EXPECT_GT(rec["loss"].get<double>(), 0.999 * L0);  // the loss has not moved yet
      EXPECT_LT(rec["z1_norm"].get<double>(), 1e-3);     // LoRA weights still near the saddle
    }
    if (step == drop) {
      EXPECT_LT(rec["one_minus_cos"].get<double>(), 1e-6);  // aligned before the drop
    }
  }
}

// Eq. (6): the time to fit is log(1/alpha) / (sigma sigma_W2) up to constants. In the alignment
// phase ||Z1|| grows like exp(sigma sigma_W2 t) (Claim 3.1), so each decade of alpha should delay
// the loss drop by ln(10) / (sigma sigma_W2) in flow time. Measured (seed 0, sigma_W2 = 2.385):
// 0.193 predicted, 0.20 per decade observed.
TEST(PretrainedMFTest, EachDecadeOfAlphaDelaysTheDropByLn10OverSigmaSigmaW2) {
  std::vector<double> t_drop;
  double sigma_W2 = 0;
  for (double alpha : {1e-3, 1e-4, 1e-5}) {
    auto r = run({"lora.alpha=" + json(alpha).dump(), "train.lr=1e-3", "train.steps=1200",
                  "train.log_every=2"});
    ASSERT_FALSE(r.outcome.summary["drop_step"].is_null()) << alpha;
    t_drop.push_back(r.outcome.summary["drop_step"].get<double>() * 1e-3);
    sigma_W2 = r.outcome.summary["sigma_W2"];
  }
  const double predicted = std::log(10.0) / (5.0 * sigma_W2);
  std::printf("drop times %.3f %.3f %.3f, per decade predicted %.4f\n", t_drop[0], t_drop[1],
              t_drop[2], predicted);
  EXPECT_NEAR((t_drop[1] - t_drop[0]) / predicted, 1.0, 0.1);
  EXPECT_NEAR((t_drop[2] - t_drop[1]) / predicted, 1.0, 0.1);
}

// App. H.1 (Fig. 3 vs 4): the same ||Delta Y|| on the bottom singular pair is learned more slowly,
// by the ratio of the sigma_W2 of the two pairs (both phases scale with 1/(sigma sigma_W2)).
// Measured: seeds 0, 1, 2 give drop-time ratios 19.9, 17.3, 7.6 against sigma_W2 ratios 22.7,
// 19.0, 7.55; seed 2 is checked here (the fastest bottom pair).
TEST(PretrainedMFTest, BottomPairIsSlowerBySigmaW2Ratio) {
  auto top = run({"seed=2", "lora.alpha=1e-5", "train.lr=1e-3", "train.steps=1500",
                  "train.log_every=5"});
  auto bottom = run({"seed=2", "lora.alpha=1e-5", "task.pair=bottom", "train.lr=1e-3",
                     "train.steps=8000", "train.log_every=5"});
  const auto& st = top.outcome.summary;
  const auto& sb = bottom.outcome.summary;
  ASSERT_FALSE(st["drop_step"].is_null());
  ASSERT_FALSE(sb["drop_step"].is_null());
  const double time_ratio = sb["drop_step"].get<double>() / st["drop_step"].get<double>();
  const double sigma_ratio = st["sigma_W2"].get<double>() / sb["sigma_W2"].get<double>();
  std::printf("drop-time ratio bottom/top %.3f, sigma_W2 ratio top/bottom %.3f\n", time_ratio,
              sigma_ratio);
  EXPECT_NEAR(time_ratio / sigma_ratio, 1.0, 0.15);
}

TEST(PretrainedMFTest, ConfigErrorsNameTheKey) {
  auto resolve = [](const std::vector<std::string>& sets) {
    return resolve_runs_json(json::object(), "test", sets, pretrained_mf_schema(),
                             check_pretrained_mf_config);
  };
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"lora.rank=11"}, "lora.rank"},
      {{"task.h=5"}, "task.h"},
      {{"task.pair=middle"}, "task.pair"},
      {{"lora.init=pissa"}, "lora.init"},
      {{"lora.alpha=0"}, "lora.alpha"},
      {{"train.lr=-1"}, "train.lr"},
      {{"lora.alpa=1"}, "lora.alpha"},  // the nearest key is suggested
  };
  for (const auto& [sets, key] : cases) {
    try {
      resolve(sets);
      ADD_FAILURE() << sets[0] << " was accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(resolve({}).size(), 1u);
}

namespace fs = std::filesystem;

int lorascope_cli(const std::string& args, const fs::path& err) {
  const std::string cmd =
      std::string(LORASCOPE_BINARY) + " --threads 1 " + args + " >/dev/null 2>" + err.string();
  return WEXITSTATUS(std::system(cmd.c_str()));
}

TEST(PretrainedMFCliTest, SweepWritesRunsIndexAndSeedSummary) {
  const fs::path out = fs::temp_directory_path() / "lorascope_pretrained_mf_cli";
  const fs::path err = fs::temp_directory_path() / "lorascope_pretrained_mf_cli.err";
  fs::remove_all(out);
  const fs::path cfg = fs::temp_directory_path() / "lorascope_pretrained_mf_cli.json";
  std::ofstream(cfg) << R"({"name": "t", "train": {"steps": 200, "log_every": 50, "lr": 1e-3},
                            "grid": {"lora.alpha": [1e-3, 1e-4], "seed": [0, 1]}})";
  ASSERT_EQ(lorascope_cli("pretrained-mf --config " + cfg.string() + " --out " + out.string(), err), 0);
  const auto index = json::parse(std::ifstream(out / "index.json"));
  EXPECT_EQ(index["command"], "pretrained-mf");
  ASSERT_EQ(index["runs"].size(), 4u);
  const std::string first = index["runs"][0]["dir"];
  std::ifstream metrics(out / first / "metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(metrics, line); ++lines) {
    const auto rec = json::parse(line);
    for (const char* key : {"step", "t", "loss", "one_minus_cos", "z1_norm", "z2_norm"}) {
      EXPECT_TRUE(rec.contains(key)) << key;
    }
  }
  EXPECT_EQ(lines, 5);  // steps 0, 50, 100, 150, 200
  EXPECT_EQ(json::parse(std::ifstream(out / first / "summary.json"))["status"], "completed");
  const auto summary = json::parse(std::ifstream(out / "seed_summary.json"));
  ASSERT_EQ(summary["groups"].size(), 2u);  // one per alpha, two seeds each
  EXPECT_EQ(summary["groups"][0]["seeds"], json::array({0, 1}));
  EXPECT_EQ(summary["groups"][0]["alpha"], 1e-3);

  // Bad input: exit 2, one line naming the key, nothing written.
  const fs::path bad = fs::temp_directory_path() / "lorascope_pretrained_mf_cli_bad";
  fs::remove_all(bad);
  EXPECT_EQ(lorascope_cli("pretrained-mf --out " + bad.string() + " --set lora.rank=20", err), 2);
  std::ifstream in(err);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("lora.rank"), std::string::npos) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_FALSE(fs::exists(bad));
  fs::remove(err);
}

}  // namespace
}  // namespace lorascope
