#include "trainer/train_schema.h"

#include "trainer/lr_sweep.h"
#include "trainer/optimizer_factory.h"

namespace lorascope {

using nlohmann::json;

namespace {

void positive(ConfigSchema& s, const std::string& key, int64_t def, const std::string& doc) {
  s.integer(key, def, doc).min = 1;
}
void non_negative(ConfigSchema& s, const std::string& key, int64_t def, const std::string& doc) {
  s.integer(key, def, doc).min = 0;
}
void fraction(ConfigSchema& s, const std::string& key, double def, const std::string& doc) {
  auto& k = s.number(key, def, doc);
  k.min = 0;
  k.max = 0.9;
}

ConfigSchema build() {
  ConfigSchema s;
  s.string("name", "run", {}, "run name (a directory under --out)");
  s.string("mode", "finetune", {"pretrain", "finetune"}, "full training of a base model, or LoRA");
  non_negative(s, "seed", 0, "seeds initialization, data split and data order");
  s.string("device", "auto", {"cpu", "cuda", "auto"}, "auto = cuda when LibTorch has it");
  s.boolean("bf16", false, "bf16 autocast of the forward pass (CUDA, or CPU where supported)");
  s.string("model.arch", "llama", {"llama", "roberta"}, "pretrain: architecture");
  positive(s, "model.hidden_size", 128, "pretrain: width");
  positive(s, "model.num_layers", 4, "pretrain: layers");
  positive(s, "model.num_heads", 4, "pretrain: attention heads");
  positive(s, "model.num_kv_heads", 4, "pretrain: key/value heads (llama)");
  positive(s, "model.intermediate_size", 344, "pretrain: MLP width");
  positive(s, "model.max_positions", 256, "pretrain: longest sequence");
  s.string("base", nullptr, {},
           "finetune: base model directory: written by `lorascope pretrain`, or a Hugging Face "
           "checkpoint (config.json + model.safetensors[.index.json] + tokenizer.json or "
           "tokenizer.model); --model DIR sets it");
  s.string("tokenizer.path", nullptr, {},
           "sentencepiece tokenizer.model or byte-level BPE tokenizer.json; default: the base's; "
           "pretrain trains one when absent");
  auto& voc = s.integer("tokenizer.vocab_size", 4096, "pretrain: pieces of the trained tokenizer");
  voc.min = 64;
  s.string("data.kind", "spam_assassin",
           {"brown", "moby_dick", "text", "spam_assassin", "glue_tsv", "alpaca"},
           "dataset (data/text_datasets.h); classification for spam_assassin, brown (genres) "
           "and glue_tsv in finetune mode");
  s.string("data.path", "", {}, "dataset file or directory; empty = the fetched copy");
  positive(s, "data.max_len", 128, "tokens per example (truncated)");
  positive(s, "data.chunk_words", 200, "brown: words per example");
  positive(s, "data.max_chars", 2000, "spam_assassin: characters kept per mail");
  non_negative(s, "data.limit", 0, "use at most this many examples (0 = all)");
  s.boolean("data.skip_malformed", false, "skip (and count) malformed records instead of failing");
  fraction(s, "data.validation_fraction", 0.1, "held out for evaluation");
  fraction(s, "data.test_fraction", 0.1, "held out for the final test");
  positive(s, "lora.r", 8, "adapter rank");
  auto& alpha = s.number("lora.alpha", 16.0, "scaling = alpha / r (alpha / sqrt(r) with rslora)");
  alpha.min = 0;
  alpha.min_exclusive = true;
  s.boolean("lora.rslora", false, "rank-stabilised scaling");
  fraction(s, "lora.dropout", 0.0, "dropout on the adapter input");
  s.string_list("lora.targets", json::array({"q_proj", "v_proj"}),
                "linear layers to adapt: names or suffixes (q_proj,v_proj / query,value)");
  s.string("lora.target_regex", "", {}, "alternatively a full-match regex of module paths");
  s.string_list("lora.exclude", json::array(), "module paths never adapted");
  s.string("lora.init", "peft", {"peft", "gaussian", "spectral", "olora", "lora_ga", "lora_ga_peft", "lora_one"},
           "adapter initialization: peft (A Kaiming-uniform, B = 0), gaussian, spectral (PiSSA), olora (QR of W), "
           "lora_ga (LoRA-GA's ArB2r + stable scaling), lora_ga_peft (PEFT 0.21's LoRA-GA), lora_one (one "
           "projected gradient step); models/lora_init.h");
  auto& gamma = s.number("lora.init_gamma", nullptr,
                         "lora_ga / lora_ga_peft: stable gamma; lora_one: gamma (default 16, the authors')");
  gamma.min = 0;
  gamma.min_exclusive = true;
  auto& init_batches = s.integer("lora.init_batches", nullptr,
                                 "lora_ga / lora_ga_peft / lora_one: training micro-batches whose mean-loss "
                                 "gradient the init reads (default 8, at most an epoch's)");
  init_batches.min = 1;
  auto& scale = s.number("lora.init_scale", 1e-3, "gaussian: std of lora_A");
  scale.min = 0;
  scale.min_exclusive = true;
  s.string("lora.adapter", "", {},
            "start from this PEFT adapter directory (adapter_config.json + adapter_model.safetensors) "
            "instead of fresh adapters; its r, alpha and targets replace lora.*");
  s.boolean("lora.export_peft", true, "finetune: write RUN/adapter/ in PEFT's format at the end");
  s.string_list("lora.modules_to_save", json::array(),
                "modules trained in full (default: the classification head)");
  s.boolean("lora.train_head", true,
            "classification with empty modules_to_save: train the new head in full; false "
            "freezes it (LoRA on the head itself: lora.targets=score)");
  add_optimizer_keys(s);
  positive(s, "train.epochs", 1, "passes over the training split");
  non_negative(s, "train.max_steps", 0, "stop after this many optimizer steps (0 = epochs)");
  positive(s, "train.batch_size", 16, "examples (or packed rows) per micro-batch");
  positive(s, "train.grad_accum", 1,
           "micro-batches per optimizer step (at most an epoch's); the step's loss is the mean over all "
           "their targets");
  s.number("train.clip_norm", 1.0, "global gradient-norm clip (0 = off)").min = 0;
  non_negative(s, "train.eval_every", 0, "evaluate every N steps (0 = at the end only)");
  non_negative(s, "train.eval_batches", 0,
               "evaluation during training: a fixed, seeded sample of eval_batches x batch_size validation "
               "examples, stratified by label (0 = all)");
  positive(s, "train.log_every", 10, "metrics line every N steps");
  non_negative(s, "train.checkpoint_every", 0, "checkpoint every N steps (0 = at the end)");
  positive(s, "train.keep_checkpoints", 3,
           "newest checkpoints kept (--resume falls back to an older one if the newest is damaged)");
  non_negative(s, "train.halt_at_step", 0,
               "fault-injection tests: stop right after step N as if killed (0 = off)");
  positive(s, "monitor.every", 10, "adapter spectra every N steps");
  non_negative(s, "monitor.geometry_every", 0,
               "adapter geometry against the frozen base weight (alignment, intruder dimensions, drift; "
               "trainer/geometry_monitor.h) every N steps and at the last step (0 = off)");
  non_negative(s, "monitor.base_k", 0, "geometry: the base weight's top-k singular subspaces the alignment uses (0 = lora.r)");
  positive(s, "monitor.intruder_k", 10, "geometry: top singular vectors of W + delta W checked for intruders");
  auto& eps = s.number("monitor.intruder_epsilon", 0.5,
                       "geometry: an intruder's largest |cosine| with W's singular vectors is below this");
  eps.min = 0;
  eps.min_exclusive = true;
  eps.max = 1;
  s.string("monitor.base_svd_dtype", "float64", {"float64", "float32"},
           "geometry: the cached SVDs of the base weights; float32 keeps their singular vectors in "
           "float32, about half the memory, at ~1e-7 in the cosines (trainer/geometry_monitor.h)");
  s.boolean("logging.tensorboard", false, "also write TensorBoard event files next to metrics.jsonl");
  s.string("train.nonfinite", "stop", {"stop", "skip"},
           "NaN/Inf loss or gradient: stop the run, or skip the step and count it");
  add_lr_sweep_keys(s);
  return s;
}

}  // namespace

const ConfigSchema& train_schema() {
  static const ConfigSchema schema = build();
  return schema;
}

void check_train_config(const json& c, const std::string& where) {
  const auto& m = c.at("model");
  if (c.at("mode") == "pretrain") {
    if (m.at("hidden_size").get<int64_t>() % m.at("num_heads").get<int64_t>() != 0) {
      throw ConfigError(where + ": model.hidden_size: expected a multiple of model.num_heads");
    }
    if (m.at("num_heads").get<int64_t>() % m.at("num_kv_heads").get<int64_t>() != 0) {
      throw ConfigError(where + ": model.num_kv_heads: expected a divisor of model.num_heads");
    }
  } else if (!c.contains("base")) {
    throw ConfigError(where + ": base: expected the base model directory for mode finetune");
  }
  const auto& d = c.at("data");
  if (d.at("validation_fraction").get<double>() + d.at("test_fraction").get<double>() >= 0.9) {
    throw ConfigError(where + ": data.test_fraction: validation + test must leave >= 10% to train");
  }
  if (c.at("data").at("max_len").get<int64_t>() + 2 > m.at("max_positions").get<int64_t>() &&
      c.at("mode") == "pretrain") {
    throw ConfigError(where + ": data.max_len: expected <= model.max_positions - 2");
  }
  const auto& l = c.at("lora");
  for (const char* key : {"init_gamma", "init_batches"}) {
    if (l.contains(key) && !l.at(key).is_null() && !lora_init_needs_gradient(l.at("init"))) {
      throw ConfigError(where + ": lora." + key + ": applies to lora.init=lora_ga, lora_ga_peft or lora_one, not to "
                        "lora.init=" + l.at("init").get<std::string>());
    }
  }
  if (lora_init_needs_gradient(l.at("init")) && !l.at("adapter").get<std::string>().empty()) {
    throw ConfigError(where + ": lora.init: " + l.at("init").get<std::string>() +
                      " initialises fresh adapters; lora.adapter starts from saved ones (drop one of them)");
  }
  check_optimizer_config(c, where);
}

TrainConfig TrainConfig::from_json(const json& c) {
  TrainConfig t;
  t.name = c.at("name");
  t.mode = c.at("mode");
  t.seed = c.at("seed");
  t.device = c.at("device");
  t.bf16 = c.at("bf16");
  const auto& m = c.at("model");
  t.model.arch = m.at("arch");
  t.model.hidden_size = m.at("hidden_size");
  t.model.num_layers = m.at("num_layers");
  t.model.num_heads = m.at("num_heads");
  t.model.num_kv_heads = m.at("num_kv_heads");
  t.model.intermediate_size = m.at("intermediate_size");
  t.model.max_positions = m.at("max_positions");
  t.base = c.value("base", std::string());
  t.tokenizer_path = c.at("tokenizer").value("path", std::string());
  t.tokenizer_vocab = c.at("tokenizer").at("vocab_size");
  const auto& d = c.at("data");
  t.data_kind = d.at("kind");
  t.data_path = d.at("path");
  t.max_len = d.at("max_len");
  t.load.chunk_words = d.at("chunk_words");
  t.load.max_chars = d.at("max_chars");
  t.load.limit = d.at("limit");
  t.load.skip_malformed = d.at("skip_malformed");
  t.validation_fraction = d.at("validation_fraction");
  t.test_fraction = d.at("test_fraction");
  const auto& l = c.at("lora");
  t.lora.r = l.at("r");
  t.lora.alpha = l.at("alpha");
  t.lora.rslora = l.at("rslora");
  t.lora.dropout = l.at("dropout");
  t.lora.targets = l.at("targets").get<std::vector<std::string>>();
  t.lora.target_regex = l.at("target_regex");
  t.lora.exclude = l.at("exclude").get<std::vector<std::string>>();
  t.lora.init = l.at("init");
  t.lora.init_scale = l.at("init_scale");
  if (l.contains("init_gamma") && !l.at("init_gamma").is_null()) t.lora.init_gamma = l.at("init_gamma");
  if (l.contains("init_batches") && !l.at("init_batches").is_null()) t.init_batches = l.at("init_batches");
  t.lora.modules_to_save = l.at("modules_to_save").get<std::vector<std::string>>();
  t.train_head = l.at("train_head");
  t.adapter_path = l.at("adapter");
  t.export_peft = l.at("export_peft");
  t.optim = resolved_optim(c.at("optim"));
  t.schedule = c.at("schedule");
  const auto& tr = c.at("train");
  t.epochs = tr.at("epochs");
  t.max_steps = tr.at("max_steps");
  t.batch_size = tr.at("batch_size");
  t.grad_accum = tr.at("grad_accum");
  t.clip_norm = tr.at("clip_norm");
  t.eval_every = tr.at("eval_every");
  t.eval_batches = tr.at("eval_batches");
  t.log_every = tr.at("log_every");
  t.checkpoint_every = tr.at("checkpoint_every");
  t.nonfinite = tr.at("nonfinite");
  t.halt_at_step = tr.at("halt_at_step");
  t.keep_checkpoints = tr.at("keep_checkpoints");
  const auto& mon = c.at("monitor");
  t.monitor_every = mon.at("every");
  t.geometry_every = mon.at("geometry_every");
  t.geometry_base_k = mon.at("base_k");
  t.intruder_k = mon.at("intruder_k");
  t.intruder_epsilon = mon.at("intruder_epsilon");
  t.base_svd_dtype = mon.at("base_svd_dtype");
  t.tensorboard = c.at("logging").at("tensorboard");
  return t;
}

}  // namespace lorascope
