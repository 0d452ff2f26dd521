// Time of one LoRA fine-tuning step of MiniLM (all-MiniLM-L6-v2: BERT, 6 layers, width 384) on
// the CPU, to size README command (1): LoRA r on query and value, the head on the mean-pooled,
// normalized embedding trained in full, cross-entropy, backward, optimizer step; and the
// no-grad forward that evaluation costs. Token ids are random (the time does not depend on them),
// every row full length (no padding). One JSON object per sequence length.
//
//   build/bench/minilm_step --model .cache/models/all-MiniLM-L6-v2 --threads 2 --seqs 64,128,256
//
// Without --model (or when it is missing) the same shapes are initialised at random.
// Model, adapters and optimizer routing are `lorascope_bench finetune`'s (bench/finetune_setup.h);
// what this adds: the no-grad evaluation forward, SpecGD, float32 only, random weights when the
// checkpoint is missing, and several sequence lengths in one process.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "bench/finetune_setup.h"
#include "trainer/malloc_tuning.h"
#include "trainer/threads.h"

namespace {

using Clock = std::chrono::steady_clock;

// CPU time of the whole process (all threads), ms: on a shared machine wall time also counts
// the waits for a core; CPU time / threads is what a quiet machine would take at best.
double cpu_ms() { return lorascope::bench::cpu_seconds() * 1e3; }

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

// The optim section of --optim, routed as the trainer routes it (AdamW on every trainable
// parameter; Muon or SpecGD on the adapter factors and AdamW on the head), with the optimizers'
// own defaults (optim/adamw.h AdamWOptions, optim/muon.h MuonOptions) as settings.
nlohmann::json optim_section(const std::string& name) {
  if (name == "adamw") return {{"name", "adamw"}, {"lr", 1e-3}, {"weight_decay", 1e-2}};
  return {{"name", name}, {"lr", 0.02}, {"weight_decay", 0.0}, {"adamw_lr", 1e-3}, {"adamw_weight_decay", 1e-2}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"MiniLM LoRA step time on the CPU"};
  std::string model_dir, optim = "adamw";
  int threads = 2, steps = 5, warmup = 2;
  int64_t batch = 16, r = 8;
  std::vector<int64_t> seqs = {64, 128, 256};
  app.add_option("--model", model_dir, "MiniLM checkpoint directory (default: random weights)");
  app.add_option("--threads", threads, "intra-op threads");
  app.add_option("--batch", batch, "sequences per step");
  app.add_option("--seqs", seqs, "sequence lengths")->delimiter(',');
  app.add_option("--steps", steps, "timed steps per length");
  app.add_option("--warmup", warmup, "untimed steps first");
  app.add_option("--r", r, "LoRA rank");
  app.add_option("--optim", optim, "adamw | muon (Newton-Schulz) | specgd (exact)")
      ->check(CLI::IsMember({"adamw", "muon", "specgd"}));
  CLI11_PARSE(app, argc, argv);
  lorascope::tune_malloc_for_tensors();  // as lorascope's main() does
  lorascope::configure_threads(threads);

  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  lorascope::bench::FinetuneSpec spec;
  const bool real = !model_dir.empty() && std::filesystem::exists(model_dir + "/model.safetensors");
  spec.model = real ? "minilm" : "minilm_random";
  spec.minilm_dir = model_dir;
  spec.r = r;
  const auto built = lorascope::bench::build_finetune_model(spec, gen);
  const auto& model = built.model;
  auto optimizer = lorascope::bench::routed_optimizer(optim_section(optim), built.roles());
  const auto vocab = model->config().vocab_size;
  for (int64_t T : seqs) {
    const auto ids = at::randint(1000, vocab, {batch, T}, gen, at::kLong);
    const auto mask = at::ones({batch, T}, at::kLong);
    const auto labels = at::randint(0, 2, {batch}, gen, at::kLong);
    model->train();
    std::vector<double> train_ms, eval_ms, train_cpu_ms, eval_cpu_ms;
    for (int s = 0; s < warmup + steps; ++s) {
      const auto t0 = Clock::now();
      const double c0 = cpu_ms();
      const auto loss = at::cross_entropy_loss(model->forward(ids, mask), labels);
      loss.backward();
      optimizer->step();
      for (auto& p : model->parameters()) {
        if (p.grad().defined()) p.mutable_grad().zero_();
      }
      if (s >= warmup) {
        train_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        train_cpu_ms.push_back(cpu_ms() - c0);
      }
    }
    model->eval();
    {
      at::NoGradGuard ng;
      for (int s = 0; s < warmup + steps; ++s) {
        const auto t0 = Clock::now();
        const double c0 = cpu_ms();
        (void)model->forward(ids, mask).sum().item<float>();
        if (s >= warmup) {
          eval_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
          eval_cpu_ms.push_back(cpu_ms() - c0);
        }
      }
    }
    const double tr = median(train_ms), ev = median(eval_ms);
    const nlohmann::json out = {{"bench", "minilm-step"}, {"weights", real ? model_dir : "random"},
                                {"threads", threads},     {"optim", optim},
                                {"batch", batch},         {"seq", T},
                                {"r", r},                 {"train_step_ms", tr},
                                {"eval_batch_ms", ev},    {"train_tokens_per_s", 1000.0 * batch * T / tr},
                                {"train_ms_min", *std::min_element(train_ms.begin(), train_ms.end())},
                                {"train_cpu_ms", median(train_cpu_ms)}, {"eval_cpu_ms", median(eval_cpu_ms)}};
    std::printf("%s\n", out.dump().c_str());
    std::fflush(stdout);
  }
  return 0;
}
