#include "models/roberta.h"

#include <cmath>
#include <stdexcept>

#include "models/sentence_pooling.h"

namespace lorascope {

namespace {
std::shared_ptr<torch::nn::Module> holder(const std::string& name) {
  return std::make_shared<torch::nn::Module>(name);
}
}  // namespace

RobertaLayer::RobertaLayer(const TransformerConfig& c, at::Generator& gen)
    : torch::nn::Module("RobertaLayer"), num_heads(c.num_heads), head_dim(c.head_dim()) {
  const int64_t C = c.hidden_size, I = c.intermediate_size;
  const auto linear = [&](int64_t in, int64_t out) { return std::make_shared<Linear>(in, out, true, gen); };
  auto attention = register_module("attention", holder("RobertaAttention"));
  auto self = attention->register_module("self", holder("RobertaSelfAttention"));
  query = self->register_module("query", linear(C, C));
  key = self->register_module("key", linear(C, C));
  value = self->register_module("value", linear(C, C));
  auto attn_out = attention->register_module("output", holder("RobertaSelfOutput"));
  attn_dense = attn_out->register_module("dense", linear(C, C));
  attn_norm = attn_out->register_module("LayerNorm", std::make_shared<LayerNorm>(C, c.layer_norm_eps));
  auto intermediate = register_module("intermediate", holder("RobertaIntermediate"));
  inter_dense = intermediate->register_module("dense", linear(C, I));
  auto output = register_module("output", holder("RobertaOutput"));
  out_dense = output->register_module("dense", linear(I, C));
  out_norm = output->register_module("LayerNorm", std::make_shared<LayerNorm>(C, c.layer_norm_eps));
}

at::Tensor RobertaLayer::forward(const at::Tensor& h, const at::Tensor& mask) {
  const int64_t B = h.size(0), T = h.size(1), C = h.size(2);
  const auto heads = [&](const at::Tensor& t) {
    return t.view({B, T, num_heads, head_dim}).transpose(1, 2);  // (B, H, T, hd)
  };
  const auto y = attention(heads(query->forward(h)), heads(key->forward(h)), heads(value->forward(h)),
                           mask);                                                  // (B, H, T, hd)
  const auto h1 = attn_norm->forward(h + attn_dense->forward(y.transpose(1, 2).reshape({B, T, C})));
  const auto m = at::gelu(inter_dense->forward(h1));  // exact erf GELU, (B, T, I)
  return out_norm->forward(h1 + out_dense->forward(m));
}

RobertaModel::RobertaModel(const TransformerConfig& c, at::Generator& gen)
    : torch::nn::Module("RobertaModel"), config(c) {
  const int64_t C = c.hidden_size;
  auto emb = register_module("embeddings", holder("RobertaEmbeddings"));
  word_embeddings = emb->register_module(
      "word_embeddings", std::make_shared<Embedding>(c.vocab_size, C, c.pad_token_id, gen));
  position_embeddings = emb->register_module(
      "position_embeddings", std::make_shared<Embedding>(c.max_positions, C, c.pad_token_id, gen));
  token_type_embeddings = emb->register_module(
      "token_type_embeddings", std::make_shared<Embedding>(c.type_vocab_size, C, -1, gen));
  embed_norm = emb->register_module("LayerNorm", std::make_shared<LayerNorm>(C, c.layer_norm_eps));
  auto encoder = register_module("encoder", holder("RobertaEncoder"));
  auto list = encoder->register_module("layer", holder("ModuleList"));
  for (int64_t i = 0; i < c.num_layers; ++i) {
    layers.push_back(list->register_module(std::to_string(i), std::make_shared<RobertaLayer>(c, gen)));
  }
}

// HF derives the mask from input_ids != pad_token_id; the attention mask says the same for
// consistently padded batches and is what the rest of the model treats as padding.
at::Tensor roberta_position_ids(const at::Tensor& attention_mask, int64_t pad_token_id) {
  const auto tokens = attention_mask.ne(0).to(at::kLong);  // (B, T)
  return tokens.cumsum(1) * tokens + pad_token_id;
}

at::Tensor RobertaModel::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                 const at::Tensor& token_type_ids) {
  const auto mask01 = checked_attention_mask(input_ids, attention_mask, "roberta");
  if (token_type_ids.defined() && (token_type_ids.sizes() != input_ids.sizes() || token_type_ids.scalar_type() != at::kLong)) {
    throw std::invalid_argument("roberta: token_type_ids: expected int64 of input_ids' shape");
  }
  const int64_t T = input_ids.size(1);
  const bool absolute = config.positions == "absolute";  // BERT
  const int64_t needed = absolute ? T : T + config.pad_token_id + 1;
  if (needed > config.max_positions) {
    throw std::invalid_argument("roberta: sequence length " + std::to_string(T) + " needs max_positions >= " +
                                (absolute ? std::string("T") : std::string("T + pad_token_id + 1")) + " = " +
                                std::to_string(needed) + ", got " + std::to_string(config.max_positions));
  }
  const auto pos = absolute ? at::arange(T, mask01.options()).unsqueeze(0).expand_as(mask01)
                            : roberta_position_ids(mask01, config.pad_token_id);
  auto h = word_embeddings->forward(input_ids) + position_embeddings->forward(pos) +
           token_type_embeddings->forward(token_type_ids.defined() ? token_type_ids : at::zeros_like(input_ids));
  h = embed_norm->forward(h);
  const auto mask = padding_mask(mask01, h.scalar_type());  // (B, 1, 1, T)
  for (auto& layer : layers) h = layer->forward(h, mask);
  return h;
}

