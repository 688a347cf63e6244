//! Container ids (64 random hex digits) and names (given, or a generated `adjective_noun`).

use std::io::Read;
use std::path::Path;

use super::ContainersError;

const ADJECTIVES: [&str; 16] = [
    "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nimble", "proud", "quiet", "sharp", "tender", "witty",
];
const NOUNS: [&str; 16] = [
    "albatross",
    "beacon",
    "cove",
    "dock",
    "ferry",
    "gull",
    "harbor",
    "jetty",
    "keel",
    "lagoon",
    "mooring",
    "pier",
    "quay",
    "reef",
    "schooner",
    "tide",
];

/// 32 random bytes from the kernel, as 64 hex digits.
pub fn new_id() -> Result<String, ContainersError> {
    let path = Path::new("/dev/urandom");
    let mut bytes = [0u8; 32];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(ContainersError::io("read", path))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A name from the id's bytes: `adjective_noun`, with a number when that is taken.
pub fn generate(id: &str, taken: impl Fn(&str) -> bool) -> String {
    let byte = |i: usize| usize::from_str_radix(id.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
    let base = format!("{}_{}", ADJECTIVES[byte(0) % 16], NOUNS[byte(2) % 16]);
    if !taken(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}{n}"))
        .find(|n| !taken(n))
        .expect("an unbounded range always yields a free name")
}

/// Docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate(name: &str) -> Result<(), ContainersError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ContainersError::InvalidName(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_digits_and_differ() {
        let (a, b) = (new_id().unwrap(), new_id().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn generated_names_avoid_taken_ones() {
        let id = "0011".repeat(16);
        assert_eq!(generate(&id, |_| false), "brave_beacon");
        assert_eq!(generate(&id, |n| n == "brave_beacon"), "brave_beacon2");
    }

    #[test]
    fn names_follow_docker_rules() {
        assert!(validate("web-1.a_b").is_ok());
        for bad in ["", "-x", "a/b", "a b"] {
            assert!(
                matches!(validate(bad), Err(ContainersError::InvalidName(_))),
                "{bad}"
            );
        }
    }
}
