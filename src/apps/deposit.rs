//! Voicemail deposit: greeting, beep, record, save.
//!
//! Polling contract (called by the shell, all with `now` passed in):
//! - every 20 ms `poll_audio(now)` gives the next frame to send (prompt audio or silence);
//! - `handle_audio` with each decoded frame from the caller, `handle_dtmf` with each digit,
//!   `handle_hangup` when the caller hangs up;
//! - `poll_event` after any input: `Save` asks the shell to store the message durably (answer
//!   with `handle_saved`), `Hangup` asks it to end the call;
//! - `poll_timeout`/`handle_timeout` for the recording limits when no audio arrives.
//!
//! The caller hears "saved" only after `handle_saved(Ok)`: the message is durable first.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{PromptSource, FRAME};
use crate::store::DiversionReason;

/// Limits of a deposit, from `[voicemail]`.
#[derive(Debug, Clone)]
pub struct DepositConfig {
    pub max_message: Duration,
    pub min_message: Duration,
    pub silence: Duration,
    pub silence_threshold_dbfs: f32,
    pub star_to_login: bool,
}

impl Default for DepositConfig {
    fn default() -> Self {
        Self {
            max_message: Duration::from_secs(180),
            min_message: Duration::from_secs(1),
            silence: Duration::from_secs(10),
            silence_threshold_dbfs: -50.0,
            star_to_login: false,
        }
    }
}

/// What the shell found out about the mailbox before answering.
#[derive(Debug, Clone, Default)]
pub struct Greetings {
    pub unavailable: Option<Arc<[i16]>>,
    pub busy: Option<Arc<[i16]>>,
    pub temporary: Option<Arc<[i16]>>,
    pub name: Option<Arc<[i16]>>,
}

/// Everything the machine needs to start.
#[derive(Debug, Clone)]
pub struct DepositSetup {
    pub extension: String,
    pub reason: DiversionReason,
    pub greetings: Greetings,
    pub mailbox_full: bool,
}

/// Why a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    Hash,
    Silence,
    MaxLength,
    Hangup,
}

/// Requests from the machine to the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Store this message durably, then call `handle_saved`.
    Save { audio: Vec<i16>, cause: StopCause },
    /// The recording was too short and was discarded.
    Discarded { cause: StopCause },
    /// `*` during the greeting with `star_to_login` on.
    Login,
    /// End the call (send BYE unless the caller already hung up).
    Hangup,
}

/// The phase of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Greeting,
    Beep,
    Recording,
    Saving,
    Closing,
    Done,
}

/// The deposit machine.
pub struct Deposit {
    cfg: DepositConfig,
    phase: Phase,
    playlist: VecDeque<Arc<[i16]>>,
    play_pos: usize,
    recording: Vec<i16>,
    rec_started: Option<Instant>,
    /// Samples recorded up to the end of the last frame with voice in it.
    voiced_until: usize,
    last_voice_at: Option<Instant>,
    hung_up: bool,
    events: VecDeque<Event>,
    saved_prompt: Option<Arc<[i16]>>,
    goodbye: Option<Arc<[i16]>>,
    trouble: Option<Arc<[i16]>>,
    beep: Arc<[i16]>,
}

/// Trailing silence kept after the last voiced frame.
const KEEP_TAIL: usize = 4000; // 0.5 s

