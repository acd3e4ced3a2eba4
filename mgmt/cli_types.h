// Plain types of the management CLI `fulcrum` (DESIGN.md, "Management CLI"):
// what a command line asks for, and the exit statuses the CLI promises.
// Operations on them: cli_args.h (parsing), cli_render.h (output), cli.h (a run).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shared/proto/fulcrum.pb.h"

namespace fulcrum::cli {

inline constexpr std::string_view kDefaultSocketPath = "/run/fulcrum/mgmt.sock";
inline constexpr const char* kSocketVariable = "FULCRUM_SOCKET";
inline constexpr std::chrono::milliseconds kDefaultTimeout{10'000};
// --timeout is bounded so that no value overflows a poll() timeout.
inline constexpr std::chrono::milliseconds kMaxTimeout{24 * 3600 * 1000};

// Exit statuses; `fulcrum --help` lists them.
enum ExitStatus : int {
  kExitOk = 0,
  kExitRefused = 1,    // the control plane answered ok=false (nothing changed)
  kExitUsage = 2,      // bad command line or unreadable FILE; nothing was sent
  kExitNoControl = 3,  // control plane not reachable, or no usable reply
  kExitOutput = 4,     // stdout could not be written (full disk...)
};

// Options that apply to every command.
struct GlobalOptions {
  std::optional<std::string> socketPath;  // --socket; else $FULCRUM_SOCKET, else the default
  bool json = false;                      // --json
  std::chrono::milliseconds timeout = kDefaultTimeout;  // --timeout
};

// What a command line asks for.
struct Invocation {
  enum class Kind : uint8_t {
    kRequest,     // send `request` to the control plane
    kHelp,        // print `text` on stdout, exit 0
    kUsageError,  // print "fulcrum: " + `text` on stderr, exit kExitUsage
  };
  Kind kind = Kind::kRequest;
  std::string text;
  GlobalOptions options;
  // kRequest: the command is set; protocol_version and user are left to the
  // caller, and for `load` so is load.text (the file is read by run()).
  pb::MgmtRequest request;
  std::string loadPath;  // `load FILE`: FILE
};

}  // namespace fulcrum::cli
