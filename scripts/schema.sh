#!/usr/bin/env bash
# Generates schema/: the JSON schemas of the registry and the exchange (their IDL files, read
# by @cosmwasm/ts-codegen), of the exchange's execute response data (exchange-data/:
# RetrievedReply), of the IBC wire types (packets/), and the signing-bytes test vectors
# (test-vectors/signing.json).
#   scripts/schema.sh           regenerate schema/
#   scripts/schema.sh --check   fail if schema/ is stale (CI)
#
# Environment: CARGO_TARGET_DIR honoured (default: <repo>/target).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root="$EHRX_REPO_ROOT"
cd "$root"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bin="${CARGO_TARGET_DIR:-$root/target}/debug"

cargo build -q -p registry -p exchange -p ehr-protocol --bins
for contract in registry exchange; do
  mkdir -p "$work/$contract"
  (cd "$work/$contract" && "$bin/${contract}_schema" >/dev/null)
done
"$bin/packet_schema" "$work/packets" >/dev/null
"$bin/signing_vectors" "$work/test-vectors/signing.json"

# write_api! writes to ./schema under the working directory.
mkdir -p "$work/out"
for contract in registry exchange; do mv "$work/$contract/schema" "$work/out/$contract"; done
mv "$work/exchange/exchange-data" "$work/out/exchange-data"
mv "$work/packets" "$work/out/packets"
mv "$work/test-vectors" "$work/out/test-vectors"
# The one hand-written file: kept as it is.
cp schema/README.md "$work/out/README.md"

if [[ "${1:-}" == "--check" ]]; then
  if ! diff -r "$work/out" schema >/dev/null 2>&1; then
    diff -r "$work/out" schema | head -40 || true
    echo "schema/ is stale: run scripts/schema.sh and commit the result" >&2
    exit 1
  fi
  echo "schema/ is fresh"
else
  rm -rf schema
  mv "$work/out" schema
  echo "schema/ regenerated: $(find schema -name '*.json' | wc -l) files"
fi
