//! Wall-clock time, injectable so that expiry logic is testable without waiting.

use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in whole seconds since the Unix epoch.
pub trait Clock: Send + Sync {
    fn now_epoch_seconds(&self) -> i64;
}

/// The system's real-time clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_epoch_seconds(&self) -> i64 {
        // A clock before 1970 is a broken host, not a reason to panic: treat it as the epoch.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// A clock that always says the same time (tests, benchmarks, `FIREFLY_TEST_NOW`).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now_epoch_seconds(&self) -> i64 {
        self.0
    }
}

/// Formats epoch seconds as an RFC 3339 UTC timestamp (`2026-11-26T22:43:11Z`).
pub fn rfc3339(epoch_seconds: i64) -> String {
    // Howard Hinnant's days-to-civil algorithm: exact for the proleptic Gregorian calendar.
    let days = epoch_seconds.div_euclid(86_400);
    let secs = epoch_seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Epoch milliseconds as RFC 3339 UTC with milliseconds (`2026-11-26T22:43:11.042Z`).
pub fn rfc3339_millis(epoch_millis: i64) -> String {
    let mut s = rfc3339(epoch_millis.div_euclid(1000));
    s.pop();
    format!("{s}.{:03}Z", epoch_millis.rem_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_732_991), "2026-11-26T22:43:11Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn rfc3339_every_day_boundary_for_a_decade_is_monotonic_and_well_formed() {
        let mut previous = String::new();
        for day in 20_000..23_700 {
            let s = rfc3339(day * 86_400);
            assert_eq!(s.len(), 20, "{s}");
            assert!(s.ends_with("T00:00:00Z"), "{s}");
            assert!(s > previous, "{s} after {previous}");
            previous = s;
        }
    }

    #[test]
    fn rfc3339_with_milliseconds() {
        assert_eq!(
            rfc3339_millis(1_795_732_991_042),
            "2026-11-26T22:43:11.042Z"
        );
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn system_clock_is_after_2025() {
        assert!(SystemClock.now_epoch_seconds() > 1_735_689_600);
    }
}
