// RFC 822 mail to plain text for classification: the Subject and the readable body, headers
// dropped. Crude on purpose (no charset conversion, no RFC 2047 subjects): multipart bodies are
// walked for text/* parts (text/plain preferred in multipart/alternative), quoted-printable and
// base64 are decoded, HTML loses its tags, and bytes that are not UTF-8 are read as Latin-1.
#pragma once

#include <cstdint>
#include <string>

namespace lorascope {

// "subject\n\nbody", whitespace tidied, cut to at most max_chars bytes on a UTF-8 character
// boundary (max_chars <= 0: no cut).
std::string mail_subject_and_body(const std::string& raw, int64_t max_chars);

// Helpers the mail reader is built from, exposed for tests.
std::string strip_html(const std::string& html);
std::string to_valid_utf8(const std::string& bytes);  // invalid bytes read as Latin-1

}  // namespace lorascope
