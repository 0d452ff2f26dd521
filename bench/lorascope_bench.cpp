// Timings of lorascope's own pieces on LLaMA-3.2-1B shapes, printed as one JSON object per run
// for bench/gpu_bench.sh to set beside its Python peers (bench/peer_*.py):
//
//   muon-step  the optimizer step over the LoRA factors of every layer (random gradients):
//              grouped Muon, the per-parameter Muon loop, and AdamW
//   finetune   LoRA fine-tuning steps on random token ids: bf16 autocast (or float32)
//              forward, cross-entropy, backward, optimizer step; tokens/s, the matmul FLOP rate,
//              peak memory, and the cost of logging every adapter's spectrum. --model picks the
//              LLaMA-3.2-1B shapes (random weights, causal LM), the demo's small LLaMA (random
//              weights, 2-label classification as in configs/lm/compare_spam.json) or the real
//              all-MiniLM-L6-v2 (classification on the normalized mean-pooled embedding);
//              bench/finetune_vs_peft.py runs it beside bench/peer_finetune.py on the CPU
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#ifdef LORASCOPE_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "bench/finetune_setup.h"
#include "models/lora.h"
#include "models/sequence_model.h"
#include "optim/adamw.h"
#include "optim/muon.h"
#include "trainer/adapter_monitor.h"
#include "trainer/autocast_guard.h"
#include "trainer/malloc_tuning.h"
#include "trainer/optimizer_factory.h"
#include "trainer/threads.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using lorascope::bench::build_finetune_model;
using lorascope::bench::cpu_seconds;
using lorascope::bench::demo_small_llama;
using lorascope::bench::FinetuneSpec;
using lorascope::bench::routed_optimizer;

// Waits for the device: a scalar read back to the host.
void sync(const at::Device& d) {
  if (!d.is_cpu()) (void)at::zeros({1}, at::TensorOptions().device(d)).sum().item<float>();
}

