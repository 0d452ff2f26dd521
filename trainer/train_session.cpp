#include "trainer/train_session.h"

#include <ATen/core/grad_mode.h>
#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

#include "data/matrix_json.h"
#include "models/hf_checkpoint.h"
#include "models/peft_adapter.h"
#include "models/safetensors.h"
#include "optim/muon.h"
#include "optim/param_groups.h"
#include "optim/state_io.h"
#include "trainer/autocast_guard.h"
#include "trainer/device.h"
#include "trainer/evaluation_sample.h"
#include "trainer/gradient_init.h"
#include "trainer/memory_budget.h"
#include "trainer/optimizer_factory.h"
#include "trainer/sequence_loss.h"

namespace lorascope {

namespace fs = std::filesystem;
using nlohmann::json;

bool is_classification(const TrainConfig& cfg) {
  return cfg.mode == "finetune" &&
         (cfg.data_kind == "spam_assassin" || cfg.data_kind == "brown" || cfg.data_kind == "glue_tsv");
}

// tokenizer.path, else the checkpoint's tokenizer.json, else its tokenizer.model.
std::string hf_tokenizer_path(const TrainConfig& c) {
  if (!c.tokenizer_path.empty()) return c.tokenizer_path;
  for (const char* name : {"/tokenizer.json", "/tokenizer.model"}) {
    if (fs::exists(c.base + name)) return c.base + name;
  }
  throw ConfigError(c.base + ": no tokenizer.json or tokenizer.model (set tokenizer.path)");
}

std::vector<Batch> epoch_batches(const Session& s, const std::vector<TokenizedExample>& data, int64_t epoch,
                                 bool shuffle) {
  const auto& c = s.cfg;
  if (s.classification) {
    return classification_batches(data, c.batch_size, s.tokenizer->pad_id(), c.seed, epoch, shuffle);
  }
  if (c.data_kind == "alpaca") return sft_batches(data, c.batch_size, s.tokenizer->pad_id(), c.seed, epoch, shuffle);
  return packed_lm_batches(data, c.batch_size, c.max_len, c.seed, epoch, shuffle);
}

void check_grad_accum(const TrainConfig& c, int64_t micro_batches, int64_t examples) {
  if (c.grad_accum <= micro_batches) return;
  throw ConfigError(c.name + ": train.grad_accum: expected at most the " + std::to_string(micro_batches) +
                    " micro-batches of one epoch (" + std::to_string(examples) + " training examples at train.batch_size " +
                    std::to_string(c.batch_size) + "), got " + std::to_string(c.grad_accum));
}

namespace {

// 3. The model, its base weights and adapters; returns the prefixes of the modules trained in full.
std::vector<std::string> build_model(Session& s, const TransformerConfig& model_cfg, bool hf_base,
                                     int64_t num_labels) {
  const auto& c = s.cfg;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(c.seed));
  // Opened (headers validated) before the model is allocated, so a bad checkpoint fails fast.
  std::optional<SafetensorsCheckpoint> hf_weights;
  if (hf_base) hf_weights.emplace(c.base);
  s.model = make_model(model_cfg, s.classification ? "classification" : "causal_lm", num_labels, gen);
  if (c.mode != "finetune") return {};
  // The classification head is new (unless an HF checkpoint has it): every other tensor must
  // come from the base.
  if (hf_base) {
    const auto report = load_hf_weights(*s.model, *hf_weights);
    if (!report.fresh.empty()) {
      std::fprintf(stderr, "%s: %s: new head (%zu tensors initialised here)\n", c.name.c_str(), c.base.c_str(),
                   report.fresh.size());
    }
  } else {
    load_module_state(*s.model, load_tensor_dict(c.base + "/model.pt"), c.base + "/model.pt",
                      {s.model->head_module()});
  }
  LoraConfig lora = c.lora;
  if (lora.modules_to_save.empty() && s.classification && c.train_head) {
    lora.modules_to_save = {s.model->head_module()};
  }
  std::vector<std::string> saved;
  if (!c.adapter_path.empty()) {
    const auto loaded = load_peft_adapter(*s.model, c.adapter_path);
    auto modules = loaded.modules_to_save;
    if (s.classification && c.train_head) modules.push_back(s.model->head_module());
    for (const auto& m : modules) saved.push_back(m + ".");
    // What was loaded replaces lora.* (the export records it; what trains in full, the export reads
    // from the role table: models/peft_adapter.h).
    lora.r = loaded.r;
    lora.alpha = loaded.alpha;
    lora.rslora = loaded.rslora;
    lora.dropout = loaded.dropout;
    lora.targets = loaded.targets;
    lora.target_regex = loaded.target_regex;
    lora.exclude = loaded.exclude;
    lora.rank_pattern = loaded.rank_pattern;
    lora.alpha_pattern = loaded.alpha_pattern;
    lora.init = "peft";
  } else {
    attach_lora(*s.model, lora, gen);
    saved = modules_to_save_prefixes(*s.model, lora.modules_to_save);
  }
  s.lora = lora;
  return saved;
}

// 4. Roles, decided once: what trains, what each group's optimizer takes, what a checkpoint holds.
void assign_roles(Session& s, const std::vector<std::string>& saved) {
  RoleRules rules;
  rules.full_training = s.cfg.mode == "pretrain";
  rules.trained_in_full = saved;
  rules.head_module = s.model->head_module();
  s.roles = parameter_roles(*s.model, rules);
  apply_roles(s.roles);
  std::vector<std::string> frozen;
  for (const auto& p : s.roles.parameters) (p.trains() ? s.trained : frozen).push_back(p.name);
  if (rules.full_training) {  // everything trains: buffers too
    for (const auto& b : s.model->named_buffers(true)) s.trained.push_back(b.key());
  } else {
    s.base_fingerprint = base_fingerprint(*s.model, frozen);
  }
}

}  // namespace

