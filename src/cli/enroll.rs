//! `otpgate enroll`: secret -> QR code + manual entry + URI -> first code ->
//! save -> recovery codes, shown once.

use clap::Args;
use zeroize::Zeroizing;

use super::qr::{self, QrStyle};
use super::text::{group, percent_encode};
use super::{CliError, CliResult, Context, EXIT_OK, ask, audit, resolve_user, unix_now};
use crate::core::otp::{self, Algorithm, Generator, OtpParams};
use crate::core::recovery::{self, KdfParams, RecoveryCodes, RecoveryHashes};
use crate::core::{Policy, Reason, Record, decide_login};
use crate::store::{Change, Store};

/// Tries allowed for the first code.
const VERIFY_TRIES: usize = 3;

#[derive(Args, Debug)]
pub struct EnrollArgs {
    /// User to enroll (default: $SUDO_USER, else you).
    user: Option<String>,
    /// Self-service through sudo: enroll $SUDO_USER only; replacing an
    /// existing enrollment first needs a current code or a recovery code.
    #[arg(long = "self", conflicts_with_all = ["user", "secret", "no_verify", "force", "code"])]
    self_service: bool,
    /// Name shown in the app (default: site config, else this host's name).
    #[arg(long)]
    issuer: Option<String>,
    #[arg(long, value_parser = ["sha1", "sha256", "sha512", "SHA1", "SHA256", "SHA512"])]
    algorithm: Option<String>,
    #[arg(long, value_parser = ["6", "8"])]
    digits: Option<String>,
    /// Seconds per code (15-120).
    #[arg(long)]
    period: Option<u32>,
    /// Use this base32 secret instead of a new random one (migration);
    /// `-` reads it from stdin so it never shows in the process list.
    #[arg(long, value_name = "BASE32")]
    secret: Option<String>,
    /// Replace an existing enrollment (the old device stops working).
    #[arg(long)]
    force: bool,
    /// Check this code instead of asking for one.
    #[arg(long, conflicts_with = "no_verify")]
    code: Option<String>,
    /// Save without checking a first code (admin pre-provisioning).
    #[arg(long)]
    no_verify: bool,
    /// How to draw the QR code.
    #[arg(long, value_enum, default_value = "ansi")]
    qr: QrStyle,
    /// Number of recovery codes.
    #[arg(long, value_name = "N")]
    recovery_codes: Option<usize>,
    /// Print one JSON object on stdout and nothing else.
    #[arg(long)]
    json: bool,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "otpgate".to_string())
}

/// The otpauth:// URI an app imports; parameters that are defaults are left out.
pub fn otpauth_uri(issuer: &str, account: &str, secret_b32: &str, params: OtpParams) -> String {
    let mut uri = format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}",
        percent_encode(issuer),
        percent_encode(account),
        percent_encode(issuer)
    );
    if params.algorithm != Algorithm::Sha1 {
        uri.push_str(&format!("&algorithm={}", params.algorithm));
    }
    if params.digits != otp::DEFAULT_DIGITS {
        uri.push_str(&format!("&digits={}", params.digits));
    }
    if params.period != otp::DEFAULT_PERIOD {
        uri.push_str(&format!("&period={}", params.period));
    }
    uri
}

