#!/usr/bin/env bash
# Regenerates the seeds that real programs write (run as root, after
# `cargo build`): google-authenticator files from the `google-authenticator`
# command and after pam_google_authenticator logins; pam_oath users files
# before and after pam_oath logins; otpgate records and login states from
# `otpgate` and pam_otpgate logins. The hand-written seeds (answers, site
# configs, option lists, secrets, decide) are kept as they are.
# Needs: libpam-google-authenticator libpam-oath oathtool pamtester
# libpam-wrapper (scripts/test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=fuzz/corpus
bin=target/debug/otpgate
so="$PWD/target/debug/libotpgate.so"
[ -x "$bin" ] && [ -f "$so" ] || { echo "make-seeds.sh: run cargo build first" >&2; exit 2; }
t=$(mktemp -d /tmp/otpgate-seeds.XXXXXX)
trap 'rm -rf "$t"' EXIT
chmod 700 "$t"
mkdir -p "$t/pam.d" "$t/store"
chmod 700 "$t/store"

# pamtester through libpam-wrapper with our service directory; the clock
# frozen at $2 (unix time) so codes are exact.
login() { # service user time answer
    printf '%s\n' "$4" | LD_PRELOAD="libpam_wrapper.so /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1" \
        PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$t/pam.d" TZ=UTC \
        FAKETIME="@$(date -u -d "@$3" '+%Y-%m-%d %H:%M:%S')" DONT_FAKE_MONOTONIC=1 \
        pamtester "$1" "$2" authenticate >/dev/null 2>&1 || true
}
now=1800000000

# google-authenticator: time-based with every option, counter-based, a
# 60 s step without reuse checks; then one after its own module took a code
# and a scratch code (DISALLOW_REUSE and RATE_LIMIT entries written back).
ga() { google-authenticator "${@:2}" -f -q -C -s "$t/$1" >/dev/null </dev/null; cp "$t/$1" "$corpus/google_authenticator/$1"; }
ga ga-totp-full -t -d -r 3 -R 30 -w 3 -e 5
ga ga-hotp -c -u -w 5 -e 3
ga ga-totp-60s-reuse -t -D -u -S 60 -w 17 -e 1
ga ga-totp-no-scratch -t -d -u -w 3 -e 0
google-authenticator -t -d -r 3 -R 30 -w 3 -e 5 -f -q -C -s "$t/ga-login" >/dev/null </dev/null
secret=$(head -1 "$t/ga-login")
echo "auth required pam_google_authenticator.so secret=$t/ga-login user=root" > "$t/pam.d/ga"
login ga root "$now" "$(oathtool --totp -b -N "@$now" "$secret")"
login ga root "$now" "$(sed -n '$p' "$t/ga-login")"
cp "$t/ga-login" "$corpus/google_authenticator/ga-after-logins"

# pam_oath: a users file of every token type, then after logins (pam_oath
# writes the counter, the code and the local time back).
hex=3132333435363738393031323334353637383930
cat > "$t/users.oath" <<EOF
# comment
HOTP daemon - $hex
HOTP/T30 bin - $hex
HOTP/T30/7 sys + $hex
HOTP/E/8 games - $hex 4
HOTP/T60/8 man - $hex
HOTP lp staticpw $hex
EOF
chmod 600 "$t/users.oath"
cp "$t/users.oath" "$corpus/oath_users/users-before-logins"
echo "auth required pam_oath.so usersfile=$t/users.oath window=5" > "$t/pam.d/oath"
login oath daemon "$now" "$(oathtool --hotp -c 2 $hex)"
login oath bin "$now" "$(oathtool --totp -N "@$now" $hex)"
login oath games "$now" "$(oathtool --hotp -d 8 -c 6 $hex)"
cp "$t/users.oath" "$corpus/oath_users/users-after-logins"

# otpgate: TOTP, HOTP, SHA512/8 digits, and an import with scratch codes;
# states after a success, a failure, a recovery code and an unlock.
og() { "$bin" --store "$t/store" --config "$t/none.toml" "$@"; }
totp=$(og enroll daemon --no-verify --json --qr none --recovery-codes 3)
hotp=$(og enroll bin --hotp --counter 5 --no-verify --json --qr none)
og enroll sys --algorithm sha512 --digits 8 --period 60 --no-verify --json --qr none >/dev/null
og import google-authenticator --user games --file "$t/ga-totp-full" >/dev/null
echo "auth required $so store=$t/store" > "$t/pam.d/otp"
secret_of() { printf '%s' "$1" | sed 's/.*"secret":"\([A-Z2-7]*\)".*/\1/'; }
s=$(secret_of "$totp")
rc=$(printf '%s' "$totp" | sed 's/.*"recovery_codes":\["\([^"]*\)".*/\1/')
login otp daemon "$now" "$(oathtool --totp -b -N "@$now" "$s")"
login otp daemon "$now" 000000
login otp daemon "$now" "$rc"
login otp bin "$now" "$(oathtool --hotp -b -c 6 "$(secret_of "$hotp")")"
login otp sys "$now" 12345678
for u in daemon bin sys games; do
    [ -f "$t/store/$u.toml" ] && cp "$t/store/$u.toml" "$corpus/record/$u.toml"
    [ -f "$t/store/.$u.lock" ] && cp "$t/store/.$u.lock" "$corpus/state/$u-after-logins.lock"
done
og unlock daemon >/dev/null
cp "$t/store/.daemon.lock" "$corpus/state/daemon-after-unlock.lock"
cp "$t/store/daemon.toml" "$corpus/record/daemon-after-unlock.toml"
echo "make-seeds.sh: seeds written under $corpus"
