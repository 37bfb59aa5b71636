# Sourced by scripts/install.sh, scripts/package.sh, scripts/bench.sh and
# scripts/login-functions.sh: builds the PAM module the way it is shipped and
# prints its path (cargo's output goes to stderr). Returns non-zero, printing
# nothing, when the build fails: callers write `M=$(build_module)` under
# `set -e`, and a failure inside `$(...)` does not stop the function itself.
#
# Why not target/release/libotpgate.so: the library is a cdylib and an rlib
# (the command and the tests link the rlib), and cargo leaves out
# `lto = "fat"` for a crate that is also an rlib. Built alone as a cdylib
# under the `module` profile (Cargo.toml: the release settings) the module
# gets fat LTO, and the link places the functions a login runs together
# (src/pam/login-functions.ld, made by scripts/login-functions.sh): libpam
# maps the module afresh for every login and the kernel maps its code 64 KiB
# around each page fault, so code the login never runs costs page faults
# and unmapping when it sits among code it does run.

# target_dir: cargo's target directory (CARGO_TARGET_DIR or the default),
# for install.sh and package.sh as for build_module.
target_dir() {
    local target
    target=$(cargo metadata --format-version 1 --no-deps |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p') || return 1
    if [ -z "$target" ]; then
        echo "cargo metadata named no target directory" >&2
        return 1
    fi
    echo "$target"
}

build_module() {
    local root target
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)" || return 1
    target=$(cd "$root" && target_dir) || return 1
    # -T and the path as two arguments: `-Wl,` would split a path at commas.
    (cd "$root" && cargo rustc --locked --profile module -p otpgate --lib --crate-type cdylib -- \
        -C link-arg=-Xlinker -C link-arg=-T -C link-arg=-Xlinker \
        -C link-arg="$root/src/pam/login-functions.ld") >&2 || return 1
    if [ ! -f "$target/module/libotpgate.so" ]; then
        echo "build_module: no $target/module/libotpgate.so after the build" >&2
        return 1
    fi
    echo "$target/module/libotpgate.so"
}

# login_section MODULE: the address and size (hex) of the module's gathered
# login code; nothing when it has none.
login_section() {
    readelf -SW "$1" | sed -n 's/.*\.text\.otpgate_login *PROGBITS *\([0-9a-f]*\) [0-9a-f]* \([0-9a-f]*\) .*/\1 \2/p'
}

# login_code_kib MODULE: the size in KiB of the gathered login code (0 when
# there is none).
login_code_kib() {
    # shellcheck disable=SC2046
    set -- $(login_section "$1")
    if [ $# -eq 2 ]; then echo $((16#$2 / 1024)); else echo 0; fi
}

# entry_is_gathered MODULE: whether pam_sm_authenticate, the login's entry
# (a dynamic symbol: it survives strip), lies in the gathered login code.
entry_is_gathered() {
    local entry
    entry=$(readelf --dyn-syms -W "$1" | awk '$8 == "pam_sm_authenticate" { print $2 }')
    # shellcheck disable=SC2046
    set -- $(login_section "$1")
    [ $# -eq 2 ] && [ -n "$entry" ] || return 1
    [ $((16#$entry)) -ge $((16#$1)) ] && [ $((16#$entry)) -lt $((16#$1 + 16#$2)) ]
}
