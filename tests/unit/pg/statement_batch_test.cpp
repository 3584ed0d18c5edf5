// The parameter substitution of oss::pg::StatementBatch (statements sent together in one round
// trip as a simple query). The batch itself runs against a real server in the service's tests.
#include <gtest/gtest.h>

#include <stdexcept>

#include "oss/pg/statement_batch.hpp"

namespace {

using oss::pg::substitute_parameters;

TEST(SubstituteParameters, ReplacesEachParameterByItsLiteralIncludingTwoDigitNumbers) {
  std::vector<std::string> lits;
  for (int i = 1; i <= 11; ++i) lits.push_back("'v" + std::to_string(i) + "'");
  EXPECT_EQ(substitute_parameters("SELECT $1::text[], $11, f($2, $10)", lits),
            "SELECT 'v1'::text[], 'v11', f('v2', 'v10')");
}

TEST(SubstituteParameters, NeverLooksIntoAValueItPutIn) {
  // A value that itself reads like a parameter stays as it is.
  EXPECT_EQ(substitute_parameters("SELECT $1, $2", {"'$2 costs $1'", "'x'"}), "SELECT '$2 costs $1', 'x'");
}

TEST(SubstituteParameters, LeavesDollarsInsideLiteralsAndNonParameterDollarsAlone) {
  EXPECT_EQ(substitute_parameters("SELECT '$1', 'it''s $2', $1, a$b, $", {"7"}), "SELECT '$1', 'it''s $2', 7, a$b, $");
}

TEST(SubstituteParameters, AParameterWithoutAValueIsAnError) {
  EXPECT_THROW(substitute_parameters("SELECT $1, $2", {"1"}), std::invalid_argument);
  EXPECT_THROW(substitute_parameters("SELECT $0", {"1"}), std::invalid_argument);
}

}  // namespace
