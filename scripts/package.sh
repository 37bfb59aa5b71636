#!/usr/bin/env bash
# Builds the Debian package target/debian/otpgate_<version>_<arch>.deb with
# plain dpkg-deb (no extra tool to install from crates.io):
#   /usr/lib/<multiarch>/security/pam_otpgate.so   the module
#   /usr/lib/<multiarch>/security/pam_otpgate_fleet.so  its fleet object
#                                                   (PostgreSQL store logins)
#   /usr/sbin/otpgate                               the command
#   /usr/share/man/man8/{otpgate,pam_otpgate}.8.gz, man5/otpgate.toml.5.gz
#   bash, zsh and fish completions (made by `otpgate completions SHELL`)
#   /usr/share/doc/otpgate/: copyright, changelogs, README, examples/
# Maintainer scripts (packaging/deb): postinst creates /var/lib/otpgate
# root:root 0700; remove and purge keep it. The man pages must render
# without a warning, and lintian (when installed) must find no error.
# Needs no root, except to install missing build tools.
#   OTPGATE_MAINTAINER="Name <address>"  sets the Maintainer field.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022

die() { echo "package.sh: $*" >&2; exit 2; }
[ $# -eq 0 ] || die "usage: package.sh (no arguments)"

# dpkg-dev: dpkg-architecture, dpkg-shlibdeps, dpkg-parsechangelog;
# binutils: strip; man-db (with groff-base): the man page check.
NEEDED=(dpkg-dev binutils man-db libpam0g-dev)
missing=()
for p in "${NEEDED[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "missing packages ${missing[*]}; install them or run as root"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi
command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"

# The Debian version is the newest entry of packaging/deb/changelog; its
# upstream part must be the crate's version, so a release cannot ship
# without an entry.
CHANGELOG=packaging/deb/changelog
UPSTREAM=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
VERSION=$(dpkg-parsechangelog -l "$CHANGELOG" -S Version)
[ "${VERSION%-*}" = "$UPSTREAM" ] ||
    die "$CHANGELOG is at $VERSION but Cargo.toml says $UPSTREAM: add an entry for $UPSTREAM-1"
# Reproducible: every date in the package is the changelog entry's.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(dpkg-parsechangelog -l "$CHANGELOG" -S Timestamp)}
export SOURCE_DATE_EPOCH
ARCH=$(dpkg --print-architecture)
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
MAINTAINER=${OTPGATE_MAINTAINER:-$(dpkg-parsechangelog -l "$CHANGELOG" -S Maintainer)}

cargo build --release --locked --workspace
. scripts/lib/module.sh
BUILT_MODULE=$(build_module)
TARGET=$(target_dir)
RELEASE=$TARGET/release
OUT=$TARGET/debian
NAME=otpgate_${VERSION}_${ARCH}
ROOT=$OUT/$NAME
DEB=$OUT/$NAME.deb
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
rm -rf "$ROOT" "$DEB"
mkdir -p "$ROOT/DEBIAN"

# Binaries, stripped (the symbols PAM looks up are dynamic and stay).
MODULE=$ROOT/usr/lib/$MULTIARCH/security/pam_otpgate.so
FLEET=$ROOT/usr/lib/$MULTIARCH/security/pam_otpgate_fleet.so
install -D -m 0644 "$BUILT_MODULE" "$MODULE"
install -D -m 0644 "$RELEASE/libotpgate_fleet.so" "$FLEET"
install -D -m 0755 "$RELEASE/otpgate" "$ROOT/usr/sbin/otpgate"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$MODULE" "$FLEET" "$ROOT/usr/sbin/otpgate"

# Man pages: otpgate(8) is completed from the clap definitions; each page
# must render without a single warning (lintian's own check).
"$RELEASE/otpgate" manpage > "$WORK/otpgate.8"
cp man/pam_otpgate.8 man/otpgate.toml.5 "$WORK/"
for page in "$WORK/otpgate.8" "$WORK/pam_otpgate.8" "$WORK/otpgate.toml.5"; do
    warnings=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null) || true
    [ -z "$warnings" ] || die "$(basename "$page") does not render cleanly:"$'\n'"$warnings"
    section=${page##*.}
    install -d "$ROOT/usr/share/man/man$section"
    gzip -9n < "$page" > "$ROOT/usr/share/man/man$section/$(basename "$page").gz"
done

# Completions, from the same definitions (new subcommands appear by themselves).
install -d "$ROOT/usr/share/bash-completion/completions" \
    "$ROOT/usr/share/zsh/vendor-completions" "$ROOT/usr/share/fish/vendor_completions.d"
"$RELEASE/otpgate" completions bash > "$ROOT/usr/share/bash-completion/completions/otpgate"
"$RELEASE/otpgate" completions zsh > "$ROOT/usr/share/zsh/vendor-completions/_otpgate"
"$RELEASE/otpgate" completions fish > "$ROOT/usr/share/fish/vendor_completions.d/otpgate.fish"

# Documentation and examples.
DOC=$ROOT/usr/share/doc/otpgate
install -d "$DOC/examples/pam.d"
install -m 0644 pam.d/* "$DOC/examples/pam.d/"
install -m 0644 packaging/otpgate.toml "$DOC/examples/otpgate.toml"
gzip -9n < "$CHANGELOG" > "$DOC/changelog.Debian.gz"
gzip -9n < CHANGELOG.md > "$DOC/changelog.gz"
gzip -9n < README.md > "$DOC/README.md.gz"
# The crates linked into the binaries, as they declare their licenses.
cargo tree --locked -e normal,no-proc-macro --prefix none --format '{p}: {l}' |
    grep -v -e '(\*)' -e '^otpgate ' | sort -u | sed 's/^/ /' > "$WORK/crates"
[ -s "$WORK/crates" ] || die "cargo tree listed no crates"
sed -e "/^@CRATES@\$/{r $WORK/crates" -e 'd}' packaging/deb/copyright.in > "$DOC/copyright"
install -D -m 0644 packaging/deb/lintian-overrides "$ROOT/usr/share/lintian/overrides/otpgate"

# Control: dependencies from the libraries the binaries link against.
mkdir -p "$WORK/shlibs/debian"
printf 'Source: otpgate\n\nPackage: otpgate\nArchitecture: any\n' > "$WORK/shlibs/debian/control"
DEPENDS=$(cd "$WORK/shlibs" && dpkg-shlibdeps -O -e"$MODULE" -e"$FLEET" -e"$ROOT/usr/sbin/otpgate" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')
[ -n "$DEPENDS" ] || die "dpkg-shlibdeps found no dependencies"
SIZE=$(du -sk --apparent-size --exclude=DEBIAN "$ROOT" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@INSTALLED_SIZE@/$SIZE/" \
    -e "s/@DEPENDS@/$DEPENDS/" -e "s|@MAINTAINER@|$MAINTAINER|" \
    packaging/deb/control > "$ROOT/DEBIAN/control"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$ROOT/DEBIAN/"
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
    xargs -0 md5sum) > "$ROOT/DEBIAN/md5sums"
chmod 0644 "$ROOT/DEBIAN/control" "$ROOT/DEBIAN/md5sums"
find "$ROOT" -type d -exec chmod 0755 {} +
find "$ROOT" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
if command -v lintian >/dev/null; then
    lintian --fail-on error "$DEB" || die "lintian found errors in $DEB"
else
    echo "package.sh: lintian is not installed: the package was not checked (apt-get install lintian)" >&2
fi
echo "$DEB"
