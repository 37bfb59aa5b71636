#!/usr/bin/env bash
# The Debian package end to end, as root (scripts/test.sh runs it after the
# cargo tests): build it with scripts/package.sh (lintian included), install
# it with dpkg -i, log in through the INSTALLED module with pamtester, find
# every man page with man -w, remove it (module and command gone, store
# kept), purge it (store still kept, and said so), and check what remains.
#
# It changes the machine only for its own run and puts everything back even
# when a check fails: the package is purged, the test PAM service removed,
# a module or command that was there before (scripts/install.sh puts the
# module at the same path) restored, and /var/lib/otpgate removed only if
# this run created it. It never touches any other file in /etc/pam.d.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "test-package.sh: $*" >&2; exit 2; }
. scripts/lib/checks.sh
# One run at a time on this machine (other checkouts may run it too).
system_test_start test-package.sh "it installs and removes the package" pamtester oathtool man dpkg-deb flock

MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
MODULE=/usr/lib/$MULTIARCH/security/pam_otpgate.so
FLEET=/usr/lib/$MULTIARCH/security/pam_otpgate_fleet.so
COMMAND=/usr/sbin/otpgate
STORE=/var/lib/otpgate
SERVICE=otpgate-test-pkg
SERVICE_FILE=/etc/pam.d/$SERVICE
# A fixed test secret (RFC 4226's, in base32) for an account every Debian system has.
SECRET=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
ACCOUNT=daemon

TMP=$(mktemp -d /tmp/otpgate-test-package.XXXXXX)
store_existed=0
store_before=
if [ -e "$STORE" ] || [ -L "$STORE" ]; then
    store_existed=1
    store_before=$(stat -c '%U:%G %a %i' "$STORE")
fi
# What was there before the package: restored afterwards.
save_paths "$MODULE" "$FLEET" "$COMMAND"

cleanup() {
    rm -f "$SERVICE_FILE"
    if [ -n "$(dpkg-query -W -f='${db:Status-Status}' otpgate 2>/dev/null | grep -v not-installed)" ]; then
        dpkg -P otpgate >/dev/null 2>&1 || echo "test-package.sh: could not purge otpgate" >&2
    fi
    restore_paths "$MODULE" "$FLEET" "$COMMAND"
    [ "$store_existed" -eq 1 ] || rm -rf "$STORE"
    rm -rf "$TMP"
}
trap cleanup EXIT

# Build (scripts/package.sh prints the .deb's path last).
scripts/package.sh | tee "$TMP/package.log"
DEB=$(tail -n 1 "$TMP/package.log")
[ -f "$DEB" ] || die "scripts/package.sh did not make a package"
if command -v lintian >/dev/null; then
    check "lintian finds no error" lintian --fail-on error "$DEB"
fi

# Install.
check "dpkg -i installs the package" dpkg -i "$DEB"
dpkg -L otpgate | sort > "$TMP/files"
check "module installed in the multiarch PAM directory" test -f "$MODULE"
# The module is linked with the functions logins run gathered at the start
# of its code (scripts/lib/module.sh). The section shrinks, or loses the
# login's entry, when the list in src/pam/login-functions.ld stops matching
# (renamed functions, a new compiler's names): then run
# scripts/login-functions.sh again.
. scripts/lib/module.sh
check "module gathers the login's code (.text.otpgate_login of $(login_code_kib "$MODULE") KiB, at least 128)" \
    test "$(login_code_kib "$MODULE")" -ge 128
check "module's pam_sm_authenticate lies in the gathered code" entry_is_gathered "$MODULE"
check "fleet object installed beside it, root's and 0644" test "$(stat -c '%U:%G %a' "$FLEET")" = "root:root 644"
check "command installed in /usr/sbin" test -x "$COMMAND"
check "otpgate --version runs" "$COMMAND" --version
# scripts/install.sh puts its files at the package's paths: with the
# package installed it must refuse, install and uninstall alike, and leave
# dpkg's files as they are.
before=$(stat -c '%i %s %Y' "$MODULE" "$FLEET" "$COMMAND")
bash scripts/install.sh > "$TMP/install.out" 2>&1 && echo "install.sh exited 0" >> "$TMP/install.out"
bash scripts/install.sh --uninstall >> "$TMP/install.out" 2>&1 && echo "install.sh --uninstall exited 0" >> "$TMP/install.out"
check "install.sh refuses (install and --uninstall) while the package is installed" \
    bash -c "[ \"\$(grep -c 'the otpgate package is installed' '$TMP/install.out')\" = 2 ] && ! grep -q 'exited 0' '$TMP/install.out'"
check "install.sh left the package's files as they were" test "$(stat -c '%i %s %Y' "$MODULE" "$FLEET" "$COMMAND")" = "$before"
for f in /usr/share/bash-completion/completions/otpgate /usr/share/zsh/vendor-completions/_otpgate \
    /usr/share/fish/vendor_completions.d/otpgate.fish /usr/share/doc/otpgate/copyright \
    /usr/share/doc/otpgate/changelog.Debian.gz /usr/share/doc/otpgate/changelog.gz \
    /usr/share/doc/otpgate/examples/otpgate.toml /usr/share/doc/otpgate/examples/pam.d/sshd-key-and-code \
    /usr/share/doc/otpgate/examples/pam.d/sudo; do
    check "installed: $f" test -f "$f"
