//! Durations and byte sizes, parsed from Compose's notations and printed as Compose v2 does.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A duration in nanoseconds. Parsed from Go duration strings (`1m30s`, `500ms`, `1h`,
/// `1.5s`); printed the way Go's `time.Duration` prints (`1m30s`, `1h0m0s`, `500ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub u64);

impl Duration {
    /// As a `std::time::Duration`.
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0)
    }

    /// Parses a Go-style duration (`1h2m3.5s`, `10ms`, `0`); a bare integer means seconds.
    pub fn parse(s: &str) -> Option<Duration> {
        let s = s.trim();
        if s == "0" {
            return Some(Duration(0));
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse::<u64>()
                .ok()?
                .checked_mul(1_000_000_000)
                .map(Duration);
        }
        let mut rest = s;
        let mut total: f64 = 0.0;
        if rest.is_empty() {
            return None;
        }
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            if num_len == 0 {
                return None;
            }
            let num: f64 = rest[..num_len].parse().ok()?;
            rest = &rest[num_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let mult: f64 = match &rest[..unit_len] {
                "ns" => 1.0,
                "us" | "µs" | "μs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                _ => return None,
            };
            rest = &rest[unit_len..];
            total += num * mult;
        }
        if !total.is_finite() || total > u64::MAX as f64 {
            return None;
        }
        Some(Duration(total.round() as u64))
    }
}

impl fmt::Display for Duration {
    /// Go's `time.Duration.String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d == 0 {
            return f.write_str("0s");
        }
        if d < 1_000_000_000 {
            let (unit, scale) = if d < 1_000 {
                ("ns", 1)
            } else if d < 1_000_000 {
                ("µs", 1_000)
            } else {
                ("ms", 1_000_000)
            };
            return write!(f, "{}{unit}", frac(d, scale));
        }
        let h = d / 3_600_000_000_000;
        let rem = d % 3_600_000_000_000;
        let m = rem / 60_000_000_000;
        let s_ns = rem % 60_000_000_000;
        if h > 0 {
            write!(f, "{h}h{m}m")?;
        } else if m > 0 {
            write!(f, "{m}m")?;
        }
        write!(f, "{}s", frac(s_ns, 1_000_000_000))
    }
}

fn frac(v: u64, scale: u64) -> String {
    let whole = v / scale;
    let part = v % scale;
    if part == 0 {
        return whole.to_string();
    }
    let width = scale.to_string().len() - 1;
    let digits = format!("{part:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as `1m30s`, `10s` or `500ms`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                v.checked_mul(1_000_000_000)
                    .map(Duration)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "description": "A duration such as 1m30s, 10s or 500ms", "pattern": "^([0-9.]+(ns|us|µs|ms|s|m|h))+$|^0$"})
    }
}

/// A size in bytes. Parsed from `512m`, `1g`, `1.5gb`, `100k`, `2048` (binary multiples,
/// as Docker's `RAMInBytes`); printed as a decimal string of bytes, as Compose v2 does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses Docker's size notation.
    pub fn parse(s: &str) -> Option<ByteSize> {
        parse_signed_size(s)
            .and_then(|v| u64::try_from(v).ok())
            .map(ByteSize)
    }
}

fn parse_signed_size(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024f64.powi(4),
        "p" | "pb" | "pib" => 1024f64.powi(5),
        _ => return None,
    };
    let v = n * mult;
    if !v.is_finite() || v > i64::MAX as f64 {
        return None;
    }
    let v = v as i64;
    Some(if neg { -v } else { v })
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = SwapLimit::deserialize(d)?;
        u64::try_from(v.0)
            .map(ByteSize)
            .map_err(|_| de::Error::custom(format!("a size cannot be negative ({})", v.0)))
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": ["string", "integer"], "description": "A size in bytes, or with a unit: 512m, 1g, 1.5gb"})
    }
}

/// A byte size that may be `-1` (unlimited), as `memswap_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SwapLimit(pub i64);

impl Serialize for SwapLimit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SwapLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = SwapLimit;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as `512m`, `1g` or a number of bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SwapLimit, E> {
                parse_signed_size(v)
                    .map(SwapLimit)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SwapLimit, E> {
                i64::try_from(v)
                    .map(SwapLimit)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SwapLimit, E> {
                Ok(SwapLimit(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<SwapLimit, E> {
                Ok(SwapLimit(v as i64))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for SwapLimit {
    fn schema_name() -> Cow<'static, str> {
        "SwapLimit".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": ["string", "integer"], "description": "A size in bytes (or with a unit), -1 for unlimited"})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        for (input, out) in [
            ("1m30s", "1m30s"),
            ("90s", "1m30s"),
            ("500ms", "500ms"),
            ("1h", "1h0m0s"),
            ("1.5s", "1.5s"),
            ("0", "0s"),
            ("10", "10s"),
            ("2h3m", "2h3m0s"),
            ("1500us", "1.5ms"),
        ] {
            assert_eq!(
                Duration::parse(input).map(|d| d.to_string()).as_deref(),
                Some(out),
                "{input}"
            );
        }
        assert_eq!(Duration::parse("1x"), None);
        assert_eq!(Duration::parse("s"), None);
        assert_eq!(Duration::parse(""), None);
    }

    #[test]
    fn sizes_use_binary_multiples() {
        assert_eq!(ByteSize::parse("512m"), Some(ByteSize(536_870_912)));
        assert_eq!(ByteSize::parse("1g"), Some(ByteSize(1_073_741_824)));
        assert_eq!(ByteSize::parse("1.5gb"), Some(ByteSize(1_610_612_736)));
        assert_eq!(ByteSize::parse("2048"), Some(ByteSize(2048)));
        assert_eq!(ByteSize::parse("64KiB"), Some(ByteSize(65536)));
        assert_eq!(ByteSize::parse("1q"), None);
        assert_eq!(ByteSize::parse("-1"), None);
    }
}
