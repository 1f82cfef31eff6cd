//! Signal level and silence detection for the recorder (8 kHz 16-bit samples).
//!
//! Levels are RMS in dBFS relative to a full-scale square wave (RMS 32768 → 0 dBFS; a
//! full-scale sine reads −3 dBFS), measured per 20 ms frame of [`FRAME_SAMPLES`].
//!
//! [`SilenceDetector`] defaults (see [`SilenceConfig::default`]):
//! - threshold **−45 dBFS**: G.711 idle-channel noise sits around −60…−70 dBFS and typical
//!   background/comfort noise around −50…−55 dBFS, while quiet speech averages above −35 dBFS
//!   (Asterisk's default `silencethreshold` of 128 is about −48 dBFS); −45 separates the two
//!   with room on either side;
//! - hysteresis **4 dB**: once silent, a frame must reach −41 dBFS to count as sound;
//! - **2** consecutive loud frames (40 ms) are needed to end silence, so a single click or
//!   packet-loss glitch does not restart the "silent for" clock.
//!
//! Time is counted in samples, not wall-clock: silence is as long as the audio says it is.

use std::time::Duration;

/// Samples per analysis frame (20 ms at 8 kHz).
pub const FRAME_SAMPLES: usize = 160;
/// Sample rate assumed when converting sample counts to time.
pub const SAMPLE_RATE: u32 = 8000;
/// Level reported for digital silence or an empty slice.
pub const MIN_DBFS: f32 = -120.0;

/// Converts a sum of squared samples over `n` samples to dBFS.
fn sumsq_to_dbfs(sumsq: f64, n: usize) -> f32 {
    if n == 0 || sumsq <= 0.0 {
        return MIN_DBFS;
    }
    let ms = sumsq / n as f64;
    let db = 10.0 * (ms / (32768.0 * 32768.0)).log10();
    (db as f32).max(MIN_DBFS)
}

/// RMS level of `samples` in dBFS ([`MIN_DBFS`] for silence or an empty slice).
pub fn rms_dbfs(samples: &[i16]) -> f32 {
    let sumsq: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    sumsq_to_dbfs(sumsq, samples.len())
}

/// Tunables of a [`SilenceDetector`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SilenceConfig {
    /// A frame below this level is silent (dBFS).
    pub threshold_dbfs: f32,
    /// While silent, a frame must exceed `threshold_dbfs + hysteresis_db` to count as sound.
    pub hysteresis_db: f32,
    /// Consecutive sound frames needed to end a silence.
    pub min_sound_frames: u32,
}

impl Default for SilenceConfig {
    fn default() -> Self {
        SilenceConfig {
            threshold_dbfs: -45.0,
            hysteresis_db: 4.0,
            min_sound_frames: 2,
        }
    }
}

/// Tracks how long the audio has been silent. Starts in the silent state (a caller who says
/// nothing from the start is silent from the start).
#[derive(Debug, Clone)]
pub struct SilenceDetector {
    cfg: SilenceConfig,
    sumsq: f64,
    n: usize,
    silent: bool,
    silent_samples: u64,
    loud_run: u32,
    loud_run_samples: u64,
    last_dbfs: f32,
    frames: u64,
}

impl Default for SilenceDetector {
    fn default() -> Self {
        Self::new(SilenceConfig::default())
    }
}

impl SilenceDetector {
    /// A detector in the silent state with zero silence so far.
    pub fn new(cfg: SilenceConfig) -> Self {
        SilenceDetector {
            cfg,
            sumsq: 0.0,
            n: 0,
            silent: true,
            silent_samples: 0,
            loud_run: 0,
            loud_run_samples: 0,
            last_dbfs: MIN_DBFS,
            frames: 0,
        }
    }

    /// Feeds samples of any length; analysis happens per complete 20 ms frame.
    pub fn push(&mut self, samples: &[i16]) {
        for &s in samples {
            self.sumsq += f64::from(s) * f64::from(s);
            self.n += 1;
            if self.n == FRAME_SAMPLES {
                let db = sumsq_to_dbfs(self.sumsq, self.n);
                self.sumsq = 0.0;
                self.n = 0;
                self.on_frame(db);
            }
        }
    }

    /// Adds `samples` of known silence (e.g. a jitter-buffer gap) without analysing anything.
    /// Completes any partial frame as silence first.
    pub fn push_silence(&mut self, samples: u64) {
        let mut left = samples;
        if self.n > 0 {
            let fill = ((FRAME_SAMPLES - self.n) as u64).min(left);
            self.n += fill as usize; // fill <= FRAME_SAMPLES - n
            left -= fill;
            if self.n == FRAME_SAMPLES {
                let db = sumsq_to_dbfs(self.sumsq, self.n);
                self.sumsq = 0.0;
                self.n = 0;
                self.on_frame(db);
            }
        }
        let frames = left / FRAME_SAMPLES as u64;
        if frames > 0 {
            self.on_frame(MIN_DBFS);
            // The remaining whole frames are all silent: account for them in one step.
            self.silent_samples += (frames - 1) * FRAME_SAMPLES as u64;
            self.frames += frames - 1;
        }
        self.n = (left % FRAME_SAMPLES as u64) as usize; // < FRAME_SAMPLES
    }

