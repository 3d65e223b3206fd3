#!/usr/bin/env bash
# Runs every test: formatting, lints, unit and two-chain in-process tests, the wasm build
# and cosmwasm-check, the schema freshness check, the typed TypeScript client check, and the
# end-to-end suite on the devnet.
# Installs whatever is missing first (scripts/install-tools.sh; cached, seconds when warm).
#
#   scripts/test.sh              everything
#   scripts/test.sh --no-e2e     skip the devnet suite (no chains started, no wasmd/Hermes)
#   scripts/test.sh --no-budget  report the stage times but never fail on them
#
# Stages, each timed: tools, lints, unit, in-process, fhir, wasm, schema, ts, e2e. At the end a table
# gives each stage's time against its budget, and the total. A stage that takes more than
# 1.5x its budget fails the run (after every stage has run), so that slow growth shows up
# in the change that causes it and not as a CI time-out. Each stage has a cold budget
# (its cache was empty at the start: the tool cache for `tools`, cargo's target dir for the
# build stages, the npm packages of tests/ts-client for `ts`, a devnet not yet deployed with
# these contracts for `e2e`) and a warm one. A devnet the run starts is stopped at its end.
# The logic is `xtask test` (packages/xtask/src/test/; the budgets: BUDGETS in budget.rs,
# the measured figures behind them in the README, "How long it takes").
#
# Environment:
#   EHRX_BUDGET_FACTOR   multiply every budget (default 1; e.g. 2 on a slower machine)
#   CARGO_TARGET_DIR     honoured (default: <repo>/target)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # -h/--help: prints the header above, exits
xtask_exec test "$@"
