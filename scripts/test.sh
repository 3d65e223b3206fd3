#!/usr/bin/env bash
# Runs every test: formatting, lints, unit and two-chain in-process tests, the wasm build
# and cosmwasm-check, the schema freshness check, and the end-to-end suite on the devnet.
# Installs whatever is missing first (scripts/install-tools.sh; cached, seconds when warm).
#
#   scripts/test.sh            everything
#   scripts/test.sh --no-e2e   skip the devnet suite (no chains started)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$EHRX_REPO_ROOT"

run_e2e=1
[[ "${1:-}" == "--no-e2e" ]] && run_e2e=0
started=$SECONDS

step "install tools (wasmd, hermes, cosmwasm-check, wasm-opt; cached)"
if (( run_e2e )); then
    scripts/install-tools.sh
else
    scripts/install-tools.sh wasm-opt cosmwasm-check
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "unit and two-chain in-process tests (cargo test)"
cargo test --workspace

step "wasm build, bulk-memory lowering, cosmwasm-check"
scripts/build-wasm.sh

step "schema freshness"
scripts/schema.sh --check

if (( run_e2e )); then
    step "end-to-end suite on the devnet (starts it if it is not up)"
    # The suite must test the contracts just built: a devnet deployed from other artifacts
    # is wiped and brought up again.
    devnet_json="${EHRX_DEVNET_DIR:-$HOME/.cache/ehrx-devnet}/devnet.json"
    if [[ -f "$devnet_json" ]]; then
        for contract in registry exchange; do
            deployed=$(jq -r --arg c "$contract" '.chains["hospital-a"].artifacts_sha256[$c] // ""' "$devnet_json")
            built=$(sha256sum "artifacts/$contract.wasm" | cut -d' ' -f1)
            if [[ "$deployed" != "$built" ]]; then
                log "devnet runs an older $contract.wasm: resetting it"
                scripts/devnet.sh reset
                break
            fi
        done
    fi
    # A devnet this run starts is stopped again at the end (its state stays for a warm
    # restart next time); one that was already running is left running.
    if ! scripts/devnet.sh status >/dev/null 2>&1; then
        trap 'scripts/devnet.sh down >/dev/null 2>&1 || true' EXIT
        scripts/devnet.sh up
    fi
    cargo test -p ehr-tests --test e2e -- --ignored --test-threads=1
fi
step_done
log "all checks passed in $(fmt_duration $((SECONDS - started)))"
