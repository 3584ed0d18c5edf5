#include "domain/workflow.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "shipped_edges.hpp"

namespace oss::domain {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const std::optional<std::string> kCreation = std::nullopt;
std::optional<std::string> from(const char* s) { return std::string(s); }

// A small valid workflow; tests break one thing at a time.
json minimal() {
  return json::parse(R"({
    "name": "t",
    "statuses": [
      {"name": "A", "initial": true, "sla": "1h"},
      {"name": "B"},
      {"name": "C", "terminal": true}
    ],
    "transitions": [
      {"from": null, "to": "A", "sources": ["crm"]},
      {"from": "A", "to": "B", "sources": ["mes"]},
      {"from": "B", "to": "C", "sources": ["crm"]}
    ]
  })");
}

std::string error_of(const json& doc) {
  try {
    parse_workflow(doc);
  } catch (const WorkflowError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string error_of_text(std::string_view text) {
  try {
    parse_workflow_text(text);
  } catch (const WorkflowError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(WorkflowTest, MinimalParses) {
  const Workflow wf = parse_workflow(minimal());
  EXPECT_EQ(wf.name(), "t");
  ASSERT_EQ(wf.statuses().size(), 3U);
  EXPECT_EQ(wf.status("A")->sla, std::chrono::milliseconds(1h));
  EXPECT_TRUE(wf.is_initial("A"));
  EXPECT_TRUE(wf.is_terminal("C"));
  EXPECT_FALSE(wf.is_known("D"));
  EXPECT_EQ(wf.status("D"), nullptr);
  EXPECT_TRUE(wf.calendars().is_object());
  EXPECT_TRUE(wf.calendars().empty());
}

// ---- the shipped workflow

TEST(ShippedWorkflowTest, StatusesAndSlas) {
  const Workflow& wf = shipped_workflow();
  EXPECT_EQ(wf.name(), "orders-default");
  std::vector<std::string> names;
  for (const auto& s : wf.statuses()) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"SUBMITTED", "PRICE_CALCULATED", "FROZEN",
                                             "PRICE_CONFIRMED", "MANUFACTURING_STARTED", "SHIPPED",
                                             "DELIVERED", "CANCELLED"}));
  EXPECT_TRUE(wf.is_initial("SUBMITTED"));
  for (const auto& s : wf.statuses()) {
    EXPECT_EQ(s.initial, s.name == "SUBMITTED") << s.name;
    EXPECT_EQ(s.terminal, s.name == "DELIVERED" || s.name == "CANCELLED") << s.name;
  }
  using std::chrono::milliseconds;
  const auto sla = [&](const char* n) { return wf.status(n)->sla; };
  EXPECT_EQ(sla("SUBMITTED"), milliseconds(1h));
  EXPECT_EQ(sla("PRICE_CALCULATED"), milliseconds(48h));
  EXPECT_EQ(sla("PRICE_CONFIRMED"), milliseconds(48h));
  EXPECT_EQ(sla("MANUFACTURING_STARTED"), milliseconds(21 * 24h));
  EXPECT_EQ(sla("SHIPPED"), milliseconds(10 * 24h));
  EXPECT_EQ(sla("FROZEN"), std::nullopt);
  EXPECT_EQ(sla("DELIVERED"), std::nullopt);

  EXPECT_EQ(
      wf.status("SUBMITTED")->escalations,
      (std::vector<Escalation>{{"warning", milliseconds(1h)}, {"critical", milliseconds(24h)}}));
  EXPECT_EQ(wf.status("PRICE_CALCULATED")->escalations,
            (std::vector<Escalation>{{"warning", milliseconds(48h)}}));
  EXPECT_EQ(wf.status("SHIPPED")->escalations,
            (std::vector<Escalation>{{"warning", milliseconds(10 * 24h)}}));
  ASSERT_TRUE(wf.status("PRICE_CALCULATED")->auto_transition);
  EXPECT_EQ(*wf.status("PRICE_CALCULATED")->auto_transition,
            (AutoTransition{milliseconds(7 * 24h), "FROZEN",
                            "customer did not confirm the price in time"}));
  EXPECT_FALSE(wf.status("FROZEN")->auto_transition);
}

using testing::Edge;
using testing::shipped_edges;

TEST(ShippedWorkflowTest, ExactlyTheDocumentedTransitionsAndSources) {
  const Workflow& wf = shipped_workflow();
  std::vector<std::optional<std::string>> froms{std::nullopt};
  for (const auto& s : wf.statuses()) froms.emplace_back(s.name);
  for (const auto& f : froms) {
    for (const auto& t : wf.statuses()) {
      const Edge* edge = nullptr;
      for (const auto& e : shipped_edges()) {
        if (e.from == f && e.to == t.name) edge = &e;
      }
      const std::string label = f.value_or("(creation)") + " -> " + t.name;
      EXPECT_EQ(wf.allows(f, t.name), edge != nullptr) << label;
      for (const char* src : {"crm", "mes", "operator", "billing"}) {
        const bool expected = edge != nullptr && edge->source == src;
        EXPECT_EQ(wf.source_may(f, t.name, src), expected) << label << " by " << src;
      }
    }
  }
}

TEST(ShippedWorkflowTest, SlaSourceMayOnlyMakeTheAutoTransition) {
  const Workflow& wf = shipped_workflow();
  EXPECT_TRUE(wf.source_may(from("PRICE_CALCULATED"), "FROZEN", "sla"));
  EXPECT_FALSE(wf.source_may(from("PRICE_CALCULATED"), "PRICE_CONFIRMED", "sla"));
  EXPECT_FALSE(wf.source_may(from("SUBMITTED"), "CANCELLED", "sla"));
  EXPECT_FALSE(wf.source_may(kCreation, "SUBMITTED", "sla"));
}

TEST(ShippedWorkflowTest, TerminalStatusesHaveNoWayOut) {
  const Workflow& wf = shipped_workflow();
  for (const auto& t : wf.statuses()) {
    EXPECT_FALSE(wf.allows(from("DELIVERED"), t.name)) << t.name;
    EXPECT_FALSE(wf.allows(from("CANCELLED"), t.name)) << t.name;
    EXPECT_FALSE(wf.reachable("DELIVERED", t.name)) << t.name;
  }
  EXPECT_FALSE(wf.allows(from("CANCELLED"), "CANCELLED"));
}

TEST(ShippedWorkflowTest, Reachability) {
  const Workflow& wf = shipped_workflow();
  EXPECT_TRUE(wf.reachable("SUBMITTED", "DELIVERED"));
  EXPECT_TRUE(wf.reachable("SUBMITTED", "PRICE_CALCULATED"));
  EXPECT_TRUE(wf.reachable("PRICE_CALCULATED", "MANUFACTURING_STARTED"));
  EXPECT_TRUE(wf.reachable("FROZEN", "SHIPPED"));
  EXPECT_TRUE(wf.reachable("SHIPPED", "CANCELLED"));
  EXPECT_FALSE(wf.reachable("SHIPPED", "PRICE_CALCULATED"));
  EXPECT_FALSE(wf.reachable("PRICE_CONFIRMED", "FROZEN"));
  EXPECT_FALSE(wf.reachable("SUBMITTED", "SUBMITTED"));  // no cycles
  EXPECT_FALSE(wf.reachable("CANCELLED", "DELIVERED"));
  EXPECT_FALSE(wf.reachable("NOPE", "DELIVERED"));
  EXPECT_FALSE(wf.reachable("SUBMITTED", "NOPE"));
  EXPECT_FALSE(wf.allows(from("NOPE"), "CANCELLED"));
  EXPECT_FALSE(wf.allows(from("SUBMITTED"), "NOPE"));
}

TEST(ShippedWorkflowTest, RoundTripsThroughToJson) {
  const Workflow& wf = shipped_workflow();
  const json j = wf.to_json();
  const Workflow again = parse_workflow(j);
  EXPECT_EQ(again.to_json(), j);
  EXPECT_EQ(again.name(), wf.name());
  EXPECT_EQ(again.statuses(), wf.statuses());
  EXPECT_EQ(again.transitions(), wf.transitions());
  // The text itself says "24h" where to_json() writes the canonical "1d"; same meaning.
  EXPECT_EQ(j["statuses"][0]["escalations"][1]["after"], "1d");
}

TEST(ShippedWorkflowTest, EmbeddedTextIsIdenticalToTheJsonFile) {
  std::ifstream in(OSS_SHIPPED_WORKFLOW_FILE, std::ios::binary);
  ASSERT_TRUE(in) << OSS_SHIPPED_WORKFLOW_FILE;
  std::ostringstream buf;
  buf << in.rdbuf();
  EXPECT_EQ(buf.str(), shipped_workflow_json());
  EXPECT_EQ(load_workflow_file(OSS_SHIPPED_WORKFLOW_FILE).to_json(), shipped_workflow().to_json());
}

TEST(WorkflowTest, CopiesAnswerLikeTheOriginal) {
  Workflow copy = shipped_workflow();  // NOLINT(performance-unnecessary-copy-initialization): the copy is what is tested
  EXPECT_EQ(copy.status("FROZEN")->name, "FROZEN");
  EXPECT_TRUE(copy.source_may(from("FROZEN"), "PRICE_CONFIRMED", "crm"));
}

TEST(WorkflowTest, OptionalFieldsRoundTrip) {
  json doc = minimal();
  doc["statuses"][0]["calendar"] = "business-days";
  doc["statuses"][0]["sla"] = "PT90M";
  doc["statuses"][1]["escalations"] = json::parse(R"([{"level":"warning","after":"90s"}])");
  doc["calendars"] = json::parse(R"({"business-days": {"time_zone": "Europe/Berlin",
      "working_hours": {"mon": ["09:00-12:00", "13:00-17:00"], "fri": ["09:00-24:00"]},
      "holidays": ["2026-12-25", "2026-01-01"]}})");
  doc["source_silence"] = json::parse(R"([{"source": "crm", "window": "4h", "calendar": "business-days"}])");
  const Workflow wf = parse_workflow(doc);
  EXPECT_EQ(wf.status("A")->calendar, "business-days");
  EXPECT_EQ(wf.status("A")->sla, std::chrono::milliseconds(90min));
  EXPECT_EQ(wf.calendars(), doc["calendars"]);
  const auto* cal = wf.calendar("business-days");
  ASSERT_NE(cal, nullptr);
  EXPECT_EQ(cal->time_zone, "Europe/Berlin");
  EXPECT_EQ(cal->week[0], (std::vector<WorkingInterval>{{540, 720}, {780, 1020}}));
  EXPECT_EQ(cal->week[4], (std::vector<WorkingInterval>{{540, 1440}}));
  EXPECT_TRUE(cal->week[5].empty());
  EXPECT_EQ(cal->holidays, (std::vector<std::int32_t>{20454, 20812}));  // sorted days since 1970-01-01
  ASSERT_EQ(wf.source_silence().size(), 1u);
  EXPECT_EQ(wf.source_silence()[0].window, std::chrono::milliseconds(4h));
  EXPECT_EQ(wf.source_silence()[0].level, "warning");
  const json out = wf.to_json();
  EXPECT_EQ(out["statuses"][0]["sla"], "1h30m");
  EXPECT_EQ(parse_workflow(out).to_json(), out);
  EXPECT_EQ(parse_workflow(out).statuses(), wf.statuses());
}

