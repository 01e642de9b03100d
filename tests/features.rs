//! Plain `cargo test` must not skip the end-to-end targets without a word: they need the
//! `test-hooks` feature (a fixed clock and keys) and the `tools` feature (firefly-local,
//! firefly-gen). Without them, this target fails and names the command.

#[test]
fn the_end_to_end_targets_ran() {
    let missing: Vec<&str> = [
        ("test-hooks", cfg!(feature = "test-hooks")),
        ("tools", cfg!(feature = "tools")),
    ]
    .iter()
    .filter(|(_, on)| !on)
    .map(|(name, _)| *name)
    .collect();
    assert!(
        missing.is_empty(),
        "the end-to-end tests (lambda, revoke, devices, faults, load, observability, local_api, \
         generated, fuzz_corpus) need the features {missing:?}: run \
         `cargo test --features test-hooks,tools` (README, Testing), or scripts/check"
    );
}
