//! The process's source of secret randomness.
//!
//! Registration keys are credentials, so they come from the operating system's CSPRNG
//! (`getrandom(2)` through `rand`'s `SysRng`), with no user-space generator in between
//! that could be mis-seeded or forked. A trait keeps the source injectable for tests.

use rand::TryRng;
use rand::rngs::SysRng;

/// Fills buffers with cryptographically secure random bytes.
pub trait SecureRandom: Send + Sync {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError>;
}

/// The operating system's CSPRNG could not deliver bytes (it never should on Lambda).
#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed: {0}")]
pub struct RandomError(pub String);

/// The operating system's CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRandom;

impl SecureRandom for SystemRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        SysRng
            .try_fill_bytes(buf)
            .map_err(|e| RandomError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_random_fills_and_differs() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        SystemRandom.fill(&mut a).unwrap();
        SystemRandom.fill(&mut b).unwrap();
        assert_ne!(a, b, "two 256-bit draws from the OS CSPRNG were equal");
    }
}
