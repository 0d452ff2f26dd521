// libFuzzer target: the SpamAssassin mail reader (data/mail_text.h): headers, MIME multipart,
// quoted-printable and base64 bodies, HTML stripping, Latin-1 repair. It takes any bytes and must
// return valid UTF-8 of at most max_chars bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "data/mail_text.h"

namespace {
// Length in code points of structurally valid UTF-8, or -1.
long utf8_length(const std::string& s) {
  long n = 0;
  for (size_t i = 0; i < s.size(); ++n) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return -1;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return -1;
    }
    i += len;
  }
  return n;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lorascope;
  if (size == 0) return 0;
  const int64_t max_chars = 1 + data[0] % 200;
  const std::string raw(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string text = mail_subject_and_body(raw, max_chars);
  if (utf8_length(to_valid_utf8(raw)) < 0) std::abort();
  (void)strip_html(raw);
  if (utf8_length(text) < 0 || static_cast<int64_t>(text.size()) > max_chars) std::abort();
  return 0;
}
