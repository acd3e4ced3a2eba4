#include "shared/channel/channel.h"

#include <event2/event.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "shared/proto/fulcrum.pb.h"

namespace fulcrum::channel {
namespace {

using namespace std::chrono_literals;

class ChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = event_base_new();
    char dir[] = "/tmp/fulcrum-channel-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir));
    dir_ = dir;
  }
  void TearDown() override {
    accepted_.clear();
    listener_.reset();
    event_base_free(base_);
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  // Runs the loop until `done` or the bound passes.
  bool runUntil(const std::function<bool()>& done, std::chrono::milliseconds bound = 3000ms) {
    auto deadline = std::chrono::steady_clock::now() + bound;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      timeval tv{0, 10000};
      event_base_loopexit(base_, &tv);
      event_base_dispatch(base_);
    }
    return true;
  }
  void listenOn(const Endpoint& e, Connection::Options options = {}) {
    std::string error;
    listener_ = Listener::listen(
        base_, e,
        [this, options](evutil_socket_t fd, std::string peer) {
          Connection::Callbacks cb;
          cb.onFrame = [this](Connection& c, std::string_view payload) {
            pb::EngineMessage m;
            if (!m.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
              c.close("peer " + c.peer() + " sent a frame that does not parse");
              return;
            }
            serverGot_.push_back(m);
            if (m.has_heartbeat()) {  // echo, so the client sees a reply
              c.send(m);
            }
          };
          cb.onClose = [this](Connection&, const std::string& reason) {
            serverClosed_.push_back(reason);
          };
          accepted_.push_back(Connection::adopt(base_, fd, peer, options, cb));
        },
        &error);
    ASSERT_TRUE(listener_) << error;
  }
  std::shared_ptr<Connection> connectTo(const Endpoint& e, Connection::Options options = {}) {
    Connection::Callbacks cb;
    cb.onConnected = [this](Connection&) { clientConnected_ = true; };
    cb.onFrame = [this](Connection&, std::string_view payload) {
      pb::EngineMessage m;
      ASSERT_TRUE(m.ParseFromArray(payload.data(), static_cast<int>(payload.size())));
      clientGot_.push_back(m);
    };
    cb.onClose = [this](Connection&, const std::string& reason) {
      clientClosed_.push_back(reason);
    };
    return Connection::connect(base_, e, options, cb);
  }
  static pb::EngineMessage heartbeat(int64_t t) {
    pb::EngineMessage m;
    m.mutable_heartbeat()->set_time_unix_ms(t);
    return m;
  }

  event_base* base_ = nullptr;
  std::string dir_;
  std::unique_ptr<Listener> listener_;
  std::vector<std::shared_ptr<Connection>> accepted_;
  std::vector<pb::EngineMessage> serverGot_, clientGot_;
  std::vector<std::string> serverClosed_, clientClosed_;
  bool clientConnected_ = false;
};

TEST(Endpoint, Parses) {
  auto tcp = Endpoint::parse("127.0.0.1:7080");
  ASSERT_TRUE(tcp);
  EXPECT_EQ(tcp->kind, Endpoint::Kind::kTcp);
  EXPECT_EQ(tcp->port, 7080);
  EXPECT_EQ(tcp->toString(), "127.0.0.1:7080");
  auto v6 = Endpoint::parse("[::1]:80");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->toString(), "[::1]:80");
  auto unix = Endpoint::parse("unix:/run/fulcrum/mgmt.sock");
  ASSERT_TRUE(unix);
  EXPECT_EQ(unix->kind, Endpoint::Kind::kUnix);
  EXPECT_EQ(unix->path, "/run/fulcrum/mgmt.sock");
  for (const char* bad :
       {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "host:80", ":80", "127.0.0.1:8x"})
    EXPECT_FALSE(Endpoint::parse(bad)) << bad;
}

