// fulcrum-data: the data-plane engine daemon.
//
//   fulcrum-data [--control ADDR:PORT] [--engine-id ID] [--capacity N] [--loops N]
//                [--http-connections N] [--io tun|none] [--burst N] [--offload on|off]
//                [--tun-io uring|syscalls] [--busy-poll-us N] [--pin-loops on|off]
//                [--log-level LEVEL] | --help | --version
//
// Connects to the control plane (default 127.0.0.1:7080), takes its
// configuration from it, reports status every second, and keeps forwarding
// with its last configuration while the control plane is away. With the tun
// backend (the default) every service set's two interfaces are multi-queue
// TUN devices it creates, one queue per packet loop.
#include <event2/event.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <thread>

#include "data-plane/control_client.h"
#include "data-plane/engine.h"
#include "data-plane/io/loop_runner.h"
#include "data-plane/io/tun.h"
#include "shared/log.h"
#include "shared/version.h"

namespace {

constexpr const char* kUsage =
    "usage: fulcrum-data [--control ADDR:PORT] [--engine-id ID] [--capacity N]\n"
    "                    [--http-connections N] [--loops N] [--io tun|none] [--burst N]\n"
    "                    [--offload on|off] [--tun-io uring|syscalls] [--busy-poll-us N]\n"
    "                    [--pin-loops on|off] [--log-level error|warning|info|debug]\n"
    "       fulcrum-data --help | --version\n"
    "  --control     where the control plane listens for engines (default 127.0.0.1:7080)\n"
    "  --engine-id   this engine's name in the control plane (default: the host name)\n"
    "  --capacity    session table size, fixed at start (default 1000000)\n"
    "  --http-connections\n"
    "                connections the HTTP filter follows at once (default: --capacity);\n"
    "                about 600 bytes each, taken only while in use\n"
    "  --loops       packet loops, one thread each, pinned to cores (default: one per core)\n"
    "  --io          tun (service interfaces are TUN devices; default) or none\n"
    "  --burst       packets a loop takes from a queue per turn, 1 to 32 (default 32)\n"
    "  --offload     on: TUN devices exchange GSO super-packets with partial checksums\n"
    "                (up to 64 KiB per system call); off: one packet each (default on)\n"
    "  --tun-io      uring: TUN bursts through io_uring, a burst's writes in one system\n"
    "                call, reads in rounds (default; falls back to syscalls, with a log\n"
    "                line, where the kernel refuses io_uring); syscalls: one read()/write()\n"
    "                per packet\n"
    "  --busy-poll-us\n"
    "                a loop that had packets keeps polling its queues this long before it\n"
    "                sleeps, yielding the core meanwhile (default 0: sleeps at once)\n"
    "  --pin-loops   on: loop i runs on core i only (default); off: the scheduler places them\n"
    "  --log-level   what goes to stderr: error, warning, info (default) or debug\n"
    "  --version     print the version and exit\n";

// Every option takes one value.
bool takesValue(const std::string& arg) {
  for (const char* known :
       {"--control", "--engine-id", "--capacity", "--http-connections", "--loops", "--io",
        "--burst", "--offload", "--tun-io", "--busy-poll-us", "--pin-loops", "--log-level"}) {
    if (arg == known) return true;
  }
  return false;
}

// Reads `value`, the value of option `arg`, as a whole number from lo to hi
// into *out; false with *error in the options' one wording when it is not.
bool numberIn(const std::string& arg, const std::string& value, uint64_t lo, uint64_t hi,
              uint64_t* out, std::string* error) {
  char* end = nullptr;
  *out = std::strtoull(value.c_str(), &end, 10);
  if (!value.empty() && *end == '\0' && *out >= lo && *out <= hi) return true;
  *error = arg + " must be a number from " + std::to_string(lo) + " to " + std::to_string(hi) +
           ", not '" + value + "'";
  return false;
}

// Reads an on/off option's value into *out; false with *error otherwise.
bool onOff(const std::string& arg, const std::string& value, bool* out, std::string* error) {
  *out = value == "on";
  if (value == "on" || value == "off") return true;
  *error = arg + " must be on or off, not '" + value + "'";
  return false;
}

int usage(const std::string& message) {
  std::fprintf(stderr, "fulcrum-data: %s\n%s", message.c_str(), kUsage);
  return 2;
}

void onSignal(evutil_socket_t, short, void* base) {
  event_base_loopbreak(static_cast<event_base*>(base));
}

}  // namespace

