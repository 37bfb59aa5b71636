#!/usr/bin/env bash
# Writes src/pam/login-functions.ld: the module's functions that logins run,
# which the link of the shipped module (scripts/lib/module.sh) places
# together at the start of its code.
#
# How: the bench's pam_otpgate logins (valid, wrong and recovery codes, a
# site config, a few users; scripts/bench.sh) run under valgrind's callgrind,
# and every function of the module that ran is listed. A symbol's hash
# (`17h<16 hex digits>E`, and a crate's `Cs<hash>_` in the standard
# library's names) changes with the compiler, the dependencies and the
# version, so it becomes a wildcard: the list still matches after a
# rebuild. A function that a change renames, or a new one, is laid out as
# before (among the rest) until this script runs again; the package test
# checks that the list still gathers most of the login's code. Run it as
# root after changing what a login does, and commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    echo "login-functions.sh: run as root (scripts/bench.sh does)" >&2
    exit 2
fi
if ! command -v valgrind >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update && apt-get install -y --no-install-recommends valgrind
fi
. scripts/lib/module.sh
module="$(build_module)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
BENCH_USERS=20 BENCH_ROUNDS=1 BENCH_MODULES=otpgate \
    BENCH_WRAPPER="valgrind --tool=callgrind --trace-children=yes --demangle=no --callgrind-out-file=$work/cg.%p" \
    scripts/bench.sh > "$work/bench.txt" 2> "$work/bench.err" || {
    tail -n 20 "$work/bench.err" >&2
    echo "login-functions.sh: the bench failed under callgrind" >&2
    exit 1
}
# callgrind's files name objects and functions once, as "(id) name", and
# then by "(id)" alone; a "fn=" line starts the costs of a function of the
# object named by the last "ob=". libpam unloads the module after each
# login, and callgrind then files its functions under the object "???":
# those count too, the Rust ones (the other modules the bench loads are C).
# (callgrind_annotate would merge the standard library's functions in the
# module with the bench binary's copies of the same name.)
awk -v module="$module" '
    function named(kind, spec,   id) {
        if (match(spec, /^\([0-9]+\)/)) {
            id = substr(spec, 2, RLENGTH - 2)
            if (length(spec) > RLENGTH + 1) names[kind, id] = substr(spec, RLENGTH + 2)
            return names[kind, id]
        }
        return spec
    }
    /^ob=/  { ob = named("ob", substr($0, 4)); next }
    /^cob=/ { named("ob", substr($0, 5)); next }
    /^fn=/  {
        f = named("fn", substr($0, 4))
        if (ob == module || (ob == "???" && f ~ /^_(ZN|R)/)) print f
        next
    }
    /^cfn=/ { named("fn", substr($0, 5)); next }
' "$work"/cg.* |
    grep -v '^0x' |
    sed -E 's/17h[0-9a-f]{16}E$/17h*/; s/Cs[0-9A-Za-z]+_/Cs*_/g' |
    LC_ALL=C sort -u > "$work/names"
count=$(wc -l < "$work/names")
if [ "$count" -lt 50 ]; then
    echo "login-functions.sh: only $count functions of $module ran; nothing written" >&2
    exit 1
fi
{
    echo "/* The functions of pam_otpgate.so that logins run (made by"
    echo "   scripts/login-functions.sh; do not edit): placed together before the"
    echo "   rest of the code, so that a login faults in and unmaps fewer pages."
    echo "   Each pattern is a symbol with its hashes as wildcards; a section"
    echo "   \`.text.unlikely.NAME\` is one LLVM marked cold. */"
    echo "SECTIONS"
    echo "{"
    echo "  .text.otpgate_login :"
    echo "  {"
    while read -r n; do
        echo "    *(.text.$n .text.unlikely.$n)"
    done < "$work/names"
    echo "  }"
    echo "}"
    echo "INSERT BEFORE .text;"
} > src/pam/login-functions.ld
echo "login-functions.sh: $count functions in src/pam/login-functions.ld"
