// Text helpers of the management CLI: what may go into a protobuf string, and
// how untrusted text is shown so that output stays one line per row.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace fulcrum::cli {

// Offset of the first byte of `s` that is not part of well-formed UTF-8
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), or
// nullopt when all of `s` is well formed. proto3 refuses to parse a string
// field that is not, so nothing else may be sent.
std::optional<size_t> invalidUtf8Offset(std::string_view s);

// True when `s` holds an ASCII control character (below 0x20, or 0x7f);
// a tab counts only when `tabIsControl`.
bool hasControl(std::string_view s, bool tabIsControl = true);

// `s` for a terminal: control characters (tab included) and bytes that are
// not well-formed UTF-8 become \xNN; everything else is kept as is.
std::string escapeForDisplay(std::string_view s);

// `s` through escapeForDisplay() in single quotes, for messages: "'shwo'".
// Beyond `maxBytes` bytes it is cut and "..." marks the cut.
std::string quoteForDisplay(std::string_view s, size_t maxBytes = std::string_view::npos);

// Columns that `s` takes on a terminal, counted as code points (every text
// the CLI prints has been through escapeForDisplay, so it is valid UTF-8).
size_t displayWidth(std::string_view s);

}  // namespace fulcrum::cli
