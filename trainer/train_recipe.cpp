#include "trainer/train_recipe.h"

#include <torch/nn/module.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>

#include <ATen/CPUGeneratorImpl.h>

#include "data/batching.h"
#include "data/matrix_json.h"
#include "models/hf_checkpoint.h"
#include "models/peft_adapter.h"
#include "models/safetensors.h"
#include "models/sequence_model.h"
#include "optim/state_io.h"
#include "trainer/adapter_monitor.h"
#include "trainer/autocast_guard.h"
#include "trainer/checkpoint.h"
#include "trainer/device.h"
#include "trainer/grad_reducer.h"
#include "trainer/fault_injection.h"
#include "trainer/memory_budget.h"
#include "trainer/metrics_writer.h"
#include "trainer/optimizer_factory.h"
#include "trainer/progress.h"
#include "trainer/train_schema.h"

namespace lorascope {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool is_classification(const TrainConfig& cfg) {
  return cfg.mode == "finetune" &&
         (cfg.data_kind == "spam_assassin" || cfg.data_kind == "brown" || cfg.data_kind == "glue_tsv");
}

// Everything the loop needs, built in the order the header describes.
struct Session {
  TrainConfig cfg;
  at::Device device = at::kCPU;
  DatasetSplits splits;
  std::shared_ptr<Tokenizer> tokenizer;
  std::vector<TokenizedExample> train, validation, test;
  std::shared_ptr<SequenceModel> model;
  std::vector<AdapterRef> adapters;
  std::unique_ptr<Optimizer> optimizer;
  LrSchedule schedule;
  int64_t batches_per_epoch = 0, total_steps = 0;
  int64_t skipped_records = 0;  // malformed dataset records left out (data.skip_malformed)
  bool classification = false;
  Communicator* comm = nullptr;  // data parallel when set
  LoraConfig lora;  // as attached or imported (what a PEFT export records)
};

// tokenizer.path, else the checkpoint's tokenizer.json, else its tokenizer.model.
std::string hf_tokenizer_path(const TrainConfig& c) {
  if (!c.tokenizer_path.empty()) return c.tokenizer_path;
  for (const char* name : {"/tokenizer.json", "/tokenizer.model"}) {
    if (fs::exists(c.base + name)) return c.base + name;
  }
  throw ConfigError(c.base + ": no tokenizer.json or tokenizer.model (set tokenizer.path)");
}

std::vector<Batch> epoch_batches(const Session& s, const std::vector<TokenizedExample>& data,
                                 int64_t epoch, bool shuffle) {
  const auto& c = s.cfg;
  if (s.classification) {
    return classification_batches(data, c.batch_size, s.tokenizer->pad_id(), c.seed, epoch, shuffle);
  }
  if (c.data_kind == "alpaca") return sft_batches(data, c.batch_size, s.tokenizer->pad_id(), c.seed, epoch, shuffle);
  return packed_lm_batches(data, c.batch_size, c.max_len, c.seed, epoch, shuffle);
}

void setup(Session& s, const std::string& run_dir) {
  auto& c = s.cfg;
  s.device = pick_device(c.device);
  if (s.device.is_cuda() && s.comm) s.device = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(s.comm->local_rank()));
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
  auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(c.seed));
  // Opened (headers validated) before the model is allocated, so a bad checkpoint fails fast.
  std::optional<SafetensorsCheckpoint> hf_weights;
  if (hf_base) hf_weights.emplace(c.base);
  s.model = make_model(model_cfg, s.classification ? "classification" : "causal_lm",
                       s.classification ? static_cast<int64_t>(data.label_names.size()) : 0, gen);
  std::vector<at::Tensor> trainable;
  if (c.mode == "finetune") {
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
    if (!c.adapter_path.empty()) {
      const auto loaded = load_peft_adapter(*s.model, c.adapter_path);
      auto saved = loaded.modules_to_save;
      if (s.classification && c.train_head) saved.push_back(s.model->head_module());
      std::vector<std::string> prefixes;
      for (const auto& m : saved) prefixes.push_back(m + ".");
      freeze_for_lora(*s.model, prefixes);
      lora.r = loaded.r;
      lora.alpha = loaded.alpha;
      lora.rslora = loaded.rslora;
      lora.targets = loaded.targets;
      lora.target_regex = loaded.target_regex;
      lora.init = "peft";
    } else {
      s.adapters = attach_lora(*s.model, lora, gen);
    }
    s.lora = lora;
  }
  uint64_t model_bytes = 0;
  for (const auto& p : s.model->parameters()) model_bytes += static_cast<uint64_t>(p.numel() * p.element_size());
  with_memory_context([&] { s.model->to(s.device); }, model_bytes, "the model's weights", s.device.str());
  s.adapters = find_adapters(*s.model);  // re-read: .to() may have replaced the tensors
  for (const auto& p : s.model->parameters()) {
    if (p.requires_grad()) trainable.push_back(p);
  }
  // 4. optimizer: Muon on adapter matrices (finetune) or hidden matrices (pretrain)
  const std::string name = c.optim.at("name");
  if (name == "muon" || name == "specgd" || name == "hybrid") {
    ParamSplit split;
    if (c.mode == "finetune") {
      for (const auto& a : s.adapters) split.muon.push_back(a.A), split.muon.push_back(a.B);
      for (const auto& p : s.model->named_parameters()) {
        if (p.value().requires_grad() && p.key().find(".lora_") == std::string::npos) split.adamw.push_back(p.value());
      }
    } else {
      for (const auto& p : s.model->named_parameters()) {
        const bool hidden_matrix = p.value().dim() == 2 && p.key().find("embed") == std::string::npos &&
                                   p.key().find("lm_head") == std::string::npos;
        (hidden_matrix ? split.muon : split.adamw).push_back(p.value());
      }
    }
    s.optimizer = make_hybrid(c.optim, std::move(split));
  } else {
    s.optimizer = make_optimizer(c.optim, trainable);
  }
  // 5. schedule over the whole run
  s.batches_per_epoch = static_cast<int64_t>(epoch_batches(s, s.train, 0, false).size());
  if (s.batches_per_epoch == 0) throw ConfigError(c.data_kind + ": no training batches (dataset too small?)");
  // Steps per epoch round down: the micro-batches left over at an epoch's end are dropped.
  s.total_steps = c.max_steps > 0 ? c.max_steps : c.epochs * (s.batches_per_epoch / c.grad_accum);
  s.total_steps = std::max<int64_t>(1, s.total_steps);
  s.schedule = make_schedule(c.schedule, s.total_steps);
}

