// The "normalizer" of a tokenizer.json, applied (as in `tokenizers`) to each stretch of text
// between added tokens before pre-tokenization. Supported: BertNormalizer, Lowercase, NFD,
// StripAccents, Strip, Replace (String or Regex pattern), Prepend, and Sequence of these;
// null (or absent) normalizes nothing. Others (NFC, NFKC, Precompiled, ...) are refused by name.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace lorascope {

class TokenizerRegex;

// BertNormalizer's switches; strip_accents unset (null in the file) follows lowercase.
struct BertNormalizerOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  bool strip_accents = true;
  bool lowercase = true;
};

class TokenizerNormalizer {
 public:
  // where names the file in errors ("PATH: normalizer.normalizers[1]: ...").
  static TokenizerNormalizer from_json(const nlohmann::json& j, const std::string& where);
  static TokenizerNormalizer bert(const BertNormalizerOptions& options);

  std::string normalize(const std::string& text) const;  // UTF-8 in and out
  bool empty() const { return steps_.empty(); }

  struct Step {
    enum Kind { Bert, Lowercase, Nfd, StripAccents, Strip, Replace, Prepend } kind;
    BertNormalizerOptions bert;
    bool left = false, right = false;  // Strip
    std::string pattern, content;      // Replace (String pattern), Prepend (content)
    std::shared_ptr<const TokenizerRegex> regex;  // Replace (Regex pattern)
  };

 private:
  std::vector<Step> steps_;
};

// BertNormalizer on code points (clean text, space out CJK ideographs, strip accents, lowercase).
std::u32string bert_normalize(std::u32string_view text, const BertNormalizerOptions& options);

}  // namespace lorascope
