#!/usr/bin/env bash
# The figures of DESIGN.md §10, measured on the running devnet in one run, side by side
# with a plain ICS-20 transfer over the same Hermes:
#
#   scripts/bench.sh [--runs N] [--parallel K] [--poll SECS] [--skip-install] [--keep-keys]
#
#   1. latency of a full exchange: wall time of `ehrx request` (SubmitRequest -> relay ->
#      reply service on hospital-b -> relay -> RetrieveReply -> decrypted Bundle written),
#      N sequential runs, each from a fresh registered requester (the default policy allows
#      one request per peer per minute); p50/p95/min/max, plus a per-stage breakdown from
#      block header times;
#   2. completed exchanges per minute at each level of --parallel (requests in flight), fresh
#      requesters, one exchange each: per minute, p50, failures;
#   3. ICS-20 baseline: `wasmd tx ibc-transfer transfer` 1ufee (the fee denom; only the
#      chains' admins hold the bonding denom stake) A -> B, from the node taking the tx until
#      the receiver's IBC-denom balance on B increases (one way, REST poll every 100 ms) and
#      until the acknowledgement is indexed on A (round trip, RPC tx_search every 100 ms);
#   4. gas_used per transaction type (ours, soft-rejected, registry, Hermes' MsgRecvPacket
#      and MsgAcknowledgement for exchange packets vs ICS-20 packets);
#   5. wasm sizes of artifacts/*.wasm;
#   6. patient histories (issue 9): Synthea histories of 10 KB, 1 MB and 5 MB of FHIR JSON and
#      one of 5 MB of scans, one exchange each through ehrx on fresh peers
#      (tests/src/bin/bench_histories.rs): sizes, chunks, latency, gas on both chains with
#      Hermes' packets, gas per MB, peak RSS of ehrx under /usr/bin/time -v;
#   7. tool install time: the last build of each piece ($EHRX_TOOLS/logs/<piece>.took; cold
#      only if its caches were empty then: scripts/cold-rehearsal.sh measures that), warm =
#      a run of install-tools.sh now.
#
# Options:
#   --runs N        sequential exchanges and ICS-20 transfers (default 10)
#   --parallel L    requests in flight in the throughput phase: a comma-separated list of
#                   levels, each its own round of fresh requesters (default 1,10,50)
#   --json FILE     also write the machine-readable summary (exchange and ICS-20 percentiles,
#                   ratio, exchanges/min per level with failures, gas per message kind, wasm
#                   sizes) to FILE
#   --poll SECS     poll interval of `ehrx request` and the reply service (default 1; ehrx's
#                   own default is 3; whole seconds only)
#   --skip-install  do not time scripts/install-tools.sh (warm)
#   --no-histories  skip phase 6
#   --histories L   the histories of phase 6 (default small-10k,mid-1m,large-5m,attachments-5m,whole;
#                   whole is the entire Synthea patient, ~5,500 resources)
#   --keep-keys     keep the bench-* keys in the devnet keyrings (default: deleted at the end)
#   --quiet-wait S  wait up to S seconds (default 1200; 0 = not at all) for other users of the
#                   devnet to finish first: the e2e suite (scripts/test.sh), scripts/demo.sh,
#                   other `ehrx reply-service`s. They share hospital-b: its reply services would
#                   answer each other's requests, and on 2 cores they distort the timings.
#
# Environment: EHRX_DEVNET_DIR (default ~/.cache/ehrx-devnet), EHRX_BIN (an ehrx binary;
# default target/release/ehrx, built with cargo when older than its sources).
#
# Sharing the devnet: any registered reply service on hospital-b answers any pending request
# to hospital-b, so the bench (a) waits for a quiet devnet (--quiet-wait), (b) seeds its reply
# service's state file with every request already pending on hospital-b, so it never answers
# those, (c) runs its reply service only during the exchange phases and reports any request it
# answered that was not its own, and (d) when only Hermes is down (e.g. another session's
# `devnet.sh stop-relayer`), waits up to 3 minutes for it to come back before `devnet.sh up`.
#
# Output: the Markdown report on stdout and in $EHRX_DEVNET_DIR/bench/bench-<timestamp>.md,
# its machine-readable summary beside it (bench-<timestamp>.json, and --json FILE);
# progress with timings on stderr; raw material (configs, logs, tx JSON) in
# $EHRX_DEVNET_DIR/bench/run-<timestamp>/.
#
# The devnet is started with `scripts/devnet.sh up` only when `status` fails; the ICS-20
# channel is created with `scripts/devnet.sh add-transfer-channel` when devnet.json has
# none. Nothing is stopped or reset. The fresh accounts are funded by `admin` (fee denom) and
# registered (RegisterPeer) by the registry admin; they stay registered on the chains.

# jq filters and Markdown are single-quoted on purpose:
# shellcheck disable=SC2016
set -euo pipefail

# shellcheck source=scripts/devnet/helpers.sh
source "$(dirname "${BASH_SOURCE[0]}")/devnet/helpers.sh"
export LC_ALL=C

RUNS=10
PAR=1,10,50
JSON_OUT=""
POLL=1
SKIP_INSTALL=0
HISTORIES=small-10k,mid-1m,large-5m,attachments-5m,whole
KEEP_KEYS=0
QUIET_WAIT=1200
ORIG_ARGS=("$@")
while (($#)); do
    case "$1" in
        --runs) RUNS=${2:?--runs N}; shift 2 ;;
        --parallel) PAR=${2:?--parallel L}; shift 2 ;;
        --json) JSON_OUT=${2:?--json FILE}; shift 2 ;;
        --poll) POLL=${2:?--poll SECS}; shift 2 ;;
        --skip-install) SKIP_INSTALL=1; shift ;;
        --no-histories) HISTORIES=""; shift ;;
        --histories) HISTORIES=${2:?--histories LIST}; shift 2 ;;
        --keep-keys) KEEP_KEYS=1; shift ;;
        --quiet-wait) QUIET_WAIT=${2:?--quiet-wait SECS}; shift 2 ;;
        -h | --help) sed -n '2,52p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs wants a positive integer"
