// fulcrum-control: the control plane daemon.
//
//   fulcrum-control [--state-dir DIR] [--listen ADDR:PORT] [--socket PATH]
//                   [--syslog-file PATH] [--also-host-syslog] [--heartbeat-ms N]
//   fulcrum-control --help | --version
//
// Keeps the configuration (SQLite, commit/rollback), monitors servers, serves
// the engines' channel and the management socket, and writes every engine's
// request logs to the syslog file. SIGHUP reopens the syslog file (log
// rotation); SIGTERM and SIGINT stop it cleanly.
#include <event2/event.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "control-plane/control_server.h"
#include "shared/log.h"
#include "shared/version.h"

namespace {

constexpr const char* kUsage =
    "usage: fulcrum-control [--state-dir DIR] [--listen ADDR:PORT] [--socket PATH]\n"
    "                       [--syslog-file PATH] [--also-host-syslog] [--heartbeat-ms N]\n"
    "       fulcrum-control --help | --version\n"
    "  --state-dir         configuration store, management socket and default syslog file\n"
    "                      (default: /var/lib/fulcrum, /run/fulcrum/mgmt.sock,\n"
    "                      the configuration's syslog-file)\n"
    "  --listen            where engines connect (default: set system control-channel,\n"
    "                      127.0.0.1:7080)\n"
    "  --socket            the management socket (default STATE_DIR/mgmt.sock)\n"
    "  --syslog-file       overrides set system syslog-file\n"
    "  --also-host-syslog  also send every record to the host's syslog (/dev/log)\n"
    "  --heartbeat-ms      engine channel heartbeat (default 1000; peers silent for three\n"
    "                      intervals are dropped)\n"
    "  --version           print the version and exit\n";

int usage(const std::string& message) {
  std::fprintf(stderr, "fulcrum-control: %s\n%s", message.c_str(), kUsage);
  return 2;
}

struct Signals {
  event_base* base;
  fulcrum::ControlServer* server;
};

void onStop(evutil_socket_t, short, void* arg) {
  event_base_loopbreak(static_cast<Signals*>(arg)->base);
}

void onHangup(evutil_socket_t, short, void* arg) {
  fulcrum::log::info("SIGHUP: reopening the syslog file");
  static_cast<Signals*>(arg)->server->reopenLogs();
}

}  // namespace

int main(int argc, char** argv) {
  fulcrum::ControlServer::Options options;
  options.version = fulcrum::kVersion;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--version") {
      std::printf("fulcrum-control %s\n", fulcrum::kVersion);
      return 0;
    }
    if (arg == "--also-host-syslog") {
      options.alsoHostSyslog = true;
      continue;
    }
    const bool takesValue = arg == "--state-dir" || arg == "--listen" || arg == "--socket" ||
                            arg == "--syslog-file" || arg == "--heartbeat-ms";
    if (!takesValue) return usage("unknown argument '" + arg + "'");
    if (i + 1 >= argc) return usage("'" + arg + "' needs a value");
    std::string value = argv[++i];
    if (arg == "--state-dir")
      options.stateDir = value;
    else if (arg == "--listen")
      options.listen = value;
    else if (arg == "--socket")
      options.mgmtSocket = value;
    else if (arg == "--syslog-file")
      options.syslogFile = value;
    else {
      char* end = nullptr;
      long ms = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || ms < 50 || ms > 60000)
        return usage("--heartbeat-ms must be a number from 50 to 60000, not '" + value + "'");
      options.heartbeat = std::chrono::milliseconds(ms);
    }
  }
  fulcrum::log::setIdentity("fulcrum-control");
  signal(SIGPIPE, SIG_IGN);

  event_base* base = event_base_new();
  int rc = 0;
  {
    fulcrum::ControlServer server(base, options);
    std::string error;
    if (!server.start(&error)) {
      fulcrum::log::error(error);
      rc = 1;
    } else {
      Signals signals{base, &server};
      event* term = evsignal_new(base, SIGTERM, onStop, &signals);
      event* intr = evsignal_new(base, SIGINT, onStop, &signals);
      event* hup = evsignal_new(base, SIGHUP, onHangup, &signals);
      event_add(term, nullptr);
      event_add(intr, nullptr);
      event_add(hup, nullptr);
      event_base_dispatch(base);
      fulcrum::log::info("stopping");
      event_free(term);
      event_free(intr);
      event_free(hup);
    }
  }
  event_base_free(base);
  return rc;
}
