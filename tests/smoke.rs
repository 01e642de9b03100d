//! A smoke test of both functions from one binary, with nothing but the real thing: no
//! test hooks, the real clock and CSPRNG. `scripts/check` runs it a second time against the
//! arm64 artifact that `sam build` made (under qemu-aarch64, `FIREFLY_BOOTSTRAP`), so the
//! file that ships is a file that was tested.

mod support;

use support::dynamo::{Dynalite, s};
use support::*;

#[test]
fn both_functions_from_one_binary_mint_and_revoke() {
    let table = unique_table("smoke");
    let db = Dynalite::shared();
    db.create_table(&table);
    let mut post = function_on_table(FUNCTION, &table, NO_ENV);
    let mut delete = function_on_table(DELETE_FUNCTION, &table, NO_ENV);

    let r = post.invoke(&event_for("smoke-user")).http();
    assert_eq!(r.status, 201, "{r:?}");
    let key = r.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(
        s(&db.get(&table, &key).unwrap(), "generated_by_sub"),
        "smoke-user"
    );

    // Each refuses the other's route.
    assert_eq!(
        post.invoke(&revoke_event(&key, "smoke-user")).http().status,
        404
    );
    assert_eq!(delete.invoke(&event()).http().status, 404);

    assert_eq!(
        delete
            .invoke(&revoke_event(&key, "someone-else"))
            .http()
            .status,
        404
    );
    assert_eq!(
        delete
            .invoke(&revoke_event(&key, "smoke-user"))
            .http()
            .status,
        204
    );
    assert!(db.get(&table, &key).is_none());
    assert_eq!(
        delete
            .invoke(&revoke_event(&key, "smoke-user"))
            .http()
            .status,
        404
    );
    assert_not_logged(&post, std::slice::from_ref(&key));
    assert_not_logged(&delete, &[key]);
}