done
check "copyright names the crates, the standard library and GCC's unwinder" \
    bash -c "grep -q 'zeroize v' /usr/share/doc/otpgate/copyright && grep -q 'Rust standard library' /usr/share/doc/otpgate/copyright && grep -q 'libgcc_eh.a' /usr/share/doc/otpgate/copyright"
check "bash completion loads and completes subcommands" \
    bash -c 'source /usr/share/bash-completion/completions/otpgate && COMP_WORDS=(otpgate en) COMP_CWORD=1 && _otpgate otpgate en otpgate && [[ " ${COMPREPLY[*]} " == *" enroll "* ]]'
if [ "$store_existed" -eq 0 ]; then
    check "postinst created $STORE root:root 0700" test "$(stat -c '%U:%G %a' "$STORE")" = "root:root 700"
else
    check "postinst left the existing $STORE as it was" test "$(stat -c '%U:%G %a %i' "$STORE")" = "$store_before"
fi
check "man -w finds pam_otpgate(8)" test "$(man -w 8 pam_otpgate)" = /usr/share/man/man8/pam_otpgate.8.gz
check "man -w finds otpgate(8)" test "$(man -w 8 otpgate)" = /usr/share/man/man8/otpgate.8.gz
check "man -w finds otpgate.toml(5)" test "$(man -w 5 otpgate.toml)" = /usr/share/man/man5/otpgate.toml.5.gz
check "otpgate(8) documents every subcommand" \
    bash -c 'for c in enroll recovery status unlock disable doctor; do zgrep -q "^\.SS \"otpgate $c\"" /usr/share/man/man8/otpgate.8.gz || { echo "no $c"; exit 1; }; done'

# Log in through the installed module: a service naming it by its bare
# name, so libpam loads it from the multiarch directory.
check "enroll $ACCOUNT with the installed command" \
    bash -c "'$COMMAND' --store '$TMP/store' enroll $ACCOUNT --no-verify --secret $SECRET --qr none --json > '$TMP/enroll.json'"
RECOVERY=$(sed -n 's/.*"recovery_codes":\["\([^"]*\)".*/\1/p' "$TMP/enroll.json")
check "enroll --json printed recovery codes" test -n "$RECOVERY"
printf 'auth required pam_otpgate.so store=%s\naccount required pam_permit.so\n' "$TMP/store" > "$SERVICE_FILE"
CODE=$(oathtool --totp -b "$SECRET")
login() { printf '%s\n' "$1" | pamtester "$SERVICE" "$ACCOUNT" authenticate; }
check "pamtester: the right code logs in" login "$CODE"
check "pamtester: the same code again is refused (replay)" refused login "$CODE"
check "pamtester: a recovery code logs in" login "$RECOVERY"
check "pamtester: the recovery code again is refused" refused login "$RECOVERY"
check "otpgate status sees the logins" \
    bash -c "'$COMMAND' --store '$TMP/store' status $ACCOUNT --json | grep -q '\"last_login\":[0-9]'"
rm -f "$SERVICE_FILE"

# A site whose store is a database: the installed module hands the login to
# the installed fleet object, which is the one that checks the database's
# socket directory (libpam-wrapper shows the module's syslog lines).
mkdir -p "$TMP/pam.d"
printf 'store = "postgresql://otpgate@%%2Fnonexistent-otpgate-package-test/otpgate"\n' > "$TMP/site.toml"
printf 'auth required %s config=%s\n' "$MODULE" "$TMP/site.toml" > "$TMP/pam.d/$SERVICE"
fleet_login() {
    printf '123456\n' | LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$TMP/pam.d" \
        PAM_WRAPPER_DEBUGLEVEL=2 pamtester "$SERVICE" "$ACCOUNT" authenticate > "$TMP/fleet.out" 2>&1 || true
    grep -q 'reason=store_error detail=".*nonexistent-otpgate-package-test: socket directory' "$TMP/fleet.out"
}
check "a database login is run by the installed fleet object" fleet_login

# Remove: module and command gone, the store kept.
check "dpkg -r removes the package" dpkg -r otpgate
check "module gone after remove" absent "$MODULE"
check "fleet object gone after remove" absent "$FLEET"
check "command gone after remove" absent "$COMMAND"
check "man pages gone after remove" absent /usr/share/man/man8/otpgate.8.gz
check "$STORE kept after remove" test -d "$STORE"

# Purge: the store still kept, and said so; nothing else of the package left.
dpkg -P otpgate > "$TMP/purge.out" 2>&1 || true
check "dpkg -P purges the package" test -z "$(dpkg-query -W -f='${db:Status-Status}' otpgate 2>/dev/null | grep -v not-installed)"
check "purge says the store is kept" has_text "$TMP/purge.out" "kept $STORE"
check "$STORE kept after purge" test -d "$STORE"
check "no file of the package left after purge" \
    bash -c "while read -r f; do [ \"\$f\" = /. ] || [ -d \"\$f\" ] || [ ! -e \"\$f\" ] || { echo \"left: \$f\"; exit 1; }; done < '$TMP/files'"
check "no package directory left after purge" absent /usr/share/doc/otpgate

echo "package: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
