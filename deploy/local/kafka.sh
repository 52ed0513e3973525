#!/usr/bin/env bash
# One local Apache Kafka 4.x broker in KRaft combined mode (broker+controller), on 127.0.0.1.
#
#   deploy/local/kafka.sh start|stop|status|wait|restart|resolve
#
#   start    resolve the jars (first time only), format storage (first time only), start the
#            broker in the background and wait until it answers Kafka requests
#   wait     block until the broker answers (KAFKA_WAIT_TIMEOUT seconds, default 60)
#   stop     SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT seconds (default 30)
#   status   exit 0 when running and answering, 1 when running but not answering, 3 when stopped
#   restart  stop, then start on the same ports and data dir
#   resolve  only resolve the jars into the cache (e.g. to warm a CI image)
#
# Environment (defaults in brackets):
#   KAFKA_PORT             PLAINTEXT listener, advertised as 127.0.0.1:PORT           [9092]
#   KAFKA_CONTROLLER_PORT  KRaft controller listener                               [PORT+1]
#   KAFKA_SASL_SSL_PORT    optional SASL_SSL (SCRAM-SHA-512) listener; unset = none       []
#   KAFKA_SSL_PORT         optional SSL listener that requires a client certificate
#                          (mutual TLS, no SASL); unset = none                              []
#   KAFKA_SSL_CLIENT_CA    PEM CA certificate(s) the SSL listener accepts client
#                          certificates from                      [the generated $TLS_DIR/ca.crt]
#   KAFKA_SCRAM_USER / KAFKA_SCRAM_PASSWORD   SCRAM user made at format time [scorer/scorer-secret]
#   KAFKA_DATA_DIR         data, config, pid and logs          [<repo>/var/kafka-$KAFKA_PORT]
#   KAFKA_VERSION          Apache Kafka release                                         [4.4.0]
#   KAFKA_CACHE            resolved jars     [${XDG_CACHE_HOME:-~/.cache}/scorer/kafka/$VERSION]
#   KAFKA_HEAP_OPTS        [-Xms128m -Xmx512m]
#   KAFKA_JVM_OPTS         extra JVM flags, after the defaults                             []
#   KAFKA_EXTRA_PROPS      extra server.properties lines (newline separated), appended last []
#   KAFKA_CDS              1 = AppCDS class-data archive in $KAFKA_CACHE/cds, 0 = off       [1]
#   KAFKA_TLS_TOOL         openssl | keytool, for the SASL_SSL listener's certificates [openssl]
#   KAFKA_CGROUP           a cgroup v2 directory the broker's JVM starts in (made if missing),
#                          so a fault test can match its sockets (iptables -m cgroup)      []
#   KAFKA_WAIT_TIMEOUT / KAFKA_STOP_TIMEOUT   seconds                                   [60/30]
#   JAVA                   java binary                                         [java on PATH]
#   MVN                    maven binary                                         [mvn on PATH]
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd -P)"
POM="$SCRIPT_DIR/kafka/pom.xml"

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-}"
KAFKA_SSL_PORT="${KAFKA_SSL_PORT:-}"
KAFKA_SSL_CLIENT_CA="${KAFKA_SSL_CLIENT_CA:-}"
KAFKA_SCRAM_USER="${KAFKA_SCRAM_USER:-scorer}"
KAFKA_SCRAM_PASSWORD="${KAFKA_SCRAM_PASSWORD:-scorer-secret}"
KAFKA_DATA_DIR="${KAFKA_DATA_DIR:-$REPO_ROOT/var/kafka-$KAFKA_PORT}"
KAFKA_CACHE="${KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scorer/kafka/$KAFKA_VERSION}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:-}"
KAFKA_EXTRA_PROPS="${KAFKA_EXTRA_PROPS:-}"
KAFKA_CGROUP="${KAFKA_CGROUP:-}"
KAFKA_WAIT_TIMEOUT="${KAFKA_WAIT_TIMEOUT:-60}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
JAVA="${JAVA:-java}"
MVN="${MVN:-mvn}"

