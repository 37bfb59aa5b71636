# Sourced by scripts/install.sh, scripts/package.sh, scripts/bench.sh and
# scripts/login-functions.sh: builds the PAM module the way it is shipped and
# prints its path (cargo's output goes to stderr).
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
build_module() {
    local target
    target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    cargo rustc --locked --profile module -p otpgate --lib --crate-type cdylib -- \
        -C link-arg=-Wl,-T,"$PWD/src/pam/login-functions.ld" >&2
    echo "$target/module/libotpgate.so"
}
