//! Load: mint keys (FIREFLY_LOAD_KEYS, default below) through the binary, with four runtime
//! processes at once against moto's DynamoDB (it returns the blocking item on a failed
//! condition, as DynamoDB does), behind a proxy that cuts one response in CUT_EVERY after
//! the write went through. Zero duplicate keys; every 201 has exactly its item; and no
//! orphans: every cut answer was recovered by its retry, which found its own item.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Instant;
use support::dynamo::{Dynalite, n, s};
use support::faults::{Fault, Proxy};
use support::lambda::Function;
use support::*;

const PROCESSES: usize = 4;

/// What one process did: (user, key) per 201, the count of other answers, the process.
type Outcome = (Vec<(String, String)>, usize, Function);
const CUT_EVERY: u64 = 500;

#[test]
fn keys_from_four_processes_through_cut_answers_none_lost_duplicated_or_orphaned() {
    let total: usize = std::env::var("FIREFLY_LOAD_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        // moto serves about 250 writes a second here: 20,000 keys keep this near 80 s in
        // scripts/check; FIREFLY_LOAD_KEYS=100000 for a long run.
        .unwrap_or(20_000);
    let db = Dynalite::moto();
    let table = unique_table("load");
    db.create_table(&table);
    let proxy = Proxy::start(db.port);
    proxy.set(vec![], Fault::Pass);
    proxy.cut_every(CUT_EVERY);
    let env = env_with(&[
        ("DYNAMODB_REGISTRATION_KEYS_TABLE_NAME", table.as_str()),
        ("AWS_ENDPOINT_URL_DYNAMODB", proxy.endpoint().as_str()),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
    ]);

    let started = Instant::now();
    let per_process = total.div_ceil(PROCESSES);
    let results: Vec<Outcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..PROCESSES)
            .map(|p| {
                let env = env.clone();
                scope.spawn(move || {
                    let mut f = Function::start(&env);
                    let mut minted = Vec::with_capacity(per_process);
                    let mut refused = 0;
                    for i in 0..per_process.min(total - p * per_process) {
                        let user = format!("load-{p}-{i}");
                        let r = f.invoke(&event_for(&user)).http();
                        if r.status == 201 {
                            minted.push((user, r.json()["key"].as_str().unwrap().to_owned()));
                        } else {
                            refused += 1;
                        }
                    }
                    (minted, refused, f)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();

    let refused: usize = results.iter().map(|r| r.1).sum();
    let minted: Vec<&(String, String)> = results.iter().flat_map(|r| &r.0).collect();
    assert_eq!(refused, 0, "requests that did not get a 201");
    assert_eq!(minted.len(), total);
    let keys: HashSet<&str> = minted.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(keys.len(), minted.len(), "duplicate keys among the 201s");

    let items = db.scan(&table);
    let by_key: HashMap<&str, &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> =
        items.iter().map(|i| (s(i, "key"), i)).collect();
    for (user, key) in &minted {
        let item = by_key
            .get(key.as_str())
            .unwrap_or_else(|| panic!("no item for a 201"));
        assert_eq!(s(item, "generated_by_sub"), user);
        assert_eq!(n(item, "ttl") - n(item, "generated_at"), 1800);
    }
    let cuts = proxy.injected().len();
    assert!(
        cuts >= total / CUT_EVERY as usize,
        "only {cuts} answers were cut"
    );
    let orphans: Vec<_> = items
        .iter()
        .filter(|i| !keys.contains(s(i, "key")))
        .collect();
    assert!(orphans.is_empty(), "{} orphans", orphans.len());
    assert_eq!(items.len(), total);

    let secrets: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    for (_, _, f) in &results {
        assert_not_logged(f, &secrets);
    }
    eprintln!(
        "load: {total} keys from {PROCESSES} processes in {:.1} s ({:.0}/s); duplicates 0; lost 0; responses cut {cuts}, orphans {}",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        orphans.len()
    );
}
