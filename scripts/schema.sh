#!/usr/bin/env bash
# Generates schema/: the JSON schemas of the registry and the exchange (their IDL files, read
# by @cosmwasm/ts-codegen), of the exchange's execute response data (exchange-data/:
# RetrievedReply), of the IBC wire types (packets/), and the signing-bytes test vectors
# (test-vectors/signing.json).
#   scripts/schema.sh           regenerate schema/
#   scripts/schema.sh --check   fail if schema/ is stale (CI)
# The logic is `xtask schema` (packages/xtask/src/schema.rs).
#
# Environment: CARGO_TARGET_DIR honoured (default: <repo>/target).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # -h/--help: prints the header above, exits
xtask_exec schema "$@"
