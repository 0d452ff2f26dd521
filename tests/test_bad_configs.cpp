// Bad configs across every command: each gives exit code 2, one line on stderr naming the key
// (with the nearest valid key for an unknown one) and writes nothing.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>

namespace {

namespace fs = std::filesystem;

struct BadConfig {
  std::string label;    // test name
  std::string command;  // lorascope subcommand
  std::string file;     // config file content ("" = none)
  std::string args;     // further arguments (--set ...)
  std::string expect;   // part of the one-line message
};

const BadConfig kCases[] = {
    // mf
    {"MfNegativeLr", "mf", "", "--set optim.lr=-1", "optim.lr: expected a number > 0, got -1"},
    {"MfUnknownOptimizer", "mf", "", "--set optim.name=adam", "optim.name: expected one of"},
    {"MfRankZero", "mf", "", "--set task.rank=0", "task.rank: expected"},
    {"MfFractionalSteps", "mf", "", "--set train.steps=1.5", "train.steps: expected an integer"},
    {"MfMomentumAboveOne", "mf", "", "--set optim.momentum=2", "optim.momentum: expected"},
    {"MfNesterovNotBool", "mf", "", "--set optim.nesterov=1", "optim.nesterov: expected true or false"},
    {"MfTargetSvNotNumbers", "mf", "", "--set task.target_sv=[1,\"a\"]", "task.target_sv: expected"},
    {"MfUnknownFlowMethod", "mf", "", "--set flow.method=rk5", "flow.method: expected one of"},
    {"MfMisspelledKeyOnCommandLine", "mf", "", "--set optim.lrr=0.1",
     "optim.lrr: unknown key (did you mean optim.lr?)"},
    {"MfMisspelledKeyInFile", "mf", R"({"task": {"rnk": 3}})", "",
     "task.rnk: unknown key (did you mean task.rank?)"},
    {"MfRunsNotAList", "mf", R"({"runs": {}})", "", "runs: expected a non-empty list"},
    {"MfGridValueNotAList", "mf", R"({"grid": {"seed": 3}})", "", "grid.seed: expected a non-empty list"},
    {"MfNsStepsString", "mf", R"({"optim": {"ns_steps": "five"}})", "", "optim.ns_steps: expected"},
    {"MfUnknownSchedule", "mf", "", "--set schedule.kind=linear", "schedule.kind: expected one of"},
    {"MfTopLevelNotObject", "mf", "[1, 2]", "", "expected a JSON object at the top level"},
    // nlohmann reports a number beyond double's range as out_of_range, not parse_error.
    {"MfNumberOutOfRange", "mf", R"({"optim": {"lr": 1e999}})", "", "not valid JSON"},
    // finetune / pretrain / compare
    {"FinetuneRankZero", "finetune", "", "--set base=/b --set lora.r=0", "lora.r: expected"},
    {"FinetuneAlphaZero", "finetune", "", "--set base=/b --set lora.alpha=0", "lora.alpha: expected a number > 0"},
    {"FinetuneUnknownDataset", "finetune", "", "--set base=/b --set data.kind=imdb", "data.kind: expected one of"},
    {"FinetuneTargetsNotStrings", "finetune", "", "--set base=/b --set lora.targets=[1,2]",
     "lora.targets: expected a list of strings"},
    {"FinetuneNegativeBatch", "finetune", "", "--set base=/b --set train.batch_size=-4",
     "train.batch_size: expected"},
    {"FinetuneUnknownNonfinitePolicy", "finetune", "", "--set base=/b --set train.nonfinite=ignore",
     "train.nonfinite: expected one of stop, skip"},
    {"FinetuneWithoutBase", "finetune", "", "", "base: expected the base model directory"},
    {"FinetuneUnknownBaseSvdDtype", "finetune", "", "--set base=/b --set monitor.base_svd_dtype=float16",
     "monitor.base_svd_dtype: expected one of float64, float32, got"},
    {"FinetuneValidationFraction", "finetune", "", "--set base=/b --set data.validation_fraction=0.95",
     "data.validation_fraction: expected"},
    // Optimizer options where they would not act (issue 19): the key named, exit 2.
    {"FinetuneLoraPlusWithMuon", "finetune", "", "--set base=/b --set optim.name=muon --set optim.lora_plus_ratio=4",
     "optim.lora_plus_ratio: applies to LoRA fine-tuning with adamw, sgd or gd"},
    {"FinetuneMuonOnWithAdamW", "finetune", "", "--set base=/b --set optim.name=adamw --set optim.muon_on=B",
     "optim.muon_on: applies to LoRA fine-tuning with muon, specgd or normuon"},
    {"FinetuneRiemannianWithSpecGD", "finetune", "", "--set base=/b --set optim.name=specgd --set optim.precondition=riemannian",
     "optim.precondition: applies to LoRA fine-tuning with adamw, sgd or gd"},
    {"FinetuneRiemannianWithLoraPlus", "finetune", "",
     "--set base=/b --set optim.name=sgd --set optim.precondition=riemannian --set optim.lora_plus_ratio=2",
     "optim.precondition: riemannian preconditions A and B"},
    {"FinetuneNormuonBeta2WithMuon", "finetune", "", "--set base=/b --set optim.name=muon --set optim.normuon_beta2=0.9",
     "optim.normuon_beta2: applies to optim.name=normuon"},
    // Init options where they would not act (issue 19).
    {"FinetuneInitGammaWithPeftInit", "finetune", "", "--set base=/b --set lora.init_gamma=4",
     "lora.init_gamma: applies to lora.init=lora_ga, lora_ga_peft or lora_one, not to lora.init=peft"},
    {"FinetuneInitBatchesWithOlora", "finetune", "", "--set base=/b --set lora.init=olora --set lora.init_batches=2",
     "lora.init_batches: applies to lora.init=lora_ga, lora_ga_peft or lora_one, not to lora.init=olora"},
    {"FinetuneGradientInitWithSavedAdapter", "finetune", "", "--set base=/b --set lora.init=lora_one --set lora.adapter=/a",
     "lora.init: lora_one initialises fresh adapters; lora.adapter starts from saved ones"},
    {"FinetuneInitGammaZero", "finetune", "", "--set base=/b --set lora.init=lora_ga --set lora.init_gamma=0",
     "lora.init_gamma: expected"},
    {"MfLoraPlusOutsideLora", "mf", "", "--set optim.name=sgd --set optim.lora_plus_ratio=4",
     "optim.lora_plus_ratio: applies to LoRA fine-tuning with adamw, sgd or gd (1 = off), not to optim.name=sgd outside"},
    {"MfLoraFa", "mf", "", "--set optim.name=lora_fa", "optim.name: lora_fa freezes adapter A factors"},
    {"PretrainMuonOnB", "pretrain", "", "--set optim.muon_on=B", "optim.muon_on: applies to LoRA fine-tuning"},
    {"FinetuneUnknownOrthogonalizer", "finetune", "", "--set base=/b --set optim.orthogonalizer=svd",
     "optim.orthogonalizer: expected one of"},
    {"FinetuneMisspelledRank", "finetune", R"({"base": "/b", "lora": {"rr": 8}})", "",
     "lora.rr: unknown key (did you mean lora.r?)"},
    {"PretrainHeadsDoNotDivideWidth", "pretrain", "", "--set model.hidden_size=30 --set model.num_heads=4",
     "model.hidden_size: expected a multiple of model.num_heads"},
    {"PretrainKeepNoCheckpoints", "pretrain", "", "--set train.keep_checkpoints=0",
     "train.keep_checkpoints: expected"},
    {"PretrainMisspelledCheckpointKey", "pretrain", "", "--set train.checkpoint_evry=5",
     "train.checkpoint_evry: unknown key (did you mean train.checkpoint_every?)"},
    {"CompareUnknownOptimizer", "compare", "", "--set base=/b --set optim.name=lion", "optim.name: expected one of"},
    // issue 15 item 10: --set of a key a run (or the grid) also sets would mislabel the runs.
    {"CompareSetOfAKeyTheRunsSet", "compare",
     R"({"base": "/b", "runs": [{"name": "m", "optim.name": "muon"}, {"name": "a", "optim.name": "adamw"}]})",
     "--set optim.name=sgd", "optim.name is also set by"},
    // issue 19: learning-rate sweeps
    {"CompareSweepRangeBackwards", "compare",
     R"({"base": "/b", "runs": [{"name": "m", "sweep": {"lr": {"from": 0.1, "to": 0.01, "points": 3}}}]})", "",
     "sweep.lr.to: expected a number > sweep.lr.from (0.1), got 0.01"},
    {"CompareSweepRangeOnePoint", "compare", "",
     "--set base=/b --set sweep.lr.from=0.001 --set sweep.lr.to=0.01 --set sweep.lr.points=1",
     "sweep.lr.points: expected an integer in [2, 25], got 1"},
    {"CompareSweepRangeWithoutEnd", "compare", "", "--set base=/b --set sweep.lr.from=0.001 --set sweep.lr.points=3",
     "sweep.lr.to: expected with the other two"},
    {"CompareSweepNegativeLr", "compare", "", "--set base=/b --set sweep.lr=[0.01,-1]",
     "sweep.lr: expected a list of numbers each > 0"},
    {"CompareSweepWithSetLr", "compare", "", "--set base=/b --set sweep.lr=[0.01,0.02] --set optim.lr=0.1",
     "--set optim.lr: run sweeps sweep.lr"},
    {"FinetuneSweepRefused", "finetune", "", "--set base=/b --set sweep.lr=[0.01]",
     "sweep.lr: only `lorascope compare` runs learning-rate sweeps, not finetune"},
    // eos
    {"EosDepthZero", "eos", "", "--set task.depth=0", "task.depth: expected"},
    {"EosUnknownNetwork", "eos", "", "--set model.network=conv", "model.network: expected one of"},
    {"EosUnknownLrUnit", "eos", "", "--set eos.lr_unit=foo", "eos.lr_unit: expected one of"},
    {"EosLrRangeTwoValues", "eos", "", "--set eos.lr_range=[1,2]", "eos.lr_range"},
    {"EosUnknownLossConvention", "eos", "", "--set loss.convention=x", "loss.convention: expected one of"},
    {"EosMisspelledKey", "eos", "", "--set monitor.sharpnes_every=5",
     "monitor.sharpnes_every: unknown key (did you mean monitor.sharpness_every?)"},
    // pretrained-mf
    {"PretrainedMfRankZero", "pretrained-mf", "", "--set lora.rank=0", "lora.rank: expected"},
    {"PretrainedMfUnknownInit", "pretrained-mf", "", "--set lora.init=zeros", "lora.init: expected one of"},
    {"PretrainedMfLrZero", "pretrained-mf", "", "--set train.lr=0", "train.lr: expected"},
    {"PretrainedMfMisspelledKey", "pretrained-mf", R"({"task": {"hh": 3}})", "",
     "task.hh: unknown key (did you mean task.h?)"},
    // rank-accuracy
    {"RankAccuracyUnknownLoss", "rank-accuracy", "", "--set task.loss=l1", "task.loss: expected one of"},
    {"RankAccuracyUnknownSolver", "rank-accuracy", "", "--set solver.method=rk3", "solver.method: expected one of"},
    {"RankAccuracyNegativeDt", "rank-accuracy", "", "--set solver.dt=-0.1", "solver.dt: expected"},
    {"RankAccuracyNoSamples", "rank-accuracy", "", "--set mc.samples=0", "mc.samples: expected"},
    {"RankAccuracyEndTimeString", "rank-accuracy", "", "--set train.t_end=abc", "train.t_end: expected"},
};

void PrintTo(const BadConfig& c, std::ostream* os) { *os << c.label; }  // test names, not bytes

class BadConfigTest : public testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigTest, ExitsTwoWithOneLineNamingTheKeyAndWritesNothing) {
  const auto& c = GetParam();
  const fs::path dir = fs::temp_directory_path() / ("lorascope_bad_" + c.label + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string args = c.args;
  if (!c.file.empty()) {
    std::ofstream(dir / "config.json") << c.file;
    args += " --config " + (dir / "config.json").string();
  }
  const fs::path out = dir / "out", err = dir / "stderr";
  const std::string cmd = std::string(LORASCOPE_BINARY) + " --threads 1 " + c.command + " --out " +
                          out.string() + " " + args + " >/dev/null 2>" + err.string();
  const int status = std::system(cmd.c_str());
  std::ifstream in(err);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(WEXITSTATUS(status), 2) << cmd << "\n" << text;
  EXPECT_NE(text.find(c.expect), std::string::npos) << cmd << "\n" << text;
  EXPECT_EQ(text.rfind("lorascope: ", 0), 0u) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_FALSE(fs::exists(out)) << cmd;
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(EveryCommand, BadConfigTest, testing::ValuesIn(kCases),
                         [](const testing::TestParamInfo<BadConfig>& info) { return info.param.label; });

}  // namespace
