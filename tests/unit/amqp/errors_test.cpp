#include "oss/amqp/errors.hpp"

#include <gtest/gtest.h>

#include <type_traits>

namespace oss::amqp {
namespace {

static_assert(std::is_base_of_v<Error, ConnectionError>);
static_assert(std::is_base_of_v<Error, AuthError>);
static_assert(std::is_base_of_v<Error, ChannelError>);
static_assert(std::is_base_of_v<ConnectionError, ConsumerCancelled>);
static_assert(!std::is_base_of_v<ConnectionError, AuthError>, "auth failures are not retried");

TEST(Errors, ChannelErrorCarriesCodeAndText) {
  const ChannelError e(404, "NOT_FOUND - no exchange 'x'");
  EXPECT_EQ(e.reply_code, 404);
  EXPECT_EQ(e.reply_text, "NOT_FOUND - no exchange 'x'");
  EXPECT_NE(std::string(e.what()).find("404"), std::string::npos);
}

TEST(Errors, ConsumerCancelledIsCaughtAsConnectionError) {
  try {
    throw ConsumerCancelled("ctag-1");
  } catch (const ConnectionError& e) {
    EXPECT_NE(std::string(e.what()).find("ctag-1"), std::string::npos);
  }
}

}  // namespace
}  // namespace oss::amqp
