//! Cache keys of build steps.
//!
//! A step's key is a SHA-256 over, in order: a format version, the parent (the key of the
//! previous step, or the base image's ID for the first step), the instruction as written,
//! the build args in scope (name and value, sorted), and for COPY/ADD the digest of the
//! content the sources name ([`crate::context::Context::digest`]) or of the stage/image
//! copied from. Editing one source file therefore changes the key of the first COPY that
//! includes it, and through the parent chain every later step, and nothing before it.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest as _, Sha256};

/// The cache key of one step: `sha256:<hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key as text (`sha256:<hex>`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part, usable as a file name.
    pub fn hex(&self) -> &str {
        self.0.trim_start_matches("sha256:")
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What determines whether a step can be taken from the cache.
#[derive(Debug, Clone, Copy)]
pub struct StepInput<'a> {
    /// Key of the previous step, or the base image's ID (`scratch` for none).
    pub parent: &'a str,
    /// The instruction as written (continuations joined).
    pub instruction: &'a str,
    /// Build args in scope at this step.
    pub args: &'a BTreeMap<String, String>,
    /// For COPY/ADD: digest of the copied content (and of its origin).
    pub content: Option<&'a str>,
}

fn field(h: &mut Sha256, tag: &str, value: &[u8]) {
    h.update(tag.as_bytes());
    h.update((value.len() as u64).to_le_bytes());
    h.update(value);
}

/// Computes a step's cache key.
pub fn step_key(input: StepInput<'_>) -> CacheKey {
    let mut h = Sha256::new();
    field(&mut h, "version", b"berth-build-cache-1");
    field(&mut h, "parent", input.parent.as_bytes());
    field(&mut h, "instruction", input.instruction.as_bytes());
    for (k, v) in input.args {
        field(&mut h, "arg-name", k.as_bytes());
        field(&mut h, "arg-value", v.as_bytes());
    }
    if let Some(c) = input.content {
        field(&mut h, "content", c.as_bytes());
    }
    CacheKey(format!("sha256:{}", hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(parent: &str, ins: &str, args: &[(&str, &str)], content: Option<&str>) -> CacheKey {
        let args: BTreeMap<String, String> = args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        step_key(StepInput {
            parent,
            instruction: ins,
            args: &args,
            content,
        })
    }

    #[test]
    fn same_inputs_same_key() {
        assert_eq!(
            key("p", "RUN make", &[("A", "1")], None),
            key("p", "RUN make", &[("A", "1")], None)
        );
        assert!(
            key("p", "RUN make", &[], None)
                .as_str()
                .starts_with("sha256:")
        );
        assert_eq!(key("p", "RUN make", &[], None).hex().len(), 64);
    }

    #[test]
    fn every_input_counts() {
        let base = key("p", "RUN make", &[("A", "1")], Some("c"));
        assert_ne!(base, key("q", "RUN make", &[("A", "1")], Some("c")));
        assert_ne!(base, key("p", "RUN make all", &[("A", "1")], Some("c")));
        assert_ne!(base, key("p", "RUN make", &[("A", "2")], Some("c")));
        assert_ne!(base, key("p", "RUN make", &[("B", "1")], Some("c")));
        assert_ne!(base, key("p", "RUN make", &[("A", "1")], Some("d")));
        assert_ne!(base, key("p", "RUN make", &[("A", "1")], None));
    }

    #[test]
    fn fields_cannot_run_into_each_other() {
        assert_ne!(key("ab", "c", &[], None), key("a", "bc", &[], None));
        assert_ne!(
            key("p", "i", &[("A", "1B")], None),
            key("p", "i", &[("A1", "B")], None)
        );
    }
}
