#!/bin/sh
# The scorer image's entrypoint: one image, one role per container.
#   run [args]            scorer run (the service), /metrics /healthz /readyz on :9400
#   profiles [args]       python -m scorer_streams (entity profiles), :9410
#   incidents [args]      python -m scorer_streams incidents; --instance is the pod's ordinal
#                         (StatefulSet name-N), a stable transactional id
#   lag-exporter [args]   consumer-group lag (kafka_exporter's names), :9308
#   healthcheck           GET the running role's /healthz (the image's HEALTHCHECK)
#   scorer ARGS / anything else: run as given (scorer models validate ..., scorer capacity ...)
# Each role records its health URL in /tmp for `healthcheck`, which runs as a separate process;
# SCORER_HEALTH_PORT names the port when the role's metrics port is not its default.
set -eu
role=${1:-run}
[ "$#" -gt 0 ] && shift
health() { { echo "http://127.0.0.1:${SCORER_HEALTH_PORT:-$1}/healthz" > "${TMPDIR:-/tmp}/scorer-health-url"; } 2>/dev/null || true; }
# What runs, on stderr (the container log's first line): role, ordinal and arguments resolved.
run() { echo "scorer-entrypoint: exec $*" >&2; exec "$@"; }
case "$role" in
  run)
    health "${SCORER_HTTP__PORT:-9400}"
    run scorer run "$@" ;;
  profiles)
    health 9410
    run python -m scorer_streams --metrics-host 0.0.0.0 "$@" ;;
  incidents)
    health 9411
    host=${HOSTNAME:-}
    ordinal=${host##*-}
    case "$ordinal" in *[!0-9]*|'') ordinal=0 ;; esac
    run python -m scorer_streams incidents --metrics-host 0.0.0.0 --instance "${SCORER_INSTANCE:-$ordinal}" "$@" ;;
  lag-exporter)
    health 9308
    run python "${SCORER_LAG_EXPORTER:-/opt/scorer/lag_exporter.py}" "$@" ;;
  healthcheck)
    url=$(cat "${TMPDIR:-/tmp}/scorer-health-url" 2>/dev/null || echo http://127.0.0.1:9400/healthz)
    exec python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)' "$url" ;;
  *)
    run "$role" "$@" ;;
esac
