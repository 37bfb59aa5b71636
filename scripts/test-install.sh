#!/usr/bin/env bash
# The README's first command end to end, as root (scripts/test.sh runs it
# after the package test): scripts/install.sh builds and installs the
# module, its fleet object, the command, the store and the example stacks;
# a login goes through the INSTALLED module with pamtester; `sudo otpgate`
# finds the command; a second run replaces every file by a rename (never
# rewriting one in place under a process that has it mapped) and keeps the
# store; --uninstall removes the files, keeps the store and names the PAM
# services that still use the module.
#
# Like test-package.sh, it changes the machine only for its own run and puts
# everything back even when a check fails: files that were at the install
# paths before are restored, its PAM service file removed, and
# /var/lib/otpgate removed only if this run created it.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "test-install.sh: $*" >&2; exit 2; }
. scripts/lib/checks.sh
. scripts/lib/pam-dir.sh
system_test_start test-install.sh "it runs scripts/install.sh" pamtester oathtool sudo flock
MODDIR=$(pam_module_dir) || die "no PAM module directory (pam_unix.so not found)"
MODULE=$MODDIR/pam_otpgate.so
FLEET=$MODDIR/pam_otpgate_fleet.so
COMMAND=/usr/local/sbin/otpgate
SHARE=/usr/local/share/otpgate
STORE=/var/lib/otpgate
SERVICE=otpgate-test-inst
SERVICE_FILE=/etc/pam.d/$SERVICE
# RFC 4226's test secret in base32, for an account every Debian system has.
SECRET=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
ACCOUNT=daemon

TMP=$(mktemp -d /tmp/otpgate-test-install.XXXXXX)
store_existed=0
if [ -e "$STORE" ] || [ -L "$STORE" ]; then store_existed=1; fi
# What was there before (an earlier install.sh): restored afterwards.
save_paths "$MODULE" "$FLEET" "$COMMAND" "$SHARE"

cleanup() {
    rm -f "$SERVICE_FILE"
    restore_paths "$MODULE" "$FLEET" "$COMMAND" "$SHARE"
    [ "$store_existed" -eq 1 ] || rm -rf "$STORE"
    rm -rf "$TMP"
}
trap cleanup EXIT
files_as() { # files_as OWNER:GROUP MODE FILE...: each file is a regular file with these
    local want="$1 $2" f
    shift 2
    for f in "$@"; do
        [ -f "$f" ] && [ ! -L "$f" ] || { echo "$f: not a regular file"; return 1; }
        [ "$(stat -c '%U:%G %a' "$f")" = "$want" ] || { echo "$f: $(stat -c '%U:%G %a' "$f"), not $want"; return 1; }
    done
}
no_temp_left() { ! ls -A "$MODDIR" /usr/local/sbin | grep -F '.new'; }

# First install. It builds again after the package test: package.sh sets
# SOURCE_DATE_EPOCH, which ring's build script watches.
check "install.sh installs" bash scripts/install.sh
check "module and fleet object in $MODDIR, root's, 0644" files_as root:root 644 "$MODULE" "$FLEET"
check "command in /usr/local/sbin, root's, 0755" files_as root:root 755 "$COMMAND"
check "no temporary file left beside them" no_temp_left
for f in pam.d/*; do
    check "example stack $SHARE/$f" cmp "$f" "$SHARE/$f"
done
if [ "$store_existed" -eq 0 ]; then
    check "$STORE created root:root 0700" test "$(stat -c '%U:%G %a' "$STORE")" = "root:root 700"
fi
check "the command runs and is this version" \
    bash -c "'$COMMAND' --version | grep -qx 'otpgate $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)'"
check "sudo finds the command on its secure_path (the README's 'sudo otpgate')" \
    bash -c "[ \"\$(sudo sh -c 'command -v otpgate')\" = '$COMMAND' ]"
check "doctor finds the installed module" \
    bash -c "'$COMMAND' doctor --check module --json | tee /dev/stderr | grep -q '\"id\":\"module.ok\",\"level\":\"ok\",\"location\":\"$MODULE\"'"

# A login through the installed module (the service names it by its bare
# name, so libpam loads it from the system's directory).
check "enroll $ACCOUNT with the installed command" \
    bash -c "'$COMMAND' --store '$TMP/store' enroll $ACCOUNT --no-verify --secret $SECRET --qr none --json > '$TMP/enroll.json'"
RECOVERY=$(sed -n 's/.*"recovery_codes":\["\([^"]*\)".*/\1/p' "$TMP/enroll.json")
printf 'auth required pam_otpgate.so store=%s\naccount required pam_permit.so\n' "$TMP/store" > "$SERVICE_FILE"
CODE=$(oathtool --totp -b "$SECRET")
login() { printf '%s\n' "$1" | pamtester "$SERVICE" "$ACCOUNT" authenticate; }
check "pamtester: the right code logs in" login "$CODE"
check "pamtester: the same code again is refused (replay)" refused login "$CODE"

# Again, over the installed files: each is replaced by a rename, so a login
# that has the old one mapped keeps reading the old file whole (writing in
# place keeps the inode, and such a process reads a half-written file or
# dies of SIGBUS). The store and what is in it stay.
inodes() { stat -c '%i' "$MODULE" "$FLEET" "$COMMAND"; }
inodes > "$TMP/inodes.before"
touch "$STORE/.otpgate-test-install-marker"
chmod 0755 "$STORE"
check "install.sh runs again" bash scripts/install.sh
inodes > "$TMP/inodes.after"
check "module, fleet object and command each replaced by a rename (a new inode)" \
    bash -c "paste '$TMP/inodes.before' '$TMP/inodes.after' | awk '\$1 == \$2 { bad = 1 } END { exit bad }'"
check "no temporary file left after the second run" no_temp_left
check "the store and its files are kept" test -e "$STORE/.otpgate-test-install-marker"
check "the store is made root:root 0700 again" test "$(stat -c '%U:%G %a' "$STORE")" = "root:root 700"
rm -f "$STORE/.otpgate-test-install-marker"
check "the new module refuses the code used before it (the replay guard kept)" refused login "$CODE"
check "the new module accepts a recovery code of the enrollment" login "$RECOVERY"

# Uninstall while a PAM service still names the module.
bash scripts/install.sh --uninstall > "$TMP/uninstall.out" 2>&1 || echo "exit $?" >> "$TMP/uninstall.out"
check "--uninstall exits 0" refused has_text "$TMP/uninstall.out" "^exit "
check "module gone" absent "$MODULE"
check "fleet object gone" absent "$FLEET"
check "command gone" absent "$COMMAND"
check "example stacks gone" absent "$SHARE"
check "store kept" test -d "$STORE"
check "--uninstall names the PAM service that still uses the module" has_text "$TMP/uninstall.out" "$SERVICE_FILE"
rm -f "$SERVICE_FILE"

echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
