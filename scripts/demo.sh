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
# ${EHRX_DEMO_DIR:-$HOME/.cache/ehrx-demo}; the devnet is ${EHRX_DEVNET_DIR:-~/.cache/ehrx-devnet};
# EHRX_BIN names an ehrx binary to use instead of building it. The work is done by
# `xtask demo` (packages/xtask/src/demo.rs), which runs ehrx for every peer and admin action.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # -h/--help: prints the header above, exits

need_cmd cargo "install Rust with rustup: https://rustup.rs"
xtask="${CARGO_TARGET_DIR:-$EHRX_REPO_ROOT/target}/debug/xtask"
env -u CARGO_BUILD_TARGET cargo build -q -p xtask --manifest-path "$EHRX_REPO_ROOT/Cargo.toml" ||
    die "building packages/xtask failed (cargo build -p xtask, output above)"
exec "$xtask" demo "$@"
