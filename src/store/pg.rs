//! The fleet store: one row per user in PostgreSQL, so one enrollment serves
//! every host and a code, a recovery code or a lockout counts fleet-wide.
//!
//! Each row holds the record sealed with the site key (ChaCha20-Poly1305,
//! the user name as associated data, so rows cannot be swapped between
//! users; a dump reveals no secret) and the login state (one slot of
//! `core::state`, checksummed). A login is one transaction: the row is read
//! and locked (`FOR UPDATE`), the same pure decision as the file store runs,
//! the new state is written, and only after the commit does the module
//! return success. Every wait on the network (connecting, TLS, each
//! statement, the commit, closing) is bounded by the site's timeout on this
//! side, so a server that accepts and then says nothing cannot hold a login;
//! the server bounds its own side too (statement and lock timeouts). The
//! connection and the client's runtime (one thread: the caller's) end with
//! the call.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use tokio::runtime::Runtime;
// Deadlines for waits on the network only (never for a decision).
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_postgres::config::{SslMode, TargetSessionAttrs};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, Transaction};
use zeroize::Zeroizing;

use super::{Change, StoreError, validate_user};
use crate::config::{PostgresConfig, TlsSetting};
use crate::core::record::Record;
use crate::core::state::{self, LoginState};

/// The schema version this build reads and `otpgate db init` creates.
pub const SCHEMA_VERSION: i32 = 1;
/// The decoy row (a leading dot: never a user's), created by `db init`.
pub const DECOY_ROW: &str = ".decoy";
const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;
/// ChaCha20-Poly1305's authentication tag, after the ciphertext.
const TAG_BYTES: usize = 16;
const AAD_PREFIX: &[u8] = b"otpgate-record-v1\0";

/// The schema, as `otpgate db init` creates it.
pub const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS otpgate_schema (version integer NOT NULL);
CREATE TABLE IF NOT EXISTS otpgate_users (
    name    text PRIMARY KEY,
    record  bytea NOT NULL,
    state   bytea,
    updated timestamptz NOT NULL DEFAULT now()
);
";

fn unavailable(what: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(what.to_string())
}

fn db_err(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |e| {
        // The server's message when there is one (permission denied,
        // unknown table...); never query parameters.
        let why = e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_else(|| e.to_string());
        unavailable(format!("{what}: {why}"))
    }
}

/// The site key that seals secrets.
pub struct SealKey(Zeroizing<[u8; KEY_BYTES]>);

impl SealKey {
    /// Reads the key file: 32 bytes, root-owned (or the caller's own user,
    /// per `trust`), no group/other access.
    pub fn load(path: &Path, trust: super::Trust) -> Result<SealKey, StoreError> {
        let bytes = super::read_private_file(path, KEY_BYTES + 1, trust)?.ok_or_else(|| {
            StoreError::Unsafe {
                path: path.to_path_buf(),
                why: "key file missing (create it with: otpgate db init --new-key)".into(),
            }
        })?;
        if bytes.len() != KEY_BYTES {
            return Err(StoreError::Unsafe {
                path: path.to_path_buf(),
                why: format!("key file must hold exactly {KEY_BYTES} bytes"),
            });
        }
        let mut key = Zeroizing::new([0u8; KEY_BYTES]);
        key.copy_from_slice(&bytes);
        Ok(SealKey(key))
    }

    /// A new random key.
    pub fn generate() -> Result<SealKey, String> {
        let mut key = Zeroizing::new([0u8; KEY_BYTES]);
        getrandom::fill(&mut key[..]).map_err(|e| format!("OS random generator: {e}"))?;
        Ok(SealKey(key))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0[..]
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0[..]))
    }

    fn aad(user: &str) -> Vec<u8> {
        [AAD_PREFIX, user.as_bytes()].concat()
    }

    /// nonce || ciphertext of `plain`, bound to `user`.
    pub fn seal(&self, user: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce)
            .map_err(|e| unavailable(format!("OS random generator: {e}")))?;
        let aad = Self::aad(user);
        let sealed = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| unavailable("cannot seal the record"))?;
        Ok([&nonce[..], &sealed].concat())
    }

    /// The plain record of `user`; an error if the row was sealed with
    /// another key or for another user, or changed.
    pub fn open(&self, user: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
        // The nonce and the tag at least (an empty record seals to that).
        if sealed.len() < NONCE_BYTES + TAG_BYTES {
            return Err("sealed record too short".into());
        }
        let (nonce, body) = sealed.split_at(NONCE_BYTES);
        let aad = Self::aad(user);
        self.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                "the row does not open with this site key for this user (another key, \
                 another user's row, or changed)"
                    .to_string()
            })
    }
}

/// A connection to the fleet store, for one PAM call or one command.
pub struct PgStore {
    /// `None` only while being dropped.
    client: RefCell<Option<Client>>,
    key: SealKey,
    url: String,
    /// The client's runtime: current-thread, so nothing runs but inside
    /// `wait`, on the caller's thread.
    rt: Runtime,
    /// The connection's task (reads and writes the socket).
    conn: Option<JoinHandle<()>>,
    /// The bound on each exchange with the server (a whole transaction
    /// counts as one).
    timeout: Duration,
    /// Set when a wait failed below the server's own errors (a timeout, a
    /// lost connection): where the conversation stands is unknown, so every
    /// later call fails at once and no goodbye is waited for.
    broken: Cell<bool>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Without its client the connection says goodbye to the server
        // (Terminate) and ends; a server that no longer answers cannot
        // hold this either. Dropping the runtime then closes the socket.
        drop(self.client.get_mut().take());
        if self.broken.get() {
            return;
        }
        if let Some(conn) = self.conn.take() {
            let timeout = self.timeout;
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(timeout, conn).await });
        }
    }
}

