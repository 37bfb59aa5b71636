//! The parsers and the mapping, on files in the exact shape the real tools
//! write them (copied from google-authenticator and pam_oath runs; the
//! secrets are RFC test keys).

use super::google::{GoogleFile, parse_google_authenticator};
use super::oath::{OathLine, Password, parse_oath_users};
use super::*;
use crate::core::otp::{Generator, Kind, OtpParams};

/// RFC 4226/6238's seed "12345678901234567890" in base32 and hex.
const B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const HEX: &str = "3132333435363738393031323334353637383930";
const NOW: u64 = 1_700_000_015; // step 56_666_667

fn ga(text: &str) -> GoogleFile {
    parse_google_authenticator(text.as_bytes()).unwrap()
}

fn ga_err(bytes: &[u8]) -> String {
    parse_google_authenticator(bytes).unwrap_err().to_string()
}

fn totp_at(step: u64) -> String {
    Generator::new(b"12345678901234567890", OtpParams::default())
        .code_at_step(step)
        .to_string()
}

#[test]
fn a_time_based_file_with_disallow_reuse_maps_every_line() {
    let f = ga(&format!(
        "{B32}\n\" RATE_LIMIT 3 30 1700000001\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE 56666665 56666666\n\" TOTP_AUTH\n92160603\n46745210\n"
    ));
    assert_eq!(&f.secret[..], b"12345678901234567890");
    assert_eq!(f.scratch_codes.len(), 2);
    let plan = google::plan(&f, NOW).unwrap();
    assert_eq!(plan.kind, Kind::Totp);
    assert_eq!((plan.params.digits, plan.params.period), (6, 30));
    assert_eq!(plan.replay_guard, 56_666_666, "the newest used step");
    assert_eq!(plan.scratch.len(), 2);
    let all = format!("{:?} {:?}", plan.mapped, plan.skipped);
    assert!(all.contains("RATE_LIMIT"), "{all}");
    assert!(all.contains("DISALLOW_REUSE"), "{all}");
    assert!(all.contains("WINDOW_SIZE 3"), "{all}");
    assert!(all.contains("2 scratch codes"), "{all}");
    assert!(!all.contains("92160603"), "no codes in the report: {all}");
    let r = plan
        .record(crate::core::recovery::tests::TEST_KDF, NOW)
        .unwrap();
    assert_eq!(r.recovery.numeric_digits, Some(8));
    assert_eq!(r.recovery.find("46745210").unwrap(), Some(1));
    assert_eq!(r.last_step, 56_666_666);
}

#[test]
fn without_disallow_reuse_every_code_up_to_the_import_counts_as_used() {
    let f = ga(&format!("{B32}\n\" WINDOW_SIZE 5\n\" TOTP_AUTH\n"));
    let plan = google::plan(&f, NOW).unwrap();
    // WINDOW_SIZE 5 accepts up to two steps ahead of the clock.
    assert_eq!(plan.replay_guard, NOW / 30 + 2);
    assert!(plan.scratch.is_empty());
    // The report says until when the app's codes are refused: from step
    // guard + 1 (NOW is 5 s into its step), and that there are no
    // recovery codes to fall back on.
    let said = format!("{:?}", plan.mapped);
    assert!(
        said.contains("refused until about 2023-11-14 22:15:00 UTC (85 s from now)")
            && said.contains("no recovery codes to use meanwhile"),
        "{said}"
    );
    let wide = ga(&format!(
        "{B32}\n\" WINDOW_SIZE 17\n\" TOTP_AUTH\n92160603\n"
    ));
    let said = format!("{:?}", google::plan(&wide, NOW).unwrap().mapped);
    assert!(
        said.contains("(5 min from now)") && said.contains("recovery codes work meanwhile"),
        "{said}"
    );
    // The default window: the current step counts as used, so up to a step.
    let default = ga(&format!("{B32}\n\" TOTP_AUTH\n"));
    let said = format!("{:?}", google::plan(&default, NOW).unwrap().mapped);
    assert!(said.contains("(55 s from now)"), "{said}");
    let skew = ga(&format!("{B32}\n\" TIME_SKEW 3\n\" TOTP_AUTH\n"));
    let plan = google::plan(&skew, NOW).unwrap();
    assert_eq!(plan.replay_guard, NOW / 30 + 1 + 3);
    assert!(format!("{:?}", plan.skipped).contains("TIME_SKEW 3"));
    // DISALLOW_REUSE set, no login since: nothing was used.
    let fresh = ga(&format!("{B32}\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n"));
    let plan = google::plan(&fresh, NOW).unwrap();
    assert_eq!(plan.replay_guard, 0);
    assert!(format!("{:?}", plan.mapped).contains("no code was used yet"));
}

