#!/usr/bin/env bash
# Boots SIS in deterministic mode, runs `stresstest all` and writes its JSON report,
# as in the seed's CI example:
#   scripts/qemu_stress_test.sh --duration 60000 --output stress_results.json [--seed N]
#   cargo run -q -p sis-testing -- validate stress_results.json --max-oom-events 10
set -euo pipefail
cd "$(dirname "$0")/.."
cargo xtask build
exec cargo run --quiet -p sis-testing -- stress "$@"
