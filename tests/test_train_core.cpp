// The trainer's core (issue 15): the parameter-role table and the optimizer routing it drives,
// the loop with an in-memory metrics sink, and the defects fixed with it (a grad_accum beyond an
// epoch, a biased evaluation sample, checkpoints of what trains, Muon's defaults, the step loss
// under gradient accumulation, generator states).
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "data/matrix_json.h"
#include "models/parameter_roles.h"
#include "models/safetensors.h"
#include "models/sequence_model.h"
#include "optim/adamw.h"
#include "optim/hybrid.h"
#include "optim/muon.h"
#include "optim/param_groups.h"
#include "optim/state_io.h"
#include "tests/error_of.h"
#include "tests/memory_sink.h"
#include "tests/model_fixtures.h"
#include "tests/train_fixtures.h"
#include "trainer/checkpoint.h"
#include "trainer/evaluation_sample.h"
#include "trainer/optimizer_factory.h"
#include "trainer/optimizer_routing.h"
#include "trainer/rng_state.h"
#include "trainer/sequence_loss.h"
#include "trainer/train_hooks.h"
#include "trainer/train_session.h"

namespace lorascope {
namespace {

using fixtures::tiny_config;

std::set<std::string> names_of(const ParamGroup& g) { return {g.names.begin(), g.names.end()}; }

TEST(ParameterRolesTest, LoraTableNamesFactorsTheirAdapterAndWhatTrains) {
  auto m = lora_classifier();
  EXPECT_EQ(m.roles.adapters.size(), 4u);  // q_proj and v_proj of 2 layers
  int a = 0, b = 0, full = 0;
  for (const auto& p : m.roles.parameters) {
    EXPECT_EQ(p.tensor.requires_grad(), p.trains()) << p.name;
    if (p.role == ParameterRole::AdapterA || p.role == ParameterRole::AdapterB) {
      ASSERT_GE(p.adapter, 0);
      const auto& ad = m.roles.adapters[static_cast<size_t>(p.adapter)];
      EXPECT_EQ(p.name, ad.name + (p.role == ParameterRole::AdapterA ? ".lora_A.weight" : ".lora_B.weight"));
      EXPECT_TRUE((p.role == ParameterRole::AdapterA ? ad.A : ad.B).is_same(p.tensor));
      (p.role == ParameterRole::AdapterA ? a : b)++;
    }
    if (p.role == ParameterRole::TrainedInFull) {
      EXPECT_EQ(p.name, "score.weight");
      ++full;
    }
  }
  EXPECT_EQ(a, 4);
  EXPECT_EQ(b, 4);
  EXPECT_EQ(full, 1);
  EXPECT_TRUE(m.roles.is_adapter_factor("model.layers.1.self_attn.v_proj.lora_B.weight"));
  EXPECT_FALSE(m.roles.is_adapter_factor("model.layers.1.self_attn.v_proj.weight"));
}

TEST(OptimizerRoutingTest, LoraWithMuonPutsFactorsOnMuonAndTheHeadOnAdamW) {
  auto m = lora_classifier();
  const json o = optim_with_defaults({{"name", "muon"}});
  const auto groups = route_parameters(m.roles, routing_rules(o, false));
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].name, "adapters");
  EXPECT_EQ(groups[0].optimizer, "muon");
  EXPECT_EQ(groups[0].params.size(), 8u);
  for (const auto& n : groups[0].names) EXPECT_TRUE(m.roles.is_adapter_factor(n)) << n;
  EXPECT_EQ(names_of(groups[1]), std::set<std::string>{"score.weight"});
  EXPECT_EQ(groups[1].optimizer, "adamw");
  EXPECT_TRUE(groups[1].adamw_side);
  auto opt = make_routed_optimizer(o, groups);
  EXPECT_EQ(opt->name(), "adapters:muon+trained_in_full:adamw");
  const auto described = describe_routing(o, groups);
  EXPECT_EQ(described[0]["settings"]["momentum"], 0.95);
  EXPECT_EQ(described[0]["settings"]["nesterov"], true);
  EXPECT_EQ(described[0]["settings"]["orthogonalizer"], "newton_schulz");
  EXPECT_EQ(described[1]["settings"]["lr"], o["adamw_lr"]);
}

