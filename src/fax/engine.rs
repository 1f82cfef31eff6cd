//! The safe wrapper over spandsp (`spandsp-sys`): the only module of coda allowed `unsafe`.
//!
//! Two engines, both driven by sample count (time is passed in; nothing here reads a clock):
//!
//! * [`AudioFax`] — T.30 over V.17/V.29/V.27ter modems on 8 kHz linear audio (G.711
//!   passthrough), `fax_init` / `fax_rx` / `fax_tx` in 160-sample blocks.
//! * [`T38Fax`] — T.30 over T.38 IFP packets, `t38_terminal_init` / `t38_core_rx_ifp_packet` /
//!   `t38_terminal_send_timeout`. UDPTL framing is [`super::udptl`]'s job, not spandsp's.
//!
//! Ownership: each engine owns its spandsp state (allocated by spandsp's `*_init(NULL, ..)`,
//! released by `*_free` in `Drop`) and a boxed [`Shared`] block whose address is the
//! `user_data` of every callback. Callbacks do nothing but push into queues in that block;
//! the owner drains them with `poll_event` / `poll_ifp`. spandsp's log goes to `tracing`
//! (target `coda::fax::spandsp`).
//!
//! spandsp writes received pages into a TIFF file and reads pages to send from one (libtiff);
//! we ask for T.6 (MMR) output so the strips can go into a PDF without re-encoding.

#![allow(unsafe_code)]

use std::collections::VecDeque;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;
use std::ptr::NonNull;

use spandsp_sys as sys;

/// Constants of spandsp's `t4_rx.h` / `t4_tx.h` that `spandsp-sys` 0.2.4's bindgen allowlist
/// leaves out. Values copied from the vendored headers
/// (`vendor/src/spandsp/t4_rx.h`: `t4_image_compression_t`, `T4_RESOLUTION_*`,
/// `T4_SUPPORT_*`), which match upstream spandsp.
pub mod t4 {
    /// T.4 1-D (MH).
    pub const COMPRESSION_T4_1D: i32 = 0x02;
    /// T.4 2-D (MR).
    pub const COMPRESSION_T4_2D: i32 = 0x04;
    /// T.6 (MMR, Group 4).
    pub const COMPRESSION_T6: i32 = 0x08;

    /// R8 × 3.85 lines/mm (204 × 98 dpi): "standard".
    pub const RESOLUTION_R8_STANDARD: i32 = 0x1;
    /// R8 × 7.7 lines/mm (204 × 196 dpi): "fine".
    pub const RESOLUTION_R8_FINE: i32 = 0x2;
    /// R8 × 15.4 lines/mm (204 × 391 dpi): "superfine".
    pub const RESOLUTION_R8_SUPERFINE: i32 = 0x4;
    /// 200 × 100 dpi.
    pub const RESOLUTION_200_100: i32 = 0x20;
    /// 200 × 200 dpi.
    pub const RESOLUTION_200_200: i32 = 0x40;
    /// 200 × 400 dpi.
    pub const RESOLUTION_200_400: i32 = 0x80;

    /// 215 mm wide pages (1728 px at R8): A4 and Letter.
    pub const SUPPORT_WIDTH_215MM: i32 = 0x01;
    /// Pages of any length.
    pub const SUPPORT_LENGTH_UNLIMITED: i32 = 0x10000;
    /// A4 length.
    pub const SUPPORT_LENGTH_A4: i32 = 0x20000;
    /// B4 length.
    pub const SUPPORT_LENGTH_B4: i32 = 0x40000;
    /// US Letter length.
    pub const SUPPORT_LENGTH_US_LETTER: i32 = 0x80000;
    /// US Legal length.
    pub const SUPPORT_LENGTH_US_LEGAL: i32 = 0x100000;
}

/// Samples per 20 ms block at 8 kHz.
pub const BLOCK: usize = 160;

