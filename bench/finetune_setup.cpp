#include "bench/finetune_setup.h"

#include <sys/resource.h>

#include <filesystem>
#include <stdexcept>

#include "models/hf_checkpoint.h"
#include "trainer/optimizer_factory.h"
#include "trainer/optimizer_routing.h"

namespace lorascope::bench {

TransformerConfig llama32_1b(int64_t layers) {
  TransformerConfig c;
  c.arch = "llama";
  c.vocab_size = 128256;
  c.hidden_size = 2048;
  c.num_layers = layers;
  c.num_heads = 32;
  c.num_kv_heads = 8;
  c.intermediate_size = 8192;
  c.max_positions = 2048;
  c.rope_theta = 500000.0;
  c.rms_norm_eps = 1e-5;
  c.tie_embeddings = true;
  return c;
}

TransformerConfig demo_small_llama() {
  TransformerConfig c;
  c.arch = "llama";
  c.vocab_size = 4096;
  c.hidden_size = 128;
  c.num_layers = 4;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.intermediate_size = 344;
  c.max_positions = 256;
  c.pad_token_id = 0;
  return c;
}

TransformerConfig minilm_config() {
  TransformerConfig c;
  c.arch = "roberta";
  c.positions = "absolute";
  c.vocab_size = 30522;
  c.hidden_size = 384;
  c.num_layers = 6;
  c.num_heads = 12;
  c.num_kv_heads = 12;
  c.intermediate_size = 1536;
  c.max_positions = 512;
  c.layer_norm_eps = 1e-12;
  c.type_vocab_size = 2;
  c.pad_token_id = 0;
  c.pooling = "mean";
  c.normalize_pooled = true;
  return c;
}

namespace {
// Every linear layer of the encoder blocks (bench/peer_finetune.py gives PEFT the same regex);
// MiniLM's pooler, when loaded, stays frozen.
const char* kBertAllLinear = R"(.*encoder\.layer\.\d+\..*(query|key|value|dense))";
}  // namespace

FinetuneModel build_finetune_model(const FinetuneSpec& spec, at::Generator& gen) {
  FinetuneModel out;
  LoraConfig& lc = out.lora;
  lc.r = spec.r;
  lc.alpha = 2.0 * spec.r;
  if (spec.model == "minilm" || spec.model == "minilm_random") {
    if (spec.model == "minilm_random") {
      out.model = make_model(minilm_config(), "classification", 2, gen);
    } else if (!std::filesystem::exists(spec.minilm_dir + "/model.safetensors")) {
      throw std::runtime_error("--minilm " + spec.minilm_dir + ": no model.safetensors (bash scripts/fetch_model.sh)");
    } else {
      out.model = load_hf_model(spec.minilm_dir, "classification", 2, gen);
    }
    if (spec.targets == "all") lc.target_regex = kBertAllLinear;
    else lc.targets = {"query", "value"};
  } else {
    const bool small = spec.model == "small";
    out.model = make_model(small ? demo_small_llama() : llama32_1b(spec.layers), small ? "classification" : "causal_lm",
                           2, gen);
    if (spec.targets == "all") {
      lc.targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
    } else {
      lc.targets = {"q_proj", "v_proj"};
    }
  }
  if (out.model->head() == "classification") lc.modules_to_save = {out.model->head_module()};
  (void)attach_lora(*out.model, lc, gen);
  return out;
}

ParameterRoles FinetuneModel::roles() const {
  RoleRules rules;
  rules.trained_in_full = modules_to_save_prefixes(*model, lora.modules_to_save);
  rules.head_module = model->head_module();
  auto table = parameter_roles(*model, rules);
  apply_roles(table);
  return table;
}

std::unique_ptr<Optimizer> routed_optimizer(const nlohmann::json& optim, const ParameterRoles& roles) {
  const auto o = optim_with_defaults(optim);
  return make_routed_optimizer(o, route_parameters(roles, routing_rules(o, false)));
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

}  // namespace lorascope::bench
