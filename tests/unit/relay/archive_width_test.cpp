// The archive partition width the relay asks for: retention/8, kept within [10 s, 1 h], so that
// retention drops rows at most an eighth of the retention late and the partition count stays small.
#include <gtest/gtest.h>

#include "pg_outbox_store.hpp"

namespace oss::relay {
namespace {

using namespace std::chrono_literals;

TEST(ArchiveWidth, IsAnEighthOfTheRetention) {
  EXPECT_EQ(PgOutboxStore::archive_width_for(80min), 600s);
  EXPECT_EQ(PgOutboxStore::archive_width_for(4h), 1800s);
}

TEST(ArchiveWidth, IsAtMostOneHour) {
  EXPECT_EQ(PgOutboxStore::archive_width_for(24h), 3600s);  // the default retention
  EXPECT_EQ(PgOutboxStore::archive_width_for(30 * 24h), 3600s);
}

TEST(ArchiveWidth, IsAtLeastTenSeconds) {
  EXPECT_EQ(PgOutboxStore::archive_width_for(1s), 10s);
  EXPECT_EQ(PgOutboxStore::archive_width_for(0ms), 10s);
  EXPECT_EQ(PgOutboxStore::archive_width_for(79s), 10s);
  EXPECT_EQ(PgOutboxStore::archive_width_for(88s), 11s);
}

}  // namespace
}  // namespace oss::relay
