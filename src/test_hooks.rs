//! Test-only seams, compiled in only with the `test-hooks` feature (never in a deployed
//! build): `FIREFLY_TEST_KEYS` makes the next keys drawn exactly the listed ones (to force
//! collisions), `FIREFLY_TEST_NOW` fixes the clock (epoch seconds).

use crate::clock::{Clock, FixedClock};
use crate::random::{RandomError, SecureRandom, SystemRandom};
use crate::registration_keys::key::{KEY_LEN, RegistrationKey};
use crate::sync::Locked;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Replays the bytes that produce the listed keys, then falls back to the real CSPRNG.
/// Only key draws are scripted; other draws (a mint's nonce) are always real.
pub struct ScriptedRandom(Mutex<VecDeque<u8>>);

impl SecureRandom for ScriptedRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        let mut script = self.0.locked();
        if buf.len() != KEY_LEN || script.len() < buf.len() {
            return SystemRandom.fill(buf);
        }
        for b in buf.iter_mut() {
            *b = script.pop_front().unwrap_or_default();
        }
        Ok(())
    }
}

pub fn random(env: &crate::deploy::Env<'_>) -> Result<Option<Arc<dyn SecureRandom>>, String> {
    let Some(list) = env(crate::vars::FIREFLY_TEST_KEYS.name) else {
        return Ok(None);
    };
    let mut bytes = VecDeque::new();
    for k in list.split(',').filter(|k| !k.is_empty()) {
        let key = RegistrationKey::parse(k).ok_or("FIREFLY_TEST_KEYS holds a malformed key")?;
        bytes.extend(key.to_random_bytes());
    }
    Ok(Some(Arc::new(ScriptedRandom(Mutex::new(bytes)))))
}

pub fn clock(env: &crate::deploy::Env<'_>) -> Result<Option<Arc<dyn Clock>>, String> {
    env(crate::vars::FIREFLY_TEST_NOW.name)
        .map(|v| {
            v.parse::<i64>()
                .map(|n| Arc::new(FixedClock(n)) as Arc<dyn Clock>)
                .map_err(|_| "FIREFLY_TEST_NOW is not epoch seconds".to_string())
        })
        .transpose()
}
