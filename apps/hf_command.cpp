// lorascope hf logits | embed | random-adapter | merge | tokenize: Hugging Face checkpoints, PEFT
// adapters and tokenizers from the command line. tests/interop/ drives these against
// transformers, peft and tokenizers on the same inputs.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <filesystem>

#include "apps/commands.h"
#include "apps/hf_embed.h"
#include "data/tokenizer.h"
#include "models/hf_checkpoint.h"
#include "models/llama.h"
#include "models/lora.h"
#include "models/parameter_roles.h"
#include "models/peft_adapter.h"
#include "models/roberta.h"
#include "models/safetensors.h"
#include "trainer/autocast_guard.h"
#include "trainer/config.h"
#include "trainer/device.h"
#include "util/json_file.h"

namespace lorascope::cli {

using nlohmann::json;

namespace {

struct HfArgs {
  std::string model, adapter, ids, out, head = "causal_lm", dtype = "float32", device = "cpu", autocast = "none";
  std::string tokenizer, input;
  bool special_tokens = false, pairs = false;  // tokenize: post-processor, tab-separated pairs
  int64_t max_len = 0;
  int64_t num_labels = 0, r = 8, seed = 0;
  double alpha = 16, b_std = 0.02;
  bool rslora = false;
  std::string init = "peft";  // random-adapter: lora.init
  std::vector<std::string> targets = {"q_proj", "v_proj"};
  HfEmbedOptions embed;
};

// Bad input of any kind is a usage error (exit 2) with the message of the file that failed.
template <typename F>
int guarded(F f) {
  try {
    f();
    return 0;
  } catch (const ConfigError&) {
    throw;
  } catch (const std::runtime_error& e) {
    throw ConfigError(e.what());
  }
}

// {"input_ids": [[...], ...], "attention_mask": [[...], ...] (optional)} -> (B, T) tensors.
std::pair<at::Tensor, at::Tensor> read_ids(const std::string& path) {
  if (!std::filesystem::exists(path)) throw ConfigError(path + ": --ids: file not found");
  json j;
  try {
    j = read_json_file(path);
  } catch (const JsonFileError& e) {
    throw ConfigError(e.what());
  }
  const auto rows = [&](const char* key) {
    std::vector<int64_t> flat;
    int64_t B = 0, T = -1;
    if (!j.contains(key) || !j[key].is_array() || j[key].empty()) {
      throw ConfigError(path + ": " + key + ": expected a non-empty list of equal-length lists of integers");
    }
    for (const auto& row : j[key]) {
      if (!row.is_array() || (T >= 0 && static_cast<int64_t>(row.size()) != T) || row.empty()) {
        throw ConfigError(path + ": " + key + ": expected equal-length non-empty rows");
      }
      T = static_cast<int64_t>(row.size());
      for (const auto& v : row) {
        if (!v.is_number_integer()) throw ConfigError(path + ": " + key + ": expected integers, got " + v.dump());
        flat.push_back(v.get<int64_t>());
      }
      ++B;
    }
    return at::tensor(flat, at::kLong).view({B, T});
  };
  const auto ids = rows("input_ids");
  const auto mask = j.contains("attention_mask") ? rows("attention_mask") : at::ones_like(ids);
  if (!mask.sizes().equals(ids.sizes())) throw ConfigError(path + ": attention_mask: expected the shape of input_ids");
  return {ids, mask};
}

at::ScalarType parse_dtype(const std::string& d) {
  return d == "float64" ? at::kDouble : d == "bfloat16" ? at::kBFloat16 : at::kFloat;
}

// "auto": the head the checkpoint's architecture names (a bare body: "hidden").
std::string resolve_head(const std::string& head, const std::string& dir) {
  if (head != "auto") return head;
  const auto arch = read_hf_config(dir).architecture;
  const auto has = [&](const char* s) { return arch.find(s) != std::string::npos; };
  return has("ForSequenceClassification") ? "classification"
         : has("ForMaskedLM")             ? "masked_lm"
         : has("ForCausalLM")             ? "causal_lm"
                                          : "hidden";
}

// The model that carries a body for --head hidden: its own head where the checkpoint has one,
// else a fresh classification head (never used).
std::string loading_head(const std::string& head, const std::string& dir) {
  if (head != "hidden") return head;
  const auto info = read_hf_config(dir);
  return info.family == "llama" ? "causal_lm" : "classification";
}

// The body's last hidden state (B, T, C); for BERT / RoBERTa also pooler_output =
// tanh(dense(h[:, 0])), the pooler that lorascope keeps as classifier.dense.
std::map<std::string, at::Tensor> hidden_outputs(SequenceModel& model, const at::Tensor& ids, const at::Tensor& mask) {
  if (auto* llama = dynamic_cast<LlamaSequenceModel*>(&model)) {
    return {{"last_hidden_state", llama->model->forward(ids, mask)}};
  }
  auto& roberta = dynamic_cast<RobertaSequenceModel&>(model);
  const auto h = roberta.roberta->forward(ids, mask);
  std::map<std::string, at::Tensor> out = {{"last_hidden_state", h}};
  if (roberta.classifier_dense) out["pooler_output"] = at::tanh(roberta.classifier_dense->forward(h.select(1, 0)));
  return out;
}

void logits(const HfArgs& a) {
  const auto [ids, mask] = read_ids(a.ids);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(a.seed));
  HfLoadReport report;
  const std::string head = resolve_head(a.head, a.model);
  auto model = load_hf_model(a.model, loading_head(head, a.model), a.num_labels, gen, &report);
  if (!report.fresh.empty() && head != "hidden") {
    std::fprintf(stderr, "hf logits: %zu head tensors are not in the checkpoint (fresh, seed %lld)\n",
                 report.fresh.size(), static_cast<long long>(a.seed));
  }
  if (!a.adapter.empty()) load_peft_adapter(*model, a.adapter);
  const auto vocab = model->config().vocab_size;
  if (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= vocab) {
    throw ConfigError(a.ids + ": input_ids: expected ids in [0, " + std::to_string(vocab) + ")");
  }
  const auto device = pick_device(a.device);
  model->to(device);
  model->to(parse_dtype(a.dtype));
  model->eval();
  at::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> out;
  {
    // --autocast bfloat16: the trainer's bf16=true forward (float32 weights, bf16 matmuls).
    AutocastGuard autocast(device.type(), a.autocast == "bfloat16");
    if (head == "hidden") {
      out = hidden_outputs(*model, ids.to(device), mask.to(device));
    } else {
      out["logits"] = model->forward(ids.to(device), mask.to(device));
    }
  }
  for (auto& [name, t] : out) t = t.to(at::kFloat).cpu();
  save_safetensors(out, a.out, {{"model", a.model}, {"dtype", a.dtype}, {"autocast", a.autocast}, {"head", head}});
  std::fprintf(stderr, "hf logits: %s %s -> %s\n", c10::str(out.begin()->second.sizes()).c_str(), a.dtype.c_str(),
               a.out.c_str());
}

// The base model with the adapter merged into its weights (W + scaling B A), as an HF checkpoint
// directory: config.json copied, model.safetensors under HF's parameter names.
void merge(const HfArgs& a) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(a.seed));
  auto model = load_hf_model(a.model, loading_head(resolve_head(a.head, a.model), a.model), a.num_labels, gen);
  load_peft_adapter(*model, a.adapter);
  merge_lora(*model);
  const std::string family = hf_family(model->config());
  std::map<std::string, at::Tensor> tensors;
  const auto roles = parameter_roles(*model);
  for (const auto& p : model->named_parameters(true)) {
    if (roles.is_adapter_factor(p.key())) continue;
    tensors[hf_parameter_name(p.key(), family)] = p.value().detach();
  }
  namespace fs = std::filesystem;
  fs::create_directories(a.out);
  save_safetensors(tensors, (fs::path(a.out) / "model.safetensors").string(), {{"format", "pt"}});
  fs::copy_file(fs::path(a.model) / "config.json", fs::path(a.out) / "config.json",
                fs::copy_options::overwrite_existing);
  std::fprintf(stderr, "hf merge: %zu tensors -> %s\n", tensors.size(), a.out.c_str());
}

