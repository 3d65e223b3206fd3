# shellcheck shell=bash
# Shared helpers for the project's scripts. Source it, do not run it:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# What it provides:
#   - EHRX_TOOLS (default ~/.cache/ehrx-tools): cache of the pinned tools that
#     scripts/install-tools.sh builds; "$EHRX_TOOLS/bin" is prepended to PATH.
#   - log / warn / die          messages on stderr; die exits 1
#   - step "msg" / step_done    timestamped step header and per-step timer
#   - need_cmd CMD "hint"       die with a clear message when CMD is missing
#   - run_logged LOG CMD...     run CMD with output to LOG, heartbeat every
#                               EHRX_HEARTBEAT seconds (default 60)
#   - fmt_duration SECONDS      "1m05s"
#   - usage_of FILE             FILE's header comment; -h/--help of every script
#                               that sources this file prints its own and exits
#   - budget_report ...         stage times against budgets (scripts/test.sh)

if [[ -n "${_EHRX_LIB_SOURCED:-}" ]]; then
    return 0
fi
_EHRX_LIB_SOURCED=1

# usage_of FILE: FILE's leading comment block (after the shebang), without "# ".
usage_of() {
    awk 'NR == 1 && /^#!/ { next } /^# shellcheck / { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$1"
}

# Every script that sources this file answers -h/--help with its header comment and does
# nothing else: no install, no devnet, no build. (Sourced without arguments, this file sees
# the script's own arguments.)
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    usage_of "$0"
    exit 0
elif [[ "$0" == *.sh && -f "$0" ]]; then
    for _ehrx_arg in "$@"; do
        case "$_ehrx_arg" in
            -h | --help) usage_of "$0"; exit 0 ;;
        esac
    done
    unset _ehrx_arg
fi

EHRX_TOOLS="${EHRX_TOOLS:-$HOME/.cache/ehrx-tools}"
export EHRX_TOOLS
case ":${PATH}:" in
    *":${EHRX_TOOLS}/bin:"*) ;;
    *) PATH="${EHRX_TOOLS}/bin:${PATH}" ;;
esac
export PATH

# The repository root (the parent of scripts/).
EHRX_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export EHRX_REPO_ROOT

_ehrx_ts() { date '+%H:%M:%S'; }

fmt_duration() {
    local s=${1:-0}
    if (( s >= 3600 )); then
        printf '%dh%02dm%02ds' $((s / 3600)) $((s % 3600 / 60)) $((s % 60))
    else
        printf '%dm%02ds' $((s / 60)) $((s % 60))
    fi
}

log()  { printf '[%s] %s\n' "$(_ehrx_ts)" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "$(_ehrx_ts)" "$*" >&2; }

# die "what is missing or what failed": clear error, exit 1.
die() {
    printf '\n[%s] ERROR: %s\n' "$(_ehrx_ts)" "$*" >&2
    exit 1
}

# need_cmd CMD [hint]: die naming CMD when it is not on PATH.
need_cmd() {
    command -v "$1" >/dev/null 2>&1 ||
        die "required command '$1' not found on PATH${2:+ ($2)}"
}

# step "msg": closes the previous step (printing its duration) and starts a
# new one with a timestamped header. step_done closes the current step.
_EHRX_STEP_NAME=""
_EHRX_STEP_START=0
step() {
    step_done
    _EHRX_STEP_NAME="$*"
    _EHRX_STEP_START=$SECONDS
    printf '\n==> [%s] %s\n' "$(_ehrx_ts)" "$*" >&2
}
step_done() {
    if [[ -n "$_EHRX_STEP_NAME" ]]; then
        printf '<== [%s] %s: took %s\n' "$(_ehrx_ts)" "$_EHRX_STEP_NAME" \
            "$(fmt_duration $((SECONDS - _EHRX_STEP_START)))" >&2
        _EHRX_STEP_NAME=""
    fi
}
# Seconds since the current step started.
step_elapsed() { echo $((SECONDS - _EHRX_STEP_START)); }

