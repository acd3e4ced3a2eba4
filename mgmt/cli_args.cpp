#include "mgmt/cli_args.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>

#include "mgmt/cli_text.h"
#include "shared/version.h"

namespace fulcrum::cli {

namespace {

enum class Section : uint8_t { kConfiguration, kOperation };

// What the words after a command name hold, before the command gives it meaning.
struct Parsed {
  std::vector<std::string> operands;
  std::optional<std::string> comment;
  bool candidate = false;
};

// Fills the request (or loadPath) from `parsed`; returns a usage error.
using Build = std::optional<std::string> (*)(const Parsed& parsed, Invocation& out);

struct CommandSpec {
  std::vector<std::string_view> words = {};
  std::string_view operands = {};  // the rest of the usage line
  Section section = Section::kConfiguration;
  std::string_view summary = {};      // one line for the overview
  std::string_view description = {};  // lines of at most 80 columns, each ending in '\n'
  std::string_view example = {};      // after "fulcrum "
  size_t minOperands = 0;
  size_t maxOperands = 0;
  bool statementWords = false;  // set/delete: option-like words are operands
  bool takesCandidate = false;
  bool takesComment = false;
  Build build = nullptr;
};

constexpr size_t kMany = std::numeric_limits<size_t>::max();
// Words quoted in error messages are cut so that the message stays readable.
constexpr size_t kMaxWordInMessage = 80;

std::string quote(std::string_view word) {
  return quoteForDisplay(word, kMaxWordInMessage);
}

// A word goes into a protobuf string (UTF-8 only) and, for names and
// statements, into a line of the configuration language (no line breaks or
// other control characters; a tab only inside quotes).
std::optional<std::string> checkWord(std::string_view word, bool tabAllowed) {
  if (invalidUtf8Offset(word)) return "word " + quote(word) + " is not valid UTF-8";
  if (hasControl(word, !tabAllowed)) return "word " + quote(word) + " holds a control character";
  return std::nullopt;
}

std::optional<std::string> buildEdit(std::string_view verb, const Parsed& parsed, Invocation& out) {
  for (const std::string& w : parsed.operands) {
    if (auto error = checkWord(w, /*tabAllowed=*/true)) return error;
  }
  out.request.mutable_edit()->set_statements(buildStatement(verb, parsed.operands));
  return std::nullopt;
}

// An optional APPLICATION operand: left out means every application, so an
// empty word (an unset shell variable) must not silently mean the same.
std::optional<std::string> optionalApplication(const Parsed& parsed, std::string_view command,
                                               std::string* application) {
  if (parsed.operands.empty()) return std::nullopt;
  const std::string& name = parsed.operands.front();
  if (name.empty()) {
    return "empty APPLICATION for " + quote(command) + " (leave it out to mean every application)";
  }
  if (auto error = checkWord(name, /*tabAllowed=*/false)) return error;
  *application = name;
  return std::nullopt;
}

std::optional<std::string> buildDrain(const Parsed& parsed, Invocation& out, bool drain) {
  static constexpr std::string_view kRoles[] = {"APPLICATION", "SERVER"};
  for (size_t k = 0; k < 2; ++k) {
    const std::string& name = parsed.operands[k];
    if (name.empty()) {
      return "empty " + std::string(kRoles[k]) + " for " +
             (drain ? "'request server drain'" : "'request server undrain'");
    }
    if (auto error = checkWord(name, /*tabAllowed=*/false)) return error;
  }
  auto* d = out.request.mutable_drain();
  d->set_application(parsed.operands[0]);
  d->set_server(parsed.operands[1]);
  d->set_drain(drain);
  return std::nullopt;
}

// Commit numbers are positive int64 (RollbackRequest.number); a sign, blank
// or anything else is refused rather than guessed at.
std::optional<int64_t> parseCommitNumber(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value == 0 || value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return std::nullopt;
  }
  return static_cast<int64_t>(value);
}

const std::vector<CommandSpec>& commands() {
  static const std::vector<CommandSpec> kCommands = {
      {
          .words = {"set"},
          .operands = "STATEMENT...",
          .section = Section::kConfiguration,
          .summary = "add to or change the candidate configuration",
          .description =
              "Applies one `set` statement of the configuration language to the candidate\n"
              "configuration. Words that hold blanks, '#', '\"' or '\\' are quoted for the\n"
              "control plane: quote them for the shell only. The running configuration\n"
              "changes at 'fulcrum commit'; 'fulcrum compare' shows what would change.\n"
              "Words that start with '-' belong to the statement, except --help and the\n"
              "global options; after '--' every word does.\n",
          .example = "set application shop server s1 address 198.18.1.11 port 8080",
          .minOperands = 1,
          .maxOperands = kMany,
          .statementWords = true,
          .build = [](const Parsed& p, Invocation& out) { return buildEdit("set", p, out); },
      },
      {
          .words = {"delete"},
          .operands = "STATEMENT...",
          .section = Section::kConfiguration,
          .summary = "remove from the candidate configuration",
          .description =
              "Applies one `delete` statement to the candidate configuration: a whole object\n"
              "(service set, application, server, monitor, persistence) goes, an attribute\n"
              "returns to its default. Words are quoted as for 'fulcrum set'. The running\n"
              "configuration changes at 'fulcrum commit'.\n",
          .example = "delete application shop server s1",
          .minOperands = 1,
          .maxOperands = kMany,
          .statementWords = true,
          .build = [](const Parsed& p, Invocation& out) { return buildEdit("delete", p, out); },
      },
      {
          .words = {"show", "configuration"},
          .operands = "[--candidate]",
          .section = Section::kConfiguration,
          .summary = "print the running (or --candidate) configuration",
          .description =
              "Prints the running configuration (the latest commit) as `set` lines, the\n"
              "format 'fulcrum load' reads. With --candidate, prints the candidate\n"
              "configuration instead, edits not yet committed included; the line numbers\n"
              "of commit errors refer to it.\n",
          .example = "show configuration --candidate > shop.conf",
          .takesCandidate = true,
          .build = [](const Parsed& p, Invocation& out) -> std::optional<std::string> {
            out.request.mutable_show_config()->set_candidate(p.candidate);
            return std::nullopt;
          },
      },
      {
          .words = {"compare"},
          .section = Section::kConfiguration,
          .summary = "show what a commit would change",
          .description = "Prints the lines of the running configuration that the candidate drops\n"
                         "(\"- \") and the lines it adds (\"+ \"), or 'no changes'.\n",
          .example = "compare",
          .build = [](const Parsed&, Invocation& out) -> std::optional<std::string> {
            out.request.mutable_compare();
            return std::nullopt;
          },
      },
      {
          .words = {"commit"},
          .operands = "[-m COMMENT | --comment COMMENT]",
          .section = Section::kConfiguration,
          .summary = "validate the candidate and make it the running one",
          .description =
              "Validates the candidate configuration and, when it is valid, stores it as the\n"
              "next numbered commit (time, user, COMMENT), which every engine then runs.\n"
              "Prints 'commit N'. When it is not valid, nothing changes and the error names\n"
              "the line (of 'show configuration --candidate') and the word at fault.\n",
          .example = "commit -m \"add server s3 to shop\"",
          .takesComment = true,
          .build = [](const Parsed& p, Invocation& out) -> std::optional<std::string> {
            const std::string comment = p.comment.value_or("");
            // A line break is fine in a comment; `show commits` escapes it.
            if (invalidUtf8Offset(comment)) return "COMMENT " + quote(comment) + " is not UTF-8";
            out.request.mutable_commit()->set_comment(comment);
            return std::nullopt;
          },
      },
      {
          .words = {"rollback"},
          .operands = "N",
          .section = Section::kConfiguration,
          .summary = "make commit N the candidate again",
          .description =
              "Replaces the candidate configuration with the configuration of commit N (see\n"
              "'fulcrum show commits'); uncommitted edits are dropped. The running\n"
              "configuration changes at 'fulcrum commit'.\n",
          .example = "rollback 12 && fulcrum compare && fulcrum commit -m \"back to 12\"",
          .minOperands = 1,
          .maxOperands = 1,
          .build = [](const Parsed& p, Invocation& out) -> std::optional<std::string> {
            const auto number = parseCommitNumber(p.operands.front());
            if (!number) {
              return quote(p.operands.front()) +
                     " is not a commit number (a positive integer; see fulcrum show commits)";
            }
            out.request.mutable_rollback()->set_number(*number);
            return std::nullopt;
          },
      },
      {
          .words = {"show", "commits"},
          .section = Section::kConfiguration,
          .summary = "list commits: number, time (UTC), user, comment",
          .description = "Lists the stored commits: number, time (UTC), user and comment.\n",
          .example = "show commits",
          .build = [](const Parsed&, Invocation& out) -> std::optional<std::string> {
            out.request.mutable_show_commits();
            return std::nullopt;
          },
      },
      {
          .words = {"load"},
          .operands = "FILE",
          .section = Section::kConfiguration,
          .summary = "replace the candidate with the `set` lines of FILE",
          .description =
              "Reads FILE, `set` lines as 'show configuration' prints them, and makes it the\n"
              "candidate configuration; the previous candidate is dropped. The running\n"
              "configuration changes at 'fulcrum commit'.\n",
          .example = "load /etc/fulcrum/fulcrum.conf && fulcrum commit -m \"from the file\"",
          .minOperands = 1,
          .maxOperands = 1,
          .build = [](const Parsed& p, Invocation& out) -> std::optional<std::string> {
            // The path is not sent, so any bytes the file system takes are fine.
            if (p.operands.front().empty()) return std::string("empty FILE for 'load'");
            out.loadPath = p.operands.front();
            out.request.mutable_load();
            return std::nullopt;
          },
      },
      {
          .words = {"show", "servers"},
          .section = Section::kOperation,
          .summary = "list servers: address, health, drain, sessions",
          .description =
              "Lists the servers of every application: address, health (up, down, unknown,\n"
              "or unmonitored when the application has no monitor; ',draining' when\n"
              "drained), how long ago that state began, the last health check, and the\n"
              "active sessions summed over every engine.\n",
          .example = "show servers",
          .build = [](const Parsed&, Invocation& out) -> std::optional<std::string> {
            out.request.mutable_show_servers();
            return std::nullopt;
          },
      },
      {
          .words = {"show", "sessions"},
          .operands = "[APPLICATION]",
          .section = Section::kOperation,
          .summary = "list the sessions (of one application)",
          .description =
              "Lists the sessions of every engine, or of APPLICATION only: client, facade,\n"
              "application, server, TCP state, age, time left before the idle timeout, and\n"
              "the engine. A long list is cut short; its last line then says (truncated).\n",
          .example = "show sessions shop",
          .maxOperands = 1,
          .build = [](const Parsed& p, Invocation& out) -> std::optional<std::string> {
            std::string application;
            if (auto error = optionalApplication(p, "show sessions", &application)) return error;
            out.request.mutable_show_sessions()->set_application(application);
            return std::nullopt;
          },
      },
      {
          .words = {"show", "statistics"},
          .section = Section::kOperation,
          .summary = "counters: totals, per application, control plane",
          .description =
              "Prints the data-plane counters summed over every engine and packet loop, the\n"
              "counters of each application, then the control plane's own counters.\n",
          .example = "show statistics",
          .build = [](const Parsed&, Invocation& out) -> std::optional<std::string> {
            out.request.mutable_show_statistics();
            return std::nullopt;
          },
      },
      {
          .words = {"show", "engines"},
          .section = Section::kOperation,
          .summary = "list the connected data-plane engines",
          .description =
              "Lists the fulcrum-data engines connected to the control plane: id, version,\n"
              "peer, how long connected, packet loops, the configuration generation they\n"
              "run, sessions in use out of the table's capacity, their affinity store\n"
              "(STORE: local, or redis up, down or connecting), and how long ago they last\n"
              "reported their status. 'fulcrum show affinity-store' tells more of the store.\n",
          .example = "show engines",
          .build = [](const Parsed&, Invocation& out) -> std::optional<std::string> {
            out.request.mutable_show_engines();
            return std::nullopt;
          },
      },
      {
          .words = {"show", "affinity-store"},
          .section = Section::kOperation,
          .summary = "each engine's affinity store: state, errors, counters",
          .description =
              "Shows the affinity store of every engine, as each last reported it: the store\n"
              "(local, or the redis:// address), its state (up, down, connecting, local)\n"
              "and the last error; then its counters, one column per engine: requests sent,\n"
              "answered, failed, timeouts and down_decisions (local decisions because the\n"
              "answer came too late, or the store was down), cache hits and misses,\n"
              "reconnects, average and largest latency in microseconds, and session-sync\n"
              "writes and recoveries. Counters count from each engine's start; 'fulcrum\n"
              "show statistics' sums them (store_...).\n",
          .example = "show affinity-store",
          .build = [](const Parsed&, Invocation& out) -> std::optional<std::string> {
            out.request.mutable_show_affinity_store();
            return std::nullopt;
          },
      },
      {
          .words = {"clear", "sessions"},
          .operands = "[APPLICATION]",
          .section = Section::kOperation,
          .summary = "end sessions on every engine (of one application)",
          .description = "Removes from every engine's session table all sessions, or those of\n"
                         "APPLICATION only. The next packets of those connections are balanced\n"
                         "afresh and may reach another server, which breaks them.\n",
          .example = "clear sessions shop",
          .maxOperands = 1,
          .build = [](const Parsed& p, Invocation& out) -> std::optional<std::string> {
            std::string application;
            if (auto error = optionalApplication(p, "clear sessions", &application)) return error;
            out.request.mutable_clear_sessions()->set_application(application);
            return std::nullopt;
          },
      },
      {
          .words = {"request", "server", "drain"},
          .operands = "APPLICATION SERVER",
          .section = Section::kOperation,
          .summary = "give SERVER no new sessions; its sessions go on",
          .description =
              "Drains SERVER of APPLICATION on every engine: it gets no new sessions, and\n"
              "its existing sessions go on until they end. 'fulcrum show servers' shows it\n"
              "as ',draining'. 'fulcrum request server undrain' ends the drain.\n",
          .example = "request server drain shop s1",
          .minOperands = 2,
          .maxOperands = 2,
          .build = [](const Parsed& p, Invocation& out) { return buildDrain(p, out, true); },
      },
      {
          .words = {"request", "server", "undrain"},
          .operands = "APPLICATION SERVER",
          .section = Section::kOperation,
          .summary = "let SERVER take new sessions again",
          .description =
              "Ends the drain of SERVER of APPLICATION: it takes new sessions again (when\n"
              "its health allows).\n",
          .example = "request server undrain shop s1",
          .minOperands = 2,
          .maxOperands = 2,
          .build = [](const Parsed& p, Invocation& out) { return buildDrain(p, out, false); },
      },
  };
  return kCommands;
}

std::string joinWords(const std::vector<std::string_view>& words, size_t count) {
  std::string out;
  for (size_t k = 0; k < count && k < words.size(); ++k) {
    if (k) out += ' ';
    out += words[k];
  }
  return out;
}

std::string commandName(const CommandSpec& spec) {
  return joinWords(spec.words, spec.words.size());
}

std::string usageOf(const CommandSpec& spec) {
  std::string out = commandName(spec);
  if (!spec.operands.empty()) out += " " + std::string(spec.operands);
  return out;
}

// Lines "  USAGE  SUMMARY" with the summaries aligned.
std::string commandLines(const std::vector<const CommandSpec*>& specs, size_t width) {
  std::string out;
  for (const CommandSpec* spec : specs) {
    const std::string usage = usageOf(*spec);
    out += "  " + usage + std::string(width - usage.size() + 2, ' ') + std::string(spec->summary);
    out += '\n';
  }
  return out;
}

size_t usageWidth(const std::vector<const CommandSpec*>& specs) {
  size_t width = 0;
  for (const CommandSpec* spec : specs) width = std::max(width, usageOf(*spec).size());
  return width;
}

std::string overviewHelp() {
  std::vector<const CommandSpec*> configuration, operation;
  for (const CommandSpec& spec : commands()) {
    (spec.section == Section::kConfiguration ? configuration : operation).push_back(&spec);
  }
  const size_t width = std::max(usageWidth(configuration), usageWidth(operation));
  std::string out =
      "usage: fulcrum [--socket PATH] [--json] [--timeout SECONDS] COMMAND ...\n"
      "       fulcrum --version\n"
      "\n"
      "Manages a Fulcrum load balancer through its control plane (fulcrum-control).\n"
      "\n"
      "Configuration (edit the candidate, then commit it):\n";
  out += commandLines(configuration, width);
  out += "\nOperation:\n";
  out += commandLines(operation, width);
  out +=
      "\n"
      "Options:\n"
      "  --socket PATH      the control plane's socket (default: $FULCRUM_SOCKET, else\n"
      "                     /run/fulcrum/mgmt.sock)\n"
      "  --json             print the reply as one JSON object, for scripts\n"
      "  --timeout SECONDS  how long to wait for the control plane (default 10)\n"
      "  -h, --help         this help\n"
      "  --version          print the version and exit\n"
      "\n"
      "'fulcrum help COMMAND' or 'fulcrum COMMAND --help' describes one command.\n"
      "Exit status: 0 done; 1 refused by the control plane (nothing changed); 2 bad\n"
      "command line (nothing sent); 3 control plane not reachable, or no valid reply;\n"
      "4 the output could not be written.\n";
  return out;
}

std::string commandHelp(const CommandSpec& spec) {
  std::string out = "usage: fulcrum " + usageOf(spec) + "\n\n";
  out += spec.description;
  out += "\nexample:\n  fulcrum " + std::string(spec.example) + "\n";
  return out;
}

// The commands whose first words are `prefix` (an incomplete command).
std::vector<const CommandSpec*> commandsStartingWith(const std::vector<std::string_view>& prefix) {
  std::vector<const CommandSpec*> out;
  for (const CommandSpec& spec : commands()) {
    if (spec.words.size() > prefix.size() &&
        std::equal(prefix.begin(), prefix.end(), spec.words.begin())) {
      out.push_back(&spec);
    }
  }
  return out;
}

std::string groupHelp(const std::vector<std::string_view>& prefix) {
  const auto specs = commandsStartingWith(prefix);
  const std::string name = joinWords(prefix, prefix.size());
  std::string out = "usage: fulcrum " + name + " ...\n\nThe '" + name + "' commands:\n";
  out += commandLines(specs, usageWidth(specs));
  out += "\n'fulcrum help " + name + " ...' describes one of them.\n";
  return out;
}

// "configuration, commits, servers or engines": the words that may follow `prefix`.
std::string nextWords(const std::vector<std::string_view>& prefix) {
  std::vector<std::string_view> words;
  for (const CommandSpec* spec : commandsStartingWith(prefix)) {
    const std::string_view w = spec->words[prefix.size()];
    if (std::find(words.begin(), words.end(), w) == words.end()) words.push_back(w);
  }
  std::string out;
  for (size_t k = 0; k < words.size(); ++k) {
    if (k) out += k + 1 == words.size() ? " or " : ", ";
    out += words[k];
  }
  return out;
}

Invocation helpInvocation(std::string text, const GlobalOptions& options) {
  Invocation inv;
  inv.kind = Invocation::Kind::kHelp;
  inv.text = std::move(text);
  inv.options = options;
  return inv;
}

Invocation usageError(std::string message) {
  Invocation inv;
  inv.kind = Invocation::Kind::kUsageError;
  inv.text = std::move(message);
  return inv;
}

// A word that names an option: "-x", "--xyz"; not "-", "--" (end of
// options) or a negative number (an operand that is then refused by name).
bool isOptionLike(std::string_view a) {
  if (a.size() < 2 || a[0] != '-' || a == "--") return false;
  return !(a[1] >= '0' && a[1] <= '9');
}

bool isHelpOption(std::string_view a) {
  return a == "--help" || a == "-h";
}

enum class Match : uint8_t { kNo, kYes, kError };

// Is args[i] the option `longName` (or -`shortName`)? A valued option (non-empty
// valueName) stores its value in *value, taking the next word when the value
// is not attached ("--name=VALUE", "-xVALUE"); `i` then moves past it.
Match matchOption(const std::vector<std::string>& args, size_t& i, std::string_view longName,
                  char shortName, std::string_view valueName, std::string* value,
                  std::string* error) {
  const std::string_view a = args[i];
  std::optional<std::string_view> attached;
  if (a.starts_with("--")) {
    const size_t eq = a.find('=');
    if (a.substr(0, eq) != longName) return Match::kNo;
    if (eq != std::string_view::npos) attached = a.substr(eq + 1);
  } else if (shortName != 0 && a.size() >= 2 && a[0] == '-' && a[1] == shortName) {
    if (a.size() > 2) {
      if (valueName.empty()) return Match::kNo;  // "-hx" is not -h
      attached = a.substr(2);
    }
  } else {
    return Match::kNo;
  }
  if (valueName.empty()) {
    if (attached) {
      *error = quote(longName) + " takes no value";
      return Match::kError;
    }
    return Match::kYes;
  }
  if (attached) {
    *value = std::string(*attached);
    return Match::kYes;
  }
  if (i + 1 >= args.size()) {
    *error = quote(a) + " needs " + std::string(valueName);
    return Match::kError;
  }
  *value = args[++i];
  return Match::kYes;
}

// --timeout: decimal seconds with up to millisecond precision ("10", "0.5").
std::optional<std::chrono::milliseconds> parseSeconds(std::string_view s) {
  const size_t dot = s.find('.');
  const std::string_view whole = s.substr(0, dot);
  const std::string_view fraction = dot == std::string_view::npos ? "" : s.substr(dot + 1);
  if ((whole.empty() && fraction.empty()) || whole.size() > 6) return std::nullopt;
  auto digits = [](std::string_view d) {
    return std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!digits(whole) || !digits(fraction)) return std::nullopt;
  int64_t ms = 0;
  for (char c : whole) ms = ms * 10 + (c - '0');
  ms *= 1000;
  int64_t scale = 100;
  for (size_t k = 0; k < fraction.size() && k < 3; ++k, scale /= 10)
    ms += (fraction[k] - '0') * scale;
  const std::chrono::milliseconds result{ms};
  if (result.count() <= 0 || result > kMaxTimeout) return std::nullopt;
  return result;
}

struct GlobalState {
  GlobalOptions options;
  bool timeoutSeen = false;
  bool help = false;
};

Match globalOption(const std::vector<std::string>& args, size_t& i, GlobalState& state,
                   std::string* error) {
  std::string value;
  Match m = matchOption(args, i, "--help", 'h', "", nullptr, error);
  if (m == Match::kYes) state.help = true;
  if (m != Match::kNo) return m;
  m = matchOption(args, i, "--json", 0, "", nullptr, error);
  if (m == Match::kYes) state.options.json = true;
  if (m != Match::kNo) return m;
  m = matchOption(args, i, "--socket", 0, "PATH", &value, error);
  if (m == Match::kYes) {
    if (state.options.socketPath) {
      *error = "'--socket' given twice";
      return Match::kError;
    }
    if (value.empty()) {
      *error = "'--socket' needs a PATH, not an empty word";
      return Match::kError;
    }
    state.options.socketPath = value;
  }
  if (m != Match::kNo) return m;
  m = matchOption(args, i, "--timeout", 0, "SECONDS", &value, error);
  if (m == Match::kYes) {
    if (state.timeoutSeen) {
      *error = "'--timeout' given twice";
      return Match::kError;
    }
    const auto timeout = parseSeconds(value);
    if (!timeout) {
      *error = "'--timeout' needs a number of seconds above 0 and at most " +
               std::to_string(kMaxTimeout.count() / 1000) + ", not " + quote(value);
      return Match::kError;
    }
    state.timeoutSeen = true;
    state.options.timeout = *timeout;
  }
  return m;
}

const CommandSpec* findCommand(const std::vector<std::string_view>& words) {
  for (const CommandSpec& spec : commands()) {
    if (spec.words == words) return &spec;
  }
  return nullptr;
}

}  // namespace

