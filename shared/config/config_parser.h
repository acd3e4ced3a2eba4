// The configuration language (DESIGN.md, "Configuration language"): text to
// Config, Config to text, and the semantic rules a Config must satisfy.
//
// Text, one statement a line:
//   set system (control-channel ADDR:PORT | affinity-store local|redis://HOST:PORT[/DB]
//               | affinity-store-password-file /ABSOLUTE/PATH | affinity-store-timeout MS
//               | syslog-file /ABSOLUTE/PATH)...
//   set service-set NAME [(inside-interface IF | outside-interface IF)...]
//   set application NAME (service-set NAME | facade ADDR | port N | algorithm ALG
//               | persistence source-address|none [timeout SECONDS] | session-timeout SECONDS
//               | http-filter on|off | session-sync on|off)...
//               [monitor MONITOR-ATTRS | server NAME SERVER-ATTRS]
//     MONITOR-ATTRS: (type icmp|tcp|http | path /P | expect CODE[,CODE]... | expect-body TEXT
//                     | interval S | timeout S | rise N | fall N)...
//     SERVER-ATTRS:  (address ADDR | port N | weight N | max-connections N)...
//   delete system ATTR                        (back to its default)
//   delete service-set NAME [ATTR]
//   delete application NAME [ATTR | persistence | monitor [ATTR] | server NAME [ATTR]]
// `monitor` and `server` take the rest of their line (a server has its own `port`).
// `set service-set NAME` alone declares the set with no interfaces (an
// editing step: validation requires both); every other `set` needs at least
// one attribute.
// Defaults (the initial values in config_types.h): control-channel
// 127.0.0.1:7080, affinity-store local, no affinity-store-password-file,
// affinity-store-timeout 5, syslog-file /var/log/fulcrum/fulcrum.log; an
// application has port 80, algorithm least-connections, persistence none
// (timeout 1800), session-timeout 900, http-filter off, session-sync off and
// no monitor; a server has the application's port, weight 1 and
// max-connections 0 (no limit).
//
// The affinity store (DESIGN.md, "Distributed load balancing"):
// - affinity-store-password-file: an absolute path without blanks to a file
//   the engine reads the store's password from. The parser never opens it:
//   the file lives on the engine's host, and its content is not configuration.
// - affinity-store-timeout: how long, in milliseconds (1..1000), a new
//   connection may wait for the store before the engine decides locally.
// - session-sync on: each session's decision is also written to the store
//   under its 5-tuple, so that another engine can continue the session.
// All three are accepted with `affinity-store local` too, so that they can be
// set before the store is switched: the password file and the timeout are
// then unused, and session sync reaches no further than the one engine (the
// embedded store is the engine's own).
//
// Deleting an attribute returns it to its default; deleting a whole object, a
// monitor or persistence that is not configured, or a façade or service-set
// that is not set, is an error.
//
// Tokens are split on blanks (space, tab, CR, VT, FF); `#` at the start of a
// token begins a comment to the end of the line. A token that begins with `"`
// runs to the next unescaped `"` and may hold blanks and `#`; inside it `\"`
// and `\\` stand for `"` and `\`. A `"` anywhere else, and control
// characters other than tab, are errors. Lines longer than kMaxLineLength
// bytes are refused, so no input can make the parser work unreasonably hard.
// Names (service sets, applications, servers, interfaces) are
// [A-Za-z0-9_.-]{1,63}. Numbers are plain decimal.
//
// Errors never throw: every function here reports bad input through its
// return value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shared/config/config_types.h"

namespace fulcrum {

inline constexpr size_t kMaxLineLength = 64 * 1024;

struct ConfigError {
  // 1-based line of the statement at fault; 0 = not tied to a line (a Config
  // built in code, or an object that came from parseConfig's `base`).
  uint32_t line = 0;
  // The offending word exactly as written: an unknown keyword itself; for a
  // missing or bad value, the keyword it belongs to (`port` in `port 70000`);
  // for a problem with a whole object (server without address), its name. For
  // errors found by validateConfig, it is the keyword or name as
  // configToText() would print it.
  std::string word;
  std::string message;  // what is wrong, for a person; one line

  // "line 3: 'algorithm': unknown algorithm 'fastest' (expected ...)"; the
  // "line N: " part is left out when line is 0, the word part when it is
  // empty. Always one line: control characters in the word are escaped.
  std::string toString() const;

  bool operator==(const ConfigError&) const = default;
};

struct ConfigResult {
  Config config;
  std::optional<ConfigError> error;
  bool ok() const { return !error; }
};

// Applies the statements of `text` in order on top of `base` (set adds to or
// overrides, delete removes), then validates the whole result with
// validateConfig(). On the first error (the first bad line, else the
// validation error with the lowest line number) returns it; `config` is then
// unspecified. Source lines recorded in `base` are cleared first, so that
// every line number reported refers to `text`.
ConfigResult parseConfig(std::string_view text, const Config& base = {});

// Applies statements like parseConfig but without validateConfig(): syntax,
// names, ranges and references inside one statement are checked (bad
// keyword, bad address, deleting what does not exist...), cross-object rules
// are not (an application without façade or service set, a server without
// address or whose application has neither, an undefined service set,
// duplicate façades, a monitor timeout above its interval...). For editing a
// candidate one statement at a time; commit validates. On the first bad line
// returns its error; `config` is then unspecified. Source lines in `base` are
// cleared first, as for parseConfig. parseConfig(t, b) is applyConfig(t, b)
// followed, when that succeeds, by validateConfig().
ConfigResult applyConfig(std::string_view text, const Config& base = {});

// Semantic validation of a whole configuration (also called by parseConfig):
// every value in range and well formed (the same rules as the text); every
// service set has distinct inside and outside interfaces that no other
// service set uses; every application has a defined service set and a façade;
// façades and servers are usable unicast addresses (not 0/8, loopback,
// multicast, class E), IPv4 only for now, a server of the façade's family;
// every server has an address; no two applications of one service set share
// a façade address and port; no façade address is also a server address; no
// two servers of an application share an address and port; a monitor that
// has any attribute has a type, and its timeout is not above its interval.
// Returns the error with the lowest line number (0 counts lowest; among
// equal lines, the first one the checks find), or nullopt when valid.
std::optional<ConfigError> validateConfig(const Config& config);

// Canonical text: `set` lines that applyConfig turns back into an equal
// Config, for any config that applyConfig can produce from an empty base,
// complete or not: applyConfig(configToText(c)).config == c (and so
// parseConfig does, for a valid one). Hence two such configs are equal
// exactly when their texts are, and no line appears twice in one text.
// Deterministic: system lines (only non-default values), then service sets
// (`set service-set NAME` alone while it has no interface), then
// applications in order, each as `set application NAME [service-set S]
// [facade A] port P`, its non-default attributes, its monitor on one line,
// then its servers in order (a server with nothing else to print gets its
// weight, so that its line names an attribute). A Config built in code with
// values the language cannot express (a name with a blank, an unknown enum
// value, two objects of one name) prints text that does not read back.
std::string configToText(const Config& config);

}  // namespace fulcrum
