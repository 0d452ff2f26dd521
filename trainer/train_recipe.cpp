#include "trainer/train_recipe.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <stdexcept>

#include "data/matrix_json.h"
#include "models/hf_checkpoint.h"
#include "models/peft_adapter.h"
#include "models/safetensors.h"
#include "optim/muon.h"
#include "optim/param_groups.h"
#include "optim/state_io.h"
#include "trainer/adapter_monitor.h"
#include "trainer/checkpoint.h"
#include "trainer/memory_budget.h"
#include "trainer/rng_state.h"
#include "trainer/run_directory.h"
#include "trainer/tensorboard_sink.h"
#include "trainer/train_hooks.h"
#include "trainer/train_session.h"

namespace lorascope {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

class NullSink : public MetricsSink {
 public:
  void write(const json&) override {}
};

// metrics.jsonl and, with logging.tensorboard, TensorBoard's event file: the same records.
class TeeSink : public MetricsSink {
 public:
  TeeSink(MetricsSink& first, MetricsSink* second) : first_(first), second_(second) {}
  void write(const json& record) override {
    first_.write(record);
    if (second_) second_->write(record);
  }

 private:
  MetricsSink& first_;
  MetricsSink* second_;
};

// Setup, with the data-parallel wiring; bad input throws ConfigError and leaves no run directory.
std::unique_ptr<Session> open_session(const RunSpec& run, const std::string& run_dir, const DataParallel* dp) {
  auto s = std::make_unique<Session>();
  s->cfg = TrainConfig::from_json(run.config);
  s->comm = dp ? dp->comm : nullptr;
  // Dropout draws from the global generators: seeded per run, so a run's config.json alone
  // reproduces it (also when it ran second in a compare).
  seed_generators(static_cast<uint64_t>(s->cfg.seed));
  const bool existed = fs::exists(run_dir);
  const bool writer = !s->comm || s->comm->rank() == 0;
  try {
    if (writer) fs::create_directories(run_dir);
    setup(*s, run_dir);
  } catch (const std::runtime_error& e) {
    if (!existed && writer) fs::remove_all(run_dir);  // bad input leaves nothing behind
    if (dynamic_cast<const ConfigError*>(&e)) throw;
    throw ConfigError(e.what());
  }
  if (s->comm) {
    s->overlap = dp->overlap;
    s->reducer = std::make_unique<GradReducer>(s->roles.trainable(), *s->comm, dp->bucket_bytes, dp->overlap);
    if (auto* g = dynamic_cast<GroupedOptimizer*>(s->optimizer.get()); g && dp->shard_muon) {
      Communicator* comm = s->comm;
      for (const auto& group : g->groups()) {
        if (auto* muon = dynamic_cast<Muon*>(group.optimizer.get())) {
          s->sharded_muon = true;
          muon->set_sharding({s->rank, s->world, [comm](const at::Tensor& t) { return comm->all_gather(t); }});
        }
      }
    }
  }
  return s;
}

// What a checkpoint must match to be resumed: the config (but for keys that do not change the
// trajectory) and the frozen base.
json checkpoint_meta_of(const Session& s, const RunSpec& run) {
  return {{"config", run.config}, {"base_fingerprint", s.base_fingerprint}};
}

// The newest intact checkpoint's state, loaded into the session; a fresh state when none.
TrainState resume_state(Session& s, const RunSpec& run, const std::string& run_dir) {
  const auto& c = s.cfg;
  const bool writer = s.rank == 0;
  std::vector<std::string> rejected;
  const auto ckpt = latest_checkpoint(run_dir, &rejected);
  for (const auto& r : rejected) {
    std::fprintf(stderr, "%s: warning: skipping damaged checkpoint %s\n", c.name.c_str(), r.c_str());
  }
  if (!ckpt) {
    if (writer) {
      std::fprintf(stderr, "%s: no %scheckpoint to resume from; starting fresh\n", c.name.c_str(),
                   rejected.empty() ? "" : "intact ");
    }
    return {};
  }
  const auto saved = checkpoint_meta(*ckpt);
  json now = run.config, then = saved.value("config", json());
  for (auto* j : {&now, &then}) {
    if (!j->contains("train")) continue;
    (*j)["train"].erase("halt_at_step");      // a test-only key
    (*j)["train"].erase("keep_checkpoints");  // retention does not change the trajectory
    j->erase("monitor");  // nor what is observed and where it is logged
    j->erase("logging");
  }
  if (!then.is_null() && then != now) {
    throw ConfigError(*ckpt + ": the checkpoint was written with another config; resume "
                      "with the run's own config.json or start a new run");
  }
  if (saved.contains("base_fingerprint") && !saved["base_fingerprint"].is_null()) {
    const std::string diff = fingerprint_mismatch(saved["base_fingerprint"], s.base_fingerprint);
    if (!diff.empty()) {
      throw ConfigError(*ckpt + ": written on another base model than " + c.base + " (" + diff + ")");
    }
  } else if (!s.base_fingerprint.is_null() && writer) {
    std::fprintf(stderr, "%s: warning: %s has no base fingerprint (an older checkpoint); the base is not checked\n",
                 c.name.c_str(), ckpt->c_str());
  }
  std::string rng_note;
  const TrainState state = load_checkpoint(*ckpt, *s.model, s.trained, *s.optimizer, &rng_note);
  if (!rng_note.empty()) std::fprintf(stderr, "%s: warning: %s\n", c.name.c_str(), rng_note.c_str());
  if (writer) {
    truncate_jsonl_after(run_dir + "/metrics.jsonl", state.step);
    std::fprintf(stderr, "%s: resuming from %s (step %lld)\n", c.name.c_str(), ckpt->c_str(),
                 static_cast<long long>(state.step));
  }
  return state;
}

// The next grad_accum micro-batches, moving to the next epoch when this one has fewer left (they
// take no step); empty when the epochs are done. setup() checked that an epoch holds a step.
class MicroBatches {
 public:
  explicit MicroBatches(const Session& s) : s_(s) {}
  std::vector<Batch> next(TrainState& st) {
    const auto& c = s_.cfg;
    for (int epochs_tried = 0; epochs_tried < 2; ++epochs_tried) {
      if (c.max_steps == 0 && st.epoch >= c.epochs) return {};
      if (epoch_ != st.epoch) batches_ = epoch_batches(s_, s_.train, epoch_ = st.epoch, true);
      if (st.batch + c.grad_accum <= static_cast<int64_t>(batches_.size())) {
        std::vector<Batch> out(batches_.begin() + st.batch, batches_.begin() + st.batch + c.grad_accum);
        st.batch += c.grad_accum;
        return out;
      }
      ++st.epoch;
      st.batch = 0;
    }
    throw std::logic_error("train: an epoch without a full step (train.grad_accum unchecked?)");
  }

