#!/usr/bin/env bash
# The ehrx dev network: two (or three) single-validator wasmd chains on 127.0.0.1,
# the registry and exchange contracts on each, IBC connection + channel between
# the exchange contracts, and Hermes relaying in pull mode.
#
#   scripts/devnet.sh up              start (cold: init + deploy + link; warm: restart)
#   scripts/devnet.sh status          heights, contracts, channels, partners, relayer;
#                                     exit 0 only when every chain and Hermes run
#   scripts/devnet.sh down [--clean]  stop what devnet.sh started; --clean also wipes state
#   scripts/devnet.sh reset           = down --clean
#   scripts/devnet.sh add-chain       third chain hospital-c, linked to hospital-a
#   scripts/devnet.sh add-peer CHAIN ADDRESS ROLES SIGNING_KEY_B64 ENCRYPTION_KEY_B64 [DEVICE_ID]
#   scripts/devnet.sh add-transfer-channel   ICS-20 channel A<->B (latency baseline)
#   scripts/devnet.sh stop-relayer | start-relayer | restart-relayer
#   scripts/devnet.sh clear-packets   relay whatever is pending on every link, once
#   scripts/devnet.sh env CHAIN       print shell exports for a chain (eval "$(...)")
#
# State, logs and pid files: ${EHRX_DEVNET_DIR:-$HOME/.cache/ehrx-devnet}
#   devnet.json              machine-readable description (tests and the peer tool read it)
#   <chain-id>/              wasmd home (keyring-backend test), wasmd.log, wasmd.pid
#   hermes/                  config.toml, keys/, hermes.log, hermes.pid
#   logs/                    setup logs, timings
#
# `up` on a running devnet reports "already up" and changes nothing. `up` after
# `down` restarts the chains from their state and Hermes (same contracts,
# channels, peers); if the light clients expired meanwhile (chains stopped longer
# than the trusting period) it says so: run `reset` then `up`.
#
# Environment:
#   EHRX_DEVNET_DIR           state directory (default ~/.cache/ehrx-devnet)
#   EHRX_TOOLS                tool cache (scripts/install-tools.sh)
#   EHRX_HERMES_REST_PORT     Hermes REST port (default 3700); telemetry = +1
#   EHRX_HERMES_LOG_LEVEL     Hermes log level (default info)
#   EHRX_WASMD_LOG_LEVEL      wasmd log level for new chains (default warn; info is ~350 MB/day)
#   EHRX_DEVNET_OPEN_UPLOAD=1 let every account upload/instantiate code (default: admin only)
#   EHRX_SKIP_BUILD=1         never run build-wasm.sh (use artifacts/ as they are)
#   EHRX_BIN                  the ehrx binary that makes the devnet's keys, deploys the
#                             contracts and administers the registries (`ehrx admin`)
#                             (default: target/debug/ehrx, built with cargo when stale)
set -euo pipefail

# shellcheck source=scripts/devnet/helpers.sh
source "$(dirname "${BASH_SOURCE[0]}")/devnet/helpers.sh"

ROOT="$EHRX_REPO_ROOT"
DIR="$EHRX_DEVNET_DIR"
ARTIFACTS="${EHRX_ARTIFACTS:-$ROOT/artifacts}"
TEMPLATE="$ROOT/relayer-config/hermes.toml.tmpl"
BASE_CHAINS=(hospital-a hospital-b)
EXTRA_CHAIN=hospital-c
HUB_CHAIN=hospital-a  # the chain add-chain links the new one to
PEERS=(peer1 peer2 peer3 peer4 peer5 peer6)
# The clinician registered on every chain (issue 8: a clinician credential, not a shared
# code): its key is made by `ehrx clinician new` in <chain home>/clinicians/, 0600.
# Each hospital's records (custodian) key and its own pseudonym key are made by ehrx in
# <chain home>/custodian/ (devnet.json .chains[].custodian); each partner entry carries the
# partner's records key as its encryption_key (requests seal the patient's details to it).
CLINICIAN_ID=devnet-clinician-01
CLINICIAN_PURPOSES=treatment,emergency-treatment
CHANNEL_VERSION=ehr-exchange-2
# Genesis unbonding (shortened from the SDK's 21 days) and the Hermes trusting
# period (2/3 of it). See relayer-config/README.md.
UNBONDING_SECS=1209600        # 14 days
UNBONDING_HUMAN="14 days"
TRUSTING_PERIOD=9days         # < 14 days
# Block time and Hermes' pull interval (relayer-config/README.md has the measurements).
# EHRX_TIMEOUT_COMMIT / EHRX_HERMES_PULL_INTERVAL override them for an experiment; the
# block time is fixed at init (devnet.sh reset && up), the pull interval at Hermes' start.
TIMEOUT_COMMIT=${EHRX_TIMEOUT_COMMIT:-500ms}
TIMEOUT_PROPOSE=1s
HERMES_PULL_INTERVAL=${EHRX_HERMES_PULL_INTERVAL:-500ms}
# Governance, for pinning the contracts at deploy (pin_codes): a short vote on a devnet.
GOV_VOTING_PERIOD=3s
GOV_EXPEDITED_PERIOD=2s
GOV_DEPOSIT=10000000$DN_DENOM
HERMES_DIR="$DIR/hermes"
HERMES_CFG="$HERMES_DIR/config.toml"
HERMES_LOG="$HERMES_DIR/hermes.log"
HERMES_PID="$HERMES_DIR/hermes.pid"
HERMES_REST_PORT="${EHRX_HERMES_REST_PORT:-3700}"
HERMES_TELEMETRY_PORT=$((HERMES_REST_PORT + 1))
LOGS="$DIR/logs"
JSON="$DIR/devnet.json"
# Genesis balances. Only admin (the hospital's validator operator) holds the bonding
# denom DN_DENOM; relayer and peers hold the fee denom DN_FEE_DENOM only (issue 8,
# property 12: an insider funded with the bonding denom could bond a validator and halt
# the chain). The fee denom cannot be bonded: staking refuses any denom but its bond_denom.
ADMIN_BALANCE=100000000000000$DN_FEE_DENOM,100000000000$DN_DENOM  # 1e14 fee, 1e11 bond
RELAYER_BALANCE=10000000000000$DN_FEE_DENOM                        # 1e13
PEER_BALANCE=1000000000000$DN_FEE_DENOM                            # 1e12
SELF_BOND=10000000000$DN_DENOM                                     # 1e10
# The staking messages that create a validator or add bonded power, disabled from
# genesis by x/circuit (see init_chain and relayer-config/DEVNET.md, "Who can bond").
STAKING_LOCKED_MSGS=(
    /cosmos.staking.v1beta1.MsgCreateValidator
    /cosmos.staking.v1beta1.MsgDelegate
    /cosmos.staking.v1beta1.MsgBeginRedelegate
    /cosmos.staking.v1beta1.MsgCancelUnbondingDelegation
)

