//! Content digests (`sha256:<hex>`) and a streaming hasher.
//!
//! Only SHA-256 is supported: it is what every registry and tool in use produces, and the OCI
//! image spec lists it as the one algorithm implementations must support.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// Errors parsing a digest string.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    /// The text is not `algorithm:hex`.
    #[error("malformed digest {0:?}: expected sha256:<64 lowercase hex digits>")]
    Malformed(String),
    /// The algorithm is not SHA-256.
    #[error("unsupported digest algorithm in {0:?}: only sha256 is supported")]
    Unsupported(String),
}

/// A SHA-256 content digest, displayed as `sha256:<64 hex digits>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parses `sha256:<hex>`.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let (algo, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Malformed(s.to_owned()))?;
        if algo != "sha256" {
            if algo.is_empty() || hex.is_empty() {
                return Err(DigestError::Malformed(s.to_owned()));
            }
            return Err(DigestError::Unsupported(s.to_owned()));
        }
        Self::from_hex(hex).ok_or_else(|| DigestError::Malformed(s.to_owned()))
    }

    /// Builds a digest from 64 lowercase hex digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let ok = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| Digest {
            hex: hex.to_owned(),
        })
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        let mut h = Hasher::new();
        h.update(data);
        h.finish()
    }

    /// The 64 hex digits, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, as `docker images` shows IDs.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Incremental SHA-256 over a stream, yielding a [`Digest`].
#[derive(Clone, Default)]
pub struct Hasher {
    inner: Sha256,
}

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        Digest {
            hex: hex::encode(self.inner.finalize()),
        }
    }
}

/// A reader that hashes and counts everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R: std::io::Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Hasher::new(),
            count: 0,
        }
    }

    /// The digest and byte count of everything read so far.
    pub fn finish(self) -> (Digest, u64) {
        (self.hasher.finish(), self.count)
    }
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty_input_is_the_well_known_value() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_rejects_bad_input() {
        assert!(matches!(
            Digest::parse("sha256:abc"),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            Digest::parse("nocolon"),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            Digest::parse("sha512:abcd"),
            Err(DigestError::Unsupported(_))
        ));
        let upper = format!("sha256:{}", "A".repeat(64));
        assert!(matches!(
            Digest::parse(&upper),
            Err(DigestError::Malformed(_))
        ));
        let ok = format!("sha256:{}", "a".repeat(64));
        assert_eq!(Digest::parse(&ok).unwrap().to_string(), ok);
    }
}
