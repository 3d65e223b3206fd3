# shellcheck shell=bash
# Chain helpers for the ehrx devnet: transactions, queries, contract deployment.
# Source it (it sources scripts/lib.sh too); e2e tests and the demo reuse it:
#
#   source scripts/devnet/helpers.sh
#   dn_use hospital-a                     # optional: read homes/nodes from devnet.json
#   addr=$(dn_key_addr hospital-a peer1)
#   dn_admin hospital-a register-peer --registry "$REGISTRY" --address "$addr" ...
#   dn_admin hospital-a show config --registry "$REGISTRY" | jq .
#
# Every function takes the chain id first. Where a chain lives:
#   home  $EHRX_DEVNET_DIR/<chain-id>            (keyring-backend test inside)
#   node  tcp://127.0.0.1:<rpc port of the chain> (ports: dn_port, stack.md's table)
# Transactions use: --gas auto --gas-adjustment 1.5 --gas-prices 0ufee -y -o json,
# then poll `wasmd query tx` (no block broadcast mode since SDK 0.50). A failed tx
# (CheckTx or DeliverTx) is an error: `die` with the code, codespace and raw_log,
# or, in the *_try variants, return 1 with the same text on stderr. DN_GAS=<n> in the
# environment replaces `--gas auto` by a fixed limit: no simulation, so a tx the chain
# refuses reaches CheckTx/DeliverTx and fails there with a code (the e2e attack tests).
#
# Functions (stdout carries the result, messages go to stderr):
#   dn_port CHAIN SERVICE          rpc|p2p|pprof|grpc|api -> port number
#   dn_home CHAIN / dn_node CHAIN  home directory / tcp://127.0.0.1:<rpc>
#   dn_wasmd CHAIN ARGS...         wasmd with --home (for keys, genesis, ...)
#   dn_q CHAIN ARGS...             wasmd query ARGS --node .. -o json
#   dn_height CHAIN                latest block height (0 when the node is down)
#   dn_wait_height CHAIN H [SECS]  wait until height >= H
#   dn_key_addr CHAIN KEY          bech32 address of a keyring key
#   dn_tx CHAIN FROM ARGS...       wasmd tx ARGS, broadcast, wait; prints the tx JSON
#   dn_tx_try CHAIN FROM ARGS...   same, returns 1 on failure instead of dying
#   dn_wait_tx CHAIN HASH [SECS]   poll `query tx`; prints the tx JSON
#   dn_instantiate CHAIN FROM CODE_ID MSG LABEL [ADMIN]  prints the contract address
#   dn_tx_event_attr TXJSON TYPE KEY    values of an event attribute, one a line
#   dn_contract_addr_from_tx TXJSON     the instantiated contract's address
#   dn_tx_wasm_events TXJSON       the tx's wasm events, compact, for error reports
#   dn_ehrx_bin [debug|release]    the ehrx binary: $EHRX_BIN, else built with cargo
#   dn_ehrx_path [debug|release]   where that binary is, without building it
#   dn_admin CHAIN ARGS...         `ehrx admin ARGS` signed by CHAIN's admin key

if [[ -n "${_EHRX_DEVNET_HELPERS_SOURCED:-}" ]]; then
    return 0
fi
_EHRX_DEVNET_HELPERS_SOURCED=1

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

EHRX_DEVNET_DIR="${EHRX_DEVNET_DIR:-$HOME/.cache/ehrx-devnet}"
export EHRX_DEVNET_DIR
# Two denoms (issue 8, property 12): DN_DENOM is the bonding denom, held only by each
# chain's admin (its validator operator); everybody else pays fees in DN_FEE_DENOM, which
# cannot be bonded. Genesis balances and the staking lock: scripts/devnet.sh init_chain.
DN_DENOM=stake
DN_FEE_DENOM=ufee
DN_KEYRING="test"
DN_GAS_FLAGS=(--gas auto --gas-adjustment 1.5 --gas-prices "0$DN_FEE_DENOM")
DN_TX_TIMEOUT="${EHRX_TX_TIMEOUT:-45}"

