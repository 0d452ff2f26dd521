// Text data: the sentencepiece tokenizer, the dataset loaders on small fixture files written
// here (no network, no fetched data), and seeded splits. Batching is in test_batching.cpp.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <set>

#include "error_of.h"
#include "data/mail_text.h"
#include "data/shuffle.h"
#include "data/text_datasets.h"
#include "data/tokenizer.h"
#include "tests/data_fixtures.h"

namespace lorascope {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------- tokenizer

TEST(TokenizerTest, TrainEncodeDecodeRoundTripAndReload) {
  TempDir dir("tok");
  const auto corpus = synthetic_corpus(400, 7);
  const auto tok = Tokenizer::train(corpus, 120, (dir.path / "sub" / "tok.model").string());
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.unk_id(), 1);
  EXPECT_EQ(tok.bos_id(), 2);
  EXPECT_EQ(tok.eos_id(), 3);
  EXPECT_GT(tok.vocab_size(), 20);
  EXPECT_LE(tok.vocab_size(), 120);
  const auto loaded = Tokenizer::load(tok.path());
  EXPECT_EQ(loaded.vocab_size(), tok.vocab_size());
  for (size_t i = 0; i < 20; ++i) {
    const auto ids = tok.encode(corpus[i]);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(tok.decode(ids), corpus[i]);
    EXPECT_EQ(loaded.encode(corpus[i]), ids);
  }
}

TEST(TokenizerTest, SameCorpusAndSeedGiveTheSameModelFile) {
  TempDir dir("tok_det");
  const auto corpus = synthetic_corpus(300, 3);
  Tokenizer::train(corpus, 80, (dir.path / "a.model").string(), 5);
  Tokenizer::train(corpus, 80, (dir.path / "b.model").string(), 5);
  EXPECT_EQ(read_all(dir.path / "a.model"), read_all(dir.path / "b.model"));
}

TEST(TokenizerTest, MissingOrInvalidModelNamesThePath) {
  TempDir dir("tok_bad");
  const auto missing = (dir.path / "nope.model").string();
  EXPECT_PRED2(has, error_of([&] { Tokenizer::load(missing); }),
               (missing + ": tokenizer model not found"));
  dir.write("junk.model", "not a model");
  EXPECT_PRED2(has, error_of([&] { Tokenizer::load((dir.path / "junk.model").string()); }),
               ("not a sentencepiece model"));
  EXPECT_THROW(Tokenizer::train({"a b"}, 4, (dir.path / "x.model").string()),
               std::invalid_argument);
}

// ------------------------------------------------------------------------------------ loaders

TEST(TextDatasetTest, BrownStripsTagsJoinsPunctuationAndLabelsByGenre) {
  TempDir dir("brown");
  dir.write("brown/ca01",
            "\n\n\tThe/at jury/nn said/vbd ``/`` yes/rb ''/'' ,/, (/( not/* no/at )/) ./.\n");
  dir.write("brown/cb02", "\tEditorials/nns are/ber 1/2/cd long/jj ./.\n");
  dir.write("brown/README", "not/a corpus/file");
  LoadOptions opt;
  opt.chunk_words = 100;
  const auto data = load_text_dataset("brown", (dir.path / "brown").string(), opt);
  ASSERT_EQ(data.examples.size(), 2u);
  EXPECT_EQ(data.label_names.size(), 15u);
  EXPECT_EQ(data.examples[0].text, "The jury said \"yes\", (not no).");
  EXPECT_EQ(data.examples[0].label, 0);
  EXPECT_EQ(data.label_names[0], "news");
  EXPECT_EQ(data.examples[1].text, "Editorials are 1/2 long.");
  EXPECT_EQ(data.examples[1].label, 1);
}

TEST(TextDatasetTest, BrownChunksKeepALastChunkOfAtLeastHalf) {
  TempDir dir("brown_chunks");
  std::string ten, nine;
  for (int i = 0; i < 10; ++i) ten += "w" + std::to_string(i) + "/nn ";
  for (int i = 0; i < 9; ++i) nine += "v" + std::to_string(i) + "/nn ";
  dir.write("brown/cr01", ten);
  dir.write("brown/cr02", nine);
  LoadOptions opt;
  opt.chunk_words = 4;
  const auto data = load_text_dataset("brown", (dir.path / "brown").string(), opt);
  ASSERT_EQ(data.examples.size(), 5u);  // 4 + 4 + 2 words, then 4 + 4 (the last 1 dropped)
  EXPECT_EQ(data.examples[2].text, "w8 w9");
  EXPECT_EQ(data.examples[4].text, "v4 v5 v6 v7");
  EXPECT_EQ(data.examples[4].label, 14);  // r = humor
}

