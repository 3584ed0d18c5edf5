// API tokens: the file format, hashing, constant-time comparison and roles.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "auth/tokens.hpp"

namespace oss::auth {
namespace {


std::string tokens_json(const std::string& entries) { return "[" + entries + "]"; }
std::string entry(const std::string& name, const std::string& role, const std::string& hash) {
  return R"({"name": ")" + name + R"(", "role": ")" + role + R"(", "sha256": ")" + hash + R"("})";
}

std::string error_of(const std::string& text) {
  try {
    TokenSet::parse(text);
  } catch (const TokenFileError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256("abc").size(), 32U);
}

TEST(ConstantTimeEqual, ComparesContentAndLength) {
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "xbc"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_FALSE(constant_time_equal(std::string("a\0b", 3), std::string("a\0c", 3)));
  EXPECT_TRUE(constant_time_equal(std::string("a\0b", 3), std::string("a\0b", 3)));
}

TEST(BearerToken, ParsesTheAuthorizationHeader) {
  EXPECT_EQ(bearer_token("Bearer abc.def-1"), "abc.def-1");
  EXPECT_EQ(bearer_token("bearer   abc"), "abc");
  EXPECT_EQ(bearer_token("  BEARER abc  "), "abc");
  EXPECT_FALSE(bearer_token(""));
  EXPECT_FALSE(bearer_token("Bearer"));
  EXPECT_FALSE(bearer_token("Bearer "));
  EXPECT_FALSE(bearer_token("Bearerabc"));
  EXPECT_FALSE(bearer_token("Basic dXNlcjpwdw=="));
  EXPECT_FALSE(bearer_token("Bearer a b"));
  EXPECT_FALSE(bearer_token(std::string("Bearer a\x01", 9)));
}

TEST(Roles, OperatorIncludesViewer) {
  EXPECT_TRUE(role_allows(Role::viewer, Role::viewer));
  EXPECT_FALSE(role_allows(Role::viewer, Role::operator_role));
  EXPECT_TRUE(role_allows(Role::operator_role, Role::viewer));
  EXPECT_TRUE(role_allows(Role::operator_role, Role::operator_role));
  EXPECT_EQ(role_from_string("operator"), Role::operator_role);
  EXPECT_EQ(role_from_string("viewer"), Role::viewer);
  EXPECT_FALSE(role_from_string("admin"));
  EXPECT_FALSE(role_from_string("Operator"));
  EXPECT_EQ(to_string(Role::operator_role), "operator");
}

TEST(TokenSet, AuthenticatesByHashAndReturnsNameAndRole) {
  const auto set = TokenSet::parse(tokens_json(entry("ops-anna", "operator", sha256_hex("secret-anna")) + "," +
                                               entry("viewer-bob", "viewer", sha256_hex("secret-bob"))));
  EXPECT_EQ(set.size(), 2U);
  EXPECT_EQ(set.authenticate("secret-anna"), (Principal{"ops-anna", Role::operator_role}));
  EXPECT_EQ(set.authenticate("secret-bob"), (Principal{"viewer-bob", Role::viewer}));
  EXPECT_FALSE(set.authenticate("secret-carl"));
  EXPECT_FALSE(set.authenticate(""));
  EXPECT_FALSE(set.authenticate("secret-ann"));
  // The file holds hashes: presenting the hash itself is not the token.
  EXPECT_FALSE(set.authenticate(sha256_hex("secret-anna")));
}

TEST(TokenSet, AcceptsUpperCaseHex) {
  std::string upper = sha256_hex("t");
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const auto set = TokenSet::parse(tokens_json(entry("a", "viewer", upper)));
  EXPECT_TRUE(set.authenticate("t"));
}

TEST(TokenSet, RejectsBadFilesWithTheExactProblem) {
  const std::string good = sha256_hex("x");
  EXPECT_NE(error_of("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of("{}").find("expected a JSON array"), std::string::npos);
  EXPECT_NE(error_of("[]").find("no tokens"), std::string::npos);
  EXPECT_EQ(error_of("[1]"), "[0]: expected an object, got number");
  EXPECT_EQ(error_of(R"([{"role": "viewer", "sha256": ")" + good + R"("}])"), "[0].name: missing");
  EXPECT_EQ(error_of(tokens_json(entry("", "viewer", good))), "[0].name: must not be empty");
  EXPECT_EQ(error_of(tokens_json(entry("a", "admin", good))),
            "[0].role: unknown role \"admin\" (expected \"viewer\" or \"operator\")");
  EXPECT_NE(error_of(tokens_json(entry("a", "viewer", "abc"))).find("[0].sha256: expected 64 hexadecimal digits"),
            std::string::npos);
  // 63 hex digits and a 'g' (built in place: GCC 12 misreports std::string(n, c) + "g" under
  // -Warray-bounds, see cmake/Pch.cmake).
  std::string not_hex(64, 'a');
  not_hex.back() = 'g';
  EXPECT_NE(error_of(tokens_json(entry("a", "viewer", not_hex))).find("[0].sha256"), std::string::npos);
  EXPECT_EQ(error_of(R"([{"name": "a", "role": "viewer", "sha256": ")" + good + R"(", "token": "plain"}])"),
            "[0].token: unknown key (expected name, role, sha256)");
  EXPECT_EQ(error_of(R"([{"name": 5, "role": "viewer", "sha256": ")" + good + R"("}])"),
            "[0].name: expected a string, got number");
  EXPECT_EQ(error_of(tokens_json(entry("a", "viewer", good) + "," + entry("a", "operator", sha256_hex("y")))),
            "[1].name: duplicate name \"a\" (already at [0])");
  EXPECT_EQ(error_of(tokens_json(entry("a", "viewer", good) + "," + entry("b", "operator", good))),
            "[1].sha256: the same token hash as [0] (each token must be unique)");
  EXPECT_NE(error_of(R"([{"name": "a", "name": "b", "role": "viewer", "sha256": ")" + good + R"("}])")
                .find("duplicate key \"name\""),
            std::string::npos);
}

TEST(TokenSet, LoadFileNamesThePath) {
  const auto path = (std::filesystem::temp_directory_path() / "oss-auth-test-tokens.json").string();
  {
    std::ofstream out(path);
    out << tokens_json(entry("ops", "operator", sha256_hex("s3cret")));
  }
  EXPECT_EQ(TokenSet::load_file(path).authenticate("s3cret")->name, "ops");
  {
    std::ofstream out(path);
    out << "[";
  }
  try {
    TokenSet::load_file(path);
    FAIL() << "expected an error";
  } catch (const TokenFileError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("tokens file '" + path + "': not valid JSON", 0), 0U) << e.what();
  }
  ASSERT_EQ(std::remove(path.c_str()), 0);
  try {
    TokenSet::load_file(path);
    FAIL() << "expected an error";
  } catch (const TokenFileError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace oss::auth