pub fn run(ctx: &Context, args: EnrollArgs) -> CliResult {
    let user = if args.self_service {
        sudo_user(ctx)?
    } else {
        resolve_user(args.user.clone())?
    };
    let site = &ctx.site;
    let mut params = site.otp_params();
    if let Some(a) = &args.algorithm {
        params.algorithm = a
            .parse()
            .map_err(|e: String| CliError::usage("bad --algorithm", e))?;
    }
    if let Some(d) = &args.digits {
        params.digits = d
            .parse()
            .map_err(|_| CliError::usage("bad --digits", "6 or 8"))?;
    }
    if let Some(p) = args.period {
        params.period = p;
    }
    params
        .validate()
        .map_err(|e| CliError::usage("bad code parameters", e))?;
    let count = args
        .recovery_codes
        .or(site.recovery_codes)
        .unwrap_or(recovery::DEFAULT_COUNT);
    if count > recovery::MAX_COUNT {
        return Err(CliError::usage(
            "bad --recovery-codes",
            format!("at most {}", recovery::MAX_COUNT),
        ));
    }
    let issuer = args
        .issuer
        .clone()
        .or_else(|| site.issuer.clone())
        .unwrap_or_else(host_name);
    if issuer.contains(':') || issuer.chars().any(char::is_control) {
        return Err(CliError::usage(
            "bad --issuer",
            "no colons or control characters",
        ));
    }

    let store = if args.self_service {
        Store::open(&ctx.store_dir, ctx.trust)?
    } else {
        Store::create(&ctx.store_dir, ctx.trust)?
    };
    let mut force = args.force;
    if args.self_service && store.is_enrolled(&user)? {
        prove_current_factor(&store, &user)?;
        force = true;
    }
    if !force && store.is_enrolled(&user)? {
        return Err(CliError::refused(
            format!("{user} is already enrolled"),
            "use --force to replace it; the old device then stops working",
        ));
    }
    if nix::unistd::User::from_name(&user).ok().flatten().is_none() {
        eprintln!("otpgate: note: {user} is not in the passwd database (enrolling anyway)");
    }

    // `--secret -` reads it from stdin, out of sight of `ps`.
    let typed = match args.secret.as_deref() {
        Some("-") => Some(Zeroizing::new(
            ask("Secret (base32): ")
                .ok_or_else(|| CliError::usage("bad --secret", "nothing on stdin"))?,
        )),
        Some(s) => Some(Zeroizing::new(s.to_string())),
        None => None,
    };
    let secret: Zeroizing<Vec<u8>> = match &typed {
        Some(s) => otp::decode_secret(s).ok_or_else(|| {
            CliError::usage(
                "bad --secret",
                "base32 of 10 to 128 bytes (16 to 205 characters)",
            )
        })?,
        None => {
            let mut bytes = Zeroizing::new(vec![0u8; otp::SECRET_BYTES]);
            getrandom::fill(&mut bytes)
                .map_err(|e| CliError::usage("no randomness", e.to_string()))?;
            bytes
        }
    };
    let secret_b32 = Zeroizing::new(otp::encode_secret(&secret));
    let uri = Zeroizing::new(otpauth_uri(&issuer, &user, &secret_b32, params));

    if !args.json {
        let picture = qr::render(&uri, args.qr).map_err(|e| CliError::usage("QR code", e))?;
        println!("Enrolling {user} for one-time codes ({issuer}).");
        if !picture.is_empty() {
            println!("Scan this QR code with an authenticator app:\n");
            print!("{picture}");
            println!();
        }
        println!(
            "Or enter this secret by hand (time-based, {}, {} digits, {} s):",
            params.algorithm, params.digits, params.period
        );
        println!("    {}", group(&secret_b32, 4));
        println!("URI: {}", &*uri);
        println!();
    }

    // First code: proves the app has the secret, and is used up by doing so.
    let generator = Generator::new(&secret, params);
    let verified_step = if args.no_verify {
        0
    } else if let Some(code) = &args.code {
        let now = unix_now();
        check_code(&generator, code, now).ok_or_else(|| {
            CliError::refused(
                "the code does not match",
                "nothing was saved; check the app and the clock",
            )
        })?
    } else {
        let mut found = None;
        for attempt in 1..=VERIFY_TRIES {
            let Some(code) = ask("Enter the code the app shows now: ") else {
                return Err(CliError::refused("no code entered", "nothing was saved"));
            };
            let code = Zeroizing::new(code);
            if let Some(step) = check_code(&generator, &code, unix_now()) {
                found = Some(step);
                break;
            }
            if attempt < VERIFY_TRIES {
                eprintln!("That code does not match; try the next one the app shows.");
            }
        }
        found.ok_or_else(|| {
            CliError::refused(
                "no matching code after 3 tries",
                "nothing was saved; check that the phone's clock is set automatically",
            )
        })?
    };

    let codes = RecoveryCodes::generate(count).map_err(|e| CliError::usage("no randomness", e))?;
    let hashes = RecoveryHashes::create(&codes, KdfParams::DEFAULT)
        .map_err(|e| CliError::usage("hashing failed", e))?;
    let mut record = Record::new(&secret, params, hashes, unix_now());
    record.last_step = verified_step;
    let saved = store.update(&user, |existing| {
        if existing.is_some() && !force {
            return Err(());
        }
        Ok((Change::Put(record), ()))
    })?;
    if saved.is_err() {
        return Err(CliError::refused(
            format!("{user} is already enrolled"),
            "use --force to replace it",
        ));
    }
    audit(
        ctx,
        if args.self_service {
            "enroll-self"
        } else {
            "enroll"
        },
        &user,
        &format!(
            "replaced={force} verified={} algorithm={} digits={} period={} recovery_codes={count}",
            !args.no_verify, params.algorithm, params.digits, params.period
        ),
    );

    if args.json {
        let out = serde_json::json!({
            "user": user,
            "issuer": issuer,
            "secret": &*secret_b32,
            "uri": &*uri,
            "algorithm": params.algorithm.as_str(),
            "digits": params.digits,
            "period": params.period,
            "recovery_codes": codes.display().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        });
        println!("{out}");
    } else {
        println!("Saved. {user} now needs a code from the app to log in.");
        print_recovery_codes(&codes);
    }
    Ok(EXIT_OK)
}

