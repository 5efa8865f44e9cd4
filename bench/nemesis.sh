#!/usr/bin/env bash
# The long fault-harness runs (tests/nemesis.rs, ignored test `nemesis_from_environment`):
# 4 writers through the gateway, a nemesis hitting the primary's datanode (or a coordinator)
# round after round, every acknowledged write read back at the end.
#
# Usage: bench/nemesis.sh [mode] [faults] [rounds]
#   mode:   none | async | sync            (default sync; min_replicas_to_ack 1)
#   faults: comma-separated kill,pause,isolate,cut,coordinator   (default kill)
#   rounds: default 50
# isolate/cut need root and iptables (the datanodes then run as their own uids).
# Prints the longest write outage per fault (median, max) and the acknowledged / refused /
# unknown-outcome / LOST write counts.
set -euo pipefail
cd "$(dirname "$0")/.."
export FERROCACHE_NEMESIS_MODE=${1:-sync}
export FERROCACHE_NEMESIS_FAULTS=${2:-kill}
export FERROCACHE_NEMESIS_ROUNDS=${3:-50}
cargo test --release -q -p ferrocache --test nemesis nemesis_from_environment -- --ignored --nocapture 2>&1 |
  grep -E '^(round|===|[A-Z][a-z]+: [0-9]+ rounds|acknowledged|skipped|test result|thread)'
