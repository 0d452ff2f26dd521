// lorascope_interop_driver: lorascope's training step and optimizers on inputs written by the
// reference libraries (tests/interop/check_train_step.py, check_optimizers.py), results written
// as safetensors for them to compare. Test-only: built with the tests, not part of the user CLI.
//
//   train-step     --model DIR --adapter DIR --batch JSON --head H --out FILE
//                  loss and every trainable gradient (LoRA factors, modules_to_save) of one
//                  forward/backward, under PEFT's tensor names
//   adamw | muon   --init FILE --targets FILE --steps N [options] --out FILE
//                  N steps on the loss 1/2 ||W - Y_k||^2 (gradient W - Y_k, Y_k = targets[k]);
//                  out[name] = (N, ...) the parameter after each step. Every option is set here
//                  explicitly, whatever the library's defaults are.
//   newton-schulz  --in FILE --steps N --eps E --out FILE
//                  orthogonalize() (Muon's path: Eigen kernels for small CPU matrices, batched)
//                  as out[name] and the ATen path newton_schulz() as out[name + ".aten"]
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/hf_checkpoint.h"
#include "models/lora.h"
#include "models/peft_adapter.h"
#include "models/safetensors.h"
#include "optim/adamw.h"
#include "optim/muon.h"
#include "optim/orthogonalize.h"
#include "trainer/sequence_loss.h"

