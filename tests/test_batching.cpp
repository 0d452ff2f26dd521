// Token batches: padding and masks, next-token labels with -100 where no loss, packing without
// padding, and epochs that are reproducible from (seed, epoch).
#include <gtest/gtest.h>

#include <algorithm>

#include "data/batching.h"
#include "tests/data_fixtures.h"

namespace lorascope {
namespace {

TokenizedExample ex(std::vector<int64_t> ids, int64_t label = -1, int64_t prompt_len = 0) {
  return {std::move(ids), label, prompt_len};
}

std::vector<int64_t> row(const at::Tensor& t, int64_t i) {
  auto r = t[i].contiguous();
  return {r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel()};
}

bool same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].input_ids.equal(b[i].input_ids) || !a[i].labels.equal(b[i].labels) ||
        !a[i].attention_mask.equal(b[i].attention_mask)) {
      return false;
    }
  }
  return true;
}

// 20 examples of lengths 2..6, first token = 100 + index, labels alternating.
std::vector<TokenizedExample> numbered(int n = 20) {
  std::vector<TokenizedExample> data;
  for (int i = 0; i < n; ++i) {
    std::vector<int64_t> ids = {100 + i};
    for (int k = 0; k < 1 + i % 5; ++k) ids.push_back(4 + k);
    data.push_back(ex(ids, i % 2));
  }
  return data;
}

