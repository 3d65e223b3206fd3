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
#   - fmt_duration SECONDS      "1m05s"
#   - usage_of FILE             FILE's header comment; -h/--help of every script
#                               that sources this file prints its own and exits
#   - xtask_exec SUBCOMMAND ... build packages/xtask and run `xtask SUBCOMMAND ...` in
#                               place of the script (the logic of most scripts is there)

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

# xtask_exec SUBCOMMAND [ARGS...]: builds packages/xtask (debug; a no-op when up to date,
# ~20 s the first time) and replaces the script with `xtask SUBCOMMAND ARGS`.
xtask_exec() {
    need_cmd cargo "install Rust with rustup: https://rustup.rs"
    # In a target directory of its own: the test command judges a Rust stage cold or warm by
    # what the project's target directory holds, which xtask's own build must not fill.
    local dir="${CARGO_TARGET_DIR:-$EHRX_REPO_ROOT/target}/xtask"
    local xtask="$dir/debug/xtask"
    [[ -x "$xtask" ]] || log "building the project's tasks (packages/xtask, once)"
    env -u CARGO_BUILD_TARGET cargo build -q -p xtask --target-dir "$dir" --manifest-path "$EHRX_REPO_ROOT/Cargo.toml" ||
        die "building packages/xtask failed (cargo build -p xtask, output above)"
    exec "$xtask" "$@"
}
