#include "oss/core/url.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "oss/core/cli.hpp"

namespace oss::core {
namespace {

using ::testing::ElementsAre;
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

TEST(ParseAmqpUrls, OneUrlIsAListOfOne) {
  EXPECT_THAT(parse_amqp_urls("amqp://guest:guest@h:5672/%2f", "--amqp"),
              ElementsAre("amqp://guest:guest@h:5672/%2f"));
}

TEST(ParseAmqpUrls, SplitsAClusterListAndTrimsBlanks) {
  EXPECT_THAT(parse_amqp_urls("amqp://u:p@127.0.0.1:5672/%2f, amqp://u:p@127.0.0.1:5673/%2f ,\tamqp://h3", "--amqp"),
              ElementsAre("amqp://u:p@127.0.0.1:5672/%2f", "amqp://u:p@127.0.0.1:5673/%2f", "amqp://h3"));
  EXPECT_NO_THROW(require_amqp_url("amqp://a:1,amqp://b:2", "--amqp"));
  EXPECT_THAT(parse_amqp_urls("amqp://[::1]:5672/v,amqp://[::1]:5673", "--amqp"), ElementsAre("amqp://[::1]:5672/v", "amqp://[::1]:5673"));
}

// Each bad list gives an error naming the flag, the entry's position and (masked) text, and why.
TEST(ParseAmqpUrls, BadEntriesAreNamed) {
  struct Case {
    const char* list;
    std::vector<std::string> expected;
  };
  const Case cases[] = {
      {"amqp://u:secret@a:1/%2f,,amqp://u:secret@c:3/%2f", {"--amqp: entry 2 of 3 is empty"}},
      {"amqp://u:secret@a:1/%2f,", {"--amqp: entry 2 of 2 is empty"}},
      {"amqp://u:secret@a:1/%2f,http://u:secret@b:2/", {"entry 2 of 2", "not an AMQP URL", "http://u:***@b:2/"}},
      {"amqp://u:secret@a:1/%2f,amqp://u:secret@b:99999/%2f", {"entry 2 of 2", "port is not a number in 1..65535", "amqp://u:***@b:99999/%2f"}},
      {"amqp://u:secret@a:1/%2f,amqp://u:secret@b:x/%2f", {"entry 2 of 2", "port"}},
      {"amqp://u:secret@:1/%2f,amqp://u:secret@b:2/%2f", {"entry 1 of 2", "no host"}},
      {"amqp://u:secret@a:1/%2f,amqp://u:secret@b:/%2f", {"entry 2 of 2", "empty port"}},
      {"amqp://u:secret@a:1/%2f,amqp://u:secret@b:2/%2f,amqp://u:secret@a:1/%2f", {"entry 3 of 3 repeats entry 1", "amqp://u:***@a:1/%2f"}},
      {"amqp://u:secret@a:0/%2f", {"--amqp: port is not a number in 1..65535", "amqp://u:***@a:0/%2f"}},
      {"", {"--amqp: not an AMQP URL"}},
  };
  for (const auto& c : cases) {
    try {
      (void)parse_amqp_urls(c.list, "--amqp");
      ADD_FAILURE() << "accepted '" << c.list << "'";
    } catch (const UsageError& e) {
      for (const auto& part : c.expected) EXPECT_THAT(e.what(), HasSubstr(part)) << c.list;
      EXPECT_THAT(e.what(), Not(HasSubstr("secret"))) << c.list;
    }
    EXPECT_THROW(require_amqp_url(c.list, "--amqp"), UsageError) << c.list;
  }
}

TEST(MaskUrl, MasksEveryUrlOfAList) {
  EXPECT_EQ(mask_url("amqp://u:s1@a:1/%2f,amqp://u:s2@b:2/%2f,amqp://c:3"), "amqp://u:***@a:1/%2f,amqp://u:***@b:2/%2f,amqp://c:3");
}

}  // namespace
}  // namespace oss::core