// Host batch to the device without blocking the host: a pinned staging copy, then an
// asynchronous transfer queued ahead of the step's kernels.
at::Tensor to_device(const at::Tensor& t, const at::Device& d) {
  if (!d.is_cuda()) return t.to(d);
  return t.pin_memory().to(d, /*non_blocking=*/true);
}

// The batch's mean loss, or, with a denominator (a data-parallel shard), the sum over its rows
// divided by the global batch's count.
at::Tensor loss_of(Session& s, const Batch& b, at::Tensor* logits_out = nullptr, double denominator = 0) {
  auto ids = to_device(b.input_ids, s.device), labels = to_device(b.labels, s.device);
  // A batch without padding (checked here, on the host copy) goes without a mask: the model
  // then takes causal attention's fused kernel and needs no device-to-host check for padding.
  const bool padded = b.attention_mask.defined() && b.attention_mask.eq(0).any().item<bool>();
  const auto mask = padded ? to_device(b.attention_mask, s.device) : at::Tensor();
  const auto types = b.token_type_ids.defined() ? to_device(b.token_type_ids, s.device) : at::Tensor();
  at::Tensor logits;
  {
    AutocastGuard autocast(s.device.type(), s.cfg.bf16);  // forward only, as torch.autocast
    logits = s.model->forward(ids, mask, types);
  }
  if (logits_out) *logits_out = logits;
  if (s.classification) {
    if (denominator > 0) {
      return at::cross_entropy_loss(logits.to(at::kFloat), labels, {}, at::Reduction::Sum) / denominator;
    }
    return at::cross_entropy_loss(logits.to(at::kFloat), labels);
  }
  const int64_t V = logits.size(-1);
  // Mean over the unmasked targets, computed on the device without a host round trip. A batch
  // whose every label is masked (an SFT prompt longer than max_len) has loss 0, not the NaN of a
  // mean over zero targets, which would read as divergence.
  auto sum = at::cross_entropy_loss(logits.reshape({-1, V}).to(at::kFloat), labels.reshape({-1}),
                                    {}, at::Reduction::Sum, -100);
  if (denominator > 0) return sum / denominator;
  return sum / labels.ne(-100).sum().clamp_min(1).to(sum.scalar_type());
}