TEST(OptimizerRoutingTest, LoraWithAdamWTrainsEveryTrainableParameterInOneGroup) {
  auto m = lora_classifier();
  const auto groups = route_parameters(m.roles, routing_rules(optim_with_defaults({{"name", "adamw"}}), false));
  ASSERT_EQ(groups.size(), 1u);
  const auto want = m.roles.trainable_names();
  EXPECT_EQ(groups[0].names, want);
  EXPECT_EQ(want.size(), 9u);
}

TEST(OptimizerRoutingTest, FullTrainingWithMuonTakesHiddenMatricesOnly) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
  auto model = make_model(tiny_config("llama"), "causal_lm", 0, gen);
  RoleRules rules;
  rules.full_training = true;
  rules.head_module = model->head_module();
  const auto roles = parameter_roles(*model, rules);
  const auto groups = route_parameters(roles, routing_rules(optim_with_defaults({{"name", "muon"}}), true));
  ASSERT_EQ(groups.size(), 2u);
  const auto hidden = names_of(groups[0]), rest = names_of(groups[1]);
  EXPECT_TRUE(hidden.count("model.layers.0.self_attn.q_proj.weight"));
  EXPECT_TRUE(hidden.count("model.layers.1.mlp.down_proj.weight"));
  EXPECT_TRUE(rest.count("model.embed_tokens.weight"));
  EXPECT_TRUE(rest.count("model.norm.weight"));
  for (const auto& n : hidden) EXPECT_EQ(n.find("embed"), std::string::npos) << n;
  EXPECT_EQ(hidden.size() + rest.size(), roles.trainable().size());
}

TEST(OptimizerRoutingTest, ATrainableParameterNoGroupTakesIsAnError) {
  auto m = lora_classifier();
  auto rules = routing_rules(optim_with_defaults({{"name", "muon"}}), false);
  rules.pop_back();  // drop the AdamW side: the head would silently not train
  const std::string err = error_of([&] { route_parameters(m.roles, rules); });
  EXPECT_NE(err.find("trainable parameter score.weight (trained_in_full) is in no optimizer group"), std::string::npos)
      << err;
  auto twice = routing_rules(optim_with_defaults({{"name", "muon"}}), false);
  twice[1].roles.push_back(ParameterRole::AdapterB);
  EXPECT_NE(error_of([&] { route_parameters(m.roles, twice); }).find("is in two groups"), std::string::npos);
}

// Defect 4: muon is Muon (0.95, Nesterov, Newton-Schulz 5), specgd the paper's SpecGD, and the
// schema's defaults are MuonOptions' own.
TEST(OptimizerDefaultsTest, MuonAndSpecGDMeanWhatTheirUsersExpect) {
  const MuonOptions muon;
  const auto m = resolved_optim(optim_with_defaults({{"name", "muon"}}));
  EXPECT_EQ(m["momentum"].get<double>(), muon.momentum);
  EXPECT_EQ(muon.momentum, 0.95);
  EXPECT_EQ(m["nesterov"].get<bool>(), muon.nesterov);
  EXPECT_TRUE(muon.nesterov);
  EXPECT_EQ(m["orthogonalizer"], "newton_schulz");
  EXPECT_EQ(muon.ortho.kind, OrthoKind::NewtonSchulz);
  EXPECT_EQ(m["ns_steps"].get<int>(), muon.ortho.ns_steps);
  const auto sg = resolved_optim(optim_with_defaults({{"name", "specgd"}}));
  EXPECT_EQ(sg["momentum"], 0.0);
  EXPECT_EQ(sg["nesterov"], false);
  EXPECT_EQ(sg["orthogonalizer"], "exact");
  EXPECT_EQ(specgd_options().ortho.kind, OrthoKind::Exact);
  const auto sgd = resolved_optim(optim_with_defaults({{"name", "sgd"}}));
  EXPECT_EQ(sgd["momentum"], 0.0);  // unchanged for sgd
  // The AdamW side's weight decay: its own key, else optim.weight_decay.
  EXPECT_EQ(resolved_optim(optim_with_defaults({{"name", "muon"}, {"weight_decay", 0.1}}))["adamw_weight_decay"], 0.1);
  EXPECT_EQ(resolved_optim(optim_with_defaults({{"name", "muon"}, {"weight_decay", 0.1}, {"adamw_weight_decay", 0.0}}))
                ["adamw_weight_decay"],
            0.0);
}

