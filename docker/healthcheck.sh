#!/usr/bin/env bash
# Container health check without curl: HTTP/1.0 GET over bash's /dev/tcp.
#   oss-healthcheck [PATH]      PATH defaults to /readyz (200 = ready; 503 = database or broker
#                               unreachable). The port comes from OSS_HEALTHCHECK_PORT, else from
#                               RELAY_METRICS_LISTEN when the container runs outbox-relay, else
#                               from OSS_HTTP_LISTEN (order-status-service).
set -u
path="${1:-/readyz}"
if tr '\0' ' ' </proc/1/cmdline 2>/dev/null | grep -q 'outbox-relay'; then
  listen="${RELAY_METRICS_LISTEN:-127.0.0.1:9101}"
else
  listen="${OSS_HTTP_LISTEN:-127.0.0.1:8080}"
fi
port="${OSS_HEALTHCHECK_PORT:-${listen##*:}}"
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3
IFS= read -r -t 5 status <&3 || exit 1
exec 3<&-
case "$status" in
  "HTTP/1."?" 200"*) exit 0 ;;
  *) echo "unhealthy: $path -> ${status%$'\r'}"; exit 1 ;;
esac
