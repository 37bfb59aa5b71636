//! One contract, every store: the file store and the PostgreSQL fleet store
//! keep the same promises (transactions, replay, recovery once, locks and
//! the hard lock, races, broken data, not enrolled). The PostgreSQL half
//! needs root (it starts a private server).

mod common;

use common::pg::PgServer;
use common::*;
use otpgate::config::SiteConfig;
use otpgate::core::decide::{Lock, lock_state};
use otpgate::core::otp::{Generator, OtpParams};
use otpgate::core::recovery::{RecoveryCodes, RecoveryHashes};
use otpgate::core::{Policy, Reason, Record, decide_login};
use otpgate::store::pg::PgStore;
use otpgate::store::{Change, Store, StoreError, Trust, UserStore};
use std::process::{Command, Stdio};

const USER: &str = "daemon";
const SECRET: &[u8] = b"contract-secret-2024";

fn code(now: u64) -> String {
    Generator::new(SECRET, OtpParams::default())
        .code_at_step(now / 30)
        .to_string()
}

fn enroll(s: &impl UserStore, now: u64) -> RecoveryCodes {
    let codes = RecoveryCodes::generate(3).unwrap();
    let record = Record::new(
        SECRET,
        OtpParams::default(),
        RecoveryHashes::create(&codes, TEST_KDF).unwrap(),
        now,
    );
    s.update(USER, |_| Ok::<_, ()>((Change::Put(record), ())))
        .unwrap()
        .unwrap();
    codes
}

/// One login through the store, as the module does it.
fn login(s: &impl UserStore, answer: &str, policy: &Policy, now: u64) -> Result<(), Reason> {
    s.update(USER, |current| {
        let d = decide_login(current.unwrap(), answer.as_bytes(), policy, now, "").unwrap();
        Ok::<_, ()>((d.new_record.map_or(Change::Keep, Change::Put), d.result))
    })
    .unwrap()
    .unwrap()
    .map(|_| ())
    .map_err(|f| f.reason)
}

