//! Compose stack files to a typed, canonical [`Project`]-to-be.
//!
//! This crate depends on no other berth crate. The loader runs as named phases:
//! discover → parse (located) → interpolate → include → extends → merge → validate →
//! canonical → defaults.
#![forbid(unsafe_code)]
