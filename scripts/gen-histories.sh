#!/usr/bin/env bash
# Generates the test histories of issue 9 with Synthea (fixed seed 42, reference date
# 2025-01-01; the settings are in tests/src/fhir_tools.rs) and prints where they are, their
# sizes and resource counts. They are cached outside the repository, in
# ${EHRX_HISTORIES:-~/.cache/ehrx-histories}/synthea-<version>-<hash>-s42-<settings hash>/;
# a second run only prints.
#
#   scripts/gen-histories.sh [--validate] [KIND...]
#
#   KIND        small-10k mid-1m large-5m attachments-5m (default: all four)
#   --validate  also validate them with the HAPI FHIR validator harness (0 errors expected)
#
# Needs Synthea and the harness: scripts/install-tools.sh fhir-validator synthea.
# The logic is `xtask gen-histories` (packages/xtask/src/gen_histories.rs).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # -h/--help: prints the header above, exits
xtask_exec gen-histories "$@"
