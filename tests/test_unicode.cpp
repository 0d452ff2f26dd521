// The Unicode data of data/unicode.h against facts of the Unicode standard that `tokenizers`
// 0.23.3 shares (data/unicode_tables.py reads the tables off it): categories new in Unicode 15
// and 16, BERT's character classes, NFD with canonical ordering, per-character lowercasing.
#include <gtest/gtest.h>

#include "data/unicode.h"

namespace lorascope {
namespace {

using unicode::BertClean;
using unicode::BertSplit;
using unicode::Gc;
using unicode::props;

TEST(UnicodeTest, GeneralCategoriesKnowUnicode16) {
  EXPECT_EQ(props('A').gc, Gc::Lu);
  EXPECT_EQ(props('a').gc, Gc::Ll);
  EXPECT_EQ(props('7').gc, Gc::Nd);
  EXPECT_EQ(props(0x11F50).gc, Gc::Nd) << "Kawi digit zero, Unicode 15.0";
  EXPECT_EQ(props(0x10D40).gc, Gc::Nd) << "Garay digit zero, Unicode 16.0";
  EXPECT_EQ(props(0x31350).gc, Gc::Lo) << "CJK Extension H, Unicode 15.0";
  EXPECT_EQ(props(0x0378).gc, Gc::Cn) << "unassigned";
  EXPECT_EQ(props(0xE000).gc, Gc::Co);
  EXPECT_EQ(props(0xD800).gc, Gc::Cs);
  EXPECT_EQ(props(0x110000).gc, Gc::Cn) << "past the last code point";
  EXPECT_TRUE(props(0x3000).re_space);
  EXPECT_FALSE(props(0x200B).re_space) << "zero width space is Cf, not White_Space";
  EXPECT_TRUE(props(0x0663).re_digit);
  EXPECT_TRUE(props('_').re_word);
}

TEST(UnicodeTest, BertClassesAsTokenizers) {
  EXPECT_EQ(props(0x01).bert_clean, BertClean::Remove);
  EXPECT_EQ(props(0x200B).bert_clean, BertClean::Remove) << "Cf";
  EXPECT_EQ(props(0xE000).bert_clean, BertClean::Remove) << "Co";
  EXPECT_EQ(props(0xFFFD).bert_clean, BertClean::Remove);
  EXPECT_EQ(props('\t').bert_clean, BertClean::Space);
  EXPECT_EQ(props(0x3000).bert_clean, BertClean::Space);
  EXPECT_EQ(props(0x85).bert_clean, BertClean::Remove) << "NEL is a control first";
  EXPECT_EQ(props(0x0378).bert_clean, BertClean::Keep) << "unassigned is kept";
  EXPECT_EQ(props(0x1F600).bert_clean, BertClean::Keep);
  EXPECT_EQ(props(' ').bert_split, BertSplit::Space);
  EXPECT_EQ(props('$').bert_split, BertSplit::Punct) << "ASCII punctuation includes symbols";
  EXPECT_EQ(props(0x00BF).bert_split, BertSplit::Punct) << "inverted question mark, Po";
  EXPECT_EQ(props(0x20AC).bert_split, BertSplit::Other) << "the euro sign is Sc, not punctuation";
  EXPECT_TRUE(props(0x4E2D).chinese);
  EXPECT_FALSE(props(0x3042).chinese) << "hiragana is not in the CJK ideograph blocks";
  EXPECT_TRUE(props(0x0301).nonspacing_mark);
  EXPECT_FALSE(props(0x0903).nonspacing_mark) << "Mc";
}

TEST(UnicodeTest, NfdDecomposesAndOrdersMarks) {
  EXPECT_EQ(unicode::nfd(U"\u00E9"), U"e\u0301");
  EXPECT_EQ(unicode::nfd(U"\u1E69"), U"s\u0323\u0307") << "s with dot below and dot above: ccc 220 before 230";
  EXPECT_EQ(unicode::nfd(U"a\u0301\u0316"), U"a\u0316\u0301") << "canonical ordering of a run";
  EXPECT_EQ(unicode::nfd(U"a\u0301b\u0316"), U"a\u0301b\u0316") << "a starter ends the run";
  EXPECT_EQ(unicode::nfd(U"\uAC01"), U"\u1100\u1161\u11A8") << "Hangul LVT by formula";
  EXPECT_EQ(unicode::nfd(U"\u212B"), U"A\u030A") << "angstrom sign: singleton, then full decomposition";
}

TEST(UnicodeTest, LowercaseCharByChar) {
  EXPECT_EQ(unicode::lowercase(U"ABC\u00C9"), U"abc\u00E9");
  EXPECT_EQ(unicode::lowercase(U"\u0130"), U"i\u0307") << "capital I with dot: two code points";
  EXPECT_EQ(unicode::lowercase(U"\u03A3\u03A3"), U"\u03C3\u03C3") << "no final sigma: one char at a time";
}

TEST(UnicodeTest, Utf8RoundTripAndReplacement) {
  EXPECT_EQ(unicode::decode_utf8("a\xC3\xA9\xF0\x9F\x98\x80"), U"a\u00E9\U0001F600");
  EXPECT_EQ(unicode::encode_utf8(U"a\u00E9\U0001F600"), "a\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_EQ(unicode::decode_utf8("\xFF" "a"), U"\uFFFDa");
  EXPECT_EQ(unicode::decode_utf8("\xC3"), U"\uFFFD") << "truncated";
  EXPECT_EQ(unicode::decode_utf8("\xED\xA0\x80"), U"\uFFFD\uFFFD\uFFFD") << "an encoded surrogate";
  EXPECT_EQ(unicode::decode_utf8("\xC0\xAF"), U"\uFFFD\uFFFD") << "overlong";
}

TEST(UnicodeTest, RangesCoverExactlyTheProperty) {
  const auto nd = unicode::ranges_where([](const unicode::CharProps& p) { return p.gc == Gc::Nd; });
  size_t count = 0;
  for (const auto& [a, b] : nd) {
    ASSERT_LE(a, b);
    count += b - a + 1;
    EXPECT_EQ(props(a).gc, Gc::Nd);
    EXPECT_EQ(props(b).gc, Gc::Nd);
    EXPECT_NE(props(b + 1).gc, Gc::Nd);
  }
  EXPECT_EQ(count, 760u) << "decimal digits in Unicode 16.0";
}

}  // namespace
}  // namespace lorascope
