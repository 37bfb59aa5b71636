//! A private PostgreSQL cluster for the fleet-store tests (root only):
//! Debian's own server binaries, a temp directory owned by `postgres`, a
//! free port on 127.0.0.1, TLS from a CA made here, roles for the module
//! (login) and the command line (admin). Stopped and removed on drop.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::system::free_port;

pub const ADMIN_PASSWORD: &str = "admin-pw-7Hq";
pub const LOGIN_PASSWORD: &str = "login-pw-3Zr";

pub struct PgServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    pub key_file: PathBuf,
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn as_postgres(shell: &str) -> Command {
    let mut c = Command::new("su");
    c.args(["postgres", "-s", "/bin/sh", "-c", shell]);
    c
}

fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .expect("postgresql is installed by scripts/test.sh")
        .map(|e| e.unwrap().path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().expect("no PostgreSQL server binaries")
}

/// A CA and a certificate for `localhost` only (so 127.0.0.1 is a name
/// mismatch), plus an unrelated CA; a client certificate for the role
/// `otpgate_cert` from each (the unrelated one's must be refused). ECDSA P-256: the server signs every
/// handshake, and a fresh TLS connection per login is the fleet's cost.
fn make_certs(dir: &Path) {
    let sh = format!(
        "set -e; cd {d}
ec='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1'
openssl req -x509 $ec -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=otpgate-test-ca 2>/dev/null
openssl req -x509 $ec -nodes -keyout other.key -out other-ca.crt -days 2 -subj /CN=otpgate-other-ca 2>/dev/null
openssl req $ec -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=DNS:localhost\\n' > san.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext 2>/dev/null
openssl req $ec -nodes -keyout client.key -out client.csr -subj /CN=otpgate_cert 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2 -extfile client.ext 2>/dev/null
openssl x509 -req -in client.csr -CA other-ca.crt -CAkey other.key -CAcreateserial -out rogue.crt -days 2 -extfile client.ext 2>/dev/null
chmod 600 server.key client.key",
        d = dir.display()
    );
    run(Command::new("sh").args(["-c", &sh]));
}