// Defect 2: the validation split keeps the dataset's order (all of one class, then the other);
// the sample evaluated during training holds the classes in proportion and is the same every time.
TEST(EvaluationSampleTest, StratifiedSeededAndFixed) {
  std::vector<TokenizedExample> ordered;
  for (int i = 0; i < 90; ++i) ordered.push_back({{1, 2, i}, i < 60 ? 0 : 1, 0, {}});  // 60 ham, then 30 spam
  const auto s = evaluation_sample(ordered, 30, 7, true);
  ASSERT_EQ(s.size(), 30u);
  int spam = 0;
  for (const auto& e : s) spam += e.label == 1;
  EXPECT_NEAR(spam, 10, 1);  // 1/3 of the sample, as in the split
  // Every prefix is stratified too (a batch-sized prefix is not one class).
  int prefix_spam = 0;
  for (int i = 0; i < 6; ++i) prefix_spam += s[static_cast<size_t>(i)].label == 1;
  EXPECT_NEAR(prefix_spam, 2, 1);
  const auto again = evaluation_sample(ordered, 30, 7, true);
  for (size_t i = 0; i < s.size(); ++i) EXPECT_EQ(s[i].ids, again[i].ids);
  const auto other = evaluation_sample(ordered, 30, 8, true);
  bool differs = false;
  for (size_t i = 0; i < s.size(); ++i) differs = differs || s[i].ids != other[i].ids;
  EXPECT_TRUE(differs);
  // What main evaluated: the split's first 30 examples, all ham.
  int first_spam = 0;
  for (int i = 0; i < 30; ++i) first_spam += ordered[static_cast<size_t>(i)].label == 1;
  EXPECT_EQ(first_spam, 0);
  EXPECT_EQ(evaluation_sample(ordered, 0, 7, true).size(), 90u);  // 0 = all
}

// Defect 5: the loss of a step with gradient accumulation is the mean over all its targets, so
// its gradient equals one big batch's. Two micro-batches with 3 and 12 targets.
TEST(GradAccumulationTest, StepLossIsTheMeanOverAllTargetsOfTheStep) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto model = make_model(tiny_config("llama"), "causal_lm", 0, gen);
  for (auto& p : model->parameters()) p.set_requires_grad(true);
  auto ids = at::randint(1, 50, {4, 8}, gen, at::kLong);
  auto labels = at::randint(1, 50, {4, 8}, gen, at::kLong);
  labels.narrow(0, 0, 2).fill_(-100);
  labels[0][5] = labels[0][6] = labels[1][7] = 7;  // micro-batch 1: 3 targets, micro-batch 2: 16
  const auto grad_of = [&](const std::vector<std::pair<int64_t, int64_t>>& parts, bool mean_of_means) {
    model->zero_grad();
    double total = 0;
    for (const auto& [lo, n] : parts) total += loss_count(labels.narrow(0, lo, n), false);
    for (const auto& [lo, n] : parts) {
      const auto logits = model->forward(ids.narrow(0, lo, n), at::Tensor());
      const auto l = labels.narrow(0, lo, n);
      const auto loss = mean_of_means ? mean_loss(logits, l, false) / static_cast<double>(parts.size())
                                      : loss_sum(logits, l, false) / total;
      loss.backward();
    }
    return model->named_parameters()["model.layers.0.self_attn.q_proj.weight"].grad().to(at::kDouble).clone();
  };
  const auto big = grad_of({{0, 4}}, false);
  const auto accumulated = grad_of({{0, 2}, {2, 2}}, false);
  const auto old_rule = grad_of({{0, 2}, {2, 2}}, true);  // main's mean of micro-batch means
  const double scale = big.abs().max().item<double>();
  EXPECT_LT((accumulated - big).abs().max().item<double>(), 1e-6 * scale);
  EXPECT_GT((old_rule - big).abs().max().item<double>(), 0.05 * scale);  // the check can fail
}

