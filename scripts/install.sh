#!/usr/bin/env bash
# Builds otpgate in release mode and installs it (Debian/Ubuntu, as root):
#   module  -> <the directory holding pam_unix.so>/pam_otpgate.so, and beside
#              it pam_otpgate_fleet.so (the PostgreSQL store's logins only)
#   command -> /usr/local/sbin/otpgate
#   store   -> /var/lib/otpgate (root:root 0700), kept on --uninstall
#   stacks  -> /usr/local/share/otpgate/pam.d (examples; /etc/pam.d is never edited)
# Idempotent: run it again after pulling a new version.
set -euo pipefail
cd "$(dirname "$0")/.."

SBIN=/usr/local/sbin
SHARE=/usr/local/share/otpgate
STORE=/var/lib/otpgate

die() { echo "install.sh: $*" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || die "run as root (sudo scripts/install.sh)"

. scripts/lib/pam-dir.sh
MODDIR=$(pam_module_dir) || die "cannot find the PAM module directory (no pam_unix.so)"

# The Debian package (scripts/package.sh) owns the same module path: never
# overwrite or delete its files behind dpkg's back.
if [ "$(dpkg-query -W -f='${db:Status-Status}' otpgate 2>/dev/null)" = installed ]; then
    die "the otpgate package is installed: upgrade it with apt, or 'apt remove otpgate' first"
fi

if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$MODDIR/pam_otpgate.so" "$MODDIR/pam_otpgate_fleet.so" "$SBIN/otpgate"
    rm -rf "$SHARE"
    echo "Removed pam_otpgate.so, pam_otpgate_fleet.so and otpgate. Kept $STORE (enrollments); remove it by hand if wanted."
    if grep -lr "pam_otpgate" /etc/pam.d 2>/dev/null; then
        echo "WARNING: the PAM services listed above still name pam_otpgate.so: edit them now or logins through them fail." >&2
    fi
    exit 0
fi
[ $# -eq 0 ] || die "usage: install.sh [--uninstall]"

if command -v apt-get >/dev/null && ! dpkg-query -W -f='${Status}' libpam0g-dev 2>/dev/null | grep -q "install ok installed"; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends libpam0g-dev
fi
command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"

cargo build --release --locked --workspace
. scripts/lib/module.sh
RELEASE=$(target_dir)/release
MODULE=$(build_module)
# Each file goes in under a temporary name and is renamed over the old one:
# a login (sshd, sudo) that loads it meanwhile maps either the old file or
# the new one, never one half written (`install` alone truncates the file
# in place, and a process that has it mapped dies of SIGBUS). The fleet
# object first: a module that finds it missing or of another build refuses
# database logins (file-store logins never load it).
put() { # put SOURCE TARGET MODE
    local tmp
    tmp="$(dirname "$2")/.$(basename "$2").new"
    install -D -o root -g root -m "$3" "$1" "$tmp"
    mv -f "$tmp" "$2"
}
put "$RELEASE/libotpgate_fleet.so" "$MODDIR/pam_otpgate_fleet.so" 0644
put "$MODULE" "$MODDIR/pam_otpgate.so" 0644
put "$RELEASE/otpgate" "$SBIN/otpgate" 0755
install -d -o root -g root -m 0700 "$STORE"
chown root:root "$STORE"; chmod 0700 "$STORE"
install -d -m 0755 "$SHARE/pam.d"
install -m 0644 pam.d/* "$SHARE/pam.d/"

echo "Installed $MODDIR/pam_otpgate.so and $SBIN/otpgate; store $STORE."
echo "Next: sudo otpgate enroll USER, then wire a service (see README, 'Wiring sshd and sudo')."
