// Child processes for tests and benchmarks that drive the real daemons
// (fulcrum-control, the fulcrum CLI, redis-server) from C++.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/types.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace fulcrum::testing {

// Starts argv[0] (looked up in PATH when it has no slash) with stdout and
// stderr appended to `logPath`. The pid, or -1 when it could not start.
inline pid_t spawnLogged(const std::vector<std::string>& argv, const std::string& logPath) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

// The whole file, or "" when it cannot be read.
inline std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace fulcrum::testing