/// Which way the document goes.
#[derive(Clone, Debug)]
pub enum Document<'a> {
    /// Receive pages into this TIFF file (created or truncated by spandsp).
    Receive(&'a Path),
    /// Send the pages of this TIFF file.
    Send(&'a Path),
}

/// T.30 settings common to audio and T.38.
#[derive(Clone, Debug)]
pub struct T30Options {
    /// Our station identifier (TSI/CSI), at most 20 characters of digits, `+` and space.
    pub ident: String,
    /// Page header text for pages we send (at most 50 characters); `None` for no header.
    pub header_info: Option<String>,
    /// Offer error-correcting mode.
    pub ecm: bool,
    /// Offer V.17 (14400 bit/s); V.29 and V.27ter are always offered.
    pub v17: bool,
    /// True when we placed the call (T.30 "calling party").
    pub calling_party: bool,
}

impl Default for T30Options {
    fn default() -> Self {
        Self {
            ident: String::new(),
            header_info: None,
            ecm: true,
            v17: true,
            calling_party: false,
        }
    }
}

/// T.38 parameters negotiated in SDP, applied to the T.38 core (both when the far end
/// re-INVITEd and when we did: see `reference/fax.md` §2.3).
#[derive(Clone, Copy, Debug)]
pub struct T38Options {
    /// `T38FaxVersion` agreed (0 uses the 1998 ASN.1 with its typo; ≥1 the 2002 one).
    pub version: u8,
    /// `T38MaxBitRate` agreed.
    pub max_bit_rate: u32,
    /// `T38FaxMaxBuffer` of the far end.
    pub max_buffer: u32,
    /// Largest IFP the far end accepts, in bytes (derived from its `T38FaxMaxDatagram`).
    pub max_ifp: u32,
    /// `T38FaxFillBitRemoval` agreed.
    pub fill_bit_removal: bool,
}

impl Default for T38Options {
    fn default() -> Self {
        Self {
            version: 0,
            max_bit_rate: 14_400,
            max_buffer: 2000,
            max_ifp: 400,
            fill_bit_removal: false,
        }
    }
}

/// Errors creating an engine. These are coda's (or the host's) fault, never the peer's.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// spandsp returned NULL from an init call.
    #[error("spandsp could not allocate a {0} context")]
    Init(&'static str),
    /// A path or string had an interior NUL or was not UTF-8.
    #[error("invalid {0} for spandsp")]
    BadString(&'static str),
    /// A T.30 setting was refused.
    #[error("spandsp refused {0}")]
    Refused(&'static str),
}

/// Transfer statistics (`t30_stats_t`, in coda's units).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaxStats {
    /// Signalling rate of the image data, bit/s.
    pub bit_rate: u32,
    /// Error-correcting mode was used.
    pub ecm: bool,
    /// Pages sent so far.
    pub pages_tx: u32,
    /// Pages received so far.
    pub pages_rx: u32,
    /// Horizontal resolution of the last page, pixels per metre.
    pub x_resolution: u32,
    /// Vertical resolution of the last page, pixels per metre.
    pub y_resolution: u32,
    /// Width of the last page in pixels.
    pub width: u32,
    /// Length of the last page in rows.
    pub length: u32,
    /// Rows of the last page that arrived damaged (non-ECM only).
    pub bad_rows: u32,
    /// Longest run of damaged rows in the last page.
    pub longest_bad_row_run: u32,
    /// Line compression of the last page (a `t4::COMPRESSION_*` bit).
    pub compression: i32,
}

impl FaxStats {
    fn from_sys(s: &sys::t30_stats_t) -> Self {
        let u = |v: c_int| u32::try_from(v).unwrap_or(0);
        Self {
            bit_rate: u(s.bit_rate),
            ecm: s.error_correcting_mode != 0,
            pages_tx: u(s.pages_tx),
            pages_rx: u(s.pages_rx),
            x_resolution: u(s.x_resolution),
            y_resolution: u(s.y_resolution),
            width: u(s.width),
            length: u(s.length),
            bad_rows: u(s.bad_rows),
            longest_bad_row_run: u(s.longest_bad_row_run),
            compression: s.compression,
        }
    }
}

/// How a fax session ended (T.30 phase E).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaxOutcome {
    /// spandsp's completion code (`T30_ERR_*`); 0 is success.
    pub code: i32,
    /// spandsp's text for the code.
    pub text: String,
    /// The far end's station identifier (its TSI or CSI), trimmed.
    pub remote_ident: String,
    /// Statistics at the end.
    pub stats: FaxStats,
}

impl FaxOutcome {
    /// True when T.30 reported success.
    pub fn ok(&self) -> bool {
        self.code == 0
    }
}

/// What an engine reports, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaxEvent {
    /// Phase B: the machines exchanged capabilities (a fax is really on the line).
    Negotiating,
    /// Phase D: a page ended (received or sent); statistics as of that page.
    PageDone(FaxStats),
    /// Phase E: the session is over.
    Finished(FaxOutcome),
}

