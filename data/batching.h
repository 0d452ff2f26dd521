// Token batches for the trainer.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "data/text_datasets.h"
#include "data/tokenizer.h"

namespace lorascope {

struct Batch {
  at::Tensor input_ids;       // (B, T) int64, padded with pad_id on the right
  at::Tensor attention_mask;  // (B, T) int64, 1 = token, 0 = padding
  at::Tensor labels;          // classification: (B) int64; LM / SFT: (B, T) int64 next-token
                              // targets aligned with input_ids (labels[t] = input_ids[t + 1]),
                              // -100 where no loss (padding, prompt, last position)
  at::Tensor token_type_ids;  // (B, T) int64 segment ids (BERT: 0 = first text, 1 = second,
                              // 0 on padding); undefined when the examples carry none
  int64_t num_tokens = 0;     // real tokens in the batch (for throughput)
};

// Tokenized examples, kept so that batching each epoch needs no re-tokenization.
struct TokenizedExample {
  std::vector<int64_t> ids;   // bos + tokens (+ eos for LM), truncated to max_len; or the
                              // tokenizer's template ([CLS] text [SEP]) around the truncated text
  int64_t label = -1;
  int64_t prompt_len = 0;     // SFT: first prompt_len ids carry no loss
  std::vector<int64_t> type_ids;  // one per id from the template, or empty (all 0)
};

// A tokenizer whose specials come from its post-processor (WordPiece: BERT, MiniLM) encodes each
// example as `tokenizers` encode(text, add_special_tokens=True, truncation=True) does:
// [CLS] text [SEP] with the text cut so that the whole fits max_len, and type ids; an example
// with a prompt becomes the pair [CLS] prompt [SEP] text [SEP] (type ids 0 then 1, prompt_len
// covering [CLS] prompt [SEP]). Other tokenizers: bos + prompt + text (+ eos when add_eos), cut
// to max_len, no type ids. max_len <= 0: no truncation (packed LM data is cut into rows later).
std::vector<TokenizedExample> tokenize(const TextDataset& data, const Tokenizer& tok,
                                       int64_t max_len, bool add_eos);

// One epoch of classification batches (padding), order shuffled by (seed, epoch); the same
// arguments always give the same batches. The last batch may be smaller. Every example needs a
// label >= 0; no examples or batch_size < 1 throw std::invalid_argument.
std::vector<Batch> classification_batches(const std::vector<TokenizedExample>& data,
                                          int64_t batch_size, int64_t pad_id, uint64_t seed,
                                          int64_t epoch, bool shuffle = true);
// One epoch of language-modeling batches: examples concatenated and packed into rows of
// seq_len + 1 tokens (no padding); order shuffled by (seed, epoch). input_ids = row[0, seq_len),
// labels = row[1, seq_len]; consecutive rows share one token so no next-token pair is lost, the
// stream's tail shorter than a row is dropped. Fewer than seq_len + 1 tokens throw.
std::vector<Batch> packed_lm_batches(const std::vector<TokenizedExample>& data, int64_t batch_size,
                                     int64_t seq_len, uint64_t seed, int64_t epoch,
                                     bool shuffle = true);
// Supervised fine-tuning batches (padding; loss only after prompt_len).
std::vector<Batch> sft_batches(const std::vector<TokenizedExample>& data, int64_t batch_size,
                               int64_t pad_id, uint64_t seed, int64_t epoch, bool shuffle = true);

// Rows [begin, end) of a batch (a data-parallel rank's shard of a global batch); num_tokens
// counts the real tokens of those rows.
Batch slice_rows(const Batch& batch, int64_t begin, int64_t end);
// The rows of a global batch of `rows` rows that rank `rank` of `world` reads: contiguous and as
// even as possible, [floor(rank * rows / world), floor((rank + 1) * rows / world)).
std::pair<int64_t, int64_t> shard_range(int64_t rows, int rank, int world);

}  // namespace lorascope
