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
#
# Environment: EHRX_TOOLS (default ~/.cache/ehrx-tools), CARGO_TARGET_DIR.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root="$EHRX_REPO_ROOT"
pkg="$root/tests/ts-client"
schema="$root/schema"
cached_only=0
while (($#)); do
    case "$1" in
        --schema) schema="$(cd "${2:?--schema needs a directory}" && pwd)"; shift 2 ;;
        --cached) cached_only=1; shift ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
lock_hash=$(sha256sum "$pkg/package-lock.json" | cut -c1-16)
cache="$EHRX_TOOLS/ts-client-$lock_hash"
build="${CARGO_TARGET_DIR:-$root/target}/ts-client"
if ((cached_only)); then
    [[ -d "$cache/node_modules" ]]
    exit
fi
need_cmd node "Node 20 or newer"
need_cmd npm

step "npm packages (cached in $cache)"
if [[ ! -d "$cache/node_modules" ]]; then
    tmp="$cache.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    cp "$pkg/package.json" "$pkg/package-lock.json" "$tmp/"
    (cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    rm -rf "$cache"
    mv "$tmp" "$cache"
fi

step "generate the client from $schema (@cosmwasm/ts-codegen)"
rm -rf "$build"
mkdir -p "$build"
cp "$pkg/tsconfig.json" "$pkg/codegen.js" "$pkg/usage.ts" "$build/"
ln -s "$cache/node_modules" "$build/node_modules"
(cd "$build" && node codegen.js "$schema" generated) ||
    die "ts-codegen could not generate the client from $schema"
# The Rust /// docs are the schema's descriptions; they must reach the TypeScript as JSDoc.
grep -q '\* Block time of the request, unix seconds' "$build/generated/Exchange.types.ts" ||
    die "the schema's descriptions did not reach the generated types as JSDoc"

step "tsc --strict: the generated client and usage.ts"
(cd "$build" && node_modules/.bin/tsc --strict -p tsconfig.json) ||
    die "the TypeScript does not compile against schema/ (generated code in $build/generated)"

step "run usage.ts (RetrievedReply decoding, signing vectors)"
(cd "$build" && node dist/usage.js "$schema")
step_done
