#pragma once
/// The order workflow: which statuses exist, which transitions between them are allowed, which
/// source system may make each transition, and the SLA/escalation/auto-transition rules of each
/// status. Parsed once from a workflow file (JSON), immutable afterwards, cheap to query.
///
/// # Workflow file format
///
/// ```json
/// {
///   "name": "orders-default",
///   "statuses": [
///     {"name": "SUBMITTED", "initial": true, "sla": "1h",
///      "escalations": [{"level": "warning", "after": "1h"}, {"level": "critical", "after":
///      "24h"}]},
///     {"name": "PRICE_CALCULATED", "sla": "2d", "escalations": [{"level": "warning", "after":
///     "2d"}],
///      "auto_transition": {"after": "7d", "to": "FROZEN",
///                          "reason": "customer did not confirm the price in time"}},
///     {"name": "FROZEN"},
///     {"name": "DELIVERED", "terminal": true}
///   ],
///   "transitions": [
///     {"from": null, "to": "SUBMITTED", "sources": ["crm"]},
///     {"from": "SUBMITTED", "to": "PRICE_CALCULATED", "sources": ["mes"]},
///     {"from": "*", "to": "CANCELLED", "sources": ["crm"]}
///   ],
///   "calendars": {},
///   "source_silence": []
/// }
/// ```
///
/// Top level (unknown keys are rejected):
/// - `name` (string, required): the workflow's name, quoted in messages.
/// - `statuses` (non-empty array, required), each an object with:
///   - `name` (required): letters, digits, `_`, `-`, `.`; unique.
///   - `initial` (bool, default false): orders may be created in this status. At least one
///     status is initial, and each initial status needs a creation transition (`"from": null`).
///   - `terminal` (bool, default false): orders stay here for good. A terminal status has no
///     outgoing transitions, SLA, escalations or auto transition, and is never initial.
///     A status that is not terminal must have at least one outgoing transition.
///   - `sla` (duration, optional): how long an order may stay in this status before it is
///     breached ("stuck"). The clock starts at the event's `occurred_at`.
///   - `escalations` (array, optional): `{"level": "warning", "after": "1h"}`, counted from
///     entering the status; levels unique and `after` strictly increasing.
///   - `auto_transition` (optional): `{"after": "7d", "to": "FROZEN", "reason": "..."}`. After
///     that long in this status the order moves to `to` with source `sla`. `status → to` must
///     be an allowed transition; the source `sla` is implied for it.
///   - `calendar` (string, optional): name of a business calendar (see `calendars`); the status's
///     `sla`, `escalations` and `auto_transition` are then counted in that calendar's working
///     time instead of wall-clock time.
/// - `transitions` (array, required), each `{"from": F, "to": T, "sources": [...]}`:
///   - `from`: a status name, `null` for order creation (then `to` must be initial), or `"*"`
///     for every non-terminal status (other than `to`). Required, even when null.
///   - `to`: a status name; never the same as `from`.
///   - `sources`: non-empty list of source systems (`crm`, `mes`, ...) allowed to make it.
///     A pair listed explicitly and through `"*"` accepts the union of both lists; the same
///     explicit pair twice is an error.
/// - `calendars` (object, optional): business calendars by name, each
///   `{"time_zone": "Europe/Berlin", "working_hours": {"mon": ["09:00-17:00"], ...},
///     "holidays": ["2026-12-25", ...]}`: IANA zone (resolved by PostgreSQL when loaded),
///   working intervals per weekday (`mon`..`sun`; an absent day is not worked; `HH:MM-HH:MM`,
///   end may be `24:00`, increasing and not overlapping; at least one interval in the week),
///   holidays as local dates (not worked at all).
/// - `source_silence` (array, optional): `{"source": "crm", "window": "4h", "calendar": "office",
///   "level": "critical"}`: the source is expected to emit at least once per `window` (counted
///   in the calendar's working time when `calendar` is given); otherwise a `source_silence`
///   escalation at `level` (default `warning`) is raised, resolved when the source emits again.
///   One rule per source.
///
/// Durations are written `90s`, `15m`, `24h`, `7d` (or ISO-8601 `PT1H`) and must be positive.
/// Every status must be reachable from an initial status. Duplicate keys in one JSON object are
/// rejected by parse_workflow_text() and load_workflow_file().
///
/// Errors are reported as WorkflowError with the JSON location of the problem, e.g.
/// `statuses[2].sla: invalid duration 'x': ...` or `transitions[4].to: unknown status 'SHIPPD'`.
#include <array>
#include <chrono>
#include <cstdint>
#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace oss::domain {

/// A workflow file (or JSON document) that cannot be used; what() names the location and problem.
struct WorkflowError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Escalation {
  std::string level;
  std::chrono::milliseconds after{};
  bool operator==(const Escalation&) const = default;
};

struct AutoTransition {
  std::chrono::milliseconds after{};
  std::string to;
  std::string reason;
  bool operator==(const AutoTransition&) const = default;
};

