#include "ncclfr/viewer/json_text.h"

#include <cstdint>
#include <cstdio>

namespace ncclfr::viewer {

namespace {

void appendEscape(std::string* out, uint32_t cp) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
  out->append(buf);
}

// Length of the valid UTF-8 sequence at s[i] and its code point, or 0 when it is not one (a stray
// continuation byte, an overlong form, a surrogate, beyond U+10FFFF, or cut short).
size_t utf8Sequence(std::string_view s, size_t i, uint32_t* cp) {
  auto b = static_cast<unsigned char>(s[i]);
  size_t n;
  uint32_t min;
  if (b < 0x80) {
    *cp = b;
    return 1;
  } else if ((b & 0xE0) == 0xC0) {
    n = 2, min = 0x80, *cp = b & 0x1F;
  } else if ((b & 0xF0) == 0xE0) {
    n = 3, min = 0x800, *cp = b & 0x0F;
  } else if ((b & 0xF8) == 0xF0) {
    n = 4, min = 0x10000, *cp = b & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) return 0;
    *cp = (*cp << 6) | (c & 0x3F);
  }
  if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

void appendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    size_t n = utf8Sequence(s, i, &cp);
    if (n == 0) {
      appendEscape(out, 0xFFFD);
      ++i;
      continue;
    }
    if (n == 1) {
      char c = s[i];
      switch (c) {
        case '"': out->append("\\\""); break;
        case '\\': out->append("\\\\"); break;
        case '\n': out->append("\\n"); break;
        case '\t': out->append("\\t"); break;
        case '\r': out->append("\\r"); break;
        case '<':
        case '>':
        case '&': appendEscape(out, static_cast<unsigned char>(c)); break;
        default:
          if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
            appendEscape(out, static_cast<unsigned char>(c));
          } else {
            out->push_back(c);
          }
      }
    } else if (cp == 0x2028 || cp == 0x2029) {
      appendEscape(out, cp);
    } else {
      out->append(s.substr(i, n));
    }
    i += n;
  }
  out->push_back('"');
}

std::string jsonString(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  appendJsonString(&out, s);
  return out;
}

std::string htmlSafeJson(std::string_view json) {
  std::string out;
  out.reserve(json.size());
  for (char c : json) {
    switch (c) {
      case '<': out.append("\\u003c"); break;
      case '>': out.append("\\u003e"); break;
      case '&': out.append("\\u0026"); break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string truncateUtf8(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t cut = max;
  // Step back over continuation bytes so the cut falls on a sequence boundary.
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return std::string(s.substr(0, cut)) + "...";
}

}  // namespace ncclfr::viewer