/// The callback side: its address is `user_data` for every callback of one engine.
struct Shared {
    t30: *mut sys::t30_state_t,
    events: VecDeque<FaxEvent>,
    ifps: VecDeque<(Vec<u8>, u32)>,
    negotiating: bool,
    finished: bool,
}

impl Shared {
    fn new() -> Box<Self> {
        Box::new(Self {
            t30: std::ptr::null_mut(),
            events: VecDeque::new(),
            ifps: VecDeque::new(),
            negotiating: false,
            finished: false,
        })
    }

    fn stats(&self) -> FaxStats {
        if self.t30.is_null() {
            return FaxStats::default();
        }
        let mut s = zeroed_stats();
        // SAFETY: `t30` points into the engine that owns this `Shared` and outlives it (the
        // engine frees spandsp state only in its `Drop`, after which no callback can run);
        // `s` is a valid, writable `t30_stats_t`.
        unsafe { sys::t30_get_transfer_statistics(self.t30, &mut s) };
        FaxStats::from_sys(&s)
    }

    fn remote_ident(&self) -> String {
        if self.t30.is_null() {
            return String::new();
        }
        // SAFETY: as in `stats`; spandsp returns a pointer to a NUL-terminated buffer inside
        // the T.30 state (or NULL), valid until the state changes, and we copy it at once.
        let p = unsafe { sys::t30_get_rx_ident(self.t30) };
        cstr_lossy(p).trim().to_string()
    }
}

fn zeroed_stats() -> sys::t30_stats_t {
    // SAFETY: `t30_stats_t` is a plain C struct of integers (bindgen `#[repr(C)]`), for which
    // all-zero bytes are a valid value.
    unsafe { std::mem::zeroed() }
}