struct StatusDef {
  std::string name;
  bool initial = false;
  bool terminal = false;
  std::optional<std::chrono::milliseconds> sla;
  std::vector<Escalation> escalations;  // increasing `after`
  std::optional<AutoTransition> auto_transition;
  std::optional<std::string> calendar;
  bool operator==(const StatusDef&) const = default;
};

/// One entry of "transitions" as written: `from` is nullopt for creation, "*" for any
/// non-terminal status.
struct TransitionDef {
  std::optional<std::string> from;
  std::string to;
  std::vector<std::string> sources;
  bool operator==(const TransitionDef&) const = default;
};

/// A working interval of a local day, in minutes since local midnight: [start, end).
struct WorkingInterval {
  int start_minute = 0;
  int end_minute = 0;
  bool operator==(const WorkingInterval&) const = default;
};

/// A business calendar: working hours per weekday in a time zone, minus holidays.
struct CalendarDef {
  std::string name;
  std::string time_zone;                           // IANA name, e.g. Europe/Berlin
  std::array<std::vector<WorkingInterval>, 7> week;  // [0] = Monday ... [6] = Sunday
  std::vector<std::int32_t> holidays;              // local dates as days since 1970-01-01, sorted
  bool operator==(const CalendarDef&) const = default;
};

/// "This source emits at least once per `window`" (see `source_silence`).
struct SourceSilenceRule {
  std::string source;
  std::chrono::milliseconds window{};
  std::optional<std::string> calendar;
  std::string level = "warning";
  bool operator==(const SourceSilenceRule&) const = default;
};

/// The source name under which automatic (auto_transition) changes are made.
inline constexpr std::string_view kSlaSource = "sla";
/// `from` value meaning "any non-terminal status".
inline constexpr std::string_view kAnyStatus = "*";

/// A validated workflow. Immutable value type; all queries are const, allocation-free and safe to
/// call from any number of threads. Obtain one from parse_workflow(), parse_workflow_text(),
/// load_workflow_file() or shipped_workflow().
class Workflow {
 public:
  const std::string& name() const { return name_; }
  const std::vector<StatusDef>& statuses() const { return statuses_; }
  /// The transitions as written in the file ("*" not expanded).
  const std::vector<TransitionDef>& transitions() const { return transitions_; }
  /// The raw "calendars" object (empty object when absent).
  const nlohmann::json& calendars() const { return calendars_; }
  /// The parsed calendars, sorted by name.
  const std::vector<CalendarDef>& calendar_defs() const { return calendar_defs_; }
  /// nullptr if unknown.
  const CalendarDef* calendar(std::string_view name) const;
  const std::vector<SourceSilenceRule>& source_silence() const { return source_silence_; }

  /// nullptr if unknown.
  const StatusDef* status(std::string_view name) const;
  bool is_known(std::string_view name) const;
  bool is_terminal(std::string_view name) const;
  bool is_initial(std::string_view name) const;

  /// Is from → to an allowed transition? `from` = nullopt means order creation.
  bool allows(const std::optional<std::string>& from, std::string_view to) const;
  /// May `source` make the transition from → to? False when the transition is not allowed at
  /// all. The source "sla" may make a status's auto_transition.
  bool source_may(const std::optional<std::string>& from, std::string_view to,
                  std::string_view source) const;
  /// Can an order get from `from` to `to` through one or more allowed transitions?
  bool reachable(std::string_view from, std::string_view to) const;

  /// The workflow in file format; parse_workflow(to_json()) gives an equal workflow.
  nlohmann::json to_json() const;

 private:
  friend Workflow parse_workflow(const nlohmann::json& doc);
  Workflow() = default;
  std::optional<std::size_t> index_of(std::string_view name) const;
  std::size_t cell(std::size_t from_row, std::size_t to) const {
    return from_row * statuses_.size() + to;
  }

  std::string name_;
  std::vector<StatusDef> statuses_;
  std::vector<TransitionDef> transitions_;
  nlohmann::json calendars_ = nlohmann::json::object();
  std::vector<CalendarDef> calendar_defs_;
  std::vector<SourceSilenceRule> source_silence_;
  std::map<std::string, std::size_t, std::less<>> index_;
  // Rows 0..n-1 are "from status i", row n is "creation"; columns are target statuses.
  std::vector<std::vector<std::string>> sources_;  // sorted, empty = transition not allowed
  std::vector<char> reachable_;                    // n x n transitive closure
};

/// Validates a parsed workflow document. Throws WorkflowError naming the location and problem.
Workflow parse_workflow(const nlohmann::json& doc);
/// Parses workflow JSON text (also rejecting duplicate keys). Throws WorkflowError.
Workflow parse_workflow_text(std::string_view text);
/// Reads and parses a workflow file; errors are prefixed with "workflow file '<path>': ".
Workflow load_workflow_file(const std::string& path);

/// The workflow shipped with the service (see shipped_workflow.json), parsed on first use.
const Workflow& shipped_workflow();
/// The shipped workflow's JSON text, identical to shipped_workflow.json.
std::string_view shipped_workflow_json();

}  // namespace oss::domain