json evaluate(Session& s, const std::vector<TokenizedExample>& data, int64_t max_batches) {
  if (data.empty()) return json::object();  // no held-out split configured
  at::NoGradGuard no_grad;
  s.model->eval();
  double loss_sum = 0, weight = 0, correct = 0, count = 0;
  auto batches = epoch_batches(s, data, 0, false);
  int64_t n = 0;
  for (const auto& b : batches) {
    if (max_batches > 0 && n++ >= max_batches) break;
    at::Tensor logits;
    const double loss = loss_of(s, b, &logits).item<double>();
    const double w = s.classification ? static_cast<double>(b.labels.size(0))
                                      : b.labels.ne(-100).sum().item<double>();
    if (w == 0) continue;
    loss_sum += loss * w;
    weight += w;
    if (s.classification) {
      correct += logits.argmax(-1).cpu().eq(b.labels).sum().item<double>();
      count += static_cast<double>(b.labels.size(0));
    }
  }
  s.model->train();
  json out = {{"loss", weight > 0 ? loss_sum / weight : NAN}};
  if (s.classification) {
    out["accuracy"] = count > 0 ? correct / count : NAN;
  } else {
    out["perplexity"] = std::exp(loss_sum / std::max(weight, 1.0));
  }
  return out;
}

double majority_baseline(const std::vector<TokenizedExample>& data) {
  std::map<int64_t, int64_t> counts;
  for (const auto& e : data) counts[e.label]++;
  int64_t best = 0;
  for (const auto& [label, n] : counts) best = std::max(best, n);
  return data.empty() ? NAN : static_cast<double>(best) / static_cast<double>(data.size());
}

// The step's loss and global gradient norm in one device-to-host transfer; names the first
// parameter with a non-finite gradient.
std::pair<double, double> loss_and_grad_norm(torch::nn::Module& model, const at::Tensor& loss,
                                             std::string* bad) {
  std::vector<std::string> names;
  std::vector<at::Tensor> values = {loss.detach().reshape({1}).to(at::kDouble)};
  for (const auto& p : model.named_parameters()) {
    const auto& g = p.value().grad();
    if (!g.defined()) continue;
    names.push_back(p.key());
    values.push_back(g.norm().reshape({1}).to(at::kDouble));
  }
  const auto host = at::cat(values).cpu();
  const double* v = host.data_ptr<double>();
  double sq = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    const double n = v[i + 1];
    if (!std::isfinite(n) && bad && bad->empty()) *bad = names[i];
    sq += n * n;
  }
  return {v[0], std::sqrt(sq)};
}

// The loss denominator of a global micro-batch: its examples (classification) or its targets.
double global_denominator(const Session& s, const Batch& b) {
  if (s.classification) return static_cast<double>(b.labels.size(0));
  return std::max<double>(1.0, b.labels.ne(-100).sum().item<double>());
}

// Muon inside the optimizer (alone or in the hybrid), to shard it.
Muon* find_muon(Optimizer& optimizer) {
  if (auto* h = dynamic_cast<Hybrid*>(&optimizer)) return &h->muon();
  return dynamic_cast<Muon*>(&optimizer);
}

}  // namespace