    fn on_frame(&mut self, db: f32) {
        self.frames += 1;
        self.last_dbfs = db;
        let frame = FRAME_SAMPLES as u64;
        if self.silent {
            if db > self.cfg.threshold_dbfs + self.cfg.hysteresis_db {
                self.loud_run += 1;
                self.loud_run_samples += frame;
                if self.loud_run >= self.cfg.min_sound_frames.max(1) {
                    self.silent = false;
                    self.silent_samples = 0;
                    self.loud_run = 0;
                    self.loud_run_samples = 0;
                }
            } else {
                // An isolated loud blip counts as part of the silence.
                self.silent_samples += self.loud_run_samples + frame;
                self.loud_run = 0;
                self.loud_run_samples = 0;
            }
        } else if db < self.cfg.threshold_dbfs {
            self.silent = true;
            self.silent_samples = frame;
        }
    }

    /// `true` while in the silent state.
    pub fn is_silent(&self) -> bool {
        self.silent
    }

    /// How long the current silence has lasted (zero while there is sound).
    pub fn silent_for(&self) -> Duration {
        if !self.silent {
            return Duration::ZERO;
        }
        Duration::from_micros(self.silent_samples * 1_000_000 / u64::from(SAMPLE_RATE))
    }

    /// Level of the last complete frame (dBFS).
    pub fn last_frame_dbfs(&self) -> f32 {
        self.last_dbfs
    }

    /// Complete frames analysed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(amp: f32, freq: f32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|k| {
                let t = k as f32 / SAMPLE_RATE as f32;
                (amp * (2.0 * std::f32::consts::PI * freq * t).sin()) as i16
            })
            .collect()
    }

    /// A sine whose RMS is `db` dBFS.
    fn at_dbfs(db: f32, n: usize) -> Vec<i16> {
        let amp = 32768.0 * 10f32.powf(db / 20.0) * std::f32::consts::SQRT_2;
        sine(amp, 440.0, n)
    }

    #[test]
    fn rms_dbfs_reference_points() {
        assert_eq!(rms_dbfs(&[]), MIN_DBFS);
        assert_eq!(rms_dbfs(&[0; 160]), MIN_DBFS);
        // Full-scale square wave is 0 dBFS.
        let sq: Vec<i16> = (0..160)
            .map(|k| if k % 2 == 0 { 32767 } else { -32768 })
            .collect();
        assert!(rms_dbfs(&sq).abs() < 0.01);
        // Full-scale sine is about -3 dBFS.
        let s = sine(32767.0, 1000.0, 8000);
        assert!((rms_dbfs(&s) + 3.01).abs() < 0.05, "{}", rms_dbfs(&s));
        // -20 dB per factor of ten.
        let s = sine(3276.7, 1000.0, 8000);
        assert!((rms_dbfs(&s) + 23.01).abs() < 0.05);
        assert!((rms_dbfs(&at_dbfs(-45.0, 1600)) + 45.0).abs() < 0.1);
    }

    #[test]
    fn silence_accumulates_from_start() {
        let mut d = SilenceDetector::default();
        assert!(d.is_silent());
        d.push(&at_dbfs(-60.0, 8000));
        assert!(d.is_silent());
        assert_eq!(d.silent_for(), Duration::from_secs(1));
        assert_eq!(d.frames(), 50);
        assert!((d.last_frame_dbfs() + 60.0).abs() < 0.5);
    }

    #[test]
    fn speech_resets_and_quiet_restarts_silence() {
        let mut d = SilenceDetector::default();
        d.push(&at_dbfs(-60.0, 4000));
        d.push(&at_dbfs(-20.0, 800));
        assert!(!d.is_silent());
        assert_eq!(d.silent_for(), Duration::ZERO);
        d.push(&at_dbfs(-55.0, 1600));
        assert!(d.is_silent());
        assert_eq!(d.silent_for(), Duration::from_millis(200));
    }

    #[test]
    fn hysteresis_band_keeps_state() {
        let mut d = SilenceDetector::default();
        // Silent; -43 dBFS is above the threshold but inside the hysteresis band.
        d.push(&at_dbfs(-43.0, 1600));
        assert!(d.is_silent());
        assert_eq!(d.silent_for(), Duration::from_millis(200));
        // Sound; -43 is above the threshold, so still sound.
        d.push(&at_dbfs(-30.0, 480));
        assert!(!d.is_silent());
        d.push(&at_dbfs(-43.0, 1600));
        assert!(!d.is_silent());
        d.push(&at_dbfs(-47.0, 160));
        assert!(d.is_silent());
    }

    #[test]
    fn single_click_does_not_break_silence() {
        let mut d = SilenceDetector::default();
        d.push(&at_dbfs(-60.0, 1600));
        d.push(&at_dbfs(-10.0, 160));
        d.push(&at_dbfs(-60.0, 1600));
        assert!(d.is_silent());
        assert_eq!(d.silent_for(), Duration::from_millis(420));
        // Two loud frames do.
        d.push(&at_dbfs(-10.0, 320));
        assert!(!d.is_silent());
    }

    #[test]
    fn partial_frames_are_accumulated() {
        let mut d = SilenceDetector::default();
        let s = at_dbfs(-20.0, 320);
        for c in s.chunks(7) {
            d.push(c);
        }
        assert_eq!(d.frames(), 2);
        assert!(!d.is_silent());
    }

    #[test]
    fn push_silence_counts_gap_length() {
        let mut d = SilenceDetector::default();
        d.push(&at_dbfs(-20.0, 400)); // 2.5 frames of sound
        assert!(!d.is_silent());
        d.push_silence(80 + 8000);
        assert!(d.is_silent());
        // The half-filled frame completes at ~-23 dBFS (sound), then 50 silent frames.
        assert_eq!(d.silent_for(), Duration::from_secs(1));
        assert_eq!(d.frames(), 53);
    }
}
