//! A TCP proxy between the module and a real PostgreSQL server (no TLS on
//! the loopback, so it can read the protocol) that cuts or stalls a
//! connection at one chosen point of a login's transaction: before the
//! COMMIT reaches the server, after the server has it but before its answer
//! reaches the module, after the answer, or by never answering at all.
//!
//! Client messages after the startup packet are framed as one type byte and
//! a 4-byte big-endian length (which counts itself); tokio-postgres commits
//! with the simple query `COMMIT` (a `Q` message). Server messages are all
//! framed the same way; `Z` (ReadyForQuery) ends the answer to a query.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

/// What the proxy does to a connection's first COMMIT (or to all of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Forward everything.
    Pass,
    /// Close both sides instead of forwarding the first BEGIN (`START
    /// TRANSACTION`): no
    /// transaction ever started, so nothing can have been saved.
    BeforeBegin,
    /// Close both sides instead of forwarding the COMMIT: the server rolls back.
    BeforeCommit,
    /// Forward the COMMIT, let the server answer, then close the module's
    /// side without its answer: committed, but the module cannot know.
    AnswerLost,
    /// Forward the COMMIT, let the server answer, and send the module an
    /// error of this severity and SQLSTATE instead of the answer (FATAL
    /// 08P01 is what PgBouncer says when its server connection dies), then
    /// close: committed, but the module is told it failed.
    ErrorForAnswer(&'static str, &'static str),
    /// Forward the COMMIT and its answer; close both sides as soon as the
    /// module sends anything more (its goodbye), without forwarding it.
    AfterCommit,
    /// Forward the COMMIT, then forward nothing more in either direction
    /// while keeping both sides open: a server that stopped answering.
    StallAtCommit,
    /// Accept the connection and never forward a byte of it.
    StallAtStart,
    /// Hold the COMMIT (both sides open) until `release`, then forward it.
    HoldCommit,
}

#[derive(Default)]
struct Counters {
    /// COMMITs seen from the module.
    commits: usize,
    /// COMMITs being held (`Cut::HoldCommit`).
    held: usize,
    /// Connections cut where the `Cut` says.
    cuts: usize,
    released: bool,
}

struct Shared {
    cut: Mutex<Cut>,
    counters: Mutex<Counters>,
    changed: Condvar,
    streams: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
}

pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
    accept: Option<thread::JoinHandle<()>>,
}

impl Proxy {
    /// A proxy on a free loopback port in front of `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            cut: Mutex::new(Cut::Pass),
            counters: Mutex::new(Counters::default()),
            changed: Condvar::new(),
            streams: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let accept = thread::spawn(move || {
            for client in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let cut = *locked(&s.cut);
                let s = s.clone();
                thread::spawn(move || serve(client, upstream, cut, s));
            }
        });
        Proxy {
            port,
            shared,
            accept: Some(accept),
        }
    }

    /// What later connections get (a connection keeps the cut it began with).
    pub fn set(&self, cut: Cut) {
        *locked(&self.shared.cut) = cut;
    }

    /// COMMITs seen so far.
    pub fn commits(&self) -> usize {
        locked(&self.shared.counters).commits
    }

    /// Connections cut so far where their `Cut` said.
    pub fn cuts(&self) -> usize {
        locked(&self.shared.counters).cuts
    }

    /// Blocks until a COMMIT is held (`Cut::HoldCommit`); a minute at most
    /// (a login that never got there fails the test instead of hanging it).
    pub fn wait_until_held(&self) {
        let c = locked(&self.shared.counters);
        let (c, _) = self
            .shared
            .changed
            .wait_timeout_while(c, std::time::Duration::from_secs(60), |c| c.held == 0)
            .unwrap_or_else(PoisonError::into_inner);
        let held = c.held;
        drop(c);
        assert!(held > 0, "no login reached its COMMIT");
    }

    /// Connections cut so far, once there is at least one or a minute
    /// passed: a cut after the COMMIT (`Cut::AfterCommit`) happens when the
    /// module's goodbye arrives, which may be after the login returned.
    pub fn cuts_after_the_login(&self) -> usize {
        let c = locked(&self.shared.counters);
        let (c, _) = self
            .shared
            .changed
            .wait_timeout_while(c, std::time::Duration::from_secs(60), |c| c.cuts == 0)
            .unwrap_or_else(PoisonError::into_inner);
        c.cuts
    }

    /// Lets held COMMITs go on to the server.
    pub fn release(&self) {
        locked(&self.shared.counters).released = true;
        self.shared.changed.notify_all();
    }
}

fn count_cut(s: &Shared) {
    locked(&s.counters).cuts += 1;
    s.changed.notify_all();
}

/// A lock that a failed test's panic may have poisoned: the proxy goes on
/// (and its `Drop` runs) rather than panicking again, which during the
/// unwinding would abort the whole test binary and leave its servers behind.
fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.release();
        for s in locked(&self.shared.streams).iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn read_message(r: &mut impl Read, typed: bool) -> std::io::Result<Vec<u8>> {
    let mut head = vec![0u8; if typed { 5 } else { 4 }];
    r.read_exact(&mut head)?;
    let at = head.len() - 4;
    let len = u32::from_be_bytes(head[at..].try_into().unwrap()) as usize;
    if !(4..=64 << 20).contains(&len) {
        return Err(std::io::Error::other("bad PostgreSQL frame"));
    }
    let mut body = vec![0u8; len - 4];
    r.read_exact(&mut body)?;
    head.extend_from_slice(&body);
    Ok(head)
}