// The package release fetched on 2026-12-02 held only the raw NNNNN.hash.txt mails, and the
// loader, which read *.json alone, found no examples ("no examples found", exit 2) before
// raw .txt mails were read. A .txt beside its .json is the same mail and counts once.
TEST(TextDatasetTest, SpamAssassinReadsRawTxtMails) {
  TempDir json_dir("spam_json"), txt_dir("spam_txt");
  write_spam_fixture(json_dir);
  write_spam_fixture(txt_dir, /*raw_txt=*/true);
  const auto from_json = load_text_dataset("spam_assassin", (json_dir.path / "spam").string(), {});
  const auto from_txt = load_text_dataset("spam_assassin", (txt_dir.path / "spam").string(), {});
  ASSERT_EQ(from_txt.examples.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(from_txt.examples[i].text, from_json.examples[i].text) << i;
    EXPECT_EQ(from_txt.examples[i].label, from_json.examples[i].label) << i;
  }
  write_spam_fixture(txt_dir);  // both copies of every mail
  EXPECT_EQ(load_text_dataset("spam_assassin", (txt_dir.path / "spam").string(), {}).examples.size(), 6u);
}

TEST(TextDatasetTest, SpamAssassinKeepsSubjectAndBodyAndLabelsSpam) {
  TempDir dir("spam");
  write_spam_fixture(dir);
  const auto data = load_text_dataset("spam_assassin", (dir.path / "spam").string(), {});
  ASSERT_EQ(data.examples.size(), 6u);
  EXPECT_EQ(data.label_names, (std::vector<std::string>{"ham", "spam"}));
  EXPECT_EQ(data.examples[0].text, "Re: lunch\n\nSee you at noon.\n\n-- Bob");
  EXPECT_EQ(data.examples[0].label, 0);
  EXPECT_EQ(count_label(data, 1), 2);
  const auto& spam = data.examples[4];  // spam-1 comes after the four ham mails
  EXPECT_EQ(spam.label, 1);
  EXPECT_EQ(spam.text, "WIN money\n\nClick here now & win \xC3\xA9norme prizes");
  for (const auto& ex : data.examples) EXPECT_EQ(ex.text.find("Received:"), std::string::npos);
  LoadOptions opt;
  opt.max_chars = 6;
  EXPECT_EQ(load_text_dataset("spam_assassin", (dir.path / "spam").string(), opt).examples[0].text,
            "Re: lu");
}

TEST(TextDatasetTest, MalformedMailOrChapterFileIsNamedOrSkippedAndCounted) {
  TempDir dir("spam_bad");
  write_spam_fixture(dir);
  const auto bad_mail = dir.write("spam/data/spam-2/00002.gg.json", "{\"text\": \"Subject: x\n\nhi\",\n oops}");
  const auto no_text = dir.write("spam/data/easy-ham-1/00003.hh.json", "{\"body\": \"hi\"}");
  EXPECT_PRED2(has, error_of([&] { load_text_dataset("spam_assassin", (dir.path / "spam").string(), {}); }),
               (no_text + ": expected an object with a string \"text\""));
  ::unlink(no_text.c_str());
  EXPECT_PRED2(has, error_of([&] { load_text_dataset("spam_assassin", (dir.path / "spam").string(), {}); }),
               (bad_mail + ": not valid JSON: "));
  EXPECT_PRED2(has, error_of([&] { load_text_dataset("spam_assassin", (dir.path / "spam").string(), {}); }),
               "line 2");
  dir.write("spam/data/easy-ham-1/00003.hh.json", "{\"body\": \"hi\"}");
  LoadOptions opt;
  opt.skip_malformed = true;
  int64_t skipped = 0;
  const auto spam = load_text_dataset("spam_assassin", (dir.path / "spam").string(), opt, &skipped);
  EXPECT_EQ(skipped, 2);
  EXPECT_EQ(spam.examples.size(), 6u);  // the fixture's good mails, in order
  EXPECT_EQ(spam.examples[0].text, "Re: lunch\n\nSee you at noon.\n\n-- Bob");

  dir.write("moby/data/chapter_1.json", "{\"text\": \"Call me Ishmael.\"}");
  const auto bad_chapter = dir.write("moby/data/chapter_2.json", "[1, 2");
  EXPECT_PRED2(has, error_of([&] { load_text_dataset("moby_dick", (dir.path / "moby").string(), {}); }),
               (bad_chapter + ": not valid JSON"));
  skipped = 0;
  const auto moby = load_text_dataset("moby_dick", (dir.path / "moby").string(), opt, &skipped);
  EXPECT_EQ(skipped, 1);
  ASSERT_EQ(moby.examples.size(), 1u);
  EXPECT_EQ(moby.examples[0].text, "Call me Ishmael.");
}

