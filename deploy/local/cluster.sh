#!/usr/bin/env bash
# Three local Apache Kafka 4.x brokers in one KRaft cluster on 127.0.0.1 (each node broker and
# controller: a combined three-voter quorum), for fault tests of leader loss, ISR shrink and
# rolling restarts. Each node is started by deploy/local/kafka.sh (same jars, same process
# handling); this script adds what makes them one cluster: a shared cluster id, the voter
# list, and replication factor 3 with min.insync.replicas=2 for every topic by default.
#
#   deploy/local/cluster.sh start|stop|status              all three nodes
#   deploy/local/cluster.sh start-node|stop-node|kill-node N   one node (1..3); kill = SIGKILL
#   deploy/local/cluster.sh bootstrap                      prints host:port,host:port,host:port
#
# Environment (defaults in brackets):
#   KAFKA_CLUSTER_PORTS             three PLAINTEXT ports, comma separated      [9192,9193,9194]
#   KAFKA_CLUSTER_CONTROLLER_PORTS  three KRaft controller ports                [9195,9196,9197]
#   KAFKA_CLUSTER_DIR               one sub-directory per node   [<repo>/var/kafka-cluster-PORT1]
#   KAFKA_HEAP_OPTS                 per node                             [-Xms64m -Xmx256m]
#   KAFKA_CLUSTER_EXTRA_PROPS       more server.properties lines for every node         []
#   KAFKA_CLUSTER_CGROUP            a cgroup v2 directory: node N's JVM runs in its node-N
#                                   sub-directory (kafka.sh KAFKA_CGROUP), so a test can cut
#                                   one node's network from the others with iptables      []
#   and kafka.sh's (KAFKA_VERSION, KAFKA_CACHE, JAVA, MVN, KAFKA_WAIT_TIMEOUT, ...).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd -P)"
KAFKA_SH="$SCRIPT_DIR/kafka.sh"

IFS=, read -r -a PORTS <<<"${KAFKA_CLUSTER_PORTS:-9192,9193,9194}"
IFS=, read -r -a CONTROLLERS <<<"${KAFKA_CLUSTER_CONTROLLER_PORTS:-9195,9196,9197}"
CLUSTER_DIR="${KAFKA_CLUSTER_DIR:-$REPO_ROOT/var/kafka-cluster-${PORTS[0]}}"
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms64m -Xmx256m}"
JAVA="${JAVA:-java}"

log() { printf 'cluster.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

((${#PORTS[@]} == 3 && ${#CONTROLLERS[@]} == 3)) || die "three ports and three controller ports are needed"

VOTERS="1@127.0.0.1:${CONTROLLERS[0]},2@127.0.0.1:${CONTROLLERS[1]},3@127.0.0.1:${CONTROLLERS[2]}"
# Appended after kafka.sh's one-broker defaults: the last value of a key wins.
CLUSTER_PROPS="controller.quorum.voters=$VOTERS
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
unclean.leader.election.enable=false
num.io.threads=2
num.network.threads=1"

node_env() {
  # The environment kafka.sh runs node $1 with.
  local i=$(($1 - 1))
  printf '%s\0' "KAFKA_PORT=${PORTS[$i]}" "KAFKA_CONTROLLER_PORT=${CONTROLLERS[$i]}" \
    "KAFKA_DATA_DIR=$CLUSTER_DIR/node-$1" \
    "KAFKA_CGROUP=${KAFKA_CLUSTER_CGROUP:+$KAFKA_CLUSTER_CGROUP/node-$1}" \
    "KAFKA_EXTRA_PROPS=node.id=$1
$CLUSTER_PROPS
${KAFKA_CLUSTER_EXTRA_PROPS:-}"
}

node() {
  # node N COMMAND: kafka.sh COMMAND for node N.
  local -a env
  mapfile -d '' env < <(node_env "$1")
  env "${env[@]}" "$KAFKA_SH" "$2"
}

format_nodes() {
  # kafka.sh formats a fresh data dir with a random cluster id of its own; three nodes need one
  # id and the voter list, so they are formatted here first (kafka.sh then skips formatting).
  [[ -f "$CLUSTER_DIR/node-1/data/meta.properties" ]] && return 0
  local lib cluster_id n i
  lib="$("$KAFKA_SH" resolve)"
  cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  [[ "$cluster_id" == -* ]] && cluster_id="A${cluster_id:1}"
  for n in 1 2 3; do
    i=$((n - 1))
    mkdir -p "$CLUSTER_DIR/node-$n"
    cat >"$CLUSTER_DIR/node-$n/format.properties" <<EOF
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$VOTERS
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:${PORTS[$i]},CONTROLLER://127.0.0.1:${CONTROLLERS[$i]}
log.dirs=$CLUSTER_DIR/node-$n/data
EOF
    "$JAVA" -Xmx128m -cp "$lib/*" kafka.tools.StorageTool format \
      --config "$CLUSTER_DIR/node-$n/format.properties" --cluster-id "$cluster_id" \
      >"$CLUSTER_DIR/node-$n/format.log" 2>&1 \
      || { tail -n 20 "$CLUSTER_DIR/node-$n/format.log" >&2; die "formatting node $n failed"; }
  done
  printf '%s\n' "$cluster_id" >"$CLUSTER_DIR/cluster.id"
  log "formatted three nodes in $CLUSTER_DIR (cluster id $cluster_id)"
}

all() {
  # Every node at once: a node answers only once a quorum (two of three) is up, so starting
  # them one after another would have the first wait for the second.
  local n rc=0
  local -a pids=()
  for n in 1 2 3; do
    node "$n" "$1" &
    pids+=($!)
  done
  for n in "${pids[@]}"; do wait "$n" || rc=1; done
  return "$rc"
}

check_node() {
  [[ "${1:-}" =~ ^[123]$ ]] || die "node must be 1, 2 or 3"
}

case "${1:-}" in
  start) format_nodes; all start; log "ready: $(IFS=,; printf '127.0.0.1:%s' "${PORTS[*]}" | sed 's/,/,127.0.0.1:/g')" ;;
  stop) all stop ;;
  status) all status ;;
  start-node) check_node "${2:-}"; format_nodes; node "$2" start ;;
  stop-node) check_node "${2:-}"; node "$2" stop ;;
  kill-node)
    check_node "${2:-}"
    pid_file="$CLUSTER_DIR/node-$2/kafka.pid"
    if [[ -f "$pid_file" ]]; then kill -KILL "$(cat "$pid_file")" 2>/dev/null || true; fi
    node "$2" stop ;;
  bootstrap) printf '127.0.0.1:%s,127.0.0.1:%s,127.0.0.1:%s\n' "${PORTS[@]}" ;;
  *) echo "usage: $0 start|stop|status|bootstrap|start-node N|stop-node N|kill-node N" >&2; exit 2 ;;
esac