// Peak bytes held by the CUDA caching allocator (torch.cuda.max_memory_allocated); -1 where
// this LibTorch has no CUDA.
void reset_peak_memory(const at::Device& d) {
#ifdef LORASCOPE_WITH_CUDA
  if (d.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(d.index() < 0 ? 0 : d.index());
#else
  (void)d;
#endif
}

double peak_memory_gib(const at::Device& d) {
#ifdef LORASCOPE_WITH_CUDA
  if (d.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(d.index() < 0 ? 0 : d.index());
    // Index 0 is StatType::AGGREGATE, whose namespace moved between LibTorch versions.
    return static_cast<double>(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0 * 1024.0);
  }
#else
  (void)d;
#endif
  return -1.0;
}

// Median milliseconds per call of fn over `repeats` timed rounds of `inner` calls each.
template <typename Fn>
double median_ms(const at::Device& d, int warmup, int repeats, int inner, Fn fn) {
  for (int i = 0; i < warmup; ++i) fn();
  sync(d);
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    for (int i = 0; i < inner; ++i) fn();
    sync(d);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / inner);
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

#ifdef LORASCOPE_WITH_CUDA
// fn captured once as a CUDA graph (warmed up and captured on a side stream, as
// torch.cuda.graph does) and replayed: what is left of a step once launch overhead is gone.
template <typename Fn>
double graph_replay_ms(const at::Device& d, int repeats, Fn fn) {
  at::cuda::CUDAGraph graph;
  auto stream = c10::cuda::getStreamFromPool(false, d.index() < 0 ? 0 : d.index());
  {
    c10::cuda::CUDAStreamGuard guard(stream);
    for (int i = 0; i < 3; ++i) fn();
    stream.synchronize();
    graph.capture_begin();
    fn();
    graph.capture_end();
  }
  return median_ms(d, 3, repeats, 10, [&] { graph.replay(); });
}
#endif

// (out, in) of the adapted linear layers of one LLaMA-3.2-1B block.
std::vector<std::pair<int64_t, int64_t>> adapted_layers(const std::string& targets) {
  const int64_t h = 2048, kv = 512, mlp = 8192;
  if (targets == "qv") return {{h, h}, {kv, h}};
  return {{h, h}, {kv, h}, {kv, h}, {h, h}, {mlp, h}, {mlp, h}, {h, mlp}};
}

// The settings of the peers (bench/peer_*.py) as optim sections: torch.optim.Muon with Nesterov
// momentum 0.95, decoupled weight decay 0.01 and the update RMS matched to AdamW's on the adapter
// factors, AdamW (lr 1e-4, weight decay 0.01) on the rest; AdamW alone with the same settings.
json peer_optim(const std::string& name) {
  if (name == "adamw") return {{"name", "adamw"}, {"lr", 1e-4}, {"weight_decay", 0.01}};
  return {{"name", "muon"},      {"lr", 0.02},     {"momentum", 0.95},
          {"nesterov", true},    {"lr_scaling", "match_adamw_rms"},
          {"weight_decay", 0.01}, {"adamw_lr", 1e-4}};
}

lorascope::MuonOptions muon_options() {
  return lorascope::muon_side_options(lorascope::optim_with_defaults(peer_optim("muon")));
}

json bench_muon_step(const at::Device& d, const std::string& targets, int64_t r, int layers,
                     int repeats) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  std::vector<at::Tensor> params;
  for (int l = 0; l < layers; ++l) {
    for (auto [out, in] : adapted_layers(targets)) {
      for (auto shape : {std::vector<int64_t>{r, in}, std::vector<int64_t>{out, r}}) {
        auto p = at::randn(shape, gen, at::kFloat).mul_(0.02).to(d);
        p.mutable_grad() = at::randn(shape, gen, at::kFloat).to(d);
        params.push_back(p);
      }
    }
  }
  json res = {{"bench", "muon-step"}, {"targets", targets}, {"r", r}, {"matrices", params.size()},
              {"device", d.str()}};
  auto mo = muon_options();
  for (bool grouped : {true, false}) {
    mo.grouped = grouped;
    lorascope::Muon muon(params, mo);
    res[grouped ? "muon_grouped_ms" : "muon_loop_ms"] =
        median_ms(d, 3, repeats, 10, [&] { muon.step(); });
#ifdef LORASCOPE_WITH_CUDA
    if (grouped && d.is_cuda()) {
      // A capture failure must not cost the eager timings beside it.
      try {
        res["muon_grouped_graph_ms"] = graph_replay_ms(d, repeats, [&] { muon.step(); });
      } catch (const std::exception& e) {
        res["muon_grouped_graph_error"] = std::string(e.what()).substr(0, 300);
      }
    }
#endif
  }
  lorascope::AdamW adamw(params, lorascope::AdamWOptions{});
  res["adamw_ms"] = median_ms(d, 3, repeats, 10, [&] { adamw.step(); });
  return res;
}

// The cost of one spectral log (trainer/adapter_monitor.h: every adapter's singular values from
// thin QRs and an r x r SVD) over LoRA adapters of LLaMA-3.2-1B shapes, or of the demo's small
// LLaMA (A ~ N(0, 1/in), B ~ N(0, 0.02^2)); bench/monitor_cost.py sets it beside the post-hoc
// way, a full SVD of each scaling * B A.
json bench_spectra(const at::Device& d, const std::string& model, const std::string& targets,
                   int64_t r, int layers, int repeats) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  std::vector<std::pair<int64_t, int64_t>> shapes;
  if (model == "small") {
    const auto c = demo_small_llama();
    const int64_t h = c.hidden_size, kv = c.num_kv_heads * c.head_dim(), m = c.intermediate_size;
    layers = static_cast<int>(c.num_layers);
    shapes = targets == "qv" ? std::vector<std::pair<int64_t, int64_t>>{{h, h}, {kv, h}}
                             : std::vector<std::pair<int64_t, int64_t>>{{h, h}, {kv, h}, {kv, h}, {h, h},
                                                                        {m, h}, {m, h}, {h, m}};
  } else {
    shapes = adapted_layers(targets);
  }
  std::vector<lorascope::AdapterRef> adapters;
  for (int l = 0; l < layers; ++l) {
    for (auto [out, in] : shapes) {
      lorascope::AdapterRef a;
      a.name = "layers." + std::to_string(l) + "." + std::to_string(adapters.size());
      a.A = at::randn({r, in}, gen, at::kFloat).div_(std::sqrt(static_cast<double>(in))).to(d);
      a.B = at::randn({out, r}, gen, at::kFloat).mul_(0.02).to(d);
      a.scaling = 2.0;
      adapters.push_back(a);
    }
  }
  const double ms = median_ms(d, 2, repeats, 5, [&] { (void)lorascope::adapter_spectra(adapters); });
  return {{"bench", "spectra"}, {"impl", "lorascope"}, {"model", model}, {"targets", targets},
          {"r", r}, {"adapters", adapters.size()}, {"device", d.str()}, {"ms_per_log", ms}};
}

