//! In-band DTMF detector (ITU-T Q.23 tones) over 8 kHz 16-bit samples.
//!
//! Method: the Goertzel algorithm on non-overlapping blocks of [`BLOCK_LEN`] = 205 samples
//! (25.6 ms; bins ≈ 39 Hz apart, enough to separate 697/770 Hz) for the 8 DTMF frequencies.
//! A block shows digit *d* when all of these hold:
//! 1. each of the strongest row and column tones has at least the minimum power
//!    (default −36 dBm0 per tone, 0 dBm0 ≈ a sine of amplitude 22 700);
//! 2. twist: the high group is at most 4 dB above the low group ("reverse twist") and the low
//!    group at most 8 dB above the high group ("normal twist");
//! 3. relative peak: the strongest row (column) is at least 8 dB above every other row
//!    (column);
//! 4. second harmonics: the power at 2×f of the row and the column tone is at least 4 dB
//!    below the tone itself (speech and music have harmonics, DTMF does not; the limit is
//!    loose because 2×697 Hz lies within 58 Hz of 1336 Hz and catches its leakage);
//! 5. the two tones carry at least half the block's total power (rejects noise and
//!    broadband speech).
//!
//! A digit is reported when two consecutive blocks show it (≥ 51 ms of tone, ≤ 77 ms needed
//! depending on alignment), once per key press: the same digit is reported again only after
//! two consecutive blocks without it. That pause rule ("release") lets a 60 ms gap between
//! two presses through at every alignment, while a single lost 20 ms packet (160 samples of
//! silence) inside a held key does not split it (both checked at every block alignment).
//!
//! The API is allocation-free: [`DtmfDetector::process`] calls back per digit with the sample
//! index where the tone began (useful to cut the tone off the end of a recording).
//! [`DtmfDetector::process_to_vec`] is a convenience that allocates.

/// Samples per analysis block.
pub const BLOCK_LEN: usize = 205;
/// Sample rate the detector expects.
pub const SAMPLE_RATE: f32 = 8000.0;

const ROW_FREQS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COL_FREQS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Amplitude of a sine at 0 dBm0 in 16-bit linear PCM (G.711 digital milliwatt ≈ 3.17 dB
/// below full scale).
pub const DBM0_AMPLITUDE: f32 = 22_700.0;

/// Tunables, in dB; [`DetectorConfig::default`] gives the values described in the module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorConfig {
    /// Minimum level of each tone (dBm0).
    pub min_tone_dbm0: f32,
    /// Low group may exceed the high group by this much.
    pub normal_twist_db: f32,
    /// High group may exceed the low group by this much.
    pub reverse_twist_db: f32,
    /// Strongest tone of a group over any other of the same group.
    pub relative_peak_db: f32,
    /// Second harmonic must be this far below its fundamental.
    pub harmonic_db: f32,
    /// Minimum share of the block's power in the two tones (0..1).
    pub min_tone_share: f32,
    /// Blocks without the digit needed before the same digit counts again.
    pub release_blocks: u8,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            min_tone_dbm0: -36.0,
            normal_twist_db: 8.0,
            reverse_twist_db: 4.0,
            relative_peak_db: 8.0,
            harmonic_db: 4.0,
            min_tone_share: 0.5,
            release_blocks: 2,
        }
    }
}

/// A detected key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfHit {
    /// `0-9`, `*`, `#`, `A-D`.
    pub digit: char,
    /// Index (counted from the first sample ever processed) of the first block showing it.
    pub start_sample: u64,
}

