#!/usr/bin/env bash
# Install the pinned tools this project needs, cached outside the repository.
#
#   scripts/install-tools.sh                  # everything
#   scripts/install-tools.sh wasmd hermes     # a subset
#   scripts/install-tools.sh --list           # list the pieces
#   scripts/install-tools.sh --check [PIECES] # exit 0 when all are installed and
#                                             # cached, 1 otherwise; installs nothing
#
# Pieces: apt (Debian packages), rust-target (rustup target wasm32-unknown-unknown), wasmd
# v0.61.14, hermes (ibc-relayer-cli 1.13.2, opt-level 1, mold, Debian's RocksDB),
# cosmwasm-check 3.0.10, wasm-opt (npm binaryen 132.0.0), fhir-validator and synthea (Maven
# projects in tests/). The install itself is the Rust tool packages/xtask (`xtask tools`;
# src/tools/ has one module per piece with the reasons for each step; versions:
# shared/notes/stack.md): this script builds it (debug, ~20 s once) and runs it. Pieces not
# cached build in parallel, each line prefixed with the piece's name; a summary table ends.
#
# Cache: ${EHRX_TOOLS:-~/.cache/ehrx-tools}, one directory per tool and version (and build
# recipe), symlinks in bin/ (scripts/lib.sh puts it on PATH), build output in
# logs/<piece>.log and the time a build took in logs/<piece>.took ("SECONDS STATUS DATE").
#
# Environment:
#   EHRX_TOOLS         cache root (default ~/.cache/ehrx-tools)
#   CARGO_BUILD_JOBS   parallel rustc jobs for the cargo builds (default 2)
#   EHRX_KEEP_BUILD=1  keep the build directories ($EHRX_TOOLS/build/...)
#   EHRX_HEARTBEAT     seconds between "still running" lines (default 60)
#   EHRX_INSTALL_SERIAL=1   build one piece after the other (default: in parallel)
#   EHRX_TOOLS_OPT_LEVEL    opt-level of Hermes and cosmwasm-check (default 1)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # -h/--help: prints the header above, exits

EHRX_INSTALL_CMD="$0" xtask_exec tools "$@"