/// The promises, on a store `open` gives (each call a new handle, as each
/// login has its own); `corrupt` breaks the user's record behind its back,
/// `corrupt_state` the login state a login left.
fn contract<S: UserStore>(
    open: impl Fn() -> S + Sync,
    corrupt: impl Fn(),
    corrupt_state: impl Fn(),
) {
    let s = open();
    let now = unix_now();
    let p = Policy::default();
    // Messages name the store, and a user's record within it.
    let (store, record) = (s.describe(), s.record_path(USER).display().to_string());
    assert!(!store.is_empty(), "{store:?}");
    assert!(
        record.starts_with(&store) && record.len() > store.len() && record.contains(USER),
        "{store} / {record}"
    );
    // Not enrolled.
    assert!(s.load(USER).unwrap().is_none());
    assert!(!s.is_enrolled(USER).unwrap());
    let seen = s.update(USER, |cur| Ok::<_, ()>((Change::Keep, cur.is_none())));
    assert!(seen.unwrap().unwrap());
    // Enrolled, listed.
    let codes = enroll(&s, now);
    assert!(s.is_enrolled(USER).unwrap());
    assert_eq!(s.users().unwrap(), [USER]);
    // A code once; the same code again is a replay, on another handle too.
    assert_eq!(login(&s, &code(now), &p, now), Ok(()));
    assert_eq!(login(&open(), &code(now), &p, now), Err(Reason::Replay));
    assert_eq!(open().load(USER).unwrap().unwrap().last_step, now / 30);
    // A recovery code once.
    let rc = codes.display()[1].to_string();
    assert_eq!(login(&s, &rc, &p, now), Ok(()));
    assert_eq!(login(&open(), &rc, &p, now), Err(Reason::BadCode));
    assert_eq!(s.load(USER).unwrap().unwrap().recovery.remaining(), 2);
    // Locks and the hard lock are stored and seen by every handle.
    let strict = Policy {
        deny: 2,
        unlock_time: 60,
        hard_deny: 3,
        ..Policy::default()
    };
    // One failure so far (the used recovery code): this one locks.
    assert_eq!(open().load(USER).unwrap().unwrap().failures, 1);
    assert_eq!(login(&s, "000000x", &strict, now), Err(Reason::BadCode));
    assert_eq!(
        login(&open(), &code(now + 30), &strict, now),
        Err(Reason::Locked)
    );
    assert_eq!(
        login(&s, "000000x", &strict, now + 100),
        Err(Reason::BadCode)
    );
    let r = open().load(USER).unwrap().unwrap();
    assert!(r.hard_locked);
    assert_eq!(lock_state(&r, &p, now + 10_000), Some(Lock::UntilUnlocked));
    // An admin unlock (a change of login fields) clears it everywhere.
    s.update(USER, |cur| {
        let mut next = cur.unwrap().clone();
        next.failures = 0;
        next.hard_locked = false;
        next.locked_until = 0;
        Ok::<_, ()>((Change::Put(next), ()))
    })
    .unwrap()
    .unwrap();
    // Twenty racing logins with one code: exactly one gets in (19 replays:
    // a policy that does not lock meanwhile).
    let p = Policy {
        deny: 1000,
        hard_deny: 0,
        ..Policy::default()
    };
    let t = now + 60;
    let wins = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| scope.spawn(|| login(&open(), &code(t), &p, t).is_ok()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|won| *won)
            .count()
    });
    assert_eq!(wins, 1);
    // New codes from an admin: the replay guard stays, the old codes go.
    let fresh = RecoveryCodes::generate(2).unwrap();
    s.update(USER, |cur| {
        let mut next = cur.unwrap().clone();
        next.recovery = RecoveryHashes::create(&fresh, TEST_KDF).unwrap();
        Ok::<_, ()>((Change::Put(next), ()))
    })
    .unwrap()
    .unwrap();
    assert_eq!(login(&open(), &code(t), &p, t), Err(Reason::Replay));
    assert_eq!(login(&s, &codes.display()[0], &p, t), Err(Reason::BadCode));
    assert_eq!(login(&s, &fresh.display()[0], &p, t), Ok(()));
    // Broken data is refused, never repaired in place; an admin replaces it.
    corrupt();
    assert!(matches!(
        open().load(USER),
        Err(StoreError::Corrupt { .. } | StoreError::Unsafe { .. })
    ));
    let again = enroll_broken(&open(), now);
    assert_eq!(login(&open(), &again.display()[0], &p, now), Ok(()));
    // A broken login state too: refused, never reset (no login and no
    // change to the state, such as an unlock, gets past it); replacing or
    // removing the enrollment is the way out, and what follows starts
    // clean.
    corrupt_state();
    assert!(matches!(open().load(USER), Err(StoreError::State { .. })));
    let unlock = open().update(USER, |cur| {
        let mut next = cur.unwrap().clone();
        next.failures = 0;
        Ok::<_, ()>((Change::Put(next), ()))
    });
    assert!(
        matches!(unlock, Err(StoreError::State { .. })),
        "{unlock:?}"
    );
    let again = enroll_broken(&open(), now);
    assert_eq!(login(&open(), &again.display()[0], &p, now), Ok(()));
    corrupt_state();
    // The command's output fails: nothing is removed.
    let unshown = open().replace_broken(USER, Change::Remove, || Err("no output"));
    assert_eq!(unshown.unwrap(), Err("no output"));
    assert!(matches!(open().load(USER), Err(StoreError::State { .. })));
    assert_eq!(
        open().replace_broken(USER, Change::Remove, shown).unwrap(),
        Ok(true)
    );
    assert!(open().load(USER).unwrap().is_none());
    let again = enroll(&open(), now);
    assert_eq!(login(&open(), &again.display()[0], &p, now), Ok(()));
    // Only a broken enrollment is replaced or removed: one that reads (made
    // or repaired by another run since the caller saw it broken) is kept,
    // and `before` is not called.
    let kept = open().load(USER).unwrap().unwrap();
    for change in [Change::Remove, Change::Put(kept.clone())] {
        let r = open().replace_broken(USER, change, || -> Result<(), ()> {
            panic!("before() called for an enrollment that reads")
        });
        assert_eq!(r.unwrap(), Ok(false));
        assert_eq!(open().load(USER).unwrap().as_ref(), Some(&kept));
    }
    // Removed: not enrolled any more, and nothing to replace.
    s.update(USER, |_| Ok::<_, ()>((Change::Remove, ())))
        .unwrap()
        .unwrap();
    assert!(open().load(USER).unwrap().is_none());
    let r = open().replace_broken(USER, Change::Put(kept.clone()), shown);
    assert_eq!(r.unwrap(), Ok(false));
    assert!(open().load(USER).unwrap().is_none());
}