void setup(Session& s, const std::string& run_dir) {
  auto& c = s.cfg;
  s.device = pick_device(c.device);
  if (s.device.is_cuda() && s.comm) s.device = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(s.comm->local_rank()));
  if (s.comm) s.rank = s.comm->rank(), s.world = s.comm->world_size();
  // 1. data and its seeded split
  auto data = load_text_dataset(c.data_kind, c.data_path, c.load, &s.skipped_records);
  if (s.skipped_records > 0) {
    std::fprintf(stderr, "%s: data.skip_malformed: skipped %lld malformed records of %s\n",
                 c.name.c_str(), static_cast<long long>(s.skipped_records),
                 c.data_path.empty() ? c.data_kind.c_str() : c.data_path.c_str());
  }
  s.splits = split_dataset(data, c.validation_fraction, c.test_fraction, static_cast<uint64_t>(c.seed));
  s.classification = is_classification(c);
  if (s.classification && data.label_names.empty()) {
    throw ConfigError(c.data_kind + ": expected a labelled dataset for classification");
  }
  // 2. tokenizer
  TransformerConfig model_cfg = c.model;
  const bool hf_base = c.mode == "finetune" && is_hf_checkpoint_dir(c.base);
  if (c.mode == "pretrain") {
    const std::string own = run_dir + "/tokenizer.model";
    bool trained_before = fs::exists(own);
    if (s.comm) {  // every rank must take the same branch: rank 0's view of the file decides
      auto flag = at::full({1}, trained_before ? 1 : 0, at::kLong);
      s.comm->broadcast(flag, 0);
      trained_before = flag.item<int64_t>() != 0;
    }
    if (!c.tokenizer_path.empty() || trained_before) {  // given, or trained before a resume
      s.tokenizer = std::make_shared<Tokenizer>(
          Tokenizer::load(c.tokenizer_path.empty() ? own : c.tokenizer_path));
    } else if (s.comm && s.comm->rank() != 0) {
      s.comm->barrier();  // rank 0 trains and writes it
      s.tokenizer = std::make_shared<Tokenizer>(Tokenizer::load(own));
    } else {
      std::vector<std::string> texts;
      for (const auto& e : s.splits.train.examples) texts.push_back(e.prompt + e.text);
      s.tokenizer = std::make_shared<Tokenizer>(
          Tokenizer::train(texts, c.tokenizer_vocab, own, c.seed));
      if (s.comm) s.comm->barrier();
    }
    model_cfg.vocab_size = s.tokenizer->vocab_size();
    model_cfg.pad_token_id = s.tokenizer->pad_id();
  } else if (hf_base) {
    model_cfg = read_hf_config(c.base).config;
    s.tokenizer = std::make_shared<Tokenizer>(Tokenizer::load(hf_tokenizer_path(c)));
    // A model may have more embedding rows than the tokenizer has ids (padded vocabularies),
    // never fewer.
    if (s.tokenizer->vocab_size() > model_cfg.vocab_size) {
      throw ConfigError(s.tokenizer->path() + ": vocabulary of " + std::to_string(s.tokenizer->vocab_size()) +
                        " ids, but " + c.base + "/config.json has vocab_size " + std::to_string(model_cfg.vocab_size) +
                        " (a tokenizer of another model?)");
    }
  } else {
    model_cfg = TransformerConfig::from_json(read_json_file(c.base + "/model_config.json"),
                                             c.base + "/model_config.json");
    s.tokenizer = std::make_shared<Tokenizer>(
        Tokenizer::load(c.tokenizer_path.empty() ? c.base + "/tokenizer.model" : c.tokenizer_path));
    if (s.tokenizer->vocab_size() != model_cfg.vocab_size) {
      throw ConfigError(s.tokenizer->path() + ": vocabulary of " +
                        std::to_string(s.tokenizer->vocab_size()) + " pieces, but the model expects " +
                        std::to_string(model_cfg.vocab_size));
    }
  }
  const int64_t max_len = std::min(c.max_len, model_cfg.max_positions - 2);
  const bool lm = !s.classification;
  s.train = tokenize(s.splits.train, *s.tokenizer, max_len, lm);
  s.validation = tokenize(s.splits.validation, *s.tokenizer, max_len, lm);
  s.test = tokenize(s.splits.test, *s.tokenizer, max_len, lm);
  // 3. model (+ base weights, + adapters)
  const auto saved = build_model(s, model_cfg, hf_base,
                                 s.classification ? static_cast<int64_t>(data.label_names.size()) : 0);
  uint64_t model_bytes = 0;
  for (const auto& p : s.model->parameters()) model_bytes += static_cast<uint64_t>(p.numel() * p.element_size());
  with_memory_context([&] { s.model->to(s.device); }, model_bytes, "the model's weights", s.device.str());
  // LoRA-GA / LoRA-One read the base's gradient on the first batches (on the device, after .to()).
  if (lora_init_needs_gradient(s.lora.init)) initialize_adapters_from_gradient(s);
  s.initial_adapters = starting_factors(*s.model, s.lora);  // a PEFT export carries them (peft_adapter.h)
  // 4. roles (after .to(), which may replace the tensors), then the optimizer groups they route to
  assign_roles(s, saved);
  s.groups = route_parameters(s.roles, routing_rules(c.optim, c.mode == "pretrain"));
  s.optimizer = make_routed_optimizer(c.optim, s.groups);
  // 5. schedule over the whole run; every epoch must give at least one step
  s.batches_per_epoch = static_cast<int64_t>(epoch_batches(s, s.train, 0, false).size());
  if (s.batches_per_epoch == 0) throw ConfigError(c.data_kind + ": no training batches (dataset too small?)");
  check_grad_accum(c, s.batches_per_epoch, static_cast<int64_t>(s.train.size()));
  // Steps per epoch round down: the micro-batches left over at an epoch's end are dropped.
  s.total_steps = c.max_steps > 0 ? c.max_steps : c.epochs * (s.batches_per_epoch / c.grad_accum);
  s.schedule = make_schedule(c.schedule, s.total_steps);
  // 6. the held-out sample evaluated during training
  const int64_t eval_examples = c.eval_batches > 0 ? c.eval_batches * c.batch_size : 0;
  s.eval_sample = evaluation_sample(s.validation, eval_examples, static_cast<uint64_t>(c.seed), s.classification);
}