void validate_train_run(const RunSpec& run) {
  auto cfg = TrainConfig::from_json(run.config);
  (void)load_text_dataset(cfg.data_kind, cfg.data_path, cfg.load);
  if (cfg.mode != "finetune") return;
  check_fetched_model(cfg.base);  // a fetched model that is missing or damaged names its fetch command
  if (!fs::is_directory(cfg.base)) {
    throw ConfigError(cfg.base + ": base: not a directory (expected `lorascope pretrain` output or a Hugging "
                      "Face checkpoint directory)");
  }
  if (is_hf_checkpoint_dir(cfg.base)) {
    read_hf_config(cfg.base);  // architecture and keys, before anything is written
    (void)hf_tokenizer_path(cfg);
    // The checkpoint's size is known from its headers: refuse one the host cannot hold (as
    // float32, the model's training precision) before allocating it.
    const SafetensorsCheckpoint weights(cfg.base);
    uint64_t numel = 0;
    for (const auto& name : weights.names()) {
      uint64_t n = 1;
      for (int64_t d : weights.shape(name)) n *= static_cast<uint64_t>(d);
      numel += n;
    }
    try {
      require_memory(numel * sizeof(float), host_available_bytes(),
                     "model " + cfg.base + " (" + std::to_string(numel) + " parameters as float32)", "this machine");
    } catch (const OutOfMemoryError& e) {
      throw ConfigError(e.what());
    }
  } else {
    for (const char* f : {"/model.pt", "/model_config.json"}) {
      if (!fs::exists(cfg.base + f)) {
        throw ConfigError(cfg.base + f + ": not found; `lorascope pretrain` writes it (or give a Hugging Face "
                          "directory with config.json and model.safetensors)");
      }
    }
  }
  if (!cfg.tokenizer_path.empty() && !fs::exists(cfg.tokenizer_path)) {
    throw ConfigError(cfg.tokenizer_path + ": tokenizer.path: file not found");
  }
  if (!cfg.adapter_path.empty() && !fs::exists(cfg.adapter_path + "/adapter_config.json")) {
    throw ConfigError(cfg.adapter_path + "/adapter_config.json: lora.adapter: not found (expected a PEFT adapter "
                      "directory)");
  }
}