# ---- ports (shared/notes/stack.md, "Two chains on one machine") ----------------
# Chain index: hospital-a 0, hospital-b 1, hospital-c 2; each service +100 per index.
dn_chain_index() {
    case "$1" in
        hospital-a) echo 0 ;;
        hospital-b) echo 1 ;;
        hospital-c) echo 2 ;;
        *) die "unknown devnet chain '$1' (known: hospital-a hospital-b hospital-c)" ;;
    esac
}
dn_port() {  # dn_port CHAIN SERVICE
    local i base
    i=$(dn_chain_index "$1") || exit 1
    case "$2" in
        rpc) base=26657 ;;
        p2p) base=26656 ;;
        pprof) base=6060 ;;
        grpc) base=9090 ;;
        api) base=1317 ;;
        *) die "unknown service '$2'" ;;
    esac
    echo $((base + 100 * i))
}

dn_home() { echo "$EHRX_DEVNET_DIR/$1"; }
dn_node() { echo "tcp://127.0.0.1:$(dn_port "$1" rpc)"; }
dn_rpc_url() { echo "http://127.0.0.1:$(dn_port "$1" rpc)"; }

dn_wasmd() {  # dn_wasmd CHAIN ARGS...
    local chain=$1
    shift
    wasmd "$@" --home "$(dn_home "$chain")"
}

dn_q() {  # dn_q CHAIN query-args...
    local chain=$1
    shift
    wasmd query "$@" --node "$(dn_node "$chain")" -o json
}

dn_height() {  # 0 when the node does not answer
    local h
    h=$(curl -sf --max-time 2 "$(dn_rpc_url "$1")/status" 2>/dev/null |
        jq -r '.result.sync_info.latest_block_height // 0' 2>/dev/null) || true
    [[ "$h" =~ ^[0-9]+$ ]] || h=0
    echo "$h"
}

dn_wait_height() {  # dn_wait_height CHAIN HEIGHT [SECS]
    local chain=$1 want=$2 secs=${3:-60} start=$SECONDS h
    while :; do
        h=$(dn_height "$chain")
        [[ "$h" =~ ^[0-9]+$ ]] || h=0
        ((h >= want)) && return 0
        ((SECONDS - start >= secs)) && {
            printf '%s: height %s after %ss, wanted %s\n' "$chain" "$h" "$secs" "$want" >&2
            return 1
        }
        sleep 0.3
    done
}

dn_key_addr() {  # dn_key_addr CHAIN KEY
    dn_wasmd "$1" keys show "$2" -a --keyring-backend "$DN_KEYRING"
}

# Prints a readable summary of a failed tx (code, codespace, raw_log, wasm events).
_dn_tx_failure() {  # _dn_tx_failure WHAT JSON
    local what=$1 json=$2
    {
        printf 'transaction failed: %s\n' "$what"
        jq -r '"  txhash:    \(.txhash // "?")\n  code:      \(.code // "?") (codespace \(.codespace // "-"))\n  raw_log:   \(.raw_log // "")"' <<<"$json" 2>/dev/null ||
            printf '  %s\n' "$json"
        local ev
        ev=$(dn_tx_wasm_events "$json" 2>/dev/null || true)
        [[ -n "$ev" ]] && printf '  wasm events:\n%s\n' "$(sed 's/^/    /' <<<"$ev")"
    } >&2
}

# Waits for HASH to be in a block; prints the tx JSON; returns 1 on failure.
dn_wait_tx() {  # dn_wait_tx CHAIN HASH [SECS]
    local chain=$1 hash=$2 secs=${3:-$DN_TX_TIMEOUT} start=$SECONDS out code
    while :; do
        if out=$(dn_q "$chain" tx "$hash" 2>/dev/null) && [[ -n "$out" ]]; then
            code=$(jq -r '.code // 0' <<<"$out")
            if [[ "$code" != 0 ]]; then
                _dn_tx_failure "$chain tx $hash" "$out"
                printf '%s\n' "$out"
                return 1
            fi
            printf '%s\n' "$out"
            return 0
        fi
        if ((SECONDS - start >= secs)); then
            printf 'transaction %s on %s not found in a block within %ss\n' "$hash" "$chain" "$secs" >&2
            return 1
        fi
        sleep 0.4
    done
}

