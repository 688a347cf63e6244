//! Times on the wire and on the command line (`--since`, `--until`).

use std::time::{Duration, SystemTime};

/// A time that is none of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid time {0:?}: expected Unix seconds (1700000000 or 1700000000.5), RFC 3339 \
     (2026-11-22T11:00:00Z) or, on the command line, a duration ago (10m, 1h30m)"
)]
pub struct TimeError(pub String);

/// Parses a time as the API accepts it: Unix seconds (with an optional fraction)
/// or RFC 3339.
pub fn parse_wire(s: &str) -> Result<SystemTime, TimeError> {
    let err = || TimeError(s.to_string());
    if s.bytes().next().is_some_and(|b| b.is_ascii_digit()) && !s.contains(['-', ':']) {
        let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let secs: u64 = secs.parse().map_err(|_| err())?;
        let nanos: u32 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<9}").parse().map_err(|_| err())?
        };
        return SystemTime::UNIX_EPOCH
            .checked_add(Duration::new(secs, nanos))
            .ok_or_else(err);
    }
    humantime::parse_rfc3339_weak(s).map_err(|_| err())
}

/// Parses a time given on the command line: what [`parse_wire`] accepts, or a
/// duration (`10m`, `1h30m`, `2days`) meaning that long before `now`.
pub fn parse_cli(s: &str, now: SystemTime) -> Result<SystemTime, TimeError> {
    parse_wire(s).or_else(|e| {
        let ago = humantime::parse_duration(s).map_err(|_| e)?;
        Ok(now.checked_sub(ago).unwrap_or(SystemTime::UNIX_EPOCH))
    })
}

/// Formats a time for the wire as Unix seconds with nanoseconds (`1700000000.000000001`).
pub fn to_wire(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn unix_seconds_with_and_without_fraction() {
        assert_eq!(parse_wire("0"), Ok(SystemTime::UNIX_EPOCH));
        assert_eq!(parse_wire("1700000000"), Ok(at(1_700_000_000, 0)));
        assert_eq!(
            parse_wire("1700000000.5"),
            Ok(at(1_700_000_000, 500_000_000))
        );
        assert_eq!(parse_wire("1700000000.000000001"), Ok(at(1_700_000_000, 1)));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(
            parse_wire("2023-11-14T22:13:20.25Z"),
            Ok(at(1_700_000_000, 250_000_000))
        );
    }

    #[test]
    fn garbage_is_an_error_that_quotes_the_input() {
        for bad in ["", "soon", "1.2.3", "12x", "1.0000000001", "-5"] {
            let err = parse_wire(bad).unwrap_err();
            assert_eq!(err, TimeError(bad.to_string()));
        }
    }

    #[test]
    fn cli_durations_count_back_from_now() {
        let now = at(1_700_000_000, 0);
        assert_eq!(parse_cli("10m", now), Ok(at(1_700_000_000 - 600, 0)));
        assert_eq!(parse_cli("1h30m", now), Ok(at(1_700_000_000 - 5400, 0)));
        assert_eq!(parse_cli("42", now), Ok(at(42, 0)));
        assert!(parse_cli("tomorrow", now).is_err());
    }

    #[test]
    fn wire_format_round_trips() {
        let t = at(1_700_000_000, 123);
        assert_eq!(to_wire(t), "1700000000.000000123");
        assert_eq!(parse_wire(&to_wire(t)), Ok(t));
    }
}
