#pragma once
/// Which broker nodes this process is connected to (for failover over a cluster's nodes).
#include <string>
#include <vector>

namespace oss::metrics {
class Registry;
}

namespace oss::amqp {

struct NodeConnections {
  std::string node;  // host:port of one node named in a Connection's URL (list)
  int open = 0;      // connections of this process open on it now
};

/// Every node named in any Connection's URL so far, in the order first seen, with the number of
/// connections open on it. Thread-safe.
std::vector<NodeConnections> connections_by_node();

/// Registers a collector on `registry` that renders connections_by_node() as the gauge
/// oss_amqp_node_connections{node="host:port"} (0 for a configured node not in use).
void expose_node_metrics(metrics::Registry& registry);

}  // namespace oss::amqp