usage() { sed -n '2,39p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

# ================================================================================
# small utilities
# ================================================================================
TOTAL_START=$SECONDS
declare -a TIMINGS=()
# timed NAME CMD...: run CMD, remember how long it took for the summary.
timed() {
    local name=$1 t0=$SECONDS
    shift
    "$@"
    TIMINGS+=("$(printf '%-44s %s' "$name" "$(fmt_duration $((SECONDS - t0)))")")
}
print_timings() {
    local title=$1 f="$LOGS/timings.txt"
    mkdir -p "$LOGS"
    {
        echo
        echo "$title: total $(fmt_duration $((SECONDS - TOTAL_START)))"
        printf '  %s\n' "${TIMINGS[@]}"
    } | tee -a "$f" >&2
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pid_alive PIDFILE PATTERN: the recorded pid runs and its command line contains
# PATTERN (guards against pid reuse: we only ever signal our own processes).
pid_alive() {
    local pidfile=$1 pattern=$2 pid
    [[ -f "$pidfile" ]] || return 1
    pid=$(<"$pidfile")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern"
}

# stop_pidfile PIDFILE PATTERN NAME: TERM, wait up to 20 s, then KILL.
stop_pidfile() {
    local pidfile=$1 pattern=$2 name=$3 pid i
    if ! pid_alive "$pidfile" "$pattern"; then
        [[ -f "$pidfile" ]] && log "$name: not running (stale pid file removed)"
        rm -f "$pidfile"
        return 0
    fi
    pid=$(<"$pidfile")
    log "$name: stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        warn "$name: pid $pid ignored TERM for 20s; sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$pidfile"
}

# spawn PIDFILE LOGFILE CMD...: start CMD detached (own session), pid recorded
# by the child itself so it is CMD's own pid.
spawn() {
    local pidfile=$1 logfile=$2
    shift 2
    mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
    rm -f "$pidfile"
    # The child closes every inherited fd above 2 before exec: the devnet lock
    # (fd 8) and the pipes of our progress output must not stay open in a
    # long-running daemon (callers reading our output would never see EOF).
    setsid bash -c '
        echo $$ >"$0"
        # (no redirection on this loop: bash would park fd 2 on a high fd
        # during it, the loop would close that copy, and stderr would be lost)
        for fd in /proc/$$/fd/*; do
            n=${fd##*/}
            if [[ $n =~ ^[0-9]+$ ]] && ((n > 2)); then eval "exec $n>&-"; fi
        done
        exec "$@"' "$pidfile" "$@" >>"$logfile" 2>&1 </dev/null &
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s "$pidfile" ]] && return 0
        sleep 0.1
    done
    die "could not start: $* (no pid file $pidfile)"
}

# json_update JQ-ARGS... : in-place update of devnet.json (atomic).
json_update() {
    local tmp="$JSON.tmp.$$"
    jq "$@" "$JSON" >"$tmp" && mv "$tmp" "$JSON"
}

# toml_set FILE SECTION KEY VALUE: set KEY in [SECTION] (VALUE is raw TOML).
toml_set() {
    python3 - "$@" <<'PY'
import re, sys
path, section, key, value = sys.argv[1:5]
lines = open(path).read().split("\n")
cur, done = "", False
for i, line in enumerate(lines):
    m = re.match(r"^\s*\[([^\]]+)\]\s*$", line)
    if m:
        cur = m.group(1).strip()
        continue
    if cur == section and re.match(r"^\s*" + re.escape(key) + r"\s*=", line):
        lines[i] = f"{key} = {value}"
        done = True
        break
if not done:
    sys.exit(f"{path}: key {key} not found in [{section}]")
open(path, "w").write("\n".join(lines))
PY
}

