#!/usr/bin/env bash
# The main job: installs what is missing, brings up the two-hospital devnet, and walks
# through the paper's scenario with the ehrx peer tool:
#
#   1. hospital-b stores a patient's record (compressed, padded and sealed in chunks to its records key; on
#      chain only hospital-b's own HMAC pseudonym, made with a key that never leaves it)
#   2. a clinician at hospital-a gets her own signing key (`ehrx clinician new`), which the
#      hospital's admin registers, and asks hospital-b for the patient's history
#   3. hospital-a's request carries the patient's details sealed to hospital-b's custodian
#      key (its records key, registered in hospital-a's registry by devnet.sh); hospital-b's
#      reply service opens them, finds its pseudonym, answers one sealed kind of reply;
#      hospital-a verifies, decrypts, writes FHIR
#   4. the paper's attacks: an outsider, an insider flooding requests, an insider reading a
#      reply it did not ask for, each refused with its reason code; and a colleague who
#      knows the clinician's id but not her key
#
#   scripts/demo.sh            run it (devnet stays up afterwards: scripts/devnet.sh down)
#   scripts/demo.sh --bundle FILE [--demographics FILE] --out FILE
#                              the exchange (steps 1-3) on a history you bring: FILE is a
#                              FHIR R4 Bundle (any size). The patient's details come from its
#                              one Patient (official name, birthDate, the identifier with
#                              system http://hl7.org/fhir/sid/us-ssn) unless --demographics
#                              gives them: {"given": "...", "family": "...", "birth_date":
#                              "YYYY-MM-DD", "ssn": "NNN-NN-NNNN"}. The decrypted, validated
#                              history is written to --out. It prints the sizes, the chunk
#                              counts, each verification and the time taken, and exits
#                              non-zero with the reason when the Bundle is refused or the
#                              exchange fails.
#
# Demo files (keys, configs, the patient's FHIR input and output) go to
# ${EHRX_DEMO_DIR:-$HOME/.cache/ehrx-demo}.
set -euo pipefail
# shellcheck source=scripts/devnet/helpers.sh
source "$(dirname "${BASH_SOURCE[0]}")/devnet/helpers.sh"
cd "$EHRX_REPO_ROOT"

user_bundle="" user_demographics="" user_out=""
while (($#)); do
    case "$1" in
        --bundle) user_bundle=${2:?--bundle needs a file}; shift 2 ;;
        --demographics) user_demographics=${2:?--demographics needs a file}; shift 2 ;;
        --out) user_out=${2:?--out needs a file}; shift 2 ;;
        *) die "unknown argument '$1' (see scripts/demo.sh --help)" ;;
    esac
done
if [[ -n "$user_bundle$user_demographics$user_out" ]]; then
    [[ -n "$user_bundle" && -n "$user_out" ]] ||
        die "--bundle FILE and --out FILE go together (--demographics FILE is optional)"
    [[ -f "$user_bundle" ]] || die "--bundle $user_bundle: no such file"
    [[ -z "$user_demographics" || -f "$user_demographics" ]] ||
        die "--demographics $user_demographics: no such file"
    user_bundle=$(realpath "$user_bundle")
    [[ -z "$user_demographics" ]] || user_demographics=$(realpath "$user_demographics")
    user_out=$(realpath -m "$user_out")
fi

DEMO="${EHRX_DEMO_DIR:-$HOME/.cache/ehrx-demo}"
A=hospital-a
B=hospital-b
started=$SECONDS

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
ok() { printf '   \033[32mOK\033[0m %s\n' "$*"; }
refused() { printf '   \033[33mREFUSED\033[0m %s\n' "$*"; }

step "tools (cached after the first run)"
scripts/install-tools.sh

step "peer tool: cargo build --release -p ehrx"
EHRX=$(dn_ehrx_bin release) || die "cargo build --release -p ehrx failed"

step "two-chain devnet: 4 validators a chain, contracts, IBC channel, two Hermes"
EHRX_BIN=$EHRX scripts/devnet.sh up
# The devnet's own clinician on hospital-a (devnet.json): the other peers' requests use it.
DEVNET_CLINICIAN=$(dn_json --arg c "$A" '.chains[$c].clinician.id // empty')
DEVNET_CLINICIAN_KEY=$(dn_json --arg c "$A" '.chains[$c].clinician.key_file // empty')
[[ -n "$DEVNET_CLINICIAN" && -f "$DEVNET_CLINICIAN_KEY" ]] ||
    die "devnet.json names no clinician key for $A (a devnet from before clinician credentials): scripts/devnet.sh reset, then run the demo again"
step_done

