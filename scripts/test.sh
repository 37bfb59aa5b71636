#!/usr/bin/env bash
# Installs what the tests need (Debian/Ubuntu, as root) and runs them all:
# formatting, lints, unit tests, libpam/process/CLI integration tests, and
# the real sshd and sudo end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# Root-only tests (real sshd, sudo, chown, mounts) skip themselves when not
# root; in CI that would hide them, so CI must run as root.
if [ "${CI:-}" = "true" ] && [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: CI=true but not root: the sshd, sudo and mount tests would be skipped" >&2
    exit 2
fi

# libpam-google-authenticator and libpam-oath: `otpgate import` is tested
# against files their own tools and modules wrote.
PACKAGES=(libpam0g-dev pamtester oathtool openssh-server openssh-client sudo expect
          faketime libpam-wrapper zbar-tools passwd util-linux tmux
          postgresql pgbouncer openssl libpam-google-authenticator libpam-oath
          dpkg-dev binutils man-db lintian strace
          gcc libc6-dev)

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
cargo clippy --locked --workspace --all-targets -- -D warnings
# Fuzzing: tests/fuzz_corpus.rs replays every seed of every fuzz target
# through the same harness on stable; after the tests, where the nightly
# toolchain is present, every cargo-fuzz target also runs for 10 s with a
# fixed seed (scripts/fuzz.sh 10: about 3.5 min here, the nightly build
# included).
# The fault-injection tests (tests/faults.rs) build their
# LD_PRELOAD shim with cc. The soak (scripts/soak.sh) is run by hand.
# Benchmarks are run by scripts/bench.sh, not here. --no-fail-fast: one
# failing test binary must not hide the results of the later ones.
skipped="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/tmp/otpgate-skipped-tests.txt"
rm -f "$skipped"
status=0
cargo test --locked --no-fail-fast --lib --bins --tests || status=$?
# The Debian package: one release build, lintian, dpkg -i, logins through
# the installed module, dpkg -r and -P (scripts/test-package.sh). A step
# here, not a cargo test: installing puts a module in the system's PAM
# directory and a command in /usr/sbin, which must not happen while the
# other test binaries run in parallel (cargo runs them concurrently); and
# the release build it needs would otherwise be a nested cargo run inside
# the test run, competing with the tests for the two cores.
# Then the README's first command, scripts/install.sh, the same way
# (scripts/test-install.sh: install, a login through the installed module,
# a second run over it, --uninstall); its release build is the package's.
if [ "$(id -u)" -eq 0 ]; then
    bash scripts/test-package.sh || status=1
    bash scripts/test-install.sh || status=1
else
    echo "scripts/test-package.sh (the Debian package installed and removed)" >> "$skipped"
    echo "scripts/test-install.sh (scripts/install.sh run, used and undone)" >> "$skipped"
fi
if cargo +nightly --version >/dev/null 2>&1; then
    FUZZ_SEED=1 bash scripts/fuzz.sh 10 || status=1
else
    echo "scripts/fuzz.sh 10 (the fuzz smoke: no nightly toolchain here)" >> "$skipped"
fi
if [ -s "$skipped" ]; then
    echo "test.sh: SKIPPED (these did not run here):" >&2
    sed 's/^/    /' "$skipped" >&2
fi
exit "$status"