TEST(TextDatasetTest, MailReaderHandlesMultipartQuotedPrintableAndLatin1) {
  const std::string mail =
      "From: a@b\nSubject: Offer\nContent-Type: multipart/alternative;\n boundary=\"XX\"\n\n"
      "preamble\n--XX\nContent-Type: text/html\n\n<p>html</p>\n--XX\nContent-Type: text/plain\n"
      "Content-Transfer-Encoding: quoted-printable\n\ncaf=E9 au=\n lait\n--XX--\n";
  EXPECT_EQ(mail_subject_and_body(mail, 0), "Offer\n\ncaf\xC3\xA9 au lait");
  EXPECT_EQ(strip_html("<style>p{}</style><b>a</b>&amp;b<br>c&#233;"), "a&b\nc\xC3\xA9");
  // Found by tests/fuzz/fuzz_mail: an unclosed <style> at the end threw std::out_of_range.
  EXPECT_EQ(strip_html("a<b>c<style>d{}"), "ac");
  EXPECT_EQ(to_valid_utf8("ok \xE9 \xC3\xA9"), "ok \xC3\xA9 \xC3\xA9");
  // A cut never splits a UTF-8 character.
  EXPECT_EQ(mail_subject_and_body("Subject: \xC3\xA9\xC3\xA9\n\nx", 3), "\xC3\xA9");
}

TEST(TextDatasetTest, MobyDickChaptersInNumericOrderAndPlainTextParagraphs) {
  TempDir dir("moby");
  for (int c : {10, 2, 1}) {
    dir.write("moby/data/chapter_" + std::to_string(c) + ".json",
              "{\"chapter\":\"" + std::to_string(c) + "\",\"title\":\"T\",\"text\":\"ch" +
                  std::to_string(c) + "\"}");
  }
  dir.write("moby/data/epilogue.json", "{\"text\":\"end\"}");
  const auto moby = load_text_dataset("moby_dick", (dir.path / "moby").string(), {});
  ASSERT_EQ(moby.examples.size(), 3u);
  EXPECT_EQ(moby.examples[2].text, "ch10");
  EXPECT_EQ(moby.examples[0].label, -1);

  dir.write("book.txt", "First line\nsecond line\n\n  \n\nNext\r\n");
  const auto text = load_text_dataset("text", (dir.path / "book.txt").string(), {});
  ASSERT_EQ(text.examples.size(), 2u);
  EXPECT_EQ(text.examples[0].text, "First line\nsecond line");
  EXPECT_EQ(text.examples[1].text, "Next");
}

TEST(TextDatasetTest, GlueTsvMalformedLineNamesFileAndLine) {
  TempDir dir("glue");
  const auto path =
      dir.write("train.tsv", "sentence\tlabel\ngood movie\t1\nno label here\nbad one\t0\nmeh\tx\n");
  EXPECT_PRED2(has, error_of([&] { load_text_dataset("glue_tsv", path, {}); }),
               (path + ":3: expected 2 tab-separated fields (sentence, label), got 1"));
  LoadOptions opt;
  opt.skip_malformed = true;
  int64_t skipped = -1;
  const auto data = load_text_dataset("glue_tsv", path, opt, &skipped);
  EXPECT_EQ(skipped, 2);
  ASSERT_EQ(data.examples.size(), 2u);
  EXPECT_EQ(data.examples[1].text, "bad one");
  EXPECT_EQ(data.examples[1].label, 0);
  EXPECT_EQ(data.label_names, (std::vector<std::string>{"0", "1"}));

  const auto bad_label = dir.write("b.tsv", "sentence\tlabel\nok\t1\nmeh\tx\n");
  EXPECT_PRED2(has, error_of([&] { load_text_dataset("glue_tsv", bad_label, {}); }),
               (bad_label + ":3: expected a non-negative integer label, got \"x\""));
  const auto no_header = dir.write("c.tsv", "text\tlabel\n");
  EXPECT_PRED2(has, error_of([&] { load_text_dataset("glue_tsv", no_header, {}); }),
               (no_header + ":1: expected a header"));
}

