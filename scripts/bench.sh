#!/usr/bin/env bash
# The figures of DESIGN.md §10 on the running devnet, beside a plain ICS-20 transfer over
# the same Hermes: exchange latency (sequential, fresh requesters) with a per-stage
# breakdown, exchanges/min at each --parallel level, the ICS-20 baseline, gas per message
# kind (Hermes' packets included), wasm sizes, patient histories, tool install times.
#
#   scripts/bench.sh [--runs N] [--parallel L] [--json FILE] [--poll SECS] [--skip-install]
#                    [--no-histories] [--histories L] [--keep-keys] [--quiet-wait S]
#
# The logic is Rust: tests/src/bin/bench.rs and tests/src/bench/ (one module per phase),
# all chain access through packages/chain; exchanges are made by the ehrx binary. This
# script only builds them and runs the benchmark; `--help` lists the options.
#
# Environment: EHRX_DEVNET_DIR (default ~/.cache/ehrx-devnet), EHRX_BIN (an ehrx binary;
# default target/release/ehrx, built with cargo when older than its sources).
#
# Output: the Markdown report on stdout and in $EHRX_DEVNET_DIR/bench/bench-<timestamp>.md,
# the JSON summary beside it (and at --json FILE), progress on stderr, raw material in
# $EHRX_DEVNET_DIR/bench/run-<timestamp>/.
set -euo pipefail

# shellcheck source=scripts/devnet/helpers.sh
source "$(dirname "${BASH_SOURCE[0]}")/devnet/helpers.sh"

step "build ehrx and the benchmark (cargo --release; several minutes the first time, seconds after)"
EHRX_BIN=$(dn_ehrx_bin release) || die "no ehrx binary: cargo build --release -p ehrx failed (or set EHRX_BIN)"
export EHRX_BIN
TARGET=${CARGO_TARGET_DIR:-$EHRX_REPO_ROOT/target}
(cd "$EHRX_REPO_ROOT" && cargo build -q --release -p ehr-tests --bin bench --bin bench_histories) >&2 ||
    die "cargo build --release -p ehr-tests --bin bench failed (see above)"
step_done
exec "$TARGET/release/bench" "$@"