TEST(WorkflowTest, WildcardMergesWithExplicitSourcesAndSkipsTerminalAndSelf) {
  json doc = minimal();
  doc["statuses"].push_back({{"name", "X"}, {"terminal", true}});
  doc["transitions"].push_back({{"from", "*"}, {"to", "X"}, {"sources", {"crm"}}});
  doc["transitions"].push_back({{"from", "A"}, {"to", "X"}, {"sources", {"mes"}}});
  doc["transitions"].push_back({{"from", "*"}, {"to", "B"}, {"sources", {"ops"}}});
  const Workflow wf = parse_workflow(doc);
  EXPECT_TRUE(wf.source_may(from("A"), "X", "crm"));
  EXPECT_TRUE(wf.source_may(from("A"), "X", "mes"));
  EXPECT_TRUE(wf.source_may(from("B"), "X", "crm"));
  EXPECT_FALSE(wf.source_may(from("B"), "X", "mes"));
  EXPECT_FALSE(wf.allows(from("C"), "X"));  // C is terminal
  EXPECT_FALSE(wf.allows(from("B"), "B"));  // "*" never means "to itself"
  EXPECT_TRUE(wf.source_may(from("A"), "B", "ops"));
  EXPECT_TRUE(wf.source_may(from("A"), "B", "mes"));
  EXPECT_FALSE(wf.allows(kCreation, "X"));  // "*" does not include creation
}