void random_adapter(const HfArgs& a) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(a.seed));
  auto model = load_hf_model(a.model, a.head, a.num_labels, gen);
  LoraConfig lora;
  lora.r = a.r;
  lora.alpha = a.alpha;
  lora.targets = a.targets;
  lora.rslora = a.rslora;
  lora.init = a.init;
  if (model->head() == "classification") lora.modules_to_save = {model->head_module()};
  attach_lora(*model, lora, gen);
  at::NoGradGuard no_grad;
  const auto initial = starting_factors(*model, lora);  // spectral / olora: exported at rank 2r
  // PEFT's init has B = 0, an adapter that changes nothing; a random B makes the export testable
  // (added to a base-correcting init's B, so that the adapter differs from its start).
  for (auto& ad : find_adapters(*model)) {
    if (initial.empty()) {
      ad.B.normal_(0, a.b_std, gen);
    } else {
      ad.B.add_(at::empty_like(ad.B).normal_(0, a.b_std, gen));
    }
  }
  save_peft_adapter(*model, lora, a.out, a.model, &initial);
  std::fprintf(stderr, "hf random-adapter: %zu adapters -> %s\n", find_adapters(*model).size(), a.out.c_str());
}

void tokenize(const HfArgs& a) {
  const auto tok = Tokenizer::load(a.tokenizer);
  std::ifstream in(a.input, std::ios::binary);
  if (!in) throw ConfigError(a.input + ": --in: file not found");
  std::ofstream out(a.out);
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    if (!a.special_tokens && !a.pairs) {
      out << json(tok.encode(line)).dump() << "\n";
    } else {
      const size_t tab = a.pairs ? line.find('\t') : std::string::npos;
      const std::string second = tab == std::string::npos ? "" : line.substr(tab + 1);
      TokenizerEncoding e;
      if (a.special_tokens) {
        e = tok.encode_with_specials(line.substr(0, tab), tab == std::string::npos ? nullptr : &second, a.max_len);
      } else {  // a pair without special tokens: A then B, type ids 0 and 1
        e.ids = tok.encode(line.substr(0, tab));
        e.type_ids.assign(e.ids.size(), 0);
        const auto b = tab == std::string::npos ? std::vector<int64_t>{} : tok.encode(second);
        e.ids.insert(e.ids.end(), b.begin(), b.end());
        e.type_ids.insert(e.type_ids.end(), b.size(), 1);
      }
      out << json{{"ids", e.ids}, {"type_ids", e.type_ids}}.dump() << "\n";
    }
    ++n;
  }
  if (!out) throw ConfigError(a.out + ": cannot write");
  std::fprintf(stderr, "hf tokenize: %lld lines -> %s\n", static_cast<long long>(n), a.out.c_str());
}

}  // namespace