[[ "$PAR" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--parallel wants positive integers separated by commas, e.g. 1,10,50"
IFS=, read -r -a LEVELS <<<"$PAR"
PAR_TOTAL=0
for l in "${LEVELS[@]}"; do PAR_TOTAL=$((PAR_TOTAL + l)); done
[[ "$POLL" =~ ^[1-9][0-9]*$ ]] || die "--poll wants whole seconds >= 1"
[[ "$QUIET_WAIT" =~ ^[0-9]+$ ]] || die "--quiet-wait wants seconds"

need_cmd jq
need_cmd curl
need_cmd python3
need_cmd wasmd "scripts/install-tools.sh wasmd"

A=hospital-a
B=hospital-b
DEVNET_SH="$EHRX_REPO_ROOT/scripts/devnet.sh"
TS=$(date -u +%Y%m%dT%H%M%SZ)
BENCH_DIR="$EHRX_DEVNET_DIR/bench"
WORK="$BENCH_DIR/run-$TS"
REPORT="$BENCH_DIR/bench-$TS.md"
RID=$(printf '%x' $(($(date +%s) % 0xffffff)))
T_SCRIPT0=$SECONDS
mkdir -p "$WORK/tx"
NOTES=()      # free-text lines for the report's notes section
note() { NOTES+=("$*"); warn "$*"; }

# ---- time helpers (no forks: EPOCHREALTIME) -----------------------------------------
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo "${t:0:-3}"; }
# stamp: prefix each line of stdin with the local time in ms.
stamp() {
    local line t
    while IFS= read -r line; do
        t=${EPOCHREALTIME/[.,]/}
        printf '%s %s\n' "${t:0:-3}" "$line"
    done
}
# ms -> "12.34 s"
fmt_s() { awk -v m="$1" 'BEGIN { if (m == "" || m == "-") print "-"; else printf "%.2f s", m / 1000 }'; }
# stats FILE -> "n p50 p95 min max mean" (ms, nearest-rank percentiles); n=0 -> dashes.
stats() {
    sort -n "$1" 2>/dev/null | awk '{ a[NR] = $1; s += $1 }
        END { if (NR == 0) { print "0 - - - - -"; exit }
              printf "%d %d %d %d %d %d\n", NR, a[int((NR * 50 + 99) / 100)],
                  a[int((NR * 95 + 99) / 100)], a[1], a[NR], s / NR }'
}
# gas_stats FILE -> "n median min max"
gas_stats() {
    sort -n "$1" 2>/dev/null | awk '{ a[NR] = $1 }
        END { if (NR == 0) { print "0 - - -"; exit }
              printf "%d %d %d %d\n", NR, a[int((NR + 1) / 2)], a[1], a[NR] }'
}

# block_ms CHAIN HEIGHT: the block header time (BFT time) in ms since the epoch.
block_ms() {
    local t
    t=$(curl -sf --max-time 5 "$(dn_rpc_url "$1")/block?height=$2" | jq -r '.result.block.header.time') || return 1
    date -d "$t" +%s%3N
}

# tx CHAIN HASH: the tx JSON (cached in $WORK/tx).
tx() {
    local f="$WORK/tx/$2.json"
    if [[ ! -s "$f" ]]; then
        dn_q "$1" tx "$2" >"$f" 2>/dev/null || { rm -f "$f"; return 1; }
    fi
    cat "$f"
}

# txs_search CHAIN QUERY: matching txs as a JSON array.
txs_search() {
    dn_q "$1" txs --query "$2" --limit 100 2>/dev/null | jq -c '.txs // []' || echo '[]'
}

# event_attr TXJSON TYPE KEY: first value.
event_attr() { dn_tx_event_attr "$1" "$2" "$3" | head -n1; }

# ---- 0. devnet ---------------------------------------------------------------------------
# Other users of the devnet (read-only look at the process table; nothing is signalled).
others() {
    pgrep -af 'deps/e2e-|scripts/test\.sh|scripts/demo\.sh|ehrx( .*)? reply-service' 2>/dev/null |
        grep -v "^$$ " | cut -c1-160 || true
}
step "quiet devnet (other e2e/demo/reply-service processes; up to ${QUIET_WAIT}s)"
t0=$SECONDS
while [[ -n "$(others)" ]] && ((SECONDS - t0 < QUIET_WAIT)); do
    ((SECONDS - t0 < 2 || (SECONDS - t0) % 60 < 5)) && log "waiting for: $(others | head -n3 | tr '\n' ';')"
    sleep 5
done
if [[ -n "$(others)" ]]; then
    note "started while other devnet users were running: $(others | head -n3 | tr '\n' ';')"
elif ((SECONDS - t0 >= 5)); then
    log "waited $(fmt_duration $((SECONDS - t0))) for the devnet to be quiet"
fi

step "devnet"
if ! "$DEVNET_SH" status >/dev/null 2>&1; then
    if [[ -f "$(dn_json_file)" && "$(dn_json '.complete')" == true ]] &&
        (($(dn_height "$A") > 0 && $(dn_height "$B") > 0)); then
        # Chains up, Hermes down: most likely someone's stop-relayer; give it back to them.
        log "chains up but the devnet is not healthy (Hermes stopped by another session?): waiting up to 3 min"
        t0=$SECONDS
        while ! "$DEVNET_SH" status >/dev/null 2>&1 && ((SECONDS - t0 < 180)); do sleep 5; done
    fi
    if ! "$DEVNET_SH" status >/dev/null 2>&1; then
        log "devnet not healthy: scripts/devnet.sh up"
        "$DEVNET_SH" up >&2
        note "the devnet was not healthy at the start: ran scripts/devnet.sh up"
    fi
fi
[[ "$(dn_json '.complete')" == true ]] || die "devnet.json is not complete"
for c in "$A" "$B"; do
    [[ "$(dn_json --arg c "$c" '.chains[$c].home')" != null ]] || die "$c is not in devnet.json"
done
if [[ -z "$(dn_json '.transfer.a_channel // empty')" ]]; then
    log "no ICS-20 channel yet: scripts/devnet.sh add-transfer-channel"
    t0=$SECONDS
    "$DEVNET_SH" add-transfer-channel >&2
    note "created the ICS-20 transfer channel in this run ($(fmt_duration $((SECONDS - t0))))"
fi
CH_A=$(dn_json --arg a "$A" --arg b "$B" '.chains[$a].partners[$b].channel_id')
CH_B=$(dn_json --arg a "$A" --arg b "$B" '.chains[$b].partners[$a].channel_id')
XCH_A=$(dn_json '.transfer.a_channel')
XCH_B=$(dn_json '.transfer.b_channel')
# Every requester asks as the devnet's clinician on $A (devnet.json): its key, made by ehrx.
CLINICIAN=$(dn_json --arg c "$A" '.chains[$c].clinician.id // empty')
CLINICIAN_KEY=$(dn_json --arg c "$A" '.chains[$c].clinician.key_file // empty')
[[ -n "$CLINICIAN" && -f "$CLINICIAN_KEY" ]] ||
    die "devnet.json names no clinician key for $A (a devnet from before clinician credentials): scripts/devnet.sh reset && scripts/devnet.sh up"
REG_A=$(dn_json --arg c "$A" '.chains[$c].contracts.registry')
REG_B=$(dn_json --arg c "$B" '.chains[$c].contracts.registry')
POLICY_B=$(dn_query_smart "$B" "$REG_B" '{"config":{}}' | jq -c .policy) || die "the config query on $B's registry failed"
EXCH_B=$(dn_json --arg c "$B" '.chains[$c].contracts.exchange')
API_B=$(dn_json --arg c "$B" '.chains[$c].api')
log "exchange channel $A $CH_A <-> $B $CH_B; ICS-20 channel $A $XCH_A <-> $B $XCH_B"
HERMES_PIDFILE=$(dn_json '.hermes.pid_file')
hermes_pid() { cat "$HERMES_PIDFILE" 2>/dev/null || echo none; }
HERMES_PID0=$(hermes_pid)

# ---- 5. wasm sizes (cheap, first) ---------------------------------------------------------
step "wasm artifacts"
ART="$EHRX_REPO_ROOT/artifacts"
if [[ ! -f "$ART/registry.wasm" || ! -f "$ART/exchange.wasm" ]]; then
    log "artifacts missing: scripts/build-wasm.sh"
    "$EHRX_REPO_ROOT/scripts/build-wasm.sh" >&2
fi
declare -A WASM_BYTES WASM_GZ WASM_SHA DEPLOYED_BYTES DEPLOYED_SHA
for w in registry exchange; do
    WASM_BYTES[$w]=$(stat -c %s "$ART/$w.wasm")
    WASM_GZ[$w]=$(gzip -9c "$ART/$w.wasm" | wc -c)
    WASM_SHA[$w]=$(sha256sum "$ART/$w.wasm" | cut -c1-16)
    log "$w.wasm: ${WASM_BYTES[$w]} bytes (gzip -9: ${WASM_GZ[$w]})"
    # The code the gas figures are measured against: what is deployed on hospital-a.
    DEPLOYED_BYTES[$w]="-"
    DEPLOYED_SHA[$w]="-"
    if wasmd query wasm code "$(dn_json --arg c "$A" --arg w "$w" '.chains[$c].code_ids[$w]')" \
        "$WORK/deployed-$w.wasm" --node "$(dn_node "$A")" >/dev/null 2>&1; then
        DEPLOYED_BYTES[$w]=$(stat -c %s "$WORK/deployed-$w.wasm")
        DEPLOYED_SHA[$w]=$(sha256sum "$WORK/deployed-$w.wasm" | cut -c1-16)
        rm -f "$WORK/deployed-$w.wasm"
    fi
    if [[ "${DEPLOYED_SHA[$w]}" != "${WASM_SHA[$w]}" ]]; then
        note "artifacts/$w.wasm (${WASM_SHA[$w]}) differs from the code deployed on the devnet (${DEPLOYED_SHA[$w]}): rebuilt since the devnet was deployed; gas figures are for the deployed code"
    fi
done

# ---- ehrx binary ------------------------------------------------------------------------
step "ehrx binary"
EHRX=$(dn_ehrx_bin release) || die "no ehrx binary: cargo build --release -p ehrx failed (or set EHRX_BIN)"
[[ -x "$EHRX" ]] || die "no ehrx binary at $EHRX"
log "ehrx: $EHRX"

# ---- accounts and ehrx sites ----------------------------------------------------------------
step "fresh accounts: $RUNS + $PAR_TOTAL requesters on $A, reply + store sites on $B"
ROOT="$WORK/sites"
mkdir -p "$ROOT"
# Synthetic patient; the requesting hospital writes it its own way (the custodian normalises
# the sealed details before it computes its own pseudonym).
cat >"$ROOT/patient-b.json" <<'EOF'
{"given": "Ilse", "family": "Brandt-Nowak", "birth_date": "1968-03-09", "ssn": "318-42-5570"}
EOF
cat >"$ROOT/patient-a.json" <<'EOF'
{"given": "ILSE", "family": "brandt-nowak ", "birth_date": "03/09/1968", "ssn": "318425570"}
EOF
cat >"$ROOT/bundle.json" <<'EOF'
{"resourceType": "Bundle", "type": "collection", "entry": [
 {"fullUrl": "urn:uuid:1a7d5e3c-9b2f-4c60-8e4a-6f0b2d9c5a01", "resource": {"resourceType": "Patient", "id": "p1", "name": [{"given": ["Ilse"], "family": "Brandt-Nowak"}], "birthDate": "1968-03-09"}},
 {"fullUrl": "urn:uuid:1a7d5e3c-9b2f-4c60-8e4a-6f0b2d9c5a02", "resource": {"resourceType": "Condition", "id": "c1", "code": {"text": "Essential hypertension"}, "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]}, "subject": {"reference": "urn:uuid:1a7d5e3c-9b2f-4c60-8e4a-6f0b2d9c5a01"}}},
 {"fullUrl": "urn:uuid:1a7d5e3c-9b2f-4c60-8e4a-6f0b2d9c5a03", "resource": {"resourceType": "MedicationStatement", "id": "m1", "status": "active", "medicationCodeableConcept": {"text": "Lisinopril 10 mg"}, "subject": {"reference": "urn:uuid:1a7d5e3c-9b2f-4c60-8e4a-6f0b2d9c5a01"}}}
]}
EOF

KEYS_FILE="$WORK/keys.txt"   # "chain name" per line, for the cleanup
: >"$KEYS_FILE"
# new_key CHAIN NAME -> address
new_key() {
    dn_wasmd "$1" keys add "$2" --keyring-backend "$DN_KEYRING" --output json >/dev/null 2>&1 ||
        die "wasmd keys add $2 on $1 failed"
    echo "$1 $2" >>"$KEYS_FILE"
    dn_key_addr "$1" "$2"
}

declare -A SITE_ADDR SITE_PUB
# make_site CHAIN NAME: key, ehrx keys, ehrx.toml in $ROOT/NAME. The hospital's records
# (custodian) key and pseudonym key are the devnet's (devnet.json .chains[].custodian).
make_site() {
    local chain=$1 name=$2 dir="$ROOT/$2" key="bench-$RID-$2" addr shown pub custodian
    mkdir -p "$dir"
    addr=$(new_key "$chain" "$key")
    shown=$("$EHRX" keys init --key-dir "$dir/keys")
    pub=$(sed -n '/^{/,/^}/p' <<<"$shown" | jq -c .)
    custodian=$(dn_json -c --arg c "$chain" '.chains[$c].custodian // empty')
    [[ -n "$custodian" ]] || die "devnet.json has no custodian keys for $chain (an older devnet): scripts/devnet.sh reset && scripts/devnet.sh up"
    cat >"$dir/ehrx.toml" <<EOF
node = "$(dn_json --arg c "$chain" '.chains[$c].node')"
chain_id = "$chain"
exchange = "$(dn_json --arg c "$chain" '.chains[$c].contracts.exchange')"
wasmd_home = "$(dn_home "$chain")"
key_name = "$key"
key_dir = "keys"
pseudonym_key_file = "$(jq -r .pseudonym_key_file <<<"$custodian")"
records_key_dir = "$(jq -r .records_key_dir <<<"$custodian")"
records_key = "$(jq -r .records_key <<<"$custodian")"
state_file = "reply-state.json"
poll_interval_secs = $POLL
EOF
    SITE_ADDR[$name]=$addr
    SITE_PUB[$name]=$pub
}

# register_msg NAME ROLE -> RegisterPeer JSON
register_msg() {
    jq -nc --arg a "${SITE_ADDR[$1]}" --argjson p "${SITE_PUB[$1]}" --arg d "bench-$RID-$1" --arg r "$2" \
        '{register_peer: {peer: {address: $a, signing_key: $p.signing_key, encryption_key: $p.encryption_key,
          device_id: $d, roles: [$r], valid_from: null, valid_until: null}}}'
}