TEST_F(ChannelTest, FramesBothWaysOverTcp) {
  listenOn(*Endpoint::parse("127.0.0.1:0"));
  Endpoint at = *Endpoint::parse("127.0.0.1:" + std::to_string(listener_->port()));
  auto client = connectTo(at);
  ASSERT_TRUE(runUntil([&] { return clientConnected_; }));
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(client->send(heartbeat(i)));
  ASSERT_TRUE(runUntil([&] { return clientGot_.size() == 100; }));
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(serverGot_[i].heartbeat().time_unix_ms(), i);
    EXPECT_EQ(clientGot_[i].heartbeat().time_unix_ms(), i);
  }
  EXPECT_TRUE(serverClosed_.empty());
}

TEST_F(ChannelTest, UnixSocketIsOwnerOnlyAndNotStolen) {
  Endpoint at = *Endpoint::parse(dir_ + "/mgmt.sock");
  listenOn(at);
  struct stat st {};
  ASSERT_EQ(stat(at.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // A second listener on a live socket is refused.
  std::string error;
  EXPECT_FALSE(Listener::listen(
      base_, at, [](evutil_socket_t, std::string) {}, &error));
  EXPECT_NE(error.find("in use"), std::string::npos) << error;
  auto client = connectTo(at);
  ASSERT_TRUE(runUntil([&] { return clientConnected_; }));
  client->send(heartbeat(7));
  ASSERT_TRUE(runUntil([&] { return clientGot_.size() == 1; }));
}

TEST_F(ChannelTest, StaleUnixSocketIsReplaced) {
  Endpoint at = *Endpoint::parse(dir_ + "/stale.sock");
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::strcpy(un.sun_path, at.path.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&un), sizeof(un)), 0);
  close(fd);  // the file stays, nobody listens: what a crashed process leaves
  listenOn(at);
}

TEST_F(ChannelTest, OversizedFrameClosesOnlyThatConnection) {
  Connection::Options small;
  small.maxFrame = 1024;
  listenOn(*Endpoint::parse("127.0.0.1:0"), small);
  Endpoint at = *Endpoint::parse("127.0.0.1:" + std::to_string(listener_->port()));
  auto good = connectTo(at);
  std::string error;
  int bad = connectBlocking(at, 1000ms, &error);
  ASSERT_GE(bad, 0) << error;
  const unsigned char huge[4] = {0x7f, 0xff, 0xff, 0xff};
  ASSERT_EQ(::send(bad, huge, 4, MSG_NOSIGNAL), 4);
  ASSERT_TRUE(runUntil([&] { return serverClosed_.size() == 1; }));
  EXPECT_NE(serverClosed_[0].find("2147483647 bytes"), std::string::npos) << serverClosed_[0];
  EXPECT_NE(serverClosed_[0].find("127.0.0.1:"), std::string::npos) << "names the peer";
  ::close(bad);
  good->send(heartbeat(1));
  ASSERT_TRUE(runUntil([&] { return clientGot_.size() == 1; }));
  EXPECT_EQ(serverClosed_.size(), 1u);
}

TEST_F(ChannelTest, GarbageAndTruncatedFramesAreHandled) {
  listenOn(*Endpoint::parse("127.0.0.1:0"));
  Endpoint at = *Endpoint::parse("127.0.0.1:" + std::to_string(listener_->port()));
  std::string error;
  // A frame whose payload is not a message: the owner closes it.
  int garbage = connectBlocking(at, 1000ms, &error);
  ASSERT_GE(garbage, 0);
  const unsigned char junk[] = {0, 0, 0, 3, 0xff, 0xff, 0xff};
  ASSERT_EQ(::send(garbage, junk, sizeof(junk), MSG_NOSIGNAL), 7);
  ASSERT_TRUE(runUntil([&] { return serverClosed_.size() == 1; }));
  EXPECT_NE(serverClosed_[0].find("does not parse"), std::string::npos);
  ::close(garbage);
  // Half a frame, then the peer goes away: closed, nothing delivered.
  int truncated = connectBlocking(at, 1000ms, &error);
  std::string frame = encodeFrame(heartbeat(5));
  ASSERT_EQ(::send(truncated, frame.data(), frame.size() - 2, MSG_NOSIGNAL),
            static_cast<ssize_t>(frame.size() - 2));
  ::close(truncated);
  ASSERT_TRUE(runUntil([&] { return serverClosed_.size() == 2; }));
  EXPECT_TRUE(serverGot_.empty());
}