fn cstr_lossy(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: callers pass pointers spandsp documents as NUL-terminated strings.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// spandsp's text for a T.30 completion code.
pub fn completion_text(code: i32) -> String {
    // SAFETY: `t30_completion_code_to_str` returns a pointer to a static string for any value.
    cstr_lossy(unsafe { sys::t30_completion_code_to_str(code) })
}

extern "C" fn on_phase_b(user_data: *mut c_void, _result: c_int) -> c_int {
    // SAFETY: `user_data` is the `Box<Shared>` of the engine that registered this callback;
    // spandsp calls it only from within a call we make through `&mut` engine, so there is no
    // other live reference to `Shared` at this point.
    let shared = unsafe { &mut *(user_data as *mut Shared) };
    if !shared.negotiating {
        shared.negotiating = true;
        shared.events.push_back(FaxEvent::Negotiating);
    }
    sys::t30_err_e::T30_ERR_OK as c_int
}

extern "C" fn on_phase_d(user_data: *mut c_void, _result: c_int) -> c_int {
    // SAFETY: see `on_phase_b`.
    let shared = unsafe { &mut *(user_data as *mut Shared) };
    let stats = shared.stats();
    shared.events.push_back(FaxEvent::PageDone(stats));
    sys::t30_err_e::T30_ERR_OK as c_int
}

extern "C" fn on_phase_e(user_data: *mut c_void, completion_code: c_int) {
    // SAFETY: see `on_phase_b`.
    let shared = unsafe { &mut *(user_data as *mut Shared) };
    if shared.finished {
        return;
    }
    shared.finished = true;
    let outcome = FaxOutcome {
        code: completion_code,
        text: completion_text(completion_code),
        remote_ident: shared.remote_ident(),
        stats: shared.stats(),
    };
    shared.events.push_back(FaxEvent::Finished(outcome));
}

extern "C" fn on_t38_tx(
    _core: *mut sys::t38_core_state_t,
    user_data: *mut c_void,
    buf: *const u8,
    len: c_int,
    count: c_int,
) -> c_int {
    // SAFETY: see `on_phase_b`.
    let shared = unsafe { &mut *(user_data as *mut Shared) };
    let Ok(len) = usize::try_from(len) else {
        return -1;
    };
    if buf.is_null() {
        return -1;
    }
    // SAFETY: spandsp passes `len` readable bytes at `buf` for the duration of the call.
    let ifp = unsafe { std::slice::from_raw_parts(buf, len) }.to_vec();
    shared
        .ifps
        .push_back((ifp, u32::try_from(count).unwrap_or(1).max(1)));
    0
}

extern "C" fn on_log(_user_data: *mut c_void, level: c_int, text: *const c_char) {
    let text = cstr_lossy(text);
    let text = text.trim_end();
    let level = u32::try_from(level & sys::SPAN_LOG_SEVERITY_MASK as c_int).unwrap_or(0);
    if level <= sys::SPAN_LOG_WARNING {
        tracing::warn!(target: "coda::fax::spandsp", "{text}");
    } else if level <= sys::SPAN_LOG_PROTOCOL_WARNING {
        tracing::info!(target: "coda::fax::spandsp", "{text}");
    } else if level <= sys::SPAN_LOG_FLOW {
        tracing::debug!(target: "coda::fax::spandsp", "{text}");
    } else {
        tracing::trace!(target: "coda::fax::spandsp", "{text}");
    }
}

/// Route one spandsp logging context into `tracing`, at a level matching what is enabled.
fn bridge_log(log: *mut sys::logging_state_t) {
    if log.is_null() {
        return;
    }
    let level = if tracing::enabled!(target: "coda::fax::spandsp", tracing::Level::TRACE) {
        sys::SPAN_LOG_DEBUG_3
    } else if tracing::enabled!(target: "coda::fax::spandsp", tracing::Level::DEBUG) {
        sys::SPAN_LOG_FLOW
    } else {
        sys::SPAN_LOG_PROTOCOL_WARNING
    };
    // SAFETY: `log` is a logging context inside a live spandsp state; the handler is a plain
    // function that ignores `user_data`.
    unsafe {
        sys::span_log_set_message_handler(log, Some(on_log), std::ptr::null_mut());
        sys::span_log_set_level(
            log,
            (level | sys::SPAN_LOG_SHOW_PROTOCOL | sys::SPAN_LOG_SHOW_SEVERITY) as c_int,
        );
    }
}

/// Apply [`T30Options`] and the document to a T.30 context, and hook its callbacks.
///
/// # Safety
/// `t30` must be a live T.30 context and `shared` must stay at a fixed address for as long
/// as that context exists.
unsafe fn setup_t30(
    t30: *mut sys::t30_state_t,
    shared: &mut Shared,
    opts: &T30Options,
    doc: &Document<'_>,
) -> Result<(), EngineError> {
    let ident = CString::new(opts.ident.as_str()).map_err(|_| EngineError::BadString("ident"))?;
    let path = match doc {
        Document::Receive(p) | Document::Send(p) => p
            .to_str()
            .and_then(|s| CString::new(s).ok())
            .ok_or(EngineError::BadString("path"))?,
    };
    let user = shared as *mut Shared as *mut c_void;
    shared.t30 = t30;
    let mut modems = sys::T30_SUPPORT_V27TER | sys::T30_SUPPORT_V29;
    if opts.v17 {
        modems |= sys::T30_SUPPORT_V17;
    }
    // SAFETY: (for the whole block) `t30` is live per this function's contract; strings are
    // NUL-terminated and copied by spandsp; callbacks have the exact C signatures spandsp
    // declares and `user` outlives the context.
    unsafe {
        if !opts.ident.is_empty() && sys::t30_set_tx_ident(t30, ident.as_ptr()) < 0 {
            return Err(EngineError::Refused("station identifier"));
        }
        if let Some(h) = &opts.header_info {
            let h = CString::new(h.as_str()).map_err(|_| EngineError::BadString("header"))?;
            if sys::t30_set_tx_page_header_info(t30, h.as_ptr()) < 0 {
                return Err(EngineError::Refused("page header"));
            }
        }
        sys::t30_set_supported_modems(t30, modems as c_int);
        sys::t30_set_supported_compressions(
            t30,
            t4::COMPRESSION_T4_1D | t4::COMPRESSION_T4_2D | t4::COMPRESSION_T6,
        );
        sys::t30_set_supported_bilevel_resolutions(
            t30,
            t4::RESOLUTION_R8_STANDARD
                | t4::RESOLUTION_R8_FINE
                | t4::RESOLUTION_R8_SUPERFINE
                | t4::RESOLUTION_200_100
                | t4::RESOLUTION_200_200
                | t4::RESOLUTION_200_400,
        );
        sys::t30_set_supported_colour_resolutions(t30, 0);
        sys::t30_set_supported_image_sizes(
            t30,
            t4::SUPPORT_WIDTH_215MM
                | t4::SUPPORT_LENGTH_A4
                | t4::SUPPORT_LENGTH_US_LETTER
                | t4::SUPPORT_LENGTH_US_LEGAL
                | t4::SUPPORT_LENGTH_B4
                | t4::SUPPORT_LENGTH_UNLIMITED,
        );
        sys::t30_set_ecm_capability(t30, opts.ecm);
        sys::t30_set_phase_b_handler(t30, Some(on_phase_b), user);
        sys::t30_set_phase_d_handler(t30, Some(on_phase_d), user);
        sys::t30_set_phase_e_handler(t30, Some(on_phase_e), user);
        bridge_log(sys::t30_get_logging_state(t30));
        match doc {
            Document::Receive(_) => {
                // T.6 strips go into a PDF as they are (fax.md §0.2).
                sys::t30_set_supported_output_compressions(t30, t4::COMPRESSION_T6);
                sys::t30_set_rx_file(t30, path.as_ptr(), -1);
            }
            Document::Send(_) => sys::t30_set_tx_file(t30, path.as_ptr(), -1, -1),
        }
    }
    Ok(())
}

/// Common accessors of both engines.
macro_rules! engine_common {
    () => {
        /// The next event, in order.
        pub fn poll_event(&mut self) -> Option<FaxEvent> {
            self.shared.events.pop_front()
        }

        /// True until T.30 has finished (phase E reported).
        pub fn is_active(&self) -> bool {
            !self.shared.finished
        }

        /// Current transfer statistics.
        pub fn stats(&self) -> FaxStats {
            self.shared.stats()
        }

        /// The far end's station identifier, if it has sent one.
        pub fn remote_ident(&self) -> String {
            self.shared.remote_ident()
        }

        /// End the session now (call hung up): T.30 reports phase E with whatever state it
        /// was in, so pages already received are flushed to the file.
        pub fn terminate(&mut self) {
            if self.shared.finished {
                return;
            }
            // SAFETY: the T.30 context is live (owned by `self`); terminating it runs the phase
            // E callback synchronously, which only touches `self.shared`.
            unsafe { sys::t30_terminate(self.shared.t30) };
            if !self.shared.finished {
                // spandsp reports nothing when no fax ever started; report the hang-up.
                on_phase_e(
                    &mut *self.shared as *mut Shared as *mut c_void,
                    sys::t30_err_e::T30_ERR_CALLDROPPED as c_int,
                );
            }
        }
    };
}

/// T.30 over audio (G.711 passthrough).
pub struct AudioFax {
    state: NonNull<sys::fax_state_t>,
    shared: Box<Shared>,
}

// SAFETY: an `AudioFax` exclusively owns its spandsp state and callback block; spandsp keeps
// no thread-local or global state for them (the global log handler is never set), so moving
// the whole engine to another thread is sound. It is not `Sync`: all access goes via `&mut`.
unsafe impl Send for AudioFax {}

impl AudioFax {
    /// A new audio fax engine for one call.
    pub fn new(opts: &T30Options, doc: Document<'_>) -> Result<Self, EngineError> {
        // SAFETY: with a NULL state spandsp allocates one, or returns NULL.
        let raw = unsafe { sys::fax_init(std::ptr::null_mut(), opts.calling_party) };
        let state = NonNull::new(raw).ok_or(EngineError::Init("fax"))?;
        let mut engine = Self {
            state,
            shared: Shared::new(),
        };
        // SAFETY: the state is live; the T.30 context it returns lives inside it; `shared` is
        // boxed so its address is stable for the engine's life.
        unsafe {
            let s = engine.state.as_ptr();
            sys::fax_set_transmit_on_idle(s, 1);
            sys::fax_set_tep_mode(s, 0);
            bridge_log(sys::fax_get_logging_state(s));
            let t30 = sys::fax_get_t30_state(s);
            if t30.is_null() {
                return Err(EngineError::Init("T.30"));
            }
            setup_t30(t30, &mut engine.shared, opts, &doc)?;
        }
        Ok(engine)
    }

    /// Feed received audio (8 kHz linear). Any length; normally one 160-sample block.
    pub fn rx(&mut self, pcm: &[i16]) {
        // `fax_rx` filters the samples in place (DC restore), so it gets a copy of ours.
        for chunk in pcm.chunks(BLOCK) {
            let mut buf = [0i16; BLOCK];
            buf[..chunk.len()].copy_from_slice(chunk);
            let n = chunk.len() as c_int; // at most BLOCK
                                          // SAFETY: `buf` is a writable local of at least `n` samples; spandsp reads and
                                          // rewrites them during the call and keeps no pointer.
            unsafe { sys::fax_rx(self.state.as_ptr(), buf.as_mut_ptr(), n) };
        }
    }

    /// Tell the engine `samples` of audio were lost (keeps its clock running).
    pub fn rx_fillin(&mut self, samples: usize) {
        let Ok(n) = c_int::try_from(samples) else {
            return;
        };
        // SAFETY: the state is live; no buffers involved.
        unsafe { sys::fax_rx_fillin(self.state.as_ptr(), n) };
    }

    /// Produce audio to send; fills `out` completely (silence when idle).
    pub fn tx(&mut self, out: &mut [i16]) {
        let Ok(n) = c_int::try_from(out.len()) else {
            return;
        };
        // SAFETY: spandsp writes at most `n` samples into `out`.
        let got = unsafe { sys::fax_tx(self.state.as_ptr(), out.as_mut_ptr(), n) };
        let got = usize::try_from(got).unwrap_or(0).min(out.len());
        out[got..].fill(0);
    }

    engine_common!();
}

impl Drop for AudioFax {
    fn drop(&mut self) {
        // SAFETY: the state was allocated by `fax_init(NULL, ..)` and is freed exactly once;
        // callbacks cannot run after this.
        unsafe { sys::fax_free(self.state.as_ptr()) };
    }
}

/// T.30 over T.38 (a T.38 terminal).
pub struct T38Fax {
    state: NonNull<sys::t38_terminal_state_t>,
    shared: Box<Shared>,
}

// SAFETY: as for `AudioFax`.
unsafe impl Send for T38Fax {}

impl T38Fax {
    /// A new T.38 terminal for one call, with the parameters agreed in SDP.
    pub fn new(
        opts: &T30Options,
        t38: &T38Options,
        doc: Document<'_>,
    ) -> Result<Self, EngineError> {
        let mut shared = Shared::new();
        let user = &mut *shared as *mut Shared as *mut c_void;
        // SAFETY: with a NULL state spandsp allocates one or returns NULL; `user` is the boxed
        // callback block, which moves into the engine below without changing address.
        let raw = unsafe {
            sys::t38_terminal_init(
                std::ptr::null_mut(),
                opts.calling_party,
                Some(on_t38_tx),
                user,
            )
        };
        let state = NonNull::new(raw).ok_or(EngineError::Init("T.38 terminal"))?;
        let mut engine = Self { state, shared };
        // SAFETY: the state is live; the T.38 core and T.30 contexts live inside it.
        unsafe {
            let s = engine.state.as_ptr();
            bridge_log(sys::t38_terminal_get_logging_state(s));
            let core = sys::t38_terminal_get_t38_core_state(s);
            if core.is_null() {
                return Err(EngineError::Init("T.38 core"));
            }
            bridge_log(sys::t38_core_get_logging_state(core));
            sys::t38_set_t38_version(core, c_int::from(t38.version));
            sys::t38_set_max_buffer_size(core, c_int::try_from(t38.max_buffer).unwrap_or(2000));
            sys::t38_set_fastest_image_data_rate(
                core,
                c_int::try_from(t38.max_bit_rate).unwrap_or(14_400),
            );
            sys::t38_set_fill_bit_removal(core, t38.fill_bit_removal);
            sys::t38_set_mmr_transcoding(core, false);
            sys::t38_set_jbig_transcoding(core, false);
            sys::t38_set_max_datagram_size(core, c_int::try_from(t38.max_ifp).unwrap_or(400));
            // Transferred TCF (2) for UDP; the value is stored, not used, by spandsp terminals.
            sys::t38_set_data_rate_management_method(core, 2);
            sys::t38_terminal_set_config(s, 0);
            sys::t38_terminal_set_tep_mode(s, false);
            sys::t38_terminal_set_fill_bit_removal(s, t38.fill_bit_removal);
            let t30 = sys::t38_terminal_get_t30_state(s);
            if t30.is_null() {
                return Err(EngineError::Init("T.30"));
            }
            setup_t30(t30, &mut engine.shared, opts, &doc)?;
        }
        Ok(engine)
    }

    /// Hand one received IFP (already recovered from UDPTL) to the terminal.
    pub fn rx_ifp(&mut self, ifp: &[u8], seq: u16) {
        let Ok(n) = c_int::try_from(ifp.len()) else {
            return;
        };
        // SAFETY: spandsp reads `n` bytes and does not keep the pointer; the core is live.
        unsafe {
            let core = sys::t38_terminal_get_t38_core_state(self.state.as_ptr());
            sys::t38_core_rx_ifp_packet(core, ifp.as_ptr(), n, seq);
        }
    }

    /// Let `samples` (1/8000 s) of time pass: drives T.30 timers and paced output.
    pub fn advance(&mut self, samples: usize) {
        let Ok(n) = c_int::try_from(samples) else {
            return;
        };
        // SAFETY: the state is live.
        unsafe { sys::t38_terminal_send_timeout(self.state.as_ptr(), n) };
    }

    /// The next IFP to send and how many times spandsp asks for it to be sent.
    pub fn poll_ifp(&mut self) -> Option<(Vec<u8>, u32)> {
        self.shared.ifps.pop_front()
    }

    engine_common!();
}

impl Drop for T38Fax {
    fn drop(&mut self) {
        // SAFETY: allocated by `t38_terminal_init(NULL, ..)`, freed exactly once.
        unsafe { sys::t38_terminal_free(self.state.as_ptr()) };
    }
}

/// `MODEM_CONNECT_TONES_FAX_CNG` of `modem_connect_tones.h` (an anonymous enum bindgen left
/// out): the calling fax machine's 1100 Hz tone, 0.5 s on, 3 s off.
const MODEM_CONNECT_TONES_FAX_CNG: c_int = 1;

/// Listens for a calling fax machine (CNG) in audio, e.g. during a voicemail greeting.
pub struct CngDetector {
    state: NonNull<sys::modem_connect_tones_rx_state_t>,
    heard: Box<bool>,
}

// SAFETY: as for `AudioFax`: exclusive ownership, no thread-bound state in spandsp.
unsafe impl Send for CngDetector {}

extern "C" fn on_tone(user_data: *mut c_void, code: c_int, _level: c_int, _delay: c_int) {
    if code == MODEM_CONNECT_TONES_FAX_CNG {
        // SAFETY: `user_data` is the detector's boxed flag, alive while the detector is, and
        // only touched from calls made through `&mut CngDetector`.
        unsafe { *(user_data as *mut bool) = true };
    }
}

impl CngDetector {
    /// A new detector.
    pub fn new() -> Result<Self, EngineError> {
        let mut heard = Box::new(false);
        let user = &mut *heard as *mut bool as *mut c_void;
        // SAFETY: NULL state: spandsp allocates; the callback has the C signature spandsp
        // declares; `user` is a boxed flag that moves with the detector without changing
        // address.
        let raw = unsafe {
            sys::modem_connect_tones_rx_init(
                std::ptr::null_mut(),
                MODEM_CONNECT_TONES_FAX_CNG,
                Some(on_tone),
                user,
            )
        };
        let state = NonNull::new(raw).ok_or(EngineError::Init("CNG detector"))?;
        Ok(Self { state, heard })
    }

    /// Feed audio; true once CNG has been recognised (it stays true).
    pub fn process(&mut self, pcm: &[i16]) -> bool {
        if !*self.heard {
            if let Ok(n) = c_int::try_from(pcm.len()) {
                // SAFETY: spandsp reads `n` samples; the state is live.
                unsafe { sys::modem_connect_tones_rx(self.state.as_ptr(), pcm.as_ptr(), n) };
            }
        }
        *self.heard
    }
}

impl Drop for CngDetector {
    fn drop(&mut self) {
        // SAFETY: allocated by `modem_connect_tones_rx_init(NULL, ..)`, freed once.
        unsafe { sys::modem_connect_tones_rx_free(self.state.as_ptr()) };
    }
}

/// What went wrong, in the terms an owner or sender cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    Ok,
    NoFaxMachine,
    PoorLine,
    Unsupported,
    HungUp,
    DataStopped,
    OurStorage,
    FarEndStopped,
    Other,
}

