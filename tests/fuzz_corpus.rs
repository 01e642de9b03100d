//! Replays the kept fuzzing corpus (fuzz/corpus/event_bytes) and the shipped events through
//! the fuzzing harness on every test run: an input that once broke an invariant stays fixed.

use firefly_api::fuzzing::Harness;
use std::path::Path;

#[test]
fn the_corpus_and_the_example_events_keep_every_invariant() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let harness = Harness::new();
    let mut replayed = 0;
    for dir in ["fuzz/corpus/event_bytes", "events"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                harness.run_bytes(&std::fs::read(&path).unwrap());
                replayed += 1;
            }
        }
    }
    assert!(replayed >= 5, "only {replayed} inputs replayed");
}