namespace {

// Host batch to the device without blocking the host: a pinned staging copy, then an
// asynchronous transfer queued ahead of the step's kernels.
at::Tensor to_device(const at::Tensor& t, const at::Device& d) {
  if (!d.is_cuda()) return t.to(d);
  return t.pin_memory().to(d, /*non_blocking=*/true);
}

}  // namespace

at::Tensor forward_batch(Session& s, const Batch& b) {
  auto ids = to_device(b.input_ids, s.device);
  // A batch without padding (checked here, on the host copy) goes without a mask: the model
  // then takes causal attention's fused kernel and needs no device-to-host check for padding.
  const bool padded = b.attention_mask.defined() && b.attention_mask.eq(0).any().item<bool>();
  const auto mask = padded ? to_device(b.attention_mask, s.device) : at::Tensor();
  // Segment ids (WordPiece pairs) reach BERT's token type embeddings; decoders refuse them.
  const auto types = b.token_type_ids.defined() ? to_device(b.token_type_ids, s.device) : at::Tensor();
  AutocastGuard autocast(s.device.type(), s.cfg.bf16);  // forward only, as torch.autocast
  return s.model->forward(ids, mask, types);
}

namespace {

// The step's loss and global gradient norm in one device-to-host transfer; names the first
// parameter with a non-finite gradient.
std::pair<double, double> loss_and_grad_norm(const ParameterRoles& roles, const at::Tensor& loss, std::string* bad) {
  std::vector<std::string> names;
  std::vector<at::Tensor> values = {loss.detach().reshape({1}).to(at::kDouble)};
  for (const auto& p : roles.parameters) {
    const auto& g = p.tensor.grad();
    if (!g.defined()) continue;
    names.push_back(p.name);
    values.push_back(g.norm().reshape({1}).to(at::kDouble));
  }
  const auto host = at::cat(values).cpu();
  const double* v = host.data_ptr<double>();
  double sq = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    const double n = v[i + 1];
    if (!std::isfinite(n) && bad->empty()) *bad = names[i];
    sq += n * n;
  }
  return {v[0], std::sqrt(sq)};
}

}  // namespace

