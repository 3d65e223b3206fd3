#!/usr/bin/env bash
# Regenerates packages/fhir-r4/src/r4.table, the R4 definitions the Bundle validator
# compiles in, from the official R4 StructureDefinitions (FHIR 4.0.1) that HAPI ships in
# ca.uhn.hapi.fhir:hapi-fhir-validation-resources-r4 on Maven Central.
#   scripts/fhir-r4-table.sh           download (pinned version and SHA-256), regenerate
#   scripts/fhir-r4-table.sh --check   fail if the committed table differs from a fresh one
# The build never runs this: the table is committed, so the repository builds offline.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root="$EHRX_REPO_ROOT"
cd "$root"

version=8.12.1
sha256=e3be14db8922f74dd554dfffb04e1d66fa0e10b84c7e1c65e25410a865fe161f
artifact=hapi-fhir-validation-resources-r4
url="https://repo1.maven.org/maven2/ca/uhn/hapi/fhir/$artifact/$version/$artifact-$version.jar"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/ehrx-fhir"
jar="$cache/$artifact-$version.jar"
table=packages/fhir-r4/src/r4.table

mkdir -p "$cache"
if [[ ! -f "$jar" ]] || ! echo "$sha256  $jar" | sha256sum -c --quiet 2>/dev/null; then
  curl -fsSL -o "$jar.part" "$url"
  echo "$sha256  $jar.part" | sha256sum -c --quiet
  mv "$jar.part" "$jar"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
profiles=org/hl7/fhir/r4/model/profile
unzip -q -o "$jar" "$profiles/profiles-types.xml" "$profiles/profiles-resources.xml" -d "$work"
cargo run -q -p fhir-r4-gen -- "ca.uhn.hapi.fhir:$artifact:$version (FHIR 4.0.1)" \
  "$work/$profiles/profiles-types.xml" "$work/$profiles/profiles-resources.xml" >"$work/r4.table"

if [[ "${1:-}" == "--check" ]]; then
  if ! cmp -s "$work/r4.table" "$table"; then
    echo "$table is stale: run scripts/fhir-r4-table.sh and commit the result" >&2
    exit 1
  fi
  echo "$table is up to date"
else
  mv "$work/r4.table" "$table"
  echo "wrote $table ($(wc -c <"$table") bytes)"
fi
