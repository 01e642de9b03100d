//! Wall-clock time, injectable so that expiry logic is testable without waiting.

use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in whole seconds since the Unix epoch.
pub trait Clock: Send + Sync {
    fn now_epoch_seconds(&self) -> i64;

    /// Microseconds since the epoch (device registration dates carry them, as FireFly's
    /// do). A clock of whole seconds answers the second's start.
    fn now_epoch_micros(&self) -> i64 {
        self.now_epoch_seconds() * 1_000_000
    }
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

    fn now_epoch_micros(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
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

/// Epoch microseconds as Python's `datetime.now(timezone.utc).isoformat()` writes them, which
/// FireFly stores as `registration_date`: `2026-05-24T15:32:51.123456+00:00`. (Python drops
/// the fraction when it is zero; we always write six digits, which sorts the same.)
pub fn iso8601_micros(epoch_micros: i64) -> String {
    let mut s = rfc3339(epoch_micros.div_euclid(1_000_000));
    s.pop();
    format!("{s}.{:06}+00:00", epoch_micros.rem_euclid(1_000_000))
}

/// Parses an ISO 8601 date-time as devices send it (`2025-05-09T12:00:00Z`): a date, `T`
/// or a space, `HH:MM:SS`, an optional fraction, and `Z`, `+HH:MM`, `-HH:MM` or nothing
/// (UTC). The offset is applied, never dropped. Returns epoch microseconds.
pub fn parse_iso8601(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if day < 1 || day > days_in[(month - 1) as usize] {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        if end == start || end - start > 9 {
            return None;
        }
        let digits = &text[start..end];
        let padded = format!("{digits:0<6}");
        micros = padded[..6].parse().ok()?;
        i = end;
    }
    let offset_seconds = match &b[i..] {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            let _ = (h1, h2, m1, m2);
            if h > 23 || m > 59 {
                return None;
            }
            let s = h * 3600 + m * 60;
            if *sign == b'+' { s } else { -s }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(seconds * 1_000_000 + micros)
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

    #[test]
    fn device_timestamps_are_parsed_with_their_offsets_applied() {
        let base = 1_746_792_000; // 2025-05-09T12:00:00Z
        let cases = [
            ("2025-05-09T12:00:00Z", Some(base * 1_000_000)),
            ("2025-05-09T12:00:00", Some(base * 1_000_000)),
            ("2025-05-09 12:00:00Z", Some(base * 1_000_000)),
            ("2025-05-09T12:00:00.5Z", Some(base * 1_000_000 + 500_000)),
            (
                "2025-05-09T12:00:00.123456+00:00",
                Some(base * 1_000_000 + 123_456),
            ),
            // An offset is converted, not overwritten (FireFly replaced it with UTC).
            ("2025-05-09T14:00:00+02:00", Some(base * 1_000_000)),
            ("2025-05-09T07:30:00-04:30", Some(base * 1_000_000)),
            ("2024-02-29T00:00:00Z", Some(1_709_164_800 * 1_000_000)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_iso8601(text), want, "{text}");
        }
        for bad in [
            "",
            "2025-05-09",
            "2025-13-09T12:00:00Z",
            "2025-02-29T12:00:00Z",
            "2025-05-09T24:00:00Z",
            "2025-05-09T12:00:00ZZ",
            "2025-05-09T12:00:00+0200",
            "2025-05-09T12:00:00.Z",
            "+025-05-09T12:00:00Z",
            "2025-05-09T12:0a:00Z",
            "1746792000",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
        assert_eq!(
            iso8601_micros(base * 1_000_000 + 42),
            "2025-05-09T12:00:00.000042+00:00"
        );
        assert_eq!(
            parse_iso8601(&iso8601_micros(base * 1_000_000 + 42)),
            Some(base * 1_000_000 + 42)
        );
    }
}
