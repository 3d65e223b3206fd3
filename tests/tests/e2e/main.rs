//! End-to-end tests on the real devnet: two (then three) wasmd chains of four validators
//! each, the contracts as wasm, two Hermes instances relaying. Driven as users drive the system: the `ehrx` peer tool and
//! `wasmd` CLI transactions. `#[ignore]`d so plain `cargo test` stays fast; run with
//! `cargo test -p ehr-tests --test e2e -- --ignored --test-threads=1` (scripts/test.sh does).
//! The devnet is started if it is not up.

mod attacks;
mod channels;
mod clinical_rules;
mod faults;
mod histories;
mod linkability;
mod matching;
mod membership;
mod peer_tool;
mod security;
mod support;
mod third_chain;
mod validators;
mod wasmd_cli;
