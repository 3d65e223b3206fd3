#!/usr/bin/env bash
# Regenerates packages/fhir-r4/src/r4.table, the R4 definitions the Bundle validator
# compiles in, from the official R4 StructureDefinitions (FHIR 4.0.1) that HAPI ships in
# ca.uhn.hapi.fhir:hapi-fhir-validation-resources-r4 on Maven Central.
#   scripts/fhir-r4-table.sh           download (pinned version and SHA-256), regenerate
#   scripts/fhir-r4-table.sh --check   fail if the committed table differs from a fresh one
# The build never runs this: the table is committed, so the repository builds offline.
# The logic is `xtask fhir-r4-table` (packages/xtask/src/fhir_r4_table.rs).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # -h/--help: prints the header above, exits
xtask_exec fhir-r4-table "$@"