// Defect 5 through the trainer itself: train_step with two micro-batches of very different
// target counts (4 and 28: prompts and padding, as SFT batches have them) gives the loss and the
// gradients of one batch holding all four examples, the mean over all 32 targets. Both are checked
// against a float64 copy of the model fed one unpadded example at a time, cross entropy by hand.
TEST(GradAccumulationTest, TrainStepOfUnevenMicroBatchesIsOneBatchOfBoth) {
  const auto cfg = tiny_config("llama");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  // (length, prompt_len): targets are the ids after the prompt, 2 + 2 in the first micro-batch,
  // 15 + 13 in the second; each micro-batch pads its shorter example.
  std::vector<TokenizedExample> data;
  for (const auto& [len, prompt] : std::vector<std::pair<int64_t, int64_t>>{{5, 3}, {9, 7}, {16, 1}, {14, 0}}) {
    TokenizedExample ex;
    const auto ids = at::randint(1, cfg.vocab_size, {len}, gen, at::kLong);
    ex.ids.assign(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + len);
    ex.prompt_len = prompt;
    data.push_back(ex);
  }
  Session s;
  s.model = make_model(cfg, "causal_lm", 0, gen);
  RoleRules rules;
  rules.full_training = true;
  rules.head_module = s.model->head_module();
  s.roles = parameter_roles(*s.model, rules);
  apply_roles(s.roles);
  const json o = optim_with_defaults({{"name", "adamw"}});
  s.groups = route_parameters(s.roles, routing_rules(o, true));
  s.optimizer = make_routed_optimizer(o, s.groups);

  // float64 reference: per micro-batch, the sum of its targets' negative log-likelihoods and its
  // gradient.
  auto ref = make_model(cfg, "causal_lm", 0, gen);
  ref->to(at::kDouble);
  {
    at::NoGradGuard no_grad;
    const auto src = s.model->named_parameters(true);
    for (auto& p : ref->named_parameters(true)) p.value().copy_(src[p.key()]);
  }
  for (auto& p : ref->parameters()) p.set_requires_grad(true);
  double nll[2] = {0, 0}, n[2] = {0, 0};
  std::map<std::string, at::Tensor> G[2];
  for (int part = 0; part < 2; ++part) {
    ref->zero_grad();
    auto sum = at::zeros({}, at::kDouble);
    for (int e = 2 * part; e < 2 * part + 2; ++e) {
      const auto& ex = data[static_cast<size_t>(e)];
      const auto L = static_cast<int64_t>(ex.ids.size());
      const auto ids = at::from_blob(const_cast<int64_t*>(ex.ids.data()), {1, L}, at::kLong).clone();  // (1, L)
      const auto logp = at::log_softmax(ref->forward(ids, at::Tensor())[0], -1);                        // (L, V)
      for (int64_t t = std::max<int64_t>(ex.prompt_len, 1) - 1; t + 1 < L; ++t) {  // position t predicts t + 1
        sum = sum - logp[t][ex.ids[static_cast<size_t>(t + 1)]];
        n[part] += 1;
      }
    }
    sum.backward();
    nll[part] = sum.item<double>();
    for (const auto& p : ref->named_parameters(true)) G[part][p.key()] = p.value().grad().clone();
  }
  ASSERT_EQ(n[0], 4);
  ASSERT_EQ(n[1], 28);
  const double want_loss = (nll[0] + nll[1]) / (n[0] + n[1]);

  // train_step on the two micro-batches (grad_accum 2), and on one batch of all four, from the
  // same weights; the gradients are read between the last backward and the update.
  std::vector<at::Tensor> start;
  for (const auto& p : s.roles.parameters) start.push_back(p.tensor.detach().clone());
  const auto step_of = [&](const std::vector<Batch>& micro, std::map<std::string, at::Tensor>& grads) {
    {
      at::NoGradGuard no_grad;
      for (size_t i = 0; i < start.size(); ++i) s.roles.parameters[i].tensor.copy_(start[i]);
    }
    return train_step(s, micro, 0, [&] {
      for (const auto& p : s.roles.parameters) {
        if (p.tensor.grad().defined()) grads[p.name] = p.tensor.grad().to(at::kDouble).clone();
      }
    });
  };
  const auto micro = sft_batches(data, 2, cfg.pad_token_id, 0, 0, /*shuffle=*/false);
  const auto whole = sft_batches(data, 4, cfg.pad_token_id, 0, 0, /*shuffle=*/false);
  ASSERT_EQ(micro.size(), 2u);
  ASSERT_EQ(whole.size(), 1u);
  EXPECT_EQ(loss_count(micro[0].labels, false), 4);
  EXPECT_EQ(loss_count(micro[1].labels, false), 28);
  EXPECT_TRUE(micro[0].attention_mask.eq(0).any().item<bool>());  // padded
  std::map<std::string, at::Tensor> accumulated, one_batch;
  const auto r_micro = step_of(micro, accumulated);
  const auto r_whole = step_of(whole, one_batch);
  EXPECT_TRUE(r_micro.nonfinite.empty());
  EXPECT_NEAR(r_micro.loss, want_loss, 1e-5 * want_loss);
  EXPECT_NEAR(r_whole.loss, want_loss, 1e-5 * want_loss);
  EXPECT_NEAR(r_micro.loss, r_whole.loss, 1e-5 * want_loss);
  ASSERT_EQ(accumulated.size(), s.roles.parameters.size());
  ASSERT_EQ(one_batch.size(), s.roles.parameters.size());
  double worst = 0, apart = 0;
  for (const auto& p : s.roles.parameters) {
    const auto want = (G[0].at(p.name) + G[1].at(p.name)) / (n[0] + n[1]);
    const double scale = want.abs().max().item<double>() + 1e-30;
    for (const auto* grads : {&accumulated, &one_batch}) {
      const double err = (grads->at(p.name) - want).abs().max().item<double>() / scale;
      EXPECT_LT(err, 1e-4) << p.name;
      worst = std::max(worst, err);
    }
    // The rule main had (the mean of the micro-batch means) is far from it: the check can fail.
    const auto mean_of_means = (G[0].at(p.name) / n[0] + G[1].at(p.name) / n[1]) / 2;
    apart = std::max(apart, (mean_of_means - want).abs().max().item<double>() / scale);
  }
  EXPECT_GT(apart, 0.1);
  std::printf("train_step vs float64: loss %.9g vs %.9g (mean of means %.9g), worst gradient error %.3g "
              "(relative to each tensor's max), mean of means off by %.3g\n",
              r_micro.loss, want_loss, (nll[0] / n[0] + nll[1] / n[1]) / 2, worst, apart);
}

