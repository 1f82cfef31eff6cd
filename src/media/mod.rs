//! Per-call media: prompt loading, in-band DTMF detection and level measurement.

pub mod dtmf_detect;
pub mod level;
pub mod prompts;
