#!/usr/bin/env bash
# Mutation testing (cargo-mutants): are the tests able to tell when the code
# is wrong? Install once with `cargo install cargo-mutants`.
#
#   scripts/mutants.sh          src/core under its unit tests alone (minutes)
#   scripts/mutants.sh store    src/store under the whole suite (root, long)
#   scripts/mutants.sh login    src/login.rs under the whole suite (root, long)
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

part=${1:-core}
case "$part" in
    core)
        # The pure core: its own unit tests must catch everything.
        run core --file 'src/core/*.rs' -- --lib ;;
    store)
        # Files, locks and checks: the whole suite, as root (CI).
        run store --file 'src/store/*.rs' -- --no-fail-fast --lib --bins --tests ;;
    login)
        run login --file src/login.rs -- --no-fail-fast --lib --bins --tests ;;
    all)
        status=0
        for p in core store login; do "$0" "$p" || status=$?; done
        exit "$status" ;;
    *)
        echo "usage: scripts/mutants.sh [core|store|login|all]" >&2
        exit 2 ;;
esac
