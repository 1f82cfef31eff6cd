//! Tone generation for telephony: a phase-continuous sine oscillator, dual
//! tones (DTMF), and the voicemail "record after the beep" beep.
//!
//! Levels are given in 16-bit linear peak amplitude; [`dbm0_to_amplitude`]
//! converts from dBm0 (G.711: a sine at +3.17 dBm0 just reaches µ-law full
//! scale, 8159 on the 14-bit scale, i.e. 32636 on 16 bits).

use std::f64::consts::TAU;

/// The telephony sample rate, 8 kHz.
pub const SAMPLE_RATE_HZ: u32 = 8000;

/// Peak 16-bit amplitude of a 0 dBm0 sine: 32636 / 10^(3.17/20).
pub const DBM0_PEAK: f32 = 22_662.0;

/// Frequency of the voicemail beep.
pub const BEEP_HZ: f32 = 1000.0;

/// Level of the voicemail beep, dBm0.
pub const BEEP_DBM0: f32 = -10.0;

/// Length of each raised-cosine ramp of the beep, ms.
pub const BEEP_RAMP_MS: u32 = 5;

/// Longest beep [`beep`] will produce; longer requests are clamped.
pub const MAX_BEEP_MS: u32 = 10_000;

/// DTMF low-group (row) frequencies, Hz (ITU-T Q.23).
pub const DTMF_ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];

/// DTMF high-group (column) frequencies, Hz (ITU-T Q.23).
pub const DTMF_COLUMNS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// Keypad layout: `DTMF_KEYS[row][column]`.
const DTMF_KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Peak amplitude of a sine at `dbm0` dBm0, saturated to `i16::MAX`.
/// Non-finite input gives 0.
pub fn dbm0_to_amplitude(dbm0: f32) -> i16 {
    let a = DBM0_PEAK * 10f32.powf(dbm0 / 20.0);
    if a.is_finite() {
        // `as` saturates; the value is non-negative.
        a.round() as i16
    } else if a == f32::INFINITY {
        i16::MAX
    } else {
        0
    }
}

/// A phase-continuous sine oscillator.
///
/// The phase is kept as an `f64` fraction of a cycle, so successive
/// [`Tone::fill`] calls continue exactly where the last one stopped: filling
/// 160 samples in one call or in any split gives the same samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Tone {
    /// Current phase, cycles, in `[0, 1)`.
    phase: f64,
    /// Phase increment per sample, cycles, in `[0, 0.5]`.
    step: f64,
    /// Peak amplitude.
    amplitude: f64,
    freq_hz: f32,
}

impl Tone {
    /// A sine of `freq_hz` at peak `amplitude`, starting at phase 0.
    ///
    /// The frequency is clamped to `0..=sample_rate/2`; a non-finite
    /// frequency or a zero sample rate gives silence.
    pub fn new(freq_hz: f32, amplitude: i16, sample_rate: u32) -> Tone {
        let nyquist = sample_rate as f32 / 2.0;
        let freq_hz = if freq_hz.is_finite() && sample_rate > 0 {
            freq_hz.clamp(0.0, nyquist)
        } else {
            0.0
        };
        let step = if sample_rate > 0 {
            f64::from(freq_hz) / f64::from(sample_rate)
        } else {
            0.0
        };
        Tone {
            phase: 0.0,
            step,
            amplitude: f64::from(amplitude),
            freq_hz,
        }
    }

    /// The (clamped) frequency, Hz.
    pub fn frequency(&self) -> f32 {
        self.freq_hz
    }

    /// Restarts at phase 0.
    pub fn reset(&mut self) {
        self.phase = 0.0;
    }

    /// The next sample, unrounded.
    #[inline]
    fn next_sample(&mut self) -> f64 {
        let v = self.amplitude * (TAU * self.phase).sin();
        self.phase += self.step;
        if self.phase >= 1.0 {
            self.phase -= 1.0;
        }
        v
    }

    /// Overwrites `out` with the next `out.len()` samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        for o in out.iter_mut() {
            *o = to_i16(self.next_sample());
        }
    }
}

/// Rounds and saturates to `i16`.
#[inline]
fn to_i16(v: f64) -> i16 {
    // `as` from float saturates (and maps NaN to 0).
    v.round() as i16
}

/// Two summed sines, e.g. a DTMF digit or a dual-frequency call-progress tone.
#[derive(Clone, Debug, PartialEq)]
pub struct DualTone {
    low: Tone,
    high: Tone,
}

impl DualTone {
    /// Two sines, each at peak `amplitude`; the sum saturates, so keep
    /// `amplitude` at or below 16383 to avoid clipping.
    pub fn new(freq1_hz: f32, freq2_hz: f32, amplitude: i16, sample_rate: u32) -> DualTone {
        DualTone {
            low: Tone::new(freq1_hz, amplitude, sample_rate),
            high: Tone::new(freq2_hz, amplitude, sample_rate),
        }
    }

