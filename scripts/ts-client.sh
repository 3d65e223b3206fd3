#!/usr/bin/env bash
# Checks the contracts' typed TypeScript client the way a hospital's portal gets it: generates
# it from schema/ with @cosmwasm/ts-codegen (pinned), compiles it and tests/ts-client/usage.ts
# with `tsc --strict`, then runs the usage file under Node (RetrievedReply decoding, the
# signing test vectors' digests; no chain is touched). Fails when any of it fails.
#
#   scripts/ts-client.sh                 check schema/
#   scripts/ts-client.sh --schema DIR    check another schema directory
#   scripts/ts-client.sh --cached        exit 0 when the npm packages are cached, else 1
#
# npm packages: tests/ts-client/package-lock.json, installed once with `npm ci --ignore-scripts`
# into $EHRX_TOOLS/ts-client-<hash of the lock>/node_modules (outside the repo; a new lock
# gets a new directory). Generated code and the compiled output go to
# ${CARGO_TARGET_DIR:-<repo>/target}/ts-client (never committed).
# The logic is `xtask ts-client` (packages/xtask/src/ts_client.rs).
#
# Environment: EHRX_TOOLS (default ~/.cache/ehrx-tools), CARGO_TARGET_DIR.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # -h/--help: prints the header above, exits
xtask_exec ts-client "$@"
