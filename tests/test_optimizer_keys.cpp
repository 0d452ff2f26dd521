// The optimizer keys of issue 19 as the trainer routes them: each key changes what runs, and the
// routed step equals the optim/ class built directly on the same tensors (so the trainer adds
// routing, not a second implementation). Bad combinations: tests/test_bad_configs.cpp (CLI).
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "models/lora.h"
#include "models/parameter_roles.h"
#include "models/sequence_model.h"
#include "optim/adamw.h"
#include "optim/adamw_hf.h"
#include "optim/muon.h"
#include "optim/normuon.h"
#include "optim/riemannian_lora.h"
#include "optim/sgd.h"
#include "tests/train_fixtures.h"
#include "trainer/optimizer_factory.h"
#include "trainer/optimizer_routing.h"
#include "trainer/train_schema.h"

namespace lorascope {
namespace {

std::map<std::string, at::Tensor> snapshot(const ParameterRoles& roles) {
  std::map<std::string, at::Tensor> s;
  for (const auto& p : roles.parameters) s[p.name] = p.tensor.detach().clone();
  return s;
}

// One routed step of `optim` on a fresh model: per parameter name, the change.
std::map<std::string, at::Tensor> routed_step(const json& optim, int steps = 1) {
  auto m = lora_with_grads();
  const auto before = snapshot(m.roles);
  auto groups = route_parameters(m.roles, routing_rules(optim, false));
  auto opt = make_routed_optimizer(optim, groups);
  for (int i = 0; i < steps; ++i) opt->step();
  std::map<std::string, at::Tensor> d;
  for (const auto& p : m.roles.parameters) d[p.name] = p.tensor.detach() - before.at(p.name);
  return d;
}

// The same change from an optim/ optimizer built directly on the tensors `pick` selects.
template <class Make>
std::map<std::string, at::Tensor> direct_step(ParameterRole role, Make make, int steps = 1) {
  auto m = lora_with_grads();
  const auto before = snapshot(m.roles);
  std::vector<at::Tensor> ts;
  for (const auto& p : m.roles.parameters) {
    if (p.role == role) ts.push_back(p.tensor);
  }
  auto opt = make(m.roles, ts);
  for (int i = 0; i < steps; ++i) opt->step();
  std::map<std::string, at::Tensor> d;
  for (const auto& p : m.roles.parameters) {
    if (p.role == role) d[p.name] = p.tensor.detach() - before.at(p.name);
  }
  return d;
}

bool is(const std::string& name, const char* factor) { return name.find(factor) != std::string::npos; }

void expect_same(const std::map<std::string, at::Tensor>& want, const std::map<std::string, at::Tensor>& got) {
  ASSERT_FALSE(want.empty());
  for (const auto& [n, d] : want) {
    EXPECT_GT(d.abs().max().item<double>(), 0.0) << n << " did not move";
    EXPECT_TRUE(at::allclose(got.at(n), d, 1e-6, 1e-9)) << n;
  }
}

TEST(OptimizerKeysTest, LoraPlusRatioScalesOnlyBsStepExactly) {
  const auto one = routed_step(optim_with_defaults({{"name", "sgd"}}));
  const auto four = routed_step(optim_with_defaults({{"name", "sgd"}, {"lora_plus_ratio", 4.0}}));
  int bs = 0;
  for (const auto& [n, d] : one) {
    if (d.abs().max().item<double>() == 0.0) continue;  // frozen
    const double f = is(n, "lora_B") ? 4.0 : 1.0;
    bs += is(n, "lora_B");
    // Exact up to float32 rounding of W - step (|W| <= ~1: absolute 1e-6).
    EXPECT_TRUE(at::allclose(four.at(n), d * f, 1e-5, 1e-6)) << n << " max |diff| "
                                                             << (four.at(n) - d * f).abs().max().item<double>();
  }
  EXPECT_EQ(bs, 4);
  auto m = lora_with_grads();
  const json plus = optim_with_defaults({{"name", "adamw"}, {"lora_plus_ratio", 16.0}});
  const auto groups = route_parameters(m.roles, routing_rules(plus, false));
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[1].name, "adapter_B");
  EXPECT_EQ(groups[1].lr_multiplier, 16.0);
  EXPECT_EQ(describe_routing(plus, groups)[1]["settings"]["lr"], 16.0 * optim_with_defaults({})["lr"].get<double>());
}

TEST(OptimizerKeysTest, MuonOnBLeavesAWithAdamWAndBWithMuon) {
  const json o = optim_with_defaults({{"name", "muon"}, {"muon_on", "B"}});
  const auto routed = routed_step(o);
  const auto a = direct_step(ParameterRole::AdapterA, [&](const ParameterRoles&, std::vector<at::Tensor> ts) {
    return std::unique_ptr<Optimizer>(new AdamW(ts, adamw_side_options(o)));
  });
  const auto b = direct_step(ParameterRole::AdapterB, [&](const ParameterRoles&, std::vector<at::Tensor> ts) {
    return std::unique_ptr<Optimizer>(new Muon(ts, muon_side_options(o)));
  });
  expect_same(a, routed);
  expect_same(b, routed);
  // And muon_on=A is the mirror image.
  const json oa = optim_with_defaults({{"name", "muon"}, {"muon_on", "A"}});
  const auto ra = routed_step(oa);
  expect_same(direct_step(ParameterRole::AdapterA, [&](const ParameterRoles&, std::vector<at::Tensor> ts) {
                return std::unique_ptr<Optimizer>(new Muon(ts, muon_side_options(oa)));
              }),
              ra);
}

TEST(OptimizerKeysTest, NorMuonRunsNorMuonWithItsOptions) {
  const json o =
      optim_with_defaults({{"name", "normuon"}, {"normuon_beta2", 0.8}, {"normuon_rescale", "preserve_norm"}});
  EXPECT_EQ(resolved_optim(o)["orthogonalizer"], "newton_schulz");
  const auto routed = routed_step(o, 2);
  NorMuonOptions n;
  n.beta2 = 0.8;
  n.rescale = NorMuonRescale::PreserveNorm;
  for (auto role : {ParameterRole::AdapterA, ParameterRole::AdapterB}) {
    expect_same(direct_step(
                    role,
                    [&](const ParameterRoles& roles, std::vector<at::Tensor>) {
                      std::vector<at::Tensor> both;  // one NorMuon over A and B, as routed
                      for (const auto& p : roles.parameters) {
                        if (p.role == ParameterRole::AdapterA || p.role == ParameterRole::AdapterB) both.push_back(p.tensor);
                      }
                      return std::unique_ptr<Optimizer>(new NorMuon(both, muon_side_options(o), n));
                    },
                    2),
                routed);
  }
  // The keys reach NorMuon's options. (Its beta2 hardly shows in a few steps of this tiny model:
  // without bias correction, v is (1 - beta2) times a mix of the row norms of consecutive
  // orthogonalized updates, which are nearly equal here, and preserve_norm removes the scale.)
  const auto given = normuon_options(resolved_optim(o));
  EXPECT_EQ(given.beta2, 0.8);
  EXPECT_EQ(given.rescale, NorMuonRescale::PreserveNorm);
  EXPECT_EQ(normuon_options(resolved_optim(optim_with_defaults({{"name", "normuon"}}))).beta2, NorMuonOptions{}.beta2);
}

TEST(OptimizerKeysTest, LoraFaFreezesAAndStepsBWithPreconditionedHFAdamW) {
  const json o = optim_with_defaults({{"name", "lora_fa"}});
  const auto routed = routed_step(o, 2);
  for (const auto& [n, d] : routed) {
    if (is(n, "lora_A")) {
      EXPECT_EQ(d.abs().max().item<double>(), 0.0) << n;
    }
  }
  expect_same(direct_step(
                  ParameterRole::AdapterB,
                  [&](const ParameterRoles& roles, std::vector<at::Tensor> bs) {
                    std::vector<LoraPair> pairs;
                    for (const auto& a : roles.adapters) pairs.push_back({a.A, a.B, a.scaling});
                    AdamWHFOptions h;
                    h.lr = o["lr"];
                    h.eps = o["eps"];
                    return std::unique_ptr<Optimizer>(
                        new RiemannianLora(pairs, lora_fa_options(), std::make_unique<AdamWHF>(bs, h)));
                  },
                  2),
              routed);
}

TEST(OptimizerKeysTest, RiemannianPreconditionEqualsTheWrapperOnSGD) {
  const json o = optim_with_defaults({{"name", "sgd"}, {"precondition", "riemannian"}, {"precondition_delta", 0.05}});
  const auto routed = routed_step(o);
  const auto plain = routed_step(optim_with_defaults({{"name", "sgd"}}));
  for (auto role : {ParameterRole::AdapterA, ParameterRole::AdapterB}) {
    const auto want = direct_step(role, [&](const ParameterRoles& roles, std::vector<at::Tensor>) {
      std::vector<LoraPair> pairs;
      std::vector<at::Tensor> all = roles.trainable();
      for (const auto& a : roles.adapters) pairs.push_back({a.A, a.B, a.scaling});
      RiemannianOptions r;
      r.delta = 0.05;
      SGDOptions s;
      s.lr = o["lr"];
      return std::unique_ptr<Optimizer>(new RiemannianLora(pairs, r, std::make_unique<SGD>(all, s)));
    });
    expect_same(want, routed);
    for (const auto& [n, d] : want) EXPECT_FALSE(at::allclose(plain.at(n), d, 1e-3, 0)) << n;
  }
}

TEST(OptimizerKeysTest, ThinExactAndPolarExpressReachMuon) {
  const auto exact = routed_step(optim_with_defaults({{"name", "specgd"}}));
  const auto thin = routed_step(optim_with_defaults({{"name", "specgd"}, {"orthogonalizer", "thin_exact"}}));
  const auto ns = routed_step(optim_with_defaults({{"name", "muon"}}));
  const auto pe = routed_step(optim_with_defaults({{"name", "muon"}, {"orthogonalizer", "polar_express"}}));
  const auto key = std::string("model.layers.1.self_attn.v_proj.lora_A.weight");
  EXPECT_TRUE(at::allclose(thin.at(key), exact.at(key), 1e-4, 1e-6));
  EXPECT_FALSE(at::allclose(pe.at(key), ns.at(key), 1e-3, 0));
}

// New groups' state lives under their names and resumes: a saved and reloaded optimizer takes the
// same next step as one that never stopped.
TEST(OptimizerKeysTest, NewGroupsSaveAndResumeUnderTheirPrefixes) {
  for (const json& o : {optim_with_defaults({{"name", "adamw"}, {"lora_plus_ratio", 4.0}}),
                        optim_with_defaults({{"name", "muon"}, {"muon_on", "B"}}),
                        optim_with_defaults({{"name", "normuon"}}), optim_with_defaults({{"name", "lora_fa"}}),
                        optim_with_defaults({{"name", "adamw"}, {"precondition", "riemannian"}})}) {
    auto run = lora_with_grads();
    auto copy = lora_with_grads();
    auto g1 = route_parameters(run.roles, routing_rules(o, false));
    auto opt = make_routed_optimizer(o, g1);
    opt->step();
    const auto state = opt->state_dict();
    bool prefixed = false;
    for (const auto& [k, v] : state) prefixed |= k.rfind(g1.back().name + ".", 0) == 0;
    EXPECT_TRUE(prefixed) << o["name"];
    {
      at::NoGradGuard no_grad;
      for (size_t i = 0; i < run.roles.parameters.size(); ++i) {
        copy.roles.parameters[i].tensor.copy_(run.roles.parameters[i].tensor);
      }
    }
    auto g2 = route_parameters(copy.roles, routing_rules(o, false));
    auto resumed = make_routed_optimizer(o, g2);
    resumed->load_state_dict(state);
    opt->step();
    resumed->step();
    for (size_t i = 0; i < run.roles.parameters.size(); ++i) {
      EXPECT_TRUE(at::equal(run.roles.parameters[i].tensor, copy.roles.parameters[i].tensor))
          << o["name"] << " " << run.roles.parameters[i].name;
    }
  }
}

// The orthogonalizers through the CLI: a tiny mf run with each, and thin_exact ends where exact does.
TEST(OptimizerKeysTest, MfRunsWithEveryOrthogonalizer) {
  std::map<std::string, double> final_loss;
  for (const char* ortho : {"exact", "thin_exact", "polar_express", "newton_schulz"}) {
    const fs::path out = fs::temp_directory_path() / ("lorascope_optkeys_" + std::to_string(::getpid()));
    fs::remove_all(out);
    const std::string cmd = std::string(LORASCOPE_BINARY) + " --threads 1 mf --out " + out.string() +
                            " --set name=t --set train.steps=20 --set optim.name=specgd --set optim.orthogonalizer=" +
                            ortho + " >/dev/null 2>&1";
    ASSERT_EQ(WEXITSTATUS(std::system(cmd.c_str())), 0) << ortho;
    final_loss[ortho] = json::parse(std::ifstream(out / "t" / "summary.json"))["final_loss"];
    fs::remove_all(out);
  }
  EXPECT_NEAR(final_loss["thin_exact"], final_loss["exact"], 1e-8 * std::abs(final_loss["exact"]) + 1e-12);
  EXPECT_NE(final_loss["polar_express"], final_loss["newton_schulz"]);
  EXPECT_NE(final_loss["polar_express"], final_loss["exact"]);
}

}  // namespace
}  // namespace lorascope
