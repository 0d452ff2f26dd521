// Drives lorascope's LoRA optimizers and initializations on tensors from a safetensors file, for
// tests/interop/check_lora_optimizers.py to compare with PEFT on the same tensors.
//
// Optimizer modes (--method lora_plus | riemannian_adamw | riemannian_sgd | lora_fa): the input
// holds x (N, d0), t (N, dL) and per layer k = 0..L-1 the frozen W<k> (out, in), b<k> (out) and
// the adapter A<k> (r, in), B<k> (out, r). The model is PEFT's LoRA on an MLP:
//   h_{k+1} = act(h_k W_k^T + b_k + s (h_k A_k^T) B_k^T),  act = tanh except after the last layer,
//   loss = mean((h_L - t)^2)
// and each of --steps steps is backward + the optimizer step. Writes A<k>.step<i>, B<k>.step<i>
// and loss.step<i> (the loss before step i).
// Init modes (--method olora | lora_ga_peft | lora_ga): the input holds W<k> (and G<k>, the
// averaged full-weight gradient, for LoRA-GA); writes A<k>, B<k> and W<k> (the corrected base).
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "models/lora_init.h"
#include "models/safetensors.h"
#include "optim/adamw.h"
#include "optim/adamw_hf.h"
#include "optim/factor_groups.h"
#include "optim/riemannian_lora.h"
#include "optim/sgd.h"

