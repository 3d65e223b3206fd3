#!/usr/bin/env bash
# The ehrx dev network: the hospital chains of relayer-config/devnet.toml (four validators
# each by default), the registry and exchange contracts on each, the IBC channels between
# the exchanges, and two Hermes instances relaying them. The work is done by the Rust
# tool `ehrx-devnet` (packages/devnet); this entry point builds it and the contracts when
# stale, and passes the command on.
#
#   scripts/devnet.sh up [--validators N]   start (cold: make everything; warm: restart);
#                                     --validators 1 for a fast inner loop (fixed at making)
#   scripts/devnet.sh status          nodes, contracts, partners, relayers; exit 0 only
#                                     when everything runs
#   scripts/devnet.sh down [--clean]  stop what it started; --clean also wipes the state
#   scripts/devnet.sh reset           = down --clean
#   scripts/devnet.sh add-chain       the on-demand chain hospital-c, linked to hospital-a
#   scripts/devnet.sh add-transfer-channel   ICS-20 channel A<->B (latency baseline)
#   scripts/devnet.sh stop-relayer | start-relayer | restart-relayer
#   scripts/devnet.sh clear-packets   relay whatever is pending on every link, once
#   scripts/devnet.sh env CHAIN       print shell exports for a chain (eval "$(...)")
#   scripts/devnet.sh stop-node --chain C --validator V [--kill] | start-node ...
#   scripts/devnet.sh -- ARGS...      any other `ehrx-devnet` command (ehrx-devnet --help)
#
# State, logs and pid files: ${EHRX_DEVNET_DIR:-$HOME/.cache/ehrx-devnet}; devnet.json there
# describes it for the tests, the benchmark, the demo and the peer tool.
#
# Environment:
#   EHRX_DEVNET_DIR      state directory (default ~/.cache/ehrx-devnet)
#   EHRX_DEVNET_CONFIG   the devnet file (default relayer-config/devnet.toml)
#   EHRX_TOOLS           tool cache (scripts/install-tools.sh)
#   EHRX_SKIP_BUILD=1    never run build-wasm.sh (use artifacts/ as they are)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROOT="$EHRX_REPO_ROOT"
ARTIFACTS="${EHRX_ARTIFACTS:-$ROOT/artifacts}"

# Contracts: rebuilt when a source is newer than an artifact (only for commands that
# deploy them).
ensure_artifacts() {
    local c newer
    for c in registry exchange; do
        newer=$(find "$ROOT/contracts" "$ROOT/packages/protocol" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" \
            -type f \( -name '*.rs' -o -name 'Cargo.*' \) -newer "$ARTIFACTS/$c.wasm" -print -quit 2>/dev/null ||
            echo missing)
        [[ -f "$ARTIFACTS/$c.wasm" && -z "$newer" ]] && continue
        [[ -n "${EHRX_SKIP_BUILD:-}" && -f "$ARTIFACTS/$c.wasm" ]] && continue
        log "$ARTIFACTS/$c.wasm is missing or older than its sources: scripts/build-wasm.sh"
        "$ROOT/scripts/build-wasm.sh" >&2 || die "scripts/build-wasm.sh failed"
        return
    done
}

main() {
    local cmd=${1:-} args=()
    shift || true
    case "$cmd" in
        "") usage_of "$0"; exit 0 ;;
        stop-relayer | start-relayer | restart-relayer) args=(relayer "${cmd%-relayer}") ;;
        --) args=() ;;
        *) args=("$cmd") ;;
    esac
    case "$cmd" in
        up | add-chain) ensure_artifacts ;;
    esac
    command -v wasmd >/dev/null && command -v hermes >/dev/null ||
        "$ROOT/scripts/install-tools.sh" wasmd hermes >&2 || die "scripts/install-tools.sh wasmd hermes failed"
    local target=${CARGO_TARGET_DIR:-$ROOT/target}
    (cd "$ROOT" && cargo build -q -p ehrx-devnet) >&2 || die "cargo build -p ehrx-devnet failed (see above)"
    exec "$target/debug/ehrx-devnet" "${args[@]}" "$@"
}

main "$@"