impl Cause {
    /// The group of a T.30 completion code (`T30_ERR_*`).
    pub fn of(code: i32) -> Self {
        use sys::t30_err_e as E;
        let is = |e: E| code == e as i32;
        let within = |a: E, b: E| (a as i32..=b as i32).contains(&code);
        if is(E::T30_ERR_OK) {
            Cause::Ok
        } else if is(E::T30_ERR_CEDTONE)
            || is(E::T30_ERR_T0_EXPIRED)
            || is(E::T30_ERR_T1_EXPIRED)
            || is(E::T30_ERR_RX_NOFAX)
            || is(E::T30_ERR_TX_NODIS)
        {
            Cause::NoFaxMachine
        } else if is(E::T30_ERR_CANNOT_TRAIN) || is(E::T30_ERR_HDLC_CARRIER) {
            Cause::PoorLine
        } else if within(E::T30_ERR_INCOMPATIBLE, E::T30_ERR_NOSIZESUPPORT) {
            Cause::Unsupported
        } else if is(E::T30_ERR_CALLDROPPED) {
            Cause::HungUp
        } else if is(E::T30_ERR_RX_NOCARRIER) || is(E::T30_ERR_RX_NOEOL) {
            Cause::DataStopped
        } else if within(E::T30_ERR_FILEERROR, E::T30_ERR_NOMEM) {
            Cause::OurStorage
        } else if within(E::T30_ERR_TX_BADDCS, E::T30_ERR_TX_T5EXP)
            || within(E::T30_ERR_RX_ECMPHD, E::T30_ERR_RX_DCNNORTN)
        {
            Cause::FarEndStopped
        } else {
            Cause::Other
        }
    }
}