TEST(WorkflowTest, CyclesAreReachableBothWays) {
  json doc = minimal();
  doc["transitions"].push_back({{"from", "B"}, {"to", "A"}, {"sources", {"crm"}}});
  const Workflow wf = parse_workflow(doc);
  EXPECT_TRUE(wf.reachable("A", "B"));
  EXPECT_TRUE(wf.reachable("B", "A"));
  EXPECT_TRUE(wf.reachable("A", "A"));
}

// ---- invalid workflow files, each with its exact message

struct BadCase {
  const char* name;
  void (*mutate)(json&);  // plain data: the table below is constant-initialized
  const char* message;
};

class InvalidWorkflowTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(InvalidWorkflowTest, ReportsTheProblemAndItsLocation) {
  json doc = minimal();
  GetParam().mutate(doc);
  EXPECT_EQ(error_of(doc), GetParam().message);
}

constexpr BadCase kBadCases[] = {
    {"NotAnObject", [](json& d) { d = json::array(); },
     "workflow: expected a JSON object, got array"},
    {"UnknownTopLevelKey", [](json& d) { d["statusses"] = json::array(); },
     "statusses: unknown key (expected one of: name, statuses, transitions, calendars, source_silence)"},
    {"MissingName", [](json& d) { d.erase("name"); }, "name: missing"},
    {"NameNotString", [](json& d) { d["name"] = 3; }, "name: expected a string, got number"},
    {"MissingStatuses", [](json& d) { d.erase("statuses"); }, "statuses: missing"},
    {"EmptyStatuses", [](json& d) { d["statuses"] = json::array(); },
     "statuses: expected a non-empty array, got an empty array"},
    {"StatusNotObject", [](json& d) { d["statuses"][1] = "B"; },
     "statuses[1]: expected an object, got string"},
    {"UnknownStatusKey", [](json& d) { d["statuses"][1]["colour"] = "red"; },
     "statuses[1].colour: unknown key (expected one of: name, initial, terminal, sla, "
     "escalations, auto_transition, calendar)"},
    {"BadStatusName", [](json& d) { d["statuses"][1]["name"] = "B B"; },
     "statuses[1].name: invalid status name 'B B' (use letters, digits, '_', '-' or '.')"},
    {"DuplicateStatus", [](json& d) { d["statuses"][2]["name"] = "A"; },
     "statuses[2].name: duplicate status 'A' (first defined at statuses[0])"},
    {"InitialNotBool", [](json& d) { d["statuses"][0]["initial"] = "yes"; },
     "statuses[0].initial: expected true or false, got string"},
    {"InitialAndTerminal", [](json& d) { d["statuses"][0]["terminal"] = true; },
     "statuses[0]: status 'A' cannot be both initial and terminal"},
    {"InvalidSla", [](json& d) { d["statuses"][1]["sla"] = "x"; },
     "statuses[1].sla: invalid duration 'x': expected a number (use e.g. 90s, 15m, 24h, 7d or "
     "ISO-8601 PT1H)"},
    {"SlaNotString", [](json& d) { d["statuses"][1]["sla"] = 3600; },
     "statuses[1].sla: expected a duration string such as \"2d\", got number"},
    {"ZeroSla", [](json& d) { d["statuses"][1]["sla"] = "0s"; },
     "statuses[1].sla: duration must be greater than zero, got '0s'"},
    {"TerminalWithSla", [](json& d) { d["statuses"][2]["sla"] = "1h"; },
     "statuses[2].sla: a terminal status cannot have an SLA"},
    {"NoInitial",
     [](json& d) {
       d["statuses"][0].erase("initial");
       d["transitions"].erase(0);
     },
     "statuses: no status is marked \"initial\": true, so no order could ever be created"},
    {"EscalationsNotIncreasing",
     [](json& d) {
       d["statuses"][0]["escalations"] =
           json::parse(R"([{"level":"warning","after":"24h"},{"level":"critical","after":"1h"}])");
     },
     "statuses[0].escalations[1].after: escalation levels must be increasing in 'after': 1h is "
     "not later than 1d of statuses[0].escalations[0]"},
    {"EscalationsEqualAfter",
     [](json& d) {
       d["statuses"][0]["escalations"] =
           json::parse(R"([{"level":"warning","after":"1h"},{"level":"critical","after":"60m"}])");
     },
     "statuses[0].escalations[1].after: escalation levels must be increasing in 'after': 1h is "
     "not later than 1h of statuses[0].escalations[0]"},
    {"DuplicateEscalationLevel",
     [](json& d) {
       d["statuses"][0]["escalations"] =
           json::parse(R"([{"level":"warning","after":"1h"},{"level":"warning","after":"2h"}])");
     },
     "statuses[0].escalations[1].level: duplicate escalation level 'warning' (already at "
     "statuses[0].escalations[0])"},
    {"EscalationMissingAfter",
     [](json& d) { d["statuses"][0]["escalations"] = json::parse(R"([{"level":"warning"}])"); },
     "statuses[0].escalations[0].after: missing"},
    {"AutoTransitionNotAllowed",
     [](json& d) {
       d["statuses"][0]["auto_transition"] =
           json::parse(R"({"after": "7d", "to": "C", "reason": "too slow"})");
     },
     "statuses[0].auto_transition.to: A → C is not an allowed transition; add it to "
     "\"transitions\" (the source \"sla\" is implied for automatic transitions)"},
    {"AutoTransitionUnknownTarget",
     [](json& d) {
       d["statuses"][0]["auto_transition"] =
           json::parse(R"({"after": "7d", "to": "Z", "reason": "too slow"})");
     },
     "statuses[0].auto_transition.to: unknown status 'Z'"},
    {"AutoTransitionMissingReason",
     [](json& d) {
       d["statuses"][0]["auto_transition"] = json::parse(R"({"after": "7d", "to": "B"})");
     },
     "statuses[0].auto_transition.reason: missing"},
    {"MissingTransitions", [](json& d) { d.erase("transitions"); }, "transitions: missing"},
    {"UnknownTo", [](json& d) { d["transitions"][2]["to"] = "SHIPPD"; },
     "transitions[2].to: unknown status 'SHIPPD'"},
    {"UnknownFrom", [](json& d) { d["transitions"][1]["from"] = "Q"; },
     "transitions[1].from: unknown status 'Q'"},
    {"FromMissing", [](json& d) { d["transitions"][1].erase("from"); },
     "transitions[1].from: missing (use null for order creation or \"*\" for any non-terminal "
     "status)"},
    {"FromWrongType", [](json& d) { d["transitions"][1]["from"] = 1; },
     "transitions[1].from: expected a status name, \"*\" or null, got number"},
    {"TerminalWithOutgoing",
     [](json& d) {
       d["transitions"].push_back({{"from", "C"}, {"to", "A"}, {"sources", {"crm"}}});
     },
     "transitions[3].from: terminal status 'C' cannot have outgoing transitions"},
    {"EmptySources", [](json& d) { d["transitions"][1]["sources"] = json::array(); },
     "transitions[1].sources: must list at least one source (e.g. [\"crm\"]); nobody could make "
     "this transition"},
    {"SourcesNotArray", [](json& d) { d["transitions"][1]["sources"] = "mes"; },
     "transitions[1].sources: expected an array of source names, got string"},
    {"EmptySourceName",
     [](json& d) {
       d["transitions"][1]["sources"] = {"mes", ""};
     },
     "transitions[1].sources[1]: expected a non-empty source name, got an empty string"},
    {"DuplicateSource",
     [](json& d) {
       d["transitions"][1]["sources"] = {"mes", "mes"};
     },
     "transitions[1].sources[1]: duplicate source 'mes'"},
    {"SelfTransition",
     [](json& d) {
       d["transitions"].push_back({{"from", "B"}, {"to", "B"}, {"sources", {"crm"}}});
     },
     "transitions[3]: a status cannot transition to itself (B → B)"},
    {"DuplicateTransition",
     [](json& d) {
       d["transitions"].push_back({{"from", "A"}, {"to", "B"}, {"sources", {"crm"}}});
     },
     "transitions[3]: duplicate transition A → B (already at transitions[1])"},
    {"CreationOfNonInitial", [](json& d) { d["transitions"][0]["to"] = "B"; },
     "transitions[0].to: creation (\"from\": null) must lead to an initial status; 'B' is not "
     "marked \"initial\": true"},
    {"InitialWithoutCreation", [](json& d) { d["statuses"][1]["initial"] = true; },
     "statuses[1]: initial status 'B' has no creation transition ({\"from\": null, \"to\": "
     "\"B\", \"sources\": [...]})"},
    {"DeadEndNonTerminal", [](json& d) { d["transitions"].erase(2); },
     "statuses[1]: status 'B' is not terminal but has no outgoing transitions (add one or mark "
     "it \"terminal\": true)"},
    {"Unreachable",
     [](json& d) {
       d["statuses"].push_back({{"name", "D"}});
       d["transitions"].push_back({{"from", "D"}, {"to", "C"}, {"sources", {"crm"}}});
     },
     "statuses[3]: status 'D' cannot be reached from any initial status"},
    {"UnknownTransitionKey", [](json& d) { d["transitions"][1]["source"] = "mes"; },
     "transitions[1].source: unknown key (expected one of: from, to, sources)"},
    {"CalendarsNotObject", [](json& d) { d["calendars"] = json::array(); },
     "calendars: expected an object, got array"},
    {"CalendarEmpty", [](json& d) { d["statuses"][1]["calendar"] = ""; },
     "statuses[1].calendar: must not be empty"},
    {"CalendarUnknown", [](json& d) { d["statuses"][1]["calendar"] = "office"; },
     "statuses[1].calendar: unknown calendar 'office'"},
    {"CalendarNoZone", [](json& d) { d["calendars"] = {{"office", {{"working_hours", {{"mon", {"09:00-17:00"}}}}}}}; },
     "calendars.office.time_zone: missing"},
    {"CalendarBadInterval",
     [](json& d) {
       d["calendars"] = {{"office", {{"time_zone", "UTC"}, {"working_hours", {{"tue", {"17:00-09:00"}}}}}}};
     },
     "calendars.office.working_hours.tue[0]: expected \"HH:MM-HH:MM\" with start before end, got '17:00-09:00'"},
    {"CalendarOverlap",
     [](json& d) {
       d["calendars"] = {{"office", {{"time_zone", "UTC"}, {"working_hours", {{"mon", {"09:00-13:00", "12:00-17:00"}}}}}}};
     },
     "calendars.office.working_hours.mon[1]: intervals must be increasing and must not overlap"},
    {"CalendarNoWorkingTime",
     [](json& d) { d["calendars"] = {{"office", {{"time_zone", "UTC"}, {"working_hours", json::object()}}}}; },
     "calendars.office.working_hours: no working interval in the whole week"},
    {"CalendarBadHoliday",
     [](json& d) {
       d["calendars"] = {{"office", {{"time_zone", "UTC"}, {"working_hours", {{"mon", {"09:00-17:00"}}}}, {"holidays", {"2026-02-30"}}}}};
     },
     "calendars.office.holidays[0]: expected a date \"YYYY-MM-DD\", got \"2026-02-30\""},
    {"SilenceNoWindow", [](json& d) { d["source_silence"] = json::parse(R"([{"source": "crm"}])"); },
     "source_silence[0].window: missing"},
    {"SilenceTwice",
     [](json& d) { d["source_silence"] = json::parse(R"([{"source": "crm", "window": "1h"}, {"source": "crm", "window": "2h"}])"); },
     "source_silence[1].source: a second rule for source 'crm'"},
};