#[test]
fn a_counter_based_file_maps_its_counter_and_an_80_bit_secret() {
    let f = ga("YN64KBSAVBG5KG7N\n\" WINDOW_SIZE 5\n\" HOTP_COUNTER 7\n79409837\n");
    assert_eq!(f.secret.len(), 10, "80-bit secrets of old files");
    let plan = google::plan(&f, NOW).unwrap();
    assert_eq!((plan.kind, plan.replay_guard), (Kind::Hotp, 7));
    assert!(format!("{:?}", plan.mapped).contains("HOTP_COUNTER 7"));
    assert!(format!("{:?}", plan.skipped).contains("WINDOW_SIZE 5"));
}

#[test]
fn step_size_becomes_the_period_within_otpgate_bounds() {
    let f = ga(&format!("{B32}\n\" STEP_SIZE 60\n\" TOTP_AUTH\n"));
    assert_eq!(google::plan(&f, NOW).unwrap().params.period, 60);
    let f = ga(&format!("{B32}\n\" STEP_SIZE 10\n\" TOTP_AUTH\n"));
    let why = google::plan(&f, NOW).unwrap_err();
    assert!(why.contains("STEP_SIZE 10"), "{why}");
}

#[test]
fn files_that_are_neither_or_both_kinds_are_skipped_with_the_reason() {
    let neither = google::plan(&ga(&format!("{B32}\n12345678\n")), NOW).unwrap_err();
    assert!(
        neither.contains("neither TOTP_AUTH nor HOTP_COUNTER"),
        "{neither}"
    );
    let both = ga(&format!("{B32}\n\" HOTP_COUNTER 1\n\" TOTP_AUTH\n"));
    assert!(google::plan(&both, NOW).unwrap_err().contains("both"));
    // A used step far ahead of the clock would lock the user out.
    let ahead = ga(&format!(
        "{B32}\n\" DISALLOW_REUSE 99999999999\n\" TOTP_AUTH\n"
    ));
    assert!(google::plan(&ahead, NOW).unwrap_err().contains("ahead"));
}

#[test]
fn broken_google_files_are_refused_with_a_reason_and_no_content() {
    assert!(ga_err(b"").contains("empty"));
    assert!(ga_err(b"GEZDGNBV\x00GY3TQOJQ\n").contains("binary"));
    assert!(ga_err(b"\xff\xfe\xfd\n").contains("binary"));
    let cut = format!("{B32}\n\" TOTP_AUTH\n921606");
    let e = ga_err(cut.as_bytes());
    assert!(e.contains("truncated"), "{e}");
    let short_scratch = format!("{B32}\n\" TOTP_AUTH\n921606\n");
    assert!(ga_err(short_scratch.as_bytes()).contains("line 3"));
    let e = ga_err(b"not-a-secret!!\n\" TOTP_AUTH\n");
    assert!(e.contains("line 1") && !e.contains("not-a-secret"), "{e}");
    let e = ga_err(format!("{B32}\n\" WINDOW_SIZE x\n").as_bytes());
    assert!(e.contains("line 2") && e.contains("WINDOW_SIZE"), "{e}");
    let e = ga_err(format!("{B32}\n\" TOTP_AUTH\n\" TOTP_AUTH\n").as_bytes());
    assert!(e.contains("twice"), "{e}");
    let e = ga_err(format!("{B32}\nhello world\n").as_bytes());
    assert!(e.contains("line 2"), "{e}");
    assert!(ga_err(&vec![b'A'; MAX_SOURCE_BYTES + 1]).contains("64 KiB"));
    // Nothing of the secret in any message.
    for e in [ga_err(cut.as_bytes()), ga_err(short_scratch.as_bytes())] {
        assert!(!e.contains(&B32[..8]), "{e}");
    }
}