TEST_F(ChannelTest, FrameSplitIntoSingleBytesIsReassembled) {
  listenOn(*Endpoint::parse("127.0.0.1:0"));
  Endpoint at = *Endpoint::parse("127.0.0.1:" + std::to_string(listener_->port()));
  std::string error;
  int fd = connectBlocking(at, 1000ms, &error);
  std::string frame = encodeFrame(heartbeat(424242));
  for (char c : frame) {
    ASSERT_EQ(::send(fd, &c, 1, MSG_NOSIGNAL), 1);
    runUntil([] { return false; }, 1ms);
  }
  ASSERT_TRUE(runUntil([&] { return serverGot_.size() == 1; }));
  EXPECT_EQ(serverGot_[0].heartbeat().time_unix_ms(), 424242);
  ::close(fd);
}

TEST_F(ChannelTest, SilentPeerIsDropped) {
  Connection::Options idle;
  idle.idleTimeout = 200ms;
  listenOn(*Endpoint::parse("127.0.0.1:0"), idle);
  Endpoint at = *Endpoint::parse("127.0.0.1:" + std::to_string(listener_->port()));
  std::string error;
  int fd = connectBlocking(at, 1000ms, &error);
  ASSERT_GE(fd, 0);
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(runUntil([&] { return serverClosed_.size() == 1; }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
  EXPECT_NE(serverClosed_[0].find("silent"), std::string::npos) << serverClosed_[0];
  ::close(fd);
}

TEST_F(ChannelTest, RefusedConnectIsReported) {
  // Bind a port and close it, so nothing listens there.
  listenOn(*Endpoint::parse("127.0.0.1:0"));
  uint16_t port = listener_->port();
  listener_.reset();
  auto client = connectTo(*Endpoint::parse("127.0.0.1:" + std::to_string(port)));
  ASSERT_TRUE(runUntil([&] { return clientClosed_.size() == 1; }));
  EXPECT_NE(clientClosed_[0].find("refused"), std::string::npos) << clientClosed_[0];
  EXPECT_FALSE(client->isOpen());
}

TEST_F(ChannelTest, BlockingHelpersRoundTrip) {
  listenOn(*Endpoint::parse("127.0.0.1:0"));
  Endpoint at = *Endpoint::parse("127.0.0.1:" + std::to_string(listener_->port()));
  std::string error, payload;
  int fd = connectBlocking(at, 1000ms, &error);
  ASSERT_GE(fd, 0) << error;
  std::thread loop([&] { runUntil([&] { return serverGot_.size() == 1; }); });
  ASSERT_TRUE(writeFrameBlocking(fd, heartbeat(99), 1000ms, &error)) << error;
  loop.join();
  std::thread loop2([&] { runUntil([] { return false; }, 300ms); });
  ASSERT_TRUE(readFrameBlocking(fd, payload, kDefaultMaxFrame, 2000ms, &error)) << error;
  loop2.join();
  pb::EngineMessage m;
  ASSERT_TRUE(m.ParseFromString(payload));
  EXPECT_EQ(m.heartbeat().time_unix_ms(), 99);
  // Nothing more comes: the read times out, bounded.
  EXPECT_FALSE(readFrameBlocking(fd, payload, kDefaultMaxFrame, 100ms, &error));
  EXPECT_EQ(error, "timed out");
  ::close(fd);
}

}  // namespace
}  // namespace fulcrum::channel
