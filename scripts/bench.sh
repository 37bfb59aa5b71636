#!/usr/bin/env bash
# Login cost of pam_otpgate side by side with pam_permit (the floor),
# pam_oath and google-authenticator-libpam, all through the real libpam,
# plus the NSS look-up and one in-place write + fdatasync on the same disk.
# Prints numbers only (the targets of issue 8 as met/MISSED, never as an
# exit code). Run as root: the users are nss_wrapper accounts whose homes
# the bench chowns, and the module trusts root-owned stores only.
#   BENCH_USERS=300,10000  user counts (default)
#   BENCH_ROUNDS=N         rounds per user count (default: ~800 samples, at most 3)
# `bench.sh --fleet`: the PostgreSQL fleet store next to the file store
# (a private server over TLS, FLEET_USERS=10000, FLEET_LOGINS=200, 1 and 8
# clients, a fresh connection per login).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    echo "bench.sh: run as root (the bench chowns its users' homes and trusts root-owned stores only)" >&2
    exit 2
fi
if command -v apt-get >/dev/null; then
    missing=()
    for p in libpam0g-dev libnss-wrapper libpam-oath libpam-google-authenticator oathtool postgresql pgbouncer openssl; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"
    fi
fi
nss_wrapper="${NSS_WRAPPER_LIB:-$(dpkg -L libnss-wrapper 2>/dev/null | grep '/libnss_wrapper\.so$' | head -n1 || true)}"
if [ -z "$nss_wrapper" ] || [ ! -e "$nss_wrapper" ]; then
    echo "bench.sh: libnss_wrapper.so not found (apt-get install libnss-wrapper, or set NSS_WRAPPER_LIB)" >&2
    exit 2
fi
# Build the bench, and the module as install.sh and package.sh build it
# (scripts/lib/module.sh), then run the bench binary itself: it writes the passwd and group files in its
# temp dir and runs itself again under LD_PRELOAD=$nss_wrapper with
# NSS_WRAPPER_PASSWD/NSS_WRAPPER_GROUP pointing at them, once per user count.
if [ "${1:-}" = "--fleet" ]; then
    exec cargo bench --locked --bench fleet -- --bench
fi
build_log="$(mktemp)"
trap 'rm -f "$build_log"' EXIT
cargo bench --locked --bench logins --no-run 2>&1 | tee "$build_log" >&2
bench_bin="$(sed -n 's/^ *Executable .*(\(.*\))$/\1/p' "$build_log" | tail -n1)"
if [ -z "$bench_bin" ] || [ ! -x "$bench_bin" ]; then
    echo "bench.sh: could not find the bench binary in cargo's output" >&2
    exit 2
fi
. scripts/lib/module.sh
module="$(build_module)"
echo "bench: pam_otpgate is $module" >&2
# BENCH_WRAPPER: a command to run the bench under (scripts/login-functions.sh
# runs it under valgrind's callgrind).
# shellcheck disable=SC2086
OTPGATE_MODULE="$module" NSS_WRAPPER_LIB="$nss_wrapper" ${BENCH_WRAPPER:-} "$bench_bin" --bench
