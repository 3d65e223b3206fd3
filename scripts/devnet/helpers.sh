# shellcheck shell=bash
# Shell helper for scripts over a running devnet (scripts/devnet.sh up). Source it:
#
#   source scripts/devnet/helpers.sh
#   EHRX_BIN=$(dn_ehrx_bin release)
#
#   dn_ehrx_bin [debug|release]  the ehrx binary: $EHRX_BIN, else built with cargo
# Everything else (transactions, queries, keys) is done by `ehrx` and `ehrx-devnet`; the
# demo is `xtask demo` (packages/xtask/src/demo.rs), which reads devnet.json itself.

if [[ -n "${_EHRX_DEVNET_HELPERS_SOURCED:-}" ]]; then
    return 0
fi
_EHRX_DEVNET_HELPERS_SOURCED=1

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

EHRX_DEVNET_DIR="${EHRX_DEVNET_DIR:-$HOME/.cache/ehrx-devnet}"
export EHRX_DEVNET_DIR

# dn_ehrx_bin [debug|release]: $EHRX_BIN when set; otherwise `cargo build -q -p ehrx` in
# that profile (nothing to do when up to date), and the binary's path.
dn_ehrx_bin() {
    if [[ -n "${EHRX_BIN:-}" ]]; then
        [[ -x "$EHRX_BIN" ]] || die "EHRX_BIN=$EHRX_BIN is not an executable file"
        printf '%s\n' "$EHRX_BIN"
        return 0
    fi
    local profile=${1:-debug} args=(build -q -p ehrx)
    [[ "$profile" == release ]] && args+=(--release)
    (cd "$EHRX_REPO_ROOT" && cargo "${args[@]}") >&2 || die "cargo ${args[*]} failed (see above)"
    printf '%s\n' "${CARGO_TARGET_DIR:-$EHRX_REPO_ROOT/target}/$profile/ehrx"
}