TEST(GeneratorStateTest, RestoredStatesRepeatTheDraws) {
  seed_generators(11);
  const auto saved = generator_states();
  const auto a = at::rand({5});
  EXPECT_EQ(restore_generator_states(saved), "");
  EXPECT_TRUE(at::equal(a, at::rand({5})));
  seed_generators(11);
  EXPECT_TRUE(at::equal(a, at::rand({5})));
  if (torch::cuda::is_available()) {
    EXPECT_TRUE(saved.count("cuda_generator_0"));
  }
}

// The loop runs without files: an in-memory sink and the hooks a test picks.
TEST(TrainLoopTest, RunsWithAnInMemorySinkAndWritesNoFiles) {
  Fixture fx("trainloop");
  const auto base = fx.pretrain();
  auto doc = fx.finetune_doc(base);
  doc["train"]["max_steps"] = 6;
  Session s;
  s.cfg = TrainConfig::from_json(fx.spec(doc).config);
  const auto run_dir = fx.dir / "never_written";
  setup(s, run_dir.string());
  MemorySink sink;
  Hooks hooks;
  hooks.push_back(divergence_policy());
  hooks.push_back(evaluator());
  hooks.push_back(metrics_logger());
  const auto out = train(s, TrainState{}, sink, hooks);
  EXPECT_EQ(out.status, "completed");
  EXPECT_EQ(out.summary["steps"], 6);
  ASSERT_EQ(sink.records.size(), 6u);  // log_every 1
  EXPECT_TRUE(sink.records[5].contains("eval"));  // eval_every 6
  EXPECT_EQ(sink.records[5]["step"], 6);
  EXPECT_FALSE(fs::exists(run_dir));
  EXPECT_EQ(out.summary["optimizer"], "muon on adapters (8 tensors), adamw on trained_in_full (1 tensors)");
}

