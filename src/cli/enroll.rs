//! `otpgate enroll`: secret -> what to type or scan (secret, URI, then the
//! QR code right above the prompt, so both fit one 80x24 screen) -> first
//! code -> recovery codes shown -> saved in one transaction -> what next.
//!
//! Nothing is saved that was not shown: the output is written and flushed
//! inside the transaction, before the record is committed.

use clap::Args;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

use super::qr::{self, QrStyle};
use super::self_service::{Proof, prove_current_factor, sudo_user};
use super::text::{group, percent_encode};
use super::{
    CliError, CliResult, Context, EXIT_OK, ask, audit, broken_part, emit, emit_before, note,
    resolve_user, same_enrollment, stdout_is_read, store_words, unix_now,
};
use crate::config::bad_issuer;
use crate::core::otp::{self, Algorithm, Generator, Kind, OtpParams};
use crate::core::record::MAX_TIME;
use crate::core::recovery::{self, KdfParams, RecoveryCodes, RecoveryHashes};
use crate::core::{Policy, Record};
use crate::store::{AnyStore, Change, StoreError};

/// Tries allowed for the first code.
const VERIFY_TRIES: usize = 3;
/// Where ready-made PAM stacks are: the package's, else scripts/install.sh's
/// (also when neither is installed: the one a source checkout installs).
const READY_STACKS: [&str; 2] = [super::doctor::EXAMPLES, "/usr/local/share/otpgate/pam.d"];

fn ready_stacks() -> &'static str {
    READY_STACKS
        .into_iter()
        .find(|d| Path::new(d).is_dir())
        .unwrap_or(READY_STACKS[1])
}

/// Hash algorithms as typed on the command line (any case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum AlgorithmArg {
    Sha1,
    Sha256,
    Sha512,
}

impl From<AlgorithmArg> for Algorithm {
    fn from(a: AlgorithmArg) -> Algorithm {
        match a {
            AlgorithmArg::Sha1 => Algorithm::Sha1,
            AlgorithmArg::Sha256 => Algorithm::Sha256,
            AlgorithmArg::Sha512 => Algorithm::Sha512,
        }
    }
}

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
    /// Hash the codes are made with (default: site config, else sha1).
    #[arg(
        long,
        value_enum,
        ignore_case = true,
        value_name = "sha1|sha256|sha512",
        hide_possible_values = true
    )]
    algorithm: Option<AlgorithmArg>,
    /// Digits per code (default: site config, else 6).
    #[arg(long, value_parser = ["6", "8"], value_name = "6|8", hide_possible_values = true)]
    digits: Option<String>,
    /// Seconds per code, 15 to 120 (default: site config, else 30).
    #[arg(long, value_name = "SECONDS", value_parser = super::period_seconds)]
    period: Option<u32>,
    /// Counter-based codes (HOTP, RFC 4226) for a hardware token or an app
    /// in counter mode, instead of time-based ones.
    #[arg(long, conflicts_with = "period")]
    hotp: bool,
    /// With --hotp: the counter the token shows its next code for (default 0).
    #[arg(long, requires = "hotp", value_name = "N", value_parser = hotp_counter)]
    counter: Option<u64>,
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
    /// Number of recovery codes, 0 to 100; 0 makes none (default: site
    /// config, else 10).
    #[arg(long, value_name = "N", value_parser = super::recovery_count)]
    recovery_codes: Option<usize>,
    /// Print one JSON object on stdout and nothing else.
    #[arg(long)]
    json: bool,
    /// PAM service directory searched for stacks that use the module, to
    /// say what comes next after saving.
    #[arg(long, hide = true, value_name = "DIR", default_value = "/etc/pam.d")]
    pam_dir: PathBuf,
}

fn host_name() -> String {
    crate::account::host_name().unwrap_or_else(|| "otpgate".to_string())
}

/// `--counter`: a counter whose successor a record can still hold.
fn hotp_counter(text: &str) -> Result<u64, String> {
    text.trim()
        .parse()
        .ok()
        .filter(|&n| n < MAX_TIME)
        .ok_or_else(|| format!("use a whole number of at most {}", MAX_TIME - 1))
}