# install_missing PIECE:CMD...: run scripts/install-tools.sh for the pieces whose
# command is missing (it waits for a concurrent install, skips cached pieces).
install_missing() {
    local pieces=() pc
    for pc in "$@"; do
        command -v "${pc#*:}" >/dev/null 2>&1 || pieces+=("${pc%%:*}")
    done
    ((${#pieces[@]})) || return 0
    log "missing tools (${pieces[*]}): running scripts/install-tools.sh ${pieces[*]}"
    "$ROOT/scripts/install-tools.sh" "${pieces[@]}" >&2 || die "scripts/install-tools.sh ${pieces[*]} failed"
    hash -r
    for pc in "$@"; do need_cmd "${pc#*:}" "run scripts/install-tools.sh ${pc%%:*}"; done
}

need_tools() {
    local t
    for t in jq curl python3 setsid flock sha256sum; do
        need_cmd "$t" "Debian package; scripts/install-tools.sh apt installs jq and curl"
    done
    install_missing wasmd:wasmd hermes:hermes
}

# The newest source file the contracts are built from, newer than FILE?
sources_newer_than() {
    local f=$1
    [[ -n "$(find "$ROOT/contracts" "$ROOT/packages/protocol" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" \
        -type f \( -name '*.rs' -o -name 'Cargo.toml' -o -name 'Cargo.lock' \) \
        -newer "$f" -print -quit 2>/dev/null)" ]]
}

ensure_artifacts() {
    local c stale=""
    for c in registry exchange; do
        if [[ ! -f "$ARTIFACTS/$c.wasm" ]]; then
            stale="$ARTIFACTS/$c.wasm missing"
        elif sources_newer_than "$ARTIFACTS/$c.wasm"; then
            stale="sources newer than $ARTIFACTS/$c.wasm"
        fi
    done
    if [[ -z "$stale" ]]; then
        log "artifacts up to date ($ARTIFACTS)"
        return
    fi
    if [[ -n "${EHRX_SKIP_BUILD:-}" ]]; then
        [[ -f "$ARTIFACTS/registry.wasm" && -f "$ARTIFACTS/exchange.wasm" ]] ||
            die "EHRX_SKIP_BUILD set but artifacts are missing in $ARTIFACTS"
        warn "$stale; EHRX_SKIP_BUILD set, deploying them anyway"
        return
    fi
    install_missing wasm-opt:wasm-opt cosmwasm-check:cosmwasm-check
    log "$stale: running scripts/build-wasm.sh"
    "$ROOT/scripts/build-wasm.sh" >&2 || die "scripts/build-wasm.sh failed"
}

artifact_sha() { sha256sum "$ARTIFACTS/$1.wasm" | cut -d' ' -f1; }

# ================================================================================
# one chain
# ================================================================================
chain_pidfile() { echo "$(dn_home "$1")/wasmd.pid"; }
chain_log() { echo "$(dn_home "$1")/wasmd.log"; }
chain_running() { pid_alive "$(chain_pidfile "$1")" "$(dn_home "$1")"; }

check_chain_ports() {
    local chain=$1 s p
    for s in rpc p2p pprof grpc api; do
        p=$(dn_port "$chain" "$s")
        if port_in_use "$p"; then
            die "$chain: port $p ($s) on 127.0.0.1 is already in use by another process; stop it (e.g. another devnet or wasmd: ss -ltnp | grep :$p)"
        fi
    done
}

init_chain() {
    local chain=$1 home key
    home=$(dn_home "$chain")
    rm -rf "$home"
    mkdir -p "$home"
    step "$chain: init ($home)"
    dn_wasmd "$chain" init "$chain-node" --chain-id "$chain" --default-denom "$DN_DENOM" >/dev/null 2>&1 ||
        die "$chain: wasmd init failed"

    # config.toml: loopback only, ~0.5-1 s blocks, kv indexer (Hermes needs it).
    local cfg="$home/config/config.toml" app="$home/config/app.toml"
    toml_set "$cfg" rpc laddr "\"tcp://127.0.0.1:$(dn_port "$chain" rpc)\""
    toml_set "$cfg" rpc pprof_laddr "\"127.0.0.1:$(dn_port "$chain" pprof)\""
    toml_set "$cfg" p2p laddr "\"tcp://127.0.0.1:$(dn_port "$chain" p2p)\""
    toml_set "$cfg" p2p pex false
    toml_set "$cfg" p2p addr_book_strict false
    toml_set "$cfg" p2p allow_duplicate_ip true
    toml_set "$cfg" consensus timeout_commit "\"$TIMEOUT_COMMIT\""
    toml_set "$cfg" consensus timeout_propose "\"$TIMEOUT_PROPOSE\""
    toml_set "$cfg" tx_index indexer '"kv"'
    # Each `ehrx request` waiting for its reply holds one websocket subscription; past
    # CometBFT's default of 100 clients, the next requester would wait on its poll instead.
    toml_set "$cfg" rpc max_subscription_clients 1000
    # info logs ~6 lines per block (~350 MB/day/chain at these block times).
    toml_set "$cfg" "" log_level "\"${EHRX_WASMD_LOG_LEVEL:-warn}\""
    # app.toml: zero gas price (fees in the fee denom), gRPC and REST on loopback, no gRPC-web.
    toml_set "$app" "" minimum-gas-prices "\"0$DN_FEE_DENOM\""
    toml_set "$app" api enable true
    toml_set "$app" api address "\"tcp://127.0.0.1:$(dn_port "$chain" api)\""
    toml_set "$app" grpc address "\"127.0.0.1:$(dn_port "$chain" grpc)\""
    toml_set "$app" grpc-web enable false
    # client.toml: plain `wasmd --home <home> ...` talks to this chain.
    dn_wasmd "$chain" config set client chain-id "$chain" >/dev/null
    dn_wasmd "$chain" config set client keyring-backend "$DN_KEYRING" >/dev/null
    dn_wasmd "$chain" config set client node "$(dn_node "$chain")" >/dev/null

    step "$chain: keys and genesis"
    mkdir -p "$home/mnemonics"
    chmod 700 "$home/mnemonics"
    for key in admin relayer "${PEERS[@]}"; do
        dn_wasmd "$chain" keys add "$key" --keyring-backend "$DN_KEYRING" --output json 2>&1 |
            jq -r .mnemonic >"$home/mnemonics/$key.txt" ||
            die "$chain: keys add $key failed"
        [[ $(wc -w <"$home/mnemonics/$key.txt") -ge 12 ]] || die "$chain: no mnemonic for $key"
    done
    chmod 600 "$home"/mnemonics/*.txt
    dn_wasmd "$chain" genesis add-genesis-account admin "$ADMIN_BALANCE" --keyring-backend "$DN_KEYRING" >/dev/null
    dn_wasmd "$chain" genesis add-genesis-account relayer "$RELAYER_BALANCE" --keyring-backend "$DN_KEYRING" >/dev/null
    for key in "${PEERS[@]}"; do
        dn_wasmd "$chain" genesis add-genesis-account "$key" "$PEER_BALANCE" --keyring-backend "$DN_KEYRING" >/dev/null
    done
    dn_wasmd "$chain" genesis gentx admin "$SELF_BOND" --chain-id "$chain" \
        --keyring-backend "$DN_KEYRING" --moniker "$chain-validator" >/dev/null 2>&1 ||
        die "$chain: gentx failed"
    dn_wasmd "$chain" genesis collect-gentxs >/dev/null 2>&1 || die "$chain: collect-gentxs failed"

    # Genesis parameters: short unbonding (see TRUSTING_PERIOD); code upload and
    # instantiation restricted to the hospital's admin, as production would.
    #
    # Staking locked (issue 8, property 12): x/circuit (wired into wasmd 0.61's ante
    # handler *and* its message router) disables STAKING_LOCKED_MSGS from genesis. The
    # ante check refuses them as top-level messages ("tx type not allowed"); the router
    # check refuses them nested too: authz MsgExec, contract sub-messages, gov proposals,
    # ICA ("circuit breaker disables execution of this message"). The gentx above still
    # bonds the validator: genutil delivers gentxs at InitChain *before* circuit's
    # InitGenesis fills the disable list (wasmd app.go genesisModuleOrder), so no
    # trip-after-start is needed. admin gets LEVEL_SUPER_ADMIN to reset the breaker for
    # adding a hospital validator later (relayer-config/DEVNET.md, "Who can bond").
    # Second layer: nobody but admin holds the bonding denom (balances above).
    local gen="$home/config/genesis.json" admin_addr upload
    admin_addr=$(dn_key_addr "$chain" admin)
    if [[ -n "${EHRX_DEVNET_OPEN_UPLOAD:-}" ]]; then
        upload='{"permission":"Everybody","addresses":[]}'
    else
        upload=$(jq -cn --arg a "$admin_addr" '{"permission":"AnyOfAddresses","addresses":[$a]}')
    fi
    jq --arg ub "${UNBONDING_SECS}s" --argjson up "$upload" \
        --arg inst "$(jq -r .permission <<<"$upload")" --arg admin "$admin_addr" \
        --argjson locked "$(jq -cn '$ARGS.positional' --args "${STAKING_LOCKED_MSGS[@]}")" '
        .app_state.staking.params.unbonding_time = $ub
        | .app_state.wasm.params.code_upload_access = $up
        | .app_state.wasm.params.instantiate_default_permission = $inst
        | .app_state.circuit.disabled_type_urls = $locked
        | .app_state.circuit.account_permissions = [{address: $admin,
            permissions: {level: "LEVEL_SUPER_ADMIN", limit_type_urls: []}}]
        | .app_state.gov.params.voting_period = $vote
        | .app_state.gov.params.expedited_voting_period = $fast
    ' --arg vote "$GOV_VOTING_PERIOD" --arg fast "$GOV_EXPEDITED_PERIOD" "$gen" >"$gen.tmp" && mv "$gen.tmp" "$gen"
    dn_wasmd "$chain" genesis validate >/dev/null 2>&1 ||
        die "$chain: genesis validate failed: $(dn_wasmd "$chain" genesis validate 2>&1 | tail -n 3)"
}

start_chain() {
    local chain=$1 home log h
    home=$(dn_home "$chain")
    log=$(chain_log "$chain")
    if chain_running "$chain"; then
        log "$chain: already running (pid $(<"$(chain_pidfile "$chain")"))"
        return 0
    fi
    check_chain_ports "$chain"
    h=$(wasmd_state_height "$chain")
    log "$chain: starting wasmd (log $log)"
    printf '\n===== %s wasmd start =====\n' "$(date -Is)" >>"$log"
    spawn "$(chain_pidfile "$chain")" "$log" wasmd start --home "$home"
    # Wait for a block beyond the stored state (a fresh chain: height 1).
    local want=$((h + 1)) start=$SECONDS
    while :; do
        if ! chain_running "$chain"; then
            tail -n 30 "$log" | sed 's/^/    | /' >&2
            die "$chain: wasmd exited during start (log: $log, last lines above)"
        fi
        (($(dn_height "$chain") >= want)) && break
        if ((SECONDS - start > 90)); then
            tail -n 20 "$log" | sed 's/^/    | /' >&2
            die "$chain: no block $want within 90s (log: $log)"
        fi
        sleep 0.3
    done
    log "$chain: producing blocks (height $(dn_height "$chain"), $((SECONDS - start))s)"
}

# Height stored on disk (0 for a fresh chain); cheap, read from the priv validator state.
wasmd_state_height() {
    jq -r '.height // "0"' "$(dn_home "$1")/data/priv_validator_state.json" 2>/dev/null | tr -d '"' || echo 0
}

stop_chain() {
    stop_pidfile "$(chain_pidfile "$1")" "$(dn_home "$1")" "$1"
}

# ensure_ehrx: sets EHRX to the ehrx binary (dn_ehrx_bin; built when stale).
ensure_ehrx() {
    EHRX=$(dn_ehrx_bin) || die "no ehrx binary: cargo build -p ehrx failed (see above), or set EHRX_BIN"
    log "ehrx: $EHRX"
}

# register_clinician CHAIN REGISTRY: the devnet clinician's key, made by ehrx (which prints
# the RegisterClinician message), registered by the admin with `ehrx admin
# register-clinician`. Prints the clinician's entry for devnet.json.
register_clinician() {
    local chain=$1 registry=$2 key msg
    key="$(dn_home "$chain")/clinicians/$CLINICIAN_ID.key"
    # In the chain's home, so that no ehrx.toml of the caller's directory applies.
    msg=$(cd "$(dn_home "$chain")" && "$EHRX" clinician new --id "$CLINICIAN_ID" \
        --clinician-key "$key" --purpose "$CLINICIAN_PURPOSES" 2>>"$LOGS/ehrx-$chain.log") ||
        die "$chain: ehrx clinician new failed (log: $LOGS/ehrx-$chain.log)"
    dn_admin "$chain" register-clinician --registry "$registry" --message - <<<"$msg" >/dev/null ||
        die "$chain: ehrx admin register-clinician failed (details above)"
    jq -c --arg k "$key" '.register_clinician.clinician
        | {id: .clinician_id, key_file: $k, signing_key, allowed_purposes}' <<<"$msg"
}

# make_custodian CHAIN: the hospital's records key, which is also its custodian key
# (requests seal the patient's details to it; partners register its public half as this
# hospital's encryption_key), and its own pseudonym key (records are kept under HMAC
# pseudonyms made with it; it never leaves the hospital), both made by ehrx in
# <home>/custodian (0700, files 0600). Prints the custodian entry for devnet.json.
make_custodian() {
    local chain=$1 home dir shown
    home=$(dn_home "$chain")
    dir="$home/custodian"
    shown=$(cd "$home" && "$EHRX" keys init --key-dir "$dir/keys" 2>>"$LOGS/ehrx-$chain.log") ||
        die "$chain: ehrx keys init (records key) failed (log: $LOGS/ehrx-$chain.log)"
    (cd "$home" && "$EHRX" keys new-pseudonym-key --out "$dir/pseudonym.key" >/dev/null 2>>"$LOGS/ehrx-$chain.log") ||
        die "$chain: ehrx keys new-pseudonym-key failed (log: $LOGS/ehrx-$chain.log)"
    sed -n '/^{/,$p' <<<"$shown" | jq -c --arg d "$dir/keys" --arg p "$dir/pseudonym.key" \
        '{records_key_dir: $d, records_key: .encryption_key, pseudonym_key_file: $p}'
}

# pin_codes CHAIN CODE...: pins the contracts' code in the VM cache through governance
# (MsgPinCodes needs the gov authority), as a hospital's chain would: the admin, the only
# holder of the bonding denom, deposits and votes. A pinned contract costs 2,000 gas to load
# instead of 60,000 (wasmd's InstanceCostDiscount / InstanceCost), and a packet's receive
# loads the exchange and, for its queries, the registry.
pin_codes() {
    local chain=$1 gov proposal tx id waited=0 pinned
    shift
    step "$chain: pin codes $* (gov proposal, voting period $GOV_VOTING_PERIOD)"
    gov=$(dn_q "$chain" auth module-account gov | jq -r '.account.value.address // .account.base_account.address // empty')
    [[ -n "$gov" ]] || die "$chain: no gov module account"
    proposal="$(dn_home "$chain")/pin-proposal.json"
    jq -n --arg gov "$gov" --arg dep "$GOV_DEPOSIT" '{
        messages: [{"@type": "/cosmwasm.wasm.v1.MsgPinCodes", authority: $gov,
                    code_ids: ($ARGS.positional | map(tonumber))}],
        deposit: $dep, title: "Pin the ehrx contracts", summary: "Keep registry and exchange in the VM cache"}' \
        --args "$@" >"$proposal"
    tx=$(dn_tx "$chain" admin gov submit-proposal "$proposal")
    id=$(dn_tx_event_attr "$tx" submit_proposal proposal_id | head -n1)
    [[ -n "$id" ]] || die "$chain: the pin proposal has no id"
    dn_tx "$chain" admin gov vote "$id" yes >/dev/null
    while :; do
        pinned=$(dn_q "$chain" wasm pinned | jq -c '[.code_ids[]? | tonumber]')
        if jq -en --argjson p "$pinned" '$ARGS.positional | map(tonumber) | all(. as $c | $p | index($c))' \
            --args "$@" >/dev/null; then
            break
        fi
        ((waited < 60)) || die "$chain: codes $* not pinned 60 s after proposal $id passed its vote: $(dn_q "$chain" gov proposal "$id" | jq -c '.proposal.status // .status')"
        sleep 1
        waited=$((waited + 1))
    done
    log "$chain: codes $* pinned (proposal $id)"
}

# Stores and instantiates both contracts and wires them together (`ehrx admin deploy`:
# codes instantiable by the admin only, the admin may migrate the contracts), pins the
# codes, registers the devnet clinician, makes the hospital's records (custodian) and
# pseudonym keys. Writes <home>/deploy.json.
deploy_chain() {
    local chain=$1 home deployed reg_code ex_code registry exchange clinician custodian
    home=$(dn_home "$chain")
    step "$chain: store, instantiate and wire registry.wasm and exchange.wasm (ehrx admin deploy)"
    deployed=$(dn_admin "$chain" deploy --registry-wasm "$ARTIFACTS/registry.wasm" \
        --exchange-wasm "$ARTIFACTS/exchange.wasm" --network-id "$chain" --json) ||
        die "$chain: ehrx admin deploy failed (details above)"
    reg_code=$(jq -r .code_ids.registry <<<"$deployed")
    ex_code=$(jq -r .code_ids.exchange <<<"$deployed")
    registry=$(jq -r .contracts.registry <<<"$deployed")
    exchange=$(jq -r .contracts.exchange <<<"$deployed")
    log "$chain: registry $registry (code $reg_code)"
    log "$chain: exchange $exchange (code $ex_code, IBC port wasm.$exchange)"
    pin_codes "$chain" "$reg_code" "$ex_code"
    step "$chain: clinician $CLINICIAN_ID (key made by ehrx)"
    clinician=$(register_clinician "$chain" "$registry")
    log "$chain: clinician $(jq -r '"\(.id) (\(.allowed_purposes | join(", ")); key \(.key_file))"' <<<"$clinician")"
    custodian=$(make_custodian "$chain")
    log "$chain: records (custodian) key $(jq -r .records_key <<<"$custodian"), pseudonym key $(jq -r .pseudonym_key_file <<<"$custodian")"
    # Sanity: the registry answers and knows its exchange.
    local cfg
    cfg=$(dn_admin "$chain" show config --registry "$registry") || die "$chain: registry config query failed"
    [[ "$(jq -r .exchange <<<"$cfg")" == "$exchange" ]] ||
        die "$chain: registry config does not name the exchange: $cfg"
    step_done

    jq -n --arg chain "$chain" --argjson rc "$reg_code" --argjson ec "$ex_code" \
        --arg registry "$registry" --arg exchange "$exchange" \
        --arg rsha "$(artifact_sha registry)" --arg esha "$(artifact_sha exchange)" \
        --argjson clinician "$clinician" --argjson custodian "$custodian" \
        '{code_ids: {registry: $rc, exchange: $ec},
          contracts: {registry: $registry, exchange: $exchange},
          exchange_port: ("wasm." + $exchange),
          clinician: $clinician, custodian: $custodian,
          artifacts_sha256: {registry: $rsha, exchange: $esha}}' >"$home/deploy.json"
}

# Everything for one new chain; runs in a subshell (in parallel for A and B).
setup_chain() {
    local chain=$1
    init_chain "$chain"
    step "$chain: start"
    start_chain "$chain"
    deploy_chain "$chain"
}

# Adds a chain's entry to devnet.json (after setup_chain).
json_add_chain() {
    local chain=$1 home keys k
    home=$(dn_home "$chain")
    keys='{}'
    for k in admin relayer "${PEERS[@]}"; do
        keys=$(jq -c --arg k "$k" --arg a "$(dn_key_addr "$chain" "$k")" '. + {($k): $a}' <<<"$keys")
    done
    json_update --arg c "$chain" --arg home "$home" \
        --arg node "$(dn_node "$chain")" --arg rpc "$(dn_rpc_url "$chain")" \
        --arg grpc "http://127.0.0.1:$(dn_port "$chain" grpc)" \
        --arg api "http://127.0.0.1:$(dn_port "$chain" api)" \
        --arg p2p "tcp://127.0.0.1:$(dn_port "$chain" p2p)" \
        --arg log "$(chain_log "$chain")" --arg pid "$(chain_pidfile "$chain")" \
        --argjson keys "$keys" --slurpfile dep "$home/deploy.json" '
        .chains[$c] = ({
            chain_id: $c, home: $home, node: $node, rpc: $rpc, grpc: $grpc, api: $api,
            p2p: $p2p, log: $log, pid_file: $pid, keyring_backend: "test",
            mnemonics_dir: ($home + "/mnemonics"), keys: $keys, partners: {}
        } + $dep[0])
        | .chain_ids = ((.chain_ids + [$c]) | unique)'
}

# ================================================================================
# Hermes
# ================================================================================
hermes_running() { pid_alive "$HERMES_PID" "$HERMES_CFG"; }
hermes() { command hermes --config "$HERMES_CFG" "$@"; }

# render_hermes_config CHAIN...: write $HERMES_CFG from the template.
render_hermes_config() {
    mkdir -p "$HERMES_DIR/keys"
    [[ -f "$TEMPLATE" ]] || die "Hermes template $TEMPLATE missing"
    local head chain_block out c
    head=$(sed '/^# ----- BEGIN CHAIN/,$d' "$TEMPLATE")
    chain_block=$(sed -n '/^# ----- BEGIN CHAIN/,/^# ----- END CHAIN/p' "$TEMPLATE")
    [[ -n "$chain_block" ]] || die "$TEMPLATE has no BEGIN CHAIN/END CHAIN block"
    out=$(sed -e "s|@LOG_LEVEL@|${EHRX_HERMES_LOG_LEVEL:-info}|g" \
        -e "s|@REST_PORT@|$HERMES_REST_PORT|g" \
        -e "s|@TELEMETRY_PORT@|$HERMES_TELEMETRY_PORT|g" <<<"$head")
    for c in "$@"; do
        out+=$'\n'$(sed -e "s|@CHAIN_ID@|$c|g" \
            -e "s|@RPC_PORT@|$(dn_port "$c" rpc)|g" \
            -e "s|@GRPC_PORT@|$(dn_port "$c" grpc)|g" \
            -e "s|@KEY_STORE@|$HERMES_DIR/keys|g" \
            -e "s|@FEE_DENOM@|$DN_FEE_DENOM|g" \
            -e "s|@PULL_INTERVAL@|$HERMES_PULL_INTERVAL|g" \
            -e "s|@TRUSTING_PERIOD@|$TRUSTING_PERIOD|g" \
            -e "s|@UNBONDING_HUMAN@|$UNBONDING_HUMAN|g" <<<"$chain_block")
    done
    local left
    left=$(grep -v '^[[:space:]]*#' <<<"$out" | grep -o '@[A-Z_]*@' | sort -u | tr '\n' ' ' || true)
    [[ -z "$left" ]] || die "unreplaced placeholders in the Hermes config: $left"
    printf '%s\n' "$out" >"$HERMES_CFG.tmp"
    command hermes --config "$HERMES_CFG.tmp" config validate >"$LOGS/hermes-validate.log" 2>&1 ||
        die "hermes config validate failed for $HERMES_CFG.tmp: $(tail -n 5 "$LOGS/hermes-validate.log")"
    mv "$HERMES_CFG.tmp" "$HERMES_CFG"
    log "Hermes config: $HERMES_CFG (chains: $*; validated)"
}

hermes_add_key() {
    local chain=$1
    hermes keys add --chain "$chain" --key-name relayer --overwrite \
        --mnemonic-file "$(dn_home "$chain")/mnemonics/relayer.txt" >>"$LOGS/hermes-cli.log" 2>&1 ||
        die "hermes keys add for $chain failed (log: $LOGS/hermes-cli.log)"
    log "$chain: relayer key imported into Hermes ($(dn_key_addr "$chain" relayer))"
}

# hermes_json ARGS...: run a Hermes CLI command with --json; print its result
# object; die with the error and the log otherwise.
hermes_json() {
    local out rc=0 res
    printf '\n+ hermes %s\n' "$*" >>"$LOGS/hermes-cli.log"
    out=$(command hermes --config "$HERMES_CFG" --json "$@" 2>>"$LOGS/hermes-cli.log") || rc=$?
    printf '%s\n' "$out" >>"$LOGS/hermes-cli.log"
    res=$(jq -c 'select(.status? == "success") | .result' <<<"$out" 2>/dev/null | tail -n1)
    if ((rc != 0)) || [[ -z "$res" ]]; then
        {
            echo "hermes $* failed (exit $rc). Its output:"
            printf '%s\n' "$out" | tail -n 20 | sed 's/^/    | /'
            echo "  full log: $LOGS/hermes-cli.log"
        } >&2
        return 1
    fi
    printf '%s\n' "$res"
}

start_hermes() {
    if hermes_running; then
        log "Hermes: already running (pid $(<"$HERMES_PID"))"
        return 0
    fi
    port_in_use "$HERMES_REST_PORT" &&
        die "Hermes REST port $HERMES_REST_PORT is in use by another process (set EHRX_HERMES_REST_PORT)"
    port_in_use "$HERMES_TELEMETRY_PORT" &&
        die "Hermes telemetry port $HERMES_TELEMETRY_PORT is in use by another process (set EHRX_HERMES_REST_PORT)"
    printf '\n===== %s hermes start =====\n' "$(date -Is)" >>"$HERMES_LOG"
    local from_line
    from_line=$(wc -l <"$HERMES_LOG")
    spawn "$HERMES_PID" "$HERMES_LOG" "$(type -P hermes)" --config "$HERMES_CFG" start
    log "Hermes: started pid $(<"$HERMES_PID") (pull mode; log $HERMES_LOG)"
    # Healthy = the process lives, it logged "Hermes has started" and REST /state answers.
    local start=$SECONDS
    while :; do
        if ! hermes_running; then
            tail -n +"$((from_line + 1))" "$HERMES_LOG" | tail -n 30 | sed 's/^/    | /' >&2
            die "Hermes exited during start (log: $HERMES_LOG, last lines above)"
        fi
        if tail -n +"$((from_line + 1))" "$HERMES_LOG" | grep -q "Hermes has started" &&
            curl -sf --max-time 2 "http://127.0.0.1:$HERMES_REST_PORT/state" >/dev/null 2>&1; then
            break
        fi
        if ((SECONDS - start > 120)); then
            tail -n 20 "$HERMES_LOG" | sed 's/^/    | /' >&2
            die "Hermes not healthy after 120s (log: $HERMES_LOG)"
        fi
        sleep 0.5
    done
    log "Hermes: healthy after $((SECONDS - start))s (REST http://127.0.0.1:$HERMES_REST_PORT/state)"
    clear_pending_packets
}

# Relays, once, whatever packets and acks are pending on every link. Hermes' own
# clear_on_start can miss a packet committed in the block it starts at (it then has no
# packet worker for that channel and, in pull mode, never sees the event), so a packet sent
# while Hermes was down could wait forever. Non-fatal: the daemon keeps relaying regardless.
clear_pending_packets() {
    [[ -f "$JSON" ]] || return 0
    local chain port channel
    while read -r chain port channel; do
        [[ -n "$channel" ]] || continue
        if ! command hermes --config "$HERMES_CFG" clear packets --chain "$chain" \
            --port "$port" --channel "$channel" >>"$LOGS/hermes-clear.log" 2>&1; then
            warn "hermes clear packets on $chain $channel failed (see $LOGS/hermes-clear.log); the daemon keeps relaying"
        fi
    done < <(jq -r '.links[]? | "\(.a_side.chain_id) \(.a_side.port_id) \(.a_side.channel_id)"' "$JSON")
}

stop_hermes() { stop_pidfile "$HERMES_PID" "$HERMES_CFG" "Hermes"; }

# ================================================================================
# linking two chains: connection, partners, channel, binding check
# ================================================================================
# upsert_partner ON PARTNER CONNECTION: on chain ON, register PARTNER with its custodian
# key (PARTNER's records key, devnet.json .chains[PARTNER].custodian.records_key) as its
# encryption_key: requests from ON seal the patient's details to it.
upsert_partner() {
    local on=$1 partner=$2 conn=$3 registry port key args
    registry=$(jq -r --arg c "$on" '.chains[$c].contracts.registry' "$JSON")
    port=$(jq -r --arg c "$partner" '.chains[$c].exchange_port' "$JSON")
    key=$(jq -r --arg c "$partner" '.chains[$c].custodian.records_key // empty' "$JSON")
    [[ -n "$key" ]] || warn "$partner has no custodian key in devnet.json (an older devnet): requests to it cannot be sealed; scripts/devnet.sh reset && scripts/devnet.sh up"
    args=(upsert-partner --registry "$registry" --partner "$partner" --connection-id "$conn"
        --counterparty-port "$port" --status active)
    [[ -n "$key" ]] && args+=(--encryption-key "$key")
    dn_admin "$on" "${args[@]}" >/dev/null || die "$on: ehrx admin upsert-partner $partner failed (details above)"
    log "$on: partner $partner -> $conn, counterparty port $port, custodian key ${key:-none}"
}

# partner_channel ON PARTNER: the channel id ON's registry has bound for PARTNER.
partner_channel() {
    local registry
    registry=$(jq -r --arg c "$1" '.chains[$c].contracts.registry' "$JSON")
    dn_admin "$1" show partner --registry "$registry" --partner "$2" | jq -r '.channel_id // empty'
}

# Show what the contracts said about a failed handshake.
report_handshake_failure() {
    local a=$1 b=$2 c ex
    {
        echo
        echo "---- handshake diagnostics ----"
        for c in "$a" "$b"; do
            ex=$(jq -r --arg c "$c" '.chains[$c].contracts.exchange' "$JSON")
            echo "$c: channels:"
            dn_q "$c" ibc channel channels 2>/dev/null | jq -c '.channels[]? | {state, ordering, version, port_id, channel_id, counterparty, connection_hops}' | sed 's/^/    /'
            echo "$c: exchange wasm events of the last 40 blocks:"
            local h from
            h=$(dn_height "$c")
            from=$((h > 40 ? h - 40 : 1))
            dn_q "$c" txs --query "tx.height>=$from AND tx.height<=$h" --limit 50 2>/dev/null |
                jq -c --arg ex "$ex" '.txs[]? | {height, code, raw_log: (.raw_log // "" | .[0:300]),
                    wasm: [.events[]? | select(.type | startswith("wasm")) | [.attributes[]? | "\(.key)=\(.value)"] | join(" ")]}
                    | select((.wasm | length) > 0 or .code != 0)' | sed 's/^/    /'
        done
        echo "Hermes CLI log: $LOGS/hermes-cli.log"
    } >&2
}

# link_chains A B: A is the "a-side" for Hermes.
link_chains() {
    local a=$1 b=$2 conn_json conn_a conn_b client_a client_b ch_json ch_a ch_b port_a port_b
    step "Hermes: create connection $a <-> $b (new clients)"
    conn_json=$(hermes_json create connection --a-chain "$a" --b-chain "$b") ||
        die "connection $a <-> $b failed"
    conn_a=$(jq -r '.a_side.connection_id' <<<"$conn_json")
    conn_b=$(jq -r '.b_side.connection_id' <<<"$conn_json")
    client_a=$(jq -r '.a_side.client_id' <<<"$conn_json")
    client_b=$(jq -r '.b_side.client_id' <<<"$conn_json")
    [[ "$conn_a" == connection-* && "$conn_b" == connection-* ]] ||
        die "unexpected connection result: $conn_json"
    log "connection: $a $conn_a ($client_a) <-> $b $conn_b ($client_b)"

    step "registries: $a and $b register each other as partners"
    (upsert_partner "$a" "$b" "$conn_a") &
    local pa=$!
    (upsert_partner "$b" "$a" "$conn_b") &
    local pb=$!
    wait "$pa" || die "upsert_partner on $a failed"
    wait "$pb" || die "upsert_partner on $b failed"

    port_a=$(jq -r --arg c "$a" '.chains[$c].exchange_port' "$JSON")
    port_b=$(jq -r --arg c "$b" '.chains[$c].exchange_port' "$JSON")
    step "Hermes: create channel $port_a <-> $port_b (unordered, $CHANNEL_VERSION)"
    if ! ch_json=$(hermes_json create channel --a-chain "$a" --a-connection "$conn_a" \
        --a-port "$port_a" --b-port "$port_b" --order unordered \
        --channel-version "$CHANNEL_VERSION" --yes); then
        report_handshake_failure "$a" "$b"
        die "channel handshake $a <-> $b failed (diagnostics above)"
    fi
    ch_a=$(jq -r '.a_side.channel_id' <<<"$ch_json")
    ch_b=$(jq -r '.b_side.channel_id' <<<"$ch_json")
    log "channel: $a $ch_a <-> $b $ch_b"

    step "check: both registries bound the channel"
    local got_a got_b
    got_a=$(partner_channel "$a" "$b")
    got_b=$(partner_channel "$b" "$a")
    if [[ "$got_a" != "$ch_a" || "$got_b" != "$ch_b" ]]; then
        report_handshake_failure "$a" "$b"
        die "partner binding mismatch: $a has '$got_a' for $b (expected $ch_a), $b has '$got_b' for $a (expected $ch_b)"
    fi
    log "$a: partner $b bound to $ch_a; $b: partner $a bound to $ch_b"

    json_update --arg a "$a" --arg b "$b" --arg ca "$conn_a" --arg cb "$conn_b" \
        --arg la "$client_a" --arg lb "$client_b" --arg cha "$ch_a" --arg chb "$ch_b" \
        --arg pa "$port_a" --arg pb "$port_b" --arg v "$CHANNEL_VERSION" '
        .links += [{a: $a, b: $b, version: $v, order: "unordered",
            a_side: {chain_id: $a, client_id: $la, connection_id: $ca, port_id: $pa, channel_id: $cha},
            b_side: {chain_id: $b, client_id: $lb, connection_id: $cb, port_id: $pb, channel_id: $chb}}]
        | .chains[$a].partners[$b] = {connection_id: $ca, channel_id: $cha, client_id: $la,
            counterparty_port: $pb, counterparty_channel_id: $chb}
        | .chains[$b].partners[$a] = {connection_id: $cb, channel_id: $chb, client_id: $lb,
            counterparty_port: $pa, counterparty_channel_id: $cha}'
}

# ================================================================================
# subcommands
# ================================================================================
json_complete() { [[ -f "$JSON" ]] && [[ "$(jq -r '.complete // false' "$JSON" 2>/dev/null)" == true ]]; }
json_chains() { jq -r '.chain_ids[]' "$JSON"; }

lock_devnet() {
    mkdir -p "$(dirname "$DIR")"
    exec 8>"${DIR%/}.lock"
    if ! flock -n 8; then
        log "another devnet.sh command holds ${DIR%/}.lock; waiting"
        flock 8
    fi
}

all_up() {
    local c
    for c in $(json_chains); do chain_running "$c" || return 1; done
    hermes_running
}

cmd_up() {
    lock_devnet
    need_tools
    log "devnet directory: $DIR"
    if json_complete && [[ -z "$(jq -r '.fee_denom // empty' "$JSON")" ]]; then
        die "$DIR was created before the staking lock (issue 8: peers funded with the bonding denom, staking open); run: scripts/devnet.sh reset && scripts/devnet.sh up"
    fi
    if json_complete; then
        if all_up; then
            log "already up: chains $(json_chains | tr '\n' ' ')and Hermes are running; nothing to do"
            warn_stale_artifacts
            echo "devnet already up; description: $JSON"
            return 0
        fi
        warm_up
        return
    fi
    if [[ -d "$DIR" ]] && [[ -n "$(ls -A "$DIR" 2>/dev/null)" ]]; then
        warn "$DIR holds an incomplete devnet (an earlier 'up' did not finish): stopping what it started and re-initialising"
        stop_everything
        rm -rf "$DIR"
    fi
    cold_up
}

warn_stale_artifacts() {
    local c sha
    for c in registry exchange; do
        [[ -f "$ARTIFACTS/$c.wasm" ]] || continue
        sha=$(jq -r --arg k "$c" '.chains[.chain_ids[0]].artifacts_sha256[$k] // empty' "$JSON")
        if [[ -n "$sha" && "$sha" != "$(artifact_sha "$c")" ]]; then
            warn "$ARTIFACTS/$c.wasm differs from the code deployed on this devnet; to deploy it: scripts/devnet.sh reset && scripts/devnet.sh up"
        fi
    done
}

cold_up() {
    FAIL_HINT="devnet up did not finish. What it started is left running for inspection
(logs: $LOGS/, $DIR/<chain>/wasmd.log, $HERMES_LOG).
'scripts/devnet.sh up' re-initialises from scratch; 'scripts/devnet.sh down' stops it."
    step "tools and artifacts"
    timed "artifacts (build-wasm if stale)" ensure_artifacts
    timed "ehrx (cargo build if stale)" ensure_ehrx
    mkdir -p "$DIR" "$LOGS" "$HERMES_DIR"
    jq -n --arg dir "$DIR" --arg now "$(date -Is)" --arg wasmd "$(command -v wasmd)" \
        --arg wv "$(wasmd version 2>/dev/null)" --arg hermes "$(type -P hermes)" \
        --arg hv "$(command hermes version 2>/dev/null | tail -n1)" \
        --arg cfg "$HERMES_CFG" --arg hlog "$HERMES_LOG" --arg hpid "$HERMES_PID" \
        --arg rest "http://127.0.0.1:$HERMES_REST_PORT" \
        --arg tel "http://127.0.0.1:$HERMES_TELEMETRY_PORT/metrics" \
        --arg v "$CHANNEL_VERSION" --arg art "$ARTIFACTS" \
        --arg bond "$DN_DENOM" --arg fee "$DN_FEE_DENOM" '
        {schema: 1, complete: false, devnet_dir: $dir, created_at: $now,
         bond_denom: $bond, fee_denom: $fee, keyring_backend: "test", channel_version: $v,
         wasmd: {bin: $wasmd, version: $wv}, artifacts_dir: $art,
         hermes: {bin: $hermes, version: $hv, config: $cfg, log: $hlog, pid_file: $hpid,
                  rest: $rest, telemetry: $tel, event_source: "pull"},
         chain_ids: [], chains: {}, links: []}' >"$JSON"

    # Both chains in parallel: init, start, deploy. Output prefixed per chain.
    step "chains ${BASE_CHAINS[*]}: init, start, deploy contracts (in parallel)"
    local t0=$SECONDS c pids=() failed=()
    for c in "${BASE_CHAINS[@]}"; do check_chain_ports "$c"; done
    for c in "${BASE_CHAINS[@]}"; do
        (setup_chain "$c") > >(tee "$LOGS/setup-$c.log" | sed -u "s/^/  [$c] /" >&2) 2>&1 &
        pids+=($!)
    done
    local i
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || failed+=("${BASE_CHAINS[$i]}")
    done
    sleep 0.2  # let the prefixing pipes flush
    ((${#failed[@]} == 0)) || die "setting up ${failed[*]} failed (logs: $LOGS/setup-<chain>.log); fix and run 'scripts/devnet.sh up' again (it re-initialises)"
    TIMINGS+=("$(printf '%-44s %s' "chains A+B: init, start, deploy (parallel)" "$(fmt_duration $((SECONDS - t0)))")")
    for c in "${BASE_CHAINS[@]}"; do json_add_chain "$c"; done

    step "Hermes: config and keys"
    timed "hermes config + keys" hermes_setup "${BASE_CHAINS[@]}"
    timed "link A<->B (connection, partners, channel)" link_chains "${BASE_CHAINS[0]}" "${BASE_CHAINS[1]}"
    step "Hermes: start (pull mode)"
    timed "hermes start until healthy" start_hermes
    json_update '.complete = true'
    step_done
    summary
    print_timings "devnet up (cold)"
}

hermes_setup() {
    local c
    render_hermes_config "$@"
    for c in "$@"; do hermes_add_key "$c"; done
}

# Restart from existing state.
warm_up() {
    step "restart from existing state ($DIR)"
    local c pids=() chains
    mapfile -t chains < <(json_chains)
    local t0=$SECONDS
    for c in "${chains[@]}"; do
        if ! chain_running "$c"; then
            [[ -f "$(dn_home "$c")/config/genesis.json" ]] ||
                die "$c: no state in $(dn_home "$c"); run 'scripts/devnet.sh reset' then 'up'"
            check_chain_ports "$c"
        fi
    done
    # One retry: a chain stopped moments ago has been seen to exit at once on restart
    # (nothing in its warn-level log); the second start has always worked.
    for c in "${chains[@]}"; do
        ( (start_chain "$c") || { log "$c: retrying the start once"; sleep 3; start_chain "$c"; } ) \
            > >(sed -u "s/^/  [$c] /" >&2) 2>&1 &
        pids+=($!)
    done
    local i
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || die "${chains[$i]}: restart failed (log: $(chain_log "${chains[$i]}"))"
    done
    sleep 0.2
    TIMINGS+=("$(printf '%-44s %s' "restart chains" "$(fmt_duration $((SECONDS - t0)))")")

    step "check: light clients still active"
    local expired=() chain client st
    while read -r chain client; do
        st=$(dn_q "$chain" ibc client status "$client" 2>/dev/null | jq -r '.status // "unknown"')
        log "$chain: client $client is $st"
        [[ "$st" == Active ]] || expired+=("$chain/$client=$st")
    done < <(jq -r '.links[] | .a_side, .b_side | "\(.chain_id) \(.client_id)"' "$JSON")
    if ((${#expired[@]})); then
        die "IBC clients not active: ${expired[*]}. The chains were stopped longer than the trusting period ($TRUSTING_PERIOD). Run: scripts/devnet.sh reset && scripts/devnet.sh up"
    fi
    warn_stale_artifacts
    step "Hermes: start"
    render_hermes_config "${chains[@]}"
    timed "hermes start until healthy" start_hermes
    step_done
    summary
    print_timings "devnet up (warm restart)"
}

stop_everything() {
    stop_hermes
    local d
    for d in "$DIR"/*/; do
        [[ -f "$d/wasmd.pid" ]] && stop_pidfile "$d/wasmd.pid" "${d%/}" "$(basename "$d")"
    done
    return 0
}

cmd_down() {
    local clean=0
    [[ "${1:-}" == --clean ]] && clean=1
    lock_devnet
    stop_everything
    if ((clean)); then
        rm -rf "$DIR"
        log "removed $DIR"
    else
        log "stopped; state kept in $DIR ('scripts/devnet.sh up' restarts it, 'reset' wipes it)"
    fi
}

summary() {
    local c
    {
        echo
        echo "Devnet ready. State and logs: $DIR"
        echo "  description (for tests and the peer tool): $JSON"
        for c in $(json_chains); do
            jq -r --arg c "$c" '.chains[$c] |
                "  \(.chain_id): rpc \(.rpc)  grpc \(.grpc)  home \(.home)\n" +
                "    registry \(.contracts.registry)\n    exchange \(.contracts.exchange)\n" +
                (if .clinician then "    clinician \(.clinician.id) (\(.clinician.allowed_purposes | join(", ")); key \(.clinician.key_file))\n"
                 else "    no clinician (a devnet from before clinician credentials: scripts/devnet.sh reset, then up)\n" end) +
                ([.partners | to_entries[] | "    partner \(.key): \(.value.connection_id) \(.value.channel_id) -> \(.value.counterparty_port)"] | join("\n"))' "$JSON"
        done
        echo "  Hermes: pid $(cat "$HERMES_PID" 2>/dev/null || echo -), log $HERMES_LOG, REST http://127.0.0.1:$HERMES_REST_PORT/state"
    } >&2
}

cmd_status() {
    [[ -f "$JSON" ]] || { echo "no devnet in $DIR (run: scripts/devnet.sh up)"; return 1; }
    local c h pid reg healthy=1
    # The registries are read with ehrx, as built: status starts no build.
    EHRX=$(dn_ehrx_path)
    echo "devnet: $DIR ($(json_complete && echo complete || echo INCOMPLETE))"
    json_complete || healthy=0
    for c in $(json_chains); do
        if chain_running "$c"; then
            pid=$(<"$(chain_pidfile "$c")")
            h=$(dn_height "$c")
            echo "$c: running (pid $pid), height $h, rpc $(dn_rpc_url "$c")"
            ((h > 0)) || { echo "  NOT ANSWERING on $(dn_rpc_url "$c")"; healthy=0; }
        else
            echo "$c: STOPPED"
            healthy=0
            continue
        fi
        jq -r --arg c "$c" '.chains[$c] | "  registry \(.contracts.registry) (code \(.code_ids.registry))\n  exchange \(.contracts.exchange) (code \(.code_ids.exchange))"' "$JSON"
        echo "  channels:"
        dn_q "$c" ibc channel channels 2>/dev/null |
            jq -r '.channels[]? | "    \(.channel_id) \(.port_id) \(.state) \(.ordering) v=\(.version) -> \(.counterparty.channel_id) \(.counterparty.port_id) via \(.connection_hops | join(","))"' || echo "    (query failed)"
        echo "  partners (registry):"
        reg=$(jq -r --arg c "$c" '.chains[$c].contracts.registry' "$JSON")
        dn_admin "$c" show partners --registry "$reg" 2>/dev/null |
            jq -r '.partners[]? | "    \(.partner_id): \(.status) \(.connection_id) channel=\(.channel_id // "UNBOUND") -> \(.counterparty_port)"' || echo "    (query failed)"
    done
    if hermes_running; then
        echo "hermes: running (pid $(<"$HERMES_PID")), REST http://127.0.0.1:$HERMES_REST_PORT"
        curl -sf --max-time 2 "http://127.0.0.1:$HERMES_REST_PORT/state" 2>/dev/null |
            jq -r '.result.workers? // {} | to_entries[] | "  workers \(.key): \(.value | length)"' 2>/dev/null || true
    else
        echo "hermes: STOPPED"
        healthy=0
    fi
    if [[ -f "$HERMES_LOG" ]]; then
        echo "  last log lines ($HERMES_LOG):"
        tail -n 8 "$HERMES_LOG" | cut -c1-220 | sed 's/^/    /'
    fi
    if ((healthy)); then
        echo "status: healthy"
    else
        echo "status: NOT healthy (scripts/devnet.sh up starts what is missing)"
        return 1
    fi
}

cmd_add_chain() {
    lock_devnet
    need_tools
    json_complete || die "the devnet is not up (run scripts/devnet.sh up first)"
    local c=$EXTRA_CHAIN a=$HUB_CHAIN
    chain_running "$a" || die "$a is not running (scripts/devnet.sh up)"
    if jq -e --arg c "$c" '.links[] | select(.b == $c)' "$JSON" >/dev/null; then
        if chain_running "$c"; then
            log "$c is already part of the devnet and running; nothing to do"
            return 0
        fi
        die "$c is in devnet.json but not running: 'scripts/devnet.sh up' restarts it"
    fi
    log "devnet directory: $DIR"
    if [[ -d "$(dn_home "$c")" ]]; then
        # An earlier add-chain did not finish: start $c over. What it left on
        # $a (a connection, a partner entry) is superseded by the new link.
        warn "$c: leftovers of an unfinished add-chain; removing $(dn_home "$c") and starting over"
        stop_chain "$c"
        rm -rf "$(dn_home "$c")"
        json_update --arg c "$c" 'del(.chains[$c]) | .chain_ids -= [$c]'
    fi
    FAIL_HINT="add-chain did not finish; $a and hospital-b keep running.
Inspect $LOGS/setup-$c.log and $LOGS/hermes-cli.log, then run 'scripts/devnet.sh add-chain'
again: it starts $c over and creates a new connection."
    ensure_artifacts
    ensure_ehrx
    check_chain_ports "$c"
    step "$c: init, start, deploy"
    local t0=$SECONDS
    (setup_chain "$c") > >(tee "$LOGS/setup-$c.log" | sed -u "s/^/  [$c] /" >&2) 2>&1 &
    wait $! || die "setting up $c failed (log: $LOGS/setup-$c.log); 'scripts/devnet.sh down' then remove $(dn_home "$c") to retry"
    sleep 0.2
    TIMINGS+=("$(printf '%-44s %s' "$c: init, start, deploy" "$(fmt_duration $((SECONDS - t0)))")")
    json_add_chain "$c"
    local chains
    mapfile -t chains < <(json_chains)
    # Hermes CLI commands below use the new config; the running daemon keeps
    # relaying A<->B with the old one until the restart at the end.
    timed "hermes config + key for $c" hermes_setup "${chains[@]}"
    timed "link $a<->$c (connection, partners, channel)" link_chains "$a" "$c"
    step "Hermes: restart so that it relays for $c too (it reads its config only at start)"
    timed "hermes restart" restart_hermes
    step_done
    summary
    print_timings "add-chain $c"
}

# ICS-20 transfer channel A<->B on the existing connection: the baseline the
# figures compare exchange latency with (same relayer, same chains).
cmd_add_transfer_channel() {
    lock_devnet
    json_complete || die "the devnet is not up (scripts/devnet.sh up)"
    local a=${BASE_CHAINS[0]} b=${BASE_CHAINS[1]} conn ch_json ch_a ch_b
    if [[ "$(jq -r '.transfer.a_channel // empty' "$JSON")" != "" ]]; then
        log "transfer channel already exists: $(jq -c .transfer "$JSON")"
        jq -c .transfer "$JSON"
        return 0
    fi
    if ! chain_running "$a" || ! chain_running "$b"; then die "$a and $b must be running"; fi
    conn=$(jq -r --arg a "$a" --arg b "$b" '.chains[$a].partners[$b].connection_id' "$JSON")
    step "Hermes: create channel transfer <-> transfer on $a $conn"
    ch_json=$(hermes_json create channel --a-chain "$a" --a-connection "$conn" \
        --a-port transfer --b-port transfer --order unordered --channel-version ics20-1 --yes) ||
        die "transfer channel $a <-> $b failed"
    ch_a=$(jq -r '.a_side.channel_id' <<<"$ch_json")
    ch_b=$(jq -r '.b_side.channel_id' <<<"$ch_json")
    json_update --arg a "$a" --arg b "$b" --arg ca "$ch_a" --arg cb "$ch_b" --arg conn "$conn" \
        '.transfer = {a: $a, b: $b, port: "transfer", version: "ics20-1", a_connection: $conn,
                      a_channel: $ca, b_channel: $cb}'
    step_done
    # Hermes spawns packet workers for new channels on their first packet: no restart.
    log "transfer channel: $a $ch_a <-> $b $ch_b (devnet.json .transfer)"
    jq -c .transfer "$JSON"
}

restart_hermes() {
    stop_hermes
    start_hermes
}

cmd_add_peer() {
    (($# >= 5)) || die "usage: devnet.sh add-peer CHAIN ADDRESS ROLES SIGNING_KEY_B64 ENCRYPTION_KEY_B64 [DEVICE_ID]"
    local chain=$1 address=$2 roles=$3 sk=$4 ek=$5 device=${6:-devnet-device} reg out
    json_complete || die "the devnet is not up (scripts/devnet.sh up)"
    reg=$(jq -r --arg c "$chain" '.chains[$c].contracts.registry // empty' "$JSON")
    [[ -n "$reg" ]] || die "unknown chain $chain (devnet chains: $(json_chains | tr '\n' ' '))"
    ensure_ehrx
    out=$(dn_admin "$chain" register-peer --registry "$reg" --address "$address" --roles "$roles" \
        --signing-key "$sk" --encryption-key "$ek" --device-id "$device") ||
        die "$chain: ehrx admin register-peer failed (details above)"
    log "$chain: peer $address registered (roles $roles) in tx $(jq -r .txhash <<<"$out")"
    jq -c .peer <<<"$out"
}

cmd_env() {
    local chain=${1:-}
    [[ -n "$chain" ]] || die "usage: devnet.sh env CHAIN"
    dn_use "$chain"
    printf 'export CHAIN_ID=%q CHAIN_HOME=%q CHAIN_NODE=%q REGISTRY=%q EXCHANGE=%q\n' \
        "$CHAIN_ID" "$CHAIN_HOME" "$CHAIN_NODE" "$REGISTRY" "$EXCHANGE"
}

FAIL_HINT=""
on_exit() {
    local rc=$?
    if ((rc != 0)) && [[ -n "$FAIL_HINT" ]]; then
        printf '\n%s\n' "$FAIL_HINT" >&2
    fi
}

main() {
    trap on_exit EXIT
    local cmd=${1:-}
    shift || true
    case "$cmd" in
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        reset) cmd_down --clean ;;
        status) cmd_status "$@" ;;
        add-chain) cmd_add_chain "$@" ;;
        add-peer) cmd_add_peer "$@" ;;
        clear-packets) clear_pending_packets ;;
        add-transfer-channel) cmd_add_transfer_channel ;;
        stop-relayer) lock_devnet; stop_hermes ;;
        start-relayer)
            lock_devnet
            json_complete || die "the devnet is not up"
            start_hermes
            ;;
        restart-relayer) lock_devnet; restart_hermes ;;
        env) cmd_env "$@" ;;
        -h | --help | help | "") usage ;;
        *) die "unknown command '$cmd' (try --help)" ;;
    esac
}

# Sourcing this file (e.g. to reuse a function in a test) does not run main.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    main "$@"
fi
