#!/usr/bin/env bash
# Build the contracts as chain-ready wasm artifacts.
#
#   scripts/build-wasm.sh            # registry + exchange
#   scripts/build-wasm.sh --no-check # skip cosmwasm-check (not recommended)
#
# Steps (reasons: shared/notes/stack.md, "Contract build and the bulk-memory trap"):
#   1. cargo build --profile wasm --lib --target wasm32-unknown-unknown -p registry -p exchange
#      with RUSTFLAGS='-C link-arg=-s' (strip): the workspace's release profile (lto,
#      codegen-units 1, panic abort, overflow-checks on) with opt-level "z" (Cargo.toml says
#      why).
#   2. wasm-opt (npm binaryen, >= 117) lowers bulk-memory (memory.copy/fill) and
#      sign-extension ops, which Rust >= 1.87 emits and wasmvm 3.0 rejects at
#      upload ("bulk memory support is not enabled"). Skipped when cargo's output is unchanged.
#   3. cosmwasm-check with the capabilities wasmd v0.61 advertises.
#   4. artifacts/<contract>.wasm and artifacts/checksums.txt (sha256sum format).
# The logic is `xtask build-wasm` (packages/xtask/src/build_wasm.rs).
#
# Environment:
#   EHRX_TOOLS         tool cache (see scripts/install-tools.sh)
#   CARGO_TARGET_DIR   honoured (default: <repo>/target)
#   EHRX_ARTIFACTS     output directory (default: <repo>/artifacts)
#   EHRX_CARGO_LOCKED=1  pass --locked to cargo (CI: fail on a stale Cargo.lock)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # -h/--help: prints the header above, exits
xtask_exec build-wasm "$@"