make_site "$B" reply
make_site "$B" store
REQ=()
for i in $(seq 1 "$RUNS"); do make_site "$A" "req$i"; REQ+=("req$i"); done
TPR=()
for i in $(seq 1 "$PAR_TOTAL"); do make_site "$A" "tp$i"; TPR+=("tp$i"); done
# Each throughput requester asks as a clinician of its own (made by `ehrx clinician new` in its
# site, registered in the setup tx below): the partner's incoming quota allows one remote
# clinician 60 requests per window, so one shared clinician would be refused QuotaExceeded
# at high load, a policy refusal rather than a limit of the system.
declare -A SITE_CLINICIAN_MSG
for s in "${TPR[@]}"; do
    SITE_CLINICIAN_MSG[$s]=$(cd "$ROOT/$s" && "$EHRX" clinician new --id "bench-$RID-$s" \
        --clinician-key "$ROOT/$s/clinician.key" --purpose treatment 2>/dev/null | jq -c .) ||
        die "ehrx clinician new for $s failed"
done
XFER_FROM_KEY="bench-$RID-xfer"
XFER_FROM=$(new_key "$A" "$XFER_FROM_KEY")
XFER_TO=$(new_key "$B" "bench-$RID-xfer-rcv")
log "$((RUNS + PAR_TOTAL + 4)) keys made"

