# Shared by scripts/test-package.sh and scripts/test-install.sh (sourced):
# `check DESCRIPTION COMMAND...` runs the command, prints ok or FAIL with
# its output, and counts the result in $passed and $failed (the caller sets
# $TMP, a scratch directory, before the first check); and the set-up both
# need, since both put files at the same system paths.

# system_test_start NAME WHY TOOL...: refuses to go on unless root (WHY
# says what for) with every TOOL, waits until no other run of either test
# holds the install paths, and refuses when the otpgate package is
# installed (its files are at those paths).
system_test_start() {
    local name=$1 why=$2 tool state
    shift 2
    [ "$(id -u)" -eq 0 ] || die "run as root: $why"
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool is missing (scripts/test.sh installs it)"
    done
    exec 9>/run/lock/otpgate-test-package.lock
    flock 9
    state=$(dpkg-query -W -f='${db:Status-Status}' otpgate 2>/dev/null || true)
    case "$state" in
        "" | not-installed) ;;
        *) die "the otpgate package is on this machine ($state); $name would overwrite or remove its files: dpkg -P otpgate first" ;;
    esac
}

# save_paths PATH...: copies of what is there now, into $TMP/saved;
# restore_paths PATH...: each path as it was (removed if it was absent).
save_paths() {
    local f
    for f in "$@"; do
        if [ -e "$f" ]; then
            mkdir -p "$TMP/saved$(dirname "$f")"
            cp -a "$f" "$TMP/saved$f"
        fi
    done
}
restore_paths() {
    local f
    for f in "$@"; do
        rm -rf "$f"
        if [ -e "$TMP/saved$f" ]; then cp -a "$TMP/saved$f" "$f"; fi
    done
}

passed=0
failed=0
check() {
    local what=$1
    shift
    if "$@" >"$TMP/out" 2>&1; then
        passed=$((passed + 1))
        echo "ok   $what"
    else
        failed=$((failed + 1))
        echo "FAIL $what" >&2
        sed 's/^/     | /' "$TMP/out" >&2
    fi
}
refused() { ! "$@"; }
absent() { [ ! -e "$1" ] && [ ! -L "$1" ]; }
has_text() { grep -q -- "$2" "$1"; }