INSTANTIATE_TEST_SUITE_P(Cases, InvalidWorkflowTest, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& p) {
                           return std::string(p.param.name);
                         });

TEST(WorkflowTextTest, NotJsonReportsThePosition) {
  const std::string msg = error_of_text("{\n  \"name\": \"t\",\n  statuses: []\n}");
  EXPECT_EQ(msg.rfind("not valid JSON: [json.exception.parse_error.101] parse error at line 3, "
                      "column 3: syntax error while parsing object key",
                      0),
            0U)
      << msg;
}

TEST(WorkflowTextTest, EmptyTextIsNotJson) {
  EXPECT_EQ(error_of_text("").rfind("not valid JSON: ", 0), 0U);
}

TEST(WorkflowTextTest, DuplicateKeysAreRejectedWithTheirLocation) {
  EXPECT_EQ(error_of_text(R"({"name": "a", "name": "b"})"), "name: duplicate key");
  EXPECT_EQ(error_of_text(R"({"name": "t", "statuses": [{"name": "A"},
      {"name": "B", "sla": "1h", "sla": "2h"}]})"),
            "statuses[1].sla: duplicate key");
  EXPECT_EQ(error_of_text(R"({"name": "t", "statuses": [[1, [2]], {"x": {"y": 1, "y": 2}}]})"),
            "statuses[1].x.y: duplicate key");
}

