#include "shared/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace fulcrum::log {

namespace {

std::mutex gMutex;  // guards gIdentity and keeps lines whole across threads
std::string gIdentity = "fulcrum";
std::atomic<int> gLevel{static_cast<int>(Level::kInfo)};

const char* levelName(Level l) {
  switch (l) {
    case Level::kError:
      return "error";
    case Level::kWarning:
      return "warning";
    case Level::kInfo:
      return "info";
    case Level::kDebug:
      return "debug";
  }
  return "info";
}

}  // namespace

void setIdentity(std::string identity) {
  std::lock_guard lock(gMutex);
  gIdentity = std::move(identity);
}

void setLevel(Level level) {
  gLevel.store(static_cast<int>(level));
}

int64_t nowUnixUs() {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  return int64_t{tv.tv_sec} * 1000000 + tv.tv_usec;
}

int64_t nowUnixMs() {
  return nowUnixUs() / 1000;
}

void write(Level level, std::string_view message) {
  if (static_cast<int>(level) > gLevel.load()) return;
  int64_t us = nowUnixUs();
  time_t secs = static_cast<time_t>(us / 1000000);
  tm utc{};
  gmtime_r(&secs, &utc);
  char stamp[64];
  std::snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>((us / 1000) % 1000));
  std::lock_guard lock(gMutex);
  std::fprintf(stderr, "%s %s %s: %.*s\n", stamp, gIdentity.c_str(), levelName(level),
               static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
}

}  // namespace fulcrum::log
