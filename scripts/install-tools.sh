#!/usr/bin/env bash
# Install the pinned tools this project needs, cached outside the repository.
#
#   scripts/install-tools.sh                 # everything
#   scripts/install-tools.sh wasmd hermes    # a subset
#   scripts/install-tools.sh --list          # list the pieces
#   scripts/install-tools.sh --check [PIECES] # exit 0 when all are installed and
#                                            # cached, 1 otherwise; installs nothing
#
# Pieces (versions and the reasons for them: shared/notes/stack.md):
#   apt             Debian packages (libclang-dev, protobuf-compiler,
#                   libprotobuf-dev, libssl-dev, pkg-config, clang, mold,
#                   librocksdb-dev, jq, curl, patchelf)
#   rust-target     rustup target wasm32-unknown-unknown
#   wasmd           wasmd v0.61.14, built from the Go module proxy
#   hermes          Hermes relayer (crate ibc-relayer-cli 1.13.2), binary `hermes`,
#                   built with opt-level 1 (see "Build profile" below)
#   cosmwasm-check  cosmwasm-check 3.0.10, built with opt-level 1
#   wasm-opt        wasm-opt from the npm package binaryen
#   fhir-validator  the HAPI FHIR validator harness of the tests (tests/fhir-validator,
#                   hapi-fhir-validation 8.8.1, R4), built with Maven
#   synthea         Synthea 3.3.0 from Maven Central, the test histories' generator
#                   (tests/synthea); both need java (17) and mvn
#
# apt and rust-target run first; then wasmd, hermes, cosmwasm-check, wasm-opt,
# fhir-validator and synthea are built at the same time (Go and two cargo builds
# keep both cores busy through each other's serial phases: linking, build scripts,
# single large crates; the two Maven pieces take seconds). Each prints its lines
# prefixed with its name. EHRX_INSTALL_SERIAL=1 builds them one after the other
# instead.
#
# Build profile of the two cargo-installed tools: opt-level 1 instead of the
# release default 3 (no LTO, 16 codegen units, no debug info: the crates set no
# profile of their own), the mold linker, and for Hermes Debian's RocksDB instead
# of the bundled C++ copy. Hermes' CPU time (user+sys) on 2 cores: 34.8 min at
# opt-level 3, 28.6 min at 1, 19.3 min at 1 with Debian's RocksDB; the relaying
# figures of scripts/bench.sh did not move (ICS-20 p50 1.94-1.95 s with the
# opt-level 1 build, 1.96 s with opt-level 3). README, "How long it takes", has
# the measurements. The recipe is part of the cache key
# (hermes-v1.13.2-o1-sysrocksdb), so a changed recipe builds anew.
#
# Everything goes under ${EHRX_TOOLS:-$HOME/.cache/ehrx-tools}, one directory
# per tool and version (e.g. $EHRX_TOOLS/wasmd-v0.61.14/bin/wasmd), exposed as
# symlinks in $EHRX_TOOLS/bin. scripts/lib.sh puts that directory on PATH for
# the other scripts. A piece whose cached binary exists and reports the pinned
# version is skipped, so a second run takes seconds. Build output goes to
# $EHRX_TOOLS/logs/<piece>.log, and the time a build took to <piece>.took
# ("SECONDS STATUS DATE"; scripts/bench.sh reports it).
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
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---- pinned versions --------------------------------------------------------
WASMD_VERSION=v0.61.14
# wasmd v0.61.14 pins bytedance/sonic v1.14.2, which does not compile with
# Go >= 1.26 ("undefined: GoMapIterator", cosmos/cosmos-sdk#25911). These are
# the first versions that do; applied only when the pinned one is older.
SONIC_VERSION=v1.15.1
SONIC_LOADER_VERSION=v0.5.1
HERMES_VERSION=1.13.2          # crate ibc-relayer-cli
COSMWASM_CHECK_VERSION=3.0.10  # 3.0.11 needs rustc >= 1.96
BINARYEN_VERSION=132.0.0       # npm package; Debian's binaryen 108 is too old
RUST_WASM_TARGET=wasm32-unknown-unknown

ALL_PIECES=(apt rust-target wasmd hermes cosmwasm-check wasm-opt fhir-validator synthea)

WASMD_DIR="$EHRX_TOOLS/wasmd-$WASMD_VERSION"
TOOLS_OPT_LEVEL="${EHRX_TOOLS_OPT_LEVEL:-1}"
# The cache key names the build recipe too: a changed recipe builds anew.
HERMES_DIR="$EHRX_TOOLS/hermes-v$HERMES_VERSION-o$TOOLS_OPT_LEVEL-sysrocksdb"
COSMWASM_CHECK_DIR="$EHRX_TOOLS/cosmwasm-check-$COSMWASM_CHECK_VERSION-o$TOOLS_OPT_LEVEL"
BINARYEN_DIR="$EHRX_TOOLS/binaryen-$BINARYEN_VERSION"
LOG_DIR="$EHRX_TOOLS/logs"
BUILD_ROOT="$EHRX_TOOLS/build"
JOBS="${CARGO_BUILD_JOBS:-2}"

usage() { usage_of "${BASH_SOURCE[0]}"; }

# ---- argument handling ------------------------------------------------------
PIECES=()
CHECK_ONLY=0
CHILD=0  # --child: one long piece, started by a parent run (no lock, no apt, no summary)
for arg in "$@"; do
    case "$arg" in
        --child) CHILD=1 ;;
        --check) CHECK_ONLY=1 ;;
        -h | --help) usage; exit 0 ;;
        --list) printf '%s\n' "${ALL_PIECES[@]}"; exit 0 ;;
        apt | debs) PIECES+=(apt) ;;
        rust-target | rust | wasm32) PIECES+=(rust-target) ;;
        wasmd) PIECES+=(wasmd) ;;
        hermes | ibc-relayer-cli) PIECES+=(hermes) ;;
        cosmwasm-check) PIECES+=(cosmwasm-check) ;;
        wasm-opt | binaryen) PIECES+=(wasm-opt) ;;
        fhir-validator | hapi) PIECES+=(fhir-validator) ;;
        synthea) PIECES+=(synthea) ;;
        *) die "unknown piece '$arg' (known: ${ALL_PIECES[*]})" ;;
    esac