int main(int argc, char** argv) {
  std::string control = "127.0.0.1:7080", engineId, level = "info", io = "tun";
  uint64_t capacity = fulcrum::SessionTable::kDefaultCapacity;
  uint64_t httpConnections = 0;
  uint64_t loops = std::max(1u, std::thread::hardware_concurrency());
  uint64_t burst = fulcrum::PacketProcessor::kMaxBurst;
  bool offload = true;
  fulcrum::TunIo tunIo = fulcrum::TunIo::kUring;
  uint64_t busyPollUs = 0;
  bool pinLoops = true;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--version") {
      std::printf("fulcrum-data %s\n", fulcrum::kVersion);
      return 0;
    }
    // Unknown words used to be taken as --log-level; they are refused now.
    if (!takesValue(arg)) return usage("unknown argument '" + arg + "'");
    if (i + 1 >= argc) return usage("'" + arg + "' needs a value");
    std::string value = argv[++i];
    std::string error;
    if (arg == "--control") {
      control = value;
    } else if (arg == "--engine-id") {
      engineId = value;
    } else if (arg == "--capacity") {
      if (!numberIn(arg, value, 1, 100'000'000, &capacity, &error)) return usage(error);
    } else if (arg == "--http-connections") {
      if (!numberIn(arg, value, 1, fulcrum::state_word::kMaxHttpSlots, &httpConnections, &error))
        return usage(error);
    } else if (arg == "--loops") {
      if (!numberIn(arg, value, 0, 256, &loops, &error)) return usage(error);
    } else if (arg == "--burst") {
      if (!numberIn(arg, value, 1, fulcrum::PacketProcessor::kMaxBurst, &burst, &error))
        return usage(error);
    } else if (arg == "--offload") {
      if (!onOff(arg, value, &offload, &error)) return usage(error);
    } else if (arg == "--tun-io") {
      if (value != "uring" && value != "syscalls")
        return usage("--tun-io must be uring or syscalls, not '" + value + "'");
      tunIo = value == "uring" ? fulcrum::TunIo::kUring : fulcrum::TunIo::kSyscalls;
    } else if (arg == "--busy-poll-us") {
      if (!numberIn(arg, value, 0, 1'000'000, &busyPollUs, &error)) return usage(error);
    } else if (arg == "--pin-loops") {
      if (!onOff(arg, value, &pinLoops, &error)) return usage(error);
    } else if (arg == "--io") {
      if (value != "tun" && value != "none")
        return usage("--io must be tun or none, not '" + value + "'");
      io = value;
    } else {  // --log-level
      level = value;
    }
  }
  auto endpoint = fulcrum::channel::Endpoint::parse(control);
  if (!endpoint) return usage("--control: not ADDR:PORT or a socket path: '" + control + "'");
  if (engineId.empty()) {
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    engineId = host;
  }
  using fulcrum::log::Level;
  if (level == "error")
    fulcrum::log::setLevel(Level::kError);
  else if (level == "warning")
    fulcrum::log::setLevel(Level::kWarning);
  else if (level == "debug")
    fulcrum::log::setLevel(Level::kDebug);
  else if (level != "info")
    return usage("unknown log level '" + level + "'");
  fulcrum::log::setIdentity("fulcrum-data[" + engineId + "]");

  signal(SIGPIPE, SIG_IGN);
  fulcrum::Engine::Options engineOptions;
  engineOptions.capacity = static_cast<uint32_t>(capacity);
  engineOptions.httpFlows = static_cast<uint32_t>(httpConnections);
  engineOptions.loops = io == "none" ? 0 : static_cast<uint32_t>(loops);
  engineOptions.link = fulcrum::LinkType::kRawIp;
  fulcrum::Engine engine(engineOptions);
  fulcrum::LoopRunner runner(
      engine,
      [offload, tunIo](const std::string& name,
                       std::string* error) -> std::unique_ptr<fulcrum::PacketQueue> {
        return fulcrum::TunQueue::open(name, offload, tunIo, error);
      },
      [](const std::string& name, std::string* error) {
        return fulcrum::setInterfaceUp(name, 0, error);
      },
      burst, static_cast<uint32_t>(busyPollUs), pinLoops);
  runner.start();

  event_base* base = event_base_new();
  event* sigterm = evsignal_new(base, SIGTERM, onSignal, base);
  event* sigint = evsignal_new(base, SIGINT, onSignal, base);
  event_add(sigterm, nullptr);
  event_add(sigint, nullptr);
  {
    fulcrum::ControlClient::Options options;
    options.control = *endpoint;
    options.engineId = engineId;
    options.softwareVersion = fulcrum::kVersion;
    options.onApplied = [&runner](const fulcrum::Config& config, std::string* error) {
      return runner.sync(config, error);
    };
    fulcrum::ControlClient client(base, engine, options);
    client.start();
    fulcrum::log::info(
        "started: " + std::to_string(capacity) + " sessions, " +
        std::to_string(engine.loopCount()) + " packet loops (" + io +
        (io == "tun" ? tunIo == fulcrum::TunIo::kUring ? ", io_uring" : ", syscalls" : "") +
        "), control plane at " + endpoint->toString());
    event_base_dispatch(base);
    fulcrum::log::info("stopping");
  }
  runner.stop();
  event_free(sigterm);
  event_free(sigint);
  event_base_free(base);
  return 0;
}
