// WordPiece against hand-worked examples of tokenizers' algorithm (BertNormalizer,
// BertPreTokenizer, greedy longest-match-first pieces, added tokens, post-processor,
// truncation) on a tiny vocabulary built here; tests/golden/tokenizers/ checks the same code
// token for token against files and ids made by `tokenizers` itself.
#include <gtest/gtest.h>

#include <cstdlib>
#include <sys/wait.h>

#include "data/tokenizer.h"
#include "data/wordpiece_tokenizer.h"
#include "data_fixtures.h"
#include "error_of.h"
#include "tokenizer_golden.h"

namespace lorascope {
namespace {

using nlohmann::json;

const std::vector<std::string> kVocab = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "the", "cafe", ".", ",",
    "a",     "##a",   "[",     "]",     "mask",   "i",  "##\xCC\x87", "\xE4\xB8\xAD", "naive", "##s", "aff", "x"};

json tiny_json() {
  json vocab = json::object();
  for (size_t i = 0; i < kVocab.size(); ++i) vocab[kVocab[i]] = i;
  json added = json::array();
  for (int i = 0; i < 5; ++i) {
    added.push_back({{"id", i}, {"content", kVocab[static_cast<size_t>(i)]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  return {{"version", "1.0"},
          {"added_tokens", added},
          {"normalizer", {{"type", "BertNormalizer"}, {"clean_text", true}, {"handle_chinese_chars", true},
                          {"strip_accents", nullptr}, {"lowercase", true}}},
          {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
          {"post_processor", {{"type", "BertProcessing"}, {"sep", {"[SEP]", 3}}, {"cls", {"[CLS]", 2}}}},
          {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}},
          {"model", {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"continuing_subword_prefix", "##"},
                     {"max_input_chars_per_word", 100}, {"vocab", vocab}}}};
}

std::vector<int64_t> ids_of(const WordPieceTokenizer& t, const std::vector<std::string>& toks) {
  std::vector<int64_t> out;
  for (const auto& s : toks) out.push_back(t.token_id(s));
  return out;
}

using V = std::vector<std::string>;

TEST(WordPieceTokenizerTest, GreedyLongestMatchFirst) {
  const auto t = WordPieceTokenizer::from_json(tiny_json(), "t.json");
  EXPECT_EQ(t.word_pieces("unaffable"), (V{"un", "##aff", "##able"}));
  EXPECT_EQ(t.word_pieces("aff"), (V{"aff"}));
  EXPECT_EQ(t.word_pieces("aaa"), (V{"a", "##a", "##a"}));
  // No cover of the tail: the whole word is [UNK], not "un" + [UNK].
  EXPECT_EQ(t.word_pieces("unx"), (V{"[UNK]"}));
  EXPECT_EQ(t.word_pieces("able"), (V{"[UNK]"})) << "##able only continues a word";
  EXPECT_EQ(t.word_pieces(std::string(100, 'a')).size(), 100u);
  EXPECT_EQ(t.word_pieces(std::string(101, 'a')), (V{"[UNK]"})) << "max_input_chars_per_word 100";
  // Characters, not bytes, count: 100 two-byte characters are not too long.
  std::string long_cjk;
  for (int i = 0; i < 101; ++i) long_cjk += "\xC3\xA9";
  EXPECT_EQ(t.word_pieces(long_cjk), (V{"[UNK]"}));
}

TEST(WordPieceTokenizerTest, BertNormalizerAndPreTokenizer) {
  const auto t = WordPieceTokenizer::from_json(tiny_json(), "t.json");
  // Lowercase, strip accents (NFD, drop Mn), punctuation isolated, whitespace of any kind.
  EXPECT_EQ(t.encode("The CAF\xC3\x89, na\xC3\xAFve."), ids_of(t, {"the", "cafe", ",", "naive", "."}));
  EXPECT_EQ(t.encode("the\t\xE3\x80\x80" "cafe\xE2\x80\xA8x"), ids_of(t, {"the", "cafe", "x"}));
  // Control and format characters are removed, joining what they separated.
  EXPECT_EQ(t.encode("ca\x01" "fe the\xE2\x80\x8B" "cafe"), ids_of(t, {"cafe", "[UNK]"}));
  // CJK ideographs become words of their own.
  EXPECT_EQ(t.encode("x\xE4\xB8\xAD" "x"), ids_of(t, {"x", "\xE4\xB8\xAD", "x"}));
  // U+0130 decomposes to I + U+0307 (NFD) before lowercasing, so the mark goes; without
  // strip_accents it lowercases to two code points, i + U+0307, and the mark stays.
  EXPECT_EQ(t.encode("\xC4\xB0"), ids_of(t, {"i"}));
  auto keep = tiny_json();
  keep["normalizer"]["strip_accents"] = false;
  EXPECT_EQ(WordPieceTokenizer::from_json(keep, "t.json").encode("\xC4\xB0"), ids_of(t, {"i", "##\xCC\x87"}));
  EXPECT_TRUE(t.encode("").empty());
  EXPECT_TRUE(t.encode(" \t\n").empty());
}

TEST(WordPieceTokenizerTest, SpecialTokensInTextAreNotNormalized) {
  const auto t = WordPieceTokenizer::from_json(tiny_json(), "t.json");
  EXPECT_EQ(t.encode("the [MASK] cafe"), ids_of(t, {"the", "[MASK]", "cafe"}));
  EXPECT_EQ(t.encode("the[MASK]cafe"), ids_of(t, {"the", "[MASK]", "cafe"}));
  // normalized false: the lowercase form is plain text, cut at the brackets.
  EXPECT_EQ(t.encode("[mask]"), ids_of(t, {"[", "mask", "]"}));
}

TEST(WordPieceTokenizerTest, PostProcessorPairsAndTruncation) {
  TempDir dir("wordpiece_post");
  const auto tok = Tokenizer::load(dir.write("tokenizer.json", tiny_json().dump()));
  const int64_t the = tok.token_id("the"), cafe = tok.token_id("cafe"), cls = 2, sep = 3;
  EXPECT_EQ(tok.encode("the cafe"), (std::vector<int64_t>{the, cafe}));
  auto e = tok.encode_with_specials("the cafe");
  EXPECT_EQ(e.ids, (std::vector<int64_t>{cls, the, cafe, sep}));
  EXPECT_EQ(e.type_ids, (std::vector<int64_t>{0, 0, 0, 0}));
  const std::string b = "cafe cafe cafe";
  e = tok.encode_with_specials("the cafe", &b);
  EXPECT_EQ(e.ids, (std::vector<int64_t>{cls, the, cafe, sep, cafe, cafe, cafe, sep}));
  EXPECT_EQ(e.type_ids, (std::vector<int64_t>{0, 0, 0, 0, 1, 1, 1, 1}));
  // Truncation keeps the special tokens; a pair loses from the longer text first.
  e = tok.encode_with_specials("the cafe the", nullptr, 4);
  EXPECT_EQ(e.ids, (std::vector<int64_t>{cls, the, cafe, sep}));
  e = tok.encode_with_specials("the cafe", &b, 6);
  EXPECT_EQ(e.ids, (std::vector<int64_t>{cls, the, sep, cafe, cafe, sep})) << "3 left: 1 + 2";
  e = tok.encode_with_specials("the", &b, 7);
  EXPECT_EQ(e.ids, (std::vector<int64_t>{cls, the, sep, cafe, cafe, cafe, sep})) << "fits";
  e = tok.encode_with_specials("the", &b, 6);
  EXPECT_EQ(e.ids, (std::vector<int64_t>{cls, the, sep, cafe, cafe, sep})) << "the short text keeps its length";
  EXPECT_NE(error_of([&] { tok.encode_with_specials("the", &b, 2); }).find("max_len 2 leaves no room for the 3 special"),
            std::string::npos);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.unk_id(), 1);
  EXPECT_EQ(tok.bos_id(), -1) << "[CLS] is the post-processor's";
  EXPECT_EQ(tok.vocab_size(), static_cast<int64_t>(kVocab.size()));
  EXPECT_EQ(tok.decode(tok.encode_with_specials("the unaffable cafe, x.").ids), "the unaffable cafe, x.");
}

TEST(WordPieceTokenizerTest, VocabTxtHasBertDefaults) {
  TempDir dir("wordpiece_vocab");
  std::string text;
  for (const auto& v : kVocab) text += v + (v == "the" ? " \r\n" : "\n");  // trailing whitespace is trimmed
  const auto from_txt = Tokenizer::load(dir.write("vocab.txt", text));
  const auto from_json = Tokenizer::load(dir.write("tokenizer.json", tiny_json().dump()));
  for (const std::string s : {"The CAF\xC3\x89, unaffable [MASK] x\xE4\xB8\xAD", "[mask]", ""}) {
    EXPECT_EQ(from_txt.encode(s), from_json.encode(s)) << s;
    EXPECT_EQ(from_txt.encode_with_specials(s).ids, from_json.encode_with_specials(s).ids) << s;
  }
  EXPECT_EQ(from_txt.token_id("the"), 8);
}

TEST(WordPieceTokenizerTest, BadFilesNameTheKey) {
  const auto base = tiny_json();
  const std::vector<std::pair<std::function<void(json&)>, std::string>> cases = {
      {[](json& j) { j["model"]["type"] = "WordLevel"; }, "t.json: model.type: expected \"WordPiece\""},
      {[](json& j) { j["model"]["vocab"]["x"] = -1; }, "t.json: model.vocab: \"x\": expected a non-negative id"},
      {[](json& j) { j["model"]["vocab"].erase("[UNK]"); }, "t.json: model.unk_token: \"[UNK]\" is not in the vocabulary"},
      {[](json& j) { j["model"]["max_input_chars_per_word"] = -5; }, "model.max_input_chars_per_word: expected a non-negative"},
      {[](json& j) { j["normalizer"] = {{"type", "NFKC"}}; }, "t.json: normalizer: unsupported normalizer \"NFKC\""},
      {[](json& j) { j["normalizer"]["lowercase"] = "yes"; }, "t.json: normalizer.lowercase: expected true or false"},
      {[](json& j) { j["pre_tokenizer"] = {{"type", "UnicodeScripts"}}; }, "unsupported pre-tokenizer \"UnicodeScripts\""},
      {[](json& j) { j["post_processor"] = {{"type", "BertProcessing"}, {"sep", 3}}; }, "post_processor.sep: expected [\"token\", id]"},
      {[](json& j) { j["added_tokens"][0]["id"] = "zero"; }, "t.json: added_tokens[0]: expected {\"id\""},
      {[](json& j) { j["model"]["vocab"] = json::array(); }, "t.json: model.vocab: expected an object"},
  };
  for (const auto& [patch, message] : cases) {
    auto j = base;
    patch(j);
    const auto e = error_of([&] { WordPieceTokenizer::from_json(j, "t.json"); });
    EXPECT_NE(e.find(message), std::string::npos) << "expected \"" << message << "\", got \"" << e << "\"";
  }
  TempDir dir("wordpiece_bad");
  EXPECT_NE(error_of([&] { Tokenizer::load(dir.write("vocab.txt", "a\nb\n")); }).find("vocab.txt: model.unk_token: \"[UNK]\""),
            std::string::npos);
  EXPECT_NE(error_of([&] { Tokenizer::load(dir.write("v2.txt", "[UNK]\n[CLS]\n")); }).find("v2.txt: [SEP] is not in the vocabulary"),
            std::string::npos);
  EXPECT_NE(error_of([&] { Tokenizer::load((dir.path / "missing.txt").string()); }).find("missing.txt: tokenizer model not found"),
            std::string::npos);
}

// `lorascope hf tokenize --special-tokens --pairs --max-len`, the command the interop check runs.
TEST(WordPieceTokenizerTest, HfTokenizeCommandWithPairsAndTruncation) {
  TempDir dir("wordpiece_cli");
  const auto tok = dir.write("tokenizer.json", tiny_json().dump());
  const auto lines = dir.write("lines.txt", "the cafe\tcafe cafe cafe\nthe\n");
  const auto run = [&](const std::string& args) {
    const std::string cmd = std::string(LORASCOPE_BINARY) + " hf tokenize --tokenizer " + tok + " --in " + lines +
                            " --out " + (dir.path / "out.jsonl").string() + " " + args + " >/dev/null 2>" +
                            (dir.path / "err.txt").string();
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  ASSERT_EQ(run("--special-tokens --pairs --max-len 6"), 0) << read_all(dir.path / "err.txt");
  EXPECT_EQ(read_all(dir.path / "out.jsonl"),
            "{\"ids\":[2,8,3,9,9,3],\"type_ids\":[0,0,0,1,1,1]}\n{\"ids\":[2,8,3],\"type_ids\":[0,0,0]}\n");
  ASSERT_EQ(run(""), 0);
  EXPECT_EQ(read_all(dir.path / "out.jsonl"), "[8,9,9,9,9]\n[8]\n") << "the tab is whitespace: one text";
  EXPECT_EQ(run("--special-tokens --pairs --max-len 2"), 2);
  EXPECT_NE(read_all(dir.path / "err.txt").find("tokenizer.json: max_len 2 leaves no room for the 3 special tokens"),
            std::string::npos);
}

// tokenizer.json and vocab.txt of a vocabulary trained by `tokenizers` on Brown, against the ids
// it gave on real and hard text, pairs and truncation (tests/golden/make_tokenizers.py).
TEST(WordPieceTokenizerTest, MatchesTokenizersOnGoldenCases) {
  EXPECT_EQ(check_golden_tokenizer_cases("wordpiece"), 106u);
}

}  // namespace
}  // namespace lorascope