# setup_tx CHAIN FUND_ADDRS REGISTRY MSGS_JSONL: one tx signed by admin with a MsgMultiSend
# to every address and one RegisterPeer per line of MSGS_JSONL (faster than one tx each).
setup_tx() {
    local chain=$1 addrs=$2 registry=$3 msgs=$4 admin unsigned signed out code hash attempt n
    admin=$(dn_json --arg c "$chain" '.chains[$c].keys.admin')
    unsigned="$WORK/setup-$chain.unsigned.json"
    signed="$WORK/setup-$chain.signed.json"
    # shellcheck disable=SC2086
    wasmd tx bank multi-send "$admin" $addrs "100000000$DN_FEE_DENOM" --generate-only --chain-id "$chain" \
        --node "$(dn_node "$chain")" -o json >"$unsigned.send" 2>"$WORK/setup-$chain.err" ||
        { cat "$WORK/setup-$chain.err" >&2; return 1; }
    n=$(grep -c . <<<"$msgs" || true)
    jq -c --arg s "$admin" --arg c "$registry" --slurpfile m <(printf '%s\n' "$msgs") --arg g $((500000 + 800000 * n)) \
        '.body.messages += [$m[] | {"@type": "/cosmwasm.wasm.v1.MsgExecuteContract", sender: $s,
            contract: $c, msg: ., funds: []}] | .auth_info.fee.gas_limit = $g' "$unsigned.send" >"$unsigned"
    for attempt in 1 2 3 4 5; do
        wasmd tx sign "$unsigned" --from admin --home "$(dn_home "$chain")" --keyring-backend "$DN_KEYRING" \
            --chain-id "$chain" --node "$(dn_node "$chain")" --output-document "$signed" 2>"$WORK/setup-$chain.err" ||
            { cat "$WORK/setup-$chain.err" >&2; return 1; }
        out=$(wasmd tx broadcast "$signed" --node "$(dn_node "$chain")" -o json 2>>"$WORK/setup-$chain.err") || true
        code=$(jq -r '.code // "x"' <<<"$out" 2>/dev/null || echo x)
        if [[ "$code" == 0 ]]; then break; fi
        if [[ "$code" == 32 || "$code" == x ]] && ((attempt < 5)); then sleep 1; continue; fi
        printf 'setup tx on %s failed: %s\n' "$chain" "$out" >&2
        return 1
    done
    hash=$(jq -r .txhash <<<"$out")
    dn_wait_tx "$chain" "$hash" >"$WORK/tx/$hash.json"
}

step "fund and register: one admin tx per chain (MsgMultiSend + RegisterPeer x n)"
# The last latency requester is registered in a tx of its own: its gas is the RegisterPeer figure.
LAST_REQ=${REQ[-1]}
msgs_a=""
for s in "${REQ[@]}" "${TPR[@]}"; do
    [[ "$s" == "$LAST_REQ" ]] && continue
    msgs_a+="$(register_msg "$s" request)"$'\n'
done
for s in "${TPR[@]}"; do msgs_a+="${SITE_CLINICIAN_MSG[$s]}"$'\n'; done
addrs_a="$XFER_FROM"
for s in "${REQ[@]}" "${TPR[@]}"; do addrs_a+=" ${SITE_ADDR[$s]}"; done
msgs_b="$(register_msg reply reply)"$'\n'"$(register_msg store store)"
setup_tx "$A" "$addrs_a" "$REG_A" "${msgs_a%$'\n'}" >/dev/null &
pid_a=$!
setup_tx "$B" "${SITE_ADDR[reply]} ${SITE_ADDR[store]}" "$REG_B" "$msgs_b" >/dev/null &
pid_b=$!
wait "$pid_a" || die "setup tx on $A failed (above)"
wait "$pid_b" || die "setup tx on $B failed (above)"
REGISTER_TX=$(dn_execute "$A" admin "$REG_A" "$(register_msg "$LAST_REQ" request)")
REGISTER_HASH=$(jq -r .txhash <<<"$REGISTER_TX")
printf '%s\n' "$REGISTER_TX" >"$WORK/tx/$REGISTER_HASH.json"
H0_A=$(dn_height "$A")

# ---- store a record on B, start the reply service ---------------------------------------------
step "store a record on $B (ehrx store)"
"$EHRX" --config "$ROOT/store/ehrx.toml" store --bundle "$ROOT/bundle.json" \
    --demographics "$ROOT/patient-b.json" >"$WORK/store.json" 2>"$WORK/store.err" ||
    { cat "$WORK/store.err" >&2; die "ehrx store failed"; }
STORE_HASH=$(jq -r ".txhashes[0]" "$WORK/store.json")
CIPHERTEXT_BYTES=$(jq -r .sealed_bytes "$WORK/store.json")
log "record stored (ciphertext $CIPHERTEXT_BYTES bytes, tx $STORE_HASH)"

step "reply service on $B (poll ${POLL}s)"
# Seed its state file with every request already pending on B (other sessions' requests):
# the service skips requests in its state file, so it never answers those.
seed='{}'
after=null
while :; do
    page=$(dn_query_smart "$B" "$EXCH_B" "$(jq -nc --argjson a "$after" '{pending_incoming: {start_after: $a, limit: 100}}')") ||
        die "PendingIncoming query on $B failed"
    seed=$(jq -c --argjson p "$page" --arg now "$(date +%s)" \
        '. + ([$p.requests[] | {key: "\(.partner_id)/\(.body.request_id)",
              value: {outcome: "bench-skip", txhash: null, at: ($now | tonumber)}}] | from_entries)' <<<"$seed")
    (($(jq '.requests | length' <<<"$page") >= 100)) || break
    after=$(jq -c '.requests[-1] | [.partner_id, .body.request_id]' <<<"$page")
