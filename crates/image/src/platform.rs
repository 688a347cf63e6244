//! Platforms (`os/arch[/variant]`) and how an index entry is chosen for one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Errors parsing a platform string.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8")]
pub struct PlatformError(pub String);

/// A target platform as found in OCI indexes and image configs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture in Go's naming, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// Architecture variant, e.g. `v7`, `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Default for Platform {
    /// `linux/amd64`, berth's default as the task specifies.
    fn default() -> Self {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }
}

impl Platform {
    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Self, PlatformError> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) || !(2..=3).contains(&parts.len()) {
            return Err(PlatformError(s.to_owned()));
        }
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: normalise_arch(parts[1]).to_owned(),
            variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
        })
    }

    /// Whether an index entry for `other` is usable for this platform. A missing variant on
    /// either side matches, except that `arm64` treats a missing variant as `v8`.
    pub fn matches(&self, other: &Platform) -> bool {
        if self.os != other.os || self.architecture != normalise_arch(&other.architecture) {
            return false;
        }
        let default_variant = |p: &Platform| {
            p.variant
                .clone()
                .or_else(|| (p.architecture == "arm64").then(|| "v8".to_owned()))
        };
        match (default_variant(self), default_variant(other)) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }
}

fn normalise_arch(a: &str) -> &str {
    match a {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let p = Platform::parse("linux/arm64").unwrap();
        assert_eq!(p.to_string(), "linux/arm64");
        assert!(p.matches(&Platform::parse("linux/arm64/v8").unwrap()));
        assert!(!p.matches(&Platform::parse("linux/amd64").unwrap()));
        assert!(
            Platform::parse("linux/x86_64")
                .unwrap()
                .matches(&Platform::default())
        );
        assert!(
            !Platform::parse("linux/arm/v7")
                .unwrap()
                .matches(&Platform::parse("linux/arm/v6").unwrap())
        );
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//v7").is_err());
    }
}
