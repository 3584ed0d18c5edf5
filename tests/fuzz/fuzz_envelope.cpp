// libFuzzer target: the wire envelope parser must never crash, throw or leak on any input
// (it is fed straight from the broker). Build and run: scripts/fuzz.sh [seconds].
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "domain/envelope.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const auto parsed = oss::domain::parse_envelope(body);
  if (const auto* env = std::get_if<oss::domain::Envelope>(&parsed)) {
    (void)oss::domain::status_change_of(*env);
    // What parses must serialise and parse again to the same envelope.
    const auto again = oss::domain::parse_envelope(oss::domain::to_json(*env).dump());
    if (!std::holds_alternative<oss::domain::Envelope>(again)) __builtin_trap();
  }
  return 0;
}