// Defect 1: a grad_accum larger than an epoch's micro-batches never took a step (main looped
// forever with max_steps > 0); it is refused before anything is written, naming the key.
TEST(TrainLoopTest, GradAccumBeyondAnEpochIsRefused) {
  Fixture fx("gradaccum");
  const auto base = fx.pretrain();
  auto doc = fx.finetune_doc(base);
  doc["data"]["limit"] = 40;
  doc["train"]["grad_accum"] = 100;
  doc["train"]["max_steps"] = 3;
  const auto dir = fx.dir / "refused";
  const auto t0 = std::chrono::steady_clock::now();
  const std::string err = error_of([&] { run_train(fx.spec(doc), dir.string(), false); });
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 60.0);
  EXPECT_NE(err.find("train.grad_accum: expected at most the"), std::string::npos) << err;
  EXPECT_NE(err.find("got 100"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(dir));
}

// Defect 3: a checkpoint holds what trains and the base's fingerprint; resuming on another base
// names the tensor that differs; a checkpoint of the old layout (the whole model in model.pt)
// still loads.
TEST(CheckpointTest, HoldsOnlyWhatTrainsAndChecksTheBase) {
  Fixture fx("ckptbase");
  const auto base = fx.pretrain();
  auto doc = fx.finetune_doc(base);
  doc["train"]["max_steps"] = 6;
  doc["train"]["halt_at_step"] = 0;
  const auto dir = fx.dir / "run";
  ASSERT_EQ(run_train(fx.spec(doc), dir.string(), false).status, "completed");
  const auto ckpt = dir / "checkpoints" / "step_6";
  const auto trained = load_tensor_dict((ckpt / "trained.pt").string());
  std::set<std::string> keys;
  for (const auto& [k, v] : trained) keys.insert(k);
  EXPECT_EQ(keys.size(), 9u);  // 8 adapter factors + score.weight
  EXPECT_TRUE(keys.count("score.weight"));
  for (const auto& k : keys) EXPECT_TRUE(k == "score.weight" || k.find(".lora_") != std::string::npos) << k;
  const auto meta = read_json_file((ckpt / "state.json").string());
  ASSERT_TRUE(meta.contains("base_fingerprint"));
  EXPECT_TRUE(meta["base_fingerprint"].contains("model.embed_tokens.weight"));

  // Another base: one weight changed.
  const auto other = fx.dir / "other_base";
  fs::create_directories(other);
  for (const char* f : {"model_config.json", "tokenizer.model"}) fs::copy_file(fs::path(base) / f, other / f);
  auto weights = load_tensor_dict(base + "/model.pt");
  weights["model.layers.1.mlp.up_proj.weight"].mul_(1.5);
  save_tensor_dict(weights, (other / "model.pt").string());
  doc["base"] = other.string();
  // The config names the base, so keep it equal to the checkpoint's: copy the run, swap the base dir.
  fs::rename(base, fx.dir / "base_saved");
  fs::rename(other, base);
  doc["base"] = base;
  const std::string err = error_of([&] { run_train(fx.spec(doc), dir.string(), true); });
  EXPECT_NE(err.find("written on another base model"), std::string::npos) << err;
  EXPECT_NE(err.find("model.layers.1.mlp.up_proj.weight: sum"), std::string::npos) << err;
  fs::remove_all(base);
  fs::rename(fx.dir / "base_saved", base);

  // The old layout: the whole model in model.pt, no fingerprint.
  Session s;
  s.cfg = TrainConfig::from_json(fx.spec(doc).config);
  setup(s, (fx.dir / "scratch").string());
  TensorDict whole = module_state(*s.model);
  for (const auto& [k, v] : trained) whole[k] = v;
  const auto old_dir = fx.dir / "old_ckpt";
  fs::create_directories(old_dir);
  save_tensor_dict(whole, (old_dir / "model.pt").string());
  for (const char* f : {"optimizer.pt", "rng.pt", "state.json"}) fs::copy_file(ckpt / f, old_dir / f);
  const auto state = load_checkpoint(old_dir.string(), *s.model, s.trained, *s.optimizer);
  EXPECT_EQ(state.step, 6);
  const auto now = module_state(*s.model);
  for (const auto& [k, v] : trained) EXPECT_TRUE(at::equal(now.at(k), v)) << k;
}

