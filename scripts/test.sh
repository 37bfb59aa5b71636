#!/usr/bin/env bash
# Installs what the tests need (Debian/Ubuntu, as root) and runs them all:
# formatting, lints, unit tests, libpam/process/CLI integration tests, and
# the real sshd and sudo end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(libpam0g-dev pamtester oathtool openssh-server openssh-client sudo expect
          faketime libpam-wrapper zbar-tools passwd util-linux tmux)

install_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: missing packages ${missing[*]}; run as root or install them" >&2
        exit 2
    fi
    echo "test.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # Never start services from package scripts (openssh-server would try).
    local policy=/usr/sbin/policy-rc.d created=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; created=1
    fi
    apt-get install -y --no-install-recommends "${missing[@]}"
    [ "$created" -eq 1 ] && rm -f "$policy"
    return 0
}

if command -v dpkg-query >/dev/null; then
    install_packages
fi

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
# Benchmarks are run by scripts/bench.sh, not here.
cargo test --locked --lib --bins --tests
