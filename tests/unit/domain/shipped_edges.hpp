#pragma once
// The shipped workflow's transitions as CONTRACT.md states them, written out by hand: the test
// oracle that state_machine_test.cpp and workflow_test.cpp both check the code against.
#include <optional>
#include <string>
#include <vector>

namespace oss::domain::testing {

struct Edge {
  std::optional<std::string> from;  // nullopt: the order is unknown (its first event)
  std::string to;
  std::string source;  // the source allowed to make it
};

inline const std::vector<Edge>& shipped_edges() {
  static const std::vector<Edge> edges = {
      {std::nullopt, "SUBMITTED", "crm"},
      {"SUBMITTED", "PRICE_CALCULATED", "mes"},
      {"PRICE_CALCULATED", "PRICE_CONFIRMED", "crm"},
      {"PRICE_CALCULATED", "FROZEN", "crm"},
      {"FROZEN", "PRICE_CONFIRMED", "crm"},
      {"FROZEN", "CANCELLED", "crm"},
      {"PRICE_CONFIRMED", "MANUFACTURING_STARTED", "mes"},
      {"MANUFACTURING_STARTED", "SHIPPED", "mes"},
      {"SHIPPED", "DELIVERED", "crm"},
      {"SUBMITTED", "CANCELLED", "crm"},
      {"PRICE_CALCULATED", "CANCELLED", "crm"},
      {"PRICE_CONFIRMED", "CANCELLED", "crm"},
      {"MANUFACTURING_STARTED", "CANCELLED", "crm"},
      {"SHIPPED", "CANCELLED", "crm"},
  };
  return edges;
}

}  // namespace oss::domain::testing