LIB_DIR="$KAFKA_CACHE/lib"
PID_FILE="$KAFKA_DATA_DIR/kafka.pid"
CONFIG="$KAFKA_DATA_DIR/server.properties"
LOG4J_CONFIG="$KAFKA_DATA_DIR/log4j2.properties"
TLS_DIR="$KAFKA_DATA_DIR/tls"
TLS_PASSWORD="scorer-local-tls"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

PORTS=("$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" ${KAFKA_SASL_SSL_PORT:+"$KAFKA_SASL_SSL_PORT"}
       ${KAFKA_SSL_PORT:+"$KAFKA_SSL_PORT"})
for p in "${PORTS[@]}"; do
  if ! [[ "$p" =~ ^[0-9]+$ ]] || ((p < 1 || p > 65535)); then die "bad port: $p"; fi
done

# ---------------------------------------------------------------- jars
pom_digest() { sha256sum "$POM" | cut -d' ' -f1; }

lib_complete() {
  [[ -f "$LIB_DIR/.complete" ]] && [[ "$(cat "$LIB_DIR/.complete")" == "$(pom_digest)" ]]
}

resolve() {
  lib_complete && return 0
  command -v "$MVN" >/dev/null || die "maven ($MVN) is needed to resolve the Kafka jars once"
  mkdir -p "$KAFKA_CACHE"
  # One resolver at a time per cache (parallel test sessions share it).
  exec 9>"$KAFKA_CACHE/.lock"
  flock 9
  if ! lib_complete; then
    log "resolving Apache Kafka $KAFKA_VERSION jars from Maven Central into $LIB_DIR"
    local tmp="$KAFKA_CACHE/lib.tmp.$$"
    rm -rf "$tmp"
    # -o first: works offline when ~/.m2 already holds everything.
    if ! "$MVN" -o -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies -Dkafka.version="$KAFKA_VERSION" \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >/dev/null 2>&1; then
      rm -rf "$tmp"
      "$MVN" -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies -Dkafka.version="$KAFKA_VERSION" \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >&2 \
        || { rm -rf "$tmp"; die "mvn could not resolve Kafka $KAFKA_VERSION"; }
    fi
    [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after mvn"; }
    pom_digest >"$tmp/.complete"
    rm -rf "$LIB_DIR"
    mv "$tmp" "$LIB_DIR"
  fi
  flock -u 9
  exec 9>&-
}

# ---------------------------------------------------------------- java
# AppCDS: the first broker run dumps the classes it loaded into a dynamic archive when it exits
# (cleanly, on `stop`); later JVMs map it, which roughly halves the JVM's part of a start.
# The archive is keyed by the java binary; a stale or mismatched one is ignored by -Xshare:auto.
KAFKA_CDS="${KAFKA_CDS:-1}"
cds_archive() {
  local java_bin key
  java_bin="$(readlink -f "$(command -v "$JAVA")")"
  key="$(printf '%s %s' "$java_bin" "$(stat -c %Y "$java_bin")" | cksum | cut -d' ' -f1)"
  printf '%s' "$KAFKA_CACHE/cds/kafka-$key.jsa"
}

JVM_FLAGS=()
jvm_flags() {
  # $1 = broker | tool. Serial GC: one small heap on a 2-core machine, fewer GC threads to
  # start. Full tiered JIT stays on (benchmarks measure this broker's throughput); for the
  # fastest start add KAFKA_JVM_OPTS=-XX:TieredStopAtLevel=1 (see README for numbers).
  # shellcheck disable=SC2206
  JVM_FLAGS=(
    $KAFKA_HEAP_OPTS
    -XX:+UseSerialGC
    -XX:+ExitOnOutOfMemoryError
    -Xshare:auto
    -Xlog:cds=off
    -Xlog:cds+dynamic=off
    -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$LOG4J_CONFIG"
    -Dkafka.logs.dir="$KAFKA_DATA_DIR"
  )
  rm -f "$KAFKA_DATA_DIR/cds.pending"
  if [[ "$KAFKA_CDS" == 1 ]]; then
    local archive
    archive="$(cds_archive)"
    if [[ -s "$archive" ]]; then
      JVM_FLAGS+=("-XX:SharedArchiveFile=$archive")
    elif [[ "$1" == broker ]]; then
      mkdir -p "$(dirname "$archive")"
      local pending="$archive.$$.tmp"
      JVM_FLAGS+=("-XX:ArchiveClassesAtExit=$pending")
      printf '%s\n%s\n' "$pending" "$archive" >"$KAFKA_DATA_DIR/cds.pending"
    fi
  fi
  # shellcheck disable=SC2206
  JVM_FLAGS+=($KAFKA_JVM_OPTS)
}

publish_cds_archive() {
  # After a clean exit of a broker started with -XX:ArchiveClassesAtExit.
  [[ -f "$KAFKA_DATA_DIR/cds.pending" ]] || return 0
  local pending archive
  { read -r pending; read -r archive; } <"$KAFKA_DATA_DIR/cds.pending"
  rm -f "$KAFKA_DATA_DIR/cds.pending"
  if [[ -s "$pending" && ! -s "$archive" ]]; then
    mv -f "$pending" "$archive" && log "saved class-data archive $archive (faster later starts)"
  fi
  rm -f "$pending"
}

# ---------------------------------------------------------------- config
write_log4j_config() {
  cat >"$LOG4J_CONFIG" <<EOF
# Generated by deploy/local/kafka.sh: the broker logs to a file in its data dir.
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = $KAFKA_DATA_DIR/server.log
appender.file.filePattern = $KAFKA_DATA_DIR/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
# One INFO line per retry of a transaction marker: a marker that could not be written
# (soak of 2026-12-04) filled the three 50 MB files in 80 s and rotated away what led to it.
logger.txnmarkers.name = kafka.coordinator.transaction.TransactionMarkerRequestCompletionHandler
logger.txnmarkers.level = WARN
EOF
}

tls_openssl() {
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
    -subj "/CN=scorer local Kafka CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
  openssl req -newkey rsa:2048 -nodes -keyout broker.key -out broker.csr -subj "/CN=localhost"
  printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "extendedKeyUsage=serverAuth" \
    "authorityKeyIdentifier=keyid,issuer" >broker.ext
  openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out broker.crt \
    -days 3650 -extfile broker.ext
  openssl pkcs12 -export -in broker.crt -inkey broker.key -certfile ca.crt -name broker \
    -out broker.p12 -passout "pass:$TLS_PASSWORD"
  rm -f broker.csr broker.ext ca.srl
}

tls_keytool() {
  local kt=(keytool -storetype PKCS12 -storepass "$TLS_PASSWORD" -keypass "$TLS_PASSWORD")
  "${kt[@]}" -genkeypair -keystore ca.p12 -alias ca -dname "CN=scorer local Kafka CA" \
    -keyalg RSA -keysize 2048 -validity 3650 -ext bc:c -ext ku:c=keyCertSign,cRLSign
  "${kt[@]}" -exportcert -keystore ca.p12 -alias ca -rfc -file ca.crt
  "${kt[@]}" -genkeypair -keystore broker.p12 -alias broker -dname "CN=localhost" \
    -keyalg RSA -keysize 2048 -validity 3650
  "${kt[@]}" -certreq -keystore broker.p12 -alias broker -file broker.csr
  "${kt[@]}" -gencert -keystore ca.p12 -alias ca -infile broker.csr -outfile broker.crt -rfc \
    -validity 3650 -ext san=dns:localhost,ip:127.0.0.1 -ext eku=serverAuth
  "${kt[@]}" -importcert -keystore broker.p12 -alias ca -file ca.crt -noprompt
  "${kt[@]}" -importcert -keystore broker.p12 -alias broker -file broker.crt -noprompt
  rm -f broker.csr
}

ensure_tls() {
  # A self-signed CA (ca.crt: what clients trust) and a broker certificate for 127.0.0.1 and
  # localhost signed by it, in a PKCS12 keystore. openssl when present, else the JDK's keytool.
  [[ -f "$TLS_DIR/broker.p12" && -f "$TLS_DIR/ca.crt" ]] && return 0
  local tool="${KAFKA_TLS_TOOL:-}"
  if [[ -z "$tool" ]]; then
    if command -v openssl >/dev/null; then tool=openssl; else tool=keytool; fi
  fi
  [[ "$tool" == openssl || "$tool" == keytool ]] || die "KAFKA_TLS_TOOL must be openssl or keytool"
  command -v "$tool" >/dev/null || die "$tool is needed for the SASL_SSL and SSL listeners"
  log "generating a self-signed CA and broker certificate in $TLS_DIR ($tool)"
  rm -rf "$TLS_DIR"
  mkdir -p "$TLS_DIR"
  if ! (cd "$TLS_DIR" && umask 077 && "tls_$tool") >"$KAFKA_DATA_DIR/tls.log" 2>&1; then
    tail -n 20 "$KAFKA_DATA_DIR/tls.log" >&2
    rm -rf "$TLS_DIR"
    die "generating the TLS material failed"
  fi
  chmod 644 "$TLS_DIR/ca.crt"
}

write_server_config() {
  local listeners="PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT"
  local advertised="PLAINTEXT://127.0.0.1:$KAFKA_PORT"
  local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [[ -n "$KAFKA_SASL_SSL_PORT" ]]; then
    listeners+=",SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT"
    advertised+=",SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT"
    protocols+=",SASL_SSL:SASL_SSL"
  fi
  if [[ -n "$KAFKA_SSL_PORT" ]]; then
    listeners+=",SSL://127.0.0.1:$KAFKA_SSL_PORT"
    advertised+=",SSL://127.0.0.1:$KAFKA_SSL_PORT"
    protocols+=",SSL:SSL"
  fi
  cat >"$CONFIG" <<EOF
# Generated by deploy/local/kafka.sh on every start; put overrides in KAFKA_EXTRA_PROPS.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=$protocols
log.dirs=$KAFKA_DATA_DIR/data

num.partitions=3
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
group.initial.rebalance.delay.ms=0

offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

num.network.threads=2
num.io.threads=4
log.retention.hours=24
log.segment.bytes=134217728
EOF
  if [[ -n "$KAFKA_SASL_SSL_PORT" ]]; then
    cat >>"$CONFIG" <<EOF

# SASL_SSL listener (SCRAM-SHA-512 over TLS) for "untrusted network" tests.
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=$TLS_DIR/broker.p12
listener.name.sasl_ssl.ssl.keystore.password=$TLS_PASSWORD
listener.name.sasl_ssl.ssl.key.password=$TLS_PASSWORD
listener.name.sasl_ssl.ssl.client.auth=none
EOF
  fi
  if [[ -n "$KAFKA_SSL_PORT" ]]; then
    cat >>"$CONFIG" <<EOF

# SSL listener with mutual TLS: a client without a certificate signed by the client CA
# fails the handshake (the client's identity is its certificate's subject).
listener.name.ssl.ssl.keystore.type=PKCS12
listener.name.ssl.ssl.keystore.location=$TLS_DIR/broker.p12
listener.name.ssl.ssl.keystore.password=$TLS_PASSWORD
listener.name.ssl.ssl.key.password=$TLS_PASSWORD
listener.name.ssl.ssl.truststore.type=PEM
listener.name.ssl.ssl.truststore.location=${KAFKA_SSL_CLIENT_CA:-$TLS_DIR/ca.crt}
listener.name.ssl.ssl.client.auth=required
EOF
  fi
  if [[ -n "$KAFKA_EXTRA_PROPS" ]]; then
    printf '\n# KAFKA_EXTRA_PROPS\n%s\n' "$KAFKA_EXTRA_PROPS" >>"$CONFIG"
  fi
}

random_cluster_id() {
  # A Kafka Uuid: 16 random bytes, base64url without padding; never starting with '-'.
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* && "$id" != "AAAAAAAAAAAAAAAAAAAAAA" && "$id" != "AAAAAAAAAAAAAAAAAAAAAQ" ]] && break
  done
  printf '%s' "$id"
}

