# Sourced by scripts/demo and scripts/test: make .venv with the project installed, and
# install Debian packages that are missing. Idempotent: a second run installs nothing.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
PY="$VENV/bin/python"

apt_install() {
    # apt_install CMD_OR_CHECK PACKAGE... : install PACKAGEs when CHECK fails.
    local check="$1"; shift
    if ! eval "$check" >/dev/null 2>&1; then
        if [ "$(id -u)" != 0 ]; then
            echo "missing: $* (install them with apt-get as root)" >&2
            return 1
        fi
        if [ -z "${_APT_UPDATED:-}" ]; then
            DEBIAN_FRONTEND=noninteractive apt-get update -qq
            _APT_UPDATED=1
        fi
        echo "installing Debian packages: $*" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    fi
}

ensure_venv() {
    local extras="$1"
    local stamp="$VENV/.plasm-installed-$extras"
    if [ ! -x "$PY" ]; then
        local base="${PYTHON:-python3}"
        "$base" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
            echo "plasm needs Python >= 3.11; set PYTHON=/path/to/python3.11" >&2; exit 1; }
        "$base" -m venv "$VENV"
    fi
    if [ ! -f "$stamp" ] || [ "$REPO/pyproject.toml" -nt "$stamp" ]; then
        # libp2p pins fastecdsa, which PyPI has only as source: it compiles against GMP.
        apt_install "dpkg -s libgmp-dev && command -v gcc" libgmp-dev gcc
        echo "installing plasm and its Python dependencies into .venv" >&2
        "$PY" -m pip install -q --disable-pip-version-check -e "$REPO[$extras]" 2>&1 \
            | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
        "$PY" -c 'import plasm.actors, wasmtime, pykka, nacl, cbor2' \
            || { echo "installing plasm into .venv failed" >&2; exit 1; }
        touch "$stamp"
    fi
}