namespace {

using namespace lorascope;
using nlohmann::json;

at::Tensor int_rows(const json& j, const std::string& key, const std::string& path) {
  if (!j.contains(key)) throw std::runtime_error(path + ": missing " + key);
  const auto& v = j.at(key);
  if (v.is_array() && !v.empty() && v[0].is_array()) {
    std::vector<int64_t> flat;
    for (const auto& row : v) {
      if (row.size() != v[0].size()) throw std::runtime_error(path + ": " + key + ": rows of different lengths");
      for (const auto& x : row) flat.push_back(x.get<int64_t>());
    }
    return at::tensor(flat, at::kLong).view({static_cast<int64_t>(v.size()), static_cast<int64_t>(v[0].size())});
  }
  return at::tensor(v.get<std::vector<int64_t>>(), at::kLong);
}

int train_step(const std::string& model_dir, const std::string& adapter, const std::string& batch_path,
               const std::string& head, const std::string& out) {
  std::ifstream in(batch_path);
  if (!in) throw std::runtime_error(batch_path + ": not found");
  const json j = json::parse(in);
  const auto ids = int_rows(j, "input_ids", batch_path);
  const auto mask = int_rows(j, "attention_mask", batch_path);
  const auto labels = int_rows(j, "labels", batch_path);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  auto model = load_hf_model(model_dir, head, 0, gen);
  load_peft_adapter(*model, adapter);
  model->train();
  // As the trainer does: an unpadded batch goes without a mask (causal attention's own path).
  const bool padded = mask.eq(0).any().item<bool>();
  const auto logits = model->forward(ids, padded ? mask : at::Tensor());
  const auto loss = mean_loss(logits, labels, head == "classification");  // the trainer's loss (trainer/sequence_loss.h)
  loss.backward();
  const std::string family = hf_family(model->config());
  std::map<std::string, at::Tensor> tensors = {{"loss", loss.detach().to(at::kDouble).reshape({1})}};
  for (const auto& p : model->named_parameters(true)) {
    if (!p.value().requires_grad()) continue;
    if (!p.value().grad().defined()) throw std::runtime_error(p.key() + ": trainable but got no gradient");
    tensors["base_model.model." + hf_parameter_name(p.key(), family)] = p.value().grad();
  }
  save_safetensors(tensors, out);
  std::fprintf(stderr, "train-step: loss %.9g, %zu gradients -> %s\n", loss.item<double>(), tensors.size() - 1,
               out.c_str());
  return 0;
}

struct Trajectory {
  std::map<std::string, at::Tensor> params, targets;  // targets[name] (steps, ...)
};

Trajectory read_problem(const std::string& init, const std::string& targets, int64_t steps) {
  Trajectory t;
  t.params = load_safetensors(init);
  t.targets = load_safetensors(targets);
  for (auto& [name, p] : t.params) {
    if (!t.targets.count(name) || t.targets[name].size(0) < steps) {
      throw std::runtime_error(targets + ": expected " + name + " with at least " + std::to_string(steps) + " steps");
    }
    p = p.clone().set_requires_grad(true);
  }
  return t;
}

// Steps opt on 1/2 ||W - Y_k||^2 and records W after every step.
int run_steps(Trajectory& t, Optimizer& opt, int64_t steps, const std::string& out) {
  std::map<std::string, std::vector<at::Tensor>> seen;
  for (int64_t k = 0; k < steps; ++k) {
    for (auto& [name, p] : t.params) {
      at::NoGradGuard no_grad;
      p.mutable_grad() = p.detach() - t.targets[name][k];
    }
    opt.step();
    for (auto& [name, p] : t.params) seen[name].push_back(p.detach().clone());
  }
  std::map<std::string, at::Tensor> tensors;
  for (auto& [name, list] : seen) tensors[name] = at::stack(list);
  save_safetensors(tensors, out);
  return 0;
}

std::vector<at::Tensor> param_list(Trajectory& t) {
  std::vector<at::Tensor> list;
  for (auto& [name, p] : t.params) list.push_back(p);
  return list;
}

int newton_schulz_cmd(const std::string& in, int steps, double eps, const std::string& out) {
  std::map<std::string, at::Tensor> tensors;
  for (const auto& [name, x] : load_safetensors(in)) {
    tensors[name] = orthogonalize(x, OrthoOptions{OrthoKind::NewtonSchulz, 0.0, steps, eps});
    tensors[name + ".aten"] = newton_schulz(x, steps, eps);
  }
  save_safetensors(tensors, out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"lorascope_interop_driver: lorascope's training step and optimizers for tests/interop/"};
  app.require_subcommand(1);
  std::string model, adapter, batch, head = "causal_lm", out, init, targets, input, lr_scaling = "none";
  int64_t steps = 1;
  int ns_steps = 5;
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0, momentum = 0.95, ns_eps = 1e-7;
  bool nesterov = false, grouped = true;
  int threads = 1;
  app.add_option("--threads", threads, "intra-op threads");
  auto* ts = app.add_subcommand("train-step", "loss and gradients of one batch");
  ts->add_option("--model", model)->required();
  ts->add_option("--adapter", adapter)->required();
  ts->add_option("--batch", batch, "JSON {input_ids, attention_mask, labels}")->required();
  ts->add_option("--head", head)->check(CLI::IsMember({"causal_lm", "classification"}));
  ts->add_option("--out", out)->required();
  auto* ad = app.add_subcommand("adamw", "AdamW steps");
  auto* mu = app.add_subcommand("muon", "Muon steps");
  for (auto* c : {ad, mu}) {
    c->add_option("--init", init)->required();
    c->add_option("--targets", targets)->required();
    c->add_option("--steps", steps)->required();
    c->add_option("--lr", lr)->required();
    c->add_option("--weight-decay", weight_decay)->required();
    c->add_option("--out", out)->required();
  }
  ad->add_option("--beta1", beta1)->required();
  ad->add_option("--beta2", beta2)->required();
  ad->add_option("--eps", eps)->required();
  mu->add_option("--momentum", momentum)->required();
  mu->add_option("--nesterov", nesterov)->required();
  mu->add_option("--ns-steps", ns_steps)->required();
  mu->add_option("--ns-eps", ns_eps)->required();
  mu->add_option("--lr-scaling", lr_scaling)->required();
  mu->add_option("--grouped", grouped)->required();
  auto* ns = app.add_subcommand("newton-schulz", "Newton-Schulz of every tensor in a file");
  ns->add_option("--in", input)->required();
  ns->add_option("--steps", ns_steps)->required();
  ns->add_option("--eps", ns_eps)->required();
  ns->add_option("--out", out)->required();
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(threads);

  if (ts->parsed()) return train_step(model, adapter, batch, head, out);
  if (ns->parsed()) return newton_schulz_cmd(input, ns_steps, ns_eps, out);
  auto t = read_problem(init, targets, steps);
  if (ad->parsed()) {
    AdamW opt(param_list(t), AdamWOptions{lr, beta1, beta2, eps, weight_decay});
    return run_steps(t, opt, steps, out);
  }
  MuonOptions o;
  o.lr = lr;
  o.momentum = momentum;
  o.nesterov = nesterov;
  o.ortho = OrthoOptions{OrthoKind::NewtonSchulz, 0.0, ns_steps, ns_eps};
  o.lr_scaling = parse_lr_scaling(lr_scaling);
  o.weight_decay = weight_decay;
  o.grouped = grouped;
  Muon opt(param_list(t), o);
  return run_steps(t, opt, steps, out);
} catch (const std::exception& e) {
  std::fprintf(stderr, "lorascope_interop_driver: %s\n", e.what());
  return 1;
}