format_storage() {
  [[ -f "$KAFKA_DATA_DIR/data/meta.properties" ]] && return 0
  local cluster_id
  cluster_id="$(random_cluster_id)"
  log "formatting $KAFKA_DATA_DIR/data (cluster id $cluster_id)"
  # SCRAM credentials are always written, so the SASL_SSL listener can be enabled later.
  "$JAVA" "${JVM_FLAGS[@]}" -cp "$LIB_DIR/*" kafka.tools.StorageTool format \
    --config "$CONFIG" --cluster-id "$cluster_id" \
    --add-scram "SCRAM-SHA-512=[name=$KAFKA_SCRAM_USER,password=$KAFKA_SCRAM_PASSWORD]" \
    >>"$KAFKA_DATA_DIR/format.log" 2>&1 \
    || { tail -n 20 "$KAFKA_DATA_DIR/format.log" >&2; die "storage format failed"; }
  printf '%s\n' "$cluster_id" >"$KAFKA_DATA_DIR/cluster.id"
}

# ---------------------------------------------------------------- process
alive() {
  # A zombie (exited, not yet reaped by whoever adopted it) counts as dead.
  local state
  state="$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

running_pid() {
  # Prints the broker's pid when it is alive and is this data dir's broker.
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  local cmdline
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *" kafka.Kafka $CONFIG"* ]] || return 1
  printf '%s' "$pid"
}

