// libFuzzer target: workflow files are operator input; any text gives a Workflow or a
// WorkflowError, never a crash. Build and run: scripts/fuzz.sh [seconds].
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "domain/workflow.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto wf = oss::domain::parse_workflow_text(text);
    // A valid workflow round-trips.
    (void)oss::domain::parse_workflow(wf.to_json());
  } catch (const oss::domain::WorkflowError&) {
    // Expected for invalid input.
  }
  return 0;
}
