// RedisTestServer: a private redis-server for tests and benchmarks (not linked
// into the engine). Each instance runs one redis-server on 127.0.0.1 with a
// free port, in its own temporary directory, persisting nothing; it is killed
// when the instance goes away (and by the kernel if the test process dies).
#pragma once

#include <arpa/inet.h>
#include <hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace fulcrum::testing {

class RedisTestServer {
 public:
  // redis-server found on PATH (tests skip without it).
  static bool installed() {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin";
    size_t start = 0;
    while (start <= dirs.size()) {
      size_t end = dirs.find(':', start);
      if (end == std::string::npos) end = dirs.size();
      const std::string candidate = dirs.substr(start, end - start) + "/redis-server";
      if (access(candidate.c_str(), X_OK) == 0) return true;
      start = end + 1;
    }
    return false;
  }

  // `extra`: more redis-server arguments, e.g. {"--requirepass", "secret"}.
  explicit RedisTestServer(std::vector<std::string> extra = {}) : extra_(std::move(extra)) {
    char dir[] = "/tmp/fulcrum-redis-XXXXXX";
    if (mkdtemp(dir)) dir_ = dir;
  }
  ~RedisTestServer() {
    kill(SIGKILL);
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  RedisTestServer(const RedisTestServer&) = delete;
  RedisTestServer& operator=(const RedisTestServer&) = delete;

  // Starts redis-server on `port` (0: a free one, the same on later starts)
  // and waits, at most 5 s, until it answers PING. False if it never did.
  bool start(uint16_t port = 0) {
    if (dir_.empty()) return false;
    for (int attempt = 0; attempt < 3; ++attempt) {
      port_ = port ? port : (port_ ? port_ : freePort());
      if (spawn() && waitReady()) return true;
      kill(SIGKILL);
      if (port) return false;  // the caller wants this port
      port_ = 0;               // taken meanwhile: another one
    }
    return false;
  }

  // Sends `sig` (SIGKILL by default; SIGSTOP/SIGCONT freeze and thaw it).
  // The process is reaped after SIGKILL/SIGTERM.
  void kill(int sig = SIGKILL) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    if (sig == SIGKILL || sig == SIGTERM) {
      if (sig == SIGTERM) ::kill(pid_, SIGCONT);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  uint16_t port() const { return port_; }
  bool running() const { return pid_ > 0; }

  // A fresh client connection (caller frees it with redisFree), already
  // authenticated with `password` if not empty. nullptr if it cannot connect.
  redisContext* client(const std::string& password = "", int db = 0) const {
    timeval tv{1, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    if (!c || c->err) {
      if (c) redisFree(c);
      return nullptr;
    }
    redisSetTimeout(c, tv);
    if (!password.empty()) freeReplyObject(redisCommand(c, "AUTH %s", password.c_str()));
    if (db != 0) freeReplyObject(redisCommand(c, "SELECT %d", db));
    return c;
  }

  // Runs one command on a fresh connection; returns its integer reply, or its
  // string reply's text in `*text`. -1000 when the command failed.
  long long command(const std::vector<std::string>& args, std::string* text = nullptr,
                    const std::string& password = "", int db = 0) const {
    redisContext* c = client(password, db);
    if (!c) return -1000;
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    long long result = -1000;
    if (r) {
      if (r->type == REDIS_REPLY_INTEGER) result = r->integer;
      if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
        result = 0;
        if (text) text->assign(r->str, r->len);
      }
      if (r->type == REDIS_REPLY_NIL) result = -1;
      freeReplyObject(r);
    }
    redisFree(c);
    return result;
  }

 private:
  static uint16_t freePort() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    uint16_t port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
    close(fd);
    return port;
  }

  bool spawn() {
    std::vector<std::string> args = {"redis-server",
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--daemonize",
                                     "no",
                                     "--dir",
                                     dir_,
                                     "--logfile",
                                     dir_ + "/redis.log"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      execvp("redis-server", argv.data());
      _exit(127);
    }
    return true;
  }

  // Polls (bounded) until PING is answered, by PONG or by NOAUTH.
  bool waitReady() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {  // exited: port taken?
        pid_ = -1;
        return false;
      }
      if (redisContext* c = client()) {
        auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
        const bool ok = r && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR);
        if (r) freeReplyObject(r);
        redisFree(c);
        if (ok) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  std::vector<std::string> extra_;
  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace fulcrum::testing
