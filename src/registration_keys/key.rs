//! Registration keys: 6 symbols of Crockford's base 32, drawn uniformly from a CSPRNG.

use crate::random::{RandomError, SecureRandom};
use std::fmt;

/// Crockford's base-32 alphabet: no I, L, O or U, so a person can read a key off one screen
/// and type it into a device without confusing 1/I/L or 0/O.
pub const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Symbols per key: 32^6 = 2^30 possible keys.
pub const KEY_LEN: usize = 6;

/// A registration key. Deliberately not `Debug`-printable in full and not `Display`:
/// the key is a credential, and the only way to read it is [`RegistrationKey::expose`],
/// which makes every place that handles the secret easy to find.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RegistrationKey([u8; KEY_LEN]);

impl RegistrationKey {
    /// Draws a key from `random`. Each symbol takes the low 5 bits of one random byte;
    /// 256 is a multiple of 32, so every symbol is exactly equally likely (no modulo bias).
    pub fn generate(random: &dyn SecureRandom) -> Result<Self, RandomError> {
        let mut bytes = [0u8; KEY_LEN];
        random.fill(&mut bytes)?;
        Ok(Self(bytes.map(|b| ALPHABET[usize::from(b & 0x1f)])))
    }

    /// Parses a key as a user gives one back: 6 of A-Z0-9. That is FireFly's alphabet, a
    /// superset of the one we mint from, so a key FireFly's Python function minted (with I,
    /// L, O or U in it, about 63% of them) is read too during a migration.
    pub fn parse(s: &str) -> Option<Self> {
        let bytes: [u8; KEY_LEN] = s.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            .then_some(Self(bytes))
    }

    /// The key's text. Call only to store it or to return it to its owner; never to log it.
    pub fn expose(&self) -> &str {
        // Every byte is from ALPHABET, which is ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The random bytes that [`RegistrationKey::generate`] maps onto this key (test hooks).
    pub fn to_random_bytes(&self) -> [u8; KEY_LEN] {
        self.0
            .map(|c| ALPHABET.iter().position(|&a| a == c).unwrap_or(0) as u8)
    }
}

impl fmt::Debug for RegistrationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RegistrationKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SystemRandom;
    use std::collections::HashSet;
    use std::sync::Mutex;

    /// Replays fixed bytes: lets a test choose exactly what the generator sees.
    struct Bytes(Mutex<Vec<u8>>);

    impl SecureRandom for Bytes {
        fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
            let mut src = self.0.lock().unwrap();
            if src.len() < buf.len() {
                return Err(RandomError("exhausted".into()));
            }
            buf.copy_from_slice(&src.drain(..buf.len()).collect::<Vec<_>>());
            Ok(())
        }
    }

    #[test]
    fn alphabet_is_crockford_without_look_alikes() {
        let set: HashSet<u8> = ALPHABET.iter().copied().collect();
        assert_eq!(set.len(), 32, "symbols are distinct");
        for banned in *b"ILOUilou" {
            assert!(!set.contains(&banned), "{}", banned as char);
        }
        assert!(
            ALPHABET
                .iter()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        );
    }

    #[test]
    fn every_byte_value_maps_to_each_symbol_exactly_eight_times() {
        // Uniform bytes in, uniform symbols out: the mapping itself has no bias.
        let mut counts = [0u32; 32];
        for b in 0..=255u8 {
            let key = RegistrationKey::generate(&Bytes(Mutex::new(vec![b; KEY_LEN]))).unwrap();
            let sym = key.expose().as_bytes()[0];
            counts[ALPHABET.iter().position(|&a| a == sym).unwrap()] += 1;
        }
        assert_eq!(counts, [8; 32]);
    }

    #[test]
    fn generated_symbols_are_uniform_by_chi_square() {
        // 60,000 keys give 360,000 symbols, 11,250 expected per symbol. With 31 degrees of
        // freedom the chi-square statistic exceeds 100 with probability below 1e-8.
        let mut counts = [0u64; 32];
        for _ in 0..60_000 {
            let key = RegistrationKey::generate(&SystemRandom).unwrap();
            for &c in key.expose().as_bytes() {
                counts[ALPHABET.iter().position(|&a| a == c).unwrap()] += 1;
            }
        }
        let expected = 60_000.0 * KEY_LEN as f64 / 32.0;
        let chi2: f64 = counts
            .iter()
            .map(|&n| (n as f64 - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < 100.0, "chi-square {chi2} for counts {counts:?}");
    }

    #[test]
    fn round_trips_through_random_bytes() {
        let key = RegistrationKey::parse("7KQ2MX").unwrap();
        let again =
            RegistrationKey::generate(&Bytes(Mutex::new(key.to_random_bytes().to_vec()))).unwrap();
        assert_eq!(again.expose(), "7KQ2MX");
    }

    #[test]
    fn parse_reads_fireflys_alphabet_and_nothing_else() {
        for bad in [
            "",
            "7KQ2M",
            "7KQ2MXX",
            "7kq2mx",
            "7KQ2M\u{e9}",
            "7KQ 2M",
            "7KQ-2M",
        ] {
            assert!(RegistrationKey::parse(bad).is_none(), "{bad:?}");
        }
        // Ours, and keys only FireFly's Python function would mint (I, L, O, U).
        for good in ["000000", "ZZZZZZ", "7KQ2MI", "OOOOOO", "LUIO12"] {
            assert!(RegistrationKey::parse(good).is_some(), "{good:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = RegistrationKey::parse("7KQ2MX").unwrap();
        assert!(!format!("{key:?}").contains("7KQ2MX"));
    }

    #[test]
    fn random_failure_is_an_error_not_a_panic() {
        assert!(RegistrationKey::generate(&Bytes(Mutex::new(vec![1, 2]))).is_err());
    }
}
