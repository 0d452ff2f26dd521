// The "pre_tokenizer" of a tokenizer.json: cuts each normalized stretch of text into the pieces
// the model encodes one by one, as `tokenizers` does. Supported: BertPreTokenizer, Whitespace,
// WhitespaceSplit, Punctuation, Digits, CharDelimiterSplit, Split (String or Regex pattern; the
// behaviors Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous; invert),
// ByteLevel (GPT-2's regex and byte-to-character mapping), Metaspace, and Sequence of these.
// Character classes come from data/unicode.h (tokenizers' own), regexes from data/tokenizer_regex.h.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace lorascope {

class TokenizerRegex;

class TokenizerPreTokenizer {
 public:
  // null (or absent) splits nothing: the whole stretch is one piece.
  static TokenizerPreTokenizer from_json(const nlohmann::json& j, const std::string& where);
  static TokenizerPreTokenizer bert();

  // The pieces of one stretch of text, empty ones dropped. at_start: the stretch begins the
  // input (Metaspace's prepend_scheme "first" prepends only there). A ByteLevel step maps each
  // piece's bytes to GPT-2's printable characters, unless map_bytes is false (for tests).
  std::vector<std::string> split(const std::string& text, bool at_start, bool map_bytes = true) const;
  bool byte_level() const { return byte_level_; }

  enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
  struct Step {
    enum Kind { Bert, Whitespace, WhitespaceSplit, Punctuation, Digits, CharDelimiter, Split, ByteLevel, Metaspace } kind;
    Behavior behavior = Behavior::Isolated;
    bool invert = false;
    bool flag = false;  // Digits: individual_digits; ByteLevel: add_prefix_space; Metaspace: split
    bool use_regex = true;                              // ByteLevel
    std::string literal;                                // Split String pattern; CharDelimiter; Metaspace replacement
    std::string prepend_scheme = "always";              // Metaspace: always | first | never
    std::shared_ptr<const TokenizerRegex> regex;        // Split Regex pattern; ByteLevel's regex
  };

 private:
  std::vector<Step> steps_;
  bool byte_level_ = false;
};

// GPT-2's reversible map from bytes to printable code points (as UTF-8).
const std::vector<std::string>& byte_to_unicode();

}  // namespace lorascope