// Matmul FLOPs per token of the forward pass: every linear layer (2 per weight) plus causal
// attention's two products over an average context of (T+1)/2.
double forward_flops_per_token(const lorascope::TransformerConfig& c, int64_t T) {
  const double h = c.hidden_size, kv = c.num_kv_heads * c.head_dim(), m = c.intermediate_size;
  const double linear = h * h * 2 + h * kv * 2 + 3 * h * m;
  const double attn = 2.0 * 2.0 * h * (T + 1) / 2.0;
  return c.num_layers * (2 * linear + attn) + 2.0 * h * c.vocab_size;
}

// Every (optimizer, monitor interval) variant on one model (building a 1B model takes seconds):
// a fresh optimizer per variant, one JSON line each.
std::vector<json> bench_finetune(const at::Device& d, const FinetuneSpec& spec,
                                 const std::vector<std::string>& optims,
                                 const std::vector<int>& monitor_everys, int64_t batch, int64_t seq,
                                 int steps, bool bf16, int threads) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  const auto built = build_finetune_model(spec, gen);
  const auto& model = built.model;
  const auto cfg = model->config();
  const bool classification = model->head() == "classification";
  model->to(d);
  model->train();
  const auto roles = built.roles();
  const auto& adapters = roles.adapters;
  // Ids from 1: 0 is the small model's padding id. Full-length rows, no padding.
  auto ids = at::randint(1, cfg.vocab_size, {batch, seq + 1}, gen, at::kLong).to(d);
  auto input = ids.narrow(1, 0, seq).contiguous();
  auto labels = classification ? at::randint(0, 2, {batch}, gen, at::kLong).to(d)
                               : ids.narrow(1, 1, seq).contiguous();
  const at::Tensor mask;  // no padding: causal attention without a mask (flash kernel, no sync)
  std::vector<json> results;
  for (const auto& optim : optims) {
    for (int monitor_every : monitor_everys) {
      auto opt = routed_optimizer(peer_optim(optim), roles);
      int64_t step = 0;
      auto train_step = [&] {
        at::Tensor logits;
        {
          lorascope::AutocastGuard autocast(d.type(), bf16);
          logits = model->forward(input, mask);
        }
        auto loss = at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}).to(at::kFloat),
                                           labels.reshape({-1}));
        loss.backward();
        opt->step();
        opt->zero_grad();
        ++step;
        if (monitor_every > 0 && step % monitor_every == 0) {
          (void)lorascope::adapter_spectra(adapters);  // includes the host transfer
        }
      };
      reset_peak_memory(d);
      // Steps timed one at a time (the median of single steps, as the peer times them); the
      // process's CPU time over the same steps says how much of the wall time was work.
      for (int i = 0; i < 3; ++i) train_step();
      sync(d);
      std::vector<double> step_ms;
      const double cpu0 = cpu_seconds();
      for (int i = 0; i < steps; ++i) {
        const auto t0 = Clock::now();
        train_step();
        sync(d);
        step_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      const double cpu_ms_per_step = (cpu_seconds() - cpu0) * 1000.0 / steps;
      std::sort(step_ms.begin(), step_ms.end());
      const double ms = step_ms[step_ms.size() / 2];
      const double tokens = static_cast<double>(batch * seq);
      // Forward plus the input-gradient half of the backward (frozen weights get no gradient).
      const double flops = 2.0 * forward_flops_per_token(cfg, seq) * tokens;
      results.push_back({{"bench", "finetune"}, {"impl", "lorascope"}, {"model", spec.model},
                         {"targets", spec.targets}, {"r", spec.r}, {"optim", optim},
                         {"monitor_every", monitor_every}, {"threads", threads},
                         {"layers", cfg.num_layers}, {"batch", batch}, {"seq", seq}, {"bf16", bf16},
                         {"device", d.str()}, {"step_ms", ms}, {"step_ms_min", step_ms.front()},
                         {"cpu_ms_per_step", cpu_ms_per_step},
                         {"tokens_per_s", tokens / (ms / 1000.0)},
                         {"matmul_tflops", flops / (ms / 1000.0) / 1e12},
                         {"adapters", adapters.size()}, {"peak_mem_gib", peak_memory_gib(d)},
                         {"torch", TORCH_VERSION}});
      std::printf("%s\n", results.back().dump().c_str());
      std::fflush(stdout);
    }
  }
  return results;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lorascope_bench: timings on LLaMA-3.2-1B shapes (JSON lines on stdout)"};
  app.require_subcommand(1);
  std::string device = "cuda", targets = "qv";
  std::vector<std::string> optims = {"adamw"};
  std::vector<int> monitor_everys = {0};
  int64_t r = 8, batch = 8, seq = 512;
  int layers = 16, repeats = 20, steps = 12, threads = 0;
  bool no_bf16 = false;
  app.add_option("--device", device, "cuda | cpu");
  app.add_option("--layers", layers, "transformer blocks (LLaMA-3.2-1B has 16)");
  app.add_option("--threads", threads, "CPU threads (default: all cores)");
  auto* muon = app.add_subcommand("muon-step", "optimizer step over the LoRA factors");
  muon->add_option("--targets", targets, "qv | all")->check(CLI::IsMember({"qv", "all"}));
  muon->add_option("--r", r, "LoRA rank");
  muon->add_option("--repeats", repeats, "timed rounds of 10 steps (median reported)");
  auto* ft = app.add_subcommand("finetune", "LoRA fine-tuning steps on random tokens");
  ft->add_option("--optim", optims, "adamw and/or muon (each is timed)")
      ->check(CLI::IsMember({"adamw", "muon"}))->delimiter(',');
  ft->add_option("--monitor-every", monitor_everys,
                 "log every adapter's spectrum every N steps; 0 = never (a list: each is timed)")
      ->delimiter(',');
  auto* spectra = app.add_subcommand("spectra", "one spectral log over every adapter");
  std::string spectra_model = "llama1b";
  spectra->add_option("--model", spectra_model, "llama1b | small")
      ->check(CLI::IsMember({"llama1b", "small"}));
  spectra->add_option("--targets", targets, "qv | all")->check(CLI::IsMember({"qv", "all"}));
  spectra->add_option("--r", r, "LoRA rank");
  spectra->add_option("--repeats", repeats, "timed rounds of 5 logs (median reported)");
  FinetuneSpec spec;
  ft->add_option("--model", spec.model, "llama1b (random, causal LM) | small (the demo's LLaMA, "
                 "random, classification) | minilm (real weights, classification)")
      ->check(CLI::IsMember({"llama1b", "small", "minilm"}));
  ft->add_option("--minilm", spec.minilm_dir, "all-MiniLM-L6-v2 checkpoint directory");
  ft->add_option("--targets", spec.targets, "qv | all (every linear layer of the blocks)")
      ->check(CLI::IsMember({"qv", "all"}));
  ft->add_option("--r", spec.r, "LoRA rank (alpha = 2 r)");
  ft->add_option("--batch", batch);
  ft->add_option("--seq", seq);
  ft->add_option("--steps", steps, "timed steps (3 warm-up steps come first)");
  ft->add_flag("--no-bf16", no_bf16, "float32 forward instead of bf16 autocast");
  CLI11_PARSE(app, argc, argv);
  lorascope::tune_malloc_for_tensors();  // as lorascope's main() does
  try {
    threads = lorascope::configure_threads(threads);
    const at::Device d(device);
    if (d.is_cuda() && !at::hasCUDA()) throw std::runtime_error("--device cuda: no CUDA device");
    if (*muon) std::printf("%s\n", bench_muon_step(d, targets, r, layers, repeats).dump().c_str());
    if (*spectra) {
      std::printf("%s\n", bench_spectra(d, spectra_model, targets, r, layers, repeats).dump().c_str());
    }
    spec.layers = layers;
    if (*ft) bench_finetune(d, spec, optims, monitor_everys, batch, seq, steps, !no_bf16, threads);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lorascope_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
