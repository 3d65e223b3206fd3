#!/usr/bin/env bash
# Cold-machine rehearsal: runs the README's commands the way a fresh machine (or a CI run on
# one) does, with every project cache empty, and reports the figures.
#
#   scripts/cold-rehearsal.sh [--keep] [--no-warm] [--dir DIR]
#
# What it does:
#   1. clones the committed HEAD of this repository into a fresh directory (uncommitted
#      changes are not part of the rehearsal; commit first);
#   2. points every cache at that directory instead of deleting anyone's caches:
#        EHRX_TOOLS, EHRX_DEVNET_DIR, EHRX_DEMO_DIR   the project's tools, devnet, demo
#        CARGO_HOME                                   cargo registry and git caches
#        (the clone's own target/)                    cargo build output
#        GOPATH, GOMODCACHE, GOCACHE                  Go modules and build cache
#        npm_config_cache                             npm
#        MAVEN_OPTS=-Dmaven.repo.local=...            Maven
#        XDG_CACHE_HOME                               anything else under ~/.cache
#      Kept, as on a fresh machine: the language toolchains the machine ships (Go, rustup's
#      Rust toolchains, Node, Java), Debian's packages (apt installs take seconds), and
#      rustup's wasm32 target (part of the toolchain directory; `rustup target add` takes
#      seconds);
#   3. runs, in the clone, `scripts/test.sh` cold (the CI case: tools and every build from
#      nothing, then the e2e suite on a devnet it starts), then `scripts/demo.sh` (the main
#      job; the tools are now warm) and `scripts/test.sh` again, warm;
#   4. writes a report with the per-tool install times, both stage tables and the totals to
#      <dir>/report.md and prints it.
#
# It needs the devnet's ports (26656-26857, 9090-9290, 1317-1517): stop a running devnet
# first (scripts/devnet.sh down). It stops the devnet it started at the end.
# Expect about an hour on 2 cores.
#
# Options:
#   --dir DIR   where to put the clone and the caches (default: a new mktemp -d)
#   --keep      keep DIR afterwards (default: removed, except report.md and the logs,
#               which are copied to ~/.cache/ehrx-rehearsal/<timestamp>/)
#   --no-warm   stop after the cold test run (no demo, no warm run)
#
# The logic is `xtask cold-rehearsal` (packages/xtask/src/cold_rehearsal.rs).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # -h/--help: prints the header above, exits
xtask_exec cold-rehearsal "$@"
