//! Unit tests of the file store: names, ownership, the directory handle.

use super::checks::mode_str;
use super::*;
use crate::core::otp::OtpParams;
use crate::core::recovery::{KdfParams, RecoveryCodes, RecoveryHashes};
use std::fs;

/// A private (root-owned when run as root, 0700) directory under /tmp.
fn private_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), Permissions::from_mode(0o700)).unwrap();
    dir
}

fn sample_record() -> Record {
    let cheap = KdfParams {
        m_cost: 64,
        t_cost: 1,
        p_cost: 1,
    };
    let rc = RecoveryCodes::generate(1).unwrap();
    let hashes = RecoveryHashes::create(&rc, cheap).unwrap();
    Record::new(b"12345678901234567890", OtpParams::default(), hashes, 1)
}

fn put(store: &Store, user: &str) -> Result<(), StoreError> {
    let record = sample_record();
    store
        .update(user, |_| Ok::<_, ()>((Change::Put(record), ())))
        .map(|r| r.unwrap())
}

/// A private store holding alice's record.
fn store_with_alice() -> (tempfile::TempDir, Store) {
    let dir = private_dir();
    let store = Store::open(dir.path(), test_trust()).unwrap();
    put(&store, "alice").unwrap();
    (dir, store)
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn user_names_are_checked_before_touching_paths() {
    for ok in [
        "alice",
        "alice@example.com",
        "DOMAIN\\bob",
        "a.b-c_d",
        "josé",
    ] {
        assert!(validate_user(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        ".hidden",
        "../etc/passwd",
        "a/b",
        "tab\tname",
        "nul\0",
        "bell\x07",
        &"x".repeat(257),
    ] {
        assert!(validate_user(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn format_and_separator_characters_are_refused() {
    for bad in [
        "a\u{200B}b",
        "\u{200F}x",
        "\u{202E}cilbup",
        "x\u{2028}y",
        "x\u{2029}y",
        "a\u{2060}",
        "a\u{2066}b\u{2069}",
        "\u{FEFF}bom",
        "soft\u{AD}hyphen",
        "tag\u{E0041}",
        "a\u{85}b",
    ] {
        assert!(
            matches!(validate_user(bad), Err(StoreError::BadUser(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn every_file_name_derived_from_the_longest_user_fits_name_max() {
    let longest = "x".repeat(MAX_USER_BYTES);
    assert!(validate_user(&longest).is_ok());
    for name in [
        format!("{longest}.toml"),
        format!(".{longest}.lock"),
        format!(".{longest}.toml.tmp"),
        format!(".{longest}.state"),
    ] {
        assert!(name.len() <= 255, "{} bytes", name.len());
    }
    assert!(validate_user(&"x".repeat(MAX_USER_BYTES + 1)).is_err());
    // Bytes, not characters: 123 two-byte characters are 246 bytes.
    assert!(validate_user(&"é".repeat(123)).is_err());
    assert!(validate_user(&"é".repeat(122)).is_ok());
    // The bound is the documented one and as loose as NAME_MAX allows:
    // the longest derived name (the temp file) is exactly 255 bytes.
    assert_eq!(MAX_USER_BYTES, 245);
    assert_eq!(format!(".{longest}.toml.tmp").len(), 255);
}

#[test]
fn a_too_long_name_is_refused_before_any_file_is_created() {
    let dir = private_dir();
    let store = Store::open(dir.path(), test_trust()).unwrap();
    for len in [246, 249, 250, 256] {
        let user = "x".repeat(len);
        let r = put(&store, &user);
        assert!(matches!(r, Err(StoreError::BadUser(_))), "{len}: {r:?}");
    }
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[test]
fn only_root_is_trusted_unless_owner_ok() {
    assert!(Trust::RootOnly.trusts(0, 1000));
    assert!(!Trust::RootOnly.trusts(1000, 1000));
    assert!(Trust::RootOrEuid.trusts(0, 1000));
    assert!(Trust::RootOrEuid.trusts(1000, 1000));
    assert!(!Trust::RootOrEuid.trusts(1001, 1000));
    assert_eq!(Trust::default(), Trust::RootOnly);
}

/// The trust a test store needs: root in CI, the test's own user otherwise.
fn test_trust() -> Trust {
    if nix::unistd::geteuid().is_root() {
        Trust::RootOnly
    } else {
        Trust::RootOrEuid
    }
}

#[test]
fn records_with_any_mode_bit_beyond_0600_are_refused() {
    let (dir, store) = store_with_alice();
    let record = dir.path().join("alice.toml");
    for mode in [0o4600, 0o2600, 0o1600, 0o700, 0o640, 0o604] {
        fs::set_permissions(&record, Permissions::from_mode(mode)).unwrap();
        let r = store.load("alice");
        assert!(
            matches!(&r, Err(StoreError::Unsafe { why, .. }) if why.contains(&mode_str(mode))),
            "{mode:o}: {r:?}"
        );
    }
    fs::set_permissions(&record, Permissions::from_mode(0o600)).unwrap();
    assert!(store.load("alice").unwrap().is_some());
}

#[test]
fn lock_files_with_any_mode_bit_beyond_0600_are_refused() {
    let (dir, store) = store_with_alice();
    let lock = dir.path().join(".alice.lock");
    for mode in [0o4600, 0o2600, 0o1600, 0o700] {
        fs::set_permissions(&lock, Permissions::from_mode(mode)).unwrap();
        let r = put(&store, "alice");
        assert!(
            matches!(r, Err(StoreError::Unsafe { .. })),
            "{mode:o}: {r:?}"
        );
    }
}

fn mkdir(path: &Path, mode: u32) {
    fs::create_dir(path).unwrap();
    fs::set_permissions(path, Permissions::from_mode(mode)).unwrap();
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The refusal's path and reason, or a panic naming what was accepted.
fn refusal(r: Result<Store, StoreError>) -> (PathBuf, String) {
    match r {
        Err(StoreError::Unsafe { path, why }) => (path, why),
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(s) => panic!("accepted {}", s.dir().display()),
    }
}

#[test]
fn a_store_under_a_parent_owned_by_another_user_is_refused() {
    if !is_root() {
        return; // chown needs root; CI runs as root
    }
    let top = private_dir();
    let parent = top.path().join("home");
    mkdir(&parent, 0o755);
    mkdir(&parent.join("store"), 0o700);
    std::os::unix::fs::chown(&parent, Some(65534), Some(65534)).unwrap();
    let (path, why) = refusal(Store::open(&parent.join("store"), Trust::RootOnly));
    assert_eq!(path, parent);
    assert!(why.contains("owned by uid 65534"), "{why}");
    let (_, why) = refusal(Store::create(&parent.join("new"), Trust::RootOnly));
    assert!(why.contains("owned by uid 65534"), "{why}");
    assert!(
        !parent.join("new").exists(),
        "created under an unsafe parent"
    );
}

#[test]
fn a_store_under_a_group_or_world_writable_parent_is_refused() {
    let top = private_dir();
    let parent = top.path().join("shared");
    mkdir(&parent, 0o755);
    mkdir(&parent.join("store"), 0o700);
    for mode in [0o777, 0o775, 0o757] {
        fs::set_permissions(&parent, Permissions::from_mode(mode)).unwrap();
        let (path, why) = refusal(Store::open(&parent.join("store"), test_trust()));
        assert_eq!(path, parent);
        assert!(why.contains("writable by group/other"), "{mode:o}: {why}");
        let (_, why) = refusal(Store::create(&parent.join("new"), test_trust()));
        assert!(why.contains("writable by group/other"), "{why}");
        assert!(
            !parent.join("new").exists(),
            "created under an unsafe parent"
        );
    }
    if is_root() {
        // A root-owned sticky directory (like /tmp) is fine.
        fs::set_permissions(&parent, Permissions::from_mode(0o1777)).unwrap();
        Store::open(&parent.join("store"), Trust::RootOnly).unwrap();
    }
}

#[test]
fn a_symlink_anywhere_in_the_store_path_is_refused() {
    let top = private_dir();
    mkdir(&top.path().join("real"), 0o700);
    mkdir(&top.path().join("real/store"), 0o700);
    std::os::unix::fs::symlink("real/store", top.path().join("link")).unwrap();
    std::os::unix::fs::symlink("real", top.path().join("plink")).unwrap();
    let t = top.path().display();
    for path in [
        format!("{t}/link"),
        format!("{t}/link/"),
        format!("{t}/link/."),
        format!("{t}/plink/store"),
        format!("{t}/plink/store/"),
    ] {
        let (_, why) = refusal(Store::open(Path::new(&path), test_trust()));
        assert!(why.contains("symbolic link"), "{path}: {why}");
    }
    let dotdot = format!("{t}/real/store/../store");
    refusal(Store::open(Path::new(&dotdot), test_trust()));
    Store::open(&top.path().join("real/store/"), test_trust()).unwrap();
}

/// A file or a FIFO where the store path needs a directory is refused by
/// name, as not a directory, and without opening it: an open without
/// O_DIRECTORY would wait on a FIFO for a writer that never comes, so a
/// hang fails the test (after a minute) instead of blocking it.
#[test]
fn a_file_or_fifo_in_the_store_path_is_refused_as_not_a_directory() {
    let top = private_dir();
    fs::write(top.path().join("file"), "").unwrap();
    nix::unistd::mkfifo(&top.path().join("fifo"), nix::sys::stat::Mode::S_IRUSR).unwrap();
    for name in ["file", "fifo"] {
        let at = top.path().join(name);
        for path in [at.clone(), at.join("store")] {
            let (tx, rx) = std::sync::mpsc::channel();
            let p = path.clone();
            std::thread::spawn(move || {
                let _ = tx.send(Store::open(&p, test_trust()));
            });
            let opened = rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("opening {} blocked", path.display()));
            let (refused, why) = refusal(opened);
            assert_eq!(refused, at, "{}", path.display());
            assert!(
                why.contains("is not a directory"),
                "{}: {why}",
                path.display()
            );
        }
    }
}

#[test]
fn swapping_the_store_directory_after_open_does_not_redirect_writes() {
    let top = private_dir();
    let dir = top.path().join("store");
    mkdir(&dir, 0o700);
    let store = Store::open(&dir, test_trust()).unwrap();
    fs::rename(&dir, top.path().join("old")).unwrap();
    mkdir(&dir, 0o700);
    put(&store, "alice").unwrap();
    assert_eq!(
        entries(&top.path().join("old")),
        [".alice.lock", "alice.toml"]
    );
    assert_eq!(entries(&dir), Vec::<String>::new());
    assert!(store.load("alice").unwrap().is_some());
    assert_eq!(store.users().unwrap(), ["alice"]);
    assert!(store.is_enrolled("alice").unwrap());
    store
        .update("alice", |_| Ok::<_, ()>((Change::Remove, ())))
        .unwrap()
        .unwrap();
    assert_eq!(entries(&top.path().join("old")), [".alice.lock"]);
}

fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(path).unwrap().ino()
}

/// `before` of a `replace_broken` whose output went out.
fn shown() -> Result<(), ()> {
    Ok(())
}

#[test]
fn a_corrupt_record_is_replaced_or_removed_never_edited_in_place() {
    let dir = private_dir();
    let store = Store::open(dir.path(), test_trust()).unwrap();
    let record = dir.path().join("alice.toml");
    put(&store, "alice").unwrap();
    fs::write(&record, "version = 1\nsecret = ").unwrap();
    assert!(matches!(
        put(&store, "alice"),
        Err(StoreError::Corrupt { .. })
    ));
    let broken = inode(&record);
    let r = store.replace_broken("alice", Change::Put(sample_record()), shown);
    assert_eq!(r.unwrap(), Ok(true), "it was broken");
    assert_ne!(inode(&record), broken, "replaced by rename, not rewritten");
    assert!(store.load("alice").unwrap().is_some());

    fs::write(&record, "\u{0}garbage").unwrap();
    assert_eq!(
        store
            .replace_broken("alice", Change::Remove, shown)
            .unwrap(),
        Ok(true)
    );
    assert!(store.load("alice").unwrap().is_none());
    assert_eq!(
        store
            .replace_broken("alice", Change::Remove, shown)
            .unwrap(),
        Ok(false),
        "nothing broken there"
    );
    assert_eq!(entries(dir.path()), [".alice.lock"]);
}

#[test]
fn a_record_with_a_bad_mode_can_be_replaced() {
    let (dir, store) = store_with_alice();
    let record = dir.path().join("alice.toml");
    fs::set_permissions(&record, Permissions::from_mode(0o4644)).unwrap();
    assert!(matches!(
        store.load("alice"),
        Err(StoreError::Unsafe { .. })
    ));
    assert_eq!(
        store
            .replace_broken("alice", Change::Put(sample_record()), shown)
            .unwrap(),
        Ok(true)
    );
    let mode = fs::metadata(&record).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o600);
}

/// Breaks the store in the directory it is given.
type Damage = fn(&Path);

/// Ways a record path can be something the store must not touch.
fn hostile_record_paths() -> Vec<(&'static str, Damage)> {
    let mut damage: Vec<(&'static str, Damage)> = vec![
        ("is a symbolic link", |d| {
            fs::write(d.join("elsewhere"), "x").unwrap();
            std::os::unix::fs::symlink(d.join("elsewhere"), d.join("alice.toml")).unwrap();
        }),
        ("it is a FIFO", |d| {
            nix::unistd::mkfifo(&d.join("alice.toml"), nix::sys::stat::Mode::S_IRUSR).unwrap();
        }),
        ("it is a directory", |d| mkdir(&d.join("alice.toml"), 0o700)),
        ("has 2 hard links", |d| {
            fs::write(d.join("alice.toml"), "x").unwrap();
            fs::hard_link(d.join("alice.toml"), d.join("second")).unwrap();
        }),
    ];
    if is_root() {
        damage.push(("owned by uid 65534", |d| {
            fs::write(d.join("alice.toml"), "x").unwrap();
            std::os::unix::fs::chown(d.join("alice.toml"), Some(65534), None).unwrap();
        }));
    }
    damage
}

#[test]
fn replacing_still_refuses_links_fifos_directories_and_foreign_owners() {
    for (why, damage) in hostile_record_paths() {
        let dir = private_dir();
        let store = Store::open(dir.path(), test_trust()).unwrap();
        damage(dir.path());
        let before = entries(dir.path());
        let kind = fs::symlink_metadata(dir.path().join("alice.toml"))
            .unwrap()
            .file_type();
        for change in [Change::Put(sample_record()), Change::Remove] {
            let r = store.replace_broken("alice", change, shown);
            assert!(
                matches!(&r, Err(StoreError::Unsafe { why: w, .. }) if w.contains(why) && w.contains("not replaced")),
                "{why}: {r:?}"
            );
        }
        let after = fs::symlink_metadata(dir.path().join("alice.toml")).unwrap();
        assert_eq!(after.file_type(), kind, "{why}");
        let mut without_lock = entries(dir.path());
        without_lock.retain(|n| n != ".alice.lock");
        assert_eq!(without_lock, before, "{why}");
    }
}

#[test]
fn check_paths_reports_lock_and_temp_paths_that_break_logins() {
    let (dir, store) = store_with_alice();
    assert_eq!(store.check_paths("alice"), []);
    // A temp file left by a crash is regular and private: it is replaced, not a problem.
    fs::write(dir.path().join(".alice.toml.tmp"), "x").unwrap();
    fs::set_permissions(
        dir.path().join(".alice.toml.tmp"),
        Permissions::from_mode(0o600),
    )
    .unwrap();
    assert_eq!(store.check_paths("alice"), []);

    let lock = dir.path().join(".alice.lock");
    let temp = dir.path().join(".alice.toml.tmp");
    fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", &lock).unwrap();
    fs::remove_file(&temp).unwrap();
    mkdir(&temp, 0o700);
    let found = store.check_paths("alice");
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].0, lock);
    assert!(found[0].1.contains("symbolic link"), "{found:?}");
    assert_eq!(found[1].0, temp);
    assert!(found[1].1.contains("directory"), "{found:?}");
    assert!(
        put(&store, "alice").is_err(),
        "a login would fail: doctor must say so"
    );

    fs::remove_file(&lock).unwrap();
    nix::unistd::mkfifo(
        &lock,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .unwrap();
    let found = store.check_paths("alice");
    assert!(found[0].1.contains("FIFO"), "{found:?}");
    fs::remove_file(&lock).unwrap();
    fs::write(&lock, "").unwrap();
    fs::set_permissions(&lock, Permissions::from_mode(0o644)).unwrap();
    let found = store.check_paths("alice");
    assert!(found[0].1.contains("mode 0644"), "{found:?}");
    assert_eq!(store.check_paths("../x").len(), 1, "a bad name is reported");
}

/// The site config, key, password and CA files: a symbolic link is refused
/// by name (never followed), a FIFO is refused without blocking (nobody
/// writes to it), an absent file is `None`, and any other open error is an
/// error (not "absent").
#[test]
fn trusted_files_refuse_links_and_fifos_and_only_absence_is_none() {
    let dir = private_dir();
    let real = dir.path().join("real.toml");
    fs::write(&real, "digits = 6\n").unwrap();
    fs::set_permissions(&real, Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        read_trusted_file(&real, 100).unwrap().as_deref(),
        Some(&b"digits = 6\n"[..])
    );
    let link = dir.path().join("link.toml");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let fifo = dir.path().join("fifo.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let trust = test_trust();
    // Each read in a thread of its own, so one that blocks fails the test
    // instead of hanging it.
    let read = |path: PathBuf, which: u8| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let r = match which {
                0 => read_trusted_file(&path, 100).map(|b| b.is_some()),
                1 => read_private_file(&path, 100, trust).map(|b| b.is_some()),
                _ => read_trusted_public_file(&path, 100, trust).map(|b| b.is_some()),
            };
            let _ = tx.send(r.map_err(|e| e.to_string()));
        });
        rx.recv_timeout(std::time::Duration::from_secs(20))
            .expect("the open blocked")
    };
    for which in 0..3 {
        let e = read(link.clone(), which).unwrap_err();
        assert!(e.contains("is a symbolic link"), "{e}");
        let e = read(fifo.clone(), which).unwrap_err();
        assert!(e.contains("FIFO"), "{e}");
        assert_eq!(read(dir.path().join("absent"), which), Ok(false));
        // A path through a regular file: ENOTDIR, an error, not absence.
        let e = read(real.join("x"), which).unwrap_err();
        assert!(e.contains("open"), "{e}");
    }
}

/// A trusted file of exactly the limit is read whole; one byte more is
/// refused, never read cut short.
#[test]
fn trusted_files_are_read_whole_up_to_the_limit_and_refused_beyond() {
    let dir = private_dir();
    let path = dir.path().join("site.toml");
    fs::write(&path, [b'#'; 100]).unwrap();
    fs::set_permissions(&path, Permissions::from_mode(0o600)).unwrap();
    assert_eq!(read_trusted_file(&path, 100).unwrap().unwrap().len(), 100);
    let trust = test_trust();
    assert_eq!(
        read_private_file(&path, 100, trust).unwrap().unwrap().len(),
        100
    );
    let e = read_trusted_file(&path, 99).unwrap_err().to_string();
    assert!(e.contains("larger than 99 bytes"), "{e}");
    let e = read_private_file(&path, 99, trust).unwrap_err().to_string();
    assert!(e.contains("larger than 99 bytes"), "{e}");
}

/// A record file of exactly the size limit loads; one byte more is refused
/// as too large (never parsed cut short), naming the record's path.
#[test]
fn records_load_up_to_the_size_limit_and_are_refused_beyond() {
    use crate::core::record::MAX_RECORD_BYTES;
    let (dir, store) = store_with_alice();
    let path = store.record_path("alice");
    assert_eq!(path, dir.path().join("alice.toml"));
    let text = fs::read_to_string(&path).unwrap();
    let (body, end) = text.split_at(text.rfind("# end of record").unwrap());
    let pad = |n: usize| format!("{body}#{}\n{end}", " ".repeat(n));
    let exact = pad(MAX_RECORD_BYTES - body.len() - end.len() - 2);
    assert_eq!(exact.len(), MAX_RECORD_BYTES);
    fs::write(&path, &exact).unwrap();
    assert!(store.load("alice").unwrap().is_some());
    fs::write(&path, pad(MAX_RECORD_BYTES - body.len() - end.len() - 1)).unwrap();
    let e = store.load("alice").unwrap_err();
    assert!(
        matches!(&e, StoreError::Corrupt { path: p, err: RecordError::TooLarge } if *p == path),
        "{e}"
    );
}

/// The lock file (which holds the login state) as a symbolic link, even to
/// a private file in the store: refused by name, its target untouched, for
/// a login's transaction and for the look before the prompt.
#[test]
fn a_lock_file_that_is_a_link_is_refused_and_its_target_left_alone() {
    let (dir, store) = store_with_alice();
    let target = dir.path().join("target");
    fs::write(&target, [7u8; 1024]).unwrap();
    fs::set_permissions(&target, Permissions::from_mode(0o600)).unwrap();
    let lock = dir.path().join(lock_name("alice"));
    fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    let e = store
        .update("alice", |_| Ok::<_, ()>((Change::Keep, ())))
        .unwrap_err()
        .to_string();
    assert!(e.contains("is a symbolic link"), "{e}");
    let e = store.load("alice").unwrap_err().to_string();
    assert!(e.contains("is a symbolic link"), "{e}");
    assert_eq!(fs::read(&target).unwrap(), [7u8; 1024]);
}

/// Each refusal of someone not enrolled writes the decoy's next slot, as a
/// login of an enrolled user writes its own (same cost, and the decoy's
/// state stays valid).
#[test]
fn every_decoy_write_advances_the_decoy_state() {
    let dir = private_dir();
    let store = Store::open(dir.path(), test_trust()).unwrap();
    let path = dir.path().join(lock_name(DECOY));
    for seq in 1..=3 {
        store.decoy_write(&sample_record()).unwrap();
        let file = fs::File::open(&path).unwrap();
        let state = state_file::read(&file, &path, &StateMemo::default())
            .unwrap()
            .unwrap();
        assert_eq!(state.seq, seq);
    }
}

/// The store the command line and the module open by location: a missing
/// directory is created (0700) only when asked, and a file store says where
/// it is and offers its file-only checks.
#[test]
fn any_store_creates_only_when_asked_and_describes_itself() {
    let dir = private_dir();
    let site = crate::config::SiteConfig::default();
    let new = dir.path().join("new");
    assert!(AnyStore::open(&site, Some(&new), test_trust(), false).is_err());
    assert!(!new.exists());
    let store = AnyStore::open(&site, Some(&new), test_trust(), true).unwrap();
    let mode = fs::metadata(&new).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700);
    assert_eq!(store.describe(), new.display().to_string());
    assert_eq!(store.files().map(|s| s.dir()), Some(new.as_path()));
    assert_eq!(store.record_path("alice"), new.join("alice.toml"));
}

/// A login reads the record and its state twice, and the second read of
/// the state reuses the first parse only for the same bytes: a record
/// replaced or a state written by another process in between is seen.
#[test]
fn a_second_read_sees_what_changed_since_the_first() {
    let (dir, store) = store_with_alice();
    let other = Store::open(dir.path(), test_trust()).unwrap();
    let first = store.load("alice").unwrap().unwrap();
    assert!(!first.hard_locked);
    // Another process's logins count failures (state writes): the first
    // grows the file, the later ones rewrite a slot at the same length.
    for failures in 1..=3 {
        login_failure(&other);
        assert_eq!(store.load("alice").unwrap().unwrap().failures, failures);
    }
    // An admin's change (a new record renamed over the old).
    let mut locked = sample_record();
    locked.hard_locked = true;
    other
        .update("alice", |_| Ok::<_, ()>((Change::Put(locked), ())))
        .unwrap()
        .unwrap();
    let seen = store
        .update("alice", |r| Ok::<_, ()>((Change::Keep, r.unwrap().clone())))
        .unwrap()
        .unwrap();
    assert!(seen.hard_locked);
    assert_eq!(seen.failures, 0, "a new record starts from a clean state");
    // Damage of the same length is not taken for the parse before it.
    let path = store.record_path("alice");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(
        &path,
        text.replace("hard_locked = true", "hard_locked = 1234"),
    )
    .unwrap();
    assert!(matches!(
        store.load("alice"),
        Err(StoreError::Corrupt { .. })
    ));
}

fn login_failure(store: &Store) {
    store
        .update("alice", |r| {
            let mut next = r.unwrap().clone();
            next.failures += 1;
            Ok::<_, ()>((Change::Put(next), ()))
        })
        .unwrap()
        .unwrap();
}
