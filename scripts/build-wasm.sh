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
#      upload ("bulk memory support is not enabled"). -C target-feature=-bulk-memory
#      alone does not help because the prebuilt std already contains them.
#   3. cosmwasm-check with the capabilities wasmd v0.61 advertises.
#   4. artifacts/<contract>.wasm and artifacts/checksums.txt (sha256sum format).
#
# Environment:
#   EHRX_TOOLS         tool cache (see scripts/install-tools.sh)
#   CARGO_TARGET_DIR   honoured (default: <repo>/target)
#   EHRX_ARTIFACTS     output directory (default: <repo>/artifacts)
#   EHRX_CARGO_LOCKED=1  pass --locked to cargo (CI: fail on a stale Cargo.lock)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONTRACTS=(registry exchange)
TARGET=wasm32-unknown-unknown
# What wasmd v0.61.14 (wasmvm 3.0) offers. The contracts use cosmwasm-std feature
# `stargate` only; cosmwasm_3_0 is deliberately absent (no released wasmd has it).
CAPABILITIES="iterator,staking,stargate,cosmwasm_1_1,cosmwasm_1_2,cosmwasm_1_3,cosmwasm_1_4,cosmwasm_2_0,cosmwasm_2_1,cosmwasm_2_2"
WASM_OPT_FLAGS=(-Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals
    --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue
    --llvm-memory-copy-fill-lowering --signext-lowering)

CHECK=1
for arg in "$@"; do
    case "$arg" in
        --no-check) CHECK=0 ;;
        -h | --help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$arg' (try --help)" ;;
    esac
done

ROOT="$EHRX_REPO_ROOT"
OUT="${EHRX_ARTIFACTS:-$ROOT/artifacts}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
INSTALL_HINT="run scripts/install-tools.sh"

# ---- tools -------------------------------------------------------------------
need_cmd cargo "install Rust with rustup"
rustup target list --installed 2>/dev/null | grep -qx "$TARGET" ||
    die "Rust target $TARGET is not installed ($INSTALL_HINT rust-target, or: rustup target add $TARGET)"
need_cmd wasm-opt "$INSTALL_HINT wasm-opt"
need_cmd sha256sum
if ((CHECK)); then
    need_cmd cosmwasm-check "$INSTALL_HINT cosmwasm-check"
fi
# The lowering passes need binaryen >= 117; Debian's 108 silently lacks them.
wasm_opt_ver=$(wasm-opt --version | grep -oE 'version [0-9]+' | awk '{print $2}')
if [[ -z "$wasm_opt_ver" ]] || ((wasm_opt_ver < 117)); then
    die "wasm-opt $(command -v wasm-opt) is version '${wasm_opt_ver:-?}', too old for --llvm-memory-copy-fill-lowering ($INSTALL_HINT wasm-opt)"
fi
# Rust >= 1.96 no longer passes --allow-undefined to the wasm linker
# (CosmWasm/cosmwasm#2695): restore it so the VM imports stay undefined.
rust_minor=$(rustc --version | awk '{print $2}' | cut -d. -f2)
EXTRA_RUSTFLAGS=""
if ((rust_minor >= 96)); then
    EXTRA_RUSTFLAGS=" -C link-arg=--allow-undefined"
fi

TOTAL_START=$SECONDS
log "repo: $ROOT; artifacts: $OUT; $(rustc --version); wasm-opt $wasm_opt_ver"

# ---- 1. cargo build ----------------------------------------------------------------
step "cargo build (profile wasm, $TARGET): ${CONTRACTS[*]}"
pkg_args=()
for c in "${CONTRACTS[@]}"; do pkg_args+=(-p "$c"); done
(
    cd "$ROOT"
    # A CARGO_BUILD_TARGET or RUSTFLAGS from the caller must not leak in.
    env -u CARGO_BUILD_TARGET RUSTFLAGS="-C link-arg=-s${EXTRA_RUSTFLAGS}" \
        cargo build --profile wasm --lib ${EHRX_CARGO_LOCKED:+--locked} --target "$TARGET" "${pkg_args[@]}"
) || die "cargo build failed (see the compiler output above)"

# ---- 2. wasm-opt ---------------------------------------------------------------------
step "wasm-opt: lower bulk-memory and sign-ext"
mkdir -p "$OUT"
declare -A RAW_SIZE=()
for c in "${CONTRACTS[@]}"; do
    raw="$TARGET_DIR/$TARGET/wasm/${c//-/_}.wasm"
    [[ -f "$raw" ]] || die "cargo produced no $raw"
    RAW_SIZE[$c]=$(stat -c %s "$raw")
    # Skip wasm-opt (the slow part) when cargo's output and the flags are the
    # same as for the artifact already there; touch it so it counts as fresh.
    stamp="$OUT/.$c.wasm.input"
    key="$(sha256sum "$raw" | cut -d' ' -f1) wasm-opt $wasm_opt_ver ${WASM_OPT_FLAGS[*]}"
    if [[ -f "$OUT/$c.wasm" && -f "$stamp" && "$(<"$stamp")" == "$key" ]]; then
        touch "$OUT/$c.wasm"
        log "$c: cargo output unchanged; $OUT/$c.wasm kept"
        continue
    fi
    tmp="$OUT/.$c.wasm.tmp"
    wasm-opt "${WASM_OPT_FLAGS[@]}" "$raw" -o "$tmp" ||
        die "wasm-opt failed on $raw"
    mv "$tmp" "$OUT/$c.wasm"
    printf '%s\n' "$key" >"$stamp"
    log "$c: $raw -> $OUT/$c.wasm"
done

# ---- 3. cosmwasm-check ---------------------------------------------------------------
if ((CHECK)); then
    step "cosmwasm-check ($(cosmwasm-check --version 2>/dev/null))"
    files=()
    for c in "${CONTRACTS[@]}"; do files+=("$OUT/$c.wasm"); done
    if ! cosmwasm-check --available-capabilities "$CAPABILITIES" "${files[@]}"; then
        die "cosmwasm-check rejected the artifacts (output above). If it mentions bulk memory, the wasm-opt lowering did not run as expected"
    fi
else
    warn "cosmwasm-check skipped (--no-check): the chain may still refuse the upload"
fi

# ---- 4. checksums and sizes -------------------------------------------------------
step "checksums"
(
    cd "$OUT"
    files=()
    for c in "${CONTRACTS[@]}"; do files+=("$c.wasm"); done
    sha256sum "${files[@]}" >checksums.txt
)
cat "$OUT/checksums.txt" >&2
step_done

echo
echo "Artifacts in $OUT (built in $(fmt_duration $((SECONDS - TOTAL_START)))):"
printf '  %-14s %12s %12s  %s\n' CONTRACT "CARGO BYTES" "FINAL BYTES" SHA256
for c in "${CONTRACTS[@]}"; do
    printf '  %-14s %12s %12s  %s\n' "$c.wasm" "${RAW_SIZE[$c]}" "$(stat -c %s "$OUT/$c.wasm")" \
        "$(awk -v f="$c.wasm" '$2 == f {print $1}' "$OUT/checksums.txt")"
done