done
jq -n --argjson h "$seed" '{handled: $h}' >"$ROOT/reply/reply-state.json"
chmod 600 "$ROOT/reply/reply-state.json"
log "$(jq length <<<"$seed") request(s) already pending on $B: left to their owners"
RS_LOG="$WORK/reply-service.log"
"$EHRX" --config "$ROOT/reply/ehrx.toml" reply-service > >(stamp >"$RS_LOG") 2>&1 &
RS_PID=$!
cleanup() {
    if [[ -n "${RS_PID:-}" ]] && kill -0 "$RS_PID" 2>/dev/null; then
        kill "$RS_PID" 2>/dev/null || true
        wait "$RS_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
for _ in $(seq 1 100); do
    grep -q "answering requests" "$RS_LOG" 2>/dev/null && break
    kill -0 "$RS_PID" 2>/dev/null || { cat "$RS_LOG" >&2; die "the reply service exited"; }
    sleep 0.2
done
grep -q "answering requests" "$RS_LOG" || die "the reply service did not start (log: $RS_LOG)"

# request NAME TAG: one `ehrx request` from site NAME; files $WORK/req/TAG.{out,err,rc,t}
# (err lines stamped with local ms). Returns ehrx's exit status.
mkdir -p "$WORK/req"
request() {
    local name=$1 tag=$2 f="$WORK/req/$2" t0 t1 rc clinician=$CLINICIAN clinician_key=$CLINICIAN_KEY
    if [[ -f "$ROOT/$name/clinician.key" ]]; then
        clinician="bench-$RID-$name"
        clinician_key="$ROOT/$name/clinician.key"
    fi
    t0=$(now_ms)
    {
        timeout 240 "$EHRX" --config "$ROOT/$name/ehrx.toml" request --partner "$B" \
            --clinician "$clinician" --clinician-key "$clinician_key" --purpose treatment \
            --demographics "$ROOT/patient-a.json" --out "$ROOT/$name/history-$tag.json" --wait-secs 180 2>&1 >"$f.out" &&
            echo 0 >"$f.rc" || echo $? >"$f.rc"
    } | stamp >"$f.err"
    t1=$(now_ms)
    rc=$(cat "$f.rc")
    echo "$t0 $t1" >"$f.t"
    return "$rc"
}

# ---- 1. latency -----------------------------------------------------------------------------
step "latency: $RUNS sequential exchanges (fresh requester each)"
: >"$WORK/latency.ms"
LAT_FAIL=0
for i in $(seq 1 "$RUNS"); do
    rc=0
    request "req$i" "lat$i" || rc=$?
    read -r t0 t1 <"$WORK/req/lat$i.t"
    if ((rc == 0)); then
        echo $((t1 - t0)) >>"$WORK/latency.ms"
        log "run $i/$RUNS: $(fmt_s $((t1 - t0)))"
    else
        LAT_FAIL=$((LAT_FAIL + 1))
        note "latency run $i failed (ehrx exit $rc): $(tail -n1 "$WORK/req/lat$i.err" | cut -d' ' -f2-)"
    fi
    # Right after the first exchange, the same requester again: the rate limit soft-rejects it.
    if ((i == 1)); then
        rc=0
        request req1 softreject || rc=$?
        SOFT_HASH=$(grep -o 'tx [0-9A-F]\{64\}' "$WORK/req/softreject.err" | head -n1 | cut -c4- || true)
        if ((rc == 4)) && [[ -n "$SOFT_HASH" ]]; then
            log "second request of req1 within the window: soft-rejected (tx $SOFT_HASH)"
        else
            note "expected a rate-limited soft rejection (exit 4), got exit $rc"
        fi
    fi
done

# ---- 2. throughput -----------------------------------------------------------------------------
# One round per level: that many fresh requesters start at once, one exchange each.
: >"$WORK/parallel.ms"
: >"$WORK/levels.tsv"   # in_flight ok failures wall_ms per_min p50_ms
next_tp=0
for level in "${LEVELS[@]}"; do
    step "throughput: $level request(s) in flight, one exchange per requester"
    pids=()
    round=("${TPR[@]:next_tp:level}")
    next_tp=$((next_tp + level))
    T_PAR0=$(now_ms)
    for s in "${round[@]}"; do
        request "$s" "$s" &
        pids+=($!)
    done
    ok=0
    for p in "${pids[@]}"; do
        if wait "$p"; then ok=$((ok + 1)); fi
    done
    wall=$(($(now_ms) - T_PAR0))
    : >"$WORK/level-$level.ms"
    for s in "${round[@]}"; do
        read -r t0 t1 <"$WORK/req/$s.t"
        if [[ "$(cat "$WORK/req/$s.rc")" == 0 ]]; then echo $((t1 - t0)) >>"$WORK/level-$level.ms"; else
            note "requester $s ($level in flight) failed (ehrx exit $(cat "$WORK/req/$s.rc")): $(tail -n1 "$WORK/req/$s.err" | cut -d' ' -f2-)"
        fi
    done
    cat "$WORK/level-$level.ms" >>"$WORK/parallel.ms"
    rate=$(awk -v k="$ok" -v w="$wall" 'BEGIN { printf "%.1f", k / w * 60000 }')
    read -r _n lp50 _rest < <(stats "$WORK/level-$level.ms")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$level" "$ok" $((level - ok)) "$wall" "$rate" "$lp50" >>"$WORK/levels.tsv"
    log "$ok/$level completed in $(fmt_s "$wall"): $rate exchanges/min, p50 $(fmt_s "$lp50")"
done

cleanup   # the reply service is not needed any more
RS_PID=""
MY_RIDS=$(cat "$WORK"/req/*.out 2>/dev/null | jq -r '.request_id // empty' 2>/dev/null | sort -u)
FOREIGN=$(sed -n 's/.*request \([^ ]*\) from [^:]*: answered \([^ ]*\) .*/\1 \2/p' "$RS_LOG" |
    grep -vwFf <(echo "${MY_RIDS:-none}") || true)
if [[ -n "$FOREIGN" ]]; then
    note "the bench's reply service answered $(wc -l <<<"$FOREIGN") request(s) that were not its own (another session's requests to $B): $(tr '\n' ' ' <<<"$FOREIGN")"
fi
if [[ -n "$(others)" ]]; then
    note "other devnet users were running during the exchange phases: $(others | head -n3 | tr '\n' ';')"
fi

# ---- 3. ICS-20 baseline --------------------------------------------------------------------------
step "ICS-20: $RUNS transfers of 1$DN_FEE_DENOM $A $XCH_A -> $B: one way (balance up on $B) and round trip (acknowledgement on $A), polled every 100 ms"
IBC_DENOM="ibc/$(printf 'transfer/%s/%s' "$XCH_B" "$DN_FEE_DENOM" | sha256sum | cut -c1-64 | tr a-f A-F)"
RPC_A=$(dn_json --arg c "$A" '.chains[$c].rpc')
balance() {
    curl -sf --max-time 2 "$API_B/cosmos/bank/v1beta1/balances/$XFER_TO/by_denom?denom=${IBC_DENOM/\//%2F}" |
        jq -r '.balance.amount // "0"' 2>/dev/null || echo "?"
}
# acked SEQ: whether A has indexed the acknowledgement of the transfer packet SEQ.
acked() {
    local q="\"acknowledge_packet.packet_src_channel='$XCH_A' AND acknowledge_packet.packet_sequence='$1'\""
    [[ "$(curl -sf --max-time 2 -G "$RPC_A/tx_search" --data-urlencode "query=$q" --data-urlencode per_page=1 |
        jq -r '.result.total_count // "0"' 2>/dev/null)" =~ ^[1-9] ]]
}
: >"$WORK/transfer.ms"
: >"$WORK/transfer-rt.ms"
: >"$WORK/transfer.hashes"
XFER_FAIL=0
for i in $(seq 1 "$RUNS"); do
    b0=$(balance)
    [[ "$b0" =~ ^[0-9]+$ ]] || { note "transfer $i: cannot read the balance on $B ($API_B)"; XFER_FAIL=$((XFER_FAIL + 1)); continue; }
    out=$(wasmd tx ibc-transfer transfer transfer "$XCH_A" "$XFER_TO" "1$DN_FEE_DENOM" --from "$XFER_FROM_KEY" \
        --home "$(dn_home "$A")" --keyring-backend "$DN_KEYRING" --chain-id "$A" --node "$(dn_node "$A")" \
        "${DN_GAS_FLAGS[@]}" -y -o json 2>"$WORK/transfer-$i.err") || true
    # The clock starts when the node has taken the transaction (CheckTx passed), so the
    # CLI's own start-up and simulation are not counted against ICS-20.
    t0=$(now_ms)
    code=$(jq -r '.code // "x"' <<<"$out" 2>/dev/null || echo x)
    if [[ "$code" != 0 ]]; then
        note "transfer $i: broadcast failed (code $code): $(head -c 300 "$WORK/transfer-$i.err") $out"
        XFER_FAIL=$((XFER_FAIL + 1))
        continue
    fi
    hash=$(jq -r .txhash <<<"$out")
    echo "$hash" >>"$WORK/transfer.hashes"
    ok=0
    while (($(now_ms) - t0 < 90000)); do
        b=$(balance)
        if [[ "$b" =~ ^[0-9]+$ ]] && ((b > b0)); then ok=1; break; fi
        sleep 0.1
    done
    t1=$(now_ms)
    if ((!ok)); then
        note "transfer $i: balance on $B did not increase within 90 s"
        XFER_FAIL=$((XFER_FAIL + 1))
        continue
    fi
    echo $((t1 - t0)) >>"$WORK/transfer.ms"
    seq=""
    txj=$(tx "$A" "$hash") && seq=$(event_attr "$txj" send_packet packet_sequence)
    ok=0
    while [[ -n "$seq" ]] && (($(now_ms) - t0 < 90000)); do
        if acked "$seq"; then ok=1; break; fi
        sleep 0.1
    done
    t2=$(now_ms)
    if ((ok)); then
        echo $((t2 - t0)) >>"$WORK/transfer-rt.ms"
        log "transfer $i/$RUNS: one way $(fmt_s $((t1 - t0))), round trip $(fmt_s $((t2 - t0)))"
    else
        note "transfer $i: no acknowledgement on $A within 90 s"
        XFER_FAIL=$((XFER_FAIL + 1))
    fi
done

# ---- 6. install time ------------------------------------------------------------------------------
step "tool install time"
declare -A COLD
for piece in apt rust-target wasmd hermes cosmwasm-check wasm-opt; do
    COLD[$piece]="-"
    f="$EHRX_TOOLS/logs/$piece.took"
    [[ -f "$f" ]] || continue
    read -r secs how when <"$f" || continue
    COLD[$piece]="$(fmt_duration "$secs") ($how ${when%%T*})"
done
WARM="-"
if ((SKIP_INSTALL == 0)); then
    t0=$(now_ms)
    if "$EHRX_REPO_ROOT/scripts/install-tools.sh" >"$WORK/install-tools-warm.log" 2>&1; then
        WARM=$(fmt_s $(($(now_ms) - t0)))
        log "install-tools.sh (warm): $WARM"
    else
        note "scripts/install-tools.sh failed (log $WORK/install-tools-warm.log)"
    fi
fi

# ---- 4. gas, relayer txs, stage breakdown ------------------------------------------------------
HIST_MD="$WORK/histories.md"
if [[ -n "$HISTORIES" ]]; then
    step "patient histories ($HISTORIES): one exchange each, sizes, gas, peak RSS (bench_histories)"
    [[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is needed for the peak RSS: apt-get install time"
    EHRX_BIN="$EHRX" cargo run -q -p ehr-tests --bin bench_histories -- --kinds "$HISTORIES" \
        --out "$HIST_MD" >/dev/null 2>"$WORK/histories.log" ||
        { note "the histories phase failed: $(tail -n 3 "$WORK/histories.log" | tr '\n' ' ')"; rm -f "$HIST_MD"; }
    step_done
fi

step "gas from the tx JSON; relayer txs; per-stage breakdown"
GAS="$WORK/gas"
mkdir -p "$GAS"
: >"$GAS/relayer-msgs.txt"
gas_of() { jq -r '.gas_used' <<<"$1"; }
add_gas() { [[ -n "$2" && "$2" != null ]] && echo "$2" >>"$GAS/$1"; }
# The tx on CHAIN with event TYPE (recv_packet / acknowledge_packet) for CHANNEL/SEQ;
# CHANNEL is the dst channel for recv_packet, the src channel for acknowledge_packet.
relay_tx() {
    local chain=$1 type=$2 channel=$3 seq=$4 side
    [[ $type == recv_packet ]] && side=dst || side=src
    txs_search "$chain" "$type.packet_${side}_channel='$channel' AND $type.packet_sequence='$seq'" | jq -c '.[0] // empty'
}
# record a relayer tx's gas (only when it carries a single packet message) and its message list
relay_gas() {
    local file=$1 txj=$2 n
    [[ -n "$txj" ]] || return 0
    n=$(jq '[.tx.body.messages[]."@type" | select(test("MsgRecvPacket|MsgAcknowledgement|MsgTimeout"))] | length' <<<"$txj")
    jq -r --arg f "$file" '"\($f)\t" + ([.tx.body.messages[]."@type" | sub(".*\\.Msg"; "")] | join("+"))' <<<"$txj" >>"$GAS/relayer-msgs.txt"
    ((n == 1)) && add_gas "$file" "$(gas_of "$txj")"
    return 0
}

add_gas register "$(gas_of "$REGISTER_TX")"
txj=$(tx "$B" "$STORE_HASH") && add_gas store "$(gas_of "$txj")"
if [[ -n "${SOFT_HASH:-}" ]] && txj=$(tx "$A" "$SOFT_HASH"); then add_gas softreject "$(gas_of "$txj")"; fi

# SubmitReply hashes by request id, from the reply service log.
declare -A REPLY_HASH
while read -r rid h; do REPLY_HASH[$rid]=$h; done < <(
    sed -n 's/.*request \([^ ]*\) from [^:]*: answered .*(tx \([0-9A-F]\{64\}\)).*/\1 \2/p' "$RS_LOG")

: >"$WORK/breakdown.tsv"
for tag in $(for i in $(seq 1 "$RUNS"); do echo "lat$i"; done) "${TPR[@]}"; do
    f="$WORK/req/$tag"
    [[ "$(cat "$f.rc" 2>/dev/null)" == 0 ]] || continue
    read -r t0 t1 <"$f.t"
    rid=$(jq -r .request_id "$f.out")
    req_hash=$(grep -o 'sent to .* (tx [0-9A-F]\{64\})' "$f.err" | grep -o '[0-9A-F]\{64\}' | head -n1)
    if [[ -z "$req_hash" ]] || ! txj=$(tx "$A" "$req_hash"); then continue; fi
    add_gas request "$(gas_of "$txj")"
    req_h=$(jq -r .height <<<"$txj")
    req_seq=$(event_attr "$txj" send_packet packet_sequence)
    rep_hash=${REPLY_HASH[$rid]:-}
    rep_txj=""
    if [[ -n "$rep_hash" ]] && rep_txj=$(tx "$B" "$rep_hash"); then
        add_gas reply "$(gas_of "$rep_txj")"
    fi
    # Relayer txs and the breakdown only for the sequential runs (no batching of packets).
    [[ $tag == lat* ]] || continue
    recv_b=$(relay_tx "$B" recv_packet "$CH_B" "$req_seq")
    ack_a=$(relay_tx "$A" acknowledge_packet "$CH_A" "$req_seq")
    relay_gas recv_req "$recv_b"
    relay_gas ack_req "$ack_a"
    [[ -n "$rep_txj" ]] || continue
    rep_h=$(jq -r .height <<<"$rep_txj")
    rep_seq=$(event_attr "$rep_txj" send_packet packet_sequence)
    recv_a=$(relay_tx "$A" recv_packet "$CH_A" "$rep_seq")
    ack_b=$(relay_tx "$B" acknowledge_packet "$CH_B" "$rep_seq")
    relay_gas recv_reply "$recv_a"
    relay_gas ack_reply "$ack_b"
    [[ -n "$recv_b" && -n "$recv_a" ]] || continue
    bt_req=$(block_ms "$A" "$req_h") || continue
    bt_recv_b=$(block_ms "$B" "$(jq -r .height <<<"$recv_b")") || continue
    bt_rep=$(block_ms "$B" "$rep_h") || continue
    bt_recv_a=$(block_ms "$A" "$(jq -r .height <<<"$recv_a")") || continue
    t_ans=$(grep -m1 "request $rid: answered" "$f.err" | cut -d' ' -f1)
    [[ -n "$t_ans" ]] || t_ans=$t1
    # submit | relay A->B | reply service | relay B->A | seen answered | retrieve+decrypt+write
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tag" $((bt_req - t0)) $((bt_recv_b - bt_req)) \
        $((bt_rep - bt_recv_b)) $((bt_recv_a - bt_rep)) $((t_ans - bt_recv_a)) $((t1 - t_ans)) >>"$WORK/breakdown.tsv"
done

# RetrieveReply: not printed by ehrx; find it by action and sender.
senders=$(for s in "${REQ[@]}" "${TPR[@]}"; do echo "${SITE_ADDR[$s]}"; done | jq -R . | jq -sc .)
txs_search "$A" "wasm.action='retrieve_reply' AND tx.height>=$H0_A" |
    jq -r --argjson s "$senders" '.[] | select(.tx.body.messages[0].sender as $x | any($s[]; . == $x)) | .gas_used' \
        >>"$GAS/retrieve"

# ICS-20: MsgTransfer on A, MsgRecvPacket on B, MsgAcknowledgement on A; relay A->B leg.
: >"$WORK/transfer-relay.ms"
while read -r h; do
    txj=$(tx "$A" "$h") || continue
    add_gas transfer "$(gas_of "$txj")"
    seq=$(event_attr "$txj" send_packet packet_sequence)
    recv_b=$(relay_tx "$B" recv_packet "$XCH_B" "$seq")
    ack_a=$(relay_tx "$A" acknowledge_packet "$XCH_A" "$seq")
    relay_gas recv_ics20 "$recv_b"
    relay_gas ack_ics20 "$ack_a"
    if [[ -n "$recv_b" ]]; then
        a_ms=$(block_ms "$A" "$(jq -r .height <<<"$txj")") && b_ms=$(block_ms "$B" "$(jq -r .height <<<"$recv_b")") &&
            echo $((b_ms - a_ms)) >>"$WORK/transfer-relay.ms"
    fi
done <"$WORK/transfer.hashes"

# Block time: mean over the last 100 blocks of each chain.
declare -A BLOCK_MS
for c in "$A" "$B"; do
    h=$(dn_height "$c")
    if ((h > 101)) && e=$(block_ms "$c" "$h") && s=$(block_ms "$c" $((h - 100))); then
        BLOCK_MS[$c]=$(((e - s) / 100))
    else
        BLOCK_MS[$c]="-"
    fi
done

# ---- cleanup of the keyring entries ----------------------------------------------------------------
if ((KEEP_KEYS == 0)); then
    while read -r c name; do
        dn_wasmd "$c" keys delete "$name" -y --keyring-backend "$DN_KEYRING" >/dev/null 2>&1 </dev/null || true
    done <"$KEYS_FILE"
fi
step_done
if [[ "$(hermes_pid)" != "$HERMES_PID0" ]]; then
    note "Hermes was restarted during the run (pid $HERMES_PID0 -> $(hermes_pid)): figures may include a relayer outage"
fi
RUNTIME=$((SECONDS - T_SCRIPT0))

# ---- report ------------------------------------------------------------------------------------------
p50_of() { local _n p50 _r; read -r _n p50 _r < <(stats "$1"); echo "$p50"; }
ratio_p50() {
    awk -v a="$(p50_of "$WORK/latency.ms")" -v b="$(p50_of "$WORK/transfer-rt.ms")" \
        'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'
}
# write_json FILE: the figures of this run, machine-readable (ms figures as seconds).
write_json() {
    local gas_json='{}' k n med _mn _mx
    for k in store request softreject reply retrieve register recv_req ack_req recv_reply ack_reply \
        transfer recv_ics20 ack_ics20; do
        read -r n med _mn _mx < <(gas_stats "$GAS/$k")
        gas_json=$(jq -c --arg k "$k" --arg n "$n" --arg m "$med" \
            '. + {($k): {n: ($n | tonumber? // 0), median: ($m | tonumber? // null)}}' <<<"$gas_json")
    done
    secs() { awk -v m="$1" 'BEGIN { if (m == "-" || m == "") print "null"; else printf "%.3f", m / 1000 }'; }
    p95_of() { local _n _p50 p95 _r; read -r _n _p50 p95 _r < <(stats "$1"); echo "$p95"; }
    jq -n --arg when "$(date -u -Is)" --arg cmd "scripts/bench.sh ${ORIG_ARGS[*]}" \
        --arg commit "$(git -C "$EHRX_REPO_ROOT" rev-parse --short HEAD)" --arg cores "$(nproc)" \
        --argjson ep50 "$(secs "$(p50_of "$WORK/latency.ms")")" --argjson ep95 "$(secs "$(p95_of "$WORK/latency.ms")")" \
        --argjson rt "$(secs "$(p50_of "$WORK/transfer-rt.ms")")" --argjson ow "$(secs "$(p50_of "$WORK/transfer.ms")")" \
        --arg ratio "$(ratio_p50)" --argjson lf "$LAT_FAIL" --argjson xf "$XFER_FAIL" --argjson runs "$RUNS" \
        --argjson gas "$gas_json" \
        --argjson wasm "$(jq -n --arg r "${WASM_BYTES[registry]}" --arg e "${WASM_BYTES[exchange]}" \
            '{registry: ($r | tonumber? // null), exchange: ($e | tonumber? // null)}')" \
        --argjson levels "$(awk -F'\t' '{ printf "{\"in_flight\":%s,\"completed\":%s,\"failures\":%s,\"wall_s\":%.3f,\"per_min\":%s,\"p50_s\":%s}\n",
                $1, $2, $3, $4 / 1000, $5, ($6 == "-" ? "null" : sprintf("%.3f", $6 / 1000)) }' "$WORK/levels.tsv" | jq -sc .)" \
        '{when: $when, command: $cmd, commit: $commit, cores: ($cores | tonumber), runs: $runs,
          exchange_p50_s: $ep50, exchange_p95_s: $ep95, exchange_failures: $lf,
          ics20_roundtrip_p50_s: $rt, ics20_oneway_p50_s: $ow, ics20_failures: $xf,
          ratio_p50: ($ratio | tonumber? // null), exchanges_per_min: $levels,
          gas_median: $gas, wasm_bytes: $wasm}'
}
# row LABEL FILE: a Markdown table row "| label | n | p50 | p95 | min | max | mean |"
row() {
    local n p50 p95 mn mx mean
    read -r n p50 p95 mn mx mean < <(stats "$2")
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$n" "$(fmt_s "$p50")" "$(fmt_s "$p95")" \
        "$(fmt_s "$mn")" "$(fmt_s "$mx")" "$(fmt_s "$mean")"
}
gas_row() {
    local n med mn mx msgs=""
    read -r n med mn mx < <(gas_stats "$GAS/$2")
    if [[ -n "${4:-}" ]]; then
        msgs=$(awk -F'\t' -v f="$4" '$1 == f { print $2 }' "$GAS/relayer-msgs.txt" | sort | uniq -c | sort -rn |
            awk '{ printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1 }')
    fi
    printf '| %s | %s | %s | %s | %s |\n' "$1" "$n" "$med" "$([[ $n == 0 ]] && echo - || echo "$mn – $mx")" \
        "${3}${msgs:+ (txs: $msgs)}"
}
col_median() {  # col_median COL: median of a breakdown column
    cut -f"$1" "$WORK/breakdown.tsv" | sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "-" }'
}

{
    printf '# ehrx benchmarks (%s)\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf -- '- command: `scripts/bench.sh%s` (script runtime %s)\n' "$( ((${#ORIG_ARGS[@]})) && printf ' %q' "${ORIG_ARGS[@]}")" "$(fmt_duration "$RUNTIME")"
    printf -- '- machine: %s cores (%s), %s GiB RAM, %s\n' "$(nproc)" \
        "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" \
        "$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)" "$(uname -sr)"
    printf -- '- repo: %s (%s)\n' "$(git -C "$EHRX_REPO_ROOT" rev-parse --short HEAD)" \
        "$(git -C "$EHRX_REPO_ROOT" log -1 --format=%cs)"
    printf -- '- devnet: wasmd %s, %s, event source %s; measured block time %s ms (%s), %s ms (%s), mean of the last 100 blocks\n' \
        "$(dn_json '.wasmd.version')" "$(dn_json '.hermes.version')" \
        "$(grep -m1 '^event_source' "$(dn_json '.hermes.config')" | sed 's/^event_source = //')" \
        "${BLOCK_MS[$A]}" "$A" "${BLOCK_MS[$B]}" "$B"
    printf -- '- Hermes clear_interval: %s blocks; ehrx poll interval (request and reply service): %s s\n' \
        "$(grep -m1 '^clear_interval' "$(dn_json '.hermes.config')" | awk '{ print $3 }')" "$POLL"
    printf -- '- exchange channel %s %s <-> %s %s; ICS-20 channel %s <-> %s; stored record: ciphertext %s bytes\n' \
        "$A" "$CH_A" "$B" "$CH_B" "$XCH_A" "$XCH_B" "$CIPHERTEXT_BYTES"
    printf -- '- percentiles: nearest rank (p95 of n < 20 samples is the maximum)\n\n'

    printf '## Latency: request submitted -> decrypted reply written, vs ICS-20\n\n'
    printf '| what | n | p50 | p95 | min | max | mean |\n|---|---|---|---|---|---|---|\n'
    row "ehrx exchange (\`ehrx request\` wall time, sequential, fresh requester each)" "$WORK/latency.ms"
    row "ICS-20 one way (MsgTransfer taken by the node -> balance up on $B)" "$WORK/transfer.ms"
    row "ICS-20 round trip (MsgTransfer taken by the node -> acknowledgement indexed on $A)" "$WORK/transfer-rt.ms"
    row "exchange under load (every level of $PAR in flight, per requester)" "$WORK/parallel.ms"
    printf '\nFailures: exchange %s/%s, ICS-20 %s/%s. Ratio of the p50s, exchange / ICS-20 round trip: **%s**.\n\n' \
        "$LAT_FAIL" "$RUNS" "$XFER_FAIL" "$RUNS" "$(ratio_p50)"
    runs_s() { awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), $1 / 1000 }' "$1"; }
    printf 'Runs in order (s): exchange %s; ICS-20 %s; under load %s.\n\n' \
        "$(runs_s "$WORK/latency.ms")" "$(runs_s "$WORK/transfer.ms")" "$(runs_s "$WORK/parallel.ms")"

    printf '### Where the exchange time goes (median of the sequential runs, ms)\n\n'
    printf 'Stage boundaries are block header (BFT) times of the txs involved, so each boundary is\n'
    printf 'only as precise as a block (~%s ms); the stages add up to the total.\n\n' "${BLOCK_MS[$A]}"
    printf '| stage | median |\n|---|---|\n'
    printf '| submit: ehrx start -> SubmitRequest block on %s | %s |\n' "$A" "$(col_median 2)"
    printf '| relay A->B: SubmitRequest block -> MsgRecvPacket block on %s | %s |\n' "$B" "$(col_median 3)"
    printf '| reply service: RecvPacket block -> SubmitReply block on %s | %s |\n' "$B" "$(col_median 4)"
    printf '| relay B->A: SubmitReply block -> MsgRecvPacket block on %s | %s |\n' "$A" "$(col_median 5)"
    printf '| requester notices "answered" (status poll) | %s |\n' "$(col_median 6)"
    printf '| RetrieveReply tx + verify + decrypt + write | %s |\n' "$(col_median 7)"
    read -r _n rp50 _rest < <(stats "$WORK/transfer-relay.ms")
    printf '\nSame relay leg for ICS-20 (MsgTransfer block on %s -> MsgRecvPacket block on %s): median %s ms (n=%s).\n\n' \
        "$A" "$B" "$rp50" "$_n"

    printf '## Throughput\n\n'
    printf 'Each level: that many fresh requesters start at once, one exchange each, each as its own clinician. Policy in force (registry defaults): 1 request per requesting peer per 60 s; on the partner, %s requests per partner and %s per remote clinician per %s s.\n\n' \
        "$(jq -r .incoming_per_partner_count <<<"$POLICY_B")" "$(jq -r .incoming_per_remote_requester_count <<<"$POLICY_B")" \
        "$(jq -r .incoming_window_secs <<<"$POLICY_B")"
    printf '| in flight | completed | failures | wall time | exchanges/min | p50 per exchange |\n|---|---|---|---|---|---|\n'
    while IFS=$'\t' read -r lv ok fail wall rate lp50; do
        printf '| %s | %s | %s | %s | **%s** | %s |\n' "$lv" "$ok" "$fail" "$(fmt_s "$wall")" "$rate" "$(fmt_s "$lp50")"
    done <"$WORK/levels.tsv"
    printf '\n'

    printf '## Gas used per transaction type\n\n'
    printf '| tx | n | gas_used (median) | min – max | notes |\n|---|---|---|---|---|\n'
    gas_row "StoreRecord ($B)" store "ciphertext $CIPHERTEXT_BYTES bytes"
    gas_row "SubmitRequest ($A)" request "accepted, sends the request packet"
    gas_row "SubmitRequest soft-rejected (RateLimited)" softreject "tx succeeds, outcome=rejected, strike recorded"
    gas_row "SubmitReply ($B, reply service)" reply "records found, sends the reply packet"
    gas_row "RetrieveReply ($A)" retrieve ""
    gas_row "registry RegisterPeer" register "single-message tx by the registry admin"
    gas_row "Hermes: RecvPacket request on $B" recv_req "single-packet txs only" recv_req
    gas_row "Hermes: Acknowledgement request on $A" ack_req "" ack_req
    gas_row "Hermes: RecvPacket reply on $A" recv_reply "" recv_reply
    gas_row "Hermes: Acknowledgement reply on $B" ack_reply "" ack_reply
    gas_row "ICS-20 MsgTransfer ($A)" transfer "1$DN_FEE_DENOM"
    gas_row "Hermes: RecvPacket ICS-20 on $B" recv_ics20 "" recv_ics20
    gas_row "Hermes: Acknowledgement ICS-20 on $A" ack_ics20 "" ack_ics20
    printf '\nHermes txs usually bundle a MsgUpdateClient with the packet message; gas_used is for the whole tx.\n\n'

    if [[ -s "$HIST_MD" ]]; then
        printf '## Patient histories (issue 9): one exchange each through ehrx\n\n'
        cat "$HIST_MD"
        printf '\nLatency is `ehrx request` from start to the validated history written; the store is\n'
        printf 'timed apart. Peak RSS of ehrx is its own VmHWM (EHRX_REPORT_PEAK_RSS); with its wasmd\n'
        printf 'processes it is GNU time'"'"'s maximum resident set size of the process tree (the largest).\n\n'
    fi
    printf '## Wasm sizes\n\n| artifact | bytes | KiB | gzip -9 bytes | sha256 (prefix) | deployed on the devnet: bytes, sha256 |\n|---|---|---|---|---|---|\n'
    for w in registry exchange; do
        printf '| artifacts/%s.wasm | %s | %s | %s | %s | %s, %s |\n' "$w" "${WASM_BYTES[$w]}" \
            "$(awk -v b="${WASM_BYTES[$w]}" 'BEGIN { printf "%.1f", b / 1024 }')" "${WASM_GZ[$w]}" "${WASM_SHA[$w]}" \
            "${DEPLOYED_BYTES[$w]}" "${DEPLOYED_SHA[$w]}"
    done
    printf '\n## Tool install time\n\n'
    printf '| piece | last build (from $EHRX_TOOLS/logs/<piece>.took; cold figures: scripts/cold-rehearsal.sh) |\n|---|---|\n'
    for piece in apt rust-target wasmd hermes cosmwasm-check wasm-opt; do
        printf '| %s | %s |\n' "$piece" "${COLD[$piece]}"
    done
    printf '\nWarm (`scripts/install-tools.sh`, everything cached): %s\n' \
        "$([[ $WARM == - ]] && echo "not measured" || echo "$WARM")"
    if ((${#NOTES[@]})); then
        printf '\n## Notes from this run\n\n'
        printf -- '- %s\n' "${NOTES[@]}"
    fi
    printf '\nRaw material: %s\n' "$WORK"
} | tee "$REPORT"
write_json >"${REPORT%.md}.json"
if [[ -n "$JSON_OUT" ]]; then cp "${REPORT%.md}.json" "$JSON_OUT"; fi
log "report: $REPORT, summary ${REPORT%.md}.json${JSON_OUT:+ (and $JSON_OUT)} (script runtime $(fmt_duration "$RUNTIME"))"
