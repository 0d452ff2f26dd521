// Token batches: padding and masks, next-token labels with -100 where no loss, packing without
// padding, and epochs that are reproducible from (seed, epoch).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "data/batching.h"
#include "tests/data_fixtures.h"
#include "tests/tokenizer_golden.h"

namespace lorascope {
namespace {

TokenizedExample ex(std::vector<int64_t> ids, int64_t label = -1, int64_t prompt_len = 0) {
  return {std::move(ids), label, prompt_len, {}};
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

// WordPiece (BERT, MiniLM): the trainer's examples are the post-processor's [CLS] text [SEP] (and
// [CLS] prompt [SEP] text [SEP] with type ids 0 / 1), cut so that [SEP] survives truncation,
// exactly the ids and type ids `tokenizers` gave for the golden cases.
TEST(BatchTest, WordPieceExamplesAreWhatTokenizersEncodes) {
  const auto j = nlohmann::json::parse(read_all(golden_tokenizers_dir() + "cases.json"));
  const auto& texts = j.at("texts");
  size_t singles = 0, pairs = 0, truncated = 0;
  std::map<std::string, Tokenizer> loaded;
  for (const auto& c : j.at("cases")) {
    const std::string file = c.at("file");
    if (file.rfind("wordpiece", 0) != 0 || !c.at("special").get<bool>()) continue;
    auto it = loaded.find(file);
    if (it == loaded.end()) it = loaded.emplace(file, Tokenizer::load(golden_tokenizers_dir() + file)).first;
    const Tokenizer& tok = it->second;
    ASSERT_TRUE(tok.specials_from_post_processor());
    const std::string text = texts.at(c.at("text").get<size_t>());
    const bool pair = !c.at("pair").is_null();
    if (pair && text.empty()) continue;  // an empty prompt means "no prompt" in a dataset
    // A pair is (prompt, text): the dataset's prompt is the first segment.
    TextExample ex{pair ? texts.at(c.at("pair").get<size_t>()).get<std::string>() : text, 1, pair ? text : ""};
    const TextDataset data{"glue_tsv", {ex}, {"0", "1"}};
    const auto t = tokenize(data, tok, c.at("max_len").get<int64_t>(), /*add_eos=*/false);
    ASSERT_EQ(t.size(), 1u);
    const auto want_ids = c.at("ids").get<std::vector<int64_t>>();
    const auto want_types = c.at("type_ids").get<std::vector<int64_t>>();
    EXPECT_EQ(t[0].ids, want_ids) << c.dump();
    EXPECT_EQ(t[0].type_ids, want_types) << c.dump();
    EXPECT_EQ(t[0].label, 1);
    const auto first_b = std::find(want_types.begin(), want_types.end(), 1) - want_types.begin();
    EXPECT_EQ(t[0].prompt_len, pair ? first_b : 0) << c.dump();
    (pair ? pairs : singles)++;
    truncated += c.at("max_len").get<int64_t>() > 0 ? 1 : 0;
  }
  EXPECT_GE(singles, 3u);
  EXPECT_GE(pairs, 1u);
  EXPECT_GE(truncated, 1u);
}

// The batch of the golden MiniLM sentences is the right-padded batch transformers' tokenizer
// gave (tests/golden/minilm/ids.json), with token type ids 0 everywhere.
TEST(BatchTest, WordPieceBatchEqualsTheTokenizersPaddedBatch) {
  const std::string dir = std::string(LORASCOPE_SOURCE_DIR) + "/tests/golden/minilm/";
  const auto j = nlohmann::json::parse(read_all(dir + "ids.json"));
  const auto tok = Tokenizer::load(dir + "model/tokenizer.json");
  TextDataset data{"glue_tsv", {}, {"0", "1"}};
  for (const auto& s : j.at("sentences")) data.examples.push_back({s.get<std::string>(), 0, ""});
  const auto batches = classification_batches(tokenize(data, tok, 128, false), 64, tok.pad_id(), 0, 0, false);
  ASSERT_EQ(batches.size(), 1u);
  const Batch& b = batches[0];
  const auto B = static_cast<int64_t>(data.examples.size());
  for (int64_t i = 0; i < B; ++i) {
    EXPECT_EQ(row(b.input_ids, i), j.at("input_ids").at(i).get<std::vector<int64_t>>()) << i;
    EXPECT_EQ(row(b.attention_mask, i), j.at("attention_mask").at(i).get<std::vector<int64_t>>()) << i;
  }
  ASSERT_TRUE(b.token_type_ids.defined());
  EXPECT_EQ(b.token_type_ids.sizes(), b.input_ids.sizes());
  EXPECT_EQ(b.token_type_ids.abs().sum().item<int64_t>(), 0);
  // Truncated to 8: [CLS] + 6 pieces + [SEP] in every row of the longer sentences.
  const auto cut = classification_batches(tokenize(data, tok, 8, false), 64, tok.pad_id(), 0, 0, false)[0];
  EXPECT_EQ(cut.input_ids.size(1), 8);
  const int64_t cls = tok.token_id("[CLS]"), sep = tok.token_id("[SEP]");
  for (int64_t i = 0; i < B; ++i) {
    const auto r = row(cut.input_ids, i);
    const int64_t len = cut.attention_mask[i].sum().item<int64_t>();
    EXPECT_EQ(r.front(), cls);
    EXPECT_EQ(r[static_cast<size_t>(len - 1)], sep) << "row " << i;
  }
}

// Pairs in a padded batch: type ids 0 over [CLS] A [SEP], 1 over B [SEP], 0 on padding; a
// data-parallel shard keeps its rows' type ids.
TEST(BatchTest, PairTypeIdsArePaddedWithZerosAndSliced) {
  const std::vector<TokenizedExample> data = {{{2, 7, 3, 8, 9, 3}, 1, 3, {0, 0, 0, 1, 1, 1}},
                                              {{2, 5, 3, 6, 3}, 0, 3, {0, 0, 0, 1, 1}},
                                              {{2, 5, 3}, 0, 0, {0, 0, 0}}};
  const auto b = classification_batches(data, 3, 0, 0, 0, false)[0];
  ASSERT_TRUE(b.token_type_ids.defined());
  EXPECT_EQ(row(b.token_type_ids, 0), (std::vector<int64_t>{0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(row(b.token_type_ids, 1), (std::vector<int64_t>{0, 0, 0, 1, 1, 0}));
  EXPECT_EQ(row(b.token_type_ids, 2), (std::vector<int64_t>{0, 0, 0, 0, 0, 0}));
  const auto shard = slice_rows(b, 1, 3);
  EXPECT_TRUE(shard.token_type_ids.equal(b.token_type_ids.slice(0, 1, 3)));
  // Examples without type ids (sentencepiece, BPE): no tensor at all.
  EXPECT_FALSE(classification_batches(numbered(), 4, 0, 0, 0, false)[0].token_type_ids.defined());
  auto bad = data;
  bad[0].type_ids.pop_back();
  EXPECT_THROW(classification_batches(bad, 3, 0, 0, 0, false), std::invalid_argument);
}

}  // namespace
}  // namespace lorascope