    /// The two frequencies, Hz, in the order given to [`DualTone::new`].
    pub fn frequencies(&self) -> (f32, f32) {
        (self.low.frequency(), self.high.frequency())
    }

    /// Restarts both oscillators at phase 0.
    pub fn reset(&mut self) {
        self.low.reset();
        self.high.reset();
    }

    /// Overwrites `out` with the next `out.len()` samples (phase-continuous).
    pub fn fill(&mut self, out: &mut [i16]) {
        for o in out.iter_mut() {
            *o = to_i16(self.low.next_sample() + self.high.next_sample());
        }
    }
}

/// The (row, column) frequencies of a DTMF key: `0`–`9`, `*`, `#`, `A`–`D`
/// (lower case accepted).
pub fn dtmf_frequencies(digit: char) -> Option<(f32, f32)> {
    let d = digit.to_ascii_uppercase();
    for (r, row) in DTMF_KEYS.iter().enumerate() {
        for (c, &key) in row.iter().enumerate() {
            if key == d {
                return Some((DTMF_ROWS[r], DTMF_COLUMNS[c]));
            }
        }
    }
    None
}

/// The 8 kHz dual tone of a DTMF key, each component at peak `amplitude`
/// (e.g. `dbm0_to_amplitude(-7.0)` for a typical -7 dBm0 per frequency).
/// `None` for a character that is not a DTMF key.
pub fn dtmf(digit: char, amplitude: i16) -> Option<DualTone> {
    let (row, col) = dtmf_frequencies(digit)?;
    Some(DualTone::new(row, col, amplitude, SAMPLE_RATE_HZ))
}

