// Byte-level BPE against hand-worked examples of the GPT-2 algorithm on the tiny fixtures of
// tests/fixtures/make_bpe_fixtures.py (merge ranks: 0 "h e", 1 "l l", 2 "he ll", 3 "hell o",
// 4 "Ġ w", 5 "o r", 6 "Ġw or", 7 "l d", 8 "Ġwor ld", 9 "Ġ h", 10 "Ġh e"; byte b has id b).
#include <gtest/gtest.h>

#include <set>

#include "error_of.h"
#include "data/bpe_tokenizer.h"
#include "data/tokenizer.h"
#include "data_fixtures.h"
#include "tokenizer_golden.h"

namespace lorascope {
namespace {

using nlohmann::json;

const std::string kFixtures = std::string(LORASCOPE_SOURCE_DIR) + "/tests/fixtures/";

std::vector<int64_t> ids_of(const BpeTokenizer& t, const std::vector<std::string>& toks) {
  std::vector<int64_t> out;
  for (const auto& s : toks) out.push_back(t.token_id(s));
  return out;
}

TEST(BpeTokenizerTest, BytesToUnicodeIsGpt2sMap) {
  const auto& m = byte_to_unicode();
  EXPECT_EQ(m['A'], "A");
  EXPECT_EQ(m[' '], "\u0120");   // Ġ = 256 + 32: the 33rd unprintable byte
  EXPECT_EQ(m['\n'], "\u010A");  // Ċ
  EXPECT_EQ(m[0], "\u0100");
  EXPECT_EQ(m[0xAD], "\u0143");  // soft hyphen, the one gap in the Latin-1 range: 256 + 67
  EXPECT_EQ(m[0xC3], "\u00C3");
  std::set<std::string> distinct(m.begin(), m.end());
  EXPECT_EQ(distinct.size(), 256u);
}

TEST(BpeTokenizerTest, Gpt2MergesByLowestRankFirst) {
  const auto t = BpeTokenizer::load(kFixtures + "tiny_gpt2_tokenizer.json");
  EXPECT_EQ(t.vocab_size(), 271);
  // hello: h e l l o -> he l l o (0) -> he ll o (1) -> hell o (2) -> hello (3)
  // " world": Ġ w o r l d -> Ġw (4) -> or (5) -> Ġwor (6) -> ld (7) -> Ġworld (8)
  EXPECT_EQ(t.encode("hello world"), ids_of(t, {"hello", "\u0120world"}));
  // " hello": "h e" (rank 0) merges before "Ġ h" (rank 9), so Ġ stays alone; left-to-right
  // greedy merging would have given Ġh e ...
  EXPECT_EQ(t.encode(" hello"), (std::vector<int64_t>{0x20 /* Ġ is byte 32 */, t.token_id("hello")}));
  // held: he l d -> (he, l) has no merge, (l, d) does -> he ld
  EXPECT_EQ(t.encode("held"), ids_of(t, {"he", "ld"}));
  // é = C3 A9 -> Ã ©, two byte symbols; a newline is byte 10.
  EXPECT_EQ(t.encode("\xC3\xA9\n"), (std::vector<int64_t>{0xC3, 0xA9, 10}));
  // No ignore_merges here: a word in no merge stays in bytes.
  EXPECT_EQ(t.encode("xyz"), (std::vector<int64_t>{'x', 'y', 'z'}));
  // Added tokens are cut out first, anywhere in the text.
  EXPECT_EQ(t.encode("hello<|endoftext|> world</s>"),
            ids_of(t, {"hello", "<|endoftext|>", "\u0120world", "</s>"}));
  EXPECT_EQ(t.bos_id(), t.token_id("<s>"));
  EXPECT_EQ(t.eos_id(), t.token_id("</s>"));
  EXPECT_EQ(t.pad_id(), t.token_id("<pad>"));
  EXPECT_EQ(t.unk_id(), -1);
}

TEST(BpeTokenizerTest, Gpt2RegexPiecesWithUnicodeClasses) {
  const auto t = BpeTokenizer::load(kFixtures + "tiny_gpt2_tokenizer.json");
  using V = std::vector<std::string>;
  EXPECT_EQ(t.pre_tokenize("don't stop"), (V{"don", "'t", " stop"}));
  // \s+(?!\S) leaves the last space to the word after it.
  EXPECT_EQ(t.pre_tokenize("a  b"), (V{"a", " ", " b"}));
  EXPECT_EQ(t.pre_tokenize("abc123 x!?"), (V{"abc", "123", " x", "!?"}));
  // \p{L} takes ï and é (an ASCII-only class would split them off).
  EXPECT_EQ(t.pre_tokenize("na\xC3\xAFve caf\xC3\xA9"), (V{"na\xC3\xAFve", " caf\xC3\xA9"}));
  EXPECT_EQ(t.pre_tokenize("x\n\n"), (V{"x", "\n\n"}));
}

TEST(BpeTokenizerTest, Llama3SplitIgnoreMergesAndListMerges) {
  const auto t = BpeTokenizer::load(kFixtures + "tiny_llama3_tokenizer.json");
  using V = std::vector<std::string>;
  EXPECT_EQ(t.pre_tokenize("12345"), (V{"123", "45"}));                  // \p{N}{1,3}
  EXPECT_EQ(t.pre_tokenize("HE'S"), (V{"HE", "'S"}));                    // (?i:'s)
  EXPECT_EQ(t.pre_tokenize("hello\n\nworld"), (V{"hello", "\n\n", "world"}));
  EXPECT_EQ(t.pre_tokenize(" (x)"), (V{" (", "x", ")"}));
  // ignore_merges: a piece in the vocabulary is one token, merges or not.
  EXPECT_EQ(t.encode("xyz"), (std::vector<int64_t>{t.token_id("xyz")}));
  EXPECT_EQ(t.encode("hello world"), ids_of(t, {"hello", "\u0120world"}));
  EXPECT_EQ(t.encode("held"), ids_of(t, {"he", "ld"}));
  EXPECT_EQ(t.bos_id(), t.token_id("<|begin_of_text|>"));
  EXPECT_EQ(t.eos_id(), t.token_id("<|end_of_text|>"));
  EXPECT_EQ(t.pad_id(), -1);
}

TEST(BpeTokenizerTest, DecodeInvertsEncodeOnAnyText) {
  for (const char* f : {"tiny_gpt2_tokenizer.json", "tiny_llama3_tokenizer.json"}) {
    const auto tok = Tokenizer::load(kFixtures + f);  // through the common tokenizer
    for (const std::string s : {"hello world", "  Tabs\tand\nnewlines\r\n", "na\xC3\xAFve caf\xC3\xA9 \xE2\x82\xAC 12345",
                                "x<|endoftext|>y", "\xF0\x9F\x98\x80 emoji", ""}) {
      EXPECT_EQ(tok.decode(tok.encode(s)), s) << f << ": " << s;
    }
  }
  const auto tok = Tokenizer::load(kFixtures + "tiny_gpt2_tokenizer.json");
  EXPECT_EQ(tok.vocab_size(), 271);
  EXPECT_EQ(tok.pad_id(), 269);
  EXPECT_NE(error_of([&] { tok.decode({271}); }).find("decode: id 271 is not in the vocabulary"), std::string::npos);
  const auto l3 = Tokenizer::load(kFixtures + "tiny_llama3_tokenizer.json");
  EXPECT_EQ(l3.pad_id(), l3.eos_id()) << "no pad or unk: padding with eos (masked)";
}

TEST(BpeTokenizerTest, AddPrefixSpaceAsRoberta) {
  auto j = json::parse(read_all(kFixtures + "tiny_gpt2_tokenizer.json"));
  j["pre_tokenizer"]["add_prefix_space"] = true;
  const auto t = BpeTokenizer::from_json(j, "t.json");
  EXPECT_EQ(t.encode("world"), ids_of(t, {"\u0120world"}));
  EXPECT_EQ(t.encode(" world"), ids_of(t, {"\u0120world"})) << "no second space";
}

TEST(BpeTokenizerTest, BadTokenizerJsonNamesTheKey) {
  const auto base = json::parse(read_all(kFixtures + "tiny_gpt2_tokenizer.json"));
  const std::vector<std::pair<std::function<void(json&)>, std::string>> cases = {
      {[](json& j) { j["model"]["type"] = "Unigram"; }, "t.json: model.type: expected \"BPE\""},
      {[](json& j) { j["model"]["merges"][2] = "he"; }, "t.json: model.merges[2]: expected \"left right\""},
      {[](json& j) { j["model"]["merges"][0] = json::array({"q", "z"}); }, "model.merges[0]: the merged token \"qz\" is not in model.vocab"},
      {[](json& j) { j["model"]["vocab"]["h"] = -3; }, "model.vocab: \"h\": expected a non-negative id"},
      {[](json& j) { j["normalizer"] = {{"type", "NFKC"}}; }, "t.json: normalizer: unsupported normalizer \"NFKC\""},
      {[](json& j) { j["pre_tokenizer"] = {{"type", "UnicodeScripts"}}; }, "unsupported pre-tokenizer \"UnicodeScripts\""},
      {[](json& j) { j["model"]["unk_token"] = "<nope>"; }, "t.json: model.unk_token: expected a token of model.vocab"},
      {[](json& j) { j["model"]["byte_fallback"] = "yes"; }, "t.json: model.byte_fallback: expected true or false"},
      {[](json& j) {
         j["pre_tokenizer"] = {{"type", "Sequence"},
                               {"pretokenizers", {{{"type", "Split"}, {"pattern", {{"Regex", "(["}}}, {"behavior", "Isolated"},
                                                   {"invert", false}}}}};
       },
       "t.json: pre_tokenizer[0].pattern: regex \"([\" does not compile"},
      {[](json& j) { j.erase("model"); }, "t.json: model: missing"},
  };
  for (const auto& [patch, message] : cases) {
    auto j = base;
    patch(j);
    const auto e = error_of([&] { BpeTokenizer::from_json(j, "t.json"); });
    EXPECT_NE(e.find(message), std::string::npos) << "expected \"" << message << "\", got \"" << e << "\"";
  }
  TempDir dir("bpe_bad");
  EXPECT_NE(error_of([&] { Tokenizer::load(dir.write("tokenizer.json", "{")); }).find("tokenizer.json: not valid JSON"),
            std::string::npos);
}


// RoBERTa's <mask> has lstrip: it takes the space before it, so "The <mask> sat." has no lone
// space token; rstrip takes the spaces after; single_word matches only between non-word
// characters (tokenizers' AddedVocabulary).
TEST(BpeTokenizerTest, AddedTokenFlagsStripAndSingleWord) {
  auto j = json::parse(read_all(kFixtures + "tiny_gpt2_tokenizer.json"));
  j["added_tokens"].push_back({{"id", 271}, {"content", "<mask>"}, {"single_word", false}, {"lstrip", true},
                               {"rstrip", false}, {"normalized", false}, {"special", true}});
  j["added_tokens"].push_back({{"id", 272}, {"content", "[r]"}, {"single_word", false}, {"lstrip", false},
                               {"rstrip", true}, {"normalized", false}, {"special", true}});
  j["added_tokens"].push_back({{"id", 273}, {"content", "xy"}, {"single_word", true}, {"lstrip", false},
                               {"rstrip", false}, {"normalized", true}, {"special", false}});
  const auto t = BpeTokenizer::from_json(j, "t.json");
  EXPECT_EQ(t.encode("hello <mask> world"), ids_of(t, {"hello", "<mask>", "\u0120world"}));
  EXPECT_EQ(t.encode("hello \t <mask>"), ids_of(t, {"hello", "<mask>"})) << "all the whitespace before it";
  EXPECT_EQ(t.encode("hello<mask>"), ids_of(t, {"hello", "<mask>"}));
  EXPECT_EQ(t.encode("hello [r]   world"), ids_of(t, {"hello", "\u0120", "[r]", "w", "or", "ld"}));
  // "xy" between non-word characters is the added token (273); inside "xyz" it is not.
  EXPECT_EQ(t.encode("xyz xy,xy"), (std::vector<int64_t>{'x', 'y', 'z', ' ', 273, ',', 273}));
}

// Characters new in Unicode 15 and 16 are letters and numbers to the pre-tokenizer regex, as in
// tokenizers (Debian's PCRE2 10.42 alone knows Unicode 14 and would split them differently).
TEST(BpeTokenizerTest, PreTokenizerKnowsUnicode16) {
  const auto gpt2 = BpeTokenizer::load(kFixtures + "tiny_gpt2_tokenizer.json");
  using V = std::vector<std::string>;
  const std::string kawi_letter = "\xF0\x91\xBC\x84", kawi_zero = "\xF0\x91\xBD\x90", garay_zero = "\xF0\x90\xB5\x80";
  EXPECT_EQ(gpt2.pre_tokenize("x" + kawi_letter + "y"), (V{"x" + kawi_letter + "y"})) << "U+11F04 is \\p{L}";
  EXPECT_EQ(gpt2.pre_tokenize("1" + kawi_zero + "!"), (V{"1" + kawi_zero, "!"})) << "U+11F50 is \\p{N}";
  EXPECT_EQ(gpt2.pre_tokenize(" " + garay_zero + garay_zero + "?"), (V{" " + garay_zero + garay_zero, "?"}))
      << "U+10D40 (Unicode 16.0) is \\p{N}";
  const auto llama3 = BpeTokenizer::load(kFixtures + "tiny_llama3_tokenizer.json");
  EXPECT_EQ(llama3.pre_tokenize(kawi_zero + kawi_zero + kawi_zero + kawi_zero), (V{kawi_zero + kawi_zero + kawi_zero, kawi_zero}))
      << "\\p{N}{1,3}";
}

// Merges as tokenizers applies them: a merge listed twice has its last rank (the file's list
// becomes a map), and a long word is merged with a priority queue over adjacent pairs.
TEST(BpeTokenizerTest, MergesRepeatedMergeTakesItsLastRank) {
  auto j = json::parse(read_all(kFixtures + "tiny_gpt2_tokenizer.json"));
  j["model"]["merges"].push_back("h e");  // "h e" now ranks last (11), after "Ġ h" (9) and "Ġh e" (10)
  const auto t = BpeTokenizer::from_json(j, "t.json");
  // Ġ h e l l o: l l (1), Ġ h (9), Ġh e (10); "Ġhe ll" is no merge.
  EXPECT_EQ(t.encode(" hello"), ids_of(t, {"\u0120he", "ll", "o"}));
}

TEST(BpeTokenizerTest, LongWordMergesToTheSameTokens) {
  const auto t = BpeTokenizer::load(kFixtures + "tiny_gpt2_tokenizer.json");
  std::string word;
  for (int i = 0; i < 4000; ++i) word += "hello";  // 20,000 letters, one pre-tokenizer piece
  const auto ids = t.encode(word);
  ASSERT_EQ(ids.size(), 4000u);
  for (int64_t id : ids) ASSERT_EQ(id, t.token_id("hello"));
  std::string mixed;
  for (int i = 0; i < 2000; ++i) mixed += i % 3 ? "held" : "hello";
  std::vector<int64_t> want;
  for (int i = 0; i < 2000; ++i) {
    const auto part = i % 3 ? ids_of(t, {"he", "ld"}) : ids_of(t, {"hello"});
    want.insert(want.end(), part.begin(), part.end());
  }
  EXPECT_EQ(t.encode(mixed), want);
}

// Files in the formats real models ship that lorascope used to refuse.
TEST(BpeTokenizerTest, ByteFallbackMetaspaceAndSentencepieceNormalizers) {
  // LLaMA-2 style: Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer, byte fallback.
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  for (const char* tok : {"\xE2\x96\x81", "h", "i", "\xE2\x96\x81h", "\xE2\x96\x81hi"}) vocab[tok] = vocab.size();
  const json added = json::array({{{"id", 0}, {"content", "<unk>"}, {"special", true}, {"normalized", false}},
                                  {{"id", 1}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
                                  {{"id", 2}, {"content", "</s>"}, {"special", true}, {"normalized", false}}});
  json j = {{"added_tokens", added},
            {"normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                                                                   {{"type", "Replace"}, {"pattern", {{"String", " "}}},
                                                                    {"content", "\xE2\x96\x81"}}}}}},
            {"pre_tokenizer", nullptr},
            {"model", {{"type", "BPE"}, {"unk_token", "<unk>"}, {"byte_fallback", true}, {"fuse_unk", true},
                       {"vocab", vocab}, {"merges", {"\xE2\x96\x81 h", "\xE2\x96\x81h i"}}}}};
  const auto t = BpeTokenizer::from_json(j, "llama2.json");
  const int64_t sp = t.token_id("\xE2\x96\x81"), hi = t.token_id("\xE2\x96\x81hi");
  // "hi hi" -> "▁hi▁hi"; "é" (C3 A9) is not in the vocabulary: its bytes.
  EXPECT_EQ(t.encode("hi hi"), (std::vector<int64_t>{hi, hi}));
  EXPECT_EQ(t.encode("hi \xC3\xA9"), (std::vector<int64_t>{hi, sp, 3 + 0xC3, 3 + 0xA9}));
  // Special tokens are cut out first; each stretch after is prepended with ▁.
  EXPECT_EQ(t.encode("<s>hi"), (std::vector<int64_t>{1, hi}));
  // Without byte tokens, unknown characters fuse into one <unk>.
  auto no_bytes = j;
  no_bytes["model"]["byte_fallback"] = false;
  EXPECT_EQ(BpeTokenizer::from_json(no_bytes, "t.json").encode("hi \xC3\xA9\xC3\xA9"), (std::vector<int64_t>{hi, sp, 0}));
  // Mistral style: no normalizer, Metaspace prepending only at the start of the text.
  auto meta = j;
  meta["normalizer"] = nullptr;
  meta["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"}, {"split", false}};
  const auto m = BpeTokenizer::from_json(meta, "mistral.json");
  EXPECT_EQ(m.encode("hi hi"), (std::vector<int64_t>{hi, hi}));
  EXPECT_EQ(m.encode("<s>hi"), (std::vector<int64_t>{1, t.token_id("h"), t.token_id("i")})) << "not at the start";
  EXPECT_EQ(m.decode(m.encode("hi \xC3\xA9")), "hi \xC3\xA9") << "byte tokens decode to their bytes";
}

