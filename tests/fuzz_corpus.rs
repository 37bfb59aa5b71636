//! The fuzz harnesses (`src/fuzzing.rs`) on stable: every file of every
//! target's seed corpus in `fuzz/corpus/<target>/` (and any crash kept in
//! `fuzz/artifacts/<target>/`) goes through the same function the
//! cargo-fuzz target calls, with the same invariant checks. This is CI's
//! fuzz smoke; `scripts/fuzz.sh` does the real fuzzing on nightly.

use std::fs;
use std::path::Path;

use otpgate::fuzzing::TARGETS;

fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_seed_of_every_fuzz_target_passes_its_harness() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut total = 0;
    for (name, harness) in TARGETS {
        let seeds = inputs(&root.join("corpus").join(name));
        assert!(
            seeds.len() >= 3,
            "fuzz/corpus/{name} has {} seeds; keep a few per target",
            seeds.len()
        );
        for path in seeds
            .iter()
            .chain(&inputs(&root.join("artifacts").join(name)))
        {
            let bytes = fs::read(path).unwrap();
            let run = std::panic::catch_unwind(|| harness(&bytes));
            assert!(run.is_ok(), "{name}: {} broke an invariant", path.display());
            total += 1;
        }
    }
    eprintln!("replayed {total} fuzz inputs");
}

#[test]
fn every_fuzz_target_has_a_harness_and_the_other_way_round() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    let mut files: Vec<String> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().replace(".rs", ""))
        .collect();
    files.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    names.sort();
    assert_eq!(files, names);
}
