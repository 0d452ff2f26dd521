// Hugging Face checkpoint directories (config.json + model.safetensors or its shards) loaded into
// lorascope's models, parameter by parameter, with nothing silently skipped or invented.
//
// Architectures (config.json "architectures"[0], else "model_type"):
//   LlamaForCausalLM, LlamaForSequenceClassification, LlamaModel          -> arch "llama"
//   RobertaForSequenceClassification, RobertaForMaskedLM, RobertaModel    -> arch "roberta"
//   BertForSequenceClassification, BertForMaskedLM, BertForPreTraining,
//   BertModel                                                             -> arch "roberta",
//                                                                            positions "absolute"
// Names: lorascope's are HF's (models/sequence_model.h) except BERT's, whose body "bert." is
// lorascope's "roberta." and whose pooler + classifier are lorascope's classifier.dense +
// classifier.out_proj (the same tanh(dense(h_0)) -> linear head as RoBERTa's), and whose MLM
// head cls.predictions.{transform.dense, transform.LayerNorm, bias} is lorascope's
// lm_head.{dense, layer_norm, bias} (RoBERTa's names).
// The task head (lm_head of an untied LLaMA excepted) may be absent from the checkpoint: a body
// (MaskedLM, CausalLM for classification) gets a fresh head, which the load report lists.
// With pooling "cls" / "mean" (a sentence-transformers checkpoint, models/sentence_pooling.h)
// the head is classifier.out_proj alone and a saved pooler is ignored.
#pragma once

#include <ATen/core/Generator.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "models/safetensors.h"
#include "models/sequence_model.h"

namespace lorascope {

struct HfModelInfo {
  std::string architecture;  // e.g. "LlamaForCausalLM"
  std::string family;        // "llama" | "roberta" | "bert"
  TransformerConfig config;
  int64_t num_labels = 0;    // labels of a *ForSequenceClassification checkpoint, else 0
};

// Parses config.json (where names it in errors: "DIR/config.json: KEY: expected ...").
HfModelInfo parse_hf_config(const nlohmann::json& j, const std::string& where);
// config.json, then a sentence-transformers modules.json beside it (pooling and Normalize,
// models/sentence_pooling.h). A fetched model's directory is checked whole first
// (check_fetched_model), and its errors end with the command that fetches it.
HfModelInfo read_hf_config(const std::string& dir);
// True when dir holds config.json and model.safetensors(.index.json), or is named as a model
// scripts/fetch_model.sh fetches (so that a damaged one is reported as such).
bool is_hf_checkpoint_dir(const std::string& dir);

// Models fetched into the cache by a script (all-MiniLM-L6-v2: scripts/fetch_model.sh), known by
// their directory's name: the command that fetches dir's model, or "" for any other directory.
std::string fetch_command_for(const std::string& dir);
// For such a directory: throws one line naming what is missing or damaged (the directory,
// config.json, model.safetensors whose header must agree with its size, tokenizer.json) and the
// command that fetches it. Does nothing for other directories.
void check_fetched_model(const std::string& dir);

std::string hf_family(const TransformerConfig& config);  // "llama" | "roberta" | "bert"
// lorascope parameter name -> HF name and back (identity except for BERT, see above).
std::string hf_parameter_name(const std::string& name, const std::string& family);
std::string lorascope_parameter_name(const std::string& hf_name, const std::string& family);

struct HfLoadReport {
  std::vector<std::string> fresh;    // lorascope parameters initialised here (a new head)
  std::vector<std::string> ignored;  // checkpoint tensors not used (an MLM head, tied lm_head, ...)
};

// Copies every parameter of model from the checkpoint (converted to the parameter's dtype).
// Throws std::runtime_error naming the file and key: a missing tensor (outside the head), a
// shape mismatch, or a checkpoint tensor the model has no place for.
HfLoadReport load_hf_weights(SequenceModel& model, const SafetensorsCheckpoint& checkpoint);

// config.json -> model (head "causal_lm" | "classification" | "masked_lm"; num_labels <= 0 takes the
// checkpoint's) -> weights. The head's fresh parameters are drawn from gen.
std::shared_ptr<SequenceModel> load_hf_model(const std::string& dir, const std::string& head,
                                             int64_t num_labels, at::Generator& gen,
                                             HfLoadReport* report = nullptr);
// The same with info read (and, e.g., its pooling changed) by the caller.
std::shared_ptr<SequenceModel> load_hf_model(const std::string& dir, const HfModelInfo& info,
                                             const std::string& head, int64_t num_labels, at::Generator& gen,
                                             HfLoadReport* report = nullptr);

}  // namespace lorascope
