//! Links the PAM module's unwinder statically (GCC's libgcc_eh.a) instead of
//! through libgcc_s.so.1.
//!
//! Rust asks for `-lgcc_s` on glibc targets. sshd and sudo do not load
//! libgcc_s themselves, and libpam loads and unloads the module for every
//! login, so a module that NEEDS libgcc_s makes every login map, relocate
//! and unmap a second library: about 0.1 ms of CPU per login on the
//! development VM (a C host's pam_start/pam_end loop, with and without
//! libgcc_s preloaded). A search directory of ours, ahead of the system's,
//! holds `libgcc_s.a`, a link to libgcc_eh.a, so `-lgcc_s` takes the static
//! unwinder (the one `gcc -static-libgcc` uses for shared objects).
//! catch_unwind at the FFI boundary works as before: tests/ffi_panic.rs
//! proves it on a module built this way, and checks that neither it nor the
//! suite's module needs libgcc_s.
//!
//! Only the cdylibs (the module, and the fleet object: `fleet/build.rs`
//! includes this file) and the benches (their host process plays
//! sshd's part: no libgcc_s of its own) are linked this way; the CLI and the
//! tests keep the default. Where libgcc_eh.a cannot be found the build goes
//! on with the default and says so.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    if env::var("CARGO_PKG_NAME").as_deref() == Ok("otpgate") {
        source_id();
    }
    static_unwinder();
}

/// OTPGATE_SOURCE_ID: a hash of the package's sources, manifest, lock file
/// and enabled features, for the build string that the module and its
/// fleet object compare before a login is handed over (src/pam/fleet.rs):
/// two builds of one version from different trees do not pair up. Made of
/// relative paths and contents only, so a rebuild of the same tree gives
/// the same id (the package stays reproducible).
fn source_id() {
    use std::hash::{Hash, Hasher};
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("Cargo.toml"), root.join("Cargo.lock")];
    let mut dirs = vec![root.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src/").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut h = std::hash::DefaultHasher::new();
    for f in &files {
        f.strip_prefix(&root).unwrap_or(f).hash(&mut h);
        std::fs::read(f).unwrap_or_default().hash(&mut h);
    }
    let mut features: Vec<String> = env::vars()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("CARGO_FEATURE_"))
        .collect();
    features.sort();
    features.hash(&mut h);
    println!("cargo:rustc-env=OTPGATE_SOURCE_ID={:016x}", h.finish());
    for p in ["src", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={p}");
    }
}

fn static_unwinder() {
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let abi = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os != "linux" || abi != "gnu" {
        return;
    }
    let Some(eh) = libgcc_eh() else {
        println!("cargo:warning=libgcc_eh.a not found: the module will need libgcc_s.so.1");
        return;
    };
    // A compiler upgrade moves or replaces it: link again.
    println!("cargo:rerun-if-changed={}", eh.display());
    let dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR")).join("static-unwind");
    std::fs::create_dir_all(&dir).expect("create OUT_DIR/static-unwind");
    let link = dir.join("libgcc_s.a");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&eh, &link).expect("link libgcc_s.a to libgcc_eh.a");
    // fleet/build.rs is this file too: that package has no benches.
    let kinds: &[&str] = if env::var("CARGO_PKG_NAME").as_deref() == Ok("otpgate") {
        &["cdylib", "benches"]
    } else {
        &["cdylib"]
    };
    for kind in kinds {
        println!("cargo:rustc-link-arg-{kind}=-L{}", dir.display());
    }
}

/// The C compiler's libgcc_eh.a, if it has one.
fn libgcc_eh() -> Option<PathBuf> {
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    // Not found, gcc prints the bare name back.
    (out.status.success() && path.is_absolute() && path.is_file()).then_some(path)
}