Command add_hf_command(CLI::App& app) {
  auto a = std::make_shared<HfArgs>();
  auto* hf = app.add_subcommand("hf", "Hugging Face checkpoints, PEFT adapters and tokenizers (interop checks)");
  hf->require_subcommand(1);
  auto* lg = hf->add_subcommand("logits", "logits of an HF checkpoint (+ PEFT adapter) on given token ids");
  lg->add_option("--model", a->model, "HF checkpoint directory")->required();
  lg->add_option("--ids", a->ids, "JSON {\"input_ids\": [[...]], \"attention_mask\": [[...]]}")->required();
  lg->add_option("--out", a->out, "output .safetensors with tensor \"logits\" (float32)")->required();
  lg->add_option("--adapter", a->adapter, "PEFT adapter directory to apply");
  lg->add_option("--head", a->head,
                 "causal_lm | classification | masked_lm | hidden (the body's last hidden state) | auto (the "
                 "checkpoint's architecture)")
      ->check(CLI::IsMember({"causal_lm", "classification", "masked_lm", "hidden", "auto"}));
  lg->add_option("--num-labels", a->num_labels, "classification: labels (default: the checkpoint's)");
  lg->add_option("--dtype", a->dtype, "float32 | bfloat16 | float64")
      ->check(CLI::IsMember({"float32", "bfloat16", "float64"}));
  lg->add_option("--device", a->device, "cpu | cuda | auto")->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  lg->add_option("--seed", a->seed, "seed of a fresh head");
  lg->add_option("--autocast", a->autocast, "none | bfloat16 (float32 weights, bf16 autocast, as bf16=true trains)")
      ->check(CLI::IsMember({"none", "bfloat16"}));
  auto* mg = hf->add_subcommand("merge", "merge a PEFT adapter into its base model and write an HF checkpoint");
  mg->add_option("--model", a->model, "HF checkpoint directory")->required();
  mg->add_option("--adapter", a->adapter, "PEFT adapter directory")->required();
  mg->add_option("--out", a->out, "directory to write (config.json, model.safetensors)")->required();
  mg->add_option("--head", a->head, "causal_lm | classification | masked_lm | auto")
      ->check(CLI::IsMember({"causal_lm", "classification", "masked_lm", "auto"}));
  mg->add_option("--num-labels", a->num_labels, "classification: labels (default: the checkpoint's)");
  auto* em = hf->add_subcommand("embed", "last hidden states and pooled sentence embeddings of a BERT-family checkpoint");
  em->add_option("--model", a->embed.model, "HF checkpoint directory (BERT / RoBERTa; modules.json read if present)")->required();
  em->add_option("--ids", a->ids, "JSON {\"input_ids\": [[...]], \"attention_mask\": [[...]]}")->required();
  em->add_option("--out", a->embed.out, "output .safetensors: last_hidden_state (B, T, C), embeddings (B, C)")->required();
  em->add_option("--pooling", a->embed.pooling, "pooler | cls | mean (default: the checkpoint's)")
      ->check(CLI::IsMember({"pooler", "cls", "mean"}));
  // A const std::string, not a string literal: in C++20 (LibTorch 2.x builds) a char array is
  // constructible from an integer (parenthesized aggregate init), so CLI11 2.1's counting-flag
  // overload matches a literal description too and the call is ambiguous.
  const std::string normalize_help = "L2-normalize the embeddings (default: the checkpoint's)";
  auto* normalize = em->add_flag("--normalize,!--no-normalize", normalize_help);
  auto* ra = hf->add_subcommand("random-adapter", "attach LoRA with a random (nonzero) B and export it as PEFT");
  ra->add_option("--model", a->model, "HF checkpoint directory")->required();
  ra->add_option("--out", a->out, "adapter directory to write")->required();
  ra->add_option("--head", a->head, "causal_lm | classification")->check(CLI::IsMember({"causal_lm", "classification"}));
  ra->add_option("--num-labels", a->num_labels, "classification: labels (default: the checkpoint's)");
  ra->add_option("--r", a->r, "rank")->check(CLI::PositiveNumber);
  ra->add_option("--alpha", a->alpha, "lora_alpha")->check(CLI::PositiveNumber);
  ra->add_option("--targets", a->targets, "module names")->delimiter(',');
  ra->add_option("--seed", a->seed, "seed");
  ra->add_option("--b-std", a->b_std, "std of lora_B");
  ra->add_flag("--rslora", a->rslora, "scaling alpha / sqrt(r) instead of alpha / r");
  ra->add_option("--init", a->init,
                 "peft | gaussian | spectral | olora (lora.init; spectral and olora export at rank 2r for the "
                 "unmodified base, as PEFT converts PiSSA / OLoRA adapters)")
      ->check(CLI::IsMember({"peft", "gaussian", "spectral", "olora"}));
  auto* tk = hf->add_subcommand("tokenize", "encode each line of a file as a JSON list per line (special tokens: --special-tokens)");
  tk->add_option("--tokenizer", a->tokenizer, "tokenizer.json or tokenizer.model")->required();
  tk->add_option("--in", a->input, "UTF-8 text, one example per line")->required();
  tk->add_option("--out", a->out, "JSONL of id lists")->required();
  tk->add_flag("--special-tokens", a->special_tokens,
               "add the post-processor's special tokens; each line becomes {\"ids\": [...], \"type_ids\": [...]}");
  tk->add_flag("--pairs", a->pairs, "each line is TEXT<tab>PAIR (output as with --special-tokens)");
  tk->add_option("--max-len", a->max_len, "with --special-tokens: truncate (longest first) to this many ids")
      ->check(CLI::NonNegativeNumber);
  return [a, lg, em, normalize, mg, ra, tk]() -> int {
    if (lg->parsed()) return guarded([&] { logits(*a); });
    if (mg->parsed()) return guarded([&] { merge(*a); });
    if (em->parsed()) {
      return guarded([&] {
        const auto [ids, mask] = read_ids(a->ids);
        if (normalize->count() > 0) a->embed.normalize = normalize->as<bool>() ? 1 : 0;
        hf_embed(a->embed, ids, mask);
      });
    }
    if (ra->parsed()) return guarded([&] { random_adapter(*a); });
    if (tk->parsed()) return guarded([&] { tokenize(*a); });
    return 2;
  };
}

}  // namespace lorascope::cli
