#!/usr/bin/env bash
# Login cost of pam_otpgate side by side with pam_oath and
# google-authenticator-libpam, all through the real libpam. Prints numbers
# only. BENCH_USERS=N sets how many users (default 300).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    missing=()
    for p in libpam0g-dev libpam-oath libpam-google-authenticator; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"
    fi
fi
cargo bench --locked --bench logins