StepResult train_step(Session& s, const std::vector<Batch>& micro, int64_t step,
                      const std::function<void()>& after_backward) {
  const auto& c = s.cfg;
  StepResult r;
  // The denominator of the whole step: every micro-batch's rows (classification) or targets.
  double count = 0;
  for (const auto& b : micro) count += loss_count(b.labels, s.classification);
  count = std::max(count, 1.0);
  at::Tensor accum;  // the step's loss, summed over micro-batches on the device
  for (size_t i = 0; i < micro.size(); ++i) {
    const Batch& global = micro[i];
    r.tokens += static_cast<double>(global.num_tokens);
    // One process reads the whole batch; a data-parallel rank its contiguous share of the rows
    // (possibly none of a short last batch).
    const auto [lo, hi] = shard_range(global.labels.size(0), s.rank, s.world);
    if (s.reducer && i + 1 == micro.size()) s.reducer->arm();  // gradients final after this backward
    if (hi <= lo) continue;
    const Batch b = s.comm ? slice_rows(global, lo, hi) : global;
    const auto logits = forward_batch(s, b);
    const auto loss = loss_sum(logits, to_device(b.labels, s.device), s.classification) / count;
    loss.backward();
    accum = accum.defined() ? accum + loss.detach() : loss.detach();
  }
  if (!accum.defined()) accum = at::zeros({}, at::TensorOptions(at::kFloat).device(s.device));
  if (s.comm) {
    const auto t0 = std::chrono::steady_clock::now();
    s.reducer->finish();
    accum = accum.reshape({1}).contiguous();
    s.comm->all_reduce(accum);  // the global mean loss: the sum of the ranks' shares
    r.comm_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (after_backward) after_backward();
  std::string bad;
  const auto [loss, gnorm] = loss_and_grad_norm(s.roles, accum, &bad);
  r.loss = loss;
  r.grad_norm = gnorm;
  if (!std::isfinite(loss)) {
    r.nonfinite = std::string("loss is ") + (std::isnan(loss) ? "NaN" : "Inf");
  } else if (!bad.empty()) {
    r.nonfinite = "gradient of " + bad + " is not finite";
  }
  if (!r.nonfinite.empty()) {
    s.optimizer->zero_grad();
    return r;
  }
  if (c.clip_norm > 0 && gnorm > c.clip_norm) {
    at::NoGradGuard no_grad;
    for (const auto& p : s.roles.parameters) {
      if (p.tensor.grad().defined()) p.tensor.mutable_grad().mul_(c.clip_norm / (gnorm + 1e-6));
    }
  }
  s.optimizer->set_lr_factor(s.schedule.factor(step));
  const auto t0 = std::chrono::steady_clock::now();
  s.optimizer->step();
  r.optimizer_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.optimizer->zero_grad();
  return r;
}

json evaluate(Session& s, const std::vector<TokenizedExample>& data) {
  if (data.empty()) return json::object();  // no held-out split configured
  at::NoGradGuard no_grad;
  s.model->eval();
  double loss_total = 0, count = 0, correct = 0, rows = 0;
  for (const auto& b : epoch_batches(s, data, 0, false)) {
    const auto logits = forward_batch(s, b);
    loss_total += loss_sum(logits, to_device(b.labels, s.device), s.classification).item<double>();
    count += loss_count(b.labels, s.classification);
    if (s.classification) {
      correct += logits.argmax(-1).cpu().eq(b.labels).sum().item<double>();
      rows += static_cast<double>(b.labels.size(0));
    }
  }
  s.model->train();
  json out = {{"loss", count > 0 ? loss_total / count : NAN}};
  if (s.classification) {
    out["accuracy"] = rows > 0 ? correct / rows : NAN;
  } else {
    out["perplexity"] = std::exp(loss_total / std::max(count, 1.0));
  }
  return out;
}

}  // namespace lorascope