/// A 1000 Hz beep of `ms` milliseconds (clamped to [`MAX_BEEP_MS`]) at
/// about −10 dBm0, 8 kHz, with 5 ms raised-cosine ramps at both ends (shorter
/// when the beep is shorter than 10 ms). Starts and ends at zero.
pub fn beep(ms: u32) -> Vec<i16> {
    let n = (ms.min(MAX_BEEP_MS) * (SAMPLE_RATE_HZ / 1000)) as usize;
    let mut out = vec![0i16; n];
    let mut tone = Tone::new(BEEP_HZ, dbm0_to_amplitude(BEEP_DBM0), SAMPLE_RATE_HZ);
    tone.fill(&mut out);
    let ramp = ((BEEP_RAMP_MS * SAMPLE_RATE_HZ / 1000) as usize).min(n / 2);
    for i in 0..ramp {
        // Gain 0 at the outermost sample, rising towards 1.
        let g = 0.5 - 0.5 * (std::f64::consts::PI * i as f64 / ramp as f64).cos();
        for idx in [i, n - 1 - i] {
            if let Some(s) = out.get_mut(idx) {
                *s = to_i16(f64::from(*s) * g);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Amplitude of the `freq` component of `x` (Goertzel), as a peak value.
    fn goertzel_amplitude(x: &[i16], freq: f32, rate: u32) -> f64 {
        let w = TAU * f64::from(freq) / f64::from(rate);
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &v in x {
            let s0 = f64::from(v) + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        2.0 * power.max(0.0).sqrt() / x.len() as f64
    }

    fn sign_changes(x: &[i16]) -> usize {
        x.windows(2).filter(|w| (w[0] >= 0) != (w[1] >= 0)).count()
    }

    #[test]
    fn tone_frequency_by_zero_crossings() {
        for freq in [440.0f32, 1000.0, 1004.0, 3000.0] {
            let mut t = Tone::new(freq, 10_000, 8000);
            let mut x = vec![0i16; 8000];
            t.fill(&mut x);
            let expect = 2.0 * freq;
            let got = sign_changes(&x) as f32;
            assert!((got - expect).abs() <= 2.0, "{freq}: {got} crossings");
            let peak = x.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0);
            assert!((9_900..=10_000).contains(&peak), "{freq}: peak {peak}");
        }
    }

    #[test]
    fn tone_phase_continuous_across_fill_calls() {
        let amp = 12_000i16;
        let freq = 1633.0f32;
        let mut whole = vec![0i16; 800];
        Tone::new(freq, amp, 8000).fill(&mut whole);
        let mut t = Tone::new(freq, amp, 8000);
        let mut pieces = vec![0i16; 800];
        let mut at = 0;
        for len in [1usize, 7, 160, 33, 0, 80, 519] {
            t.fill(&mut pieces[at..at + len]);
            at += len;
        }
        assert_eq!(at, 800);
        assert_eq!(whole, pieces);
        // No step larger than the sine's own maximum slope (+ rounding).
        let max_step = f64::from(amp) * TAU * f64::from(freq) / 8000.0 + 1.0;
        for w in pieces.windows(2) {
            assert!(f64::from((i32::from(w[1]) - i32::from(w[0])).abs()) <= max_step);
        }
    }

    #[test]
    fn tone_degenerate_parameters_are_silent_or_clamped() {
        let mut x = [1i16; 16];
        Tone::new(f32::NAN, 1000, 8000).fill(&mut x);
        assert_eq!(x, [0; 16]);
        Tone::new(1000.0, 1000, 0).fill(&mut x);
        assert_eq!(x, [0; 16]);
        assert_eq!(Tone::new(9000.0, 1, 8000).frequency(), 4000.0);
        assert_eq!(Tone::new(-5.0, 1, 8000).frequency(), 0.0);
    }

    #[test]
    fn q23_dtmf_frequencies_and_spectrum() {
        let amp = dbm0_to_amplitude(-7.0);
        for digit in "0123456789*#ABCD".chars() {
            let mut g = dtmf(digit, amp).expect("valid digit");
            let (row, col) = g.frequencies();
            assert!(DTMF_ROWS.contains(&row) && DTMF_COLUMNS.contains(&col));
            let mut x = vec![0i16; 800]; // 100 ms
            g.fill(&mut x);
            for f in DTMF_ROWS.iter().chain(DTMF_COLUMNS.iter()) {
                let a = goertzel_amplitude(&x, *f, 8000);
                if *f == row || *f == col {
                    assert!((a / f64::from(amp) - 1.0).abs() < 0.05, "{digit} {f}: {a}");
                } else {
                    assert!(a < 0.1 * f64::from(amp), "{digit} {f}: {a}");
                }
            }
        }
        assert_eq!(dtmf_frequencies('5'), Some((770.0, 1336.0)));
        assert_eq!(dtmf_frequencies('#'), Some((941.0, 1477.0)));
        assert_eq!(dtmf_frequencies('d'), Some((941.0, 1633.0)));
        assert!(dtmf('x', amp).is_none());
        assert!(dtmf('E', amp).is_none());
    }

    #[test]
    fn dual_tone_saturates_instead_of_wrapping() {
        let mut g = DualTone::new(1000.0, 1000.0, i16::MAX, 8000);
        let mut x = [0i16; 8];
        g.fill(&mut x);
        assert_eq!(x[2], i16::MAX); // sin(90°) twice, saturated
        assert_eq!(x[6], i16::MIN);
    }

    #[test]
    fn g711_digital_milliwatt_is_0_dbm0() {
        // The µ-law and A-law digital milliwatt sequences (G.711 Tables 5/6)
        // decode to a 1 kHz sine whose RMS must match our 0 dBm0 within 0.1 dB.
        use crate::g711::Law;
        let dmw = [
            (Law::Ulaw, [0x1E, 0x0B, 0x0B, 0x1E, 0x9E, 0x8B, 0x8B, 0x9E]),
            (Law::Alaw, [0x34, 0x21, 0x21, 0x34, 0xB4, 0xA1, 0xA1, 0xB4]),
        ];
        let ref_rms = f64::from(DBM0_PEAK) / 2f64.sqrt();
        for (law, codes) in dmw {
            let ms: f64 = codes
                .iter()
                .map(|&c| f64::from(law.decode(c)).powi(2))
                .sum::<f64>()
                / 8.0;
            let db = 20.0 * (ms.sqrt() / ref_rms).log10();
            assert!(db.abs() < 0.1, "{law:?}: {db} dB");
        }
    }

    #[test]
    fn beep_level_frequency_and_ramps() {
        let b = beep(200);
        assert_eq!(b.len(), 1600);
        let amp = f64::from(dbm0_to_amplitude(-10.0));
        assert!((7_100.0..7_250.0).contains(&amp), "{amp}");
        // Starts and ends at silence, ramps smoothly.
        assert_eq!(b[0], 0);
        assert!(b[1].unsigned_abs() < 100 && b[1598].unsigned_abs() < 100);
        assert_eq!(b[1599].unsigned_abs(), 0);
        let ramp_peak = |r: &[i16]| r.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0);
        // Each 1 ms (one period of 1 kHz) of the rising ramp is louder.
        for k in 0..4 {
            assert!(ramp_peak(&b[k * 8..k * 8 + 8]) < ramp_peak(&b[k * 8 + 8..k * 8 + 16]));
        }
        // Steady part: full level at 1 kHz, level −10 dBm0 within 0.2 dB.
        let steady = &b[40..1560];
        let a = goertzel_amplitude(steady, 1000.0, 8000);
        assert!((a / amp - 1.0).abs() < 0.01, "{a}");
        let db = 20.0 * (a / f64::from(DBM0_PEAK)).log10();
        assert!((db + 10.0).abs() < 0.2, "{db}");
        assert!(goertzel_amplitude(steady, 2000.0, 8000) < 10.0);
        let crossings = sign_changes(steady) as i64;
        assert!((crossings - 380).abs() <= 2, "{crossings}");
    }

    #[test]
    fn beep_short_and_clamped() {
        assert!(beep(0).is_empty());
        let b = beep(4); // 32 samples, ramps of 16 each way
        assert_eq!(b.len(), 32);
        assert_eq!(b[0], 0);
        assert_eq!(beep(u32::MAX).len(), (MAX_BEEP_MS * 8) as usize);
    }
}