RobertaSequenceModel::RobertaSequenceModel(const TransformerConfig& c, const std::string& head,
                                           int64_t num_labels, at::Generator& gen)
    : head_(head) {
  if (head != "classification" && head != "masked_lm") {
    throw std::invalid_argument("roberta: head: expected \"classification\" or \"masked_lm\" (an encoder has no "
                                "causal_lm head), got \"" + head + "\"");
  }
  if (head == "classification" && num_labels < 1) {
    throw std::invalid_argument("roberta: num_labels: expected >= 1, got " + std::to_string(num_labels));
  }
  roberta = register_module("roberta", std::make_shared<RobertaModel>(c, gen));
  if (head == "masked_lm") {
    auto lm = register_module("lm_head", holder("RobertaLMHead"));
    lm_dense = lm->register_module("dense", std::make_shared<Linear>(c.hidden_size, c.hidden_size, true, gen));
    lm_norm = lm->register_module("layer_norm", std::make_shared<LayerNorm>(c.hidden_size, c.layer_norm_eps));
    lm_bias = lm->register_parameter("bias", at::zeros({c.vocab_size}));
    return;
  }
  auto cls = register_module("classifier", holder("RobertaClassificationHead"));
  if (c.pooling == "pooler") {
    classifier_dense = cls->register_module("dense", std::make_shared<Linear>(c.hidden_size, c.hidden_size, true, gen));
  }
  classifier_out_proj =
      cls->register_module("out_proj", std::make_shared<Linear>(c.hidden_size, num_labels, true, gen));
}

at::Tensor RobertaSequenceModel::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) {
  return forward(input_ids, attention_mask, at::Tensor());
}

at::Tensor RobertaSequenceModel::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                         const at::Tensor& token_type_ids) {
  const auto h = roberta->forward(input_ids, attention_mask, token_type_ids);  // (B, T, C)
  if (lm_dense) {  // exact erf GELU, then the decoder tied to the word embeddings
    const auto x = lm_norm->forward(at::gelu(lm_dense->forward(h)));       // (B, T, C)
    return at::linear(x, roberta->word_embeddings->weight, lm_bias);        // (B, T, vocab)
  }
  return classifier_out_proj->forward(pooled(h, attention_mask));  // (B, num_labels)
}

at::Tensor RobertaSequenceModel::pooled(const at::Tensor& h, const at::Tensor& attention_mask) {
  const auto& c = roberta->config;
  const auto x = c.pooling == "pooler" ? at::tanh(classifier_dense->forward(h.select(1, 0)))  // <s> / [CLS]
                                       : pool_tokens(h, attention_mask, c.pooling);         // (B, C)
  return c.normalize_pooled ? l2_normalize(x) : x;
}

}  // namespace lorascope