 private:
  const Session& s_;
  int64_t epoch_ = -1;
  std::vector<Batch> batches_;
};

// The hooks of a run, in order (trainer/train_hooks.h); rank > 0 of a data-parallel run writes
// nothing and evaluates nothing.
Hooks standard_hooks(const Session& s, const RunSpec& run, const std::string& run_dir) {
  Hooks h;
  h.push_back(divergence_policy());
  h.push_back(fault_injection());
  if (s.rank != 0) return h;
  h.push_back(evaluator());
  h.push_back(adapter_monitor());
  h.push_back(metrics_logger());
  h.push_back(checkpointer(run_dir, checkpoint_meta_of(s, run)));
  h.push_back(progress_line());
  return h;
}

std::string routing_summary(const Session& s) {
  std::string out;
  for (const auto& g : s.groups) {
    out += (out.empty() ? "" : ", ") + g.optimizer + " on " + g.name + " (" + std::to_string(g.params.size()) +
           " tensors)";
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

// After a completed run: final evaluation, the PEFT adapter or the pretrained base.
void finish_run(Session& s, const std::string& run_dir, json& summary) {
  const auto& c = s.cfg;
  summary["validation"] = evaluate(s, s.validation);
  summary["test"] = evaluate(s, s.test);
  if (s.classification) summary["majority_baseline"] = majority_baseline(s.test);
  if (!s.adapters().empty()) {
    double mean = 0;
    for (const auto& a : s.adapters()) mean += adapter_stats(a).erank;
    summary["mean_erank"] = mean / static_cast<double>(s.adapters().size());
    summary["lora_r"] = c.lora.r;
  }
  if (c.mode == "finetune" && c.export_peft && !s.adapters().empty()) {
    // An init that changed the base exports at rank 2r for the unmodified base (peft_adapter.h).
    save_peft_adapter(*s.model, s.roles, s.lora, run_dir + "/adapter", c.base, &s.initial_adapters);
    summary["peft_adapter"] = run_dir + "/adapter";
    if (lora_init_changes_base(s.lora.init)) summary["peft_adapter_rank"] = 2 * s.lora.r;
    if (s.classification && s.model->config().pooling != "pooler") {
      std::fprintf(stderr, "%s: note: the PEFT export's head reads %s pooling, not transformers' pooler "
                   "(see %s/adapter/README.md)\n", c.name.c_str(), s.model->config().pooling.c_str(), run_dir.c_str());
    }
  }
  if (c.mode == "pretrain") {
    save_tensor_dict(module_state(*s.model), run_dir + "/model.pt");
    write_json_atomic(run_dir + "/model_config.json", s.model->config().to_json());
  }
}

}  // namespace

void validate_train_run(const RunSpec& run) {
  auto cfg = TrainConfig::from_json(run.config);
  const auto data = load_text_dataset(cfg.data_kind, cfg.data_path, cfg.load);
  // Padded batches (classification, SFT) are ceil(examples / batch_size) per epoch: a step must
  // fit in one (setup checks packed LM batches, whose count needs the tokenizer).
  if (is_classification(cfg) || (cfg.mode == "finetune" && cfg.data_kind == "alpaca")) {
    const auto n = static_cast<int64_t>(
        split_dataset(data, cfg.validation_fraction, cfg.test_fraction, static_cast<uint64_t>(cfg.seed)).train.examples.size());
    check_grad_accum(cfg, (n + cfg.batch_size - 1) / cfg.batch_size, n);
  }
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

TrainOutcome train(Session& s, const TrainState& from, MetricsSink& metrics, Hooks& hooks) {
  TrainLoop l(s, from, metrics);
  l.seconds_before = from.seconds;
  l.last.loss = from.step > 0 ? from.last_loss : NAN;  // a resumed run that was already complete
  l.s.model->train();
  MicroBatches data(s);
  double comm_s = 0, optim_s = 0;
  for (auto& h : hooks) h->on_start(l);
  while (!l.stop && l.state.step < s.total_steps) {  // bounded: the divergence policy caps skips
    const auto micro = data.next(l.state);
    if (micro.empty()) break;  // the epochs are done
    l.last = train_step(s, micro, l.state.step, [&] { for (auto& h : hooks) h->after_backward(l); });
    l.stepped = l.last.nonfinite.empty();
    l.state.tokens += l.last.tokens;
    if (l.stepped) ++l.state.step;
    comm_s += l.last.comm_seconds, optim_s += l.last.optimizer_seconds;
    for (auto& h : hooks) h->after_step(l);
  }
  for (auto& h : hooks) h->on_end(l);
  if (l.status == "halted") return {l.status, nullptr};  // as if killed: no summary
  json summary = {{"name", s.cfg.name}, {"mode", s.cfg.mode}, {"optimizer", routing_summary(s)},
                  {"optimizer_groups", describe_routing(s.cfg.optim, s.groups)},
                  {"trainable_parameters", s.roles.trainable_numel()},
                  {"adapters", static_cast<int64_t>(s.adapters().size())}, {"status", l.status},
                  {"steps", l.state.step}, {"skipped_steps", l.state.skipped_steps},
                  {"skipped_records", s.skipped_records},
                  {"final_train_loss", std::isfinite(l.last.loss) ? json(l.last.loss) : json(nullptr)},
                  {"wall_seconds", l.seconds()},
                  {"tokens_per_second", l.seconds() > 0 ? l.state.tokens / l.seconds() : 0.0}};
  const double steps = static_cast<double>(std::max<int64_t>(1, l.state.step - from.step));
  summary["optimizer_s_per_step"] = optim_s / steps;
  if (s.comm) {
    summary["distributed"] = {{"world_size", s.world}, {"backend", s.comm->backend()},
                              {"shard_muon", s.sharded_muon}, {"overlap", s.overlap},
                              {"buckets", s.reducer->bucket_count()}, {"allreduce_wait_s_per_step", comm_s / steps}};
  }
  for (const auto& [k, v] : l.summary.items()) summary[k] = v;
  return {l.status, summary};
}

TrainOutcome run_train(const RunSpec& run, const std::string& run_dir, bool resume, const DataParallel* dp) {
  auto s = open_session(run, run_dir, dp);
  const TrainState from = resume ? resume_state(*s, run, run_dir) : TrainState{};
  Hooks hooks = standard_hooks(*s, run, run_dir);
  if (s->rank != 0) {  // only rank 0 writes files
    NullSink none;
    return train(*s, from, none, hooks);
  }
  return run_in_directory(run, run_dir, [&](MetricsSink& jsonl) {
    std::optional<TensorBoardSink> tensorboard;  // a resumed run writes a new event file
    if (s->cfg.tensorboard) tensorboard.emplace(run_dir, unix_seconds() - from.seconds);  // wall_s's origin
    TeeSink metrics(jsonl, tensorboard ? &*tensorboard : nullptr);
    auto out = train(*s, from, metrics, hooks);
    if (out.status == "completed") finish_run(*s, run_dir, out.summary);
    return out;
  }, /*append_metrics=*/from.step > 0);
}

}  // namespace lorascope