/// The otpauth:// URI an app imports; parameters that are defaults are left
/// out. `counter`: a counter-based (HOTP) enrollment starting there.
pub fn otpauth_uri(
    issuer: &str,
    account: &str,
    secret_b32: &str,
    params: OtpParams,
    counter: Option<u64>,
) -> String {
    let kind = if counter.is_some() { "hotp" } else { "totp" };
    let mut uri = format!(
        "otpauth://{kind}/{}:{}?secret={secret_b32}&issuer={}",
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
    match counter {
        Some(c) => uri.push_str(&format!("&counter={c}")),
        None if params.period != otp::DEFAULT_PERIOD => {
            uri.push_str(&format!("&period={}", params.period));
        }
        None => {}
    }
    uri
}

/// Code parameters: the command line over the site config over the defaults.
fn code_params(ctx: &Context, args: &EnrollArgs) -> Result<OtpParams, CliError> {
    let mut params = ctx.site.otp_params();
    if let Some(a) = args.algorithm {
        params.algorithm = a.into();
    }
    if let Some(d) = &args.digits {
        params.digits = d
            .parse()
            .map_err(|_| CliError::usage("bad --digits", "use 6 or 8"))?;
    }
    if let Some(p) = args.period {
        params.period = p;
    }
    params
        .validate()
        .map_err(|e| CliError::usage("bad code parameters", e))?;
    Ok(params)
}

/// Why the final transaction saved nothing.
enum Refusal {
    /// The record is not the one this run started from.
    Changed,
    /// The self-service proof was used or locked meanwhile.
    ProofSpent,
    /// The output could not be written.
    Output(CliError),
}

pub fn run(ctx: &Context, args: EnrollArgs) -> CliResult {
    let user = if args.self_service {
        sudo_user(ctx)?
    } else {
        resolve_user(args.user.clone())?
    };
    let params = code_params(ctx, &args)?;
    let count = args
        .recovery_codes
        .or(ctx.site.recovery_codes)
        .unwrap_or(recovery::DEFAULT_COUNT);
    // A new secret or recovery codes shown to nobody would be lost; a secret
    // the admin gave (--secret) with no codes loses nothing.
    if count > 0 || args.secret.is_none() {
        stdout_is_read("nothing was saved")?;
    }
    if count > recovery::MAX_COUNT {
        return Err(CliError::usage(
            format!("{count} recovery codes are too many"),
            format!("use at most {}", recovery::MAX_COUNT),
        ));
    }
    let (issuer, from) = match (&args.issuer, &ctx.site.issuer) {
        (Some(i), _) => (i.clone(), "--issuer".to_string()),
        (None, Some(i)) => (i.clone(), format!("issuer in {}", ctx.config.display())),
        (None, None) => (host_name(), "issuer (this host's name)".to_string()),
    };
    if bad_issuer(&issuer) {
        return Err(CliError::usage(
            format!("bad {from}"),
            "use a name without colons or control characters",
        ));
    }

    let store = if args.self_service {
        ctx.open_store()?
    } else {
        ctx.create_store()?
    };
    // A record that does not parse (or has a bad mode), or a login state
    // that does not read, can be replaced by an admin with --force: never
    // edited, a new record is renamed over the old one.
    let (base, broken) = match store.load(&user) {
        Ok(b) => (b, None),
        Err(e) => match broken_part(&e, &store.record_path(&user)) {
            Some(part) if args.force && !args.self_service => {
                note(&format!(
                    "otpgate: note: replacing {user}'s broken {part} ({e})"
                ));
                (None, Some(e))
            }
            _ => return Err(e.into()),
        },
    };
    let proof = match &base {
        Some(_) if args.self_service => Some(prove_current_factor(ctx, &store, &user)?),
        Some(_) if !args.force => {
            return Err(CliError::refused(
                format!("{user} is already enrolled"),
                "use --force to replace it; the old device then stops working",
            ));
        }
        _ => None,
    };
    let secret = new_secret(args.secret.as_deref())?;
    let secret_b32 = Zeroizing::new(otp::encode_secret(&secret));
    // HOTP: the counter the token starts at (its next code is for it).
    let counter = args.hotp.then(|| args.counter.unwrap_or(0));
    let uri = Zeroizing::new(otpauth_uri(&issuer, &user, &secret_b32, params, counter));
    if !args.json {
        let shown = instructions(&user, &issuer, &secret_b32, &uri, params, counter, args.qr)?;
        emit_before(&shown, "nothing was saved")?;
    }

    // First code: proves the app has the secret, and is used up by doing so.
    let generator = Generator::new(&secret, params);
    let policy = ctx.policy();
    let replay_guard = match counter {
        None => first_code(&generator, &args, &policy)?,
        Some(start) => first_hotp_code(&generator, &args, &policy, start)?,
    };

    let codes = RecoveryCodes::generate(count).map_err(|e| CliError::usage("no randomness", e))?;
    let hashes = RecoveryHashes::create(&codes, KdfParams::DEFAULT)
        .map_err(|e| CliError::usage("hashing failed", e))?;
    let mut record = Record::new(&secret, params, hashes, unix_now());
    record.last_step = replay_guard;
    if counter.is_some() {
        record.kind = Kind::Hotp;
    }
    let shown_last = if args.json {
        let out = serde_json::json!({
            "user": user,
            "issuer": issuer,
            "secret": &*secret_b32,
            "uri": &*uri,
            "kind": record.kind.as_str(),
            "algorithm": params.algorithm.as_str(),
            "digits": params.digits,
            "period": counter.is_none().then_some(params.period),
            "counter": counter,
            "recovery_codes": codes.display().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        });
        Zeroizing::new(format!("{out}\n"))
    } else {
        recovery_codes_text(&codes)
    };

    if broken.is_some() {
        // Shown and saved under the user's lock, and only if what is there
        // is still broken: a run that repaired or replaced it meanwhile
        // keeps its enrollment.
        let mut shown = false;
        let replaced = store.replace_broken(&user, Change::Put(record), || {
            emit_before(&shown_last, "nothing was saved")?;
            shown = true;
            Ok::<(), CliError>(())
        });
        match replaced {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Err(changed_meanwhile(&user, "nothing was saved")),
            Ok(Err(e)) => return Err(e),
            Err(e) if shown => {
                return Err(not_saved("cannot replace the broken record", &user, &e));
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        save(
            &store,
            &user,
            base.as_ref(),
            proof.as_ref(),
            &policy,
            record,
            &shown_last,
        )?;
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
            "replaced={} verified={} algorithm={} digits={} period={} recovery_codes={count}{}",
            base.is_some() || broken.is_some(),
            !args.no_verify,
            params.algorithm,
            params.digits,
            params.period,
            counter.map_or_else(String::new, |c| format!(" kind=hotp counter={c}"))
                + if broken.is_some() { " broken=true" } else { "" }
        ),
    );
    if !args.json
        && let Err(e) = emit(&next_steps(&user, &services_using_module(&args.pam_dir)))
    {
        note(&format!(
            "otpgate: {user} is enrolled, but the rest of the output was lost ({})",
            e.why
        ));
    }
    Ok(EXIT_OK)
}

/// The one transaction that ends an enrollment: still the enrollment this
/// run started from, the proof (if any) still holds, the last output is out;
/// only then is the record replaced.
fn save(
    store: &AnyStore,
    user: &str,
    base: Option<&Record>,
    proof: Option<&Proof>,
    policy: &Policy,
    record: Record,
    shown_last: &str,
) -> Result<(), CliError> {
    let mut shown = false;
    let saved = store.update(user, |current| {
        if !same_enrollment(base, current) {
            return Err(Refusal::Changed);
        }
        if let (Some(p), Some(current)) = (proof, current)
            && !p.holds(current, policy)
        {
            return Err(Refusal::ProofSpent);
        }
        emit_before(shown_last, "nothing was saved").map_err(Refusal::Output)?;
        shown = true;
        Ok((Change::Put(record), ()))
    });
    match saved {
        Ok(Ok(())) => Ok(()),
        Ok(Err(Refusal::Output(e))) => Err(e),
        Ok(Err(Refusal::Changed)) if base.is_none() => Err(CliError::refused(
            format!("{user} is already enrolled"),
            "another run enrolled them meanwhile; nothing was saved",
        )),
        Ok(Err(Refusal::Changed)) => Err(changed_meanwhile(user, "nothing was saved")),
        Ok(Err(Refusal::ProofSpent)) => Err(CliError::refused(
            "the code that proved the current factor no longer works",
            "it was used or the factor was locked meanwhile; nothing was saved",
        )),
        Err(e) if shown => Err(not_saved("cannot save the enrollment", user, &e)),
        Err(e) => Err(e.into()),
    }
}

/// Another run changed the enrollment between this run's first look and its
/// locked write; `outcome` says what this run did ("nothing was saved").
pub fn changed_meanwhile(user: &str, outcome: &str) -> CliError {
    CliError::refused(
        format!("{user}'s enrollment changed while this ran"),
        format!("{outcome}; run it again"),
    )
}

/// A store error after the secret and codes were shown: saved or not,
/// in words that match what happened.
fn not_saved(what: &str, user: &str, e: &StoreError) -> CliError {
    if e.change_in_force() {
        return CliError::usage(
            "the enrollment is in force but not safely on disk",
            format!(
                "{}; the secret and recovery codes shown work; fix the disk, then check with: otpgate status {user}",
                store_words(e)
            ),
        );
    }
    if matches!(e, StoreError::StateLeft { .. }) {
        return CliError::usage(
            "the new enrollment does not work yet",
            format!(
                "{}; the secret and recovery codes shown do not work",
                store_words(e)
            ),
        );
    }
    if e.outcome_unknown() {
        return CliError::usage(
            "the enrollment may or may not have been saved",
            format!(
                "{}; the secret and recovery codes shown work only if it was: check with otpgate status {user} (its enrollment time), and enroll again if in doubt",
                store_words(e)
            ),
        );
    }
    CliError::usage(
        what,
        format!(
            "{}; nothing was saved: the secret and recovery codes shown do not work",
            store_words(e)
        ),
    )
}

/// The secret: typed (`--secret`, `-` for stdin) or 20 random bytes.
fn new_secret(typed: Option<&str>) -> Result<Zeroizing<Vec<u8>>, CliError> {
    // `--secret -` reads it from stdin, out of sight of `ps`.
    let typed = match typed {
        Some("-") => Some(
            ask("Secret (base32): ")
                .ok_or_else(|| CliError::usage("bad --secret", "nothing on stdin"))?,
        ),
        Some(s) => Some(Zeroizing::new(s.to_string())),
        None => None,
    };
    match &typed {
        Some(s) => otp::decode_secret(s).ok_or_else(|| {
            CliError::usage(
                "bad --secret",
                "give base32 of 10 to 128 bytes (16 to 205 characters)",
            )
        }),
        None => {
            let mut bytes = Zeroizing::new(vec![0u8; otp::SECRET_BYTES]);
            getrandom::fill(&mut bytes)
                .map_err(|e| CliError::usage("no randomness", e.to_string()))?;
            Ok(bytes)
        }
    }
}

/// What to type or scan, QR code last so that it stays on the screen
/// right above the prompt.
fn instructions(
    user: &str,
    issuer: &str,
    secret_b32: &str,
    uri: &str,
    params: OtpParams,
    counter: Option<u64>,
    style: QrStyle,
) -> Result<Zeroizing<String>, CliError> {
    let picture = Zeroizing::new(
        qr::render(uri, style).map_err(|e| CliError::usage("cannot draw the QR code", e))?,
    );
    let grouped = Zeroizing::new(group(secret_b32, 4));
    // Sized up front so the text is never moved, leaving a copy behind.
    let mut t = Zeroizing::new(String::with_capacity(picture.len() + 1024));
    let _ = writeln!(t, "Enrolling {user} for one-time codes ({issuer}).");
    let _ = match counter {
        None => writeln!(
            t,
            "Secret to type into the app (time-based, {}, {} digits, {} s):",
            params.algorithm, params.digits, params.period
        ),
        Some(c) => writeln!(
            t,
            "Secret to type into the app or token (counter-based, {}, {} digits, counter {c}):",
            params.algorithm, params.digits
        ),
    };
    let _ = writeln!(t, "    {}", &*grouped);
    let _ = writeln!(t, "URI: {uri}");
    if !picture.is_empty() {
        t.push_str("Or scan this QR code with an authenticator app:\n");
        t.push_str(&picture);
    }
    Ok(t)
}

/// How a first code compares with the new secret.
enum FirstCode {
    /// Right now (within one step): the step it matched.
    Matches(u64),
    /// Right for a time 2 to `drift_steps` steps away: the phone's clock.
    OtherTime,
    Wrong,
}

fn check_code(generator: &Generator, code: &str, now: u64, policy: &Policy) -> FirstCode {
    let compact: Zeroizing<String> =
        Zeroizing::new(code.chars().filter(|c| !matches!(c, ' ' | '-')).collect());
    if compact.len() != usize::from(generator.params().digits)
        || !compact.bytes().all(|b| b.is_ascii_digit())
    {
        return FirstCode::Wrong;
    }
    let current = generator.params().step_at(now);
    match generator.find_step(&compact, now, policy.drift_steps.max(1)) {
        Some(step) if step.abs_diff(current) <= 1 => FirstCode::Matches(step),
        Some(_) => FirstCode::OtherTime,
        None => FirstCode::Wrong,
    }
}

const OTHER_TIME: &str = "that code is for a different time: check the phone's clock";

/// The step of the first code (0 with `--no-verify`).
fn first_code(generator: &Generator, args: &EnrollArgs, policy: &Policy) -> Result<u64, CliError> {
    if args.no_verify {
        return Ok(0);
    }
    if let Some(code) = &args.code {
        return match check_code(generator, code, unix_now(), policy) {
            FirstCode::Matches(step) => Ok(step),
            FirstCode::OtherTime => Err(CliError::refused(
                OTHER_TIME,
                "nothing was saved; set the phone to take the time from the network",
            )),
            FirstCode::Wrong => Err(CliError::refused(
                "the code does not match",
                "nothing was saved; check the app and the clock",
            )),
        };
    }
    for attempt in 1..=VERIFY_TRIES {
        let Some(code) = ask("Enter the code the app shows now: ") else {
            return Err(CliError::refused("no code entered", "nothing was saved"));
        };
        let last = attempt == VERIFY_TRIES;
        match check_code(generator, &code, unix_now(), policy) {
            FirstCode::Matches(step) => return Ok(step),
            FirstCode::OtherTime => note(&format!(
                "T{}{}",
                &OTHER_TIME[1..],
                if last {
                    "."
                } else {
                    " (let it set the time from the network), then enter the code it shows."
                }
            )),
            FirstCode::Wrong if !last => {
                note("That code does not match; try the next one the app shows.")
            }
            FirstCode::Wrong => {}
        }
    }
    Err(CliError::refused(
        "no matching code after 3 tries",
        "nothing was saved; check that the phone's clock is set automatically",
    ))
}

/// HOTP: the replay guard to store, i.e. the next counter: after the
/// matched first code (looked for from `start` within the look-ahead), or
/// `start` itself with `--no-verify`.
fn first_hotp_code(
    generator: &Generator,
    args: &EnrollArgs,
    policy: &Policy,
    start: u64,
) -> Result<u64, CliError> {
    if args.no_verify {
        return Ok(start);
    }
    let window = policy.hotp_window.max(1);
    let check = |code: &str| {
        let compact: Zeroizing<String> =
            Zeroizing::new(code.chars().filter(|c| !matches!(c, ' ' | '-')).collect());
        let well_formed = compact.len() == usize::from(generator.params().digits)
            && compact.bytes().all(|b| b.is_ascii_digit());
        well_formed
            .then(|| generator.find_counter(&compact, start, window))
            .flatten()
            .filter(|&c| c < MAX_TIME)
            .map(|c| c + 1)
    };
    if let Some(code) = &args.code {
        return check(code).ok_or_else(|| {
            CliError::refused(
                "the code does not match",
                format!(
                    "nothing was saved; check the secret and that the token is at counter {start} (or up to {} ahead)",
                    window - 1
                ),
            )
        });
    }
    for attempt in 1..=VERIFY_TRIES {
        let Some(code) = ask("Enter the next code from the token or app: ") else {
            return Err(CliError::refused("no code entered", "nothing was saved"));
        };
        if let Some(next) = check(&code) {
            return Ok(next);
        }
        if attempt < VERIFY_TRIES {
            note("That code does not match; try the next one.");
        }
    }
    Err(CliError::refused(
        "no matching code after 3 tries",
        format!("nothing was saved; check the secret and the counter ({start})"),
    ))
}

/// The recovery codes, shown once.
pub fn recovery_codes_text(codes: &RecoveryCodes) -> Zeroizing<String> {
    let mut t = Zeroizing::new(String::with_capacity(256 + codes.len() * 32));
    if codes.is_empty() {
        t.push_str(
            "\nNo recovery codes were made: if the phone is lost, an administrator\n\
             must help (`otpgate recovery` makes new codes).\n",
        );
        return t;
    }
    t.push_str("\nRecovery codes (each works once; keep them safe, they are not shown again):\n");
    for c in codes.display() {
        let _ = writeln!(t, "    {}", &*c);
    }
    t
}

/// PAM services in `dir` with a line (not a comment) that names the module.
fn services_using_module(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<String> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            if name.starts_with('.') || name.ends_with('~') || name.contains(".dpkg-") {
                return None;
            }
            let text = std::fs::read_to_string(entry.path()).ok()?;
            text.lines()
                .any(|l| {
                    l.split('#')
                        .next()
                        .is_some_and(|l| l.contains("pam_otpgate"))
                })
                .then_some(name)
        })
        .collect();
    found.sort();
    found
}

