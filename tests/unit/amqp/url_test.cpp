#include "oss/amqp/url.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

#include "oss/amqp/connection.hpp"
#include "oss/amqp/nodes.hpp"

namespace oss::amqp {
namespace {

TEST(MaskUrl, ReplacesThePassword) {
  EXPECT_EQ(mask_url("amqp://user:secret@host:5672/%2f"), "amqp://user:***@host:5672/%2f");
  EXPECT_EQ(mask_url("amqp://guest:guest@127.0.0.1:60417/"), "amqp://guest:***@127.0.0.1:60417/");
}

TEST(MaskUrl, PasswordContainingEncodedAtAndColon) {
  EXPECT_EQ(mask_url("amqp://u:p%40ss:w@h/v"), "amqp://u:***@h/v");
  // A raw '@' in the password: everything up to the last '@' of the authority is userinfo.
  EXPECT_EQ(mask_url("amqp://u:p@ss@h/v"), "amqp://u:***@h/v");
}

TEST(MaskUrl, LeavesUrlsWithoutPasswordAlone) {
  EXPECT_EQ(mask_url("amqp://host:5672/vh"), "amqp://host:5672/vh");
  EXPECT_EQ(mask_url("amqp://user@host/vh"), "amqp://user@host/vh");
  EXPECT_EQ(mask_url("amqp://host/vh@x"), "amqp://host/vh@x");  // '@' after the authority
  EXPECT_EQ(mask_url(""), "");
}

TEST(MaskUrl, MasksEvenWithoutScheme) { EXPECT_EQ(mask_url("user:secret@host"), "user:***@host"); }

TEST(ParseUrl, AllParts) {
  const UrlParts p = parse_url("amqp://alice:s3cret@broker.example:5673/orders");
  EXPECT_EQ(p.user, "alice");
  EXPECT_EQ(p.password, "s3cret");
  EXPECT_EQ(p.host, "broker.example");
  EXPECT_EQ(p.port, 5673);
  EXPECT_EQ(p.vhost, "orders");
}

TEST(ParseUrl, PercentDecodesVhostAndCredentials) {
  const UrlParts p = parse_url("amqp://a%3Ab:p%40ss@h:1/%2f");
  EXPECT_EQ(p.user, "a:b");
  EXPECT_EQ(p.password, "p@ss");
  EXPECT_EQ(p.vhost, "/");
}

TEST(ParseUrl, Defaults) {
  const UrlParts p = parse_url("amqp://h");
  EXPECT_EQ(p.user, "guest");
  EXPECT_EQ(p.password, "guest");
  EXPECT_EQ(p.host, "h");
  EXPECT_EQ(p.port, 5672);
  EXPECT_EQ(p.vhost, "/");
  EXPECT_EQ(parse_url("amqp://h/").vhost, "/");
}

TEST(ParseUrl, MalformedIsInvalidArgumentWithoutThePassword) {
  for (const char* bad : {"http://u:topsecret@h/", "amqp://u:topsecret@h:notaport/",
                          "amqp://u:topsecret@h/%zz", "u:topsecret@h"}) {
    try {
      (void)parse_url(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_EQ(std::string(e.what()).find("topsecret"), std::string::npos) << e.what();
    }
  }
}

TEST(ParseUrl, AmqpsIsRejected) {
  EXPECT_THROW((void)parse_url("amqps://u:p@h/"), std::invalid_argument);
}

TEST(Connection, MalformedUrlIsInvalidArgumentNotARetryableError) {
  ConnectionOptions o;
  o.url = "not a url";
  EXPECT_THROW(Connection{o}, std::invalid_argument);
}

TEST(Connection, FrameMaxOutOfRangeIsInvalidArgument) {
  ConnectionOptions o;
  o.url = "amqp://127.0.0.1:1/";
  o.frame_max = 100;
  EXPECT_THROW(Connection{o}, std::invalid_argument);
}

TEST(Connection, BadEntryOfAClusterListIsInvalidArgumentNamingIt) {
  ConnectionOptions o;
  o.url = "amqp://u:topsecret@127.0.0.1:1/%2f,http://u:topsecret@127.0.0.1:2/";
  try {
    Connection c{o};
    ADD_FAILURE() << "connected";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("entry 2 of 2"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("topsecret"), std::string::npos) << e.what();
  }
}

// Nothing listens on these ports (bound, never listening): every node refuses, and the error
// names each of them; the nodes are counted with no open connection.
TEST(Connection, EveryNodeDownIsOneConnectionErrorNamingEachNode) {
  std::vector<int> fds;
  std::vector<int> ports;
  for (int i = 0; i < 2; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    fds.push_back(fd);
    ports.push_back(ntohs(a.sin_port));
  }
  ConnectionOptions o;
  o.url = "amqp://u:topsecret@127.0.0.1:" + std::to_string(ports[0]) + "/%2f, amqp://u:topsecret@127.0.0.1:" +
          std::to_string(ports[1]) + "/%2f";
  o.connect_timeout = std::chrono::milliseconds(500);
  try {
    Connection c{o};
    ADD_FAILURE() << "connected";
  } catch (const AuthError& e) {
    ADD_FAILURE() << "a refused TCP connect is not an auth error: " << e.what();
  } catch (const ConnectionError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("none of the 2 nodes"), std::string::npos) << what;
    for (int p : ports) EXPECT_NE(what.find("127.0.0.1:" + std::to_string(p)), std::string::npos) << what;
    EXPECT_EQ(what.find("topsecret"), std::string::npos) << what;
  }
  for (int fd : fds) ::close(fd);
  int seen = 0;
  for (const auto& n : connections_by_node()) {
    for (int p : ports) {
      if (n.node == "127.0.0.1:" + std::to_string(p)) {
        ++seen;
        EXPECT_EQ(n.open, 0);
      }
    }
  }
  EXPECT_EQ(seen, 2);
}

}  // namespace
}  // namespace oss::amqp
