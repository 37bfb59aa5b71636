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
# those count too when the module defines them (nm; the other modules the
# bench loads define other names). (callgrind_annotate would merge the
# standard library's functions in the module with the bench binary's
# copies of the same name.)
nm --defined-only "$module" | awk '{ print $3 }' | LC_ALL=C sort -u > "$work/defined"
awk -v module="$module" -v defined="$work/defined" '
    function named(kind, spec,   id) {
        if (match(spec, /^\([0-9]+\)/)) {
            id = substr(spec, 2, RLENGTH - 2)
            if (length(spec) > RLENGTH + 1) names[kind, id] = substr(spec, RLENGTH + 2)
            return names[kind, id]
        }
        return spec
    }
    BEGIN { while ((getline d < defined) > 0) mine[d] = 1 }
    /^ob=/  { ob = named("ob", substr($0, 4)); next }
    /^cob=/ { named("ob", substr($0, 5)); next }
    /^fn=/  {
        f = named("fn", substr($0, 4))
        sub(/\047[0-9]+$/, "", f)   # the recursion depth callgrind appends (a quote, 2)
        if (ob == module || (ob == "???" && (f in mine))) print f
        next
    }
    /^cfn=/ { named("fn", substr($0, 5)); next }
' "$work"/cg.* |
    grep -v '^0x' |
    sed -E 's/17h[0-9a-f]{16}E(\.[0-9]+)?$/17h*/; s/\.[0-9]+$/.*/; s/Cs[0-9A-Za-z]+_/Cs*_/g' |
    LC_ALL=C sort -u > "$work/names"
# LLVM numbers local copies (name.942) differently in each build: the
# number became a wildcard above. A name of other characters than a
# symbol's would break the script's syntax.
if grep -qv '^[A-Za-z0-9_.$*]*$' "$work/names"; then
    grep -v '^[A-Za-z0-9_.$*]*$' "$work/names" | head -n 3 >&2
    echo "login-functions.sh: unexpected characters in the names above; nothing written" >&2
    exit 1
fi
count=$(wc -l < "$work/names")
if [ "$count" -lt 50 ]; then
    echo "login-functions.sh: only $count functions of $module ran; nothing written" >&2
    exit 1
fi
list=src/pam/login-functions.ld
cp "$list" "$work/previous.ld"
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
} > "$work/new.ld"
# Into place, then linked and checked; the previous list back on failure.
cp "$work/new.ld" "$list"
if ! module="$(build_module)" || ! entry_is_gathered "$module"; then
    cp "$work/previous.ld" "$list"
    echo "login-functions.sh: the new list does not link, or leaves pam_sm_authenticate out; kept the previous one" >&2
    exit 1
fi
echo "login-functions.sh: $count functions in $list ($(login_code_kib "$module") KiB gathered)"