/// After "Saved": what the admin does next, claiming codes are asked only
/// where a PAM stack uses the module.
fn next_steps(user: &str, services: &[String]) -> String {
    if services.is_empty() {
        let stacks = ready_stacks().trim_end_matches('/');
        format!(
            "\nSaved. No PAM service uses pam_otpgate yet, so logins do not ask {user} for a code.\n\
             Next: add the module to a service's PAM stack (ready stacks are in\n\
             {stacks}), run `otpgate doctor`, and keep this\n\
             session open until a login in a second session works.\n"
        )
    } else {
        format!(
            "\nSaved. The PAM stacks of {} use pam_otpgate: logins through them ask {user}\n\
             for a code from the app. Next: run `otpgate doctor` to check the stacks, and\n\
             keep this session open until a login in a second session works.\n",
            services.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_names_only_non_default_parameters() {
        let d = OtpParams::default();
        assert_eq!(
            otpauth_uri("Acme Co", "alice@example.com", "ABC", d, None),
            "otpauth://totp/Acme%20Co:alice%40example.com?secret=ABC&issuer=Acme%20Co"
        );
        let p = OtpParams {
            algorithm: Algorithm::Sha256,
            digits: 8,
            period: 60,
        };
        assert!(
            otpauth_uri("A", "b", "C", p, None).ends_with("&algorithm=SHA256&digits=8&period=60")
        );
        // HOTP: the counter, never a period.
        assert_eq!(
            otpauth_uri("A", "b", "C", p, Some(7)),
            "otpauth://hotp/A:b?secret=C&issuer=A&algorithm=SHA256&digits=8&counter=7"
        );
    }
}
