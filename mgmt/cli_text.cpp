#include "mgmt/cli_text.h"

#include <cstdint>

namespace fulcrum::cli {

namespace {

bool isControlByte(unsigned char u) {
  return u < 0x20 || u == 0x7f;
}

// Length of the well-formed UTF-8 sequence at s[i], or 0 when there is none.
// The second-byte ranges are those of RFC 3629's table; they are what rules
// out overlong forms, surrogates and code points above U+10FFFF.
size_t sequenceLength(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  size_t length = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    length = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    length = 3;
    if (b0 == 0xe0) lo = 0xa0;
    if (b0 == 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    length = 4;
    if (b0 == 0xf0) lo = 0x90;
    if (b0 == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (i + length > s.size()) return 0;
  const auto b1 = static_cast<unsigned char>(s[i + 1]);
  if (b1 < lo || b1 > hi) return 0;
  for (size_t k = 2; k < length; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < 0x80 || b > 0xbf) return 0;
  }
  return length;
}

void appendHex(std::string& out, unsigned char u) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\x";
  out += kHex[u >> 4];
  out += kHex[u & 0xf];
}

}  // namespace

std::optional<size_t> invalidUtf8Offset(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = sequenceLength(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::nullopt;
}

bool hasControl(std::string_view s, bool tabIsControl) {
  for (char c : s) {
    if (c == '\t' && !tabIsControl) continue;
    if (isControlByte(static_cast<unsigned char>(c))) return true;
  }
  return false;
}

std::string escapeForDisplay(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto u = static_cast<unsigned char>(s[i]);
    const size_t n = sequenceLength(s, i);
    if (n == 0 || isControlByte(u)) {
      appendHex(out, u);
      ++i;
      continue;
    }
    out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

std::string quoteForDisplay(std::string_view s, size_t maxBytes) {
  if (s.size() > maxBytes) return "'" + escapeForDisplay(s.substr(0, maxBytes)) + "...'";
  return "'" + escapeForDisplay(s) + "'";
}

size_t displayWidth(std::string_view s) {
  size_t width = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++width;
  }
  return width;
}

}  // namespace fulcrum::cli
