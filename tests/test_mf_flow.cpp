// `lorascope mf` with flow.method: the optimizers' vector fields integrated in time. GD with
// learning rate eta is the Euler step of the gradient flow, so at a fixed flow time t it differs
// from the flow by O(eta); the same holds for SpecGD and the SpecGF field with T_beta.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "trainer/mf_recipe.h"
#include "trainer/mf_schema.h"

namespace lorascope {
namespace {

using nlohmann::json;

struct NullSink : MetricsSink {
  json last;
  void write(const json& r) override { last = r; }
};

// Trains the small problem to flow time t = 1.2 and returns the final factors and record.
struct Final {
  std::vector<at::Tensor> factors;
  json record, summary;
};

Final train(std::vector<std::string> sets, double lr) {
  const int64_t steps = std::llround(1.2 / lr);
  std::vector<std::string> base = {"task.m=8", "task.n=7", "task.rank=2", "task.target_sv=[3, 1.5, 0.5]",
                                   "task.gamma=0.3", "train.steps=" + std::to_string(steps),
                                   "train.log_every=" + std::to_string(steps), "monitor.factors=false",
                                   "optim.lr=" + json(lr).dump()};
  base.insert(base.end(), sets.begin(), sets.end());
  auto specs = resolve_runs_json(json::object(), "test", base, mf_schema(), check_mf_config);
  const auto cfg = MFConfig::from_json(specs.at(0).config);
  auto setup = mf_setup(cfg);
  NullSink sink;
  auto out = train_mf(cfg, setup, sink);
  EXPECT_EQ(out.status, "completed") << out.summary.dump();
  EXPECT_NEAR(sink.last["t"].get<double>(), 1.2, 1e-9);
  return {setup.factors.factors(), sink.last, out.summary};
}

double gap(const Final& a, const Final& b) {
  double g = 0;
  for (size_t k = 0; k < a.factors.size(); ++k) {
    g = std::max(g, (a.factors[k] - b.factors[k]).abs().max().item<double>());
  }
  return g;
}

void expect_first_order(const std::vector<std::string>& optim) {
  auto flow_sets = optim;
  flow_sets.insert(flow_sets.end(), {"flow.method=rk45", "flow.rtol=1e-11", "flow.atol=1e-13"});
  const auto flow = train(flow_sets, 0.1);
  EXPECT_GT(flow.summary["flow"]["accepted"].get<int64_t>(), 0);
  // RK4 with h = 0.02 agrees with RK45 far below the GD gaps measured next.
  auto rk4_sets = optim;
  rk4_sets.push_back("flow.method=rk4");
  EXPECT_LT(gap(train(rk4_sets, 0.02), flow), 1e-6);
  const double g1 = gap(train(optim, 0.01), flow), g2 = gap(train(optim, 0.005), flow);
  std::printf("%s: gap to the flow at t = 1.2: %.3e (lr 0.01) %.3e (lr 0.005) ratio %.3f\n",
              json(optim).dump().c_str(), g1, g2, g1 / g2);
  EXPECT_GT(g1, 1e-4) << json(optim).dump();
  EXPECT_NEAR(g1 / g2, 2.0, 0.2) << json(optim).dump() << " gaps " << g1 << " " << g2;
}

TEST(MfFlowTest, GdApproachesGradientFlowAtFirstOrder) {
  expect_first_order({"optim.name=gd"});
}

TEST(MfFlowTest, SpecGdApproachesSmoothedSpectralFlowAtFirstOrder) {
  expect_first_order({"optim.name=specgd", "optim.orthogonalizer=smoothed", "optim.beta=0.05"});
}

TEST(MfFlowTest, EulerFlowIsTheOptimizerStep) {
  for (const auto& optim : std::vector<std::vector<std::string>>{
           {"optim.name=gd"}, {"optim.name=specgd", "optim.orthogonalizer=smoothed", "optim.beta=0.05"}}) {
    auto euler = optim;
    euler.push_back("flow.method=euler");
    EXPECT_LT(gap(train(optim, 0.01), train(euler, 0.01)), 1e-12) << json(optim).dump();
  }
}

TEST(MfFlowTest, FlowRejectsOptimizersWithoutAField) {
  for (const auto& sets : std::vector<std::vector<std::string>>{
           {"flow.method=rk4", "optim.name=adamw"},
           {"flow.method=rk4", "optim.name=muon", "optim.momentum=0.9"},
           {"flow.method=rk45", "optim.name=gd", "optim.weight_decay=0.1"}}) {
    try {
      resolve_runs_json(json::object(), "t", sets, mf_schema(), check_mf_config);
      ADD_FAILURE() << "accepted " << json(sets).dump();
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("flow.method"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace lorascope