TEST(WorkflowTextTest, ValidTextParses) {
  EXPECT_EQ(parse_workflow_text(minimal().dump()).to_json(), parse_workflow(minimal()).to_json());
}

class WorkflowFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() /
            ("oss-domain-workflow-" + std::to_string(::getpid()) + ".json");
  }
  void TearDown() override { std::filesystem::remove(path_); }
  void write(const std::string& text) {
    std::ofstream out(path_, std::ios::binary);
    out << text;
  }
  std::string load_error() {
    try {
      load_workflow_file(path_.string());
    } catch (const WorkflowError& e) {
      return e.what();
    }
    return "(no error)";
  }
  std::filesystem::path path_;
};

TEST_F(WorkflowFileTest, LoadsAValidFile) {
  write(minimal().dump(2));
  EXPECT_EQ(load_workflow_file(path_.string()).name(), "t");
}

TEST_F(WorkflowFileTest, ErrorsNameTheFile) {
  json doc = minimal();
  doc["transitions"][2]["to"] = "SHIPPD";
  write(doc.dump(2));
  EXPECT_EQ(load_error(),
            "workflow file '" + path_.string() + "': transitions[2].to: unknown status 'SHIPPD'");
}

TEST_F(WorkflowFileTest, NotJsonNamesTheFileAndPosition) {
  write("{\"name\": \"t\",}");
  const std::string msg = load_error();
  EXPECT_EQ(msg.rfind("workflow file '" + path_.string() +
                          "': not valid JSON: [json.exception.parse_error.101] parse error at "
                          "line 1, column 14",
                      0),
            0U)
      << msg;
}

TEST_F(WorkflowFileTest, MissingFile) {
  EXPECT_EQ(load_error(),
            "workflow file '" + path_.string() + "': cannot open: No such file or directory");
}

}  // namespace
}  // namespace oss::domain
