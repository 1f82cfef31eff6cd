#!/usr/bin/env bash
# coda's two entry points (see README):
#
#   bash run.sh serve [ARGS...]   build (release) and run `coda serve ARGS...`
#   bash run.sh test              install build deps and test peers, then run
#                                 fmt, clippy, build, cargo tests and tests/interop
#
# Installs what is missing only (Debian packages are checked with dpkg-query first,
# the Python venv ./venv is rebuilt only when tests/interop/requirements.txt
# changes), so a second run goes straight to the build. Works non-interactively
# (CI=true, no stdin).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT="$PWD"
export DEBIAN_FRONTEND=noninteractive
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in tests/interop
if ! command -v cargo >/dev/null 2>&1 && [ -d "$HOME/.cargo/bin" ]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi

# Debian packages needed to build coda (C toolchain; libtiff/libjpeg/libclang for
# the fax code's spandsp build and its bindgen).
BUILD_DEPS=(build-essential pkg-config libtiff-dev libjpeg-dev libclang-dev)
# Test peers: baresip (caller), SIPp (scenarios), python3-venv for the Python peers
# (pjsua2, aiosmtpd). espeak-ng and sox are only needed to regenerate
# fixtures/audio (fixtures/audio/make.sh), not to run the tests. The fax peer uses
# Debian's own libspandsp (a different build from coda's vendored one); pdftoppm
# (poppler-utils) renders mailed PDFs back; libtiff-tools checks TIFFs.
TEST_DEPS=(baresip-core sip-tester python3 python3-venv openssl libspandsp2 poppler-utils libtiff-tools)

section() { printf '\n==================== %s ====================\n' "$*"; }

APT_UPDATED=0
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    section "apt-get install ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
    if [ "$APT_UPDATED" -eq 0 ]; then
        "${sudo[@]}" apt-get update -q
        APT_UPDATED=1
    fi
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
}

setup_venv() {
    local req="$ROOT/tests/interop/requirements.txt" stamp="$ROOT/venv/.requirements.sha256" want
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    if [ -x venv/bin/python ] && venv/bin/python -c 'import sys' 2>/dev/null \
        && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    section "Python venv (./venv) for the interop peers"
    rm -rf venv
    local py="${PYTHON:-python3}"
    if ! "$py" -m venv venv; then
        rm -rf venv
        /usr/bin/python3 -m venv venv
    fi
    venv/bin/pip install -q --disable-pip-version-check -r "$req"
    echo "$want" >"$stamp"
}

cmd_serve() {
    apt_install "${BUILD_DEPS[@]}"
    cargo build --release >&2
    exec target/release/coda serve "$@"
}

cmd_test() {
    local t0=$SECONDS
    apt_install "${BUILD_DEPS[@]}" "${TEST_DEPS[@]}"
    setup_venv

    # One profile for everything: `cargo test --release` reuses the dependencies
    # `cargo build --release` compiled for the interop binary, so the (large)
    # dependency tree is compiled once instead of once per profile.
    section "cargo fmt --check"
    cargo fmt --all -- --check
    section "cargo clippy"
    cargo clippy --workspace --all-targets -- -D warnings
    section "cargo build --release"
    cargo build --release
    section "cargo test --release"
    cargo test --workspace --release
    section "interop tests (pytest tests/interop)"
    venv/bin/pytest -v tests/interop "$@"
    section "all tests passed in $((SECONDS - t0)) s"
}

case "${1:-}" in
    serve) shift; cmd_serve "$@" ;;
    test) shift; cmd_test "$@" ;;
    *)
        echo "usage: bash run.sh serve [ARGS...] | bash run.sh test" >&2
        exit 2
        ;;
esac