/// `--self` acts only on the user sudo says ran it, never on a name given.
fn sudo_user(ctx: &Context) -> Result<String, CliError> {
    let not_sudo = || {
        CliError::usage(
            "--self works through sudo only",
            "run: sudo otpgate enroll --self",
        )
    };
    if !nix::unistd::getuid().is_root() {
        return Err(not_sudo());
    }
    let user = std::env::var("SUDO_USER")
        .ok()
        .filter(|u| !u.is_empty() && u != "root")
        .ok_or_else(not_sudo)?;
    crate::store::validate_user(&user)?;
    if ctx.store_given {
        // A store named on the command line must already be a real store
        // (root, 0700), so a loose sudoers rule cannot aim writes elsewhere.
        let meta = std::fs::symlink_metadata(&ctx.store_dir)
            .map_err(|e| CliError::usage("store refused", e.to_string()))?;
        use std::os::unix::fs::MetadataExt;
        if !meta.is_dir() || meta.uid() != 0 || meta.mode() & 0o777 != 0o700 {
            return Err(CliError::usage(
                "store refused",
                "with --self, --store must be an existing root-owned 0700 directory",
            ));
        }
    }
    Ok(user)
}

/// Replacing an enrollment by self-service needs the current factor: a code
/// from the current app or a recovery code, checked (and used up) exactly as
/// at login, failures and locks included.
fn prove_current_factor(store: &Store, user: &str) -> Result<(), CliError> {
    eprintln!("{user} is already enrolled. To replace it, prove you hold the current factor.");
    let answer = Zeroizing::new(
        ask("Code from your current app, or a recovery code: ")
            .ok_or_else(|| CliError::refused("no code entered", "nothing was changed"))?,
    );
    let now = unix_now();
    let policy = Policy::default();
    let outcome = store.update(user, |current| {
        let current = current.ok_or(None)?;
        let d = decide_login(
            current,
            answer.as_bytes(),
            &policy,
            now,
            "otpgate enroll --self",
        )
        .map_err(Some)?;
        Ok::<_, Option<crate::core::RecordError>>((
            d.new_record.map_or(Change::Keep, Change::Put),
            d.result,
        ))
    })?;
    match outcome {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(f)) if f.reason == Reason::Locked => Err(CliError::refused(
            "verification is locked",
            "too many failed attempts; ask an administrator",
        )),
        Ok(Err(_)) => Err(CliError::refused(
            "that code does not match",
            "nothing was changed",
        )),
        Err(None) => Err(CliError::refused(
            format!("{user} is not enrolled any more"),
            "run it again",
        )),
        Err(Some(e)) => Err(CliError::usage("store refused", e.to_string())),
    }
}

fn check_code(generator: &Generator, code: &str, now: u64) -> Option<u64> {
    let compact: Zeroizing<String> =
        Zeroizing::new(code.chars().filter(|c| !matches!(c, ' ' | '-')).collect());
    if compact.len() != usize::from(generator.params().digits)
        || !compact.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    generator.find_step(&compact, now, 1)
}

pub fn print_recovery_codes(codes: &RecoveryCodes) {
    println!();
    println!(
        "Recovery codes (each works once; store them somewhere safe, they are not shown again):"
    );
    for c in codes.display() {
        println!("    {}", &*c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_names_only_non_default_parameters() {
        let d = OtpParams::default();
        assert_eq!(
            otpauth_uri("Acme Co", "alice@example.com", "ABC", d),
            "otpauth://totp/Acme%20Co:alice%40example.com?secret=ABC&issuer=Acme%20Co"
        );
        let p = OtpParams {
            algorithm: Algorithm::Sha256,
            digits: 8,
            period: 60,
        };
        assert!(otpauth_uri("A", "b", "C", p).ends_with("&algorithm=SHA256&digits=8&period=60"));
    }
}