namespace {

using lorascope::LoraPair;
using TensorMap = std::map<std::string, at::Tensor>;

struct Settings {
  std::string method;
  int steps = 5;
  double lr = 1e-2, ratio = 16, delta = 1e-2, weight_decay = 0, momentum = 0, eps = 1e-8, scaling = 2;
  int64_t rank = 4;
};

at::Tensor need(const TensorMap& in, const std::string& name) {
  auto it = in.find(name);
  if (it == in.end()) throw std::runtime_error("input has no tensor \"" + name + "\"");
  return it->second;
}

int layer_count(const TensorMap& in) {
  int n = 0;
  while (in.count("W" + std::to_string(n))) ++n;
  if (n == 0) throw std::runtime_error("input has no W0");
  return n;
}

std::unique_ptr<lorascope::Optimizer> make_optimizer(const Settings& s, const std::vector<LoraPair>& pairs) {
  std::vector<at::Tensor> all, Bs;
  for (const auto& p : pairs) {
    all.push_back(p.A);
    all.push_back(p.B);
    Bs.push_back(p.B);
  }
  lorascope::AdamWOptions adamw;
  adamw.lr = s.lr;
  adamw.eps = s.eps;
  adamw.weight_decay = s.weight_decay;
  if (s.method == "lora_plus") {
    return lorascope::lora_plus(pairs, s.lr, s.ratio, [&](std::vector<at::Tensor> params, double lr) {
      auto o = adamw;
      o.lr = lr;
      return std::make_unique<lorascope::AdamW>(std::move(params), o);
    });
  }
  lorascope::RiemannianOptions riemannian;
  riemannian.delta = s.delta;
  if (s.method == "riemannian_adamw") {
    return std::make_unique<lorascope::RiemannianLora>(pairs, riemannian, std::make_unique<lorascope::AdamW>(all, adamw));
  }
  if (s.method == "riemannian_sgd") {
    lorascope::SGDOptions sgd;
    sgd.lr = s.lr;
    sgd.momentum = s.momentum;
    sgd.weight_decay = s.weight_decay;
    return std::make_unique<lorascope::RiemannianLora>(pairs, riemannian, std::make_unique<lorascope::SGD>(all, sgd));
  }
  if (s.method == "lora_fa") {
    lorascope::AdamWHFOptions hf;
    hf.lr = s.lr;
    hf.eps = s.eps;
    hf.weight_decay = s.weight_decay;
    return std::make_unique<lorascope::RiemannianLora>(pairs, lorascope::lora_fa_options(),
                                                       std::make_unique<lorascope::AdamWHF>(Bs, hf));
  }
  throw std::runtime_error("unknown --method " + s.method);
}

TensorMap run_optimizer(const Settings& s, const TensorMap& in) {
  const int L = layer_count(in);
  const bool freeze_A = s.method == "lora_fa";
  std::vector<LoraPair> pairs;
  for (int k = 0; k < L; ++k) {
    auto A = need(in, "A" + std::to_string(k)).clone().set_requires_grad(!freeze_A);
    auto B = need(in, "B" + std::to_string(k)).clone().set_requires_grad(true);
    pairs.push_back({A, B, s.scaling});
  }
  auto opt = make_optimizer(s, pairs);
  const auto x = need(in, "x"), t = need(in, "t");
  TensorMap out;
  for (int step = 1; step <= s.steps; ++step) {
    for (auto& p : pairs) {
      p.A.mutable_grad() = at::Tensor();
      p.B.mutable_grad() = at::Tensor();
    }
    auto h = x;
    for (int k = 0; k < L; ++k) {
      const auto key = std::to_string(k);
      auto z = at::linear(h, need(in, "W" + key), need(in, "b" + key)) +
               s.scaling * at::linear(at::linear(h, pairs[k].A), pairs[k].B);  // (N, out)
      h = k + 1 < L ? at::tanh(z) : z;
    }
    auto loss = (h - t).pow(2).mean();
    loss.backward();
    opt->step();
    const auto tag = ".step" + std::to_string(step);
    out["loss" + tag] = loss.detach().clone();
    for (int k = 0; k < L; ++k) {
      out["A" + std::to_string(k) + tag] = pairs[k].A.detach().clone();
      out["B" + std::to_string(k) + tag] = pairs[k].B.detach().clone();
    }
  }
  return out;
}

TensorMap run_init(const Settings& s, const TensorMap& in) {
  TensorMap out;
  for (int k = 0, L = layer_count(in); k < L; ++k) {
    const auto key = std::to_string(k);
    const auto W = need(in, "W" + key);
    lorascope::LoraInitFactors init;
    if (s.method == "olora") {
      init = lorascope::olora_init(W, s.rank, s.scaling);
    } else if (s.method == "lora_ga" || s.method == "lora_ga_peft") {
      lorascope::LoraGaOptions o;
      o.flavor = s.method == "lora_ga" ? lorascope::LoraGaFlavor::Paper : lorascope::LoraGaFlavor::Peft;
      init = lorascope::lora_ga_init(W, need(in, "G" + key), s.rank, s.scaling, o);
    } else {
      throw std::runtime_error("unknown --method " + s.method);
    }
    out["A" + key] = init.A;
    out["B" + key] = init.B;
    out["W" + key] = init.W;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lorascope LoRA optimizer / init driver for the PEFT interop check"};
  Settings s;
  std::string in_path, out_path;
  app.add_option("--in", in_path, "input safetensors")->required();
  app.add_option("--out", out_path, "output safetensors")->required();
  app.add_option("--method", s.method, "lora_plus | riemannian_adamw | riemannian_sgd | lora_fa | olora | lora_ga | lora_ga_peft")
      ->required();
  app.add_option("--steps", s.steps);
  app.add_option("--lr", s.lr);
  app.add_option("--ratio", s.ratio, "LoRA+ lr_B / lr_A");
  app.add_option("--delta", s.delta, "Riemannian damping");
  app.add_option("--weight-decay", s.weight_decay);
  app.add_option("--momentum", s.momentum);
  app.add_option("--eps", s.eps);
  app.add_option("--scaling", s.scaling, "LoRA scaling s = alpha / r");
  app.add_option("--rank", s.rank, "init modes: r");
  CLI11_PARSE(app, argc, argv);
  try {
    at::set_num_threads(1);
    const auto in = lorascope::load_safetensors(in_path);
    const bool init = s.method == "olora" || s.method == "lora_ga" || s.method == "lora_ga_peft";
    lorascope::save_safetensors(init ? run_init(s, in) : run_optimizer(s, in), out_path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lora_optim_driver: %s\n", e.what());
    return 2;
  }
  return 0;
}
