#!/usr/bin/env bash
# Mutation testing (cargo-mutants): are the tests able to tell when the code
# is wrong? Install once with `cargo install cargo-mutants`.
#
#   scripts/mutants.sh          src/core under its unit tests alone (minutes)
#   scripts/mutants.sh store    src/store under the whole suite (root, hours):
#                               store-files, then store-pg (each alone too)
#   scripts/mutants.sh login    src/login.rs under the whole suite (root, ~1 hour)
#   scripts/mutants.sh all      the three above, one after the other
#
# Each run writes target/mutants/<part>/mutants.out/; `missed.txt` there
# lists the mutants no test caught. Exclusions, each with its reason, live in
# .cargo/mutants.toml. Exit status: 0 when every mutant was caught (or
# unviable), non-zero otherwise (cargo-mutants' own codes).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-mutants >/dev/null || {
    echo "mutants.sh: cargo-mutants is missing; run: cargo install cargo-mutants" >&2
    exit 2
}

run() {
    local part=$1; shift
    echo "mutants.sh: $part"
    mkdir -p "target/mutants/$part"
    cargo mutants --output "target/mutants/$part" "$@"
}

# Two stages for the long parts. First the test binaries that exercise the
# code (seconds per mutant instead of the whole suite's minute and a half);
# then `--iterate` runs only what that stage missed (or timed out on) again
# under the whole suite, so a mutant is reported missed only when no test at
# all catches it.
WHOLE=(--no-fail-fast --lib --bins --tests)
staged() {
    local part=$1 files=$2; shift 2
    local f=() t
    for t in $files; do f+=(--file "$t"); done
    run "$part" "${f[@]}" -- --no-fail-fast --lib "$@" || true
    run "$part" --iterate "${f[@]}" -- "${WHOLE[@]}"
}

part=${1:-core}
status=0
case "$part" in
    core)
        # The pure core: its own unit tests must catch everything.
        run core --file 'src/core/*.rs' -- --lib ;;
    store)
        # The file store, then the PostgreSQL store.
        "$0" store-files || status=$?
        "$0" store-pg || status=$?
        exit "$status" ;;
    store-files)
        # Files, locks and checks. Root, as CI.
        staged store-files 'src/store/mod.rs src/store/any.rs src/store/checks.rs src/store/dir.rs src/store/names.rs src/store/state_file.rs' \
            --test cli --test doctor --test durability --test faults --test processes \
            --test store_contract --test policy --test pam_login --test import --test hotp ;;
    store-pg)
        # The PostgreSQL store under its own tests (a real server each test).
        # Stage one leaves out the four slowest (38 of their 88 s: the
        # stuck session, the silent server, the SIGKILLs, the 20-way race);
        # stage two runs them with everything else on what it missed.
        staged store-pg src/store/pg.rs --test postgres --test store_contract -- \
            --skip a_row_held_by_a_stuck_session --skip a_database_that_stops_answering \
            --skip logins_killed_in_the_middle_of_a_commit --skip twenty_logins_over_four_hosts ;;
    login)
        staged login src/login.rs \
            --test pam_login --test policy --test hotp --test processes --test faults \
            --test durability --test store_contract ;;
    all)
        for p in core store login; do "$0" "$p" || status=$?; done
        exit "$status" ;;
    *)
        echo "usage: scripts/mutants.sh [core|store|store-files|store-pg|login|all]" >&2
        exit 2 ;;
esac