TEST(TextDatasetTest, AlpacaListAndJsonlGivePromptAndResponse) {
  TempDir dir("alpaca");
  const auto list =
      dir.write("a.json", R"([{"instruction": "Add", "input": "1 and 2", "output": "3"},
                                           {"instruction": "Greet", "input": "", "output": "Hi"}])");
  const auto data = load_text_dataset("alpaca", list, {});
  ASSERT_EQ(data.examples.size(), 2u);
  EXPECT_EQ(data.examples[0].text, "3");
  EXPECT_PRED2(has, data.examples[0].prompt,
               ("### Instruction:\nAdd\n\n### Input:\n1 and 2\n\n### Response:\n"));
  EXPECT_PRED2(
      has, data.examples[1].prompt,
      "that appropriately completes the request.\n\n### Instruction:\nGreet\n\n### Response:\n");

  const auto bad_list =
      dir.write("b.json", R"([{"instruction": "a", "output": "b"}, {"instruction": "a"}])");
  EXPECT_PRED2(has, error_of([&] { load_text_dataset("alpaca", bad_list, {}); }),
               (bad_list + ":2: expected a string \"output\""));

  const auto jsonl =
      dir.write("c.jsonl",
                "{\"instruction\": \"a\", \"output\": \"b\"}\n\n{\"instruction\": \"a\"}\n{oops\n"
                "{\"instruction\": \"c\", \"input\": null, \"output\": \"d\"}\n");
  EXPECT_PRED2(has, error_of([&] { load_text_dataset("alpaca", jsonl, {}); }),
               (jsonl + ":3: expected a string \"output\""));
  LoadOptions opt;
  opt.skip_malformed = true;
  int64_t skipped = 0;
  const auto kept = load_text_dataset("alpaca", jsonl, opt, &skipped);
  EXPECT_EQ(skipped, 2);
  ASSERT_EQ(kept.examples.size(), 2u);
  EXPECT_EQ(kept.examples[1].text, "d");
}

TEST(TextDatasetTest, MissingDatasetSaysHowToFetchIt) {
  TempDir dir("missing");
  const auto where = (dir.path / "nothing").string();
  EXPECT_EQ(error_of([&] { load_text_dataset("spam_assassin", where, {}); }),
            "spam_assassin: " + where + ": not found; fetch it with scripts/fetch_data.sh");
  // Without a path a dataset is looked for under $LORASCOPE_DATA_DIR.
  const char* old = std::getenv("LORASCOPE_DATA_DIR");
  const std::string saved = old ? old : "";
  ::setenv("LORASCOPE_DATA_DIR", dir.path.c_str(), 1);
  EXPECT_EQ(default_data_dir(), dir.path.string());
  EXPECT_PRED2(
      has, error_of([&] { load_text_dataset("brown", "", {}); }),
      ((dir.path / "brown").string() + ": not found; fetch it with scripts/fetch_data.sh"));
  old ? ::setenv("LORASCOPE_DATA_DIR", saved.c_str(), 1) : ::unsetenv("LORASCOPE_DATA_DIR");
  EXPECT_PRED2(has, error_of([&] { load_text_dataset("imdb", "", {}); }),
               ("expected one of brown"));
}

TEST(TextDatasetTest, LimitKeepsEvenlySpacedExamples) {
  TempDir dir("limit");
  std::string tsv = "sentence\tlabel\n";
  for (int i = 0; i < 10; ++i) tsv += "s" + std::to_string(i) + "\t" + std::to_string(i / 5) + "\n";
  LoadOptions opt;
  opt.limit = 4;
  const auto data = load_text_dataset("glue_tsv", dir.write("t.tsv", tsv), opt);
  ASSERT_EQ(data.examples.size(), 4u);
  EXPECT_EQ(data.examples[0].text, "s0");
  EXPECT_EQ(data.examples[1].text, "s2");
  EXPECT_EQ(data.examples[2].text, "s5");
  EXPECT_EQ(data.examples[3].text, "s7");
}

