//! coda: voicemail, fax and secure media gateway.
//!
//! Layers, dependencies pointing down: `cli` → `server` (tokio shell) → `apps` (call flows,
//! sans-IO) → `media`, `sip`, `sdp`, `rtp` (protocol machines, sans-IO) → `codecs`.
//! `store` and `mail` are the shell's I/O back ends.
//!
//! No `unsafe` here; the spandsp wrapper (fax) will be the one module allowed it.
#![deny(unsafe_code)]

pub mod admin;
pub mod apps;
pub mod cli;
pub mod config;
pub mod fax;
pub mod mail;
pub mod media;
pub mod numbering;
pub mod rtp;
pub mod sdp;
pub mod server;
pub mod sip;
pub mod store;
