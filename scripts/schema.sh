#!/usr/bin/env bash
# Generates the JSON schemas in schema/ (registry, exchange, IBC wire types).
#   scripts/schema.sh           regenerate schema/
#   scripts/schema.sh --check   fail if schema/ is stale (CI)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root="$EHRX_REPO_ROOT"
cd "$root"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cargo build -q -p registry -p exchange -p ehr-protocol --bins
for contract in registry exchange; do
  mkdir -p "$work/$contract"
  (cd "$work/$contract" && "$root/target/debug/${contract}_schema" >/dev/null)
done
"$root/target/debug/packet_schema" "$work/packets" >/dev/null

# write_api! writes to ./schema under the working directory.
mkdir -p "$work/out"
for contract in registry exchange; do mv "$work/$contract/schema" "$work/out/$contract"; done
mv "$work/packets" "$work/out/packets"

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