TrainOutcome run_train(const RunSpec& run, const std::string& run_dir, bool resume,
                       const DataParallel* dp) {
  Session s;
  s.cfg = TrainConfig::from_json(run.config);
  s.comm = dp ? dp->comm : nullptr;
  const int rank = s.comm ? s.comm->rank() : 0, world = s.comm ? s.comm->world_size() : 1;
  const bool writer = rank == 0;  // only rank 0 writes files
  // Dropout draws from the global CPU generator: seed it per run, so a run's config.json alone
  // reproduces it (also when it ran second in a compare).
  {
    at::Generator global = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(global.mutex());
    global.set_current_seed(static_cast<uint64_t>(s.cfg.seed));
  }
  const bool existed = fs::exists(run_dir);
  try {
    if (writer) fs::create_directories(run_dir);
    setup(s, run_dir);
  } catch (const std::runtime_error& e) {
    if (!existed && writer) fs::remove_all(run_dir);  // bad input leaves nothing behind
    if (dynamic_cast<const ConfigError*>(&e)) throw;
    throw ConfigError(e.what());
  }
  const auto& c = s.cfg;
  if (writer) write_json_atomic(run_dir + "/config.json", run.config);
  std::unique_ptr<GradReducer> reducer;
  Muon* sharded_muon = nullptr;
  if (s.comm) {
    std::vector<at::Tensor> trainable;
    for (const auto& p : s.model->parameters()) {
      if (p.requires_grad()) trainable.push_back(p);
    }
    reducer = std::make_unique<GradReducer>(trainable, *s.comm, dp->bucket_bytes, dp->overlap);
    if (dp->shard_muon && (sharded_muon = find_muon(*s.optimizer))) {
      Communicator* comm = s.comm;
      sharded_muon->set_sharding({rank, world, [comm](const at::Tensor& t) { return comm->all_gather(t); }});
    }
  }
  double comm_seconds = 0, optimizer_seconds = 0;  // data-parallel overheads, summed over steps

  TrainState state;
  const std::string metrics_path = run_dir + "/metrics.jsonl";
  if (resume) {
    std::vector<std::string> rejected;
    const auto ckpt = latest_checkpoint(run_dir, &rejected);
    for (const auto& r : rejected) {
      std::fprintf(stderr, "%s: warning: skipping damaged checkpoint %s\n", c.name.c_str(), r.c_str());
    }
    if (ckpt) {
      const auto saved = read_json_file(*ckpt + "/state.json");
      json now = run.config, then = saved.value("config", json());
      for (auto* j : {&now, &then}) {
        if (!j->contains("train")) continue;
        (*j)["train"].erase("halt_at_step");      // a test-only key
        (*j)["train"].erase("keep_checkpoints");  // retention does not change the trajectory
      }
      if (!then.is_null() && then != now) {
        throw ConfigError(*ckpt + ": the checkpoint was written with another config; resume "
                          "with the run's own config.json or start a new run");
      }
      state = load_checkpoint(*ckpt, *s.model, *s.optimizer);
      if (writer) truncate_jsonl_after(metrics_path, state.step);
      if (writer) std::fprintf(stderr, "%s: resuming from %s (step %lld)\n", c.name.c_str(), ckpt->c_str(),
                   static_cast<long long>(state.step));
    } else if (writer) {
      std::fprintf(stderr, "%s: no %scheckpoint to resume from; starting fresh\n", c.name.c_str(),
                   rejected.empty() ? "" : "intact ");
    }
  }
  std::unique_ptr<JsonlWriter> metrics;
  if (writer) metrics = std::make_unique<JsonlWriter>(metrics_path, /*append=*/resume && state.step > 0);
  s.adapters = find_adapters(*s.model);
  s.model->train();

  const auto start = std::chrono::steady_clock::now();
  const double seconds_before = state.seconds;  // wall time of the run before a resume
  auto seconds = [&] {
    return seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const int64_t first_step = state.step;  // the overhead timings cover this process's steps
  std::optional<Progress> progress;
  if (writer) progress.emplace(c.name, s.total_steps, state.step);
  json summary = {{"name", c.name}, {"mode", c.mode}, {"optimizer", s.optimizer->name()},
                  {"trainable_parameters", 0}, {"adapters", static_cast<int64_t>(s.adapters.size())}};
  int64_t n_trainable = 0;
  for (const auto& p : s.model->parameters()) n_trainable += p.requires_grad() ? p.numel() : 0;
  summary["trainable_parameters"] = n_trainable;
  std::string status = "completed";
  double window_tokens = 0, last_loss = state.step > 0 ? state.last_loss : NAN;
  auto window_start = std::chrono::steady_clock::now();

  auto log_step = [&](double loss, double gnorm) {
    if (!writer) return;  // the spectral monitor and evaluation run once, on rank 0
    const bool log_due = state.step % c.log_every == 0 || state.step == s.total_steps;
    const bool monitor_due = !s.adapters.empty() && (state.step % c.monitor_every == 0 || state.step == s.total_steps);
    const bool eval_due = c.eval_every > 0 && state.step % c.eval_every == 0 && state.step > 0;
    if (!log_due && !monitor_due && !eval_due) return;
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - window_start).count();
    json rec = {{"step", state.step}, {"epoch", state.epoch}, {"loss", loss}, {"lr", s.optimizer->lr()},
                {"grad_norm", gnorm}, {"tokens_per_s", dt > 0 ? window_tokens / dt : 0.0},
                {"tokens", state.tokens}, {"wall_s", seconds()}};
    if (state.skipped_steps > 0) rec["skipped_steps"] = state.skipped_steps;
    if (monitor_due) rec["adapters"] = adapter_spectra(s.adapters);
    if (eval_due) rec["eval"] = evaluate(s, s.validation, c.eval_batches);
    metrics->write(rec);
    window_tokens = 0;
    window_start = std::chrono::steady_clock::now();
  };
  if (state.step == 0 && !s.adapters.empty() && writer) {
    metrics->write({{"step", 0}, {"epoch", 0}, {"adapters", adapter_spectra(s.adapters)}, {"wall_s", 0.0}});
  }

  bool done = state.step >= s.total_steps;
  bool nan_injected = false;  // test-only: trainer/fault_injection.h
  for (; !done && state.epoch < std::max<int64_t>(c.epochs, c.max_steps > 0 ? INT64_MAX / 2 : 0); ++state.epoch) {
    const auto batches = epoch_batches(s, s.train, state.epoch, true);
    int64_t micro = 0;
    at::Tensor accum;  // the step's loss, summed over micro-batches on the device
    for (; state.batch < static_cast<int64_t>(batches.size()); ++state.batch) {
      const auto& b = batches[state.batch];
      if (!s.comm) {
        auto loss = loss_of(s, b) / static_cast<double>(c.grad_accum);
        loss.backward();
        accum = accum.defined() ? accum + loss.detach() : loss.detach();
      } else {
        // This rank's rows of the global micro-batch; a rank may get none of a short last batch.
        const auto [lo, hi] = shard_range(b.labels.size(0), rank, world);
        if (micro + 1 == c.grad_accum) reducer->arm();  // the step's gradients are final after this backward
        if (hi > lo) {
          auto loss = loss_of(s, slice_rows(b, lo, hi), nullptr, global_denominator(s, b)) /
                      static_cast<double>(c.grad_accum);
          loss.backward();
          accum = accum.defined() ? accum + loss.detach() : loss.detach();
        }
      }
      window_tokens += static_cast<double>(b.num_tokens);
      state.tokens += static_cast<double>(b.num_tokens);
      if (++micro < c.grad_accum) continue;
      micro = 0;
      if (s.comm) {
        const auto t0 = std::chrono::steady_clock::now();
        reducer->finish();
        // The global mean loss: the sum of the ranks' shares.
        accum = accum.defined() ? accum.reshape({1}).contiguous()
                                : at::zeros({1}, at::TensorOptions(at::kFloat).device(s.device));
        s.comm->all_reduce(accum);
        comm_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
      if (!nan_injected && fault_requested("nan_grad", state.step)) {
        nan_injected = true;
        for (auto& p : s.model->parameters()) {
          if (p.grad().defined()) {
            at::NoGradGuard no_grad;
            p.mutable_grad().fill_(NAN);
            break;
          }
        }
      }
      std::string bad;
      const auto [accum_loss, gnorm] = loss_and_grad_norm(*s.model, accum, &bad);
      accum = at::Tensor();
      if (!std::isfinite(accum_loss) || !bad.empty()) {
        const std::string what = !std::isfinite(accum_loss)
                                     ? "loss is " + std::string(std::isnan(accum_loss) ? "NaN" : "Inf")
                                     : "gradient of " + bad + " is not finite";
        if (c.nonfinite == "stop") {
          status = "diverged";
          summary["diverged_at_step"] = state.step;
          summary["message"] = what + " at step " + std::to_string(state.step);
          done = true;
          break;
        }
        std::fprintf(stderr, "%s: %s at step %lld; step skipped\n", c.name.c_str(), what.c_str(),
                     static_cast<long long>(state.step));
        ++state.skipped_steps;
        s.optimizer->zero_grad();
        continue;
      }
      if (c.clip_norm > 0 && gnorm > c.clip_norm) {
        at::NoGradGuard no_grad;
        for (auto& p : s.model->parameters()) {
          if (p.grad().defined()) p.mutable_grad().mul_(c.clip_norm / (gnorm + 1e-6));
        }
      }
      s.optimizer->set_lr_factor(s.schedule.factor(state.step));
      const auto step_start = std::chrono::steady_clock::now();
      s.optimizer->step();
      optimizer_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
      s.optimizer->zero_grad();
      ++state.step;
      last_loss = accum_loss;
      log_step(last_loss, gnorm);
      if (progress) progress->update(state.step, last_loss, state.tokens / std::max(seconds(), 1e-9));
      if (writer && c.checkpoint_every > 0 && state.step % c.checkpoint_every == 0) {
        TrainState at_boundary = state;
        ++at_boundary.batch;  // this batch is consumed
        at_boundary.seconds = seconds();
        at_boundary.last_loss = last_loss;
        save_checkpoint(run_dir, *s.model, *s.optimizer, at_boundary, run.config, c.keep_checkpoints);
      }
      if (c.halt_at_step > 0 && state.step == c.halt_at_step) {
        status = "halted";  // as if killed here: no final checkpoint, no summary
        done = true;
        break;
      }
      if (state.step >= s.total_steps) {
        done = true;
        ++state.batch;
        break;
      }
    }
    if (done) break;
    s.optimizer->zero_grad();  // leftover micro-batches (fewer than grad_accum) take no step
    state.batch = 0;
  }
  if (progress) progress->finish();
  if (status == "halted") return {status, summary};
  if (s.comm) {
    const double steps = static_cast<double>(std::max<int64_t>(1, state.step - first_step));
    summary["distributed"] = {{"world_size", world}, {"backend", s.comm->backend()},
                              {"shard_muon", sharded_muon != nullptr}, {"overlap", dp->overlap},
                              {"buckets", reducer->bucket_count()},
                              {"allreduce_wait_s_per_step", comm_seconds / steps}};
  }
  summary["optimizer_s_per_step"] =
      optimizer_seconds / static_cast<double>(std::max<int64_t>(1, state.step - first_step));
  if (!writer) {
    summary["status"] = status;
    summary["steps"] = state.step;
    return {status, summary};
  }
  const double elapsed = seconds();
  summary["status"] = status;
  summary["steps"] = state.step;
  summary["skipped_steps"] = state.skipped_steps;
  summary["skipped_records"] = s.skipped_records;
  summary["final_train_loss"] = std::isfinite(last_loss) ? json(last_loss) : json(nullptr);
  summary["wall_seconds"] = elapsed;
  summary["tokens_per_second"] = elapsed > 0 ? state.tokens / elapsed : 0.0;
  if (status == "completed") {
    state.seconds = elapsed;
    state.last_loss = last_loss;
    save_checkpoint(run_dir, *s.model, *s.optimizer, state, run.config, c.keep_checkpoints);
    summary["validation"] = evaluate(s, s.validation, 0);
    summary["test"] = evaluate(s, s.test, 0);
    if (s.classification) summary["majority_baseline"] = majority_baseline(s.test);
    if (!s.adapters.empty()) {
      double mean = 0;
      for (const auto& a : s.adapters) mean += adapter_stats(a).erank;
      summary["mean_erank"] = mean / static_cast<double>(s.adapters.size());
      summary["lora_r"] = c.lora.r;
    }
    if (c.mode == "finetune" && c.export_peft && !s.adapters.empty()) {
      if (s.lora.init == "spectral") {
        std::fprintf(stderr, "%s: no PEFT export for a spectral-init adapter (its base weights were changed)\n",
                     c.name.c_str());
      } else {
        save_peft_adapter(*s.model, s.lora, run_dir + "/adapter", c.base);
        summary["peft_adapter"] = run_dir + "/adapter";
        if (s.classification && s.model->config().pooling != "pooler") {
          std::fprintf(stderr, "%s: note: the PEFT export's head reads %s pooling, not transformers' pooler "
                       "(see %s/adapter/README.md)\n", c.name.c_str(), s.model->config().pooling.c_str(), run_dir.c_str());
        }
      }
    }
    if (c.mode == "pretrain") {
      save_tensor_dict(module_state(*s.model), run_dir + "/model.pt");
      auto mc = s.model->config().to_json();
      write_json_atomic(run_dir + "/model_config.json", mc);
    }
  }
  write_json_atomic(run_dir + "/summary.json", summary);
  return {status, summary};
}

}  // namespace lorascope