# run_logged LOGFILE CMD [ARGS...]
# Runs CMD (a command or shell function) with stdout+stderr appended to
# LOGFILE. While it runs, prints a heartbeat line every EHRX_HEARTBEAT seconds
# (elapsed time and the last line of the log) so a user sees it is alive.
# Returns CMD's exit status. Call it as a plain command (not in `if`/`||`),
# so that `set -e` stays in force inside CMD.
EHRX_RUN_PID=""
run_logged() {
    local logfile=$1
    shift
    mkdir -p "$(dirname "$logfile")"
    local hb=${EHRX_HEARTBEAT:-60}
    local start=$SECONDS next=$((SECONDS + hb)) rc=0 last
    "$@" >>"$logfile" 2>&1 </dev/null &
    EHRX_RUN_PID=$!
    while kill -0 "$EHRX_RUN_PID" 2>/dev/null; do
        sleep 1
        if (( SECONDS >= next )) && kill -0 "$EHRX_RUN_PID" 2>/dev/null; then
            next=$((SECONDS + hb))
            last=$(tail -n 1 "$logfile" 2>/dev/null | tr -d '\r' | cut -c1-110)
            printf '    ... [%s] still running, %s elapsed | %s\n' "$(_ehrx_ts)" \
                "$(fmt_duration $((SECONDS - start)))" "$last" >&2
        fi
    done
    wait "$EHRX_RUN_PID" || rc=$?
    EHRX_RUN_PID=""
    return "$rc"
}

# Kill a run_logged job (and its direct children) that is still running;
# for EXIT traps of scripts that use run_logged.
run_logged_abort() {
    if [[ -n "${EHRX_RUN_PID:-}" ]] && kill -0 "$EHRX_RUN_PID" 2>/dev/null; then
        pkill -TERM -P "$EHRX_RUN_PID" 2>/dev/null || true
        kill -TERM "$EHRX_RUN_PID" 2>/dev/null || true
    fi
}

# budget_report FACTOR ENFORCE BUDGETS_VAR TOOK_VAR COLD_VAR STAGE...
# Prints a table of each STAGE's time against its budget. BUDGETS_VAR names an array of
# "stage warm_secs cold_secs" lines; TOOK_VAR and COLD_VAR name associative arrays (seconds
# taken; 1 when the stage ran cold). Every budget is multiplied by FACTOR. A stage over 1.5x
# its budget is named with the fix; when ENFORCE is 1 the function then returns 1.
budget_report() {
    local factor=$1 enforce=$2
    local -n _budgets=$3 _took=$4 _cold=$5
    shift 5
    local -A warm=() cold=()
    local line name w c s took kind budget verdict over=()
    for line in "${_budgets[@]}"; do
        read -r name w c <<<"$line"
        warm[$name]=$w
        cold[$name]=$c
    done
    printf '\n%-12s %9s %9s %6s  %s\n' STAGE TOOK BUDGET CACHE VERDICT >&2
    for s in "$@"; do
        took=${_took[$s]:-0}
        if [[ "${_cold[$s]:-0}" == 1 ]]; then kind=cold; budget=${cold[$s]:-0}; else kind=warm; budget=${warm[$s]:-0}; fi
        budget=$(awk -v b="$budget" -v f="$factor" 'BEGIN { printf "%d", b * f }')
        if ((budget == 0)); then
            verdict="no budget"
        elif ((took * 2 > budget * 3)); then
            verdict="OVER 1.5x BUDGET"
            over+=("$s took $(fmt_duration "$took"), more than 1.5x its $kind budget of $(fmt_duration "$budget")")
        elif ((took > budget)); then
            verdict="over budget (within 1.5x)"
        else
            verdict=ok
        fi
        printf '%-12s %9s %9s %6s  %s\n' "$s" "$(fmt_duration "$took")" "$(fmt_duration "$budget")" "$kind" "$verdict" >&2
    done
    ((${#over[@]} == 0)) && return 0
    for line in "${over[@]}"; do
        printf '[%s] TIME BUDGET: %s.\n' "$(_ehrx_ts)" "$line" >&2
    done
    printf '  Find what made it slower in its output above (a new slow test, a rebuilt dependency, a\n' >&2
    printf '  longer wait), or, if the growth is intended, raise its budget in scripts/test.sh\n' >&2
    printf '  (BUDGETS) and say why in the commit. EHRX_BUDGET_FACTOR scales every budget on a\n' >&2
    printf '  slower machine; --no-budget only reports.\n' >&2
    if ((enforce)); then
        printf '\n[%s] ERROR: over the time budget\n' "$(_ehrx_ts)" >&2
        return 1
    fi
    return 0
}