rm -rf "$DEMO"
mkdir -p "$DEMO"
chmod 700 "$DEMO"

# site NAME CHAIN KEY ROLES: ehrx keys + config for a peer on a devnet account, registered by
# the chain's admin with ROLES. The hospital's records (custodian) key and its own pseudonym
# key are the ones devnet.sh made with ehrx (devnet.json .chains[].custodian).
site() {
    local name=$1 chain=$2 key=$3 roles=$4 dir="$DEMO/$1" shown sk ek custodian
    custodian=$(dn_json -c --arg c "$chain" '.chains[$c].custodian // empty')
    [[ -n "$custodian" ]] ||
        die "devnet.json has no custodian keys for $chain (a devnet from before sealed patient details): scripts/devnet.sh reset, then run the demo again"
    mkdir -p "$dir"
    shown=$("$EHRX" keys init --key-dir "$dir/keys")
    sk=$(sed -n '/^{/,$p' <<<"$shown" | jq -r .signing_key)
    ek=$(sed -n '/^{/,$p' <<<"$shown" | jq -r .encryption_key)
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
poll_interval_secs = 1
EOF
    if [[ "$roles" != none ]]; then
        dn_admin "$chain" register-peer --registry "$(dn_json --arg c "$chain" '.chains[$c].contracts.registry')" \
            --address "$(dn_key_addr "$chain" "$key")" --roles "$roles" --signing-key "$sk" \
            --encryption-key "$ek" --device-id "$name" >/dev/null
    fi
    echo "$ek"
}

say "Setting up the peers (each with its own secp256k1 signing and X25519 encryption keys)"
site b-reply-service "$B" peer2 reply >/dev/null
ok "hospital-b reply service registered (role reply); it holds hospital-b's records key and pseudonym key"
site b-records-desk "$B" peer1 store >/dev/null
ok "hospital-b records desk registered (role store); records are encrypted to hospital-b's records key"
b_custodian=$(dn_json --arg c "$B" '.chains[$c].custodian.records_key')
a_holds=$(dn_admin "$A" show partner --registry "$(dn_json --arg c "$A" '.chains[$c].contracts.registry')" \
    --partner "$B" | jq -r '.encryption_key // empty')
[[ "$a_holds" == "$b_custodian" ]] ||
    die "hospital-a's registry does not hold hospital-b's custodian key ($b_custodian) for partner $B (it holds '${a_holds:-none}'): scripts/devnet.sh reset && scripts/devnet.sh up"
ok "hospital-a's registry holds hospital-b's custodian key (its records key, UpsertPartner encryption_key): requests seal the patient's details to it"
site a-dr-adams "$A" peer1 request >/dev/null
ok "hospital-a: Dr Adams' workstation registered (role request)"
# Dr Adams' own credential: the key stays in her site's key dir, encrypted under a code she
# types (here given through EHRX_CLINICIAN_CODE, as a script would); the admin registers
# the RegisterClinician message ehrx prints.
export EHRX_CLINICIAN_CODE="demo-code-$RANDOM-$RANDOM"
register_msg=$("$EHRX" --config "$DEMO/a-dr-adams/ehrx.toml" clinician new --id dr-adams \
    --purpose treatment --protect 2>/dev/null) || die "ehrx clinician new failed"
dn_admin "$A" register-clinician --registry "$(dn_json --arg c "$A" '.chains[$c].contracts.registry')" \
    --message - <<<"$register_msg" >/dev/null || die "ehrx admin register-clinician failed (details above)"
