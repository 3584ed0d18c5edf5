// The shipped workflow. The text below is identical to shipped_workflow.json next to this file
// (a unit test checks that); edit both together.
#include "domain/workflow.hpp"

namespace oss::domain {
namespace {

constexpr std::string_view kShippedWorkflowJson = R"json(
{
  "name": "orders-default",
  "statuses": [
    {"name": "SUBMITTED", "initial": true, "sla": "1h",
     "escalations": [{"level": "warning", "after": "1h"}, {"level": "critical", "after": "24h"}]},
    {"name": "PRICE_CALCULATED", "sla": "2d",
     "escalations": [{"level": "warning", "after": "2d"}],
     "auto_transition": {"after": "7d", "to": "FROZEN",
                         "reason": "customer did not confirm the price in time"}},
    {"name": "FROZEN"},
    {"name": "PRICE_CONFIRMED", "sla": "2d",
     "escalations": [{"level": "warning", "after": "2d"}]},
    {"name": "MANUFACTURING_STARTED", "sla": "21d",
     "escalations": [{"level": "warning", "after": "21d"}]},
    {"name": "SHIPPED", "sla": "10d",
     "escalations": [{"level": "warning", "after": "10d"}]},
    {"name": "DELIVERED", "terminal": true},
    {"name": "CANCELLED", "terminal": true}
  ],
  "transitions": [
    {"from": null, "to": "SUBMITTED", "sources": ["crm"]},
    {"from": "SUBMITTED", "to": "PRICE_CALCULATED", "sources": ["mes"]},
    {"from": "PRICE_CALCULATED", "to": "PRICE_CONFIRMED", "sources": ["crm"]},
    {"from": "PRICE_CALCULATED", "to": "FROZEN", "sources": ["crm"]},
    {"from": "FROZEN", "to": "PRICE_CONFIRMED", "sources": ["crm"]},
    {"from": "FROZEN", "to": "CANCELLED", "sources": ["crm"]},
    {"from": "PRICE_CONFIRMED", "to": "MANUFACTURING_STARTED", "sources": ["mes"]},
    {"from": "MANUFACTURING_STARTED", "to": "SHIPPED", "sources": ["mes"]},
    {"from": "SHIPPED", "to": "DELIVERED", "sources": ["crm"]},
    {"from": "*", "to": "CANCELLED", "sources": ["crm"]}
  ],
  "calendars": {}
}
)json";

}  // namespace

std::string_view shipped_workflow_json() {
  // Drop the newline after R"json( so the text matches the file byte for byte.
  return kShippedWorkflowJson.substr(1);
}

const Workflow& shipped_workflow() {
  // Immutable after construction; C++ guarantees thread-safe initialisation.
  static const Workflow workflow = parse_workflow_text(shipped_workflow_json());
  return workflow;
}

}  // namespace oss::domain
