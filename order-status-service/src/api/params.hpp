#pragma once
/// Query parameters and request bodies of the HTTP API → validated filter structs. Pure
/// functions: each throws BadRequest with the detail for the 400 problem.
#include <map>
#include <stdexcept>
#include <string>

#include "dlq/dead_letters.hpp"
#include "domain/workflow.hpp"
#include "oss/core/time.hpp"
#include "sla/queries.hpp"
#include "store/early_events.hpp"

namespace oss::api {

/// A request the API will not serve as sent; what() is the problem's detail (answer 400).
struct BadRequest : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

using Query = std::map<std::string, std::string>;

inline constexpr std::size_t kDefaultLimit = 100;
inline constexpr std::size_t kMaxLimit = 1000;

/// GET /v1/orders?status=&stuck=&older_than=&due_before=&limit=&cursor= (at = now).
sla::OrderFilter order_filter(const Query& q, const domain::Workflow& workflow, core::TimePoint now);
/// GET /v1/escalations?open=&level=&limit=&cursor=
sla::EscalationFilter escalation_filter(const Query& q);
/// GET /v1/dead-letters?reason=&include_replayed=&limit=&cursor= (cursor: the last id seen).
dlq::ListFilter dead_letter_filter(const Query& q);
/// GET /v1/early-events?order_id=&limit= (parked early events, oldest first).
store::ParkedFilter parked_filter(const Query& q);
/// Rejects any parameter not listed (a misspelt filter must not silently widen a result).
void only_parameters(const Query& q, std::initializer_list<const char*> allowed);

/// POST /v1/orders/{id}/status body.
struct Correction {
  std::string status;
  std::string reason;
};
Correction parse_correction(const std::string& body, const domain::Workflow& workflow);

/// POST /v1/dead-letters/replay body: {"event_ids": [...]} or {"reason": "..."}.
dlq::ReplaySelection parse_replay(const std::string& body);
inline constexpr std::size_t kMaxReplayIds = 1000;

}  // namespace oss::api
