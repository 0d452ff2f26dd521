#include "data/batching.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "data/shuffle.h"

namespace lorascope {

namespace {

constexpr int64_t kIgnore = -100;  // label with no loss, as in PyTorch's cross_entropy

void check_batch_args(const char* fn, size_t n, int64_t batch_size) {
  if (batch_size < 1) {
    throw std::invalid_argument(std::string(fn) + ": batch_size: expected >= 1, got " +
                                std::to_string(batch_size));
  }
  if (n == 0) {
    throw std::invalid_argument(std::string(fn) + ": expected at least one example, got none");
  }
}

enum class Targets { Class, Response };

// Right-padded batch of data[order[begin..end)].
Batch padded_batch(const std::vector<TokenizedExample>& data, const std::vector<int64_t>& order,
                   size_t begin, size_t end, int64_t pad_id, Targets targets) {
  const auto B = static_cast<int64_t>(end - begin);
  int64_t T = 1;
  for (size_t i = begin; i < end; ++i) {
    T = std::max<int64_t>(T, static_cast<int64_t>(data[order[i]].ids.size()));
  }
  Batch batch;
  batch.input_ids = at::full({B, T}, pad_id, at::kLong);                            // (B, T)
  batch.attention_mask = at::zeros({B, T}, at::kLong);                              // (B, T)
  batch.labels = targets == Targets::Class ? at::empty({B}, at::kLong)              // (B)
                                           : at::full({B, T}, kIgnore, at::kLong);  // (B, T)
  bool typed = false;
  for (size_t i = begin; i < end; ++i) typed = typed || !data[order[i]].type_ids.empty();
  if (typed) batch.token_type_ids = at::zeros({B, T}, at::kLong);                   // (B, T)
  int64_t* ids = batch.input_ids.data_ptr<int64_t>();
  int64_t* mask = batch.attention_mask.data_ptr<int64_t>();
  int64_t* labels = batch.labels.data_ptr<int64_t>();
  int64_t* types = typed ? batch.token_type_ids.data_ptr<int64_t>() : nullptr;
  for (int64_t b = 0; b < B; ++b) {
    const TokenizedExample& ex = data[order[begin + b]];
    const auto len = static_cast<int64_t>(ex.ids.size());
    std::copy(ex.ids.begin(), ex.ids.end(), ids + b * T);
    if (types && !ex.type_ids.empty()) {
      if (ex.type_ids.size() != ex.ids.size()) {
        throw std::invalid_argument("padded batch: example " + std::to_string(order[begin + b]) + " has " +
                                    std::to_string(ex.type_ids.size()) + " type ids for " +
                                    std::to_string(ex.ids.size()) + " ids");
      }
      std::copy(ex.type_ids.begin(), ex.type_ids.end(), types + b * T);
    }
    std::fill(mask + b * T, mask + b * T + len, int64_t{1});
    batch.num_tokens += len;
    if (targets == Targets::Class) {
      if (ex.label < 0) {
        throw std::invalid_argument("classification_batches: example " +
                                    std::to_string(order[begin + b]) + " has no label (-1)");
      }
      labels[b] = ex.label;
      continue;
    }
    // Position t predicts token t + 1; only response tokens (index >= prompt_len) are targets.
    for (int64_t t = std::max<int64_t>(ex.prompt_len, 1) - 1; t + 1 < len; ++t) {
      labels[b * T + t] = ex.ids[t + 1];
    }
  }
  return batch;
}

std::vector<Batch> padded_batches(const std::vector<TokenizedExample>& data, int64_t batch_size,
                                  int64_t pad_id, uint64_t seed, int64_t epoch, bool shuffle,
                                  Targets targets) {
  const auto order = permutation(static_cast<int64_t>(data.size()),
                                 mix_seed(seed, static_cast<uint64_t>(epoch)), shuffle);
  std::vector<Batch> batches;
  for (size_t begin = 0; begin < order.size(); begin += static_cast<size_t>(batch_size)) {
    const size_t end = std::min(order.size(), begin + static_cast<size_t>(batch_size));
    batches.push_back(padded_batch(data, order, begin, end, pad_id, targets));
  }
  return batches;
}

}  // namespace

std::vector<TokenizedExample> tokenize(const TextDataset& data, const Tokenizer& tok,
                                       int64_t max_len, bool add_eos) {
  std::vector<TokenizedExample> out;
  out.reserve(data.examples.size());
  const bool templated = tok.specials_from_post_processor();
  for (const auto& ex : data.examples) {
    TokenizedExample t;
    t.label = ex.label;
    if (templated) {
      auto enc = ex.prompt.empty() ? tok.encode_with_specials(ex.text, nullptr, std::max<int64_t>(max_len, 0))
                                   : tok.encode_with_specials(ex.prompt, &ex.text, std::max<int64_t>(max_len, 0));
      t.ids = std::move(enc.ids);
      t.type_ids = std::move(enc.type_ids);
      // The prompt segment ends at the first id of the second segment ([CLS] prompt [SEP]).
      if (!ex.prompt.empty()) {
        t.prompt_len = static_cast<int64_t>(
            std::find(t.type_ids.begin(), t.type_ids.end(), int64_t{1}) - t.type_ids.begin());
      }
      out.push_back(std::move(t));
      continue;
    }
    if (tok.bos_id() >= 0) t.ids.push_back(tok.bos_id());
    if (!ex.prompt.empty()) {
      const auto prompt = tok.encode(ex.prompt);
      t.ids.insert(t.ids.end(), prompt.begin(), prompt.end());
    }
    t.prompt_len = ex.prompt.empty() ? 0 : static_cast<int64_t>(t.ids.size());
    const auto text = tok.encode(ex.text);
    t.ids.insert(t.ids.end(), text.begin(), text.end());
    if (add_eos && tok.eos_id() >= 0) t.ids.push_back(tok.eos_id());
    if (max_len > 0 && static_cast<int64_t>(t.ids.size()) > max_len) {
      t.ids.resize(static_cast<size_t>(max_len));
    }
    t.prompt_len = std::min<int64_t>(t.prompt_len, static_cast<int64_t>(t.ids.size()));
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<Batch> classification_batches(const std::vector<TokenizedExample>& data,
                                          int64_t batch_size, int64_t pad_id, uint64_t seed,
                                          int64_t epoch, bool shuffle) {
  check_batch_args("classification_batches", data.size(), batch_size);
  return padded_batches(data, batch_size, pad_id, seed, epoch, shuffle, Targets::Class);
}

std::vector<Batch> sft_batches(const std::vector<TokenizedExample>& data, int64_t batch_size,
                               int64_t pad_id, uint64_t seed, int64_t epoch, bool shuffle) {
  check_batch_args("sft_batches", data.size(), batch_size);
  return padded_batches(data, batch_size, pad_id, seed, epoch, shuffle, Targets::Response);
}

std::vector<Batch> packed_lm_batches(const std::vector<TokenizedExample>& data, int64_t batch_size,
                                     int64_t seq_len, uint64_t seed, int64_t epoch, bool shuffle) {
  check_batch_args("packed_lm_batches", data.size(), batch_size);
  if (seq_len < 1) {
    throw std::invalid_argument("packed_lm_batches: seq_len: expected >= 1, got " +
                                std::to_string(seq_len));
  }
  // The examples in this epoch's order, end to end.
  const uint64_t epoch_seed = mix_seed(seed, static_cast<uint64_t>(epoch));
  std::vector<int64_t> stream;
  for (int64_t i :
       permutation(static_cast<int64_t>(data.size()), mix_seed(epoch_seed, 0), shuffle)) {
    stream.insert(stream.end(), data[i].ids.begin(), data[i].ids.end());
  }
  // Row r holds stream[r * seq_len, r * seq_len + seq_len]: consecutive rows share one token, so
  // every next-token pair of the stream is a target exactly once; the tail shorter than a row
  // is dropped.
  const auto n = static_cast<int64_t>(stream.size());
  const int64_t rows = (n - 1) / seq_len;
  if (rows < 1) {
    throw std::invalid_argument(
        "packed_lm_batches: " + std::to_string(n) +
        " tokens are fewer than seq_len + 1 = " + std::to_string(seq_len + 1));
  }
  const auto row_order = permutation(rows, mix_seed(epoch_seed, 1), shuffle);
  std::vector<Batch> batches;
  for (int64_t begin = 0; begin < rows; begin += batch_size) {
    const int64_t B = std::min(batch_size, rows - begin);
    Batch batch;
    batch.input_ids = at::empty({B, seq_len}, at::kLong);      // (B, T)
    batch.labels = at::empty({B, seq_len}, at::kLong);         // (B, T)
    batch.attention_mask = at::ones({B, seq_len}, at::kLong);  // (B, T)
    int64_t* ids = batch.input_ids.data_ptr<int64_t>();
    int64_t* labels = batch.labels.data_ptr<int64_t>();
    for (int64_t b = 0; b < B; ++b) {
      const int64_t* row = stream.data() + row_order[begin + b] * seq_len;
      std::copy(row, row + seq_len, ids + b * seq_len);
      std::copy(row + 1, row + seq_len + 1, labels + b * seq_len);
    }
    batch.num_tokens = B * seq_len;
    batches.push_back(std::move(batch));
  }
  return batches;
}

Batch slice_rows(const Batch& batch, int64_t begin, int64_t end) {
  Batch out;
  out.input_ids = batch.input_ids.slice(0, begin, end);
  out.attention_mask = batch.attention_mask.slice(0, begin, end);
  out.labels = batch.labels.slice(0, begin, end);
  if (batch.token_type_ids.defined()) out.token_type_ids = batch.token_type_ids.slice(0, begin, end);
  out.num_tokens = out.attention_mask.sum().item<int64_t>();
  return out;
}

std::pair<int64_t, int64_t> shard_range(int64_t rows, int rank, int world) {
  return {rows * rank / world, rows * (rank + 1) / world};
}

}  // namespace lorascope