impl Deposit {
    /// Builds the flow; the greeting starts playing at the first `poll_audio`.
    pub fn new(cfg: DepositConfig, setup: &DepositSetup, prompts: &dyn PromptSource) -> Self {
        let get = |id: &str| prompts.prompt(id);
        let mut playlist = VecDeque::new();
        let mut phase = Phase::Greeting;
        if setup.mailbox_full {
            playlist.extend(get("vm-mailbox-full"));
            phase = Phase::Closing;
        } else {
            let g = &setup.greetings;
            let owner = match setup.reason {
                _ if g.temporary.is_some() => g.temporary.clone(),
                DiversionReason::Busy => g.busy.clone(),
                _ => g.unavailable.clone(),
            };
            match owner {
                Some(own) => playlist.push_back(own),
                None => {
                    match &g.name {
                        Some(name) => playlist.push_back(name.clone()),
                        None => {
                            playlist.extend(get("vm-person-at-extension"));
                            for d in setup.extension.chars() {
                                playlist.extend(get(&format!("digit-{d}")));
                            }
                        }
                    }
                    playlist.extend(get(if setup.reason == DiversionReason::Busy {
                        "vm-is-busy"
                    } else {
                        "vm-is-unavailable"
                    }));
                    playlist.extend(get("vm-leave-message"));
                }
            }
        }
        let beep: Arc<[i16]> = codecs::tone::beep(400).into();
        Self {
            cfg,
            phase,
            playlist,
            play_pos: 0,
            recording: Vec::new(),
            rec_started: None,
            voiced_until: 0,
            last_voice_at: None,
            hung_up: false,
            events: VecDeque::new(),
            saved_prompt: get("vm-saved"),
            goodbye: get("vm-goodbye"),
            trouble: get("vm-not-available-try-later"),
            beep,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Samples recorded so far.
    pub fn recorded_samples(&self) -> usize {
        self.recording.len()
    }

    /// The next 20 ms to send to the caller.
    pub fn poll_audio(&mut self, now: Instant) -> [i16; FRAME] {
        let mut out = [0i16; FRAME];
        let mut filled = 0;
        while filled < FRAME {
            let Some(clip) = self.playlist.front() else {
                break;
            };
            let avail = clip.len().saturating_sub(self.play_pos);
            let n = avail.min(FRAME - filled);
            out[filled..filled + n].copy_from_slice(&clip[self.play_pos..self.play_pos + n]);
            filled += n;
            self.play_pos += n;
            if self.play_pos >= clip.len() {
                self.playlist.pop_front();
                self.play_pos = 0;
            }
        }
        if self.playlist.is_empty() {
            self.on_playlist_done(now);
        }
        out
    }

    fn on_playlist_done(&mut self, now: Instant) {
        match self.phase {
            Phase::Greeting => {
                self.phase = Phase::Beep;
                self.playlist.push_back(self.beep.clone());
            }
            Phase::Beep => self.start_recording(now),
            Phase::Closing => {
                self.phase = Phase::Done;
                if !self.hung_up {
                    self.events.push_back(Event::Hangup);
                }
            }
            Phase::Recording | Phase::Saving | Phase::Done => {}
        }
    }

    fn start_recording(&mut self, now: Instant) {
        self.phase = Phase::Recording;
        self.rec_started = Some(now);
        self.last_voice_at = Some(now);
        // Ten seconds up front; longer messages grow the buffer as they go.
        self.recording
            .reserve((self.cfg.max_message.as_millis() as usize * 8).min(8000 * 10));
    }

    /// Caller audio (decoded, in order, gaps already filled by the jitter buffer).
    pub fn handle_audio(&mut self, now: Instant, samples: &[i16]) {
        if self.phase != Phase::Recording {
            return;
        }
        let max = self.cfg.max_message.as_millis() as usize * 8;
        let room = max.saturating_sub(self.recording.len());
        let take = &samples[..samples.len().min(room)];
        self.recording.extend_from_slice(take);
        if crate::media::level::rms_dbfs(take) > self.cfg.silence_threshold_dbfs {
            self.voiced_until = self.recording.len();
            self.last_voice_at = Some(now);
        }
        if self.recording.len() >= max {
            self.stop(now, StopCause::MaxLength);
        } else {
            self.check_timers(now);
        }
    }

    /// A digit from RFC 4733 or the in-band detector.
    pub fn handle_dtmf(&mut self, now: Instant, digit: char) {
        match (self.phase, digit) {
            (Phase::Greeting, '#') => {
                // Skip the greeting straight to the beep.
                self.playlist.clear();
                self.play_pos = 0;
                self.on_playlist_done(now);
            }
            (Phase::Greeting, '*') if self.cfg.star_to_login => {
                self.playlist.clear();
                self.phase = Phase::Done;
                self.events.push_back(Event::Login);
            }
            (Phase::Recording, '#') => self.stop(now, StopCause::Hash),
            _ => {}
        }
    }

    /// The caller hung up (BYE received, or media timed out).
    pub fn handle_hangup(&mut self, now: Instant) {
        self.hung_up = true;
        self.playlist.clear();
        match self.phase {
            Phase::Recording => self.stop(now, StopCause::Hangup),
            Phase::Saving => {}
            _ => self.phase = Phase::Done,
        }
    }

    /// The shell's answer to `Event::Save`.
    pub fn handle_saved(&mut self, _now: Instant, ok: bool) {
        if self.phase != Phase::Saving {
            return;
        }
        if self.hung_up {
            self.phase = Phase::Done;
            return;
        }
        self.phase = Phase::Closing;
        let prompt = if ok {
            self.saved_prompt.clone()
        } else {
            self.trouble.clone()
        };
        self.playlist.extend(prompt);
    }

    /// When the machine next needs `handle_timeout` if no audio arrives.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase != Phase::Recording {
            return None;
        }
        let start = self.rec_started?;
        let last = self.last_voice_at.unwrap_or(start);
        Some((start + self.cfg.max_message).min(last + self.cfg.silence))
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.check_timers(now);
    }