done
if ((${#PIECES[@]} == 0)); then
    PIECES=("${ALL_PIECES[@]}")
fi
selected() {
    local p
    for p in "${PIECES[@]}"; do [[ "$p" == "$1" ]] && return 0; done
    return 1
}

# ---- bookkeeping for the summary and for failures ----------------------------
CURRENT_PIECE=""
declare -A STATUS=() DURATION=()

on_exit() {
    local rc=$?
    run_logged_abort
    if ((rc != 0)) && [[ -n "$CURRENT_PIECE" ]]; then
        local logf="$LOG_DIR/$CURRENT_PIECE.log"
        printf '\n[%s] FAILED: piece "%s" (exit %s)\n' "$(date '+%H:%M:%S')" "$CURRENT_PIECE" "$rc" >&2
        if [[ -s "$logf" ]]; then
            printf '  log: %s\n  last lines of the log:\n' "$logf" >&2
            tail -n 25 "$logf" | sed 's/^/    | /' >&2
        fi
        printf '  Fix the cause and re-run: %s %s\n' "$0" "$CURRENT_PIECE" >&2
    fi
}
trap on_exit EXIT

begin_piece() {  # begin_piece NAME "what"
    CURRENT_PIECE=$1
    step "$1: $2"
}
end_piece() {  # end_piece STATUS
    STATUS[$CURRENT_PIECE]=$1
    DURATION[$CURRENT_PIECE]=$(step_elapsed)
    # A piece that was built or installed leaves its time for scripts/bench.sh.
    if [[ $1 == built || $1 == installed ]]; then
        mkdir -p "$LOG_DIR"
        printf '%s %s %s\n' "${DURATION[$CURRENT_PIECE]}" "$1" "$(date -Is)" >"$LOG_DIR/$CURRENT_PIECE.took"
    fi
    step_done
    CURRENT_PIECE=""
}
new_log() {  # new_log PIECE -> path of a fresh log file
    mkdir -p "$LOG_DIR"
    local f="$LOG_DIR/$1.log"
    printf '# %s: %s\n' "$1" "$(date -Is)" >"$f"
    echo "$f"
}

# expose NAME TARGET: $EHRX_TOOLS/bin/NAME -> TARGET (relative when TARGET is
# inside $EHRX_TOOLS, so the cache can be moved or copied as a whole).
expose() {
    mkdir -p "$EHRX_TOOLS/bin"
    local target=$2
    [[ "$target" == "$EHRX_TOOLS/"* ]] && target="../${target#"$EHRX_TOOLS/"}"
    ln -sfn "$target" "$EHRX_TOOLS/bin/$1"
}

# Serialise concurrent runs (two shells, or CI next to a developer). A child runs
# under its parent's lock.
mkdir -p "$EHRX_TOOLS"
if ((CHILD == 0 && CHECK_ONLY == 0)); then
    exec 9>"$EHRX_TOOLS/.install.lock"
    if ! flock -n 9; then
        log "another install-tools.sh holds $EHRX_TOOLS/.install.lock; waiting for it"
        flock 9
    fi
fi

TOTAL_START=$SECONDS
log "tool cache: $EHRX_TOOLS (pieces: ${PIECES[*]})"

# ---- 1. Debian packages -----------------------------------------------------
# Installed with --no-install-recommends, so everything needed is listed:
#   libclang-dev, clang      bindgen (zstd-sys, librocksdb-sys) for Hermes
#   protobuf-compiler        protoc, for the Namada crates' build scripts (Hermes)
#   libprotobuf-dev          the well-known .proto files (google/protobuf/
#                            timestamp.proto) those build scripts import; only a
#                            Recommends of protobuf-compiler, and without it the
#                            namada_tx build script fails after ~14 min of build
#   libssl-dev, pkg-config   openssl-sys (Hermes)
#   patchelf                 points wasmd's rpath at its own directory
#   jq, curl                 used by the project's other scripts
#   mold                     a faster linker for the two cargo builds (their ~300
#                            build scripts, proc macros and the 80 MB hermes binary)
#   librocksdb-dev           Debian's RocksDB, linked instead of compiling the copy
#                            bundled in librocksdb-sys (see "RocksDB" below)
HERMES_DEBS=(libclang-dev clang protobuf-compiler libprotobuf-dev libssl-dev pkg-config mold librocksdb-dev)
ALL_DEBS=(jq curl "${HERMES_DEBS[@]}" patchelf)
piece_apt() {
    local wanted=(jq curl)
    if selected apt; then
        wanted=("${ALL_DEBS[@]}")
    else
        # Only what the selected pieces need.
        selected wasmd && wanted+=(patchelf)
        selected hermes && wanted+=("${HERMES_DEBS[@]}")
        selected cosmwasm-check && wanted+=(pkg-config mold)
    fi
    begin_piece apt "Debian packages (${wanted[*]})"
    local missing=() p
    for p in "${wanted[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        log "all present"
        end_piece present
        return
    fi
    log "missing: ${missing[*]}"
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 ||
            die "Debian packages missing (${missing[*]}) and not root, no sudo: install them with apt-get"
        sudo=(sudo)
    fi
    local logf
    logf=$(new_log apt)
    log "apt-get update (once), then install; log: $logf"
    run_logged "$logf" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
    run_logged "$logf" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
    end_piece installed
}

# ---- 2. Rust wasm target ----------------------------------------------------
piece_rust_target() {
    begin_piece rust-target "rustup target $RUST_WASM_TARGET"
    need_cmd rustup "install Rust with rustup"
    if piece_cached rust-target; then
        log "$RUST_WASM_TARGET already installed for $(rustc --version)"
        end_piece present
        return
    fi
    local logf
    logf=$(new_log rust-target)
    run_logged "$logf" rustup target add "$RUST_WASM_TARGET"
    end_piece installed
}

# ---- 3. wasmd -----------------------------------------------------------------
# wasmd_run DIR ARGS...: run DIR/bin/wasmd with a throwaway --home (every
# wasmd command writes a default config into its home, ~/.wasmd otherwise).
wasmd_run() {
    local bin="$1/bin/wasmd" home rc=0
    shift
    home=$(mktemp -d "${TMPDIR:-/tmp}/ehrx-wasmd-home.XXXXXX")
    "$bin" "$@" --home "$home" || rc=$?
    rm -rf "$home"
    return "$rc"
}
wasmd_ok() {  # wasmd_ok DIR: the binary runs, reports the pin, finds libwasmvm
    [[ -x "$1/bin/wasmd" && -f "$1/bin/libwasmvm.x86_64.so" ]] || return 1
    [[ "$(wasmd_run "$1" version 2>/dev/null)" == "${WASMD_VERSION#v}" ]] || return 1
    wasmd_run "$1" query wasm libwasmvm-version >/dev/null 2>&1 || return 1
}

build_wasmd() {  # build_wasmd STAGE_DIR BUILD_DIR (runs under run_logged)
    set -euo pipefail
    local stage=$1 bdir=$2 srcdir
    export GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:-}" CGO_ENABLED=1
    echo "+ go mod download -json github.com/CosmWasm/wasmd@$WASMD_VERSION"
    srcdir=$(go mod download -json "github.com/CosmWasm/wasmd@$WASMD_VERSION" | jq -r .Dir)
    [[ -d "$srcdir" ]] || { echo "module source dir not found: $srcdir"; return 1; }
    echo "+ copy $srcdir -> $bdir"
    rm -rf "$bdir"
    mkdir -p "$(dirname "$bdir")"
    cp -r "$srcdir" "$bdir"
    chmod -R u+w "$bdir"
    cd "$bdir"

    # Go 1.26 fix: bump sonic if the pinned one is older than SONIC_VERSION.
    local cur
    cur=$(go list -m -f '{{.Version}}' github.com/bytedance/sonic)
    if [[ "$(printf '%s\n%s\n' "$cur" "$SONIC_VERSION" | sort -V | head -n1)" != "$SONIC_VERSION" ]]; then
        echo "+ go get github.com/bytedance/sonic@$SONIC_VERSION github.com/bytedance/sonic/loader@$SONIC_LOADER_VERSION (was $cur)"
        go get "github.com/bytedance/sonic@$SONIC_VERSION" \
            "github.com/bytedance/sonic/loader@$SONIC_LOADER_VERSION"
        echo "+ go.mod changes:"
        diff "$srcdir/go.mod" go.mod || true
    fi

    # Flags as in wasmd's Makefile (build tags without `ledger`; no commit
    # hash: the module zip carries no git metadata).
    local ldflags="-checklinkname=0 \
-X github.com/cosmos/cosmos-sdk/version.Name=wasm \
-X github.com/cosmos/cosmos-sdk/version.AppName=wasmd \
-X github.com/cosmos/cosmos-sdk/version.Version=${WASMD_VERSION#v} \
-X github.com/CosmWasm/wasmd/app.Bech32Prefix=wasm \
-X github.com/cosmos/cosmos-sdk/version.BuildTags=netgo"
    mkdir -p "$stage/bin"
    echo "+ go build -mod=readonly -trimpath -tags netgo -ldflags '$ldflags' -o $stage/bin/wasmd ./cmd/wasmd"
    go build -v -mod=readonly -trimpath -tags netgo -ldflags "$ldflags" -o "$stage/bin/wasmd" ./cmd/wasmd

    # libwasmvm: the Go module ships the prebuilt shared library; cgo links
    # the binary with an rpath into the module cache. Copy the library next
    # to the binary and point the rpath at $ORIGIN so a cleaned module cache
    # (or another machine's) does not break wasmd.
    local vmdir
    vmdir=$(go list -m -f '{{.Dir}}' github.com/CosmWasm/wasmvm/v3)
    echo "+ wasmvm $(go list -m -f '{{.Version}}' github.com/CosmWasm/wasmvm/v3) from $vmdir"
    install -m 0644 "$vmdir/internal/api/libwasmvm.x86_64.so" "$stage/bin/"
    echo "+ rpath before: $(patchelf --print-rpath "$stage/bin/wasmd")"
    patchelf --set-rpath '$ORIGIN' "$stage/bin/wasmd"
    echo "+ rpath after: $(patchelf --print-rpath "$stage/bin/wasmd")"
}

piece_wasmd() {
    begin_piece wasmd "wasmd $WASMD_VERSION"
    if wasmd_ok "$WASMD_DIR"; then
        log "cached: $WASMD_DIR/bin/wasmd"
        expose wasmd "$WASMD_DIR/bin/wasmd"
        end_piece cached
        return
    fi
    need_cmd go "install Go >= 1.24"
    need_cmd jq "run: $0 apt"
    need_cmd patchelf "run: $0 apt"
    need_cmd gcc "cgo needs a C compiler"
    local logf stage bdir
    logf=$(new_log wasmd)
    stage="$WASMD_DIR.partial"
    bdir="$BUILD_ROOT/wasmd-$WASMD_VERSION"
    rm -rf "$stage"
    log "building from the Go module proxy ($(go version | awk '{print $3}')); log: $logf"
    run_logged "$logf" build_wasmd "$stage" "$bdir"
    rm -rf "$WASMD_DIR"
    mv "$stage" "$WASMD_DIR"
    # Verify the installed copy: the library must resolve next to the binary.
    local resolved
    resolved=$(ldd "$WASMD_DIR/bin/wasmd" | awk '/libwasmvm/ {print $3}')
    log "libwasmvm resolves to: $resolved"
    [[ "$resolved" == "$WASMD_DIR/bin/libwasmvm.x86_64.so" ]] ||
        die "wasmd: libwasmvm.x86_64.so resolves to '$resolved', expected $WASMD_DIR/bin (log: $logf)"
    {
        echo "+ wasmd version --long"
        wasmd_run "$WASMD_DIR" version --long
        echo "+ wasmd query wasm libwasmvm-version"
        wasmd_run "$WASMD_DIR" query wasm libwasmvm-version
    } >>"$logf" 2>&1
    wasmd_ok "$WASMD_DIR" || die "wasmd: built binary fails its version check (log: $logf)"
    log "wasmd $(wasmd_run "$WASMD_DIR" version), libwasmvm $(wasmd_run "$WASMD_DIR" query wasm libwasmvm-version 2>&1)"
    [[ -n "${EHRX_KEEP_BUILD:-}" ]] || rm -rf "$bdir"
    expose wasmd "$WASMD_DIR/bin/wasmd"
    end_piece built
}

# cargo_install_tool PIECE TARGET_DIR ARGS...: `cargo install --target-dir
# TARGET_DIR ARGS` with this script's build profile: opt-level $TOOLS_OPT_LEVEL and
# the mold linker; for Hermes, Debian's RocksDB (ROCKSDB_LIB_DIR). cargo's --timings
# report is kept as $LOG_DIR/PIECE-timings.html.
cargo_install_tool() {
    local piece=$1 target_dir=$2
    shift 2
    local extra=()
    if [[ $piece == hermes ]]; then
        extra=(ROCKSDB_LIB_DIR="$(pkg-config --variable=libdir rocksdb)")
    fi
    echo "+ ${extra[*]} CARGO_PROFILE_RELEASE_OPT_LEVEL=$TOOLS_OPT_LEVEL RUSTFLAGS='-C link-arg=-fuse-ld=mold' cargo install --timings --target-dir $target_dir $*"
    env -u CARGO_BUILD_TARGET -u CARGO_TARGET_DIR -u CARGO_ENCODED_RUSTFLAGS \
        CARGO_PROFILE_RELEASE_OPT_LEVEL="$TOOLS_OPT_LEVEL" \
        RUSTFLAGS="-C link-arg=-fuse-ld=mold" "${extra[@]}" \
        cargo install --timings --target-dir "$target_dir" "$@"
    cp "$target_dir"/cargo-timings/cargo-timing.html "$LOG_DIR/$piece-timings.html" 2>/dev/null || true
}

# ---- 4. Hermes ----------------------------------------------------------------
hermes_ok() {
    [[ -x "$1/bin/hermes" ]] || return 1
    "$1/bin/hermes" version 2>/dev/null | grep -q "$HERMES_VERSION" || return 1
}

# crate_file NAME VERSION: path of the .crate in cargo's download cache,
# downloading it with `cargo info` (which fetches the package) if needed.
crate_file() {
    local name=$1 ver=$2 f
    local reg="${CARGO_HOME:-$HOME/.cargo}/registry/cache"
    f=$(ls -t "$reg"/*/"$name-$ver.crate" 2>/dev/null | head -n1 || true)
    if [[ -z "$f" ]]; then
        echo "+ cargo info $name@$ver (downloads the package)" >&2
        (cd "$BUILD_ROOT" && cargo info "$name@$ver" >/dev/null)
        f=$(ls -t "$reg"/*/"$name-$ver.crate" 2>/dev/null | head -n1 || true)
    fi
    [[ -n "$f" ]] || { echo "could not obtain $name-$ver.crate" >&2; return 1; }
    echo "$f"
}

# Hermes build, and why it is not a plain `cargo install ibc-relayer-cli`:
#  * `--locked` is required: without the crate's own Cargo.lock, resolution
#    fails today (core2 0.3.x, needed by the Namada dependencies, is yanked)
#    or picks untested versions.
#  * ibc-relayer enables penumbra-sdk-proof-params' `download-proving-keys`.
#    That crate, as published, ships Git-LFS pointer files (~130 bytes) for its
#    seven src/gen/*_pk.bin proving keys, and its build script downloads the
#    real keys (~100 MB) from GitHub, which is not reachable here, so the build
#    fails. The build script skips the download when each file is >= 500 bytes.
#    The keys are only loaded lazily when Hermes talks to a Penumbra chain;
#    Cosmos SDK chains (our wasmd) never touch them. So we build against a
#    copy of that crate whose *_pk.bin files hold a 512-byte placeholder.
#    (A Hermes built this way cannot relay for Penumbra chains.)
#  * `cargo install <crate>` from the registry ignores [patch] (also from
#    --config; rust-lang/cargo#12855), so we unpack ibc-relayer-cli into a
#    throwaway build directory, add `[patch.crates-io]` pointing at the
#    patched copy to its manifest, let cargo update the lock for that one
#    package only (checked: exactly its source+checksum lines go away), and
#    then `cargo install --locked --path`.
#  * RocksDB: ibc-relayer depends on Penumbra's storage crate (cnidarium), which
#    pulls librocksdb-sys, whose build script compiles the bundled RocksDB 8.1.1
#    C++ sources: 15m39s of the Hermes build in its cargo --timings report, the
#    largest unit by far. With ROCKSDB_LIB_DIR it links Debian's librocksdb
#    (7.8.3) instead; the Rust bindings are still generated from the bundled
#    8.1.1 headers. The C functions the rocksdb crate has that 7.8.3 lacks
#    (hyper-clock cache, latest sequence number, async-io read option) are not
#    called by cnidarium, and the linker drops the unused wrappers. Hermes opens
#    no RocksDB for Cosmos SDK chains at all.
build_hermes() {  # build_hermes STAGE_DIR BUILD_DIR (runs under run_logged)
    set -euo pipefail
    local stage=$1 bdir=$2 crate src pp_ver pp_sum pp_crate pp_dir f
    # Fresh sources, but keep $bdir/target from a failed attempt: a retry
    # then only compiles what is left (the paths are the same every time).
    rm -rf "$bdir/ibc-relayer-cli-$HERMES_VERSION" "$bdir/patched" "$bdir/Cargo.lock.orig"
    mkdir -p "$bdir"
    crate=$(crate_file ibc-relayer-cli "$HERMES_VERSION")
    echo "+ unpack $crate"
    tar -xzf "$crate" -C "$bdir"
    src="$bdir/ibc-relayer-cli-$HERMES_VERSION"
    [[ -f "$src/Cargo.lock" ]] || { echo "ibc-relayer-cli crate has no Cargo.lock"; return 1; }
    cp "$src/Cargo.lock" "$bdir/Cargo.lock.orig"

    # The version of penumbra-sdk-proof-params the crate's lock file pins.
    read -r pp_ver pp_sum < <(awk '
        /^\[\[package\]\]/ {n=""; v=""}
        /^name = / {n=$3; gsub(/"/, "", n)}
        /^version = / {v=$3; gsub(/"/, "", v)}
        /^checksum = / && n == "penumbra-sdk-proof-params" {c=$3; gsub(/"/, "", c); print v, c}
    ' "$src/Cargo.lock") || true
    [[ -n "$pp_ver" && -n "$pp_sum" ]] || { echo "penumbra-sdk-proof-params not in Cargo.lock"; return 1; }
    echo "+ Cargo.lock pins penumbra-sdk-proof-params $pp_ver (sha256 $pp_sum)"
    pp_crate=$(crate_file penumbra-sdk-proof-params "$pp_ver")
    [[ "$(sha256sum "$pp_crate" | cut -d' ' -f1)" == "$pp_sum" ]] ||
        { echo "checksum mismatch for $pp_crate"; return 1; }
    mkdir -p "$bdir/patched"
    tar -xzf "$pp_crate" -C "$bdir/patched"
    pp_dir="$bdir/patched/penumbra-sdk-proof-params-$pp_ver"
    local n=0
    for f in "$pp_dir"/src/gen/*_pk.bin; do
        if (( $(stat -c %s "$f") < 500 )); then
            echo "+ placeholder for $(basename "$f") (was a $(stat -c %s "$f")-byte Git-LFS pointer)"
            {
                printf 'PLACEHOLDER, NOT A PENUMBRA PROVING KEY. Written by ehrx scripts/install-tools.sh\n'
                printf 'so that the crate builds offline; Penumbra proofs are not used for Cosmos SDK chains.\n'
            } >"$f"
            truncate -s 512 "$f"
            n=$((n + 1))
        fi
    done
    echo "+ $n proving-key files replaced"

    cat >>"$src/Cargo.toml" <<EOF

# Added by ehrx scripts/install-tools.sh: build offline against a copy of
# penumbra-sdk-proof-params whose Git-LFS pointers are replaced by placeholders.
[patch.crates-io]
penumbra-sdk-proof-params = { path = "$pp_dir" }
EOF
    # Let cargo record the patch in the lock file (no --locked here; yanked
    # versions already in the lock are kept), then check that nothing but the
    # patched package changed.
    echo "+ cargo tree -i penumbra-sdk-proof-params (updates the lock for the patch only)"
    (cd "$src" && env -u RUSTFLAGS -u CARGO_BUILD_TARGET cargo tree -e normal -i penumbra-sdk-proof-params --depth 0)
    local changed
    changed=$(diff "$bdir/Cargo.lock.orig" "$src/Cargo.lock" | grep '^[<>]' || true)
    echo "+ lock file changes:"
    echo "$changed"
    if [[ "$(echo "$changed" | grep -c '^>' || true)" != 0 ]] ||
        [[ "$(echo "$changed" | grep -c '^<')" != 2 ]] ||
        ! echo "$changed" | grep -q "^< checksum = \"$pp_sum\""; then
        echo "unexpected Cargo.lock changes after patching; refusing to build"
        return 1
    fi

    cargo_install_tool hermes "$bdir/target" --locked --path "$src" --root "$stage" \
        -j "$JOBS" --bin hermes
}

piece_hermes() {
    begin_piece hermes "Hermes (ibc-relayer-cli $HERMES_VERSION)"
    if hermes_ok "$HERMES_DIR"; then
        log "cached: $HERMES_DIR/bin/hermes"
        expose hermes "$HERMES_DIR/bin/hermes"
        end_piece cached
        return
    fi
    need_cmd cargo "install Rust with rustup"
    local deb
    for deb in "${HERMES_DEBS[@]}"; do
        dpkg -s "$deb" >/dev/null 2>&1 || die "Debian package $deb missing (needed to build Hermes); run: $0 apt"
    done
    local logf stage bdir
    logf=$(new_log hermes)
    stage="$HERMES_DIR.partial"
    bdir="$BUILD_ROOT/hermes-v$HERMES_VERSION"
    rm -rf "$stage"
    mkdir -p "$BUILD_ROOT"
    log "building from crates.io with $JOBS jobs, opt-level $TOOLS_OPT_LEVEL (~980 crates incl. RocksDB); log: $logf"
    run_logged "$logf" build_hermes "$stage" "$bdir"
    hermes_ok "$stage" || die "hermes: built binary fails '$stage/bin/hermes version' (log: $logf)"
    rm -rf "$HERMES_DIR"
    mv "$stage" "$HERMES_DIR"
    "$HERMES_DIR/bin/hermes" version >>"$logf" 2>&1
    log "$("$HERMES_DIR/bin/hermes" version 2>/dev/null | tail -n1)"
    [[ -n "${EHRX_KEEP_BUILD:-}" ]] || rm -rf "$bdir"
    expose hermes "$HERMES_DIR/bin/hermes"
    end_piece built
}

# ---- 5. cosmwasm-check ------------------------------------------------------
cosmwasm_check_ok() {
    [[ -x "$1/bin/cosmwasm-check" ]] || return 1
    [[ "$("$1/bin/cosmwasm-check" --version 2>/dev/null)" == *" $COSMWASM_CHECK_VERSION" ]] || return 1
}

piece_cosmwasm_check() {
    begin_piece cosmwasm-check "cosmwasm-check $COSMWASM_CHECK_VERSION"
    if cosmwasm_check_ok "$COSMWASM_CHECK_DIR"; then
        log "cached: $COSMWASM_CHECK_DIR/bin/cosmwasm-check"
        expose cosmwasm-check "$COSMWASM_CHECK_DIR/bin/cosmwasm-check"
        end_piece cached
        return
    fi
    need_cmd cargo "install Rust with rustup"
    local logf stage bdir
    logf=$(new_log cosmwasm-check)
    stage="$COSMWASM_CHECK_DIR.partial"
    bdir="$BUILD_ROOT/cosmwasm-check-$COSMWASM_CHECK_VERSION"
    rm -rf "$stage"
    log "cargo install --locked (the crate's own Cargo.lock) with $JOBS jobs, opt-level $TOOLS_OPT_LEVEL; log: $logf"
    run_logged "$logf" cargo_install_tool cosmwasm-check "$bdir" --locked \
        --version "$COSMWASM_CHECK_VERSION" cosmwasm-check --root "$stage" -j "$JOBS"
    cosmwasm_check_ok "$stage" || die "cosmwasm-check: built binary fails its version check (log: $logf)"
    rm -rf "$COSMWASM_CHECK_DIR"
    mv "$stage" "$COSMWASM_CHECK_DIR"
    [[ -n "${EHRX_KEEP_BUILD:-}" ]] || rm -rf "$bdir"
    expose cosmwasm-check "$COSMWASM_CHECK_DIR/bin/cosmwasm-check"
    end_piece built
}

# ---- 6. wasm-opt (npm binaryen) ------------------------------------------------
WASM_OPT_MAJOR=${BINARYEN_VERSION%%.*}
wasm_opt_ok() {
    local bin="$1/node_modules/.bin/wasm-opt"
    [[ -x "$bin" ]] || return 1
    "$bin" --version 2>/dev/null | grep -q "version $WASM_OPT_MAJOR\b" || return 1
}

piece_wasm_opt() {
    begin_piece wasm-opt "wasm-opt (npm binaryen@$BINARYEN_VERSION)"
    if wasm_opt_ok "$BINARYEN_DIR"; then
        log "cached: $BINARYEN_DIR/node_modules/.bin/wasm-opt"
        expose wasm-opt "$BINARYEN_DIR/node_modules/.bin/wasm-opt"
        end_piece cached
        return
    fi
    need_cmd npm "install Node.js and npm"
    local logf stage
    logf=$(new_log wasm-opt)
    stage="$BINARYEN_DIR.partial"
    rm -rf "$stage"
    mkdir -p "$stage"
    log "npm install --prefix $stage binaryen@$BINARYEN_VERSION; log: $logf"
    run_logged "$logf" npm install --prefix "$stage" --no-audit --no-fund \
        "binaryen@$BINARYEN_VERSION"
    rm -rf "$BINARYEN_DIR"
    mv "$stage" "$BINARYEN_DIR"
    wasm_opt_ok "$BINARYEN_DIR" || die "wasm-opt: '$BINARYEN_DIR/node_modules/.bin/wasm-opt --version' does not report version $WASM_OPT_MAJOR (log: $logf)"
    expose wasm-opt "$BINARYEN_DIR/node_modules/.bin/wasm-opt"
    end_piece installed
}


# ---- 7. fhir-validator and synthea (Java, Maven Central) ---------------------------
# Two Maven projects in tests/, each built into a directory named after its version and a
# hash of its sources (pom.xml and src/), so a changed harness builds anew:
#   fhir-validator  $EHRX_TOOLS/fhir-validator-<hapi>-<hash>/   the HAPI FHIR validator harness
#   synthea         $EHRX_TOOLS/synthea-<version>-<hash>/       the test histories' generator
# Each holds lib/*.jar (the jar and its runtime dependencies, copied by Maven) and a launcher
# bin/<piece> (`java -cp 'lib/*' MAIN "$@"`), exposed in $EHRX_TOOLS/bin. Maven's local
# repository is Maven's own (~/.m2, or -Dmaven.repo.local from MAVEN_OPTS): a cold one fills
# in seconds here (both projects: 7.5 s each from an empty repository, 190 and 200 MB).
# The tests find them through tests/src/fhir_tools.rs, which recomputes the hash (the same
# recipe as src_hash below) and refuses a harness built from other sources.
FHIR_VALIDATOR_SRC="$EHRX_REPO_ROOT/tests/fhir-validator"
SYNTHEA_SRC="$EHRX_REPO_ROOT/tests/synthea"
# src_hash DIR: sha256 over pom.xml and every file under src/, in byte order of their paths,
# each as "PATH\nSIZE\n" then its bytes; the first 16 hex digits.
src_hash() {
    (
        cd "$1"
        find pom.xml src -type f 2>/dev/null | LC_ALL=C sort | while IFS= read -r f; do
            printf '%s\n%s\n' "$f" "$(stat -c %s "$f")"
            cat "$f"
        done
    ) | sha256sum | cut -c1-16
}
# pom_property POM NAME: the value of <NAME> in the pom's <properties>.
pom_property() {
    sed -n "s:.*<$2>\([^<]*\)</$2>.*:\1:p" "$1" | head -n1
}
java_tool_dir() {  # java_tool_dir PIECE
    case "$1" in
        fhir-validator) echo "$EHRX_TOOLS/fhir-validator-$(pom_property "$FHIR_VALIDATOR_SRC/pom.xml" hapi.version)-$(src_hash "$FHIR_VALIDATOR_SRC")" ;;
        synthea) echo "$EHRX_TOOLS/synthea-$(pom_property "$SYNTHEA_SRC/pom.xml" synthea.version)-$(src_hash "$SYNTHEA_SRC")" ;;
    esac
}
java_tool_main() {  # java_tool_main PIECE: the class the launcher runs
    case "$1" in
        fhir-validator) echo ehrx.FhirValidate ;;
        synthea) echo App ;;
    esac
}
java_tool_ok() {  # java_tool_ok PIECE DIR: the launcher runs and answers --help / -h
    [[ -x "$2/bin/$1" && -d "$2/lib" ]] || return 1
    case "$1" in
        fhir-validator) "$2/bin/$1" --help >/dev/null 2>&1 ;;
        synthea) "$2/bin/$1" -h 2>/dev/null | grep -q '^Usage: run_synthea' ;;
    esac
}

build_java_tool() {  # build_java_tool PIECE SRC STAGE_DIR BUILD_DIR (runs under run_logged)
    set -euo pipefail
    local piece=$1 src=$2 stage=$3 bdir=$4
    rm -rf "$bdir"
    mkdir -p "$bdir" "$stage/bin"
    cp -r "$src/pom.xml" "$bdir/"
    [[ -d "$src/src" ]] && cp -r "$src/src" "$bdir/"
    echo "+ mvn -B package in $bdir (MAVEN_OPTS=${MAVEN_OPTS:-})"
    (cd "$bdir" && mvn -B --no-transfer-progress package)
    cp -r "$bdir/target/lib" "$stage/lib"
    cp "$bdir"/target/*.jar "$stage/lib/" 2>/dev/null || true
    cat >"$stage/bin/$piece" <<LAUNCHER
#!/usr/bin/env bash
# $piece, built by ehrx scripts/install-tools.sh. JAVA_TOOL_OPTS: extra JVM options.
dir=\$(cd "\$(dirname "\$(readlink -f "\${BASH_SOURCE[0]}")")/.." && pwd)
# shellcheck disable=SC2086
exec java \${JAVA_TOOL_OPTS:-} -cp "\$dir/lib/*" $(java_tool_main "$piece") "\$@"
LAUNCHER
    chmod +x "$stage/bin/$piece"
    echo "+ $(du -sh "$stage" | cut -f1) in $stage ($(find "$stage/lib" -name '*.jar' | wc -l) jars)"
}

piece_java_tool() {  # piece_java_tool PIECE SRC "what"
    local piece=$1 src=$2 dir
    dir=$(java_tool_dir "$piece")
    begin_piece "$piece" "$3"
    if java_tool_ok "$piece" "$dir"; then
        log "cached: $dir/bin/$piece"
        expose "$piece" "$dir/bin/$piece"
        end_piece cached
        return
    fi
    need_cmd java "install a Java 17 JDK (Debian: apt-get install openjdk-17-jdk-headless)"
    need_cmd mvn "install Maven (Debian: apt-get install maven)"
    local logf stage bdir
    logf=$(new_log "$piece")
    stage="$dir.partial"
    bdir="$BUILD_ROOT/$(basename "$dir")"
    rm -rf "$stage"
    log "mvn package from Maven Central; log: $logf"
    run_logged "$logf" build_java_tool "$piece" "$src" "$stage" "$bdir"
    java_tool_ok "$piece" "$stage" || die "$piece: the built launcher $stage/bin/$piece does not start (log: $logf)"
    rm -rf "$dir"
    mv "$stage" "$dir"
    [[ -n "${EHRX_KEEP_BUILD:-}" ]] || rm -rf "$bdir"
    expose "$piece" "$dir/bin/$piece"
    end_piece built
}
piece_fhir_validator() {
    piece_java_tool fhir-validator "$FHIR_VALIDATOR_SRC" \
        "HAPI FHIR validator harness (hapi-fhir-validation $(pom_property "$FHIR_VALIDATOR_SRC/pom.xml" hapi.version), R4)"
}
piece_synthea() {
    piece_java_tool synthea "$SYNTHEA_SRC" \
        "Synthea $(pom_property "$SYNTHEA_SRC/pom.xml" synthea.version) (org.mitre.synthea:synthea)"
}
# ---- run ----------------------------------------------------------------------
piece_cached() {
    case "$1" in
        apt)
            local p
            for p in "${ALL_DEBS[@]}"; do
                dpkg -s "$p" >/dev/null 2>&1 || return 1
            done
            ;;
        rust-target) rustup target list --installed 2>/dev/null | grep -qx "$RUST_WASM_TARGET" ;;
        wasmd) wasmd_ok "$WASMD_DIR" ;;
        hermes) hermes_ok "$HERMES_DIR" ;;
        cosmwasm-check) cosmwasm_check_ok "$COSMWASM_CHECK_DIR" ;;
        wasm-opt) wasm_opt_ok "$BINARYEN_DIR" ;;
        fhir-validator | synthea) java_tool_ok "$1" "$(java_tool_dir "$1")" ;;
    esac
}

# --check: report, install nothing.
if ((CHECK_ONLY)); then
    missing=()
    for p in "${PIECES[@]}"; do
        piece_cached "$p" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        log "not installed yet: ${missing[*]} (run: $0 ${missing[*]})"
        exit 1
    fi
    log "installed and cached: ${PIECES[*]}"
    exit 0
fi

# A child builds its one piece; end_piece leaves its time in $LOG_DIR/<piece>.took,
# which the parent reads back.
if ((CHILD)); then
    ((${#PIECES[@]} == 1)) || die "--child takes exactly one piece"
    "piece_${PIECES[0]//-/_}"
    exit 0
fi

# apt first when any piece needs packages, and the Rust target.
if selected apt || selected wasmd || selected hermes || selected cosmwasm-check; then
    piece_apt
fi
selected rust-target && piece_rust_target

# The long pieces: cached ones are linked here at once; those to build run in parallel
# as child runs of this script, each line prefixed with the piece's name.
TO_BUILD=()
for p in wasmd hermes cosmwasm-check wasm-opt fhir-validator synthea; do
    selected "$p" || continue
    if piece_cached "$p" || [[ -n "${EHRX_INSTALL_SERIAL:-}" ]]; then
        "piece_${p//-/_}"
    else
        TO_BUILD+=("$p")
    fi
done
if ((${#TO_BUILD[@]} == 1)); then
    "piece_${TO_BUILD[0]//-/_}"
elif ((${#TO_BUILD[@]} > 1)); then
    step "building in parallel: ${TO_BUILD[*]} (logs: $LOG_DIR/<piece>.log)"
    declare -A CHILD_PID=()
    for p in "${TO_BUILD[@]}"; do
        rm -f "$LOG_DIR/$p.took"
        "$0" --child "$p" > >(sed -u "s/^/[$p] /" >&2) 2>&1 &
        CHILD_PID[$p]=$!
    done
    # On interruption, stop every build. (A failed build lets the others finish, so
    # that they are cached for the re-run.)
    kill_children() {
        local pid
        for pid in "${CHILD_PID[@]}"; do
            pkill -TERM -P "$pid" 2>/dev/null || true
            kill -TERM "$pid" 2>/dev/null || true
        done
    }
    trap 'kill_children; exit 130' INT TERM
    failed=()
    for p in "${TO_BUILD[@]}"; do
        if ! wait "${CHILD_PID[$p]}"; then
            failed+=("$p")
        fi
        if [[ -f "$LOG_DIR/$p.took" ]]; then
            read -r "DURATION[$p]" "STATUS[$p]" _ <"$LOG_DIR/$p.took"
        else
            STATUS[$p]=FAILED
            DURATION[$p]=$(step_elapsed)
        fi
    done
    trap - INT TERM
    step_done
    if ((${#failed[@]})); then
        die "building ${failed[*]} failed (see the lines prefixed [${failed[0]}] above and $LOG_DIR/${failed[0]}.log); fix the cause and re-run: $0 ${failed[*]}"
    fi
fi

# ---- summary ------------------------------------------------------------------
rmdir "$BUILD_ROOT" 2>/dev/null || true  # only when empty
tool_line() {  # tool_line PIECE VERSION-COMMAND PATH
    local piece=$1 ver=$2 path=$3
    printf '  %-15s %-10s %-8s %-40s %s\n' "$piece" "${STATUS[$piece]:-}" \
        "$(fmt_duration "${DURATION[$piece]:-0}")" "$ver" "$path"
}
echo
echo "Summary (total $(fmt_duration $((SECONDS - TOTAL_START))))"
printf '  %-15s %-10s %-8s %-40s %s\n' PIECE STATUS TIME VERSION PATH
if selected apt || [[ -n "${STATUS[apt]:-}" ]]; then
    tool_line apt "Debian packages" "dpkg"
fi
selected rust-target && tool_line rust-target "$(rustc --version | awk '{print "rustc " $2}')" "$RUST_WASM_TARGET"
selected wasmd && tool_line wasmd "wasmd $(wasmd_run "$WASMD_DIR" version 2>/dev/null), libwasmvm $(wasmd_run "$WASMD_DIR" query wasm libwasmvm-version 2>/dev/null)" "$WASMD_DIR/bin/wasmd"
selected hermes && tool_line hermes "$("$HERMES_DIR/bin/hermes" version 2>/dev/null | tail -n1)" "$HERMES_DIR/bin/hermes"
selected cosmwasm-check && tool_line cosmwasm-check "$("$COSMWASM_CHECK_DIR/bin/cosmwasm-check" --version 2>/dev/null)" "$COSMWASM_CHECK_DIR/bin/cosmwasm-check"
selected wasm-opt && tool_line wasm-opt "$("$BINARYEN_DIR/node_modules/.bin/wasm-opt" --version 2>/dev/null)" "$BINARYEN_DIR/node_modules/.bin/wasm-opt"
selected fhir-validator && tool_line fhir-validator "hapi-fhir-validation $(pom_property "$FHIR_VALIDATOR_SRC/pom.xml" hapi.version)" "$(java_tool_dir fhir-validator)/bin/fhir-validator"
selected synthea && tool_line synthea "synthea $(pom_property "$SYNTHEA_SRC/pom.xml" synthea.version)" "$(java_tool_dir synthea)/bin/synthea"
echo
echo "Tools are linked in $EHRX_TOOLS/bin (scripts that source scripts/lib.sh get it on PATH). For your shell:"
echo "  export PATH=\"$EHRX_TOOLS/bin:\$PATH\""
