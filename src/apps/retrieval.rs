//! Voicemail retrieval: login, message playback with envelopes, mailbox options.
//!
//! A sans-IO machine like [`deposit`](super::deposit). Polling contract (all with `now`):
//! - every 20 ms `poll_audio(now)` gives the next frame to send (prompt, message or silence);
//! - `handle_dtmf` with each digit, `handle_audio` with each decoded caller frame (used only
//!   while recording a greeting), `handle_hangup` when the caller hangs up;
//! - `poll_event` after any input; the shell answers some events with a `handle_*` call:
//!   [`Event::CheckPin`] → [`Retrieval::handle_login_result`],
//!   [`Event::LoadMailbox`] → [`Retrieval::handle_mailbox`],
//!   [`Event::LoadMessage`] → [`Retrieval::handle_message_audio`],
//!   [`Event::ChangePin`] → [`Retrieval::handle_pin_changed`];
//! - `poll_timeout`/`handle_timeout` for no-input, recording and shell-answer limits.
//!
//! # Flow
//! "Welcome to voicemail." If the shell knows the mailbox from the caller's identity, "Please
//! enter your PIN followed by the hash key"; otherwise (or when `*` is pressed at the PIN prompt)
//! "Please enter your mailbox number followed by the hash key" first. After a good PIN: a forced
//! PIN change if the store says so, then (first login) recording the owner's name, then "You
//! have N new messages and M saved messages" and straight into the first message. Each message
//! is "Message 3, from extension 7 7 5 1 3, received today at 3 42 p m", then the audio, then a
//! short menu prompt. New messages come first, each group oldest first (both configurable).
//!
//! # Key map (spoken by the help prompts, `*`)
//!
//! While a message is selected (envelope, playback, or the menu after it):
//!
//! | key | action |
//! |-----|--------|
//! | 1 | back 5 s (during playback); after the message, replay its last 5 s |
//! | 2 | pause / carry on (during playback) |
//! | 3 | forward 5 s (during playback) |
//! | 4 | previous message |
//! | 5 | hear the message again (without the envelope) |
//! | 6 | next message |
//! | 7 | delete the message (then the next one); on a deleted message: undelete it |
//! | 8 | hear the envelope (who, when) again |
//! | 9 | save the message, undeleting it if need be (then the next one) |
//! | 0 | main menu |
//! | * | help |
//! | # | exit (goodbye) |
//!
//! Main menu: `1` listen to the messages from the first, `0` mailbox options, `*` help (counts
//! and this menu again), `#` exit.
//!
//! Mailbox options: `1` unavailable greeting, `2` busy greeting, `3` name, `4` temporary greeting
//! (`1` record, `2` remove, `0` back), `5` change PIN, `0` main menu, `*` repeat, `#` exit.
//! After a recording (stopped by `#` or any key, or at the length limit): `1` listen, `2` keep,
//! `3` re-record, `0` discard and go back, `*` repeat, `#` exit. Entering a new PIN: `*` cancels
//! (not when the change is forced).
//!
//! Deletions and saves take effect only at the end of the call: the machine emits exactly one
//! [`Event::Commit`] when the call ends (goodbye or hang-up), if the mailbox was loaded. A new
//! message counts as saved (moves to the saved folder) once its playback started, or when `9`
//! was pressed; `7` wins over both.
//!
//! # Robustness
//! Digits barge into prompts (the prompt stops and the digit acts). Digits typed while the
//! machine waits for the shell (PIN check, mailbox load, PIN change) are kept, at most
//! [`MAX_TYPEAHEAD`], and acted on afterwards. Digit entries hold at most [`MAX_PIN_DIGITS`]
//! digits; a longer PIN completed with `#` is sent as a wrong attempt (`pin: None`), so it
//! counts but can never match. `#` alone re-prompts without a PIN check. No input re-prompts; after
//! `max_timeouts` consecutive timeouts the machine says goodbye. PIN digits are held in
//! [`Pin`] (redacted `Debug`, wiped on drop) and the machine's own `Debug` shows only its phase.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono_tz::Tz;

use super::pin::{check_new_pin, Pin, PinPolicy, MAX_PIN_DIGITS};
use super::say;
use super::{PromptSource, FRAME};
use crate::numbering::NumberingPlan;
use crate::store::GreetingKind;

/// Digits kept while the machine waits for the shell.
pub const MAX_TYPEAHEAD: usize = 32;

/// Samples per second of all audio.
const RATE: usize = 8000;

/// Behaviour of a retrieval call; every number configurable.
#[derive(Debug, Clone)]
pub struct RetrievalConfig {
    /// Silence after a prompt (or between digits of an entry) before it counts as no input.
    pub input_timeout: Duration,
    /// Consecutive no-input timeouts before goodbye.
    pub max_timeouts: u32,
    /// Wrong PINs allowed in one call before goodbye (the store counts across calls anyway).
    pub max_pin_tries: u32,
    /// Failed attempts at choosing a new PIN before giving up.
    pub max_new_pin_tries: u32,
    /// Skip step of keys 1 and 3 during playback.
    pub skip: Duration,
    /// Longest pause (key 2) before playback carries on by itself.
    pub max_pause: Duration,
    /// New messages before saved ones.
    pub new_first: bool,
    /// Oldest first within each group (else newest first).
    pub oldest_first: bool,
    /// Longest greeting recording.
    pub max_greeting: Duration,
    /// Longest name recording.
    pub max_name: Duration,
    /// Shorter recordings are refused ("That recording was too short").
    pub min_recording: Duration,
    /// How long to wait for the shell's answer to a PIN check, mailbox load or PIN change
    /// before apologising and hanging up (a message that does not load is skipped instead).
    pub shell_timeout: Duration,
    /// New-PIN rules (length, triviality; `activation_delay` is announced).
    pub pin_policy: PinPolicy,
    /// To read callers in envelopes.
    pub plan: NumberingPlan,
    /// Time zone of envelope dates.
    pub tz: Tz,
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        Self {
            input_timeout: Duration::from_secs(6),
            max_timeouts: 3,
            max_pin_tries: 3,
            max_new_pin_tries: 3,
            skip: Duration::from_secs(5),
            max_pause: Duration::from_secs(60),
            new_first: true,
            oldest_first: true,
            max_greeting: Duration::from_secs(120),
            max_name: Duration::from_secs(10),
            min_recording: Duration::from_millis(500),
            shell_timeout: Duration::from_secs(30),
            pin_policy: PinPolicy::default(),
            plan: NumberingPlan::default(),
            tz: chrono_tz::Europe::London,
        }
    }
}

/// One message as the store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    /// Store id (`MessageId.0`).
    pub id: i64,
    /// Caller in its stored form (E.164, extension, raw text or empty).
    pub caller: String,
    /// When it was received, unix seconds.
    pub received_unix: i64,
    /// Length of the audio.
    pub duration_ms: i64,
    /// In the new folder (else saved).
    pub new: bool,
}

/// The shell's answer to [`Event::CheckPin`] (mapped from the store's `LoginOutcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginResult {
    /// Logged in. `must_change`: a new PIN must be chosen first; `needs_name`: the owner has
    /// not recorded a name yet (first login).
    Ok { must_change: bool, needs_name: bool },
    /// Wrong or not yet active PIN (counted). `attempts_left == 0`: this attempt locked it.
    Wrong { attempts_left: u32 },
    /// Locked; nothing was checked or counted. Minutes until it unlocks, if known.
    Locked { retry_in_minutes: Option<u32> },
    /// No PIN set (or no such mailbox): cannot log in by phone.
    NoPin,
    /// The check could not be made (store error).
    Unavailable,
}

/// Requests from the machine to the shell. `Debug` shows audio as its length and PINs as
/// `******`.
#[derive(Clone)]
pub enum Event {
    /// Check this PIN atomically (and count it); answer with `handle_login_result`.
    /// `pin: None`: an entry too long to be any PIN was completed with `#`: count it as wrong.
    CheckPin { mailbox: String, pin: Option<Pin> },
    /// List the mailbox; answer with `handle_mailbox`.
    LoadMailbox { mailbox: String },
    /// Load one message's audio (8 kHz); answer with `handle_message_audio`.
    LoadMessage(i64),
    /// Store a greeting or the name (fire and forget).
    StoreGreeting { kind: GreetingKind, audio: Vec<i16> },
    /// Remove a greeting (the temporary one).
    DeleteGreeting { kind: GreetingKind },
    /// Set a new PIN (already checked against the policy here); answer with
    /// `handle_pin_changed`.
    ChangePin { new_pin: Pin },
    /// End of call: delete these messages and move these new ones to the saved folder.
    Commit { deleted: Vec<i64>, saved: Vec<i64> },
    /// End the call (send BYE).
    Hangup,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CheckPin { mailbox, pin } => f
                .debug_struct("CheckPin")
                .field("mailbox", mailbox)
                .field("pin", pin)
                .finish(),
            Self::LoadMailbox { mailbox } => f
                .debug_struct("LoadMailbox")
                .field("mailbox", mailbox)
                .finish(),
            Self::LoadMessage(id) => f.debug_tuple("LoadMessage").field(id).finish(),
            Self::StoreGreeting { kind, audio } => f
                .debug_struct("StoreGreeting")
                .field("kind", kind)
                .field("samples", &audio.len())
                .finish(),
            Self::DeleteGreeting { kind } => f
                .debug_struct("DeleteGreeting")
                .field("kind", kind)
                .finish(),
            Self::ChangePin { new_pin } => f
                .debug_struct("ChangePin")
                .field("new_pin", new_pin)
                .finish(),
            Self::Commit { deleted, saved } => f
                .debug_struct("Commit")
                .field("deleted", deleted)
                .field("saved", saved)
                .finish(),
            Self::Hangup => f.write_str("Hangup"),
        }
    }
}

