# shellcheck shell=bash
# Shell helpers for the demo over a running devnet (scripts/devnet.sh up). Source it:
#
#   source scripts/devnet/helpers.sh
#   addr=$(dn_key_addr hospital-a peer1)
#   dn_admin hospital-a show config --registry "$(dn_json '.chains["hospital-a"].contracts.registry')"
#
# Functions (stdout carries the result, messages go to stderr):
#   dn_json FILTER...          read devnet.json with jq -r
#   dn_home CHAIN              the chain's accounts home (keyring-backend test)
#   dn_key_addr CHAIN KEY      address of an account of the devnet
#   dn_ehrx_bin [debug|release]  the ehrx binary: $EHRX_BIN, else built with cargo
#   dn_admin CHAIN ARGS...     `ehrx admin ARGS` signed by CHAIN's admin account
# Everything else (transactions, queries, keys) is done by `ehrx` and `ehrx-devnet`.

if [[ -n "${_EHRX_DEVNET_HELPERS_SOURCED:-}" ]]; then
    return 0
fi
_EHRX_DEVNET_HELPERS_SOURCED=1

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

EHRX_DEVNET_DIR="${EHRX_DEVNET_DIR:-$HOME/.cache/ehrx-devnet}"
export EHRX_DEVNET_DIR

dn_json() {
    local f="$EHRX_DEVNET_DIR/devnet.json"
    [[ -f "$f" ]] || die "no $f: is the devnet up? (scripts/devnet.sh up)"
    jq -r "$@" "$f"
}

dn_home() { dn_json --arg c "$1" '.chains[$c].home'; }

dn_key_addr() { dn_json --arg c "$1" --arg k "$2" '.chains[$c].keys[$k] // error("no account \($k) on \($c)")'; }

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

# dn_admin CHAIN ARGS...: `ehrx admin ARGS` on CHAIN signed by its `admin` account, run in
# the chain's home so that no ehrx.toml of the caller's directory applies.
dn_admin() {
    local chain=$1 home bin
    shift
    home=$(dn_home "$chain")
    bin=${EHRX:-$(dn_ehrx_bin debug)} || return 1
    (cd "$home" && "$bin" --node "$(dn_json --arg c "$chain" '.chains[$c].rpc')" --chain-id "$chain" \
        --wasmd-home "$home" --keyring-backend test --key-name admin \
        --gas-prices "0$(dn_json .fee_denom)" admin "$@")
}
