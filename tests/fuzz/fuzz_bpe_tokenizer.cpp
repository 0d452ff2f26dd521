// libFuzzer target: loading a Hugging Face tokenizer.json as BPE (data/bpe_tokenizer.cpp:
// vocabulary, merges, added tokens, normalizers, pre-tokenizers with PCRE2 patterns), then
// encoding and decoding with whatever loaded. A bad file must give an error, never a crash, and
// every id an accepted tokenizer produces must lie inside its vocabulary.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/bpe_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    const auto tok = lorascope::BpeTokenizer::from_json(j, "fuzz/tokenizer.json");
    for (const std::string& text : std::vector<std::string>{"the cat sat on the mat, 1/2 of it.", " Hello\n\n  world's <s>caf\xc3\xa9</s>",
                                   "The <mask> sat. \xF0\x91\xBD\x90\xF0\x90\xB5\x80 \xE4\xB8\xAD \xFF\xFE <0x41>",
                                   std::string(3000, 'a')}) {
      const auto ids = tok.encode(text);
      for (int64_t id : ids) {
        if (id < 0 || id >= tok.vocab_size()) std::abort();
      }
      (void)tok.decode(ids);
    }
  } catch (const std::runtime_error&) {
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