# dn_tx_try CHAIN FROM TX-ARGS...: broadcast `wasmd tx TX-ARGS` signed by key
# FROM, wait for the block; prints the tx JSON; returns 1 (message on stderr)
# when simulation, CheckTx or DeliverTx fails.
dn_tx_try() {
    local chain=$1 from=$2
    shift 2
    local out err rc code hash attempt gas_flags=("${DN_GAS_FLAGS[@]}")
    [[ -n "${DN_GAS:-}" ]] && gas_flags=(--gas "$DN_GAS" --gas-prices "0$DN_FEE_DENOM")
    err=$(mktemp)
    # Up to 5 attempts when the account sequence moved under us (another tx from
    # the same key in the same block); anything else fails at once.
    for attempt in 1 2 3 4 5; do
        rc=0
        out=$(wasmd tx "$@" --from "$from" --home "$(dn_home "$chain")" \
            --keyring-backend "$DN_KEYRING" --chain-id "$chain" --node "$(dn_node "$chain")" \
            "${gas_flags[@]}" -y -o json --log_no_color 2>"$err") || rc=$?
        if ((rc != 0)) || [[ -z "$out" ]] || ! jq -e . >/dev/null 2>&1 <<<"$out"; then
            if grep -q "account sequence mismatch" "$err" && ((attempt < 5)); then
                sleep 1
                continue
            fi
            # Simulation failures (e.g. a contract error) end here, before broadcast.
            {
                printf 'transaction failed before broadcast: wasmd tx %s %s (from %s on %s)\n' "$1" "$2" "$from" "$chain"
                sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^/  /' "$err"
                [[ -n "$out" ]] && printf '  %s\n' "$out"
            } >&2
            rm -f "$err"
            return 1
        fi
        code=$(jq -r '.code // 0' <<<"$out")
        # 32 = sdk ErrWrongSequence (CheckTx)
        if [[ "$code" == 32 ]] && ((attempt < 5)); then
            sleep 1
            continue
        fi
        break
    done
    rm -f "$err"
    hash=$(jq -r '.txhash' <<<"$out")
    if [[ "$code" != 0 ]]; then
        _dn_tx_failure "CheckTx of wasmd tx $1 $2 on $chain" "$out"
        return 1
    fi
    dn_wait_tx "$chain" "$hash"
}

dn_tx() {
    local out
    out=$(dn_tx_try "$@") || die "wasmd tx ${*:3:2} on $1 failed (details above)"
    printf '%s\n' "$out"
}

# ---- events ------------------------------------------------------------------------
dn_tx_event_attr() {  # dn_tx_event_attr TXJSON TYPE KEY
    jq -r --arg t "$2" --arg k "$3" \
        '.events[]? | select(.type == $t) | .attributes[]? | select(.key == $k) | .value' <<<"$1"
}

dn_contract_addr_from_tx() {  # dn_contract_addr_from_tx TXJSON
    dn_tx_event_attr "$1" instantiate _contract_address | head -n1
}

dn_tx_wasm_events() {  # dn_tx_wasm_events TXJSON
    jq -c '.events[]? | select(.type == "wasm" or (.type | startswith("wasm-"))) |
        {type, attrs: ([.attributes[]? | {(.key): .value}] | add)}' <<<"$1"
}