ok "clinician dr-adams: key made by ehrx on her workstation (mode 0600, encrypted under her code), public key registered by hospital-a's admin"
if [[ -n "$user_bundle" ]]; then
    # Your history: store it on hospital-b, ask for it from hospital-a, write what comes back.
    if [[ -n "$user_demographics" ]]; then
        patient_args=(--demographics "$user_demographics")
        patient_from="$user_demographics"
    else
        patient_args=(--from-bundle "$user_bundle")
        patient_from="the Bundle's Patient"
    fi
    say "1. hospital-b stores your history: checked as FHIR R4, compressed, attested, sealed in chunks (the patient: from $patient_from)"
    store_start=$SECONDS
    stored=$("$EHRX" --config "$DEMO/b-records-desk/ehrx.toml" store --bundle "$user_bundle" \
        "${patient_args[@]}") || die "hospital-b did not store $user_bundle (the reason is above); nothing was stored"
    ok "stored in $((SECONDS - store_start)) s: $(jq -r '"\(.json_bytes) bytes of FHIR JSON, \(.compressed_bytes) compressed, \(.sealed_bytes) sealed in \(.chunks) chunk(s), \(.txhashes | length) transaction(s)"' <<<"$stored")"
    ok "StoreRecord and StoreChunks verified on hospital-b: registered peer with role store, signature over the manifest, every chunk against its hash"

    say "2. hospital-b's reply service starts watching for partners' requests"
    "$EHRX" --config "$DEMO/b-reply-service/ehrx.toml" reply-service >"$DEMO/reply-service.log" 2>&1 &
    service_pid=$!
    trap 'kill $service_pid 2>/dev/null || true' EXIT
    ok "reply service running (log: $DEMO/reply-service.log)"

    say "3. Dr Adams at hospital-a asks hospital-b for the patient's history"
    request_start=$SECONDS
    "$EHRX" --config "$DEMO/a-dr-adams/ehrx.toml" request --partner "$B" --clinician dr-adams \
        --purpose treatment "${patient_args[@]}" --out "$user_out" --wait-secs 900 2>&1 |
        tee "$DEMO/request.out"
    [[ ${PIPESTATUS[0]} == 0 ]] || die "the exchange did not complete (see above; the reply service's log: $DEMO/reply-service.log)"
    grep -E 'answered|chunks sent' "$DEMO/reply-service.log" | sed 's/^/   reply service: /' || true
    ok "verified on hospital-a: the responder's signature over the manifest and the key it sealed to, every chunk against its hash, every record against its storer's attestation, the output as FHIR R4"
    ok "history written to $user_out: $(stat -c %s "$user_out") bytes, $(jq '.entry | length' "$user_out") entries, in $((SECONDS - request_start)) s"
    say "Done in $(fmt_duration $((SECONDS - started))). The devnet keeps running: scripts/devnet.sh status | down"
    exit 0
fi

site a-flooder "$A" peer2 request >/dev/null
site a-snoop "$A" peer3 request >/dev/null
site a-outsider "$A" peer6 none >/dev/null
ok "hospital-a peers for the attacks: a flooding insider, a snooping insider, an unregistered outsider"