// Audit 15 defect 2: a run started from a PEFT adapter trains that adapter's modules_to_save
// (model.norm here, beside the classification head) and its export holds and lists them, as the
// role table says, not the config's lora.modules_to_save (empty here).
TEST(PeftExportTest, ARunFromAnAdapterExportsWhatItTrainedInFull) {
  Fixture fx("peftroles");
  const auto base = fx.pretrain();
  auto doc = fx.finetune_doc(base);
  doc["train"]["max_steps"] = 2;
  doc["train"]["checkpoint_every"] = 2;
  doc["lora"]["modules_to_save"] = {"score", "model.norm"};
  const auto first = fx.dir / "first";
  ASSERT_EQ(run_train(fx.spec(doc), first.string(), false).status, "completed");
  const SafetensorsFile before((first / "adapter" / "adapter_model.safetensors").string());
  ASSERT_TRUE(before.contains("base_model.model.model.norm.weight"));

  doc["lora"] = {{"adapter", (first / "adapter").string()}};
  const auto second = fx.dir / "second";
  ASSERT_EQ(run_train(fx.spec(doc), second.string(), false).status, "completed");
  const auto trained = load_tensor_dict((second / "checkpoints" / "step_2" / "trained.pt").string());
  ASSERT_TRUE(trained.count("model.norm.weight"));  // it trained and was checkpointed
  const SafetensorsFile after((second / "adapter" / "adapter_model.safetensors").string());
  ASSERT_TRUE(after.contains("base_model.model.model.norm.weight"));
  const auto norm = after.tensor("base_model.model.model.norm.weight");
  EXPECT_TRUE(at::equal(norm, trained.at("model.norm.weight").to(norm.options())));
  EXPECT_FALSE(at::equal(norm, before.tensor("base_model.model.model.norm.weight")));  // moved in the second run
  EXPECT_TRUE(after.contains("base_model.model.score.weight"));
  const auto cfg = read_json_file((second / "adapter" / "adapter_config.json").string());
  ASSERT_TRUE(cfg["modules_to_save"].is_array()) << cfg.dump();
  EXPECT_EQ(cfg["modules_to_save"].get<std::set<std::string>>(), (std::set<std::string>{"model.norm", "score"}));
}