// Only where scripts/fetch_data.sh has been run; CI has no data.
TEST(TextDatasetTest, RealDatasetsLoadWhenFetched) {
  const fs::path root = default_data_dir();
  if (!fs::exists(root / "brown" / ".fetched") ||
      !fs::exists(root / "spam-assassin" / ".fetched") ||
      !fs::exists(root / "moby-dick" / ".fetched")) {
    GTEST_SKIP() << "no fetched data in " << root << " (scripts/fetch_data.sh)";
  }
  for (const char* kind : {"brown", "spam_assassin", "moby_dick"}) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto data = load_text_dataset(kind, "", {});
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << kind << ": " << data.examples.size() << " examples in " << s << " s\n";
    std::set<int64_t> labels;
    for (const auto& ex : data.examples) labels.insert(ex.label);
    EXPECT_EQ(labels.size(), std::string(kind) == "brown"           ? 15u
                             : std::string(kind) == "spam_assassin" ? 2u
                                                                    : 1u);
  }
  EXPECT_EQ(load_text_dataset("moby_dick", "", {}).examples.size(), 135u);
  // 6046 mails as JSON copies; the release served on 2026-12-02 (same version) held only the raw
  // .txt mails, 5865 of them.
  const auto mails = load_text_dataset("spam_assassin", "", {}).examples.size();
  EXPECT_TRUE(mails == 6046u || mails == 5865u) << mails;
}

// ------------------------------------------------------------------------------------ splits

TEST(SplitTest, PermutationIsPinnedAcrossMachines) {
  // mt19937_64 outputs are fixed by the standard and the reduction is ours: these never change.
  EXPECT_EQ(permutation(10, 42), (std::vector<int64_t>{1, 7, 9, 0, 3, 8, 4, 2, 5, 6}));
  EXPECT_EQ(permutation(4, 42, false), (std::vector<int64_t>{0, 1, 2, 3}));
}

TEST(SplitTest, SameSeedSameSplitOtherSeedOther) {
  const auto data = labelled_dataset(70, 30);
  const auto a = split_dataset(data, 0.1, 0.2, 1), b = split_dataset(data, 0.1, 0.2, 1);
  const auto c = split_dataset(data, 0.1, 0.2, 2);
  EXPECT_EQ(texts(a.train), texts(b.train));
  EXPECT_EQ(texts(a.validation), texts(b.validation));
  EXPECT_EQ(texts(a.test), texts(b.test));
  EXPECT_NE(texts(a.test), texts(c.test));
}

TEST(SplitTest, StratifiedDisjointAndCoversEverything) {
  const auto data = labelled_dataset(70, 30);
  const auto s = split_dataset(data, 0.1, 0.2, 7);
  EXPECT_EQ(count_label(s.test, 0), 14);
  EXPECT_EQ(count_label(s.test, 1), 6);
  EXPECT_EQ(count_label(s.validation, 0), 7);
  EXPECT_EQ(count_label(s.validation, 1), 3);
  EXPECT_EQ(s.train.examples.size(), 70u);
  std::multiset<std::string> all;
  for (const auto* part : {&s.train, &s.validation, &s.test}) {
    for (const auto& t : texts(*part)) all.insert(t);
  }
  EXPECT_EQ(all.size(), 100u);
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), 100u);
  EXPECT_EQ(s.train.label_names, data.label_names);

  TextDataset plain{"text", {}, {}};
  for (int i = 0; i < 11; ++i) plain.examples.push_back({std::to_string(i), -1, ""});
  const auto p = split_dataset(plain, 0.25, 0.25, 0);
  EXPECT_EQ(p.validation.examples.size(), 3u);  // round(2.75)
  EXPECT_EQ(p.test.examples.size(), 3u);
  EXPECT_EQ(p.train.examples.size(), 5u);
  EXPECT_THROW(split_dataset(plain, 0.6, 0.5, 0), std::invalid_argument);
  EXPECT_THROW(split_dataset(plain, -0.1, 0.5, 0), std::invalid_argument);
}

}  // namespace
}  // namespace lorascope
