#include "mgmt/cli.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "mgmt/cli_args.h"
#include "mgmt/cli_text.h"
#include "shared/channel/channel.h"

namespace fulcrum::cli {

namespace {

// A load text must leave room in its frame for the rest of the request.
constexpr size_t kMaxLoadBytes = channel::kDefaultMaxFrame - 64 * 1024;

// Reads all of `path` into *text, or says in *error why not. Reading stops
// past kMaxLoadBytes, so that `load /dev/zero` ends.
bool readLoadFile(const std::string& path, std::string* text, std::string* error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = "cannot read " + quoteForDisplay(path) + ": " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    *error = "cannot read " + quoteForDisplay(path) + ": " + std::strerror(EISDIR);
    return false;
  }
  text->clear();
  char buffer[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = "cannot read " + quoteForDisplay(path) + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    text->append(buffer, static_cast<size_t>(n));
    if (text->size() > kMaxLoadBytes) {
      *error = quoteForDisplay(path) + " is too large (more than " + std::to_string(kMaxLoadBytes) +
               " bytes)";
      ::close(fd);
      return false;
    }
  }
  ::close(fd);
  if (const auto offset = invalidUtf8Offset(*text)) {
    *error = quoteForDisplay(path) + " is not UTF-8 text (bad byte at offset " +
             std::to_string(*offset) + ")";
    return false;
  }
  return true;
}

// "10s", "2.5s", "0.25s".
std::string secondsText(std::chrono::milliseconds timeout) {
  std::string out = std::to_string(timeout.count() / 1000);
  if (const auto ms = timeout.count() % 1000; ms != 0) {
    std::string fraction = std::to_string(1000 + ms).substr(1);
    fraction.erase(fraction.find_last_not_of('0') + 1);
    out += "." + fraction;
  }
  return out + "s";
}

std::string exchangeError(const Exchange& exchange, const std::string& socket,
                          std::chrono::milliseconds timeout) {
  const std::string path = escapeForDisplay(socket);
  switch (exchange.status) {
    case Exchange::Status::kUnreachable:
      // The socket is owner-only: the daemon may run well, and then starting
      // it is the wrong advice.
      if (exchange.reason == std::strerror(EACCES)) {
        return "cannot reach the control plane at " + path + ": " + exchange.reason +
               "; the socket is for its owner: run fulcrum as that user (e.g. with sudo)";
      }
      return "cannot reach the control plane at " + path + ": " + exchange.reason +
             "; start it with 'systemctl start fulcrum-control' or 'fulcrum-control --state-dir "
             "DIR'";
    case Exchange::Status::kSendFailed:
      return "cannot send the request to the control plane at " + path + ": " + exchange.reason;
    case Exchange::Status::kTimedOut:
      return "no reply from the control plane at " + path + " within " + secondsText(timeout);
    case Exchange::Status::kBroken:
      return "incomplete reply from the control plane at " + path + ": " + exchange.reason;
    case Exchange::Status::kOk:
      break;
  }
  return "";
}

}  // namespace

std::string socketPath(const GlobalOptions& options,
                       const std::optional<std::string>& socketVariable) {
  if (options.socketPath) return *options.socketPath;
  if (socketVariable && !socketVariable->empty()) return *socketVariable;
  return std::string(kDefaultSocketPath);
}

std::string chooseUser(const std::optional<std::string>& sudoUser,
                       const std::optional<std::string>& loginName, uid_t uid) {
  for (const auto* name : {&sudoUser, &loginName}) {
    if (*name && !(*name)->empty() && !invalidUtf8Offset(**name)) return **name;
  }
  return std::to_string(uid);
}

std::string invokingUser() {
  std::optional<std::string> sudoUser, loginName;
  if (const char* s = std::getenv("SUDO_USER")) sudoUser = s;
  const uid_t uid = ::getuid();
  passwd pw{};
  passwd* found = nullptr;
  std::string buffer(16 * 1024, '\0');
  if (::getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &found) == 0 && found &&
      found->pw_name) {
    loginName = found->pw_name;
  }
  return chooseUser(sudoUser, loginName, uid);
}

Environment processEnvironment() {
  Environment env;
  if (const char* s = std::getenv(kSocketVariable)) env.socketVariable = s;
  env.user = invokingUser();
  env.now = Clock::now();
  return env;
}

int run(const std::vector<std::string>& args, const Environment& env, Transport& transport,
        std::ostream& out, std::ostream& err) {
  Invocation inv = parseArgs(args);
  switch (inv.kind) {
    case Invocation::Kind::kHelp:
      out << inv.text;
      return kExitOk;
    case Invocation::Kind::kUsageError:
      err << "fulcrum: " << inv.text << '\n';
      return kExitUsage;
    case Invocation::Kind::kRequest:
      break;
  }
  pb::MgmtRequest& request = inv.request;
  request.set_protocol_version(channel::kProtocolVersion);
  request.set_user(env.user);
  if (request.has_load()) {
    std::string error;
    if (!readLoadFile(inv.loadPath, request.mutable_load()->mutable_text(), &error)) {
      err << "fulcrum: " << error << '\n';
      return kExitUsage;
    }
  }

  const std::string path = socketPath(inv.options, env.socketVariable);
  const Exchange exchange = transport.exchange(path, request, inv.options.timeout);
  if (exchange.status != Exchange::Status::kOk) {
    err << "fulcrum: " << exchangeError(exchange, path, inv.options.timeout) << '\n';
    return kExitNoControl;
  }
  pb::MgmtReply reply;
  if (!reply.ParseFromString(exchange.payload)) {
    err << "fulcrum: bad reply from the control plane at " << escapeForDisplay(path) << ": "
        << exchange.payload.size() << " bytes that do not parse as a MgmtReply\n";
    return kExitNoControl;
  }
  if (!reply.ok()) {
    err << "fulcrum: " << formatReplyError(reply.error()) << '\n';
    return kExitRefused;
  }
  if (inv.options.json) {
    std::string error;
    const auto json = renderJson(reply, &error);
    if (!json) {
      err << "fulcrum: cannot print the reply from the control plane at " << escapeForDisplay(path)
          << " as JSON: " << error << '\n';
      return kExitNoControl;
    }
    out << *json;
  } else {
    out << renderText(reply, request.command_case(), env.now);
  }
  return kExitOk;
}

}  // namespace fulcrum::cli
