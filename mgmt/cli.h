// One run of `fulcrum`: command line in, exit status out (DESIGN.md,
// "Management CLI"). main.cpp gives it the process's environment, the real
// socket and std::cout/std::cerr; tests give it fakes.
#pragma once

#include <sys/types.h>

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "mgmt/cli_render.h"
#include "mgmt/cli_types.h"
#include "mgmt/transport.h"

namespace fulcrum::cli {

// What a run takes from outside the command line.
struct Environment {
  std::optional<std::string> socketVariable;  // $FULCRUM_SOCKET
  std::string user;                           // MgmtRequest.user, see chooseUser()
  Clock::time_point now;                      // SINCE/CONNECTED/LAST-STATUS count from it
};

// The environment of this process: $FULCRUM_SOCKET, invokingUser(), the clock.
Environment processEnvironment();

// Runs `args` (argv without argv[0]) to the end and returns the exit status
// (ExitStatus):
//   help: printed on `out`; 0; `transport` is not used.
//   usage error, or `load FILE` with FILE unreadable, not UTF-8 or too large
//     for a frame: 2; nothing sent.
//   otherwise one exchange through `transport` with the socket of
//   socketPath(), a MgmtRequest with protocol_version kProtocolVersion and
//   user env.user, bounded by --timeout:
//     not reachable / timed out / cut short / not a MgmtReply: 3;
//     ok=false: formatReplyError(), 1;
//     ok=true: renderText() (renderJson() with --json) on `out`, 0.
// Every failure writes exactly one line "fulcrum: ..." on `err` and nothing
// on `out`; a success writes nothing on `err`.
int run(const std::vector<std::string>& args, const Environment& env, Transport& transport,
        std::ostream& out, std::ostream& err);

// --socket, else $FULCRUM_SOCKET when set and not empty, else kDefaultSocketPath.
std::string socketPath(const GlobalOptions& options,
                       const std::optional<std::string>& socketVariable);

// The user a request names: `sudoUser` ($SUDO_USER) when set and not empty,
// else `loginName` (the password-database name of the real uid) when known,
// else `uid` in decimal. A name that is not UTF-8 is passed over (protobuf
// cannot carry it). For the commit log, not for access control: the control
// plane can learn the peer's uid from the socket itself.
std::string chooseUser(const std::optional<std::string>& sudoUser,
                       const std::optional<std::string>& loginName, uid_t uid);

// chooseUser() for this process: $SUDO_USER, getpwuid_r(getuid()), getuid().
std::string invokingUser();

}  // namespace fulcrum::cli
