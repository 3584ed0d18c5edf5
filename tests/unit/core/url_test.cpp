#include "oss/core/url.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "oss/core/cli.hpp"

namespace oss::core {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MaskUrl, PostgresPassword) {
  EXPECT_EQ(mask_url("postgresql://u:secret@h/db"), "postgresql://u:***@h/db");
  EXPECT_EQ(mask_url("postgres://user:p4ss@db.example:5432/orders?sslmode=require"),
            "postgres://user:***@db.example:5432/orders?sslmode=require");
}

TEST(MaskUrl, AmqpPassword) {
  EXPECT_EQ(mask_url("amqp://guest:guest@h:5672/%2f"), "amqp://guest:***@h:5672/%2f");
}

TEST(MaskUrl, KeyValueConninfo) {
  EXPECT_EQ(mask_url("host=x password=secret user=y"), "host=x password=*** user=y");
  EXPECT_EQ(mask_url("host=x password=secret"), "host=x password=***");
}

TEST(MaskUrl, QueryParameterPassword) {
  EXPECT_EQ(mask_url("postgresql://h/db?user=u&password=secret&sslmode=disable"),
            "postgresql://h/db?user=u&password=***&sslmode=disable");
}

TEST(MaskUrl, WithoutPasswordUnchanged) {
  for (const char* url : {"postgresql://u@h/db", "postgresql://h:5432/db", "amqp://h:5672/%2f", "host=x user=y",
                          "postgresql:///db?host=/run/postgresql", ""}) {
    EXPECT_EQ(mask_url(url), url);
  }
}

TEST(MaskUrl, NeverContainsTheSecret) {
  for (const char* url : {"postgresql://u:secret@h/db", "amqps://u:secret@h/v", "host=h password=secret",
                          "postgresql://u:secret@h/db?password=secret"}) {
    EXPECT_THAT(mask_url(url), Not(HasSubstr("secret"))) << url;
  }
}

TEST(RequirePgUrl, AcceptsUrisAndConninfo) {
  EXPECT_NO_THROW(require_pg_url("postgresql://u:p@h/db", "--db"));
  EXPECT_NO_THROW(require_pg_url("postgres://h/db", "--db"));
  EXPECT_NO_THROW(require_pg_url("host=x dbname=y", "--db"));
}

TEST(RequirePgUrl, RejectsOtherSchemesNamingTheFlagWithoutTheSecret) {
  for (const char* url : {"mysql://u:secret@h/db", "amqp://u:secret@h/", "", "localhost", "http://x?a=b"}) {
    try {
      require_pg_url(url, "--source-db");
      ADD_FAILURE() << "accepted '" << url << "'";
    } catch (const UsageError& e) {
      EXPECT_THAT(e.what(), HasSubstr("--source-db"));
      EXPECT_THAT(e.what(), Not(HasSubstr("secret")));
    }
  }
}

TEST(RequireAmqpUrl, AcceptsAmqpAndAmqps) {
  EXPECT_NO_THROW(require_amqp_url("amqp://guest:guest@h:5672/%2f", "--amqp"));
  EXPECT_NO_THROW(require_amqp_url("amqps://u:p@h/v", "--amqp"));
  EXPECT_NO_THROW(require_amqp_url("amqp://h", "--amqp"));
}

TEST(RequireAmqpUrl, RejectsOthersNamingTheFlagWithoutTheSecret) {
  for (const char* url : {"postgresql://u:secret@h/db", "http://u:secret@h/", "", "amqp://", "h:5672"}) {
    try {
      require_amqp_url(url, "--amqp");
      ADD_FAILURE() << "accepted '" << url << "'";
    } catch (const UsageError& e) {
      EXPECT_THAT(e.what(), HasSubstr("--amqp"));
      EXPECT_THAT(e.what(), Not(HasSubstr("secret")));
    }
  }
}

}  // namespace
}  // namespace oss::core