#[test]
fn unknown_options_are_reported_not_fatal() {
    let f = ga(&format!(
        "{B32}\n\" RESETTING_TIME_SKEW 56666665+2\n\" TOTP_AUTH\n"
    ));
    let plan = google::plan(&f, NOW).unwrap();
    assert!(format!("{:?}", plan.skipped).contains("RESETTING_TIME_SKEW"));
}

fn oath(text: &str) -> Vec<OathLine> {
    parse_oath_users(text.as_bytes()).unwrap()
}

fn entry(line: &OathLine) -> &oath::OathEntry {
    match line {
        OathLine::Entry(e) => e,
        other => panic!("not an entry: {other:?}"),
    }
}

#[test]
fn pam_oath_lines_parse_as_pam_oath_reads_them() {
    let lines = oath(&format!(
        "# comment\n\nHOTP\tdaemon\t-\t{HEX}\t2\t359152\t2026-11-28T16:41:27L\nHOTP/T30/7 bin - {HEX}\nHOTP/T60/8 sys + {HEX} 0\nHOTP/E/8 games secretpw {HEX}\nTOTP lp - {HEX}\nHOTP/T30 mail -\n"
    ));
    assert_eq!(lines.len(), 6, "{lines:?}");
    let d = entry(&lines[0]);
    assert_eq!(
        (d.user.as_str(), d.kind, d.digits, d.counter),
        ("daemon", Kind::Hotp, 6, Some(2))
    );
    assert_eq!(d.last_otp.as_deref().map(|s| s.as_str()), Some("359152"));
    assert_eq!(d.last_time.map(|t| t.hour), Some(16));
    let b = entry(&lines[1]);
    assert_eq!((b.kind, b.digits, b.period), (Kind::Totp, 7, 30));
    let s = entry(&lines[2]);
    assert_eq!(
        (s.digits, s.period, s.password),
        (8, 60, Password::External)
    );
    // Static password: reported, never echoed.
    match &lines[3] {
        OathLine::Skipped { user, why, .. } => {
            assert_eq!(user.as_deref(), Some("games"));
            assert!(
                why.contains("static password") && !why.contains("secretpw"),
                "{why}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&lines[4], OathLine::Skipped { why, .. } if why.contains("token type")));
    assert!(matches!(&lines[5], OathLine::Skipped { why, .. } if why.contains("key")));
}

#[test]
fn pam_oath_hotp_state_maps_to_the_next_counter() {
    let lines = oath(&format!(
        "HOTP daemon - {HEX} 2 359152 2026-11-28T16:41:27L\nHOTP bin - {HEX} 5\nHOTP sys - {HEX}\n"
    ));
    let plan = |i: usize| oath::plan(entry(&lines[i]), NOW, &|_| None).unwrap();
    // pam_oath writes the counter it accepted; the next one is after it.
    assert_eq!((plan(0).kind, plan(0).replay_guard), (Kind::Hotp, 3));
    assert_eq!(plan(1).replay_guard, 5, "no code taken yet at 5");
    assert_eq!(plan(2).replay_guard, 0);
}

#[test]
fn pam_oath_totp_state_becomes_the_step_of_the_last_code() {
    // pam_oath took the code of step S at local time T.
    let step = NOW / 30;
    let text = format!(
        "HOTP/T30 bin - {HEX} 0 {} 2023-11-14T22:13:35L\n",
        totp_at(step + 1)
    );
    let lines = oath(&text);
    let e = entry(&lines[0]);
    let t = e.last_time.unwrap();
    assert_eq!(
        (t.year, t.month, t.day, t.minute, t.second),
        (2023, 11, 14, 13, 35)
    );
    // The clock this machine reads the local time with: here UTC.
    let local = |t: &oath::LocalTime| oath::utc_seconds(t);
    let plan = oath::plan(e, NOW, &local).unwrap();
    assert_eq!(
        plan.replay_guard,
        step + 1,
        "the step the last code was for"
    );
    // A last code that is no code of that time: skipped, not guessed.
    let odd = format!("HOTP/T30 bin - {HEX} 0 000000 2023-11-14T22:13:35L\n");
    let lines = oath(&odd);
    if totp_at(step) != "000000" {
        let why = oath::plan(entry(&lines[0]), NOW, &local).unwrap_err();
        assert!(why.contains("last"), "{why}");
    }
    // The local time could not be read: skipped.
    let lines = oath(&text);
    assert!(oath::plan(entry(&lines[0]), NOW, &|_| None).is_err());
}

#[test]
fn pam_oath_keys_and_files_are_checked() {
    let short = oath("HOTP daemon - 00112233\n");
    assert!(matches!(&short[0], OathLine::Skipped { why, .. } if why.contains("80 bits")));
    let odd = oath(&format!("HOTP daemon - {HEX}0\n"));
    assert!(matches!(&odd[0], OathLine::Skipped { why, .. } if why.contains("hex")));
    let bad_time = oath(&format!("HOTP daemon - {HEX} 1 123456 yesterday\n"));
    assert!(matches!(&bad_time[0], OathLine::Skipped { why, .. } if why.contains("time")));
    let e = parse_oath_users(format!("HOTP daemon - {HEX}").as_bytes()).unwrap_err();
    assert!(
        e.to_string().contains("truncated") && !e.to_string().contains(HEX),
        "{e}"
    );
    assert!(
        parse_oath_users(b"HOTP \x00 daemon\n")
            .unwrap_err()
            .to_string()
            .contains("binary")
    );
    assert!(
        parse_oath_users(b"")
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
    assert!(
        parse_oath_users(&vec![b'#'; MAX_SOURCE_BYTES + 1])
            .unwrap_err()
            .to_string()
            .contains("64 KiB")
    );
}

#[test]
fn a_seven_digit_pam_oath_token_makes_a_seven_digit_record() {
    let lines = oath(&format!("HOTP/T30/7 bin - {HEX}\n"));
    let plan = oath::plan(entry(&lines[0]), NOW, &|_| None).unwrap();
    let r = plan
        .record(crate::core::recovery::tests::TEST_KDF, NOW)
        .unwrap();
    assert_eq!((r.digits, r.kind, r.last_step), (7, Kind::Totp, 0));
    assert_eq!(r.recovery.remaining(), 0);
}

#[test]
fn the_parsers_never_panic_on_garbage() {
    // A cheap stand-in for the fuzz targets: every prefix of real files and
    // some mangled bytes.
    let ga_text = format!(
        "{B32}\n\" RATE_LIMIT 3 30 1700000001\n\" DISALLOW_REUSE 56666665\n\" TOTP_AUTH\n92160603\n"
    );
    let oath_text = format!("HOTP/T30/7\tbin\t-\t{HEX}\t0\t0255724\t2026-11-28T16:41:35L\n");
    for text in [ga_text.as_bytes(), oath_text.as_bytes()] {
        for cut in 0..text.len() {
            let _ = parse_google_authenticator(&text[..cut]);
            let _ = parse_oath_users(&text[..cut]);
            let mut flipped = text.to_vec();
            flipped[cut] ^= 0x80;
            let _ = parse_google_authenticator(&flipped);
            let _ = parse_oath_users(&flipped);
        }
    }
}
