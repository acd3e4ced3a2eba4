// Crash safety of the configuration store: a child process commits in a
// tight loop and is killed with SIGKILL at random moments; after every kill
// the store must open, and hold commits 1..N without gaps, each a valid
// configuration, the active one being N, with no acknowledged commit lost.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "control-plane/store/config_store.h"

namespace fulcrum {
namespace {

constexpr int kRounds = 20;
constexpr int kMaxKillDelayUs = 60000;
constexpr uint32_t kMaxTimeout = 604800;  // the language's session-timeout range

const std::string kBase =
    "set service-set web inside-interface fs-web-in outside-interface fs-web-out\n"
    "set application shop service-set web facade 198.18.0.10 port 80\n"
    "set application shop server s1 address 198.18.1.11\n";

// Commit n carries session-timeout n, so that every commit is a distinct
// configuration and its text can be checked against its number.
uint32_t timeoutFor(int64_t number) {
  return static_cast<uint32_t>((number - 1) % kMaxTimeout) + 1;
}

bool writeAll(int fd, const void* data, size_t size) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// The child: commits until killed, writing each acknowledged commit number
// to `fd`. An exit status (rather than a kill) means something failed.
int runCommitter(const std::string& path, int fd) {
  std::string error;
  auto store = ConfigStore::open(path, &error);
  if (store == nullptr) return 10;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    const auto active = store->active();
    if (!active) return 11;
    const int64_t next = active->number + 1;
    if (store->edit("set application shop session-timeout " + std::to_string(timeoutFor(next)))) {
      return 12;
    }
    const auto r = store->commit("crash-test", "commit " + std::to_string(next));
    if (!std::holds_alternative<int64_t>(r)) return 13;
    const int64_t number = std::get<int64_t>(r);
    if (number != next) return 14;
    if (!writeAll(fd, &number, sizeof number)) return 15;
  }
  return 16;  // never killed: the parent is gone or stuck
}

std::vector<int64_t> readNumbers(int fd) {
  std::vector<int64_t> out;
  int64_t n = 0;
  size_t have = 0;
  char* p = reinterpret_cast<char*>(&n);
  while (true) {
    const ssize_t r = read(fd, p + have, sizeof n - have);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    have += static_cast<size_t>(r);
    if (have == sizeof n) {
      out.push_back(n);
      have = 0;
    }
  }
  return out;
}

class StoreCrashTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "fulcrum-store-crash-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/config.db";
  }
  void TearDown() override {
    if (child_ > 0) {
      kill(child_, SIGKILL);
      waitpid(child_, nullptr, 0);
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // Reopens the store after a kill and checks everything it holds. Returns
  // the number of commits.
  int64_t verify(int64_t acknowledged, int64_t previousCount) {
    std::string error;
    auto store = ConfigStore::open(path_, &error);
    EXPECT_NE(store, nullptr) << error;
    if (store == nullptr) return -1;

    const auto all = store->commits(SIZE_MAX);
    const int64_t count = static_cast<int64_t>(all.size());
    EXPECT_EQ(store->lastReadError(), "");
    // Nothing acknowledged is lost, at most the one commit in flight is
    // added, and nothing ever goes away.
    EXPECT_GE(count, acknowledged);
    EXPECT_LE(count, std::max(acknowledged, previousCount) + 1);
    EXPECT_GE(count, previousCount);
    for (size_t k = 0; k < all.size(); ++k) {
      const CommitRecord& c = all[k];
      EXPECT_EQ(c.number, count - static_cast<int64_t>(k)) << "commits must be 1..N";
      // Older commits were checked in earlier rounds.
      if (c.number <= previousCount && c.number != 1) continue;
      const ConfigResult r = parseConfig(c.text);
      EXPECT_TRUE(r.ok()) << "commit " << c.number << ": " << r.error->toString();
      if (!r.ok()) continue;
      EXPECT_EQ(configToText(r.config), c.text);
      EXPECT_EQ(r.config.applications.size(), 1u) << "commit " << c.number << ":\n" << c.text;
      if (r.config.applications.size() != 1) continue;
      EXPECT_EQ(r.config.applications[0].sessionTimeoutSeconds, timeoutFor(c.number))
          << "commit " << c.number << " holds another commit's configuration";
    }

    const auto active = store->active();
    EXPECT_TRUE(active.has_value());
    if (!active) return count;
    EXPECT_EQ(active->number, count);
    const ConfigResult activeConfig = parseConfig(active->text);
    EXPECT_TRUE(activeConfig.ok()) << activeConfig.error->toString();

    // The candidate is either the active configuration or the edit made for
    // the next commit, never something torn.
    const ConfigResult candidate = applyConfig(store->candidateText());
    EXPECT_TRUE(candidate.ok()) << candidate.error->toString();
    EXPECT_EQ(candidate.config.applications.size(), 1u) << store->candidateText();
    if (candidate.ok() && candidate.config.applications.size() == 1) {
      const uint32_t t = candidate.config.applications[0].sessionTimeoutSeconds;
      EXPECT_TRUE(t == timeoutFor(count) || t == timeoutFor(count + 1)) << t;
    }
    return count;
  }

  std::string dir_;
  std::string path_;
  pid_t child_ = -1;
};

TEST_F(StoreCrashTest, KilledCommitterLeavesAConsistentStore) {
  {
    std::string error;
    auto store = ConfigStore::open(path_, &error);
    ASSERT_NE(store, nullptr) << error;
    ASSERT_EQ(store->replaceCandidate(kBase + "set application shop session-timeout 1\n"),
              std::nullopt);
    const auto r = store->commit("setup", "");
    ASSERT_TRUE(std::holds_alternative<int64_t>(r));
    ASSERT_EQ(std::get<int64_t>(r), 1);
    // Closed here: a connection must not cross fork().
  }

  const auto started = std::chrono::steady_clock::now();
  std::mt19937 rng(20240601);
  int64_t count = 1;
  int64_t acknowledged = 1;
  int killedWithProgress = 0;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    child_ = fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      close(fds[0]);
      _exit(runCommitter(path_, fds[1]));  // never returns into the test
    }
    close(fds[1]);
    // Some kills land while the child opens the store, most while it commits.
    const int delayUs =
        round < 3 ? static_cast<int>(rng() % 3000) : static_cast<int>(rng() % kMaxKillDelayUs);
    std::this_thread::sleep_for(std::chrono::microseconds(delayUs));
    ASSERT_EQ(kill(child_, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(child_, &status, 0), child_);
    child_ = -1;
    const std::vector<int64_t> numbers = readNumbers(fds[0]);
    close(fds[0]);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the committer failed on its own, exit status "
        << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    for (size_t k = 0; k < numbers.size(); ++k) {
      ASSERT_EQ(numbers[k], (k == 0 ? count : numbers[k - 1]) + 1)
          << "the committer saw a gap or a repeat";
    }
    if (!numbers.empty()) {
      acknowledged = numbers.back();
      ++killedWithProgress;
    }
    const int64_t now = verify(acknowledged, count);
    ASSERT_GE(now, 1);
    count = now;
    ASSERT_FALSE(HasFailure());
  }
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_LT(elapsed, std::chrono::seconds(60));
  // The test is only meaningful if the child got to commit in most rounds.
  EXPECT_GE(killedWithProgress, kRounds / 2);
  EXPECT_GT(count, kRounds);
  std::printf("%d rounds, %lld commits, %d rounds killed after progress, %lld ms\n", kRounds,
              static_cast<long long>(count), killedWithProgress,
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()));
}

}  // namespace
}  // namespace fulcrum