TEST(BpeTokenizerTest, EmptyNormalizerAndSplitRemovedInvert) {
  auto j = json::parse(read_all(kFixtures + "tiny_llama3_tokenizer.json"));
  const auto plain = BpeTokenizer::from_json(j, "t.json");
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", json::array()}};
  j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed";
  j["pre_tokenizer"]["pretokenizers"][0]["invert"] = true;  // keep the matches: the same pieces
  const auto removed = BpeTokenizer::from_json(j, "t.json");
  for (const std::string s : {"hello world's 12345", "  x\n\ny  "}) EXPECT_EQ(removed.encode(s), plain.encode(s)) << s;
}

// Byte-level and sentencepiece-style BPE files trained by `tokenizers` on Brown (GPT-2/RoBERTa,
// LLaMA-3, o200k, cl100k with Removed/invert, LLaMA-2 and Mistral byte fallback), against the
// ids it gave on real and hard text, pairs and truncation (tests/golden/make_tokenizers.py).
TEST(BpeTokenizerTest, MatchesTokenizersOnGoldenCases) {
  size_t n = 0;
  for (const char* f : {"roberta", "llama3", "o200k", "cl100k_removed", "llama2", "mistral"}) {
    const size_t k = check_golden_tokenizer_cases(f);
    EXPECT_GT(k, 40u) << f;
    n += k;
  }
  EXPECT_EQ(n, 384u);
}

}  // namespace
}  // namespace lorascope