/// Where the flow is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Typing the mailbox number.
    EnterMailbox,
    /// Typing the PIN.
    EnterPin,
    /// Waiting for the shell's PIN check.
    CheckingPin,
    /// Typing a new PIN.
    EnterNewPin,
    /// Typing the new PIN again.
    ConfirmNewPin,
    /// Waiting for the shell to set the new PIN.
    ChangingPin,
    /// Waiting for the message list.
    LoadingMailbox,
    /// Reading the envelope of the current message.
    Envelope,
    /// Envelope done; the audio has not arrived yet.
    WaitingForMessage,
    /// Playing the current message (possibly paused).
    Playing,
    /// After a message: waiting for a key.
    MessageMenu,
    /// Main menu.
    MainMenu,
    /// Mailbox options.
    Options,
    /// Temporary greeting submenu.
    TemporaryMenu,
    /// Prompt, beep and recording of a greeting or the name.
    Recording(GreetingKind),
    /// Listen / keep / re-record.
    Review(GreetingKind),
    /// Saying goodbye; `Hangup` follows.
    Closing,
    /// Finished.
    Done,
}

/// What the call starts with.
#[derive(Debug, Clone)]
pub struct RetrievalSetup {
    /// The mailbox the caller's trusted identity selects, if any.
    pub mailbox: Option<String>,
    /// Wall clock at `now` of construction, unix seconds (for "today"/"yesterday").
    pub wall_clock_unix: i64,
}

/// Digits typed into an entry: bounded, redacted in `Debug`, wiped on drop.
struct Entry {
    buf: [u8; MAX_PIN_DIGITS],
    len: usize,
    overflow: bool,
}

impl Entry {
    fn new() -> Self {
        Self {
            buf: [0; MAX_PIN_DIGITS],
            len: 0,
            overflow: false,
        }
    }
    fn push(&mut self, d: char) {
        match self.buf.get_mut(self.len) {
            Some(slot) if d.is_ascii_digit() => {
                *slot = d as u8;
                self.len += 1;
            }
            _ => self.overflow = true,
        }
    }
    fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
    fn is_empty(&self) -> bool {
        self.len == 0 && !self.overflow
    }
    fn clear(&mut self) {
        self.buf.fill(0);
        self.len = 0;
        self.overflow = false;
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.clear();
        std::hint::black_box(&mut self.buf);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    Prompt,
    Message,
}

struct Item {
    audio: Arc<[i16]>,
    kind: ItemKind,
}

struct Msg {
    info: MessageInfo,
    deleted: bool,
    saved: bool,
    heard: bool,
}

/// Where a recording returns to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterRecord {
    Options,
    Login,
}

/// The retrieval machine.
pub struct Retrieval {
    cfg: RetrievalConfig,
    prompts: Arc<dyn PromptSource + Send + Sync>,
    phase: Phase,
    playlist: VecDeque<Item>,
    pos: usize,
    paused: bool,
    pause_deadline: Option<Instant>,
    events: VecDeque<Event>,
    typeahead: VecDeque<char>,
    entry: Entry,
    new_pin: Option<Pin>,
    mailbox: Option<String>,
    logged_in: bool,
    loaded: bool,
    committed: bool,
    pin_tries: u32,
    new_pin_failures: u32,
    forced_change: bool,
    needs_name: bool,
    after_record: AfterRecord,
    messages: Vec<Msg>,
    cur: usize,
    play_after_envelope: bool,
    msg_audio: Option<(i64, Arc<[i16]>)>,
    requested: Option<i64>,
    recording: Vec<i16>,
    rec_started: Option<Instant>,
    recorded: Option<Arc<[i16]>>,
    timeouts: u32,
    input_deadline: Option<Instant>,
    shell_deadline: Option<Instant>,
    start: Instant,
    start_unix: i64,
    beep: Arc<[i16]>,
}

impl fmt::Debug for Retrieval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retrieval")
            .field("phase", &self.phase)
            .field("logged_in", &self.logged_in)
            .field("messages", &self.messages.len())
            .finish_non_exhaustive()
    }
}

impl Retrieval {
    /// Builds the flow; the welcome starts playing at the first `poll_audio`.
    pub fn new(
        now: Instant,
        cfg: RetrievalConfig,
        setup: RetrievalSetup,
        prompts: Arc<dyn PromptSource + Send + Sync>,
    ) -> Self {
        let mailbox = setup
            .mailbox
            .filter(|m| !m.is_empty() && m.len() <= MAX_PIN_DIGITS);
        let mut r = Self {
            cfg,
            prompts,
            phase: Phase::EnterPin,
            playlist: VecDeque::new(),
            pos: 0,
            paused: false,
            pause_deadline: None,
            events: VecDeque::new(),
            typeahead: VecDeque::new(),
            entry: Entry::new(),
            new_pin: None,
            mailbox,
            logged_in: false,
            loaded: false,
            committed: false,
            pin_tries: 0,
            new_pin_failures: 0,
            forced_change: false,
            needs_name: false,
            after_record: AfterRecord::Options,
            messages: Vec::new(),
            cur: 0,
            play_after_envelope: true,
            msg_audio: None,
            requested: None,
            recording: Vec::new(),
            rec_started: None,
            recorded: None,
            timeouts: 0,
            input_deadline: None,
            shell_deadline: None,
            start: now,
            start_unix: setup.wall_clock_unix,
            beep: codecs::tone::beep(400).into(),
        };
        r.say(["vm-welcome"]);
        if r.mailbox.is_some() {
            r.enter(Phase::EnterPin);
            r.say(["vm-enter-pin"]);
        } else {
            r.enter(Phase::EnterMailbox);
            r.say(["vm-enter-mailbox"]);
        }
        r
    }