fn is_commit(msg: &[u8]) -> bool {
    msg[0] == b'Q' && msg[5..].eq_ignore_ascii_case(b"COMMIT\0")
}

/// tokio-postgres begins a transaction with `START TRANSACTION`.
fn is_begin(msg: &[u8]) -> bool {
    msg[0] == b'Q'
        && [&b"BEGIN\0"[..], b"START TRANSACTION\0"]
            .iter()
            .any(|b| msg[5..].eq_ignore_ascii_case(b))
}

fn serve(mut client: TcpStream, upstream: u16, cut: Cut, s: Arc<Shared>) {
    {
        let mut streams = locked(&s.streams);
        streams.push(client.try_clone().unwrap());
    }
    if cut == Cut::StallAtStart {
        // Read and drop whatever comes until the proxy goes away.
        let mut sink = [0u8; 4096];
        while matches!(client.read(&mut sink), Ok(n) if n > 0) {}
        return;
    }
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    locked(&s.streams).push(server.try_clone().unwrap());
    // The server ends each answer with one ReadyForQuery (`Z`): one for the
    // startup, then one per Sync (`S`) or simple query (`Q`) sent. So the
    // answer to the COMMIT is whatever follows the Z numbered `commit_at - 1`,
    // up to and including the Z numbered `commit_at` (0: no COMMIT yet).
    let commit_at = Arc::new(AtomicUsize::new(0));
    // Set once the answer to the COMMIT went to the module.
    let answered = Arc::new(AtomicBool::new(false));
    let back = {
        let answered = answered.clone();
        let commit_at = commit_at.clone();
        let s = s.clone();
        let mut from = server.try_clone().unwrap();
        let mut to = client.try_clone().unwrap();
        thread::spawn(move || {
            let mut zs = 0;
            while let Ok(msg) = read_message(&mut from, true) {
                let at = commit_at.load(Ordering::SeqCst);
                let of_commit = at != 0 && zs + 1 >= at;
                if msg[0] == b'Z' {
                    zs += 1;
                }
                let last = of_commit && msg[0] == b'Z';
                match cut {
                    Cut::AnswerLost if of_commit => {
                        if last {
                            // The server is done with it: now the module's
                            // side goes, without the answer.
                            count_cut(&s);
                            let _ = to.shutdown(Shutdown::Both);
                            let _ = from.shutdown(Shutdown::Both);
                            return;
                        }
                        continue;
                    }
                    Cut::ErrorForAnswer(severity, code) if of_commit => {
                        if last {
                            count_cut(&s);
                            let _ = to.write_all(&error_response(severity, code));
                            let _ = to.shutdown(Shutdown::Both);
                            let _ = from.shutdown(Shutdown::Both);
                            return;
                        }
                        continue;
                    }
                    Cut::StallAtCommit if of_commit => continue,
                    _ => {}
                }
                if last {
                    answered.store(true, Ordering::SeqCst);
                }
                if to.write_all(&msg).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Both);
        })
    };
    let mut typed = false;
    let mut syncs = 1;
    while let Ok(msg) = read_message(&mut client, typed) {
        typed = true;
        let committed = commit_at.load(Ordering::SeqCst) != 0;
        if cut == Cut::AfterCommit && answered.load(Ordering::SeqCst) {
            // The module has its answer and says more (its goodbye): cut.
            count_cut(&s);
            let _ = client.shutdown(Shutdown::Both);
            break;
        }
        if cut == Cut::StallAtCommit && committed {
            continue;
        }
        if cut == Cut::BeforeBegin && is_begin(&msg) {
            count_cut(&s);
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
            break;
        }
        if matches!(msg[0], b'S' | b'Q') {
            syncs += 1;
        }
        if is_commit(&msg) && !committed {
            locked(&s.counters).commits += 1;
            match cut {
                Cut::BeforeCommit => {
                    count_cut(&s);
                    let _ = client.shutdown(Shutdown::Both);
                    let _ = server.shutdown(Shutdown::Both);
                    break;
                }
                Cut::HoldCommit => {
                    let mut c = locked(&s.counters);
                    c.held += 1;
                    s.changed.notify_all();
                    while !c.released {
                        c = s.changed.wait(c).unwrap_or_else(PoisonError::into_inner);
                    }
                }
                _ => {}
            }
            // Before the COMMIT goes: its answer cannot come earlier.
            commit_at.store(syncs, Ordering::SeqCst);
        }
        if server.write_all(&msg).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Both);
    let _ = back.join();
}

/// An ErrorResponse: `severity`, SQLSTATE `code`, "server conn crashed?".
fn error_response(severity: &str, code: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (tag, value) in [
        (b'S', severity),
        (b'V', severity),
        (b'C', code),
        (b'M', "server conn crashed?"),
    ] {
        body.push(tag);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = vec![b'E'];
    msg.extend_from_slice(&(u32::try_from(body.len() + 4).unwrap()).to_be_bytes());
    msg.extend_from_slice(&body);
    msg
}
