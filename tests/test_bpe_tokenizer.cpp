// Byte-level BPE against hand-worked examples of the GPT-2 algorithm on the tiny fixtures of
// tests/fixtures/make_bpe_fixtures.py (merge ranks: 0 "h e", 1 "l l", 2 "he ll", 3 "hell o",
// 4 "Ġ w", 5 "o r", 6 "Ġw or", 7 "l d", 8 "Ġwor ld", 9 "Ġ h", 10 "Ġh e"; byte b has id b).
#include <gtest/gtest.h>

#include <set>

#include "error_of.h"
#include "data/bpe_tokenizer.h"
#include "data/tokenizer.h"
#include "data_fixtures.h"

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
      {[](json& j) { j["normalizer"] = {{"type", "NFKC"}}; }, "normalizer: expected null"},
      {[](json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }, "unsupported pre-tokenizer \"Whitespace\""},
      {[](json& j) {
         j["pre_tokenizer"] = {{"type", "Sequence"},
                               {"pretokenizers", {{{"type", "Split"}, {"pattern", {{"Regex", "(["}}}, {"behavior", "Isolated"},
                                                   {"invert", false}}}}};
       },
       "pre-tokenizer regex \"([\" does not compile"},
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

}  // namespace
}  // namespace lorascope
