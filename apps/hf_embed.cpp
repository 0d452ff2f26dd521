#include "apps/hf_embed.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)

#include <cstdio>
#include <memory>

#include "models/hf_checkpoint.h"
#include "models/roberta.h"
#include "models/safetensors.h"
#include "trainer/config.h"

namespace lorascope::cli {

void hf_embed(const HfEmbedOptions& o, const at::Tensor& ids, const at::Tensor& mask) {
  auto info = read_hf_config(o.model);
  if (info.family == "llama") {
    throw ConfigError(o.model + "/config.json: architectures: hf embed expects a BERT or RoBERTa encoder, got " +
                      info.architecture);
  }
  if (!o.pooling.empty()) info.config.pooling = o.pooling;
  if (o.normalize >= 0) info.config.normalize_pooled = o.normalize == 1;
  const auto vocab = info.config.vocab_size;
  if (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= vocab) {
    throw ConfigError("--ids: input_ids: expected ids in [0, " + std::to_string(vocab) + ") (vocab_size of " +
                      o.model + "/config.json)");
  }
  // The classification head is built (fresh, seed 0) but not used: only the body and the pooling.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  auto model = std::dynamic_pointer_cast<RobertaSequenceModel>(load_hf_model(o.model, info, "classification", 2, gen));
  if (!model) throw std::logic_error("hf embed: a " + info.family + " checkpoint did not give an encoder");
  model->eval();
  at::NoGradGuard no_grad;
  const auto h = model->roberta->forward(ids, mask);  // (B, T, C)
  const auto e = model->pooled(h, mask);              // (B, C)
  const auto& c = model->roberta->config;
  save_safetensors({{"last_hidden_state", h.to(at::kFloat).contiguous()}, {"embeddings", e.to(at::kFloat).contiguous()}},
                   o.out, {{"model", o.model}, {"pooling", c.pooling}, {"normalize", c.normalize_pooled ? "true" : "false"}});
  std::fprintf(stderr, "hf embed: %s pooling %s%s -> %s\n", c10::str(e.sizes()).c_str(), c.pooling.c_str(),
               c.normalize_pooled ? " + normalize" : "", o.out.c_str());
}

}  // namespace lorascope::cli
