//! Image references (`name[:tag][@digest]`) with Docker's normalisation rules.
//!
//! `busybox` becomes `docker.io/library/busybox:latest`; the first path component is a registry
//! only when it contains a `.` or a `:` or is `localhost` (as in `localhost:5000/app`).

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// The registry Docker uses when a reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The tag used when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";

/// Errors parsing a reference.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    /// Empty input.
    #[error("invalid reference: empty")]
    Empty,
    /// The repository path has upper-case letters.
    #[error("invalid reference {0:?}: repository name must be lowercase")]
    Uppercase(String),
    /// A path component has characters outside `[a-z0-9._-]` or a bad separator.
    #[error("invalid reference {0:?}: bad repository name component {1:?}")]
    BadComponent(String, String),
    /// The tag is not `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error("invalid reference {0:?}: bad tag {1:?}")]
    BadTag(String, String),
    /// The part after `@` is not a digest.
    #[error("invalid reference {0:?}: bad digest")]
    BadDigest(String, #[source] crate::digest::DigestError),
    /// The name is longer than 255 characters.
    #[error("invalid reference {0:?}: repository name longer than 255 characters")]
    TooLong(String),
}

/// A normalised image reference.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises a reference as `docker pull` does.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (
                r,
                Some(Digest::parse(d).map_err(|e| ReferenceError::BadDigest(s.to_owned(), e))?),
            ),
            None => (s, None),
        };
        // A tag is after the last ':' when no '/' follows it (else it is a registry port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if name.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if name.len() > 255 {
            return Err(ReferenceError::TooLong(s.to_owned()));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), path.to_owned())
            }
            _ => (DEFAULT_REGISTRY.to_owned(), name.to_owned()),
        };
        let registry = if registry == "index.docker.io" {
            DEFAULT_REGISTRY.to_owned()
        } else {
            registry
        };
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(s.to_owned()));
        }
        for comp in repository.split('/') {
            if !valid_component(comp) {
                return Err(ReferenceError::BadComponent(s.to_owned(), comp.to_owned()));
            }
        }
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(ReferenceError::BadTag(s.to_owned(), t.to_owned()));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The registry host (and port), e.g. `docker.io` or `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry, e.g. `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any (`latest` when the input had neither tag nor digest).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        Reference::parse(&format!("{}:{tag}", self.name()))
    }

    /// The same repository pinned to `digest` (and no tag).
    pub fn with_digest(&self, digest: &Digest) -> Self {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.clone()),
        }
    }

    /// The same reference without its digest (the tag stays).
    pub fn with_digest_removed(&self) -> Self {
        Reference {
            digest: None,
            ..self.clone()
        }
    }

    /// What manifests are fetched by: the digest when pinned, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_owned(),
        }
    }

    /// The short form Docker shows: `busybox:latest`, `user/app:1`, `localhost:5000/app:1`.
    pub fn familiar(&self) -> String {
        let name = if self.registry == DEFAULT_REGISTRY {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_owned()
        } else {
            self.name()
        };
        self.with_suffix(name)
    }

    fn with_suffix(&self, mut name: String) -> String {
        if let Some(t) = &self.tag {
            name.push(':');
            name.push_str(t);
        }
        if let Some(d) = &self.digest {
            name.push('@');
            name.push_str(&d.to_string());
        }
        name
    }
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+ ( ( [._] | __ | -+ ) [a-z0-9]+ )*
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_suffix(self.name()))
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_hub_names_are_normalised() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            norm("index.docker.io/library/x"),
            "docker.io/library/x:latest"
        );
        assert_eq!(
            norm("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn registries_with_ports_and_localhost() {
        assert_eq!(norm("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(norm("localhost/app:v1"), "localhost/app:v1");
        assert_eq!(norm("127.0.0.1:5000/a/b/c:t"), "127.0.0.1:5000/a/b/c:t");
        assert_eq!(norm("quay.io/org/x"), "quay.io/org/x:latest");
        let r = Reference::parse("localhost:5000/app").unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.repository(), "app");
        assert_eq!(r.familiar(), "localhost:5000/app:latest");
        assert_eq!(
            Reference::parse("busybox").unwrap().familiar(),
            "busybox:latest"
        );
    }

    #[test]
    fn digests_pin_without_default_tag() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.manifest_reference(), d);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{d}"));
        let r = Reference::parse(&format!("busybox:1@{d}")).unwrap();
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(r.manifest_reference(), d);
    }

    #[test]
    fn invalid_references_are_refused() {
        assert_eq!(Reference::parse(""), Err(ReferenceError::Empty));
        assert!(matches!(
            Reference::parse("BusyBox"),
            Err(ReferenceError::Uppercase(_))
        ));
        assert!(matches!(
            Reference::parse("a//b"),
            Err(ReferenceError::BadComponent(..))
        ));
        assert!(matches!(
            Reference::parse("a/-b"),
            Err(ReferenceError::BadComponent(..))
        ));
        assert!(matches!(
            Reference::parse("a:.bad"),
            Err(ReferenceError::BadTag(..))
        ));
        assert!(matches!(
            Reference::parse("a@sha256:12"),
            Err(ReferenceError::BadDigest(..))
        ));
        assert!(Reference::parse("a__b.c-d---e").is_ok());
    }

    #[test]
    fn round_trips_through_display() {
        for s in ["busybox", "localhost:5000/x/y:z", "ghcr.io/o/r:1.0"] {
            let r = Reference::parse(s).unwrap();
            assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
        }
    }
}
