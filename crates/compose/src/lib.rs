//! Compose stack files to a typed, canonical [`Project`].
//!
//! This crate depends on no other berth crate. The loader runs as named phases:
//! discover → parse (located) → interpolate → include → extends → merge → validate →
//! canonical → defaults.
#![forbid(unsafe_code)]

pub mod decode;
pub mod diagnostic;
pub mod model;
pub mod source;

pub use diagnostic::{Diagnostic, Diagnostics, FieldPath, Location};
pub use model::{Project, Service};
