# Sourced by scripts/install.sh, scripts/package.sh and scripts/bench.sh:
# builds the PAM module the way it is shipped and prints its path (cargo's
# output goes to stderr).
#
# Why not target/release/libotpgate.so: the library is a cdylib and an rlib
# (the command and the tests link the rlib), and cargo leaves out
# `lto = "fat"` for a crate that is also an rlib. Built alone as a cdylib
# under the `module` profile (Cargo.toml: the release settings) the module
# gets fat LTO: a smaller module, with fewer pages for libpam to map,
# fault in and unmap at every login.
build_module() {
    local target
    target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    cargo rustc --locked --profile module -p otpgate --lib --crate-type cdylib >&2
    echo "$target/module/libotpgate.so"
}
