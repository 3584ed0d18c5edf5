#include "oss/amqp/url.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "oss/amqp/connection.hpp"

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

}  // namespace
}  // namespace oss::amqp
