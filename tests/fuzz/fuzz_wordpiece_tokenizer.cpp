// libFuzzer target: loading a WordPiece tokenizer (data/wordpiece_tokenizer.cpp: a tokenizer.json
// when the input is JSON, else a BERT vocab.txt), then encoding texts that exercise the BERT
// normalizer (controls, accents, CJK, Unicode 16), the pre-tokenizer, added tokens and the
// post-processor with truncation, and decoding. A bad file must give an error, never a crash;
// every id must lie inside the vocabulary.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/wordpiece_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  try {
    lorascope::WordPieceTokenizer tok = [&] {
      const auto j = nlohmann::json::parse(input, nullptr, /*allow_exceptions=*/false);
      if (!j.is_discarded() && j.is_object()) return lorascope::WordPieceTokenizer::from_json(j, "fuzz/tokenizer.json");
      return lorascope::WordPieceTokenizer::from_vocab_text(input, "fuzz/vocab.txt");
    }();
    for (const std::string& text : std::vector<std::string>
         {"The CAF\xC3\x89, na\xC3\xAFve [MASK] unaffable\t\xE4\xB8\xAD\xE6\x96\x87 \x01\xE2\x80\x8B x",
          "\xF0\x91\xBD\x90\xF0\x90\xB5\x80 a\xCC\x81\xCC\x96 \xC4\xB0 [CLS][SEP] \xFF\xFE broken", std::string(150, 'a')}) {
      const auto ids = tok.encode(text);
      for (int64_t id : ids) {
        if (id < 0 || id >= tok.vocab_size()) std::abort();
      }
      const auto with = tok.post_processor().apply(ids, &ids, true);
      for (int64_t id : with.ids) {
        if (id < 0) std::abort();
      }
      if (with.ids.size() != with.type_ids.size()) std::abort();
      (void)tok.decode(ids);
    }
  } catch (const std::runtime_error&) {
  } catch (const std::invalid_argument&) {
  } catch (const std::out_of_range&) {
  }
  return 0;
}
