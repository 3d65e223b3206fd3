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
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir=""
keep=0
warm=1
while (($#)); do
    case "$1" in
        --dir) dir=${2:?--dir needs a directory}; shift ;;
        --keep) keep=1 ;;
        --no-warm) warm=0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
done

need_cmd git
need_cmd ss "install Debian's iproute2"
busy=$(ss -Htln '( sport = :26657 or sport = :26757 or sport = :26857 or sport = :9090 or sport = :9190 )' || true)
[[ -z "$busy" ]] ||
    die "devnet ports are in use (a devnet is running?):
$busy
Stop it first: scripts/devnet.sh down"

if [[ -z "$dir" ]]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/ehrx-rehearsal.XXXXXX")
else
    [[ ! -e "$dir" || -z "$(ls -A "$dir")" ]] || die "--dir $dir is not empty: give an empty or new directory"
    mkdir -p "$dir"
fi
dir=$(cd "$dir" && pwd)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
logs="$dir/logs"
mkdir -p "$logs"

cleanup() {
    (cd "$dir/repo" 2>/dev/null && scripts/devnet.sh down >/dev/null 2>&1) || true
    if ((keep == 0)); then
        local save="$HOME/.cache/ehrx-rehearsal/$stamp"
        mkdir -p "$save"
        cp -r "$logs" "$save/" 2>/dev/null || true
        cp "$dir/report.md" "$save/" 2>/dev/null || true
        rm -rf "$dir"
        log "removed $dir; report and logs kept in $save"
    fi
}
trap cleanup EXIT

step "clone $(git -C "$EHRX_REPO_ROOT" rev-parse --short HEAD) into $dir/repo"
[[ -z "$(git -C "$EHRX_REPO_ROOT" status --porcelain)" ]] ||
    warn "uncommitted changes in $EHRX_REPO_ROOT are not part of the rehearsal"
git clone -q "$EHRX_REPO_ROOT" "$dir/repo"
commit=$(git -C "$dir/repo" rev-parse --short HEAD)

export EHRX_TOOLS="$dir/cache/ehrx-tools"
export EHRX_DEVNET_DIR="$dir/cache/ehrx-devnet"
export EHRX_DEMO_DIR="$dir/cache/ehrx-demo"
export EHRX_HISTORIES="$dir/cache/ehrx-histories"
export CARGO_HOME="$dir/cache/cargo"
export GOPATH="$dir/cache/go"
export GOMODCACHE="$dir/cache/go/pkg/mod"
export GOCACHE="$dir/cache/go-build"
export npm_config_cache="$dir/cache/npm"
export MAVEN_OPTS="-Dmaven.repo.local=$dir/cache/m2 ${MAVEN_OPTS:-}"
export XDG_CACHE_HOME="$dir/cache/xdg"
unset CARGO_TARGET_DIR
# Forget this shell's tool cache on PATH; lib.sh in the clone adds the new one.
PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vx "$HOME/.cache/ehrx-tools/bin" | paste -sd:)
export PATH
mkdir -p "$CARGO_HOME" "$GOMODCACHE" "$GOCACHE" "$npm_config_cache" "$XDG_CACHE_HOME"
cd "$dir/repo"

# run_phase NAME CMD...: runs CMD with its output to the terminal and to logs/NAME.log.
declare -A PHASE_SECS=() PHASE_RC=()
run_phase() {
    local name=$1 start=$SECONDS rc=0
    shift
    step "$name: $*"
    "$@" 2>&1 | tee "$logs/$name.log" || rc=${PIPESTATUS[0]}
    PHASE_SECS[$name]=$((SECONDS - start))
    PHASE_RC[$name]=$rc
    step_done
    ((rc == 0)) || warn "$name failed (exit $rc); log: $logs/$name.log"
    return 0
}

run_phase test-cold scripts/test.sh
if ((warm)) && [[ ${PHASE_RC[test-cold]} == 0 ]]; then
    run_phase demo scripts/demo.sh
    scripts/devnet.sh down >/dev/null 2>&1 || true
    run_phase test-warm scripts/test.sh
fi

# ---- report ---------------------------------------------------------------------------
# The figures are the scripts' own summary lines: install-tools' per-piece table and
# test.sh's stage table.
tools_table() { sed -n '/^\(\[[a-z-]*\] \)\{0,1\}Summary (total/,/^$/p' "$1" | sed 's/^\[[a-z-]*\] //'; }
stage_table() { sed -n '/^STAGE /,/^total /p' "$1"; }
{
    echo "# Cold-machine rehearsal, $stamp"
    echo
    echo "- commit $commit; $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(rustc --version | cut -d' ' -f1-2), $(go version | cut -d' ' -f3), node $(node --version)"
    echo "- every cache under $dir/cache, empty at the start"
    echo
    for p in test-cold demo test-warm; do
        [[ -n "${PHASE_SECS[$p]:-}" ]] || continue
        echo "## $p: $(fmt_duration "${PHASE_SECS[$p]}"), exit ${PHASE_RC[$p]}"
        echo
        [[ $p == demo ]] && continue
        echo '```'
        [[ $p == test-cold ]] && tools_table "$logs/$p.log" | cat -s
        stage_table "$logs/$p.log"
        echo '```'
        echo
    done
} >"$dir/report.md"
cat "$dir/report.md"
for p in "${!PHASE_RC[@]}"; do
    [[ ${PHASE_RC[$p]} == 0 ]] || die "rehearsal phase $p failed (exit ${PHASE_RC[$p]}); see its log in the report's directory"
done
log "rehearsal done in $(fmt_duration "$SECONDS")"