TEST(BatchTest, ClassificationPadsOnTheRightAndMasksPadding) {
  const std::vector<TokenizedExample> data = {ex({2, 7, 8}, 1), ex({2, 9, 10, 11, 12}, 0),
                                              ex({2, 5}, 1)};
  const auto batches = classification_batches(data, 2, 0, 0, 0, /*shuffle=*/false);
  ASSERT_EQ(batches.size(), 2u);
  const Batch& b = batches[0];
  EXPECT_EQ(b.input_ids.sizes(), (at::IntArrayRef{2, 5}));
  EXPECT_EQ(b.attention_mask.sizes(), (at::IntArrayRef{2, 5}));
  EXPECT_EQ(b.labels.sizes(), (at::IntArrayRef{2}));
  EXPECT_EQ(b.input_ids.scalar_type(), at::kLong);
  EXPECT_EQ(row(b.input_ids, 0), (std::vector<int64_t>{2, 7, 8, 0, 0}));
  EXPECT_EQ(row(b.attention_mask, 0), (std::vector<int64_t>{1, 1, 1, 0, 0}));
  EXPECT_EQ(row(b.attention_mask, 1), (std::vector<int64_t>{1, 1, 1, 1, 1}));
  EXPECT_EQ(row(b.labels.unsqueeze(0), 0), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(b.num_tokens, 8);
  EXPECT_EQ(batches[1].input_ids.sizes(), (at::IntArrayRef{1, 2}));  // last batch smaller, own T
}

TEST(BatchTest, SftLabelsAreNextTokensOfTheResponseOnly) {
  // bos, prompt 10 11, response 12 13, eos: position t predicts ids[t + 1] when that is a
  // response token.
  const std::vector<TokenizedExample> data = {ex({2, 10, 11, 12, 13, 3}, -1, 3),
                                              ex({2, 20, 21}, -1, 0)};
  const auto batches = sft_batches(data, 4, 0, 0, 0, false);
  ASSERT_EQ(batches.size(), 1u);
  const Batch& b = batches[0];
  EXPECT_EQ(b.labels.sizes(), (at::IntArrayRef{2, 6}));
  EXPECT_EQ(row(b.labels, 0), (std::vector<int64_t>{-100, -100, 12, 13, 3, -100}));
  // No prompt: every next token after bos is a target; padding never is.
  EXPECT_EQ(row(b.labels, 1), (std::vector<int64_t>{20, 21, -100, -100, -100, -100}));
  EXPECT_EQ(row(b.input_ids, 1), (std::vector<int64_t>{2, 20, 21, 0, 0, 0}));
  EXPECT_EQ(b.num_tokens, 9);
}

TEST(BatchTest, PackedRowsHaveNoPaddingAndShiftedLabels) {
  const auto data = numbered();
  int64_t total = 0;
  for (const auto& e : data) total += static_cast<int64_t>(e.ids.size());  // 80
  const int64_t T = 8;
  const auto batches = packed_lm_batches(data, 3, T, 1, 0, /*shuffle=*/false);
  int64_t rows = 0;
  std::vector<int64_t> stream;
  for (const auto& b : batches) {
    EXPECT_EQ(b.input_ids.size(1), T);
    EXPECT_TRUE(b.attention_mask.eq(1).all().item<bool>());
    EXPECT_TRUE(b.input_ids.ne(0).all().item<bool>());  // pad id 0 never appears
    EXPECT_TRUE(b.labels.ne(-100).all().item<bool>());
    // labels[t] = input_ids[t + 1] inside a row; the last label is the next row's first token.
    EXPECT_TRUE(b.labels.narrow(1, 0, T - 1).equal(b.input_ids.narrow(1, 1, T - 1)));
    EXPECT_EQ(b.num_tokens, b.input_ids.numel());
    for (int64_t i = 0; i < b.input_ids.size(0); ++i) {
      const auto r = row(b.input_ids, i);
      stream.insert(stream.end(), r.begin(), r.end());
    }
    rows += b.input_ids.size(0);
  }
  EXPECT_EQ(rows, (total - 1) / T);
  // In order, the rows are the concatenated examples.
  std::vector<int64_t> expected;
  for (const auto& e : data) expected.insert(expected.end(), e.ids.begin(), e.ids.end());
  expected.resize(stream.size());
  EXPECT_EQ(stream, expected);
  EXPECT_EQ(row(batches[0].labels, 0).back(), row(batches[0].input_ids, 1).front());
}

TEST(BatchTest, SameSeedAndEpochSameBatchesOtherEpochOtherOrder) {
  const auto data = numbered();
  EXPECT_TRUE(same_batches(classification_batches(data, 4, 0, 3, 0),
                           classification_batches(data, 4, 0, 3, 0)));
  EXPECT_FALSE(same_batches(classification_batches(data, 4, 0, 3, 0),
                            classification_batches(data, 4, 0, 3, 1)));
  EXPECT_FALSE(same_batches(classification_batches(data, 4, 0, 3, 0),
                            classification_batches(data, 4, 0, 4, 0)));
  EXPECT_TRUE(same_batches(sft_batches(data, 4, 0, 3, 2), sft_batches(data, 4, 0, 3, 2)));
  EXPECT_FALSE(same_batches(sft_batches(data, 4, 0, 3, 2), sft_batches(data, 4, 0, 3, 5)));
  EXPECT_TRUE(
      same_batches(packed_lm_batches(data, 2, 6, 3, 1), packed_lm_batches(data, 2, 6, 3, 1)));
  EXPECT_FALSE(
      same_batches(packed_lm_batches(data, 2, 6, 3, 1), packed_lm_batches(data, 2, 6, 3, 2)));
  // A shuffled epoch still holds every example once.
  std::vector<int64_t> firsts;
  for (const auto& b : classification_batches(data, 4, 0, 3, 7)) {
    for (int64_t i = 0; i < b.input_ids.size(0); ++i) firsts.push_back(row(b.input_ids, i)[0]);
  }
  std::sort(firsts.begin(), firsts.end());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(firsts[i], 100 + i);
}

TEST(BatchTest, BadArgumentsThrow) {
  const auto data = numbered(3);
  EXPECT_THROW(classification_batches(data, 0, 0, 0, 0), std::invalid_argument);
  EXPECT_THROW(classification_batches({}, 2, 0, 0, 0), std::invalid_argument);
  EXPECT_THROW(classification_batches({ex({2, 5})}, 2, 0, 0, 0),
               std::invalid_argument);                                         // no label
  EXPECT_THROW(packed_lm_batches(data, 2, 100, 0, 0), std::invalid_argument);  // too few tokens
  EXPECT_THROW(packed_lm_batches(data, 2, 0, 0, 0), std::invalid_argument);
}

TEST(BatchTest, TokenizeAddsBosEosAndMarksThePrompt) {
  TempDir dir("batch_tok");
  const auto tok = Tokenizer::train(synthetic_corpus(300, 1), 80, (dir.path / "t.model").string());
  TextDataset sft{"alpaca", {{"sat on mat", -1, "the cat"}}, {}};
  const auto t = tokenize(sft, tok, 0, /*add_eos=*/true);
  ASSERT_EQ(t.size(), 1u);
  const auto prompt = tok.encode("the cat"), response = tok.encode("sat on mat");
  EXPECT_EQ(t[0].ids.front(), tok.bos_id());
  EXPECT_EQ(t[0].ids.back(), tok.eos_id());
  EXPECT_EQ(t[0].prompt_len, 1 + static_cast<int64_t>(prompt.size()));
  EXPECT_EQ(t[0].ids.size(), 2 + prompt.size() + response.size());
  const auto cut = tokenize(sft, tok, 3, true);
  EXPECT_EQ(cut[0].ids.size(), 3u);
  EXPECT_LE(cut[0].prompt_len, 3);

  TextDataset cls{"glue_tsv", {{"the dog ran", 1, ""}}, {"0", "1"}};
  const auto c = tokenize(cls, tok, 64, /*add_eos=*/false);
  EXPECT_EQ(c[0].label, 1);
  EXPECT_EQ(c[0].prompt_len, 0);
  EXPECT_EQ(c[0].ids.size(), 1 + tok.encode("the dog ran").size());
  EXPECT_NE(c[0].ids.back(), tok.eos_id());
}

}  // namespace
}  // namespace lorascope
