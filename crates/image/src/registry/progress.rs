//! Progress events of pull and push, for progress bars or plain log lines.

use std::sync::Arc;

use crate::digest::Digest;

/// One step of a pull or push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The reference resolved to this (platform-specific) manifest.
    Resolved {
        /// The reference as given.
        reference: String,
        /// Manifest digest.
        digest: Digest,
    },
    /// A layer is about to be transferred.
    LayerStarted {
        /// Blob digest.
        digest: Digest,
        /// Blob size.
        size: u64,
    },
    /// Bytes of a layer transferred so far.
    LayerBytes {
        /// Blob digest.
        digest: Digest,
        /// Bytes done.
        done: u64,
        /// Blob size.
        total: u64,
    },
    /// A transfer failed and is retried.
    LayerRetry {
        /// Blob digest.
        digest: Digest,
        /// Attempt number about to start (2 = first retry).
        attempt: u32,
        /// What went wrong.
        error: String,
    },
    /// The layer was already present (locally on pull, remotely on push).
    LayerExists {
        /// Blob digest.
        digest: Digest,
    },
    /// The registry mounted the blob from another repository (push).
    LayerMounted {
        /// Blob digest.
        digest: Digest,
        /// Source repository.
        from: String,
    },
    /// The layer is complete (downloaded and unpacked, or uploaded).
    LayerDone {
        /// Blob digest.
        digest: Digest,
    },
    /// The manifest was pushed.
    ManifestPushed {
        /// Manifest digest.
        digest: Digest,
    },
}

/// A progress callback, shared between the concurrent layer transfers.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// A callback that ignores every event.
pub fn silent() -> ProgressFn {
    Arc::new(|_| {})
}