# ---- contracts -----------------------------------------------------------------------
dn_instantiate() {  # dn_instantiate CHAIN FROM CODE_ID MSG LABEL [ADMIN] -> address
    local chain=$1 from=$2 code=$3 msg=$4 label=$5 admin=${6:-} tx addr
    local admin_args=(--no-admin)
    [[ -n "$admin" ]] && admin_args=(--admin "$admin")
    tx=$(dn_tx "$chain" "$from" wasm instantiate "$code" "$msg" --label "$label" "${admin_args[@]}")
    addr=$(dn_contract_addr_from_tx "$tx")
    [[ -n "$addr" ]] || die "instantiate of code $code on $chain: no _contract_address in the tx events"
    echo "$addr"
}

# ---- the peer tool -------------------------------------------------------------------
# dn_ehrx_bin [debug|release]: prints the path of the ehrx binary. $EHRX_BIN when set;
# otherwise `cargo build -q -p ehrx` in that profile (default debug, what the e2e tests
# build too), which does nothing when the binary is up to date. Protocol messages (keys,
# clinicians, the registry's admin messages and queries) are made by ehrx, not assembled
# here.
dn_ehrx_bin() {
    if [[ -n "${EHRX_BIN:-}" ]]; then
        [[ -x "$EHRX_BIN" ]] || die "EHRX_BIN=$EHRX_BIN is not an executable file"
        printf '%s\n' "$EHRX_BIN"
        return 0
    fi
    local profile=${1:-debug} args=(build -q -p ehrx)
    [[ "$profile" == release ]] && args+=(--release)
    (cd "$EHRX_REPO_ROOT" && cargo "${args[@]}") >&2 || die "cargo ${args[*]} failed (see above)"
    dn_ehrx_path "$profile"
}

# dn_ehrx_path [debug|release]: where dn_ehrx_bin's binary is ($EHRX_BIN when set), built
# or not: for readers that must not start a build (status).
dn_ehrx_path() {
    printf '%s\n' "${EHRX_BIN:-${CARGO_TARGET_DIR:-$EHRX_REPO_ROOT/target}/${1:-debug}/ehrx}"
}

# dn_admin CHAIN ARGS...: `ehrx admin ARGS` on CHAIN, signed by its `admin` key (the
# registry admin, who deployed the contracts): $EHRX when set, else dn_ehrx_bin. Runs in
# the chain's home, so that no ehrx.toml of the caller's directory applies. Prints what
# ehrx prints (JSON); ehrx's error, naming cause and fix, goes to stderr.
dn_admin() {
    local chain=$1 home bin
    shift
    home=$(dn_home "$chain")
    bin=${EHRX:-$(dn_ehrx_bin debug)} || return 1
    (cd "$home" && "$bin" --node "$(dn_rpc_url "$chain")" --chain-id "$chain" \
        --wasmd-home "$home" --keyring-backend "$DN_KEYRING" --key-name admin \
        --gas-prices "0$DN_FEE_DENOM" admin "$@")
}

# ---- devnet.json ----------------------------------------------------------------------
dn_json_file() { echo "$EHRX_DEVNET_DIR/devnet.json"; }

# dn_json FILTER: read devnet.json with jq -r.
dn_json() {
    local f
    f=$(dn_json_file)
    [[ -f "$f" ]] || die "no $f: is the devnet up? (scripts/devnet.sh up)"
    jq -r "$@" "$f"
}

# dn_use CHAIN: export CHAIN_ID, CHAIN_HOME, CHAIN_NODE, REGISTRY, EXCHANGE for a chain
# from devnet.json (convenience for tests and demos).
dn_use() {
    local chain=$1
    CHAIN_ID=$chain
    CHAIN_HOME=$(dn_json --arg c "$chain" '.chains[$c].home')
    CHAIN_NODE=$(dn_json --arg c "$chain" '.chains[$c].node')
    REGISTRY=$(dn_json --arg c "$chain" '.chains[$c].contracts.registry')
    EXCHANGE=$(dn_json --arg c "$chain" '.chains[$c].contracts.exchange')
    [[ "$CHAIN_HOME" != null ]] || die "chain $chain is not in $(dn_json_file)"
    export CHAIN_ID CHAIN_HOME CHAIN_NODE REGISTRY EXCHANGE
}