/// `before` of a `replace_broken` whose output went out.
fn shown() -> Result<(), &'static str> {
    Ok(())
}

fn enroll_broken(s: &impl UserStore, now: u64) -> RecoveryCodes {
    let codes = RecoveryCodes::generate(1).unwrap();
    let record = Record::new(
        SECRET,
        OtpParams::default(),
        RecoveryHashes::create(&codes, TEST_KDF).unwrap(),
        now,
    );
    assert_eq!(
        s.replace_broken(USER, Change::Put(record), shown).unwrap(),
        Ok(true)
    );
    codes
}

fn trust() -> Trust {
    if nix::unistd::geteuid().is_root() {
        Trust::RootOnly
    } else {
        Trust::RootOrEuid
    }
}

#[test]
fn the_file_store_keeps_the_contract() {
    let f = Fixture::new("contract-files", "");
    contract(
        || Store::open(&f.store, trust()).unwrap(),
        || std::fs::write(f.record_path(USER), "version = 1\nsecret = ").unwrap(),
        || std::fs::write(f.store.join(format!(".{USER}.lock")), [0x5a; 1024]).unwrap(),
    );
}

#[test]
fn the_postgresql_store_keeps_the_contract() {
    if !runs_as_root("the_postgresql_store_keeps_the_contract") {
        return;
    }
    let pg = PgServer::start();
    let f = Fixture::new("contract-pg", "");
    let conf = pg.site_config(f.tmp.path(), "admin", "otpgate_admin", "localhost");
    let o = Command::new(env!("CARGO_BIN_EXE_otpgate"))
        .arg("--config")
        .arg(&conf)
        .args(["db", "init", "--new-key"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let site = SiteConfig::load(&conf).unwrap();
    let url = site.store.clone().unwrap();
    contract(
        || PgStore::connect(&url, &site.postgres, Trust::RootOnly).unwrap(),
        || {
            pg.psql_as(
                "postgres",
                "otpgate",
                &format!("UPDATE otpgate_users SET record = '\\x00' WHERE name = '{USER}'"),
            )
            .unwrap();
        },
        || {
            pg.psql_as(
                "postgres",
                "otpgate",
                &format!("UPDATE otpgate_users SET state = '\\x5a' WHERE name = '{USER}'"),
            )
            .unwrap();
        },
    );
    // Debug (what a panic or a log of the store would show) names the
    // store by its URL, never with a password written into it.
    let pw = common::pg::ADMIN_PASSWORD;
    let with_pw = url.replacen("otpgate_admin@", &format!("otpgate_admin:{pw}@"), 1);
    assert_ne!(with_pw, url);
    let store = PgStore::connect(&with_pw, &site.postgres, Trust::RootOnly).unwrap();
    let shown = format!("{store:?}");
    assert!(
        shown.contains("PgStore") && shown.contains("otpgate_admin"),
        "{shown}"
    );
    assert!(!shown.contains(pw), "{shown}");
}