port_in_use() {
  # shellcheck disable=SC2016 # $1 is expanded by the inner bash
  timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

owns_port() {
  # True when process $1 holds the listening TCP socket of port $2 (so a probe that succeeds
  # is answered by this broker, not by another process that already had the port).
  local pid="$1" hex inode
  hex="$(printf '%04X' "$2")"
  [[ -d /proc/$pid/fd ]] || return 1
  while read -r inode; do
    # No pipe into grep -q: under pipefail, find's error for an fd closed mid-scan would turn
    # a match into a failure.
    if [[ -n "$(find "/proc/$pid/fd" -maxdepth 1 -lname "socket:\[$inode\]" -print -quit \
        2>/dev/null || true)" ]]; then
      return 0
    fi
  done < <(awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  return 1
}

# ApiVersions v0 request (api key 18), correlation id 7, client id "probe".
probe() {
  local reply
  # shellcheck disable=SC2016 # $1 is expanded by the inner bash
  reply="$(timeout 2 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "\x00\x00\x00\x0f\x00\x12\x00\x00\x00\x00\x00\x07\x00\x05probe" >&3
    head -c 10 <&3
  ' _ "$KAFKA_PORT" 2>/dev/null | od -An -tx1 | tr -d ' \n')" || true
  # size(4) correlation id 7 (4) error code 0 (2)
  [[ "$reply" =~ ^[0-9a-f]{8}000000070000$ ]]
}

cmd_wait() {
  local deadline=$((SECONDS + KAFKA_WAIT_TIMEOUT))
  local pid
  while ((SECONDS < deadline)); do
    if ! pid="$(running_pid)"; then
      # Alive but not (yet) the broker's cmdline: the launch is mid-exec (nohup -> setsid ->
      # java; /proc/PID/cmdline reads empty during an execve): look again.
      if [[ -f "$PID_FILE" ]] && alive "$(cat "$PID_FILE")"; then
        sleep 0.1
        continue
      fi
      [[ -f "$KAFKA_DATA_DIR/kafka.out" ]] && tail -n 30 "$KAFKA_DATA_DIR/kafka.out" >&2
      [[ -f "$KAFKA_DATA_DIR/server.log" ]] && grep -E 'ERROR|FATAL' "$KAFKA_DATA_DIR/server.log" | tail -n 20 >&2
      die "broker on port $KAFKA_PORT is not running (logs in $KAFKA_DATA_DIR)"
    fi
    if owns_port "$pid" "$KAFKA_PORT" && probe; then
      return 0
    fi
    sleep 0.1
  done
  die "broker on port $KAFKA_PORT did not answer within ${KAFKA_WAIT_TIMEOUT}s (logs in $KAFKA_DATA_DIR)"
}

cmd_start() {
  local pid
  if pid="$(running_pid)"; then
    log "already running (pid $pid) on 127.0.0.1:$KAFKA_PORT"
    cmd_wait
    return 0
  fi
  command -v "$JAVA" >/dev/null || die "java 17+ is needed ($JAVA not found)"
  for p in "${PORTS[@]}"; do
    if port_in_use "$p"; then die "127.0.0.1:$p is already in use by another process"; fi
  done
  resolve
  mkdir -p "$KAFKA_DATA_DIR"
  write_log4j_config
  if [[ -n "$KAFKA_SASL_SSL_PORT$KAFKA_SSL_PORT" ]]; then ensure_tls; fi
  if [[ -n "$KAFKA_SSL_PORT" && -n "$KAFKA_SSL_CLIENT_CA" && ! -r "$KAFKA_SSL_CLIENT_CA" ]]; then
    die "KAFKA_SSL_CLIENT_CA: cannot read $KAFKA_SSL_CLIENT_CA"
  fi
  write_server_config
  jvm_flags tool
  format_storage
  jvm_flags broker
  : >"$KAFKA_DATA_DIR/kafka.out"
  local -a launch=()
  if [[ -n "$KAFKA_CGROUP" ]]; then
    # Joined before exec, so every socket the JVM opens belongs to the cgroup (the pid stays).
    mkdir -p "$KAFKA_CGROUP" || die "cannot make the cgroup $KAFKA_CGROUP"
    launch=(sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$KAFKA_CGROUP")
  fi
  # setsid: own session, so the broker outlives the caller's terminal and process group.
  nohup setsid "${launch[@]}" "$JAVA" "${JVM_FLAGS[@]}" -cp "$LIB_DIR/*" kafka.Kafka "$CONFIG" \
    >>"$KAFKA_DATA_DIR/kafka.out" 2>&1 </dev/null &
  pid=$!
  printf '%s\n' "$pid" >"$PID_FILE"
  log "started pid $pid: PLAINTEXT 127.0.0.1:$KAFKA_PORT, controller $KAFKA_CONTROLLER_PORT${KAFKA_SASL_SSL_PORT:+, SASL_SSL 127.0.0.1:$KAFKA_SASL_SSL_PORT}${KAFKA_SSL_PORT:+, SSL (mutual) 127.0.0.1:$KAFKA_SSL_PORT}; data $KAFKA_DATA_DIR"
  cmd_wait
  log "ready on 127.0.0.1:$KAFKA_PORT"
}

cmd_stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    log "not running (port $KAFKA_PORT, data $KAFKA_DATA_DIR)"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while alive "$pid" && ((SECONDS < deadline)); do
    sleep 0.1
  done
  if alive "$pid"; then
    log "pid $pid still alive after ${KAFKA_STOP_TIMEOUT}s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.1; done
    rm -f "$KAFKA_DATA_DIR/cds.pending"
  fi
  publish_cds_archive
  rm -f "$PID_FILE"
  log "stopped pid $pid"
}

cmd_status() {
  local pid
  if ! pid="$(running_pid)"; then
    echo "stopped (port $KAFKA_PORT, data $KAFKA_DATA_DIR)"
    return 3
  fi
  if owns_port "$pid" "$KAFKA_PORT" && probe; then
    echo "running pid $pid, answering on 127.0.0.1:$KAFKA_PORT${KAFKA_SASL_SSL_PORT:+ (SASL_SSL 127.0.0.1:$KAFKA_SASL_SSL_PORT)}${KAFKA_SSL_PORT:+ (SSL 127.0.0.1:$KAFKA_SSL_PORT)}, data $KAFKA_DATA_DIR"
    return 0
  fi
  echo "running pid $pid, NOT answering on 127.0.0.1:$KAFKA_PORT, data $KAFKA_DATA_DIR"
  return 1
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  wait) cmd_wait ;;
  restart) cmd_stop; cmd_start ;;
  resolve) resolve; echo "$LIB_DIR" ;;
  *) echo "usage: $0 start|stop|status|wait|restart|resolve" >&2; exit 2 ;;
esac
