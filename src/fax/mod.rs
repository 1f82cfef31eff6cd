//! Fax: the spandsp wrapper (the one module allowed `unsafe`), UDPTL framing, and document
//! conversion (spandsp's received TIFF → PDF; later PDF/images → fax pages).

pub mod engine;
pub mod pdf;
#[cfg(test)]
pub(crate) mod testutil;
pub mod tiff;
pub mod udptl;