    fn check_timers(&mut self, now: Instant) {
        if self.phase != Phase::Recording {
            return;
        }
        let Some(start) = self.rec_started else {
            return;
        };
        if now >= start + self.cfg.max_message {
            self.stop(now, StopCause::MaxLength);
        } else if now >= self.last_voice_at.unwrap_or(start) + self.cfg.silence {
            self.stop(now, StopCause::Silence);
        }
    }

    fn stop(&mut self, _now: Instant, cause: StopCause) {
        let keep = match cause {
            // '#' and hang-up keep what was said up to that moment, less a long silent tail.
            StopCause::Hash | StopCause::Hangup | StopCause::Silence => {
                (self.voiced_until + KEEP_TAIL).min(self.recording.len())
            }
            StopCause::MaxLength => self.recording.len(),
        };
        let keep = if self.voiced_until == 0 { 0 } else { keep };
        self.recording.truncate(keep);
        let min = self.cfg.min_message.as_millis() as usize * 8;
        if self.recording.len() < min.max(1) {
            self.recording = Vec::new();
            self.events.push_back(Event::Discarded { cause });
            if self.hung_up {
                self.phase = Phase::Done;
            } else {
                self.phase = Phase::Closing;
                self.playlist.extend(self.goodbye.clone());
            }
            return;
        }
        self.phase = Phase::Saving;
        let audio = std::mem::take(&mut self.recording);
        self.events.push_back(Event::Save { audio, cause });
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Nothing more will happen in this flow.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done && self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Prompts of distinct constant values so tests can tell what was played.
    struct FakePrompts(HashMap<String, Arc<[i16]>>);

    impl FakePrompts {
        fn new() -> Self {
            let ids = [
                "vm-person-at-extension",
                "vm-is-unavailable",
                "vm-is-busy",
                "vm-leave-message",
                "vm-mailbox-full",
                "vm-saved",
                "vm-goodbye",
                "vm-not-available-try-later",
            ];
            let mut m = HashMap::new();
            for (i, id) in ids.iter().enumerate() {
                m.insert(id.to_string(), vec![100 + i as i16; 800].into());
            }
            for d in 0..10 {
                m.insert(format!("digit-{d}"), vec![1000 + d as i16; 400].into());
            }
            Self(m)
        }
        fn value(&self, id: &str) -> i16 {
            self.0[id][0]
        }
    }

    impl PromptSource for FakePrompts {
        fn prompt(&self, id: &str) -> Option<Arc<[i16]>> {
            self.0.get(id).cloned()
        }
    }

    fn setup(reason: DiversionReason) -> DepositSetup {
        DepositSetup {
            extension: "77513".into(),
            reason,
            greetings: Greetings::default(),
            mailbox_full: false,
        }
    }

    const T: Duration = Duration::from_millis(20);

    /// Plays until recording starts; returns the distinct first samples heard per frame.
    fn run_greeting(d: &mut Deposit, now: &mut Instant) -> Vec<i16> {
        let mut heard = Vec::new();
        for _ in 0..10_000 {
            if d.phase() == Phase::Recording {
                return heard;
            }
            let f = d.poll_audio(*now);
            if heard.last() != Some(&f[0]) {
                heard.push(f[0]);
            }
            *now += T;
        }
        panic!("greeting never ended");
    }

    fn voice() -> [i16; FRAME] {
        let mut f = [0i16; FRAME];
        for (i, s) in f.iter_mut().enumerate() {
            *s = if i % 20 < 10 { 6000 } else { -6000 };
        }
        f
    }

    #[test]
    fn default_greeting_says_extension_digits_then_unavailable() {
        let p = FakePrompts::new();
        let mut d = Deposit::new(
            DepositConfig::default(),
            &setup(DiversionReason::NoAnswer),
            &p,
        );
        let mut now = Instant::now();
        let heard = run_greeting(&mut d, &mut now);
        let want_start = [
            p.value("vm-person-at-extension"),
            p.value("digit-7"),
            p.value("digit-5"),
            p.value("digit-1"),
            p.value("digit-3"),
            p.value("vm-is-unavailable"),
            p.value("vm-leave-message"),
        ];
        // "7 7" plays the same value twice in a row, so it collapses to one entry.
        assert_eq!(&heard[..want_start.len()], &want_start);
    }

    #[test]
    fn busy_reason_with_recorded_name_uses_name_and_busy() {
        let p = FakePrompts::new();
        let mut s = setup(DiversionReason::Busy);
        s.greetings.name = Some(vec![7777i16; 800].into());
        let mut d = Deposit::new(DepositConfig::default(), &s, &p);
        let mut now = Instant::now();
        let heard = run_greeting(&mut d, &mut now);
        assert_eq!(
            &heard[..3],
            &[7777, p.value("vm-is-busy"), p.value("vm-leave-message")]
        );
    }

    #[test]
    fn owner_greeting_wins_and_temporary_overrides_it() {
        let p = FakePrompts::new();
        let mut s = setup(DiversionReason::NoAnswer);
        s.greetings.unavailable = Some(vec![4242i16; 800].into());
        let mut now = Instant::now();
        let mut d = Deposit::new(DepositConfig::default(), &s, &p);
        assert_eq!(run_greeting(&mut d, &mut now)[0], 4242);
        s.greetings.temporary = Some(vec![4343i16; 800].into());
        let mut d = Deposit::new(DepositConfig::default(), &s, &p);
        assert_eq!(run_greeting(&mut d, &mut now)[0], 4343);
    }

    #[test]
    fn hash_stops_recording_and_saved_is_said_only_after_durable_save() {
        let p = FakePrompts::new();
        let mut d = Deposit::new(
            DepositConfig::default(),
            &setup(DiversionReason::NoAnswer),
            &p,
        );
        let mut now = Instant::now();
        run_greeting(&mut d, &mut now);
        for _ in 0..150 {
            d.handle_audio(now, &voice());
            now += T;
        }
        d.handle_dtmf(now, '#');
        let Some(Event::Save { audio, cause }) = d.poll_event() else {
            panic!("expected save")
        };
        assert_eq!(cause, StopCause::Hash);
        assert_eq!(audio.len(), 150 * FRAME);
        // Nothing but silence until the store confirms.
        assert_eq!(d.poll_audio(now), [0; FRAME]);
        d.handle_saved(now, true);
        assert_eq!(d.poll_audio(now)[0], p.value("vm-saved"));
        for _ in 0..100 {
            d.poll_audio(now);
        }
        assert_eq!(d.poll_event(), Some(Event::Hangup));
        assert!(d.is_done());
    }

    #[test]
    fn hash_during_greeting_skips_to_beep() {
        let p = FakePrompts::new();
        let mut d = Deposit::new(
            DepositConfig::default(),
            &setup(DiversionReason::NoAnswer),
            &p,
        );
        let now = Instant::now();
        d.poll_audio(now);
        d.handle_dtmf(now, '#');
        assert_eq!(d.phase(), Phase::Beep);
    }

    #[test]
    fn star_goes_to_login_only_when_configured() {
        let p = FakePrompts::new();
        let now = Instant::now();
        let mut d = Deposit::new(
            DepositConfig::default(),
            &setup(DiversionReason::NoAnswer),
            &p,
        );
        d.handle_dtmf(now, '*');
        assert_eq!(d.poll_event(), None);
        assert_eq!(d.phase(), Phase::Greeting);
        let cfg = DepositConfig {
            star_to_login: true,
            ..Default::default()
        };
        let mut d = Deposit::new(cfg, &setup(DiversionReason::NoAnswer), &p);
        d.handle_dtmf(now, '*');
        assert_eq!(d.poll_event(), Some(Event::Login));
    }

    #[test]
    fn silence_ends_recording_and_tail_is_trimmed() {
        let p = FakePrompts::new();
        let cfg = DepositConfig {
            silence: Duration::from_secs(3),
            ..Default::default()
        };
        let mut d = Deposit::new(cfg, &setup(DiversionReason::NoAnswer), &p);
        let mut now = Instant::now();
        run_greeting(&mut d, &mut now);
        for _ in 0..100 {
            d.handle_audio(now, &voice());
            now += T;
        }
        let mut ev = None;
        for _ in 0..1000 {
            d.handle_audio(now, &[0; FRAME]);
            now += T;
            if let Some(e) = d.poll_event() {
                ev = Some(e);
                break;
            }
        }
        let Some(Event::Save { audio, cause }) = ev else {
            panic!("no save")
        };
        assert_eq!(cause, StopCause::Silence);
        assert_eq!(audio.len(), 100 * FRAME + KEEP_TAIL);
    }

    #[test]
    fn caller_sending_no_audio_is_discarded_by_timer() {
        let p = FakePrompts::new();
        let cfg = DepositConfig {
            silence: Duration::from_secs(5),
            ..Default::default()
        };
        let mut d = Deposit::new(cfg, &setup(DiversionReason::NoAnswer), &p);
        let mut now = Instant::now();
        run_greeting(&mut d, &mut now);
        let t = d.poll_timeout().unwrap();
        assert_eq!(t, now - T + Duration::from_secs(5));
        d.handle_timeout(t);
        assert_eq!(
            d.poll_event(),
            Some(Event::Discarded {
                cause: StopCause::Silence
            })
        );
        assert_eq!(d.phase(), Phase::Closing);
    }

    #[test]
    fn short_message_is_discarded_on_hangup() {
        let p = FakePrompts::new();
        let mut d = Deposit::new(
            DepositConfig::default(),
            &setup(DiversionReason::NoAnswer),
            &p,
        );
        let mut now = Instant::now();
        run_greeting(&mut d, &mut now);
        for _ in 0..30 {
            d.handle_audio(now, &voice());
            now += T;
        }
        d.handle_hangup(now);
        assert_eq!(
            d.poll_event(),
            Some(Event::Discarded {
                cause: StopCause::Hangup
            })
        );
        assert!(d.is_done());
    }

    #[test]
    fn hangup_while_recording_saves_without_prompt() {
        let p = FakePrompts::new();
        let mut d = Deposit::new(
            DepositConfig::default(),
            &setup(DiversionReason::NoAnswer),
            &p,
        );
        let mut now = Instant::now();
        run_greeting(&mut d, &mut now);
        for _ in 0..100 {
            d.handle_audio(now, &voice());
            now += T;
        }
        d.handle_hangup(now);
        assert!(matches!(
            d.poll_event(),
            Some(Event::Save {
                cause: StopCause::Hangup,
                ..
            })
        ));
        d.handle_saved(now, true);
        assert!(d.is_done());
        assert_eq!(d.poll_event(), None);
    }

    #[test]
    fn max_length_cuts_exactly() {
        let p = FakePrompts::new();
        let cfg = DepositConfig {
            max_message: Duration::from_secs(2),
            ..Default::default()
        };
        let mut d = Deposit::new(cfg, &setup(DiversionReason::NoAnswer), &p);
        let mut now = Instant::now();
        run_greeting(&mut d, &mut now);
        for _ in 0..200 {
            d.handle_audio(now, &voice());
            now += T;
        }
        let Some(Event::Save { audio, cause }) = d.poll_event() else {
            panic!()
        };
        assert_eq!(cause, StopCause::MaxLength);
        assert_eq!(audio.len(), 16000);
    }

    #[test]
    fn full_mailbox_is_told_politely_and_hung_up() {
        let p = FakePrompts::new();
        let mut s = setup(DiversionReason::NoAnswer);
        s.mailbox_full = true;
        let mut d = Deposit::new(DepositConfig::default(), &s, &p);
        let now = Instant::now();
        assert_eq!(d.poll_audio(now)[0], p.value("vm-mailbox-full"));
        for _ in 0..10 {
            d.poll_audio(now);
        }
        assert_eq!(d.poll_event(), Some(Event::Hangup));
        assert_eq!(d.recorded_samples(), 0);
    }

    #[test]
    fn hangup_during_greeting_ends_without_events() {
        let p = FakePrompts::new();
        let mut d = Deposit::new(
            DepositConfig::default(),
            &setup(DiversionReason::NoAnswer),
            &p,
        );
        let now = Instant::now();
        d.poll_audio(now);
        d.handle_hangup(now);
        assert!(d.is_done());
        assert_eq!(d.poll_event(), None);
    }
}