    /// Where the flow is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Nothing more will happen in this flow.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done && self.events.is_empty()
    }

    /// The next request for the shell.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ----- audio ------------------------------------------------------------------------

    fn say<I, S>(&mut self, ids: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for id in ids {
            match self.prompts.prompt(id.as_ref()) {
                Some(audio) => self.playlist.push_back(Item {
                    audio,
                    kind: ItemKind::Prompt,
                }),
                None => tracing::debug!(prompt = id.as_ref(), "retrieval: prompt missing"),
            }
        }
    }

    fn push_audio(&mut self, audio: Arc<[i16]>, kind: ItemKind) {
        self.playlist.push_back(Item { audio, kind });
    }

    /// Barge-in: stop whatever is playing.
    fn stop_audio(&mut self) {
        self.playlist.clear();
        self.pos = 0;
        self.paused = false;
        self.pause_deadline = None;
    }

    /// The next 20 ms to send to the caller.
    pub fn poll_audio(&mut self, now: Instant) -> [i16; FRAME] {
        self.check_timers(now);
        let mut out = [0i16; FRAME];
        if !self.paused {
            let mut filled = 0;
            while filled < FRAME {
                let Some(item) = self.playlist.front() else {
                    break;
                };
                let avail = item.audio.len().saturating_sub(self.pos);
                let n = avail.min(FRAME - filled);
                if let (Some(dst), Some(src)) = (
                    out.get_mut(filled..filled + n),
                    item.audio.get(self.pos..self.pos + n),
                ) {
                    dst.copy_from_slice(src);
                }
                filled += n;
                self.pos += n;
                if self.pos >= item.audio.len() {
                    self.playlist.pop_front();
                    self.pos = 0;
                }
            }
        }
        self.kick(now);
        out
    }

    /// Runs the end-of-playlist step if nothing is playing; idempotent.
    fn kick(&mut self, now: Instant) {
        // Each step either leaves audio queued, changes to a phase whose step is a no-op, or
        // waits; a few rounds always settle (bounded to be safe against missing prompts).
        for _ in 0..4 {
            if !self.playlist.is_empty() {
                return;
            }
            let before = self.phase;
            self.on_playlist_done(now);
            if self.phase == before {
                return;
            }
        }
    }

    fn on_playlist_done(&mut self, now: Instant) {
        match self.phase {
            Phase::EnterMailbox
            | Phase::EnterPin
            | Phase::EnterNewPin
            | Phase::ConfirmNewPin
            | Phase::MessageMenu
            | Phase::MainMenu
            | Phase::Options
            | Phase::TemporaryMenu
            | Phase::Review(_) => {
                if self.input_deadline.is_none() {
                    self.input_deadline = Some(now + self.cfg.input_timeout);
                }
            }
            Phase::Envelope => {
                if self.play_after_envelope {
                    let id = self.current_id();
                    match &self.msg_audio {
                        Some((mid, _)) if Some(*mid) == id => self.start_playback(0),
                        _ => self.phase = Phase::WaitingForMessage,
                    }
                } else {
                    self.say(["vm-menu-message"]);
                    self.enter(Phase::MessageMenu);
                }
            }
            Phase::Playing => {
                self.say(["vm-menu-message"]);
                self.enter(Phase::MessageMenu);
            }
            Phase::Recording(_) => {
                if self.rec_started.is_none() {
                    self.rec_started = Some(now);
                }
            }
            Phase::Closing => self.finish(true),
            Phase::CheckingPin
            | Phase::ChangingPin
            | Phase::LoadingMailbox
            | Phase::WaitingForMessage
            | Phase::Done => {}
        }
    }

    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.input_deadline = None;
        self.shell_deadline = None;
    }

    fn wait_for_shell(&mut self, now: Instant, phase: Phase) {
        self.enter(phase);
        self.shell_deadline = Some(now + self.cfg.shell_timeout);
    }

    // ----- timers -----------------------------------------------------------------------

    /// When the machine next needs `handle_timeout` if nothing else happens.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let rec = match (self.phase, self.rec_started) {
            (Phase::Recording(kind), Some(t)) => Some(t + self.max_recording(kind)),
            _ => None,
        };
        [
            self.input_deadline,
            self.shell_deadline,
            self.pause_deadline.filter(|_| self.paused),
            rec,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Time has passed (also checked at every `poll_audio`).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.check_timers(now);
        self.kick(now);
    }

    fn check_timers(&mut self, now: Instant) {
        if self.paused && self.pause_deadline.is_some_and(|t| now >= t) {
            self.paused = false;
            self.pause_deadline = None;
        }
        if let (Phase::Recording(kind), Some(t)) = (self.phase, self.rec_started) {
            if now >= t + self.max_recording(kind) {
                self.stop_recording();
            }
        }
        if self.shell_deadline.is_some_and(|t| now >= t) {
            self.shell_deadline = None;
            match self.phase {
                Phase::WaitingForMessage => {
                    self.requested = None;
                    self.say(["vm-message-unavailable", "vm-menu-message"]);
                    self.enter(Phase::MessageMenu);
                }
                Phase::CheckingPin | Phase::LoadingMailbox | Phase::ChangingPin => {
                    self.stop_audio();
                    self.say(["vm-not-available-try-later"]);
                    self.enter(Phase::Closing);
                }
                _ => {}
            }
        }
        if self.input_deadline.is_some_and(|t| now >= t) {
            self.input_deadline = None;
            self.on_no_input();
        }
    }

    fn on_no_input(&mut self) {
        self.timeouts += 1;
        if self.timeouts >= self.cfg.max_timeouts {
            self.goodbye();
            return;
        }
        self.entry.clear();
        self.reprompt();
    }

    /// Says the current phase's prompt again.
    fn reprompt(&mut self) {
        let phase = self.phase;
        match phase {
            Phase::EnterMailbox => self.say(["vm-enter-mailbox"]),
            Phase::EnterPin => self.say(["vm-enter-pin"]),
            Phase::EnterNewPin => self.say(["vm-enter-new-pin"]),
            Phase::ConfirmNewPin => self.say(["vm-reenter-new-pin"]),
            Phase::MessageMenu => self.say(["vm-menu-message"]),
            Phase::MainMenu => self.say(["vm-menu-main"]),
            Phase::Options => self.say(["vm-menu-options", "vm-menu-options-more"]),
            Phase::TemporaryMenu => self.say(["vm-menu-temporary"]),
            Phase::Review(_) => self.say(["vm-record-review"]),
            _ => {}
        }
        self.enter(phase);
    }

    fn goodbye(&mut self) {
        self.typeahead.clear();
        self.entry.clear();
        self.say(["vm-goodbye"]);
        self.enter(Phase::Closing);
    }

    /// Ends the flow: Commit (if the mailbox was loaded), then Hangup unless the caller left.
    fn finish(&mut self, send_hangup: bool) {
        if self.phase == Phase::Done {
            return;
        }
        self.stop_audio();
        self.recording = Vec::new();
        self.enter(Phase::Done);
        if self.loaded && !self.committed {
            self.committed = true;
            let deleted = self
                .messages
                .iter()
                .filter(|m| m.deleted)
                .map(|m| m.info.id)
                .collect();
            let saved = self
                .messages
                .iter()
                .filter(|m| !m.deleted && m.info.new && (m.heard || m.saved))
                .map(|m| m.info.id)
                .collect();
            self.events.push_back(Event::Commit { deleted, saved });
        }
        if send_hangup {
            self.events.push_back(Event::Hangup);
        }
    }

    /// The caller hung up (BYE received, or media timed out). Unkept recordings are dropped.
    pub fn handle_hangup(&mut self, _now: Instant) {
        self.finish(false);
    }

    // ----- input ------------------------------------------------------------------------

    /// A digit from RFC 4733 or the in-band detector (`0-9`, `*`, `#`, `A-D`).
    pub fn handle_dtmf(&mut self, now: Instant, digit: char) {
        match self.phase {
            Phase::Closing | Phase::Done => {}
            Phase::CheckingPin | Phase::ChangingPin | Phase::LoadingMailbox => {
                if self.typeahead.len() < MAX_TYPEAHEAD {
                    self.typeahead.push_back(digit);
                }
            }
            _ => {
                self.timeouts = 0;
                self.on_digit(now, digit);
            }
        }
        self.kick(now);
    }

    /// Acts on digits typed while the shell was busy, until the flow waits again.
    fn drain_typeahead(&mut self, now: Instant) {
        while !matches!(
            self.phase,
            Phase::CheckingPin
                | Phase::ChangingPin
                | Phase::LoadingMailbox
                | Phase::Closing
                | Phase::Done
        ) {
            let Some(d) = self.typeahead.pop_front() else {
                break;
            };
            self.timeouts = 0;
            self.on_digit(now, d);
        }
    }

    fn on_digit(&mut self, now: Instant, d: char) {
        match self.phase {
            Phase::EnterMailbox | Phase::EnterPin | Phase::EnterNewPin | Phase::ConfirmNewPin => {
                self.entry_digit(now, d)
            }
            Phase::Envelope | Phase::WaitingForMessage | Phase::Playing | Phase::MessageMenu => {
                self.message_key(now, d)
            }
            Phase::MainMenu => self.main_key(now, d),
            Phase::Options => self.options_key(now, d),
            Phase::TemporaryMenu => self.temporary_key(d),
            Phase::Recording(_) => {
                if self.rec_started.is_some() {
                    self.stop_recording();
                } else {
                    // A key during the "record after the tone" prompt skips to the beep.
                    self.playlist.retain(|i| Arc::ptr_eq(&i.audio, &self.beep));
                    self.pos = 0;
                }
            }
            Phase::Review(kind) => self.review_key(now, kind, d),
            Phase::CheckingPin
            | Phase::ChangingPin
            | Phase::LoadingMailbox
            | Phase::Closing
            | Phase::Done => {}
        }
    }

    fn entry_digit(&mut self, now: Instant, d: char) {
        self.stop_audio();
        match d {
            '0'..='9' => {
                self.entry.push(d);
                self.input_deadline = Some(now + self.cfg.input_timeout);
            }
            '#' => self.submit_entry(now),
            '*' => match self.phase {
                Phase::EnterPin | Phase::EnterMailbox => {
                    self.entry.clear();
                    self.say(["vm-enter-mailbox"]);
                    self.enter(Phase::EnterMailbox);
                }
                Phase::EnterNewPin | Phase::ConfirmNewPin if !self.forced_change => {
                    self.entry.clear();
                    self.new_pin = None;
                    self.options_menu();
                }
                _ => {
                    self.entry.clear();
                    self.reprompt();
                }
            },
            _ => {}
        }
    }

    fn submit_entry(&mut self, now: Instant) {
        if self.entry.is_empty() {
            // `#` alone: ask again, check nothing.
            self.reprompt();
            return;
        }
        match self.phase {
            Phase::EnterMailbox => {
                if self.entry.overflow {
                    self.entry.clear();
                    self.say(["vm-invalid-option", "vm-enter-mailbox"]);
                    self.enter(Phase::EnterMailbox);
                    return;
                }
                self.mailbox = Some(self.entry.as_str().to_owned());
                self.entry.clear();
                self.say(["vm-enter-pin"]);
                self.enter(Phase::EnterPin);
            }
            Phase::EnterPin => {
                let Some(mailbox) = self.mailbox.clone() else {
                    self.entry.clear();
                    self.say(["vm-enter-mailbox"]);
                    self.enter(Phase::EnterMailbox);
                    return;
                };
                let pin = if self.entry.overflow {
                    None
                } else {
                    Pin::parse(self.entry.as_str())
                };
                self.entry.clear();
                self.events.push_back(Event::CheckPin { mailbox, pin });
                self.wait_for_shell(now, Phase::CheckingPin);
            }
            Phase::EnterNewPin => {
                let ext = self.mailbox.clone().unwrap_or_default();
                let ok = !self.entry.overflow
                    && check_new_pin(self.entry.as_str(), &ext, &self.cfg.pin_policy).is_ok();
                let pin = Pin::parse(self.entry.as_str());
                self.entry.clear();
                match pin {
                    Some(pin) if ok => {
                        self.new_pin = Some(pin);
                        self.say(["vm-reenter-new-pin"]);
                        self.enter(Phase::ConfirmNewPin);
                    }
                    _ => self.new_pin_failed("vm-pin-too-simple"),
                }
            }
            Phase::ConfirmNewPin => {
                let same = !self.entry.overflow
                    && self
                        .new_pin
                        .as_ref()
                        .is_some_and(|p| p.expose_digits() == self.entry.as_str());
                self.entry.clear();
                match self.new_pin.take() {
                    Some(new_pin) if same => {
                        self.events.push_back(Event::ChangePin { new_pin });
                        self.wait_for_shell(now, Phase::ChangingPin);
                    }
                    _ => self.new_pin_failed("vm-pins-differ"),
                }
            }
            _ => {}
        }
    }

    fn new_pin_failed(&mut self, why: &str) {
        self.new_pin = None;
        self.new_pin_failures += 1;
        self.say([why]);
        if self.new_pin_failures >= self.cfg.max_new_pin_tries {
            self.new_pin_failures = 0;
            if self.forced_change {
                self.goodbye();
            } else {
                self.options_menu();
            }
        } else {
            self.say(["vm-enter-new-pin"]);
            self.enter(Phase::EnterNewPin);
        }
    }

    // ----- login ------------------------------------------------------------------------

    /// The shell's answer to [`Event::CheckPin`]. Ignored unless a check is outstanding.
    pub fn handle_login_result(&mut self, now: Instant, result: LoginResult) {
        if self.phase != Phase::CheckingPin {
            return;
        }
        match result {
            LoginResult::Ok {
                must_change,
                needs_name,
            } => {
                self.logged_in = true;
                self.needs_name = needs_name;
                if must_change {
                    self.forced_change = true;
                    self.say(["vm-must-change-pin", "vm-enter-new-pin"]);
                    self.enter(Phase::EnterNewPin);
                } else {
                    self.after_login(now);
                }
            }
            LoginResult::Wrong { attempts_left } => {
                self.pin_tries += 1;
                self.say(["vm-pin-not-valid"]);
                if attempts_left == 0 {
                    // This attempt locked the mailbox, for the policy's lockout from now.
                    self.typeahead.clear();
                    let minutes = self.cfg.pin_policy.lockout.as_secs().div_ceil(60);
                    self.say_locked(u32::try_from(minutes).ok());
                    self.enter(Phase::Closing);
                } else if self.pin_tries >= self.cfg.max_pin_tries {
                    self.goodbye();
                } else {
                    self.say(["vm-enter-pin"]);
                    self.enter(Phase::EnterPin);
                }
            }
            LoginResult::Locked { retry_in_minutes } => {
                self.typeahead.clear();
                self.say_locked(retry_in_minutes);
                self.enter(Phase::Closing);
            }
            LoginResult::NoPin => {
                self.typeahead.clear();
                self.say(["vm-no-pin"]);
                self.enter(Phase::Closing);
            }
            LoginResult::Unavailable => {
                self.typeahead.clear();
                self.say(["vm-not-available-try-later"]);
                self.enter(Phase::Closing);
            }
        }
        self.drain_typeahead(now);
        self.kick(now);
    }

    /// "This mailbox is locked ... try again in 30 minutes. Goodbye." (or "later").
    fn say_locked(&mut self, minutes: Option<u32>) {
        match minutes.filter(|&m| m > 0) {
            Some(m) => {
                self.say(["vm-mailbox-locked-try-in"]);
                self.say(say::say_number(m));
                self.say(["vm-minutes", "vm-goodbye"]);
            }
            None => self.say(["vm-mailbox-locked-later"]),
        }
    }

    /// After login and any forced PIN change: the name on first login, then the mailbox.
    fn after_login(&mut self, now: Instant) {
        if self.needs_name {
            self.after_record = AfterRecord::Login;
            self.say(["vm-record-name-first"]);
            self.start_recording(GreetingKind::Name);
        } else {
            self.load_mailbox(now);
        }
    }

    fn load_mailbox(&mut self, now: Instant) {
        let mailbox = self.mailbox.clone().unwrap_or_default();
        self.events.push_back(Event::LoadMailbox { mailbox });
        self.wait_for_shell(now, Phase::LoadingMailbox);
    }

    /// The shell's answer to [`Event::ChangePin`]: `true` when the new PIN was stored.
    pub fn handle_pin_changed(&mut self, now: Instant, ok: bool) {
        if self.phase != Phase::ChangingPin {
            return;
        }
        if ok {
            self.new_pin_failures = 0;
            self.say(["vm-pin-changed"]);
            let minutes = self.cfg.pin_policy.activation_delay.as_secs().div_ceil(60);
            let n = say::say_number(u32::try_from(minutes).unwrap_or(u32::MAX));
            self.say(n);
            self.say(["vm-minutes"]);
            if self.forced_change {
                self.forced_change = false;
                self.after_login(now);
            } else {
                self.options_menu();
            }
        } else if self.forced_change {
            self.say(["vm-not-available-try-later"]);
            self.enter(Phase::Closing);
        } else {
            self.say(["vm-not-available-try-later"]);
            self.options_menu();
        }
        self.drain_typeahead(now);
        self.kick(now);
    }

    // ----- messages ---------------------------------------------------------------------

    /// The shell's answer to [`Event::LoadMailbox`]. Messages are ordered here.
    pub fn handle_mailbox(&mut self, now: Instant, messages: Vec<MessageInfo>) {
        if self.phase != Phase::LoadingMailbox {
            return;
        }
        let mut messages = messages;
        let (new_first, oldest_first) = (self.cfg.new_first, self.cfg.oldest_first);
        messages.sort_by_key(|m| {
            let group = if new_first { u8::from(!m.new) } else { 0 };
            let t = if oldest_first {
                m.received_unix
            } else {
                m.received_unix.saturating_neg()
            };
            (group, t, m.id)
        });
        self.messages = messages
            .into_iter()
            .map(|info| Msg {
                info,
                deleted: false,
                saved: false,
                heard: false,
            })
            .collect();
        self.loaded = true;
        self.enter(Phase::MainMenu);
        let counts = self.counts();
        self.say(counts);
        if self.messages.is_empty() {
            self.say(["vm-menu-main"]);
        } else {
            self.present(now, 0, true);
        }
        self.drain_typeahead(now);
        self.kick(now);
    }

    /// "You have 2 new messages and 1 saved message" / "You have no messages."
    fn counts(&self) -> Vec<String> {
        let new = self.messages.iter().filter(|m| m.info.new).count();
        let saved = self.messages.len() - new;
        if new == 0 && saved == 0 {
            return vec!["vm-no-messages".into()];
        }
        let count = |n: usize| match n {
            0 => vec!["vm-no".to_owned()],
            n => say::say_number(u32::try_from(n).unwrap_or(u32::MAX)),
        };
        let mut out = vec!["vm-you-have".to_owned()];
        out.extend(count(new));
        out.push(
            if new == 1 {
                "vm-new-message"
            } else {
                "vm-new-messages"
            }
            .into(),
        );
        out.push("vm-and".into());
        out.extend(count(saved));
        out.push(
            if saved == 1 {
                "vm-saved-message"
            } else {
                "vm-saved-messages"
            }
            .into(),
        );
        out
    }

    fn current_id(&self) -> Option<i64> {
        self.messages.get(self.cur).map(|m| m.info.id)
    }

    fn now_unix(&self, now: Instant) -> i64 {
        let secs = now.saturating_duration_since(self.start).as_secs();
        self.start_unix
            .saturating_add(i64::try_from(secs).unwrap_or(i64::MAX))
    }

    /// Makes message `idx` current: envelope, then (if `play`) its audio.
    fn present(&mut self, now: Instant, idx: usize, play: bool) {
        let Some(m) = self.messages.get(idx) else {
            return;
        };
        self.cur = idx;
        let id = m.info.id;
        let mut ids = vec!["vm-message".to_owned()];
        ids.extend(say::say_number(u32::try_from(idx + 1).unwrap_or(u32::MAX)));
        ids.push("vm-from".into());
        ids.extend(say::say_caller(&m.info.caller, &self.cfg.plan));
        ids.push("vm-received".into());
        ids.extend(say::say_received(
            m.info.received_unix,
            self.now_unix(now),
            self.cfg.tz,
        ));
        if m.deleted {
            ids.push("vm-message-deleted".into());
        }
        self.say(ids);
        self.play_after_envelope = play;
        self.enter(Phase::Envelope);
        if play && self.msg_audio.as_ref().map(|(i, _)| *i) != Some(id) {
            self.shell_deadline = Some(now + self.cfg.shell_timeout);
            if self.requested != Some(id) {
                self.requested = Some(id);
                self.events.push_back(Event::LoadMessage(id));
            }
        }
    }

    /// The shell's answer to [`Event::LoadMessage`]; empty audio means it could not be loaded.
    /// Audio for a message that is no longer current is dropped.
    pub fn handle_message_audio(&mut self, now: Instant, id: i64, audio: Arc<[i16]>) {
        if self.requested == Some(id) {
            self.requested = None;
        }
        if self.current_id() != Some(id)
            || !matches!(self.phase, Phase::Envelope | Phase::WaitingForMessage)
        {
            return;
        }
        if audio.is_empty() {
            self.msg_audio = None;
            if self.phase == Phase::WaitingForMessage {
                self.say(["vm-message-unavailable", "vm-menu-message"]);
                self.enter(Phase::MessageMenu);
            } else {
                // Say so after the envelope instead of waiting.
                self.play_after_envelope = false;
                self.say(["vm-message-unavailable"]);
                self.shell_deadline = None;
            }
        } else {
            self.msg_audio = Some((id, audio));
            self.shell_deadline = None;
            if self.phase == Phase::WaitingForMessage {
                self.start_playback(0);
            }
        }
        self.kick(now);
    }

    /// Queues the current message's audio from sample `from`; marks it heard.
    fn start_playback(&mut self, from: usize) {
        let Some((id, audio)) = self.msg_audio.clone() else {
            return;
        };
        if self.current_id() != Some(id) {
            return;
        }
        if let Some(m) = self.messages.get_mut(self.cur) {
            m.heard = true;
        }
        self.stop_audio();
        self.push_audio(audio.clone(), ItemKind::Message);
        self.pos = from.min(audio.len());
        self.enter(Phase::Playing);
    }

    fn skip_samples(&self) -> usize {
        (self.cfg.skip.as_millis() as usize).saturating_mul(RATE / 1000)
    }

    /// Goes to the next message after `prefix` (e.g. "Message deleted."), or to the main menu
    /// when there is none.
    fn advance(&mut self, now: Instant, prefix: &str) {
        self.say([prefix]);
        if self.cur + 1 < self.messages.len() {
            self.present(now, self.cur + 1, true);
        } else {
            self.say(["vm-no-more-messages", "vm-menu-main"]);
            self.enter(Phase::MainMenu);
        }
    }

    fn message_key(&mut self, now: Instant, d: char) {
        let playing = self.phase == Phase::Playing
            && self
                .playlist
                .front()
                .is_some_and(|i| i.kind == ItemKind::Message);
        match d {
            '1' | '3' if playing => {
                let len = self.playlist.front().map_or(0, |i| i.audio.len());
                let step = self.skip_samples();
                self.pos = if d == '1' {
                    self.pos.saturating_sub(step)
                } else {
                    self.pos.saturating_add(step).min(len)
                };
                self.paused = false;
            }
            '2' if playing => {
                self.paused = !self.paused;
                self.pause_deadline = self.paused.then(|| now + self.cfg.max_pause);
            }
            '1' if self.phase == Phase::MessageMenu => {
                let len = self.msg_audio.as_ref().map_or(0, |(_, a)| a.len());
                let from = len.saturating_sub(self.skip_samples());
                self.start_playback(from);
                if self.phase != Phase::Playing {
                    self.invalid_in_message_menu();
                }
            }
            '4' => {
                self.stop_audio();
                if self.cur == 0 {
                    self.say(["vm-no-previous-message", "vm-menu-message"]);
                    self.enter(Phase::MessageMenu);
                } else {
                    self.present(now, self.cur - 1, true);
                }
            }
            '5' => {
                self.stop_audio();
                self.start_playback(0);
                if self.phase != Phase::Playing {
                    self.present(now, self.cur, true);
                }
            }
            '6' => {
                self.stop_audio();
                self.advance(now, "vm-next-message");
            }
            '7' => {
                self.stop_audio();
                let Some(m) = self.messages.get_mut(self.cur) else {
                    return;
                };
                if m.deleted {
                    m.deleted = false;
                    self.say(["vm-message-undeleted", "vm-menu-message"]);
                    self.enter(Phase::MessageMenu);
                } else {
                    m.deleted = true;
                    self.advance(now, "vm-message-deleted");
                }
            }
            '8' => {
                self.stop_audio();
                self.present(now, self.cur, false);
            }
            '9' => {
                self.stop_audio();
                if let Some(m) = self.messages.get_mut(self.cur) {
                    m.saved = true;
                    m.deleted = false;
                }
                self.advance(now, "vm-message-saved");
            }
            '0' => {
                self.stop_audio();
                self.say(["vm-menu-main"]);
                self.enter(Phase::MainMenu);
            }
            '*' => {
                self.stop_audio();
                self.say([
                    "vm-help-playback",
                    "vm-help-navigate",
                    "vm-help-actions",
                    "vm-help-general",
                ]);
                self.enter(Phase::MessageMenu);
            }
            '#' => {
                self.stop_audio();
                self.goodbye();
            }
            _ if self.phase == Phase::MessageMenu => self.invalid_in_message_menu(),
            // Keys without a meaning at this moment do not interrupt playback or envelopes.
            _ => {}
        }
    }

    fn invalid_in_message_menu(&mut self) {
        self.stop_audio();
        self.say(["vm-invalid-option", "vm-menu-message"]);
        self.enter(Phase::MessageMenu);
    }

    fn main_key(&mut self, now: Instant, d: char) {
        self.stop_audio();
        match d {
            '1' if self.messages.is_empty() => {
                self.say(["vm-no-messages", "vm-menu-main"]);
                self.enter(Phase::MainMenu);
            }
            '1' => self.present(now, 0, true),
            '0' => self.options_menu(),
            '*' => {
                let counts = self.counts();
                self.say(counts);
                self.say(["vm-menu-main"]);
                self.enter(Phase::MainMenu);
            }
            '#' => self.goodbye(),
            _ => {
                self.say(["vm-invalid-option", "vm-menu-main"]);
                self.enter(Phase::MainMenu);
            }
        }
    }

    // ----- mailbox options --------------------------------------------------------------

    fn options_menu(&mut self) {
        self.say(["vm-menu-options", "vm-menu-options-more"]);
        self.enter(Phase::Options);
    }

    fn options_key(&mut self, _now: Instant, d: char) {
        self.stop_audio();
        self.after_record = AfterRecord::Options;
        match d {
            '1' => {
                self.say(["vm-record-greeting"]);
                self.start_recording(GreetingKind::Unavailable);
            }
            '2' => {
                self.say(["vm-record-greeting"]);
                self.start_recording(GreetingKind::Busy);
            }
            '3' => self.start_recording(GreetingKind::Name),
            '4' => {
                self.say(["vm-menu-temporary"]);
                self.enter(Phase::TemporaryMenu);
            }
            '5' => {
                self.new_pin_failures = 0;
                self.say(["vm-enter-new-pin"]);
                self.enter(Phase::EnterNewPin);
            }
            '0' => {
                self.say(["vm-menu-main"]);
                self.enter(Phase::MainMenu);
            }
            '*' => self.options_menu(),
            '#' => self.goodbye(),
            _ => {
                self.say(["vm-invalid-option"]);
                self.options_menu();
            }
        }
    }

    fn temporary_key(&mut self, d: char) {
        self.stop_audio();
        match d {
            '1' => {
                self.say(["vm-record-greeting"]);
                self.start_recording(GreetingKind::Temporary);
            }
            '2' => {
                self.events.push_back(Event::DeleteGreeting {
                    kind: GreetingKind::Temporary,
                });
                self.say(["vm-temporary-removed"]);
                self.options_menu();
            }
            '0' => self.options_menu(),
            '*' => {
                self.say(["vm-menu-temporary"]);
                self.enter(Phase::TemporaryMenu);
            }
            '#' => self.goodbye(),
            _ => {
                self.say(["vm-invalid-option", "vm-menu-temporary"]);
                self.enter(Phase::TemporaryMenu);
            }
        }
    }

    fn max_recording(&self, kind: GreetingKind) -> Duration {
        match kind {
            GreetingKind::Name => self.cfg.max_name,
            _ => self.cfg.max_greeting,
        }
    }

    /// Prompt (for the name), beep, then record until a key, the limit, or hang-up.
    fn start_recording(&mut self, kind: GreetingKind) {
        if kind == GreetingKind::Name {
            self.say(["vm-record-name"]);
        }
        self.push_audio(self.beep.clone(), ItemKind::Prompt);
        self.recording = Vec::new();
        self.rec_started = None;
        self.recorded = None;
        self.enter(Phase::Recording(kind));
    }

    fn stop_recording(&mut self) {
        let Phase::Recording(kind) = self.phase else {
            return;
        };
        self.stop_audio();
        self.rec_started = None;
        let audio = std::mem::take(&mut self.recording);
        let min = (self.cfg.min_recording.as_millis() as usize).saturating_mul(RATE / 1000);
        if audio.len() < min.max(1) {
            self.recorded = None;
            self.say(["vm-recording-too-short", "vm-record-review"]);
        } else {
            self.recorded = Some(audio.into());
            self.say(["vm-record-review"]);
        }
        self.enter(Phase::Review(kind));
    }

    /// Caller audio (decoded, in order); kept only while recording after the beep.
    pub fn handle_audio(&mut self, _now: Instant, samples: &[i16]) {
        let (Phase::Recording(kind), Some(_)) = (self.phase, self.rec_started) else {
            return;
        };
        let max = (self.max_recording(kind).as_millis() as usize).saturating_mul(RATE / 1000);
        let room = max.saturating_sub(self.recording.len());
        let take = samples.get(..samples.len().min(room)).unwrap_or_default();
        self.recording.extend_from_slice(take);
        if self.recording.len() >= max {
            self.stop_recording();
        }
    }

    fn review_key(&mut self, now: Instant, kind: GreetingKind, d: char) {
        self.stop_audio();
        match (d, self.recorded.clone()) {
            ('1', Some(rec)) => {
                self.push_audio(rec, ItemKind::Prompt);
                self.say(["vm-record-review"]);
                self.enter(Phase::Review(kind));
            }
            ('2', Some(rec)) => {
                self.recorded = None;
                self.events.push_back(Event::StoreGreeting {
                    kind,
                    audio: rec.to_vec(),
                });
                self.say([if kind == GreetingKind::Name {
                    "vm-name-saved"
                } else {
                    "vm-greeting-saved"
                }]);
                self.after_recording(now);
            }
            ('3', _) => {
                if kind != GreetingKind::Name {
                    self.say(["vm-record-greeting"]);
                }
                self.start_recording(kind);
            }
            ('0', _) => {
                self.recorded = None;
                self.after_recording(now);
            }
            ('*', _) => {
                self.say(["vm-record-review"]);
                self.enter(Phase::Review(kind));
            }
            ('#', _) => self.goodbye(),
            _ => {
                self.say(["vm-invalid-option", "vm-record-review"]);
                self.enter(Phase::Review(kind));
            }
        }
    }

    fn after_recording(&mut self, now: Instant) {
        match self.after_record {
            AfterRecord::Options => self.options_menu(),
            AfterRecord::Login => {
                self.needs_name = false;
                self.after_record = AfterRecord::Options;
                self.load_mailbox(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Prompts of distinct constant values (two frames of the value, one of silence), assigned
    /// on first use, so tests can tell what was played.
    #[derive(Default)]
    struct FakePrompts {
        ids: Mutex<Vec<String>>,
    }

    const CATALOGUE: &str = include_str!("../../prompts/catalogue.toml");

    impl FakePrompts {
        fn value(&self, id: &str) -> i16 {
            // Every prompt the machine asks for must exist in the catalogue.
            assert!(
                CATALOGUE
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    .any(|(k, _)| k.trim() == id),
                "prompt {id} is not in prompts/catalogue.toml"
            );
            let mut ids = self.ids.lock().unwrap();
            match ids.iter().position(|s| s == id) {
                Some(i) => i as i16 + 1,
                None => {
                    ids.push(id.to_owned());
                    ids.len() as i16
                }
            }
        }
        fn name(&self, v: i16) -> Option<String> {
            let ids = self.ids.lock().unwrap();
            ids.get((v as usize).wrapping_sub(1)).cloned()
        }
    }

    impl PromptSource for FakePrompts {
        fn prompt(&self, id: &str) -> Option<Arc<[i16]>> {
            let v = self.value(id);
            let mut a = vec![v; 2 * FRAME];
            a.extend_from_slice(&[0; FRAME]);
            Some(a.into())
        }
    }

    const T: Duration = Duration::from_millis(20);
    const MSG_BASE: i16 = 20_000;
    const REC_VALUE: i16 = 12_345;
    /// 2026-11-05 10:00 London (GMT).
    const WALL: i64 = 1_793_872_800;

    fn msg_audio(id: i64, frames: usize) -> Arc<[i16]> {
        vec![MSG_BASE + id as i16; frames * FRAME].into()
    }

    struct H {
        r: Retrieval,
        p: Arc<FakePrompts>,
        now: Instant,
        heard: Vec<String>,
        last: Option<String>,
        events: Vec<Event>,
        auto_load: bool,
        msg_frames: usize,
    }

    impl H {
        fn new(cfg: RetrievalConfig, mailbox: Option<&str>) -> Self {
            let p = Arc::new(FakePrompts::default());
            let now = Instant::now();
            let r = Retrieval::new(
                now,
                cfg,
                RetrievalSetup {
                    mailbox: mailbox.map(str::to_owned),
                    wall_clock_unix: WALL,
                },
                p.clone(),
            );
            Self {
                r,
                p,
                now,
                heard: Vec::new(),
                last: None,
                events: Vec::new(),
                auto_load: true,
                msg_frames: 50,
            }
        }

        fn collect(&mut self) {
            while let Some(e) = self.r.poll_event() {
                if let (true, Event::LoadMessage(id)) = (self.auto_load, &e) {
                    let id = *id;
                    let audio = msg_audio(id, self.msg_frames);
                    self.r.handle_message_audio(self.now, id, audio);
                }
                self.events.push(e);
            }
        }

        fn token(&self, f: &[i16; FRAME]) -> Option<String> {
            let v = f[0];
            if f.iter().all(|&s| s == 0) {
                return None;
            }
            if !f.iter().all(|&s| s == v) {
                return Some("beep".into());
            }
            if v == REC_VALUE {
                return Some("recording".into());
            }
            if v > MSG_BASE {
                return Some(format!("msg-{}", v - MSG_BASE));
            }
            Some(self.p.name(v).unwrap_or_else(|| format!("?{v}")))
        }

        fn step(&mut self) {
            let f = self.r.poll_audio(self.now);
            let tok = self.token(&f);
            if tok.is_some() && tok != self.last {
                self.heard.push(tok.clone().unwrap());
            }
            self.last = tok;
            self.now += T;
            self.collect();
        }

        fn run(&mut self, frames: usize) {
            for _ in 0..frames {
                self.step();
            }
        }

        /// Plays until the machine waits for a key, the shell, or the end.
        fn settle(&mut self) {
            for _ in 0..200_000 {
                let waiting = self.r.input_deadline.is_some()
                    || matches!(
                        self.r.phase,
                        Phase::CheckingPin
                            | Phase::ChangingPin
                            | Phase::LoadingMailbox
                            | Phase::Done
                    )
                    || (matches!(self.r.phase, Phase::Recording(_))
                        && self.r.rec_started.is_some());
                if waiting {
                    return;
                }
                self.step();
            }
            panic!("never settled in {:?}", self.r.phase);
        }

        fn press(&mut self, keys: &str) {
            for c in keys.chars() {
                self.r.handle_dtmf(self.now, c);
                self.collect();
            }
        }

        fn heard(&mut self) -> Vec<String> {
            std::mem::take(&mut self.heard)
        }

        fn events(&mut self) -> Vec<Event> {
            std::mem::take(&mut self.events)
        }

        fn login(&mut self, pin: &str) {
            self.settle();
            self.press(pin);
            self.press("#");
            self.r.handle_login_result(
                self.now,
                LoginResult::Ok {
                    must_change: false,
                    needs_name: false,
                },
            );
            self.collect();
        }

        fn load(&mut self, msgs: Vec<MessageInfo>) {
            self.r.handle_mailbox(self.now, msgs);
            self.collect();
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn mailbox3() -> Vec<MessageInfo> {
        vec![
            MessageInfo {
                id: 10,
                caller: "+442079460000".into(),
                received_unix: WALL - 3600, // today 09:00
                duration_ms: 1000,
                new: true,
            },
            MessageInfo {
                id: 12,
                caller: String::new(),
                received_unix: WALL - 3 * 86_400,
                duration_ms: 1000,
                new: false,
            },
            MessageInfo {
                id: 11,
                caller: "+441865277513".into(),
                received_unix: WALL - 86_400 + 5 * 3600 + 42 * 60, // yesterday 15:42
                duration_ms: 1000,
                new: true,
            },
        ]
    }

    fn commits(ev: &[Event]) -> Vec<(Vec<i64>, Vec<i64>)> {
        ev.iter()
            .filter_map(|e| match e {
                Event::Commit { deleted, saved } => Some((deleted.clone(), saved.clone())),
                _ => None,
            })
            .collect()
    }

    fn hangups(ev: &[Event]) -> usize {
        ev.iter().filter(|e| matches!(e, Event::Hangup)).count()
    }

    #[test]
    fn full_login_envelope_play_save_delete_undelete_next_exit_commits() {
        let mut h = H::new(RetrievalConfig::default(), Some("77513"));
        h.settle();
        assert_eq!(h.heard(), s(&["vm-welcome", "vm-enter-pin"]));
        h.press("135246#");
        let ev = h.events();
        let [Event::CheckPin {
            mailbox,
            pin: Some(pin),
        }] = ev.as_slice()
        else {
            panic!("{ev:?}")
        };
        assert_eq!(mailbox, "77513");
        assert_eq!(pin.expose_digits(), "135246");
        assert!(!format!("{ev:?}").contains("135246"));
        assert_eq!(h.r.phase(), Phase::CheckingPin);
        h.r.handle_login_result(
            h.now,
            LoginResult::Ok {
                must_change: false,
                needs_name: false,
            },
        );
        h.collect();
        assert!(matches!(
            h.events().as_slice(),
            [Event::LoadMailbox { mailbox }] if mailbox == "77513"
        ));
        h.load(mailbox3());
        h.settle();
        // New first, oldest first: 11 (yesterday), 10 (today), then saved 12.
        assert_eq!(
            h.heard(),
            s(&[
                "vm-you-have",
                "num-2",
                "vm-new-messages",
                "vm-and",
                "num-1",
                "vm-saved-message",
                "vm-message",
                "num-1",
                "vm-from",
                "vm-extension",
                "digit-7",
                "digit-7",
                "digit-5",
                "digit-1",
                "digit-3",
                "vm-received",
                "vm-yesterday",
                "vm-at",
                "num-3",
                "num-40",
                "num-2",
                "pm",
                "msg-11",
                "vm-menu-message",
            ])
        );
        assert!(matches!(h.events().as_slice(), [Event::LoadMessage(11)]));
        assert_eq!(h.r.phase(), Phase::MessageMenu);
        // 9: save 11, on to 10.
        h.press("9");
        h.run(20);
        assert_eq!(h.r.phase(), Phase::Envelope);
        h.settle();
        let heard = h.heard();
        assert_eq!(
            heard[..4],
            s(&["vm-message-saved", "vm-message", "num-2", "vm-from"])
        );
        assert!(heard.contains(&"vm-today".to_string()));
        assert!(heard.contains(&"msg-10".to_string()));
        // 7 during the menu after 10: delete, on to 12 (saved, unknown caller).
        h.press("7");
        h.run(100);
        let heard = h.heard();
        assert_eq!(
            heard[..6],
            s(&[
                "vm-message-deleted",
                "vm-message",
                "num-3",
                "vm-from",
                "vm-unknown-caller",
                "vm-received"
            ])
        );
        assert!(heard.contains(&"day-monday".to_string()), "{heard:?}");
        // 4: back to 10, whose envelope says it is deleted; 7 undeletes it.
        h.press("4");
        h.settle();
        let heard = h.heard();
        assert!(
            heard.contains(&"vm-message-deleted".to_string()),
            "{heard:?}"
        );
        h.press("7");
        h.settle();
        assert_eq!(h.heard(), s(&["vm-message-undeleted", "vm-menu-message"]));
        // 6: next (12), 7 deletes it; no more messages: main menu. # exits.
        h.press("6");
        h.run(10);
        h.press("7");
        h.settle();
        let heard = h.heard();
        assert_eq!(
            heard[heard.len() - 3..],
            s(&["vm-message-deleted", "vm-no-more-messages", "vm-menu-main"])
        );
        assert_eq!(h.r.phase(), Phase::MainMenu);
        h.press("#");
        assert!(h
            .events()
            .iter()
            .all(|e| !matches!(e, Event::Commit { .. })));
        h.settle();
        assert_eq!(h.heard(), s(&["vm-goodbye"]));
        let ev = h.events();
        assert_eq!(commits(&ev), vec![(vec![12], vec![11, 10])]);
        assert!(matches!(ev.last(), Some(Event::Hangup)));
        assert!(h.r.is_done());
    }

    #[test]
    fn wrong_pin_reprompts_then_succeeds() {
        let mut h = H::new(RetrievalConfig::default(), Some("77513"));
        h.settle();
        h.press("999999#");
        h.r.handle_login_result(h.now, LoginResult::Wrong { attempts_left: 2 });
        h.heard();
        h.settle();
        assert_eq!(h.heard(), s(&["vm-pin-not-valid", "vm-enter-pin"]));
        assert_eq!(h.r.phase(), Phase::EnterPin);
        h.events();
        h.login("135246");
        assert!(matches!(
            h.events()[..],
            [Event::CheckPin { .. }, Event::LoadMailbox { .. }]
        ));
    }

    #[test]
    fn three_wrong_pins_in_one_call_say_goodbye() {
        let mut h = H::new(RetrievalConfig::default(), Some("77513"));
        for left in [5, 4, 3] {
            h.settle();
            h.press("999999#");
            h.r.handle_login_result(
                h.now,
                LoginResult::Wrong {
                    attempts_left: left,
                },
            );
        }
        h.heard();
        h.settle();
        assert_eq!(h.heard(), s(&["vm-pin-not-valid", "vm-goodbye"]));
        let ev = h.events();
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, Event::CheckPin { .. }))
                .count(),
            3
        );
        assert!(commits(&ev).is_empty());
        assert_eq!(hangups(&ev), 1);
    }

    #[test]
    fn wrong_pin_that_locks_and_locked_mailbox_end_the_call() {
        let mut h = H::new(RetrievalConfig::default(), Some("77513"));
        h.settle();
        h.press("999999#");
        h.r.handle_login_result(h.now, LoginResult::Wrong { attempts_left: 0 });
        h.heard();
        h.settle();
        assert_eq!(
            h.heard(),
            s(&[
                "vm-pin-not-valid",
                "vm-mailbox-locked-try-in",
                "num-30",
                "vm-minutes",
                "vm-goodbye"
            ])
        );
        assert_eq!(hangups(&h.events()), 1);

        let mut h = H::new(RetrievalConfig::default(), Some("77513"));
        h.settle();
        h.press("135246#");
        h.r.handle_login_result(
            h.now,
            LoginResult::Locked {
                retry_in_minutes: Some(30),
            },
        );
        h.heard();
        // Keys while locked are ignored.
        h.press("123#");
        h.settle();
        assert_eq!(
            h.heard(),
            s(&[
                "vm-mailbox-locked-try-in",
                "num-30",
                "vm-minutes",
                "vm-goodbye"
            ])
        );
        let ev = h.events();
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, Event::CheckPin { .. }))
                .count(),
            1
        );
        assert_eq!(hangups(&ev), 1);
        assert!(h.r.is_done());
    }

    #[test]
    fn no_pin_and_store_trouble_end_politely() {
        for (res, prompt) in [
            (LoginResult::NoPin, "vm-no-pin"),
            (LoginResult::Unavailable, "vm-not-available-try-later"),
        ] {
            let mut h = H::new(RetrievalConfig::default(), Some("77513"));
            h.settle();
            h.press("135246#");
            h.r.handle_login_result(h.now, res);
            h.heard();
            h.settle();
            assert_eq!(h.heard(), s(&[prompt]));
            assert_eq!(hangups(&h.events()), 1);
        }
    }

    #[test]
    fn no_input_reprompts_then_goodbye_after_max_timeouts() {
        let cfg = RetrievalConfig {
            max_timeouts: 3,
            input_timeout: Duration::from_secs(4),
            ..Default::default()
        };
        let mut h = H::new(cfg, Some("77513"));
        h.settle();
        let deadline = h.r.poll_timeout().unwrap();
        assert_eq!(deadline, h.now - T + Duration::from_secs(4));
        for _ in 0..2000 {
            if h.r.phase() == Phase::Done {
                break;
            }
            h.step();
        }
        assert_eq!(
            h.heard(),
            s(&[
                "vm-welcome",
                "vm-enter-pin",
                "vm-enter-pin",
                "vm-enter-pin",
                "vm-goodbye"
            ])
        );
        let ev = h.events();
        assert_eq!(hangups(&ev), 1);
        assert!(ev.iter().all(|e| !matches!(e, Event::CheckPin { .. })));
    }

    #[test]
    fn handle_timeout_alone_drives_timeouts() {
        let mut h = H::new(RetrievalConfig::default(), Some("77513"));
        h.settle();
        let t = h.r.poll_timeout().unwrap();
        h.r.handle_timeout(t - Duration::from_millis(1));
        assert_eq!(h.r.poll_timeout(), Some(t));
        h.r.handle_timeout(t);
        assert_eq!(h.r.phase(), Phase::EnterPin);
        assert_eq!(h.r.timeouts, 1);
        // A digit resets the count and restarts the timer.
        h.now = t + T;
        h.press("1");
        assert_eq!(h.r.timeouts, 0);
        assert_eq!(h.r.poll_timeout(), Some(h.now + Duration::from_secs(6)));
    }

    #[test]
    fn digits_barge_into_prompts_and_are_kept_while_the_shell_works() {
        let mut h = H::new(RetrievalConfig::default(), Some("77513"));
        h.run(1);
        assert_eq!(h.heard(), s(&["vm-welcome"]));
        // Typing the PIN during the welcome stops it.
        h.press("1352");
        h.run(5);
        assert!(h.heard().is_empty(), "prompt kept playing");
        h.press("46#");
        assert_eq!(h.r.phase(), Phase::CheckingPin);
        // Typed ahead while the PIN is checked and the mailbox loads: "6" = next message.
        h.press("6");
        h.r.handle_login_result(
            h.now,
            LoginResult::Ok {
                must_change: false,
                needs_name: false,
            },
        );
        h.collect();
        assert_eq!(h.r.phase(), Phase::LoadingMailbox);
        h.load(mailbox3());
        // "6" skipped message 1 (11) straight to message 2 (10).
        assert_eq!(h.r.cur, 1);
        h.settle();
        let heard = h.heard();
        assert!(heard.contains(&"msg-10".to_string()), "{heard:?}");
        assert!(!heard.contains(&"msg-11".to_string()), "{heard:?}");
        // During playback a key acts at once.
        h.press("5");
        assert_eq!(h.r.phase(), Phase::Playing);
        assert_eq!(h.r.pos, 0);
    }

    #[test]
    fn hash_alone_reprompts_without_a_pin_check() {
        let mut h = H::new(RetrievalConfig::default(), Some("77513"));
        h.settle();
        h.heard();
        h.press("#");
        h.settle();
        assert_eq!(h.heard(), s(&["vm-enter-pin"]));
        assert!(h.events().is_empty());
        assert_eq!(h.r.phase(), Phase::EnterPin);
    }

    #[test]
    fn mailbox_is_asked_when_unknown_or_on_star() {
        let mut h = H::new(RetrievalConfig::default(), None);
        h.settle();
        assert_eq!(h.heard(), s(&["vm-welcome", "vm-enter-mailbox"]));
        h.press("15902#");
        h.settle();
        assert_eq!(h.heard(), s(&["vm-enter-pin"]));
        h.press("12*");
        h.settle();
        assert_eq!(h.heard(), s(&["vm-enter-mailbox"]));
        h.press("77513#135246#");
        let ev = h.events();
        assert!(matches!(
            ev.as_slice(),
            [Event::CheckPin { mailbox, pin: Some(p) }] if mailbox == "77513" && p.len() == 6
        ));
    }

    #[test]
    fn flood_of_200_digits_is_harmless_everywhere() {
        let flood: String = (0..200)
            .map(|i| ['1', '7', '3', '9', '4', '0', '2', '5', '6', '8', '*'][i % 11])
            .collect();
        // Into the PIN entry, then '#': sent as a wrong attempt that cannot match.
        let mut h = H::new(RetrievalConfig::default(), Some("77513"));
        h.settle();
        h.press(&flood.replace('*', "1"));
        h.press("#");
        assert!(matches!(
            h.events().as_slice(),
            [Event::CheckPin { pin: None, .. }]
        ));
        // While the shell works: bounded type-ahead.
        h.press(&flood);
        assert_eq!(h.r.typeahead.len(), MAX_TYPEAHEAD);
        h.r.handle_login_result(
            h.now,
            LoginResult::Ok {
                must_change: false,
                needs_name: false,
            },
        );
        h.collect();
        h.load(mailbox3());
        h.settle();
        // Into the message menus (no '#', so the call goes on).
        for c in flood.chars() {
            h.press(&c.to_string());
            h.run(3);
        }
        h.settle();
        assert_ne!(h.r.phase(), Phase::Done);
        assert!(h.r.playlist.len() < 200);
        // And the caller can still leave cleanly.
        h.r.handle_hangup(h.now);
        h.collect();
        let ev = h.events();
        assert_eq!(commits(&ev).len(), 1);
        assert_eq!(hangups(&ev), 0);
        assert!(h.r.is_done());
    }

    /// The scripted call of the full test, as steps; hang up after each prefix.
    #[test]
    fn hangup_at_every_step_never_panics_and_commits_right() {
        #[derive(Clone, Copy)]
        enum Step {
            Settle,
            Keys(&'static str),
            Login,
            Load,
            Frames(usize),
        }
        use Step::*;
        let script = [
            Frames(3),
            Settle,
            Keys("1352"),
            Keys("46#"),
            Login,
            Load,
            Frames(60),
            Settle,
            Keys("9"),
            Frames(10),
            Settle,
            Keys("7"),
            Frames(5),
            Keys("4"),
            Keys("7"),
            Keys("6"),
            Keys("7"),
            Settle,
            Keys("0"),
            Keys("3"),
            Frames(200),
            Keys("#"),
            Keys("2"),
            Settle,
            Keys("#"),
            Frames(5),
        ];
        // Index of the step that keeps the recorded name (`2` in the review).
        const KEPT: usize = 22;
        for cut in 0..=script.len() {
            let mut h = H::new(RetrievalConfig::default(), Some("77513"));
            for step in &script[..cut] {
                match *step {
                    Settle => h.settle(),
                    Keys(k) => h.press(k),
                    Login => {
                        h.r.handle_login_result(
                            h.now,
                            LoginResult::Ok {
                                must_change: false,
                                needs_name: false,
                            },
                        );
                        h.collect();
                    }
                    Load => h.load(mailbox3()),
                    Frames(n) => {
                        // Audio from the caller too (used only while recording).
                        for _ in 0..n {
                            h.r.handle_audio(h.now, &[REC_VALUE; FRAME]);
                            h.step();
                        }
                    }
                }
            }
            let loaded = h.r.loaded;
            let was_done = h.r.phase() == Phase::Done;
            let before: Vec<Event> = h.events();
            h.r.handle_hangup(h.now);
            // Late answers and input after the hang-up are ignored.
            h.r.handle_login_result(h.now, LoginResult::NoPin);
            h.r.handle_mailbox(h.now, mailbox3());
            h.r.handle_message_audio(h.now, 10, msg_audio(10, 5));
            h.r.handle_pin_changed(h.now, true);
            h.press("123#");
            h.run(5);
            h.r.handle_timeout(h.now + Duration::from_secs(3600));
            let after = h.events();
            assert!(h.r.is_done(), "cut {cut}");
            assert_eq!(hangups(&after), 0, "cut {cut}");
            let all: Vec<Event> = before.into_iter().chain(after).collect();
            let c = commits(&all);
            assert_eq!(c.len(), usize::from(loaded), "cut {cut}");
            let stored = all
                .iter()
                .filter(|e| matches!(e, Event::StoreGreeting { kind: GreetingKind::Name, audio } if !audio.is_empty()))
                .count();
            assert_eq!(stored, usize::from(cut > KEPT), "cut {cut}");
            if cut > KEPT {
                assert!(matches!(script[KEPT], Keys("2")));
            }
            if cut == script.len() {
                assert!(was_done);
                assert_eq!(c, vec![(vec![12], vec![11, 10])]);
            }
            if cut == 12 {
                // Saved 11, deleted 10 (heard) before hanging up.
                assert_eq!(c, vec![(vec![10], vec![11])], "cut {cut}");
            }
        }
    }

    #[test]
    fn skip_and_pause_during_playback() {
        let cfg = RetrievalConfig {
            max_pause: Duration::from_secs(10),
            ..Default::default()
        };
        let mut h = H::new(cfg, Some("77513"));
        h.msg_frames = 1000; // 20 s
        h.login("135246");
        h.load(mailbox3());
        while h.r.phase() != Phase::Playing {
            h.step();
        }
        h.run(100); // 2 s in
        assert_eq!(h.r.pos, 100 * FRAME);
        h.press("3");
        assert_eq!(h.r.pos, 100 * FRAME + 40_000);
        h.press("1");
        h.press("1");
        assert_eq!(h.r.pos, 0);
        h.run(10);
        h.press("2");
        let t_pause = h.now;
        h.run(50);
        assert_eq!(h.r.pos, 10 * FRAME, "paused");
        assert_eq!(h.r.poll_timeout(), Some(t_pause + Duration::from_secs(10)));
        h.press("2");
        h.run(10);
        assert_eq!(h.r.pos, 20 * FRAME);
        // A pause carries on by itself after max_pause.
        h.press("2");
        h.run(600);
        assert!(h.r.pos > 20 * FRAME);
        // Forward past the end ends the message: the menu follows.
        for _ in 0..10 {
            h.press("3");
        }
        h.run(1);
        assert_eq!(h.r.phase(), Phase::MessageMenu);
        // 1 after the message: its last 5 s.
        h.settle();
        h.press("1");
        assert_eq!(h.r.phase(), Phase::Playing);
        assert_eq!(h.r.pos, 1000 * FRAME - 40_000);
    }

    #[test]
    fn help_envelope_and_main_menu_keys() {
        let mut h = H::new(RetrievalConfig::default(), Some("77513"));
        h.login("135246");
        h.load(mailbox3());
        h.settle();
        h.heard();
        h.press("*");
        h.settle();
        assert_eq!(
            h.heard(),
            s(&[
                "vm-help-playback",
                "vm-help-navigate",
                "vm-help-actions",
                "vm-help-general"
            ])
        );
        h.press("8");
        h.settle();
        let heard = h.heard();
        assert_eq!(heard.first().map(String::as_str), Some("vm-message"));
        assert_eq!(heard.last().map(String::as_str), Some("vm-menu-message"));
        assert!(
            !heard.iter().any(|x| x.starts_with("msg-")),
            "envelope only"
        );
        h.press("0");
        h.settle();
        assert_eq!(h.heard(), s(&["vm-menu-main"]));
        h.press("5");
        h.settle();
        assert_eq!(h.heard(), s(&["vm-invalid-option", "vm-menu-main"]));
        h.press("1");
        assert_eq!((h.r.phase(), h.r.cur), (Phase::Envelope, 0));
        h.press("4");
        h.settle();
        assert_eq!(h.heard(), s(&["vm-no-previous-message", "vm-menu-message"]));
    }

    #[test]
    fn empty_mailbox_goes_to_main_menu() {
        let mut h = H::new(RetrievalConfig::default(), Some("77513"));
        h.login("135246");
        h.heard();
        h.load(Vec::new());
        h.settle();
        assert_eq!(h.heard(), s(&["vm-no-messages", "vm-menu-main"]));
        h.press("1");
        h.settle();
        assert_eq!(h.heard(), s(&["vm-no-messages", "vm-menu-main"]));
        h.r.handle_hangup(h.now);
        h.collect();
        assert_eq!(commits(&h.events()), vec![(vec![], vec![])]);
    }

    #[test]
    fn message_that_never_loads_is_skipped_not_stuck() {
        let cfg = RetrievalConfig {
            shell_timeout: Duration::from_secs(2),
            ..Default::default()
        };
        let mut h = H::new(cfg, Some("77513"));
        h.auto_load = false;
        h.login("135246");
        h.load(mailbox3());
        h.settle();
        let heard = h.heard();
        assert_eq!(
            heard[heard.len() - 2..],
            s(&["vm-message-unavailable", "vm-menu-message"])
        );
        // A late answer for it is dropped.
        h.r.handle_message_audio(h.now, 11, msg_audio(11, 5));
        assert_eq!(h.r.phase(), Phase::MessageMenu);
        // Nothing was heard, so nothing moves.
        h.r.handle_hangup(h.now);
        h.collect();
        assert_eq!(commits(&h.events()), vec![(vec![], vec![])]);
    }

    #[test]
    fn shell_that_never_answers_the_pin_check_ends_the_call() {
        let mut h = H::new(RetrievalConfig::default(), Some("77513"));
        h.settle();
        h.press("135246#");
        h.heard();
        let t = h.r.poll_timeout().unwrap();
        assert_eq!(t, h.now + Duration::from_secs(30));
        h.r.handle_timeout(t);
        h.settle();
        assert_eq!(h.heard(), s(&["vm-not-available-try-later"]));
        assert!(h.r.is_done());
    }

    fn record(h: &mut H, frames: usize) {
        h.settle();
        assert!(matches!(h.r.phase(), Phase::Recording(_)));
        for _ in 0..frames {
            h.r.handle_audio(h.now, &[REC_VALUE; FRAME]);
            h.step();
        }
    }

    #[test]
    fn first_login_forced_pin_change_then_name() {
        let mut h = H::new(RetrievalConfig::default(), Some("77513"));
        h.settle();
        h.press("135246#");
        h.r.handle_login_result(
            h.now,
            LoginResult::Ok {
                must_change: true,
                needs_name: true,
            },
        );
        h.collect();
        h.heard();
        h.settle();
        assert_eq!(h.heard(), s(&["vm-must-change-pin", "vm-enter-new-pin"]));
        // '*' does not escape a forced change.
        h.press("*");
        assert_eq!(h.r.phase(), Phase::EnterNewPin);
        // Trivial PIN refused by the policy.
        h.press("123456#");
        h.settle();
        // (The re-prompt after '*' was cut short by the next digit before it was heard.)
        assert_eq!(h.heard(), s(&["vm-pin-too-simple", "vm-enter-new-pin"]));
        // Two different entries.
        h.press("284619#");
        h.press("284610#");
        h.settle();
        assert_eq!(h.heard(), s(&["vm-pins-differ", "vm-enter-new-pin"]));
        h.press("284619#284619#");
        let ev = h.events();
        let [Event::CheckPin { .. }, Event::ChangePin { new_pin }] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!(new_pin.expose_digits(), "284619");
        assert!(!format!("{ev:?} {:?}", h.r).contains("284619"));
        h.r.handle_pin_changed(h.now, true);
        h.collect();
        h.settle();
        let heard = h.heard();
        assert_eq!(
            heard[..5],
            s(&[
                "vm-pin-changed",
                "num-10",
                "vm-minutes",
                "vm-record-name-first",
                "vm-record-name"
            ])
        );
        assert_eq!(heard.last().map(String::as_str), Some("beep"));
        record(&mut h, 50);
        h.press("#");
        h.settle();
        assert_eq!(h.heard(), s(&["vm-record-review"]));
        h.press("1");
        h.settle();
        assert_eq!(h.heard(), s(&["recording", "vm-record-review"]));
        h.press("2");
        let ev = h.events();
        let [Event::StoreGreeting { kind, audio }, Event::LoadMailbox { .. }] = ev.as_slice()
        else {
            panic!("{ev:?}")
        };
        assert_eq!(*kind, GreetingKind::Name);
        assert_eq!(audio.len(), 50 * FRAME);
        assert_eq!(h.r.phase(), Phase::LoadingMailbox);
    }

    #[test]
    fn options_greetings_rerecord_keep_temporary_and_pin_change() {
        let cfg = RetrievalConfig {
            max_greeting: Duration::from_secs(2),
            ..Default::default()
        };
        let mut h = H::new(cfg, Some("77513"));
        h.login("135246");
        h.load(Vec::new());
        h.settle();
        h.events();
        h.press("0");
        h.heard();
        h.settle();
        assert_eq!(h.heard(), s(&["vm-menu-options", "vm-menu-options-more"]));
        // Busy greeting: too short, re-record, hits the 2 s limit, keep.
        h.press("2");
        record(&mut h, 5);
        h.press("#");
        h.settle();
        assert_eq!(h.r.phase(), Phase::Review(GreetingKind::Busy));
        h.heard();
        h.press("2");
        h.settle();
        assert_eq!(h.heard(), s(&["vm-invalid-option", "vm-record-review"]));
        h.press("3");
        record(&mut h, 150);
        assert_eq!(h.r.phase(), Phase::Review(GreetingKind::Busy));
        h.press("2");
        let ev = h.events();
        assert!(
            matches!(
                ev.as_slice(),
                [Event::StoreGreeting { kind: GreetingKind::Busy, audio }] if audio.len() == 16_000
            ),
            "{ev:?}"
        );
        h.heard();
        h.settle();
        assert_eq!(
            h.heard(),
            s(&[
                "vm-greeting-saved",
                "vm-menu-options",
                "vm-menu-options-more"
            ])
        );
        // Temporary greeting removed.
        h.press("42");
        assert!(matches!(
            h.events().as_slice(),
            [Event::DeleteGreeting {
                kind: GreetingKind::Temporary
            }]
        ));
        assert_eq!(h.r.phase(), Phase::Options);
        // Unavailable greeting discarded with 0.
        h.press("1");
        record(&mut h, 50);
        h.press("#0");
        assert_eq!(h.r.phase(), Phase::Options);
        assert!(h.events().is_empty());
        // PIN change from the options; '*' cancels, then a real one the shell refuses.
        h.press("5");
        h.press("*");
        assert_eq!(h.r.phase(), Phase::Options);
        h.press("5284619#284619#");
        assert_eq!(h.r.phase(), Phase::ChangingPin);
        h.r.handle_pin_changed(h.now, false);
        assert_eq!(h.r.phase(), Phase::Options);
        // Hang-up while recording stores nothing.
        h.press("1");
        record(&mut h, 50);
        h.r.handle_hangup(h.now);
        h.collect();
        let ev = h.events();
        assert!(ev.iter().all(|e| !matches!(e, Event::StoreGreeting { .. })));
        assert_eq!(commits(&ev).len(), 1);
    }

    #[test]
    fn machine_debug_never_shows_typed_digits() {
        let mut h = H::new(RetrievalConfig::default(), Some("77513"));
        h.settle();
        h.press("864209");
        let dbg = format!("{:?}", h.r);
        assert!(!dbg.contains("864209"), "{dbg}");
        assert!(dbg.contains("EnterPin"));
    }

    #[test]
    fn order_is_configurable() {
        let cfg = RetrievalConfig {
            new_first: false,
            oldest_first: false,
            ..Default::default()
        };
        let mut h = H::new(cfg, Some("77513"));
        h.login("135246");
        h.load(mailbox3());
        let order: Vec<i64> = h.r.messages.iter().map(|m| m.info.id).collect();
        assert_eq!(order, vec![10, 11, 12]);
    }
}
