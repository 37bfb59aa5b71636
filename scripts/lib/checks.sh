# Shared by scripts/test-package.sh and scripts/test-install.sh (sourced):
# `check DESCRIPTION COMMAND...` runs the command, prints ok or FAIL with
# its output, and counts the result in $passed and $failed. The caller sets
# $TMP (a scratch directory) first.
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
