//! Typing YAML scalars from their text, as Compose's YAML library does: integers
//! (decimal, `0x` hex, `0o` and YAML 1.1 `0`-prefixed octal), floats (with `.inf`/`.nan`)
//! and booleans (`true`/`false`, and for boolean fields `yes`/`no`/`on`/`off`).

/// An integer, if `t` is one.
pub fn parse_int(t: &str) -> Option<i128> {
    let t = t.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = if let Some(h) = body.strip_prefix("0x") {
        i128::from_str_radix(h, 16).ok()?
    } else if let Some(o) = body.strip_prefix("0o") {
        i128::from_str_radix(o, 8).ok()?
    } else if body.len() > 1
        && body.starts_with('0')
        && body.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        // YAML 1.1 octal (`mode: 0440`), as Compose's YAML library reads it.
        i128::from_str_radix(body, 8).ok()?
    } else if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        body.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

/// A float, if `t` is one.
pub fn parse_float(t: &str) -> Option<f64> {
    let t = t.trim();
    match t {
        ".inf" | ".Inf" | ".INF" | "+.inf" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE_".contains(&b))
    {
        return None;
    }
    t.parse().ok()
}

/// A boolean for a boolean field, if `t` is one.
pub fn parse_bool(t: &str) -> Option<bool> {
    match t.to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "on" => Some(true),
        "false" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_floats_bools() {
        assert_eq!(parse_int("42"), Some(42));
        assert_eq!(parse_int("-7"), Some(-7));
        assert_eq!(parse_int("0x1f"), Some(31));
        assert_eq!(parse_int("0o17"), Some(15));
        assert_eq!(parse_int("0440"), Some(288));
        assert_eq!(parse_int("1.5"), None);
        assert_eq!(parse_int("12a"), None);
        assert_eq!(parse_float("1.5e3"), Some(1500.0));
        assert_eq!(parse_float("abc"), None);
        assert_eq!(parse_bool("Yes"), Some(true));
        assert_eq!(parse_bool("off"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }
}
