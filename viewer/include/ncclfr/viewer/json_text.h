// JSON text for output that ends up in front of a person's browser or tools: dump strings are
// untrusted, so everything written here is valid UTF-8 and safe to inline in an HTML <script>.
#pragma once

#include <string>
#include <string_view>

namespace ncclfr::viewer {

// Appends `s` as a JSON string literal (quotes included). Invalid UTF-8 becomes U+FFFD; control
// characters, '<', '>', '&', U+2028 and U+2029 become \u escapes, so the literal can sit inside an
// HTML <script> block ("</script>", "<!--" cannot appear in it) and inside JavaScript source.
void appendJsonString(std::string* out, std::string_view s);
std::string jsonString(std::string_view s);

// Makes JSON text (e.g. nlohmann's output with ensure_ascii) safe inside an HTML <script> block:
// '<', '>' and '&' can only occur inside string literals in JSON, so they become \u escapes.
std::string htmlSafeJson(std::string_view json);

// `s` cut to at most `max` bytes without splitting a UTF-8 sequence, with "..." when cut.
std::string truncateUtf8(std::string_view s, size_t max);

}  // namespace ncclfr::viewer