fn no_answer(what: &str, timeout: Duration) -> StoreError {
    unavailable(format!(
        "{what}: no answer within {} s (timeout)",
        timeout.as_secs()
    ))
}

/// Connects within `timeout` and starts the connection's task.
fn start_connection<S, T>(
    rt: &Runtime,
    timeout: Duration,
    url: &str,
    connect: impl Future<
        Output = Result<(Client, tokio_postgres::Connection<S, T>), tokio_postgres::Error>,
    >,
) -> Result<(Client, JoinHandle<()>), StoreError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (client, connection) =
        match rt.block_on(async { tokio::time::timeout(timeout, connect).await }) {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(unavailable(format!("{}: {}", redact(url), pg_words(&e)))),
            Err(_) => return Err(no_answer(&format!("{}: connect", redact(url)), timeout)),
        };
    let task = rt.spawn(async move {
        // Its error, if any, is what the next `wait` reports.
        let _ = connection.await;
    });
    Ok((client, task))
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &redact(&self.url))
            .finish()
    }
}

/// The URL for messages, never with a password: rebuilt from what
/// tokio-postgres read (scheme, user, hosts and ports, database; the
/// password and every parameter left out), and only when each part is
/// plainly a name. A URL that does not parse, has more than one '@', or a
/// part that is not a plain name is not shown at all: the parser takes
/// everything before the first '@' as the user, so a password holding an
/// '@' (in the user part or in `?password=`) ends up in the user, a host
/// or the database name.
pub fn redact(url: &str) -> String {
    const HIDDEN: &str =
        "(a database URL, not shown: it does not parse, or a part of it may hold a password)";
    let Ok(config) = url.parse::<tokio_postgres::Config>() else {
        return HIDDEN.to_string();
    };
    use tokio_postgres::config::Host;
    let name = |s: &str, more: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c) || more.contains(c))
    };
    let user = config.get_user().unwrap_or("");
    let dbname = config.get_dbname().unwrap_or("");
    if url.matches('@').count() > 1 || !name(user, "") || !name(dbname, "") {
        return HIDDEN.to_string();
    }
    let ports = config.get_ports();
    // Each host as shown, or None when one is not a plain name.
    let hosts: Option<Vec<String>> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                // IPv6 addresses have colons.
                Host::Tcp(host) if !name(host, ":") => return None,
                Host::Tcp(host) if host.contains(':') => format!("[{host}]"),
                Host::Tcp(host) => host.clone(),
                Host::Unix(dir) => {
                    let dir = dir.to_str().filter(|d| name(d, "/"))?;
                    dir.replace('/', "%2F")
                }
            };
            // One port for all hosts, or one each.
            let port = ports.get(i).or(ports.first().filter(|_| ports.len() == 1));
            Some(match port {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
        .collect();
    let Some(hosts) = hosts else {
        return HIDDEN.to_string();
    };
    format!(
        "{}://{user}@{}/{dbname}",
        url.split_once("://")
            .map_or("postgresql", |(scheme, _)| scheme),
        hosts.join(",")
    )
}

/// `config` narrowed to its host number `i` (with that host's port, or the
/// one port given for all), everything else as it was.
fn one_host(config: &tokio_postgres::Config, i: usize) -> tokio_postgres::Config {
    use tokio_postgres::config::Host;
    let mut c = tokio_postgres::Config::new();
    if let Some(v) = config.get_user() {
        c.user(v);
    }
    if let Some(v) = config.get_password() {
        c.password(v);
    }
    if let Some(v) = config.get_dbname() {
        c.dbname(v);
    }
    if let Some(v) = config.get_options() {
        c.options(v);
    }
    if let Some(v) = config.get_application_name() {
        c.application_name(v);
    }
    match config.get_hosts().get(i) {
        Some(Host::Tcp(h)) => {
            c.host(h);
        }
        Some(Host::Unix(p)) => {
            c.host_path(p);
        }
        None => {}
    }
    if let Some(a) = config.get_hostaddrs().get(i) {
        c.hostaddr(*a);
    }
    let ports = config.get_ports();
    if let Some(p) = ports.get(i).or(ports.first()) {
        c.port(*p);
    }
    if let Some(t) = config.get_connect_timeout() {
        c.connect_timeout(*t);
    }
    if let Some(t) = config.get_tcp_user_timeout() {
        c.tcp_user_timeout(*t);
    }
    c.keepalives(config.get_keepalives())
        .keepalives_idle(config.get_keepalives_idle());
    if let Some(v) = config.get_keepalives_interval() {
        c.keepalives_interval(v);
    }
    if let Some(v) = config.get_keepalives_retries() {
        c.keepalives_retries(v);
    }
    c.target_session_attrs(config.get_target_session_attrs())
        .channel_binding(config.get_channel_binding())
        .ssl_mode(config.get_ssl_mode())
        .ssl_negotiation(config.get_ssl_negotiation());
    c
}

/// Whether every host of `config` is a Unix socket (and no `hostaddr`
/// sends the connection elsewhere), the one place TLS may be left out: a
/// TCP port, even on the loopback, is free for anyone on the machine to
/// listen on while the server is down, and a server of theirs could ask
/// for the password in clear or say "not enrolled".
fn all_sockets(config: &tokio_postgres::Config) -> bool {
    use tokio_postgres::config::Host;
    !config.get_hosts().is_empty()
        && config.get_hostaddrs().is_empty()
        && config
            .get_hosts()
            .iter()
            .all(|h| matches!(h, Host::Unix(_)))
}

/// A row as stored: the sealed record and the login state (NULL before
/// the first login after the record was written).
type RawRow = (Vec<u8>, Option<Vec<u8>>);

impl PgStore {
    /// Connects (bounded by `connect_timeout`), checks the schema version.
    pub fn connect(
        url: &str,
        site: &PostgresConfig,
        trust: super::Trust,
    ) -> Result<PgStore, StoreError> {
        let store = PgStore::connect_unchecked(url, site, trust)?;
        store.check_schema()?;
        Ok(store)
    }

    /// Connects without looking at the schema (`db init` creates it).
    fn connect_unchecked(
        url: &str,
        site: &PostgresConfig,
        trust: super::Trust,
    ) -> Result<PgStore, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Config(format!("{}: {e}", redact(url))))?;
        check_socket_dirs(&config)?;
        let timeout = Duration::from_secs(site.connect_timeout());
        let millis = timeout.as_millis();
        config
            .connect_timeout(timeout)
            .target_session_attrs(TargetSessionAttrs::ReadWrite)
            .options(format!(
                "-c statement_timeout={millis} -c lock_timeout={millis} -c idle_in_transaction_session_timeout={millis}"
            ))
            .application_name("otpgate");
        if let Some(pf) = &site.password_file {
            let pw = super::read_private_file(pf, 4096, trust)?.ok_or_else(|| {
                StoreError::Config(format!("{}: password file missing", pf.display()))
            })?;
            let pw = Zeroizing::new(pw);
            let text = std::str::from_utf8(&pw)
                .map_err(|_| StoreError::Config(format!("{}: not UTF-8", pf.display())))?;
            config.password(text.trim_end_matches(['\n', '\r']));
        }
        let key = SealKey::load(&site.key_file(), trust)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| unavailable(format!("runtime: {e}")))?;
        let tls = match (&site.ca_file, site.tls) {
            (Some(ca), _) => {
                config.ssl_mode(SslMode::Require);
                let client = site.client_cert.as_deref().zip(site.client_key.as_deref());
                Some(tls_connector(ca, client, trust)?)
            }
            (None, Some(TlsSetting::Off)) => {
                config.ssl_mode(SslMode::Disable);
                None
            }
            (None, _) if all_sockets(&config) => {
                config.ssl_mode(SslMode::Disable);
                None
            }
            (None, _) => {
                return Err(StoreError::Config(format!(
                    "{}: a database reached over TCP (on this machine too: anyone could listen on a free port) needs [postgres] ca_file (TLS), or tls = \"off\" written out",
                    redact(url)
                )));
            }
        };
        // One host at a time, each with the whole timeout (TCP, TLS,
        // authentication, the read-write check): within one connect call a
        // first host that accepts and then says nothing would use up the
        // time, and the next one would never be tried.
        let hosts = config.get_hosts().len();
        let mut failures = Vec::new();
        for i in 0..hosts.max(1) {
            let one = if hosts > 1 {
                one_host(&config, i)
            } else {
                config.clone()
            };
            let attempt = match &tls {
                Some(tls) => start_connection(&rt, timeout, url, one.connect(tls.clone())),
                None => start_connection(&rt, timeout, url, one.connect(NoTls)),
            };
            match attempt {
                Ok((client, conn)) => {
                    return Ok(PgStore {
                        client: RefCell::new(Some(client)),
                        key,
                        url: url.to_string(),
                        rt,
                        conn: Some(conn),
                        timeout,
                        broken: Cell::new(false),
                    });
                }
                Err(StoreError::Unavailable(why)) => failures.push(why),
                Err(e) => return Err(e),
            }
        }
        Err(unavailable(failures.join("; ")))
    }

    /// The client (there until the store is dropped).
    fn client(&self) -> Result<std::cell::RefMut<'_, Client>, StoreError> {
        std::cell::RefMut::filter_map(self.client.borrow_mut(), Option::as_mut)
            .map_err(|_| unavailable("connection closed"))
    }

    /// Runs `fut` (one exchange with the server) within the timeout.
    fn wait<T>(
        &self,
        what: &'static str,
        fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, StoreError> {
        self.wait_by(Instant::now() + self.timeout, what, fut)
    }

    /// Runs `fut` until `deadline` at the latest (every step of one
    /// transaction shares one deadline).
    fn wait_by<T>(
        &self,
        deadline: Instant,
        what: &'static str,
        fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, StoreError> {
        if self.broken.get() {
            return Err(unavailable(format!(
                "{what}: the connection failed earlier in this call"
            )));
        }
        let result = self
            .rt
            .block_on(async { tokio::time::timeout_at(deadline, fut).await });
        let err = match result {
            Ok(Ok(v)) => return Ok(v),
            // The server's own refusal leaves the conversation in step, and
            // a COMMIT it refuses was rolled back; but a FATAL one, or a
            // lost connection or a shutdown (SQLSTATE classes 08, 57: what
            // PgBouncer says when its own server connection died) leaves
            // the COMMIT's fate unknown, and the connection done.
            Ok(Err(e)) if e.as_db_error().is_some_and(|d| !ends_the_connection(d)) => {
                return Err(db_err(what)(e));
            }
            Ok(Err(e)) => db_err(what)(e),
            Err(_) => no_answer(what, self.timeout),
        };
        // Closed, I/O, no answer: where the conversation stands is unknown.
        self.broken.set(true);
        match err {
            // The COMMIT may have reached the server: say so, never "not saved".
            StoreError::Unavailable(why) if what == "commit" => Err(StoreError::CommitUnknown(why)),
            e => Err(e),
        }
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        let row = self.wait(
            "schema",
            self.client()?
                .query_typed_opt("SELECT version FROM otpgate_schema", &[]),
        )?;
        match row.map(|r| r.get::<_, i32>(0)) {
            Some(SCHEMA_VERSION) => Ok(()),
            Some(v) => Err(StoreError::Config(format!(
                "database schema version {v}, this otpgate reads {SCHEMA_VERSION}"
            ))),
            None => Err(StoreError::Config(
                "database schema not initialised (run: otpgate db init)".into(),
            )),
        }
    }

    /// Where the store is, for messages (no password).
    pub fn describe(&self) -> String {
        redact(&self.url)
    }

    /// Where a user's row is, for messages.
    pub fn record_path(&self, user: &str) -> PathBuf {
        self.row_path(user)
    }

    /// Where a row is, for messages.
    fn row_path(&self, user: &str) -> PathBuf {
        PathBuf::from(format!("{}#{user}", self.describe()))
    }

    /// A row's record (opened and parsed) and its login state.
    fn decode_parts(
        &self,
        user: &str,
        sealed: &[u8],
        state: Option<&[u8]>,
    ) -> Result<(Record, Option<LoginState>), StoreError> {
        let plain = self
            .key
            .open(user, sealed)
            .map_err(|why| StoreError::Unsafe {
                path: self.row_path(user),
                why,
            })?;
        let record = Record::parse(&plain).map_err(|err| StoreError::Corrupt {
            path: self.row_path(user),
            err,
        })?;
        // NULL: no login since the record was written. Anything else must
        // be one valid slot; a broken one is refused, never read as "none".
        let state = match state {
            Some(b) => Some(state::one_slot(b).map_err(|err| StoreError::State {
                path: self.row_path(user),
                err,
            })?),
            None => None,
        };
        Ok((record, state))
    }

    fn decode(
        &self,
        user: &str,
        sealed: &[u8],
        state: Option<&[u8]>,
    ) -> Result<Record, StoreError> {
        let (record, state) = self.decode_parts(user, sealed, state)?;
        Ok(state::applied(&record, state.as_ref()))
    }

    pub fn load(&self, user: &str) -> Result<Option<Record>, StoreError> {
        validate_user(user)?;
        let row = self.wait(
            "read",
            self.client()?.query_typed_opt(
                "SELECT record, state FROM otpgate_users WHERE name = $1",
                &[(&user, Type::TEXT)],
            ),
        )?;
        row.map(|r| {
            let sealed: Vec<u8> = r.get(0);
            let state: Option<Vec<u8>> = r.get(1);
            self.decode(user, &sealed, state.as_deref())
        })
        .transpose()
    }

    pub fn is_enrolled(&self, user: &str) -> Result<bool, StoreError> {
        validate_user(user)?;
        let row = self.wait(
            "read",
            self.client()?.query_typed_opt(
                "SELECT 1 FROM otpgate_users WHERE name = $1",
                &[(&user, Type::TEXT)],
            ),
        )?;
        Ok(row.is_some())
    }

    /// One transaction: the row read and locked, `decide`, the change
    /// written, committed; only then the result.
    pub fn update<R, E>(
        &self,
        user: &str,
        decide: impl FnOnce(Option<&Record>) -> Result<(Change, R), E>,
    ) -> Result<Result<R, E>, StoreError> {
        validate_user(user)?;
        let deadline = Instant::now() + self.timeout;
        let mut client = self.client()?;
        let tx = self.wait_by(deadline, "begin", client.transaction())?;
        let (stored, state) = match self.locked_row(&tx, deadline, user)? {
            Some((sealed, state)) => {
                let (record, st) = self.decode_parts(user, &sealed, state.as_deref())?;
                (Some(record), st)
            }
            None => (None, None),
        };
        let current = stored.as_ref().map(|r| state::applied(r, state.as_ref()));
        let (change, result) = match decide(current.as_ref()) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        let next_state = match (&change, &stored) {
            (Change::Put(next), Some(stored)) => state::next_state(stored, state.as_ref(), next),
            _ => None,
        };
        match (&change, next_state) {
            (Change::Keep, _) => {}
            // What only a login changes is the row's state slot.
            (Change::Put(_), Some(next_state)) => {
                let slot = next_state.encode();
                self.wait_by(
                    deadline,
                    "write state",
                    tx.execute_typed(
                        "UPDATE otpgate_users SET state = $2, updated = now() WHERE name = $1",
                        &[(&user, Type::TEXT), (&&slot[..], Type::BYTEA)],
                    ),
                )?;
            }
            (Change::Put(next), _) => {
                let mut next = next.clone();
                next.state_id = super::new_state_id(next.state_id);
                let sealed = self.seal_record(user, &next)?;
                self.wait_by(
                    deadline,
                    "write record",
                    tx.execute_typed(
                        "INSERT INTO otpgate_users (name, record, state) VALUES ($1, $2, NULL) \
                         ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record, state = NULL, updated = now()",
                        &[(&user, Type::TEXT), (&sealed, Type::BYTEA)],
                    ),
                )?;
            }
            (Change::Remove, _) => {
                self.wait_by(
                    deadline,
                    "remove",
                    tx.execute_typed(
                        "DELETE FROM otpgate_users WHERE name = $1",
                        &[(&user, Type::TEXT)],
                    ),
                )?;
            }
        }
        self.wait_by(deadline, "commit", tx.commit())?;
        Ok(Ok(result))
    }

    /// `user`'s row, locked until `tx` ends (`FOR UPDATE`), `None` when
    /// there is no row.
    fn locked_row(
        &self,
        tx: &Transaction<'_>,
        deadline: Instant,
        user: &str,
    ) -> Result<Option<RawRow>, StoreError> {
        let row = self.wait_by(
            deadline,
            "read",
            tx.query_typed_opt(
                "SELECT record, state FROM otpgate_users WHERE name = $1 FOR UPDATE",
                &[(&user, Type::TEXT)],
            ),
        )?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    fn seal_record(&self, user: &str, record: &Record) -> Result<Vec<u8>, StoreError> {
        let text = record.to_toml().map_err(|err| StoreError::Corrupt {
            path: self.row_path(user),
            err,
        })?;
        self.key.seal(user, text.as_bytes())
    }

    /// Replaces or removes a broken row (one whose record does not open or
    /// parse, or whose state does not read), as `Store::replace_broken`
    /// does a file: only if the row, locked, is still broken, and only once
    /// `before` has succeeded; `Ok(Ok(false))`, nothing changed, when it
    /// reads now or is gone.
    pub fn replace_broken<E>(
        &self,
        user: &str,
        change: Change,
        before: impl FnOnce() -> Result<(), E>,
    ) -> Result<Result<bool, E>, StoreError> {
        validate_user(user)?;
        // A transaction, not one auto-committed statement: a lost answer is
        // then a lost COMMIT answer, reported as such (the change may be in
        // force), never as a statement that failed.
        let deadline = Instant::now() + self.timeout;
        let mut client = self.client()?;
        let tx = self.wait_by(deadline, "begin", client.transaction())?;
        let Some((sealed, state)) = self.locked_row(&tx, deadline, user)? else {
            return Ok(Ok(false));
        };
        match self.decode(user, &sealed, state.as_deref()) {
            Err(e) if e.breaks_enrollment(&self.row_path(user)) => {}
            Err(e) => return Err(e),
            Ok(_) => return Ok(Ok(false)),
        }
        if let Err(e) = before() {
            return Ok(Err(e));
        }
        match change {
            Change::Keep => {}
            Change::Put(mut record) => {
                record.state_id = super::new_state_id(record.state_id);
                let sealed = self.seal_record(user, &record)?;
                self.wait_by(
                    deadline,
                    "write record",
                    tx.execute_typed(
                        "INSERT INTO otpgate_users (name, record, state) VALUES ($1, $2, NULL) \
                         ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record, state = NULL, updated = now()",
                        &[(&user, Type::TEXT), (&sealed, Type::BYTEA)],
                    ),
                )?;
            }
            Change::Remove => {
                self.wait_by(
                    deadline,
                    "remove",
                    tx.execute_typed(
                        "DELETE FROM otpgate_users WHERE name = $1",
                        &[(&user, Type::TEXT)],
                    ),
                )?;
            }
        }
        self.wait_by(deadline, "commit", tx.commit())?;
        Ok(Ok(true))
    }

    pub fn users(&self) -> Result<Vec<String>, StoreError> {
        let rows = self.wait(
            "list",
            self.client()?
                .query_typed("SELECT name FROM otpgate_users ORDER BY name", &[]),
        )?;
        Ok(rows
            .iter()
            .map(|r| r.get::<_, String>(0))
            .filter(|n| validate_user(n).is_ok())
            .collect())
    }

    /// A refused attempt's write, on the decoy row, so refusing someone
    /// not enrolled costs what refusing an enrolled user does.
    pub fn decoy_write(&self, record: &Record) -> Result<(), StoreError> {
        let deadline = Instant::now() + self.timeout;
        let mut client = self.client()?;
        let tx = self.wait_by(deadline, "begin", client.transaction())?;
        self.wait_by(
            deadline,
            "read",
            tx.query_typed_opt(
                "SELECT state FROM otpgate_users WHERE name = $1 FOR UPDATE",
                &[(&DECOY_ROW, Type::TEXT)],
            ),
        )?;
        let mut st = LoginState::of_record(record);
        st.seq = 1;
        let slot = st.encode();
        self.wait_by(
            deadline,
            "write state",
            tx.execute_typed(
                "UPDATE otpgate_users SET state = $2, updated = now() WHERE name = $1",
                &[(&DECOY_ROW, Type::TEXT), (&&slot[..], Type::BYTEA)],
            ),
        )?;
        self.wait_by(deadline, "commit", tx.commit())
    }

    /// `otpgate db init`: the schema and the decoy row (idempotent).
    pub fn init_schema(&self) -> Result<(), StoreError> {
        let mut client = self.client()?;
        let tx = self.wait("begin", client.transaction())?;
        self.wait("create schema", tx.batch_execute(SCHEMA_SQL))?;
        let have: Option<i32> = self
            .wait(
                "schema",
                tx.query_typed_opt("SELECT version FROM otpgate_schema", &[]),
            )?
            .map(|r| r.get(0));
        match have {
            None => {
                self.wait(
                    "schema",
                    tx.execute_typed(
                        "INSERT INTO otpgate_schema (version) VALUES ($1)",
                        &[(&SCHEMA_VERSION, Type::INT4)],
                    ),
                )?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(v) => {
                return Err(StoreError::Config(format!(
                    "database schema version {v}, this otpgate knows {SCHEMA_VERSION}: not changed"
                )));
            }
        }
        self.wait("commit", tx.commit())?;
        drop(client);
        let decoy = Record::new(
            &[0x5a; 20],
            crate::core::otp::OtpParams::default(),
            crate::core::RecoveryHashes::default(),
            0,
        );
        let sealed = self.seal_record(DECOY_ROW, &decoy)?;
        self.wait(
            "decoy row",
            self.client()?.execute_typed(
                "INSERT INTO otpgate_users (name, record) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[(&DECOY_ROW, Type::TEXT), (&sealed, Type::BYTEA)],
            ),
        )?;
        Ok(())
    }
}

/// Connects for `otpgate db init`, before any schema exists.
/// `init_schema` then looks at the schema itself (none, no version row, the
/// version it knows, another one: refused, never changed).
pub fn connect_for_init(
    url: &str,
    site: &PostgresConfig,
    trust: super::Trust,
) -> Result<PgStore, StoreError> {
    PgStore::connect_unchecked(url, site, trust)
}

/// A connection error in words (the cause chain, without the query).
fn pg_words(e: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// The subject and the end of validity (Unix time) of every certificate in
/// a PEM file: `doctor` warns before a host's client certificate runs out,
/// which refuses every login of the host.
pub fn certificate_expiries(pem: &[u8]) -> Result<Vec<(String, u64)>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use x509_cert::der::Decode;
    let mut out = Vec::new();
    for der in CertificateDer::pem_slice_iter(pem) {
        let der = der.map_err(|e| e.to_string())?;
        let cert = x509_cert::Certificate::from_der(der.as_ref()).map_err(|e| e.to_string())?;
        let tbs = &cert.tbs_certificate;
        out.push((
            tbs.subject.to_string(),
            tbs.validity.not_after.to_unix_duration().as_secs(),
        ));
    }
    Ok(out)
}

/// A Unix socket is trusted like the database itself (no TLS there), so no
/// one else may be able to put a socket of their own in its place: with
/// `nullok`, a fake server answering "not enrolled" would skip the code.
/// The socket's directory must not be writable by others (group-write is
/// fine: Debian's /run/postgresql is 2775 postgres:postgres); every
/// directory above it owned by root or by the socket directory's owner and
/// not writable by group or others (a root-owned sticky one such as /tmp is
/// fine); and the socket, when there, a socket owned by root or by the
/// directory's owner.
fn check_socket_dirs(config: &tokio_postgres::Config) -> Result<(), StoreError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use tokio_postgres::config::Host;
    let refuse = |p: &Path, why: String| StoreError::Unsafe {
        path: p.to_path_buf(),
        why,
    };
    let ports = config.get_ports();
    for (i, host) in config.get_hosts().iter().enumerate() {
        let Host::Unix(dir) = host else {
            continue;
        };
        let real = std::fs::canonicalize(dir)
            .map_err(|e| refuse(dir, format!("socket directory: {e}")))?;
        let m = std::fs::metadata(&real)
            .map_err(|e| refuse(&real, format!("socket directory: {e}")))?;
        if m.mode() & 0o002 != 0 {
            return Err(refuse(
                &real,
                format!(
                    "socket directory writable by anyone (mode {:04o}): anyone could answer as the database",
                    m.mode() & 0o7777
                ),
            ));
        }
        for parent in real.ancestors().skip(1) {
            let pm = std::fs::metadata(parent)
                .map_err(|e| refuse(parent, format!("above the socket directory: {e}")))?;
            let owner_ok = pm.uid() == 0 || pm.uid() == m.uid();
            let sticky_root = pm.uid() == 0 && pm.mode() & 0o1000 != 0;
            if !owner_ok || (pm.mode() & 0o022 != 0 && !sticky_root) {
                return Err(refuse(
                    parent,
                    format!(
                        "above the socket directory, owned by uid {} with mode {:04o}: whoever can write it can put another socket directory in place",
                        pm.uid(),
                        pm.mode() & 0o7777
                    ),
                ));
            }
        }
        let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        let socket = real.join(format!(".s.PGSQL.{port}"));
        if let Ok(sm) = std::fs::symlink_metadata(&socket) {
            if !sm.file_type().is_socket() {
                return Err(refuse(&socket, "is not a socket".to_string()));
            }
            if sm.uid() != 0 && sm.uid() != m.uid() {
                return Err(refuse(
                    &socket,
                    format!(
                        "owned by uid {}, not by root or the directory's owner (uid {})",
                        sm.uid(),
                        m.uid()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// An error after which the server (or pooler) is gone: FATAL or PANIC,
/// or a connection exception (class 08) or operator intervention (57).
fn ends_the_connection(e: &tokio_postgres::error::DbError) -> bool {
    matches!(e.severity(), "FATAL" | "PANIC")
        || e.code().code().starts_with("08")
        || e.code().code().starts_with("57")
}

/// TLS that trusts only the site's CA and checks the server's name.
fn tls_connector(
    ca: &Path,
    client: Option<(&Path, &Path)>,
    trust: super::Trust,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let pem = super::read_trusted_public_file(ca, 1024 * 1024, trust)?
        .ok_or_else(|| StoreError::Config(format!("{}: CA file missing", ca.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| StoreError::Config(format!("{}: {e}", ca.display())))?;
        roots
            .add(cert)
            .map_err(|e| StoreError::Config(format!("{}: {e}", ca.display())))?;
    }
    if roots.is_empty() {
        return Err(StoreError::Config(format!(
            "{}: no certificate in the CA file",
            ca.display()
        )));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert_file, key_file)) => {
            let pem = super::read_trusted_public_file(cert_file, 1024 * 1024, trust)?.ok_or_else(
                || {
                    StoreError::Config(format!(
                        "{}: client certificate missing",
                        cert_file.display()
                    ))
                },
            )?;
            let chain = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::Config(format!("{}: {e}", cert_file.display())))?;
            if chain.is_empty() {
                return Err(StoreError::Config(format!(
                    "{}: no certificate in the file",
                    cert_file.display()
                )));
            }
            let pem = super::read_private_file(key_file, 64 * 1024, trust)?.ok_or_else(|| {
                StoreError::Config(format!("{}: client key missing", key_file.display()))
            })?;
            // The parser's own message could quote the file: name the file only.
            let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
                StoreError::Config(format!(
                    "{}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in the file",
                    key_file.display()
                ))
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                StoreError::Config(format!(
                    "{} and {}: {e}",
                    cert_file.display(),
                    key_file.display()
                ))
            })?
        }
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key file of any length but 32 bytes is refused: as such up to one
    /// byte past the size (read to tell), as too large beyond.
    #[test]
    fn a_key_file_must_hold_exactly_32_bytes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.key");
        for len in [0, 31, 33] {
            std::fs::write(&path, vec![7u8; len]).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let e = SealKey::load(&path, super::super::Trust::RootOrEuid)
                .err()
                .unwrap_or_else(|| panic!("a {len}-byte key was taken"))
                .to_string();
            assert!(e.contains("exactly 32 bytes"), "{len}: {e}");
        }
        std::fs::write(&path, [7u8; 64]).unwrap();
        let e = SealKey::load(&path, super::super::Trust::RootOrEuid).err();
        assert!(e.is_some_and(|e| e.to_string().contains("larger than")));
        std::fs::write(&path, [7u8; 32]).unwrap();
        assert!(SealKey::load(&path, super::super::Trust::RootOrEuid).is_ok());
    }

    #[test]
    fn a_sealed_record_opens_only_for_its_user_and_key() {
        let key = SealKey::generate().unwrap();
        let sealed = key.seal("alice", b"secret = \"JBSWY3DP\"").unwrap();
        assert_eq!(
            &key.open("alice", &sealed).unwrap()[..],
            b"secret = \"JBSWY3DP\""
        );
        assert!(key.open("bob", &sealed).is_err(), "rows cannot be swapped");
        let other = SealKey::generate().unwrap();
        assert!(other.open("alice", &sealed).is_err());
        let mut changed = sealed.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        assert!(key.open("alice", &changed).is_err());
        assert!(!sealed.windows(8).any(|w| w == b"JBSWY3DP"));
        // Nonce and tag are the least a row holds: an empty record opens,
        // one byte less is too short.
        let empty = key.seal("alice", b"").unwrap();
        assert_eq!(empty.len(), NONCE_BYTES + TAG_BYTES);
        assert!(key.open("alice", &empty).unwrap().is_empty());
        let e = key.open("alice", &empty[..empty.len() - 1]).unwrap_err();
        assert!(e.contains("too short"), "{e}");
    }

    #[test]
    fn urls_are_shown_without_passwords() {
        assert_eq!(
            redact("postgresql://otpgate:hunter2@db1.example:5432/otpgate"),
            "postgresql://otpgate@db1.example:5432/otpgate"
        );
        // Rebuilt, without parameters, even with nothing secret in them.
        assert_eq!(
            redact("postgres:///otpgate?host=/run/postgresql"),
            "postgres://@%2Frun%2Fpostgresql/otpgate"
        );
        assert_eq!(
            redact("postgresql://otpgate@db1/otpgate?sslmode=require&options=-c%20x%3Dy"),
            "postgresql://otpgate@db1:5432/otpgate"
        );
        assert_eq!(
            redact("postgresql://otpgate@db1,db2:5433/otpgate?password=hunter2&sslmode=require"),
            "postgresql://otpgate@db1:5432,db2:5433/otpgate"
        );
        assert_eq!(
            redact("postgresql://u@[::1]:5433/otpgate"),
            "postgresql://u@[::1]:5433/otpgate"
        );
        // However the password is written: before the first '@' (which may
        // follow a '?'), as an encoded parameter name, with an '@' of its
        // own (in the user part or in `?password=`, where the parser takes
        // it for the user), or in a URL that does not parse.
        for url in [
            "postgresql://u:hunt?er2@db1/otpgate",
            "postgresql://db1/otpgate?pass%77ord=hunter2",
            "postgresql://db1/otpgate?PASSWORD=hunter2",
            "postgresql://u:hunter2@db1/otpgate?password=hunter2",
            "postgresql://u:hun@ter2@db1/otpgate",
            "postgresql://u:hunt@er2/x@db1/otpgate",
            "postgresql://u:hunt@/er2@db1/otpgate",
            "postgresql://db1/otpgate?password=hunt@er2",
            "postgresql:///otpgate?user=u&password=hunt@er2",
            "postgresql://u:hunter2@db1/otpgate?nonsense=1",
            "postgresql://u:hunter2@[::1/otpgate",
            "me@postgresql://u:hunter2@db1/x",
        ] {
            let shown = redact(url);
            assert!(
                !shown.contains("hunt") && !shown.contains("er2"),
                "{url} -> {shown}"
            );
        }
        // A host that is not a plain name (here "db!1", which the parser
        // takes) is not shown either.
        assert!(redact("postgresql://u@db!1/otpgate").starts_with("(a database URL, not shown"));
        assert_eq!(
            redact("postgresql://u@db-1/otpgate"),
            "postgresql://u@db-1:5432/otpgate"
        );
        // One port given for several hosts is each host's.
        assert_eq!(
            redact("postgresql://u:p@/otpgate?host=db1&host=db2&port=5433"),
            "postgresql://u@db1:5433,db2:5433/otpgate"
        );
        assert_eq!(
            redact("postgresql://u:p@%2Frun%2Fpostgresql/otpgate"),
            "postgresql://u@%2Frun%2Fpostgresql:5432/otpgate"
        );
    }

    #[test]
    fn each_host_of_a_url_is_tried_on_its_own_with_everything_else_kept() {
        let c: tokio_postgres::Config =
            "postgresql://u:pw@db1:5433,db2:5432/otp?connect_timeout=3&application_name=x"
                .parse()
                .unwrap();
        let second = one_host(&c, 1);
        assert_eq!(second.get_hosts().len(), 1);
        assert!(
            matches!(&second.get_hosts()[0], tokio_postgres::config::Host::Tcp(h) if h == "db2")
        );
        assert_eq!(second.get_ports(), &[5432]);
        let first = one_host(&c, 0);
        assert_eq!(first.get_ports(), &[5433]);
        assert_eq!(first.get_user(), Some("u"));
        assert_eq!(first.get_password(), Some(&b"pw"[..]));
        assert_eq!(first.get_dbname(), Some("otp"));
        assert_eq!(first.get_application_name(), Some("x"));
        assert_eq!(first.get_connect_timeout(), Some(&Duration::from_secs(3)));
    }

    #[test]
    fn a_socket_someone_else_could_plant_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::net::UnixListener;
        if !nix::unistd::geteuid().is_root() {
            eprintln!(
                "SKIPPED (needs root to chown): a_socket_someone_else_could_plant_is_refused"
            );
            return;
        }
        let top = tempfile::tempdir().unwrap();
        let mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        mode(top.path(), 0o755);
        let dir = top.path().join("run");
        std::fs::create_dir(&dir).unwrap();
        let config = |d: &Path| -> tokio_postgres::Config {
            let mut c = tokio_postgres::Config::new();
            c.host_path(d).port(6432);
            c
        };
        let socket = dir.join(".s.PGSQL.6432");
        let _listener = UnixListener::bind(&socket).unwrap();
        // Debian's layout: the pooler's own directory, group-writable.
        let nobody = nix::unistd::Uid::from_raw(65534);
        nix::unistd::chown(&dir, Some(nobody), None).unwrap();
        nix::unistd::chown(&socket, Some(nobody), None).unwrap();
        mode(&dir, 0o2775);
        assert!(check_socket_dirs(&config(&dir)).is_ok());
        // A directory anyone can write to, sticky or not.
        for m in [0o777, 0o1777] {
            mode(&dir, m);
            let e = check_socket_dirs(&config(&dir)).unwrap_err().to_string();
            assert!(e.contains("writable by anyone"), "{e}");
        }
        mode(&dir, 0o755);
        // A socket of someone else's in it (planted before the directory
        // was closed).
        nix::unistd::chown(&socket, Some(nix::unistd::Uid::from_raw(65533)), None).unwrap();
        let e = check_socket_dirs(&config(&dir)).unwrap_err().to_string();
        assert!(e.contains("not by root or the directory's owner"), "{e}");
        nix::unistd::chown(&socket, Some(nobody), None).unwrap();
        assert!(check_socket_dirs(&config(&dir)).is_ok());
        // A directory above it that others can write to.
        mode(top.path(), 0o777);
        let e = check_socket_dirs(&config(&dir)).unwrap_err().to_string();
        assert!(e.contains("above the socket directory"), "{e}");
        mode(top.path(), 0o755);
        // Owned by a third user.
        nix::unistd::chown(top.path(), Some(nix::unistd::Uid::from_raw(65533)), None).unwrap();
        assert!(check_socket_dirs(&config(&dir)).is_err());
        nix::unistd::chown(top.path(), Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
        // TCP hosts are not looked at.
        let tcp: tokio_postgres::Config = "postgresql://u@localhost/db".parse().unwrap();
        assert!(check_socket_dirs(&tcp).is_ok());
    }

    #[test]
    fn only_a_unix_socket_may_go_without_tls() {
        let socket: tokio_postgres::Config =
            "postgresql://u@%2Frun%2Fpostgresql/db".parse().unwrap();
        assert!(all_sockets(&socket));
        for url in [
            // The loopback: anyone on the machine can listen on a free port.
            "postgresql://u@127.0.0.1/db",
            "postgresql://u@localhost/db",
            "postgresql://u@db1.example,127.0.0.1/db",
            "postgresql://u@%2Frun%2Fpostgresql,localhost/db",
            // hostaddr is where the connection goes, whatever the host says.
            "postgresql://u@localhost/db?hostaddr=10.0.0.5",
            "postgresql://u@%2Frun%2Fpostgresql/db?hostaddr=10.0.0.5",
            "postgresql://u@%2Frun%2Fpostgresql/db?hostaddr=127.0.0.1",
        ] {
            let c: tokio_postgres::Config = url.parse().unwrap();
            assert!(!all_sockets(&c), "{url}");
        }
    }
}
