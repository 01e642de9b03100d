//! Arbitrary bytes as the Lambda event payload.
#![no_main]

use firefly_api::fuzzing::Harness;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static HARNESS: OnceLock<Harness> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    HARNESS.get_or_init(Harness::new).run_bytes(data);
});