/// A short English explanation of a T.30 completion code for the owner of a received fax, in
/// words rather than a code alone.
pub fn explain(code: i32) -> &'static str {
    match Cause::of(code) {
        Cause::Ok => "The fax was received completely.",
        Cause::NoFaxMachine => {
            "No fax machine answered the handshake: the caller was probably not a fax machine."
        }
        Cause::PoorLine => "The two fax machines could not agree on a working speed (a poor line).",
        Cause::Unsupported => {
            "The sending machine asked for a page format or resolution we do not support."
        }
        Cause::HungUp => "The call was hung up before the fax was finished.",
        Cause::DataStopped => {
            "The page data stopped arriving part way through (line noise or a dropped connection)."
        }
        Cause::OurStorage => "The fax server could not store the pages (a problem on our side).",
        Cause::FarEndStopped => {
            "The sending machine stopped responding during the transfer (timeout or disconnect)."
        }
        Cause::Other => "The fax transfer failed.",
    }
}

/// The sender's side of [`explain`]: a T.30 completion code in words for the person whose
/// fax coda sent.
pub fn explain_sent(code: i32) -> &'static str {
    match Cause::of(code) {
        Cause::Ok => "The fax was sent completely.",
        Cause::NoFaxMachine => "No fax machine answered at that number.",
        Cause::PoorLine => "The two fax machines could not agree on a working speed (a poor line).",
        Cause::Unsupported => {
            "The receiving fax machine cannot accept this page format or resolution."
        }
        Cause::HungUp => "The call was hung up before the fax was finished.",
        Cause::DataStopped | Cause::FarEndStopped => {
            "The receiving fax machine stopped responding or refused a page."
        }
        Cause::OurStorage => "The document could not be read for sending (a problem on our side).",
        Cause::Other => "The fax transfer failed.",
    }
}

#[cfg(test)]
mod tests;