// Audit 15 defect 6: the fingerprint sees a permutation within a tensor. A base with two rows of
// one weight swapped (sum and sum of squares unchanged) is refused on resume, naming the tensor;
// a fingerprint of the older kind (no weighted sum) is still compared on its sums.
TEST(CheckpointTest, ABaseWithTwoRowsSwappedIsRefused) {
  Fixture fx("ckptperm");
  const auto base = fx.pretrain();
  auto doc = fx.finetune_doc(base);
  doc["train"]["max_steps"] = 2;
  doc["train"]["checkpoint_every"] = 2;
  doc["train"]["halt_at_step"] = 0;
  const auto dir = fx.dir / "run";
  ASSERT_EQ(run_train(fx.spec(doc), dir.string(), false).status, "completed");

  const std::string name = "model.layers.0.self_attn.k_proj.weight";
  auto weights = load_tensor_dict(base + "/model.pt");
  {
    auto& w = weights.at(name);  // (out, in)
    const auto row0 = w[0].clone();
    w[0].copy_(w[1]);
    w[1].copy_(row0);
  }
  fs::rename(base + "/model.pt", base + "/model.pt.saved");
  save_tensor_dict(weights, base + "/model.pt");
  const std::string err = error_of([&] { run_train(fx.spec(doc), dir.string(), true); });
  EXPECT_NE(err.find("written on another base model"), std::string::npos) << err;
  EXPECT_NE(err.find(name + ": weighted_sum"), std::string::npos) << err;
  fs::remove(base + "/model.pt");
  fs::rename(base + "/model.pt.saved", base + "/model.pt");

  // Fingerprints: the swap leaves sum and sum of squares equal (to rounding), the weighted sum not;
  // without the weighted sum (older checkpoints) the comparison is on the sums only.
  const auto meta = read_json_file((dir / "checkpoints" / "step_2" / "state.json").string());
  json saved = meta.at("base_fingerprint");
  ASSERT_TRUE(saved.at(name).contains("weighted_sum"));
  Session s;
  s.cfg = TrainConfig::from_json(fx.spec(doc).config);
  setup(s, (fx.dir / "scratch").string());
  EXPECT_EQ(fingerprint_mismatch(saved, s.base_fingerprint), "");
  json older = saved;
  for (auto it = older.begin(); it != older.end(); ++it) it.value().erase("weighted_sum");
  EXPECT_EQ(fingerprint_mismatch(older, s.base_fingerprint), "");
  older[name]["sum"] = older[name]["sum"].get<double>() + 1.0;
  EXPECT_EQ(fingerprint_mismatch(older, s.base_fingerprint).rfind(name + ": sum ", 0), 0u);
  json broken = saved;
  broken[name] = "?";
  EXPECT_NE(fingerprint_mismatch(broken, s.base_fingerprint).find(name + ": the checkpoint's fingerprint entry is not readable"),
            std::string::npos);
}

// Optimizer state of the checkpoints before groups (Hybrid's "muon." / "adamw." halves) resumes
// the same trajectory in the grouped optimizer.
TEST(GroupedOptimizerTest, LoadsHybridStateOfOlderCheckpoints) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  auto W = at::randn({6, 4}, gen, at::kDouble), b = at::randn({6}, gen, at::kDouble);
  auto W2 = W.clone(), b2 = b.clone();
  MuonOptions mo;
  AdamWOptions ao;
  Hybrid hybrid(split_for_muon({W, b}), mo, ao);
  for (int t = 0; t < 2; ++t) {
    W.mutable_grad() = at::randn({6, 4}, gen, at::kDouble);
    b.mutable_grad() = at::randn({6}, gen, at::kDouble);
    hybrid.step();
  }
  W2.copy_(W);
  b2.copy_(b);
  std::vector<OptimizerGroup> groups;
  groups.push_back({"adapters", std::make_unique<Muon>(std::vector<at::Tensor>{W2}, mo)});
  groups.push_back({"trained_in_full", std::make_unique<AdamW>(std::vector<at::Tensor>{b2}, ao)});
  GroupedOptimizer grouped(std::move(groups));
  grouped.load_state_dict(hybrid.state_dict());
  const auto gW = at::randn({6, 4}, gen, at::kDouble), gb = at::randn({6}, gen, at::kDouble);
  W.mutable_grad() = gW.clone(), b.mutable_grad() = gb.clone();
  W2.mutable_grad() = gW.clone(), b2.mutable_grad() = gb.clone();
  hybrid.step();
  grouped.step();
  EXPECT_TRUE(at::allclose(W, W2, 0, 1e-14));
  EXPECT_TRUE(at::allclose(b, b2, 0, 1e-14));
  EXPECT_EQ(grouped.step_count(), 3);
}

}  // namespace
}  // namespace lorascope
