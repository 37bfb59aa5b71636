#!/usr/bin/env bash
# A long run without leaks (issue 11).
#
#   scripts/soak.sh [MINUTES]     (default 5) one long-lived process
#       (examples/pam_soak.rs) calls pam_authenticate in a loop through real
#       libpam and the built module with right, wrong, replayed and recovery
#       answers, while otpgate commands enroll, regenerate, unlock and
#       disable other users and pamtester logins are SIGKILLed; it fails on
#       a double accept, counts that do not add up, open descriptors that
#       grew or RSS that grew by more than 10%, and prints both.
#   scripts/soak.sh --valgrind [LOGINS]   (default 1000) the same process,
#       alone, under valgrind: fails on a definite leak or any invalid
#       access (valgrind's error count), and prints valgrind's summary (the
#       RSS it prints is valgrind's own and is not judged there).
#
# Needs pamtester and libpam-wrapper (scripts/test.sh installs them) and,
# for --valgrind, valgrind (installed here when missing). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=soak
if [ "${1:-}" = "--valgrind" ]; then
    mode=valgrind
    shift
fi
arg="${1:-}"

# The module as shipped (no test features) and the command; the soak
# program itself is an example (it needs the test-only PAM client).
cargo build --lib --bins
cargo build --example pam_soak
target="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug"
export OTPGATE_MODULE="$target/libotpgate.so" OTPGATE_BIN="$target/otpgate"

if [ "$mode" = soak ]; then
    minutes="${arg:-5}"
    echo "soak.sh: $minutes minutes"
    exec "$target/examples/pam_soak" --minutes "$minutes"
fi

logins="${arg:-1000}"
if ! command -v valgrind >/dev/null; then
    echo "soak.sh: installing valgrind"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends valgrind >/dev/null
fi
log="$target/valgrind-soak.log"
echo "soak.sh: $logins logins in one process under valgrind (log: $log)"
status=0
PAM_SOAK_UNDER_VALGRIND=1 valgrind --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
    --error-exitcode=3 --log-file="$log" \
    "$target/examples/pam_soak" --logins "$logins" --alone || status=$?
sed -n '/HEAP SUMMARY/,$p' "$log" | sed 's/^==[0-9]*== //'
# Invalid reads/writes, uses of uninitialised values and definite leaks
# are errors (exit 3); which of them point into the module:
in_module=$(grep -c 'libotpgate' "$log" || true)
echo "soak.sh: stack frames in libotpgate.so among valgrind's reports: $in_module"
if [ "$status" -ne 0 ]; then
    echo "soak.sh: valgrind reported errors (exit $status); see $log" >&2
    exit 1
fi
echo "soak.sh: valgrind: no definite leak, no invalid access"
