// Added tokens of a tokenizer.json (specials like [CLS], <s>, <mask>, and user-added tokens),
// cut out of the text before normalization as `tokenizers` does (its AddedVocabulary):
//   1. tokens with normalized false are found in the raw text, leftmost first and the longest
//      at that position, non-overlapping;
//   2. every stretch between them is normalized, and tokens with normalized true are found in
//      the normalized stretch (their contents normalized the same way).
// A match of a single_word token is dropped unless no word character (\w) touches it on either
// side; lstrip / rstrip tokens also take the whitespace (\s) left / right of them, so RoBERTa's
// "<mask>" eats the space before it. \w and \s are the regex crate's (data/unicode.h).
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace lorascope {

class TokenizerNormalizer;

struct AddedToken {
  std::string content;
  int64_t id = -1;
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
};

class TokenizerAddedTokens {
 public:
  TokenizerAddedTokens() = default;
  // normalizer: the tokenizer's, which also normalizes the contents of normalized tokens.
  TokenizerAddedTokens(const std::vector<AddedToken>& tokens, const TokenizerNormalizer& normalizer);
  // The "added_tokens" array of a tokenizer.json (null or absent: none).
  static std::vector<AddedToken> parse(const nlohmann::json& j, const std::string& where);

  struct Piece {
    std::string text;    // an added token's matched text, or a normalized stretch
    int64_t id = -1;     // the added token's id; -1 for a stretch to pre-tokenize
    bool at_start = false;  // a stretch that begins the input
  };
  // normalizer: the one given to the constructor.
  std::vector<Piece> split(const std::string& text, const TokenizerNormalizer& normalizer) const;

  int64_t id_of(const std::string& content) const;  // -1 when no added token has it
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  struct Matcher {
    std::vector<std::pair<std::string, size_t>> patterns;  // content, index into tokens_
    std::array<std::vector<size_t>, 256> by_first_byte;     // indices into patterns
    void add(const std::string& content, size_t token);
    // Appends the pieces of text (at_start: text begins the input).
    void split(const std::string& text, bool at_start, const std::vector<AddedToken>& tokens, std::vector<Piece>& out) const;
  };
  std::vector<AddedToken> tokens_;
  Matcher raw_, normalized_;
};

}  // namespace lorascope
