//! Call flows as sans-IO machines: they never touch sockets, files or the clock. The shell
//! feeds them audio, digits and time and carries out what they ask.

pub mod deposit;
pub mod fax_loopback;
pub mod fax_rx;
pub mod mwi;
pub mod pin;
pub mod retrieval;
pub mod routing;
pub mod say;

use std::sync::Arc;

/// Where call flows get prompt audio from (8 kHz mono samples), by catalogue id.
pub trait PromptSource {
    fn prompt(&self, id: &str) -> Option<Arc<[i16]>>;
}

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;
