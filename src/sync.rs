//! One answer to a poisoned lock, for every mutex of the crate.

use std::sync::{Mutex, MutexGuard};

/// [`Mutex::lock`] that survives a panic elsewhere: every critical section of this crate
/// leaves its data consistent (one insert, one replace), so a poisoned lock still guards
/// usable data, and a request must not fail because another one panicked.
pub trait Locked<T> {
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> Locked<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|p| p.into_inner())
    }
}
