#include "models/sequence_model.h"

#include <stdexcept>

#include "models/llama.h"
#include "models/roberta.h"

namespace lorascope {

at::Tensor SequenceModel::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                  const at::Tensor& token_type_ids) {
  if (token_type_ids.defined()) {
    throw std::invalid_argument(config().arch + ": token_type_ids: this architecture has no token types");
  }
  return forward(input_ids, attention_mask);
}

std::shared_ptr<SequenceModel> make_model(const TransformerConfig& config, const std::string& head,
                                          int64_t num_labels, at::Generator& gen) {
  TransformerConfig::from_json(config.to_json(), "model");  // the same checks as a config file
  if (config.arch == "llama") return std::make_shared<LlamaSequenceModel>(config, head, num_labels, gen);
  if (config.arch == "roberta") {
    return std::make_shared<RobertaSequenceModel>(config, head, num_labels, gen);
  }
  throw std::logic_error("make_model: unreachable arch " + config.arch);
}

}  // namespace lorascope
