#!/usr/bin/env bash
# System packages the test suite needs: kcat (independent Kafka client), libpython3.11
# (Triton's python backend stub links it), prometheus + promtool (alert rules, dashboard queries). Installs only what is missing; needs root.
set -euo pipefail
missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
ldconfig -p 2>/dev/null | grep -q 'libpython3.11.so.1.0' || missing+=(libpython3.11)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)  # renders report.html in tests
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)  # deploy/prometheus rules and live scrape
command -v g++ >/dev/null 2>&1 || missing+=(g++)  # tests/deploy/test_gpu.py builds the C++ Treelite backend
if ((${#missing[@]})); then
  echo "installing system packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
