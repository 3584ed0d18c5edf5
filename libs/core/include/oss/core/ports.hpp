#pragma once
/// Free loopback ports for the programs a test or benchmark starts.
#include <cstdint>

namespace oss::core {

/// A TCP port on 127.0.0.1 that the kernel reports free, never the same one twice in this
/// process. A port the kernel hands out is only free until someone binds it, and the programs
/// started with it bind a moment later: two calls before that could return the same port (a CI
/// run once had the service and a relay's metrics endpoint on one port, and the test talked to
/// the relay). Thread-safe. Throws std::runtime_error when no socket can be bound.
std::uint16_t unique_free_port();

}  // namespace oss::core