impl PgServer {
    pub fn start() -> PgServer {
        let dir = tempfile::Builder::new()
            .prefix("otpgate-test-pg-")
            .tempdir()
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let bin = bin_dir();
        let port = free_port();
        let certs = dir.path().join("certs");
        fs::create_dir(&certs).unwrap();
        make_certs(&certs);
        let data = dir.path().join("data");
        let pw = dir.path().join("pw");
        fs::write(&pw, "postgres-pw\n").unwrap();
        run(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path()));
        run(&mut as_postgres(&format!(
            "{}/initdb -D {} -U postgres --pwfile={} --auth-local=trust --auth-host=scram-sha-256 >/dev/null",
            bin.display(),
            data.display(),
            pw.display()
        )));
        // The role `otpgate_cert` logs in with its TLS client certificate
        // (`cert`: signed by the CA, CN = role), never a password.
        let hba = data.join("pg_hba.conf");
        let rest = fs::read_to_string(&hba).unwrap();
        fs::write(
            &hba,
            format!("hostssl otpgate otpgate_cert 127.0.0.1/32 cert\nhost all otpgate_cert 0.0.0.0/0 reject\n{rest}"),
        )
        .unwrap();
        let server = PgServer {
            dir,
            port,
            bin,
            ca: certs.join("ca.crt"),
            other_ca: certs.join("other-ca.crt"),
            key_file: PathBuf::new(),
        };
        server.pg_ctl("start");
        server.psql(&format!(
            "CREATE ROLE otpgate_admin LOGIN PASSWORD '{ADMIN_PASSWORD}';
             CREATE ROLE otpgate_login LOGIN PASSWORD '{LOGIN_PASSWORD}';
             CREATE ROLE otpgate_cert LOGIN;"
        ));
        // Not inside the transaction psql -c wraps several statements in.
        server.psql("CREATE DATABASE otpgate OWNER otpgate_admin");
        let mut server = server;
        // CA and key files for the hosts: root-owned copies.
        let ca = server.dir.path().join("ca.crt");
        fs::copy(server.ca.clone(), &ca).unwrap();
        run(Command::new("chown").args(["root:root"]).arg(&ca));
        server.ca = ca;
        let other = server.dir.path().join("other-ca.crt");
        fs::copy(server.other_ca.clone(), &other).unwrap();
        run(Command::new("chown").args(["root:root"]).arg(&other));
        server.other_ca = other;
        server.key_file = server.dir.path().join("db.key");
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn pg_ctl(&self, action: &str) {
        let certs = self.dir.path().join("certs");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={c}/server.crt -c ssl_key_file={c}/server.key -c ssl_ca_file={c}/ca.crt -c fsync=off",
            self.port,
            self.dir.path().display(),
            c = certs.display(),
        );
        run(&mut as_postgres(&format!(
            "{}/pg_ctl -D {} -l {}/log -o '{opts}' -w -m immediate {action} >/dev/null",
            self.bin.display(),
            self.data().display(),
            self.dir.path().display()
        )));
    }

    /// SQL as the superuser over the private socket.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_as("postgres", "postgres", sql).unwrap()
    }

    /// SQL as `role` in `db`; Err(stderr) when the server refused.
    pub fn psql_as(&self, role: &str, db: &str, sql: &str) -> Result<String, String> {
        let out = as_postgres(&format!(
            "{}/psql -X -q -t -A -v ON_ERROR_STOP=1 -h {} -p {} -U {role} -d {db} -c \"$SQL\"",
            self.bin.display(),
            self.dir.path().display(),
            self.port
        ))
        .env("SQL", sql)
        .output()
        .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The whole database as text, as a backup would hold it.
    pub fn dump(&self) -> String {
        let out = as_postgres(&format!(
            "{}/pg_dump -h {} -p {} -U postgres otpgate",
            self.bin.display(),
            self.dir.path().display(),
            self.port
        ))
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A site config for one "host": the store URL over TLS, a password
    /// file for `role`, the CA and the shared key. Written under `dir`.
    pub fn site_config(&self, dir: &Path, name: &str, role: &str, host: &str) -> PathBuf {
        self.site_config_at(dir, name, role, host, self.port)
    }

    /// [`PgServer::site_config`] for a server (or pooler) on `port`.
    pub fn site_config_at(
        &self,
        dir: &Path,
        name: &str,
        role: &str,
        host: &str,
        port: u16,
    ) -> PathBuf {
        let password = if role == "otpgate_admin" {
            ADMIN_PASSWORD
        } else {
            LOGIN_PASSWORD
        };
        let pw = dir.join(format!("{name}.pw"));
        fs::write(&pw, format!("{password}\n")).unwrap();
        fs::set_permissions(&pw, fs::Permissions::from_mode(0o600)).unwrap();
        self.write_site_config(
            dir,
            name,
            &format!("{role}@{host}:{port}"),
            &format!("password_file = \"{}\"\n", pw.display()),
        )
    }

    /// `dir/name.toml`: the store at `postgresql://{at}/otpgate`, verified
    /// TLS with the test CA, the shared key, `credentials` (TOML lines).
    fn write_site_config(&self, dir: &Path, name: &str, at: &str, credentials: &str) -> PathBuf {
        let conf = dir.join(format!("{name}.toml"));
        fs::write(
            &conf,
            format!(
                "store = \"postgresql://{at}/otpgate\"\n\n[postgres]\n{credentials}ca_file = \"{ca}\"\nkey_file = \"{key}\"\nconnect_timeout = 3\n",
                ca = self.ca.display(),
                key = self.key_file.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap();
        conf
    }

    /// A host's site config that logs in as `otpgate_cert` with a client
    /// certificate (`rogue`: one from the unrelated CA) and no password:
    /// root-owned copies of the certificate and key (0600) under `dir`.
    pub fn cert_site_config(&self, dir: &Path, name: &str, port: u16, rogue: bool) -> PathBuf {
        let certs = self.dir.path().join("certs");
        let cert = dir.join(format!("{name}-client.crt"));
        let key = dir.join(format!("{name}-client.key"));
        let from = if rogue { "rogue.crt" } else { "client.crt" };
        fs::copy(certs.join(from), &cert).unwrap();
        fs::copy(certs.join("client.key"), &key).unwrap();
        run(Command::new("chown")
            .args(["root:root"])
            .arg(&cert)
            .arg(&key));
        fs::set_permissions(&cert, fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        self.write_site_config(
            dir,
            name,
            &format!("otpgate_cert@localhost:{port}"),
            &format!(
                "client_cert = \"{}\"\nclient_key = \"{}\"\n",
                cert.display(),
                key.display()
            ),
        )
    }

    /// A host's site config for its own pooler ([`Clients::LocalRoot`]):
    /// the Unix socket as root, no password, no TLS (the socket is local).
    pub fn local_pooler_site_config(&self, dir: &Path, name: &str, pooler: &Pooler) -> PathBuf {
        let conf = dir.join(format!("{name}.toml"));
        fs::write(
            &conf,
            format!(
                "store = \"postgresql://root@/otpgate?host={}&port={}\"\n\n[postgres]\nkey_file = \"{}\"\nconnect_timeout = 3\n",
                pooler.socket_dir.display(),
                pooler.port,
                self.key_file.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap();
        conf
    }

    /// Grants the module's role what a login needs and nothing more.
    pub fn grant_login_role(&self) {
        self.psql_as(
            "postgres",
            "otpgate",
            "GRANT SELECT ON otpgate_schema, otpgate_users TO otpgate_login, otpgate_cert;
             GRANT UPDATE (state, updated) ON otpgate_users TO otpgate_login, otpgate_cert;",
        )
        .unwrap();
    }
}

/// PgBouncer in front of a [`PgServer`]: for [`Clients::Password`] and
/// [`Clients::Certificate`], TLS with the server's certificate on a port of
/// its own on 127.0.0.1, SCRAM-SHA-256 against the roles' verifiers copied
/// from the server (or client certificates only), the server reached over
/// its private socket; for [`Clients::LocalRoot`], a pooler on the host
/// itself (see there). Session pooling (`DISCARD ALL` before a server
/// connection serves another client) or transaction pooling. PgBouncer
/// refuses the module's startup `options` (its server-side timeouts) unless
/// told to ignore them, so the login role carries those timeouts itself, as
/// README says to do. Stopped on drop.
pub struct Pooler {
    pub port: u16,
    /// Where its Unix socket is ([`Clients::LocalRoot`]).
    pub socket_dir: PathBuf,
    child: std::process::Child,
}

/// Who a [`Pooler`] lets in, and how.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Clients {
    /// The password roles: SCRAM over TLS on 127.0.0.1.
    Password,
    /// `otpgate_cert` with its client certificate, over TLS on 127.0.0.1.
    Certificate,
    /// A pooler on each host: root of this host only, over a Unix socket
    /// (mode 0600) with peer authentication, so a login needs neither TLS
    /// nor a password; the pooler itself reaches the server over verified
    /// TLS with the login role's password, and keeps that connection.
    LocalRoot,
}

impl PgServer {
    /// Starts PgBouncer (Debian's `pgbouncer`, dropping to the postgres
    /// user itself) with a directory of its own under the server's temp
    /// dir; returns once it says it is up (listening).
    /// `certs_only`: clients log in with a certificate (`otpgate_cert`),
    /// else with SCRAM (the password roles). `pool_mode`: `session` (a
    /// server connection per client connection) or `transaction` (per
    /// transaction; the module's statements are unnamed, so this works).
    pub fn start_pooler(&self, clients: Clients, pool_mode: &str) -> Pooler {
        use std::io::BufRead;
        let kind = match clients {
            Clients::Password => "password",
            Clients::Certificate => "cert",
            Clients::LocalRoot => "local",
        };
        let dir = self.dir.path().join(format!("pooler-{kind}-{pool_mode}"));
        fs::create_dir(&dir).unwrap();
        for role in ["otpgate_login", "otpgate_cert"] {
            self.psql(&format!(
                "ALTER ROLE {role} SET statement_timeout = '3s';
                 ALTER ROLE {role} SET lock_timeout = '3s';
                 ALTER ROLE {role} SET idle_in_transaction_session_timeout = '3s';"
            ));
        }
        let verifiers = self.psql(
            "SELECT rolname || ' ' || rolpassword FROM pg_authid \
             WHERE rolname IN ('otpgate_admin', 'otpgate_login')",
        );
        // The certificate role has no password, but PgBouncer knows only
        // the users listed.
        let users: String = verifiers
            .lines()
            .map(|l| {
                let (name, secret) = l.split_once(' ').unwrap();
                format!("\"{name}\" \"{secret}\"\n")
            })
            .chain(["\"otpgate_cert\" \"\"\n".to_string()])
            .chain(["\"root\" \"\"\n".to_string()])
            .collect();
        fs::write(dir.join("users.txt"), users).unwrap();
        let port = free_port();
        let certs = self.dir.path().join("certs");
        let (d, c) = (dir.display(), certs.display());
        // PgBouncer asks for a client certificate only in verify-ca/full mode,
        // and then of every client: one pooler for each way to log in.
        let tls = |mode: &str| {
            format!(
                "listen_addr = 127.0.0.1\nunix_socket_dir =\nclient_tls_sslmode = {mode}\n\
                 client_tls_cert_file = {c}/server.crt\nclient_tls_key_file = {c}/server.key\n\
                 client_tls_ca_file = {c}/ca.crt\n"
            )
        };
        let over_socket = format!("host={} port={}", self.dir.path().display(), self.port);
        let (server, listen, auth) = match clients {
            Clients::Password => (
                over_socket,
                tls("require"),
                "auth_type = scram-sha-256".to_string(),
            ),
            Clients::Certificate => (
                over_socket,
                tls("verify-full"),
                "auth_type = cert".to_string(),
            ),
            Clients::LocalRoot => {
                fs::write(dir.join("hba.conf"), "local otpgate root peer\n").unwrap();
                (
                    format!(
                        "host=localhost port={} user=otpgate_login password={LOGIN_PASSWORD}",
                        self.port
                    ),
                    format!(
                        "listen_addr =\nunix_socket_dir = {d}\nunix_socket_mode = 0600\n\
                         server_tls_sslmode = verify-full\nserver_tls_ca_file = {c}/ca.crt\n"
                    ),
                    format!("auth_type = hba\nauth_hba_file = {d}/hba.conf"),
                )
            }
        };
        let ini = format!(
            "[databases]
otpgate = {server} dbname=otpgate
[pgbouncer]
listen_port = {port}
{listen}{auth}
auth_file = {d}/users.txt
pool_mode = {pool_mode}
server_reset_query = DISCARD ALL
ignore_startup_parameters = options
max_client_conn = 200
default_pool_size = 20
log_connections = 0
log_disconnections = 0
"
        );
        fs::write(dir.join("pgbouncer.ini"), ini).unwrap();
        run(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir));
        let mut child = Command::new("pgbouncer")
            .args(["-u", "postgres"])
            .arg(dir.join("pgbouncer.ini"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("pgbouncer is installed by scripts/test.sh");
        let mut log = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            if log.read_line(&mut line).unwrap() == 0 {
                let _ = child.wait();
                panic!("pgbouncer stopped before it was up:\n{seen}");
            }
            seen.push_str(&line);
            if line.contains("process up") {
                break;
            }
        }
        // Keep reading its log (shown with a failing test's output), so it
        // never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in log.lines().map_while(Result::ok) {
                eprintln!("pgbouncer: {line}");
            }
        });
        Pooler {
            port,
            socket_dir: dir,
            child,
        }
    }
}

impl Drop for Pooler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = as_postgres(&format!(
            "{}/pg_ctl -D {} -m immediate -w stop >/dev/null 2>&1",
            self.bin.display(),
            self.data().display()
        ))
        .status();
    }
}