fn db_to_power_ratio(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

/// Goertzel coefficient 2·cos(2πf/fs) for an arbitrary (non-bin) frequency.
fn coeff(freq: f32) -> f32 {
    2.0 * (2.0 * std::f32::consts::PI * freq / SAMPLE_RATE).cos()
}

/// Mean-square power of the component at the coefficient's frequency: for a sine of
/// amplitude A exactly at that frequency this is ≈ A²/2.
fn goertzel_power(block: &[f32], c: f32) -> f32 {
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in block {
        let s0 = x + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let mag2 = (s1 * s1 + s2 * s2 - c * s1 * s2).max(0.0);
    let n = block.len() as f32;
    2.0 * mag2 / (n * n)
}

/// Derived thresholds (power ratios).
#[derive(Debug, Clone, Copy)]
struct Thresholds {
    min_tone_power: f32,
    normal_twist: f32,
    reverse_twist: f32,
    relative_peak: f32,
    harmonic: f32,
    min_tone_share: f32,
}

/// See the [module docs](self).
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    cfg: DetectorConfig,
    th: Thresholds,
    row_c: [f32; 4],
    col_c: [f32; 4],
    row_h: [f32; 4],
    col_h: [f32; 4],
    block: [f32; BLOCK_LEN],
    fill: usize,
    /// Sample index of the first sample of the block being filled.
    block_start: u64,
    /// Result of the previous block and its start.
    last: Option<(char, u64)>,
    /// Digit reported and not yet released.
    held: Option<char>,
    /// Consecutive blocks without the held digit.
    absent: u8,
}

impl Default for DtmfDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl DtmfDetector {
    /// A detector with the default thresholds.
    pub fn new() -> Self {
        Self::with_config(DetectorConfig::default())
    }

    /// A detector with custom thresholds.
    pub fn with_config(cfg: DetectorConfig) -> Self {
        let amp = DBM0_AMPLITUDE * 10f32.powf(cfg.min_tone_dbm0 / 20.0);
        let th = Thresholds {
            min_tone_power: amp * amp / 2.0,
            normal_twist: db_to_power_ratio(cfg.normal_twist_db),
            reverse_twist: db_to_power_ratio(cfg.reverse_twist_db),
            relative_peak: db_to_power_ratio(cfg.relative_peak_db),
            harmonic: db_to_power_ratio(-cfg.harmonic_db),
            min_tone_share: cfg.min_tone_share,
        };
        DtmfDetector {
            cfg,
            th,
            row_c: ROW_FREQS.map(coeff),
            col_c: COL_FREQS.map(coeff),
            row_h: ROW_FREQS.map(|f| coeff(2.0 * f)),
            col_h: COL_FREQS.map(|f| coeff(2.0 * f)),
            block: [0.0; BLOCK_LEN],
            fill: 0,
            block_start: 0,
            last: None,
            held: None,
            absent: 0,
        }
    }

    /// The thresholds in use.
    pub fn config(&self) -> &DetectorConfig {
        &self.cfg
    }

    /// Feeds samples (any chunk size); calls `on_digit` for each new key press. No allocation.
    pub fn process(&mut self, samples: &[i16], mut on_digit: impl FnMut(DtmfHit)) {
        for &s in samples {
            // Invariant: fill < BLOCK_LEN here (reset to 0 whenever it reaches BLOCK_LEN).
            self.block[self.fill] = f32::from(s);
            self.fill += 1;
            if self.fill == BLOCK_LEN {
                let start = self.block_start;
                let result = self.analyse_block();
                self.fill = 0;
                self.block_start += BLOCK_LEN as u64;
                if let Some(hit) = self.debounce(result, start) {
                    on_digit(hit);
                }
            }
        }
    }

    /// Convenience: the digits found in `samples`, in order (allocates).
    pub fn process_to_vec(&mut self, samples: &[i16]) -> Vec<char> {
        let mut out = Vec::new();
        self.process(samples, |h| out.push(h.digit));
        out
    }

    /// Total samples consumed so far.
    pub fn samples_processed(&self) -> u64 {
        self.block_start + self.fill as u64
    }

    fn debounce(&mut self, result: Option<char>, start: u64) -> Option<DtmfHit> {
        let prev = self.last;
        self.last = result.map(|d| (d, start));
        if self.held.is_some() && result != self.held {
            self.absent = self.absent.saturating_add(1);
            if self.absent >= self.cfg.release_blocks.max(1) {
                self.held = None;
            }
        } else {
            self.absent = 0;
        }
        let d = result?;
        let (p, p_start) = prev?;
        if p != d || self.held == Some(d) {
            return None;
        }
        self.held = Some(d);
        self.absent = 0;
        Some(DtmfHit {
            digit: d,
            start_sample: p_start,
        })
    }

    /// The digit this block shows, if any.
    fn analyse_block(&self) -> Option<char> {
        let block = &self.block[..];
        let total = block.iter().map(|x| x * x).sum::<f32>() / BLOCK_LEN as f32;
        let th = &self.th;
        if total < 2.0 * th.min_tone_power {
            return None;
        }
        let rows = self.row_c.map(|c| goertzel_power(block, c));
        let cols = self.col_c.map(|c| goertzel_power(block, c));
        let (r, pr) = strongest(&rows);
        let (c, pc) = strongest(&cols);
        if pr < th.min_tone_power || pc < th.min_tone_power {
            return None;
        }
        // Twist.
        if pc > pr * th.reverse_twist || pr > pc * th.normal_twist {
            return None;
        }
        // Relative peaks within each group.
        let peak_ok = |powers: &[f32; 4], best: usize, p: f32| {
            powers
                .iter()
                .enumerate()
                .all(|(i, &q)| i == best || q * th.relative_peak <= p)
        };
        if !peak_ok(&rows, r, pr) || !peak_ok(&cols, c, pc) {
            return None;
        }
        // Share of total power.
        if pr + pc < th.min_tone_share * total {
            return None;
        }
        // Second harmonics (computed only for the candidate pair).
        if goertzel_power(block, self.row_h[r]) > pr * th.harmonic
            || goertzel_power(block, self.col_h[c]) > pc * th.harmonic
        {
            return None;
        }
        Some(KEYPAD[r][c]) // r, c < 4 from strongest()
    }
}

fn strongest(p: &[f32; 4]) -> (usize, f32) {
    let mut best = (0, p[0]);
    for (i, &v) in p.iter().enumerate().skip(1) {
        if v > best.1 {
            best = (i, v);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGITS: &str = "123A456B789C*0#D";

    /// (row Hz, column Hz) of a digit.
    fn freqs(d: char) -> (f32, f32) {
        let i = DIGITS.find(d).unwrap();
        (ROW_FREQS[i / 4], COL_FREQS[i % 4])
    }

    /// Test-signal builder: sums of sines plus optional white noise (xorshift), at 8 kHz.
    struct Sig {
        out: Vec<i16>,
        rng: u64,
    }

    impl Sig {
        fn new() -> Self {
            Sig {
                out: Vec::new(),
                rng: 0x2545_f491_4f6c_dd1d,
            }
        }

        fn noise(&mut self) -> f32 {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            // Uniform in [-1, 1): rms 1/sqrt(3).
            (self.rng >> 11) as f32 / (1u64 << 52) as f32 - 1.0
        }

        /// `ms` milliseconds of `tones` (freq, amplitude) plus uniform noise of peak `noise`.
        fn add(&mut self, ms: u32, tones: &[(f32, f32)], noise: f32) -> &mut Self {
            let n = (ms * 8) as usize;
            let base = self.out.len();
            for k in 0..n {
                let t = (base + k) as f32 / SAMPLE_RATE;
                let mut v: f32 = tones
                    .iter()
                    .map(|&(f, a)| a * (2.0 * std::f32::consts::PI * f * t).sin())
                    .sum();
                v += noise * self.noise();
                self.out.push(v.clamp(-32768.0, 32767.0) as i16);
            }
            self
        }

        fn digit(&mut self, d: char, ms: u32, amp: f32) -> &mut Self {
            let (r, c) = freqs(d);
            self.add(ms, &[(r, amp), (c, amp)], 0.0)
        }

        fn silence(&mut self, ms: u32) -> &mut Self {
            self.add(ms, &[], 0.0)
        }
    }

    fn detect(samples: &[i16]) -> String {
        let mut d = DtmfDetector::new();
        // Feed in odd-sized chunks to exercise block assembly.
        samples
            .chunks(97)
            .flat_map(|c| d.process_to_vec(c))
            .collect()
    }

    /// −10 dBm0 per tone.
    const AMP_M10: f32 = DBM0_AMPLITUDE * 0.316;

    #[test]
    fn q23_every_digit_at_minus_10_dbm0() {
        for d in DIGITS.chars() {
            let mut s = Sig::new();
            s.silence(30).digit(d, 100, AMP_M10).silence(100);
            assert_eq!(detect(&s.out), d.to_string(), "digit {d}");
        }
    }

    #[test]
    fn q24_every_digit_at_low_level_with_noise() {
        // About −27 dBm0 per tone with noise ~20 dB below the tones.
        for d in DIGITS.chars() {
            let (r, c) = freqs(d);
            let mut s = Sig::new();
            s.add(50, &[], 170.0)
                .add(120, &[(r, 1000.0), (c, 1000.0)], 170.0)
                .add(100, &[], 170.0);
            assert_eq!(detect(&s.out), d.to_string(), "digit {d}");
        }
    }

    #[test]
    fn q24_twist_limits() {
        let (r, c) = freqs('2');
        let db = |x: f32| 10f32.powf(x / 20.0);
        let case = |low_db: f32, high_db: f32| {
            let mut s = Sig::new();
            s.add(
                120,
                &[(r, AMP_M10 * db(low_db)), (c, AMP_M10 * db(high_db))],
                0.0,
            )
            .silence(60);
            detect(&s.out)
        };
        assert_eq!(case(0.0, 3.0), "2", "high group +3 dB accepted");
        assert_eq!(case(7.0, 0.0), "2", "low group +7 dB accepted");
        assert_eq!(case(0.0, 6.0), "", "high group +6 dB refused");
        assert_eq!(case(10.0, 0.0), "", "low group +10 dB refused");
    }

    #[test]
    fn too_quiet_is_ignored() {
        let mut s = Sig::new();
        // −45 dBm0 per tone.
        s.digit('5', 200, DBM0_AMPLITUDE * 0.0056);
        assert_eq!(detect(&s.out), "");
    }

    #[test]
    fn held_300_ms_counts_once() {
        let mut s = Sig::new();
        s.silence(10).digit('#', 300, AMP_M10).silence(50);
        assert_eq!(detect(&s.out), "#");
    }

    #[test]
    fn same_digit_after_60_ms_pause_counts_twice_at_every_alignment() {
        for offset in 0..BLOCK_LEN as u32 {
            let mut s = Sig::new();
            s.out.resize(offset as usize, 0);
            s.digit('7', 100, AMP_M10)
                .silence(60)
                .digit('7', 100, AMP_M10)
                .silence(60);
            assert_eq!(detect(&s.out), "77", "offset {offset}");
        }
    }

    #[test]
    fn different_digits_back_to_back() {
        let mut s = Sig::new();
        s.digit('1', 80, AMP_M10)
            .digit('2', 80, AMP_M10)
            .silence(60);
        assert_eq!(detect(&s.out), "12");
    }

    #[test]
    fn short_blip_below_two_blocks_is_ignored() {
        let mut s = Sig::new();
        s.silence(5).digit('9', 20, AMP_M10).silence(100);
        assert_eq!(detect(&s.out), "");
    }

    #[test]
    fn lost_20_ms_packet_inside_held_key_counts_once_at_every_alignment() {
        for offset in 0..BLOCK_LEN {
            let mut s = Sig::new();
            s.digit('0', 150, AMP_M10);
            let cut = s.out.len() - offset.min(150);
            s.out[cut - 160..cut].fill(0);
            s.digit('0', 150, AMP_M10).silence(60);
            assert_eq!(detect(&s.out), "0", "offset {offset}");
        }
    }

    #[test]
    fn start_sample_points_at_tone_onset() {
        let mut s = Sig::new();
        s.silence(100).digit('4', 100, AMP_M10).silence(50);
        let mut d = DtmfDetector::new();
        let mut hits = Vec::new();
        d.process(&s.out, |h| hits.push(h));
        assert_eq!(hits.len(), 1);
        let onset = 800u64;
        let st = hits[0].start_sample;
        assert!(
            st + BLOCK_LEN as u64 > onset && st < onset + BLOCK_LEN as u64,
            "{st}"
        );
        assert_eq!(d.samples_processed(), s.out.len() as u64);
    }

    /// Cross-check with the workspace tone generator and G.711 round trips, as on a real call.
    #[test]
    fn codecs_tone_digits_through_g711() {
        use codecs::Law;
        for law in [Law::Ulaw, Law::Alaw] {
            for d in DIGITS.chars() {
                let amp = codecs::tone::dbm0_to_amplitude(-10.0);
                let mut gen = codecs::tone::dtmf(d, amp).unwrap();
                let mut pcm = vec![0i16; 800];
                gen.fill(&mut pcm[160..]);
                pcm.extend_from_slice(&[0; 480]);
                let coded: Vec<i16> = pcm.iter().map(|&x| law.decode(law.encode(x))).collect();
                assert_eq!(detect(&coded), d.to_string(), "{law:?} {d}");
            }
        }
        assert_eq!(detect(&codecs::tone::beep(500)), "");
    }

    #[test]
    fn no_talk_off_on_white_noise() {
        let mut s = Sig::new();
        s.add(3000, &[], 12000.0);
        assert_eq!(detect(&s.out), "");
    }

    #[test]
    fn no_talk_off_on_1000_hz_beep() {
        let mut s = Sig::new();
        s.add(1000, &[(1000.0, 16000.0)], 0.0);
        assert_eq!(detect(&s.out), "");
    }

    #[test]
    fn no_talk_off_on_non_dtmf_tone_mixtures() {
        let mixes: [&[(f32, f32)]; 4] = [
            &[
                (500.0, 6000.0),
                (1000.0, 6000.0),
                (1500.0, 4000.0),
                (2000.0, 3000.0),
            ],
            // Dial tone and ringback.
            &[(350.0, 8000.0), (440.0, 8000.0)],
            &[(440.0, 8000.0), (480.0, 8000.0)],
            // Near-DTMF pairs off by more than the bandwidth.
            &[(620.0, 8000.0), (1100.0, 8000.0)],
        ];
        for m in mixes {
            let mut s = Sig::new();
            s.add(1000, m, 300.0);
            assert_eq!(detect(&s.out), "", "{m:?}");
        }
    }

    #[test]
    fn no_talk_off_on_vowel_like_harmonic_series() {
        // Harmonics of f0 with a formant-ish envelope, f0 sweeping through the voice range,
        // including f0 = 348.5 Hz whose 2nd and 4th harmonics sit on 697 / 1394 Hz.
        for f0 in [110.0f32, 151.0, 232.3, 348.5, 385.0] {
            let tones: Vec<(f32, f32)> = (1..)
                .map(|k| k as f32 * f0)
                .take_while(|f| *f < 3400.0)
                .map(|f| {
                    let env = 4000.0 / (1.0 + ((f - 700.0) / 400.0).powi(2))
                        + 2500.0 / (1.0 + ((f - 1300.0) / 300.0).powi(2));
                    (f, env)
                })
                .collect();
            let mut s = Sig::new();
            s.add(1000, &tones, 200.0);
            assert_eq!(detect(&s.out), "", "f0 {f0}");
        }
    }

    #[test]
    fn second_harmonic_check_rejects_harmonic_rich_pair() {
        // Row and column tones plus strong 2nd harmonics: a tone pair from a buzzer, not DTMF.
        let (r, c) = freqs('5');
        let mut s = Sig::new();
        s.add(
            200,
            &[
                (r, 6000.0),
                (c, 6000.0),
                (2.0 * r, 5000.0),
                (2.0 * c, 5000.0),
            ],
            0.0,
        );
        assert_eq!(detect(&s.out), "");
    }
}