std::string quoteWord(std::string_view word) {
  const bool plain = !word.empty() && std::none_of(word.begin(), word.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '#' || c == '"' ||
           c == '\\';
  });
  if (plain) return std::string(word);
  std::string out = "\"";
  for (char c : word) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::string buildStatement(std::string_view verb, const std::vector<std::string>& words) {
  std::string out(verb);
  for (const std::string& w : words) out += " " + quoteWord(w);
  return out;
}

std::vector<std::string> commandUsages() {
  std::vector<std::string> out;
  for (const CommandSpec& spec : commands()) out.push_back(usageOf(spec));
  return out;
}

Invocation parseArgs(const std::vector<std::string>& args) {
  GlobalState state;
  std::string error;
  size_t i = 0;
  bool optionsEnded = false;

  // Global options before the command.
  for (; i < args.size(); ++i) {
    if (args[i] == "--") {
      optionsEnded = true;
      ++i;
      break;
    }
    if (!isOptionLike(args[i])) break;
    // Before the command only: after it, --version is a word of a set statement.
    if (args[i] == "--version") {
      return helpInvocation("fulcrum " + std::string(kVersion) + "\n", state.options);
    }
    const Match m = globalOption(args, i, state, &error);
    if (m == Match::kError) return usageError(error);
    if (m == Match::kNo)
      return usageError("unknown option " + quote(args[i]) + " (see fulcrum --help)");
  }

  // `help WORDS...` reads the words as a command name and ignores the rest.
  bool helpCommand = false;
  if (i < args.size() && args[i] == "help") {
    helpCommand = true;
    ++i;
  }
  if (i == args.size()) {
    if (state.help || helpCommand) return helpInvocation(overviewHelp(), state.options);
    return usageError("missing command (see fulcrum --help)");
  }

  // The command's words: the longest run of args that names a command.
  std::vector<std::string_view> words;
  const CommandSpec* spec = nullptr;
  for (; i < args.size(); ++i) {
    const std::string_view w = args[i];
    if (!words.empty() && (isOptionLike(w) || w == "--")) {
      if (helpCommand || isHelpOption(w) || state.help) {
        return helpInvocation(groupHelp(words), state.options);
      }
      break;  // reported as incomplete below
    }
    words.push_back(w);
    spec = findCommand(words);
    if (spec) {
      ++i;
      break;
    }
    if (commandsStartingWith(words).empty()) {
      words.pop_back();
      const std::string see =
          words.empty() ? "fulcrum --help" : "fulcrum help " + joinWords(words, words.size());
      words.push_back(w);
      return usageError("unknown command " + quote(joinWords(words, words.size())) + " (see " +
                        see + ")");
    }
  }
  if (!spec) {
    if (helpCommand || state.help) return helpInvocation(groupHelp(words), state.options);
    return usageError("incomplete command " + quote(joinWords(words, words.size())) +
                      " (expected " + nextWords(words) + ")");
  }
  const std::string name = commandName(*spec);
  if (helpCommand || state.help) return helpInvocation(commandHelp(*spec), state.options);
  for (size_t k = i; !optionsEnded && k < args.size() && args[k] != "--"; ++k) {
    if (isHelpOption(args[k])) return helpInvocation(commandHelp(*spec), state.options);
  }

  // Operands and options after the command words.
  Parsed parsed;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (!optionsEnded && a == "--") {
      optionsEnded = true;
      continue;
    }
    if (optionsEnded || !isOptionLike(a)) {
      parsed.operands.push_back(a);
      continue;
    }
    Match m = globalOption(args, i, state, &error);
    if (m == Match::kNo && spec->takesCandidate) {
      m = matchOption(args, i, "--candidate", 0, "", nullptr, &error);
      if (m == Match::kYes) parsed.candidate = true;
    }
    if (m == Match::kNo && spec->takesComment) {
      std::string comment;
      m = matchOption(args, i, "--comment", 'm', "COMMENT", &comment, &error);
      if (m == Match::kYes && parsed.comment) {
        error = quote(a) + " given twice (one COMMENT per commit)";
        m = Match::kError;
      }
      if (m == Match::kYes) parsed.comment = std::move(comment);
    }
    if (m == Match::kError) return usageError(error);
    if (m == Match::kYes) continue;
    if (spec->statementWords) {
      parsed.operands.push_back(a);
      continue;
    }
    return usageError("unknown option " + quote(a) + " for " + quote(name) + " (see fulcrum help " +
                      name + ")");
  }
  if (parsed.operands.size() < spec->minOperands) {
    return usageError(quote(name) + " needs " + std::string(spec->operands) +
                      " (see fulcrum help " + name + ")");
  }
  if (parsed.operands.size() > spec->maxOperands) {
    return usageError("unexpected argument " + quote(parsed.operands[spec->maxOperands]) + " for " +
                      quote(name) + " (see fulcrum help " + name + ")");
  }

  Invocation inv;
  inv.options = state.options;
  if (auto buildError = spec->build(parsed, inv)) return usageError(*buildError);
  return inv;
}

}  // namespace fulcrum::cli