cat >"$DEMO/bundle.json" <<'EOF'
{"resourceType": "Bundle", "type": "collection", "entry": [
  {"fullUrl": "urn:uuid:9c4e1b7a-2f6d-4a83-b5e0-7d1c3f8a2e01",
   "resource": {"resourceType": "Patient", "id": "p1",
    "name": [{"given": ["Amara"], "family": "Okafor"}], "birthDate": "1979-06-21"}},
  {"fullUrl": "urn:uuid:9c4e1b7a-2f6d-4a83-b5e0-7d1c3f8a2e02",
   "resource": {"resourceType": "Condition", "id": "c1",
    "code": {"text": "Type 2 diabetes mellitus"},
    "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
    "subject": {"reference": "urn:uuid:9c4e1b7a-2f6d-4a83-b5e0-7d1c3f8a2e01"}}},
  {"fullUrl": "urn:uuid:9c4e1b7a-2f6d-4a83-b5e0-7d1c3f8a2e03",
   "resource": {"resourceType": "MedicationStatement", "id": "m1", "status": "active",
    "medicationCodeableConcept": {"text": "Metformin 500 mg"},
    "subject": {"reference": "urn:uuid:9c4e1b7a-2f6d-4a83-b5e0-7d1c3f8a2e01"}}}
]}
EOF
printf '{"given":"Amara","family":"Okafor","birth_date":"1979-06-21","ssn":"212-45-6701"}' >"$DEMO/b-patient.json"
printf '{"given":"AMARA","family":"okafor","birth_date":"06/21/1979","ssn":"212456701"}' >"$DEMO/a-patient.json"
chmod 600 "$DEMO"/*.json

say "1. hospital-b stores the patient's record (FHIR R4 Bundle, checked, compressed, padded and sealed in chunks; on chain: hospital-b's own pseudonym, the chunks, their signed manifest)"
"$EHRX" --config "$DEMO/b-records-desk/ehrx.toml" store --bundle "$DEMO/bundle.json" \
    --demographics "$DEMO/b-patient.json"
ok "StoreRecord verified on hospital-b: registered peer with role store, content hash, signature"

say "2. hospital-b's reply service starts watching for partners' requests"
"$EHRX" --config "$DEMO/b-reply-service/ehrx.toml" reply-service >"$DEMO/reply-service.log" 2>&1 &
service_pid=$!
trap 'kill $service_pid 2>/dev/null || true' EXIT
ok "reply service running (log: $DEMO/reply-service.log)"

say "3. Dr Adams at hospital-a asks hospital-b for the patient's history (typed differently; the details travel sealed to hospital-b, which finds its own pseudonym)"
"$EHRX" --config "$DEMO/a-dr-adams/ehrx.toml" request --partner "$B" --clinician dr-adams \
    --purpose treatment --demographics "$DEMO/a-patient.json" --out "$DEMO/history.json" 2>&1 |
    tee "$DEMO/request.out"
[[ ${PIPESTATUS[0]} == 0 ]] || die "the request did not complete (see above)"
request_id=$(grep -oE 'request [0-9a-f-]{16,64} sent' "$DEMO/request.out" | awk '{print $2}' | head -n 1)
ok "decrypted history written to $DEMO/history.json: $(jq -r '[.entry[].resource.resourceType] | join(", ")' "$DEMO/history.json")"

say "4a. An outsider (an account hospital-a never registered) sends a request"
if out=$("$EHRX" --config "$DEMO/a-outsider/ehrx.toml" request --partner "$B" \
    --clinician "$DEVNET_CLINICIAN" --clinician-key "$DEVNET_CLINICIAN_KEY" --purpose treatment --demographics "$DEMO/a-patient.json" --out "$DEMO/outsider.json" 2>&1); then
    die "the outsider's request was accepted"
fi
refused "$(grep -m1 -oE 'the sender is not a registered peer[^.]*' <<<"$out" | sed 's/^/NotRegistered: /' || tail -n 1 <<<"$out")"

say "4b. An insider floods requests (policy: 1 request per peer per minute, 3 strikes, then quarantine)"
for n in 1 2 3 4 5; do
    rc=0
    out=$("$EHRX" --config "$DEMO/a-flooder/ehrx.toml" request --partner "$B" \
        --clinician "$DEVNET_CLINICIAN" --clinician-key "$DEVNET_CLINICIAN_KEY" --purpose treatment --demographics "$DEMO/a-patient.json" --out "$DEMO/flood.json" --wait-secs 1 2>&1) || rc=$?
    # ehrx exit 5: sent and still pending when the (1 s) wait ended, i.e. accepted.
    if ((rc == 0 || rc == 5)); then
        ok "request $n accepted and sent"
    else
        refused "request $n: $(grep -m1 -oE '(RateLimited|PeerQuarantined)[^ ]*' <<<"$out" || tail -n 1 <<<"$out")"
    fi
done
status=$(dn_admin "$A" show peer --registry "$(dn_json '.chains["hospital-a"].contracts.registry')" \
    --address "$(dn_key_addr "$A" peer2)" | jq -r '"status \(.status), strikes \(.strikes)"')
refused "the flooder is now: $status; only hospital-a's admin can release it"

say "4c. Another insider tries to read the reply Dr Adams asked for"
if [[ -n "$request_id" ]]; then
    if out=$("$EHRX" --config "$DEMO/a-snoop/ehrx.toml" request --resume "$request_id" \
        --out "$DEMO/snoop.json" --wait-secs 5 2>&1); then
        die "the snoop got the reply"
    fi
    refused "$(grep -m1 -oE 'NotAuthorized[^.]*' <<<"$out" || tail -n 1 <<<"$out")"
else
    warn "could not read the request id from the request output; skipping 4c"
fi

say "4d. A colleague names Dr Adams' clinician id (the registry lists every id) with a key of his own"
unset EHRX_CLINICIAN_CODE
"$EHRX" --config "$DEMO/a-snoop/ehrx.toml" clinician new --id dr-adams >/dev/null 2>&1 ||
    die "ehrx clinician new (the snoop's own key) failed"
if out=$("$EHRX" --config "$DEMO/a-snoop/ehrx.toml" request --partner "$B" --clinician dr-adams \
    --purpose treatment --demographics "$DEMO/a-patient.json" --out "$DEMO/impostor.json" 2>&1); then
    die "a request in Dr Adams' name without her key was accepted"
fi
refused "$(grep -m1 -oE 'the key in .* is not the one registered for clinician dr-adams[^(]*\([^)]*\)' <<<"$out" || tail -n 1 <<<"$out")"
ok "only her key signs in her name: the contract refuses any other signature (BadSignature); nothing is sent"

say "5. Audit trail (no PHI: codes, ids, times) exported as FHIR AuditEvent"
"$EHRX" --config "$DEMO/a-dr-adams/ehrx.toml" audit export --out "$DEMO/audit-a.json"
ok "$(jq '.entry | length' "$DEMO/audit-a.json") AuditEvents from hospital-a in $DEMO/audit-a.json"

say "Done in $(fmt_duration $((SECONDS - started))). The devnet keeps running: scripts/devnet.sh status | down"
