//! Pure, dependency-free telephony signal code: G.711 A-law and µ-law, RFC 4733
//! telephone-events, tone generation and small resampling helpers.
#![forbid(unsafe_code)]

pub mod g711;
pub mod resample;
pub mod telephone_event;
pub mod tone;

pub use g711::Law;
