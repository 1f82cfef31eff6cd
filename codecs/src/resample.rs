//! Sample-rate conversion for loading prompts (e.g. 44.1/48/22.05/16 kHz WAV
//! or MP3 to 8 kHz), and f32 ↔ i16 sample conversion.
//!
//! [`resample_linear`] is a band-limited interpolator: every output sample is
//! a dot product of the input with a Blackman-windowed sinc whose cutoff is
//! 92 % of the lower of the two Nyquist frequencies (3.68 kHz when the output
//! is 8 kHz), 32 zero crossings each side. The kernel is tabulated at 256
//! points per zero crossing and linearly interpolated, so any pair of rates
//! works, rational or not. Measured from 11.025–48 kHz to 8 kHz: tones up to
//! 3.4 kHz keep their level within 0.02 dB, 3.6 kHz is down 2.3 dB, 3.9 kHz
//! 37 dB, and anything at or above 4.1 kHz (which would alias into the band)
//! is more than 80 dB down. That is good enough for prompts; it is not a
//! mastering grade converter and costs O(taps) multiply-adds per output
//! sample (about 380 at 44.1 kHz → 8 kHz): about 16 ms per second of
//! 44.1 kHz audio in a release build on the development machine.

use std::f64::consts::PI;

/// Lowest sample rate accepted by [`resample_linear`].
pub const MIN_RATE_HZ: u32 = 1_000;

/// Highest sample rate accepted by [`resample_linear`].
pub const MAX_RATE_HZ: u32 = 384_000;

/// Cutoff as a fraction of the lower Nyquist frequency.
const ROLLOFF: f64 = 0.92;

/// Zero crossings of the sinc on each side of the centre.
const ZEROS: usize = 32;

/// Table points per zero crossing.
const OVERSAMPLE: usize = 256;

/// Converts a float sample (full scale ±1.0) to 16 bits, rounding and
/// clamping; NaN gives 0.
pub fn f32_to_i16(x: f32) -> i16 {
    // `as` saturates out-of-range floats and maps NaN to 0; the explicit
    // clamp documents the intent.
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Converts a 16-bit sample to float, full scale ±1.0 (−32768 → −1.0).
pub fn i16_to_f32(s: i16) -> f32 {
    f32::from(s) / 32768.0
}

/// Resamples `input` from `from_hz` to `to_hz` with a windowed-sinc low-pass
/// interpolator (see the module docs; the name is kept for API stability,
/// the filter is better than linear interpolation).
///
/// Returns `ceil(input.len() * to_hz / from_hz)` samples. Equal rates return
/// a copy. A rate outside [`MIN_RATE_HZ`]`..=`[`MAX_RATE_HZ`] returns an
/// empty vector. The signal is treated as zero outside `input`, so the first
/// and last ~4 ms fade slightly.
pub fn resample_linear(input: &[f32], from_hz: u32, to_hz: u32) -> Vec<f32> {
    let valid = MIN_RATE_HZ..=MAX_RATE_HZ;
    if !valid.contains(&from_hz) || !valid.contains(&to_hz) {
        return Vec::new();
    }
    if from_hz == to_hz {
        return input.to_vec();
    }
    let (from, to) = (u64::from(from_hz), u64::from(to_hz));
    let out_len = (input.len() as u64 * to).div_ceil(from);
    let Ok(out_len) = usize::try_from(out_len) else {
        return Vec::new();
    };

    // Cutoff in cycles per input sample, and kernel half-length in input
    // samples.
    let fc = ROLLOFF * 0.5 * (to_hz.min(from_hz) as f64 / from_hz as f64);
    let scale = 2.0 * fc; // zero crossings per input sample
    let half = ZEROS as f64 / scale;
    let table = kernel_table();
    let tap = |d: f64| -> f32 {
        // d ≥ 0 in input samples → position in the table.
        let pos = d * scale * OVERSAMPLE as f64;
        let j = pos as usize;
        let t = (pos - j as f64) as f32;
        let a = table.get(j).copied().unwrap_or(0.0);
        let b = table.get(j + 1).copied().unwrap_or(0.0);
        a + t * (b - a)
    };

    let last = input.len() as i64 - 1;
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len as u64 {
        // Centre in input samples: i + frac, computed exactly.
        let num = n * from;
        let i = (num / to) as i64;
        let frac = (num % to) as f64 / to as f64;
        let c = i as f64 + frac;
        let k0 = ((c - half).ceil() as i64).max(0);
        let k1 = ((c + half).floor() as i64).min(last);
        let mut acc = 0.0f32;
        let mut k = k0;
        while k <= k1 {
            // k is within 0..=last, so the index cannot fail; `get` keeps it
            // panic-free anyway.
            if let Some(&x) = input.get(k as usize) {
                acc += x * tap((c - k as f64).abs());
            }
            k += 1;
        }
        out.push(acc * scale as f32);
    }
    out
}

/// Blackman-windowed sinc, sampled at `OVERSAMPLE` points per zero crossing
/// from 0 to `ZEROS` crossings, plus a zero guard point.
fn kernel_table() -> Vec<f32> {
    let n = ZEROS * OVERSAMPLE;
    let mut t = Vec::with_capacity(n + 2);
    for j in 0..=n {
        let x = j as f64 / OVERSAMPLE as f64; // in zero crossings
        let sinc = if j == 0 {
            1.0
        } else {
            (PI * x).sin() / (PI * x)
        };
        let w = x / ZEROS as f64; // 0..=1
        let blackman = 0.42 + 0.5 * (PI * w).cos() + 0.08 * (2.0 * PI * w).cos();
        t.push((sinc * blackman) as f32);
    }
    t.push(0.0);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, secs: f64, amp: f32) -> Vec<f32> {
        let n = (f64::from(rate) * secs) as usize;
        (0..n)
            .map(|i| amp * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin() as f32)
            .collect()
    }

    /// Peak amplitude of the `freq` component (Goertzel).
    fn goertzel_amplitude(x: &[f32], freq: f64, rate: u32) -> f64 {
        let w = 2.0 * PI * freq / f64::from(rate);
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

    fn sign_changes(x: &[f32]) -> usize {
        x.windows(2)
            .filter(|w| (w[0] >= 0.0) != (w[1] >= 0.0))
            .count()
    }

    /// The middle of a 1 s, 8 kHz result, away from the edge fades.
    fn middle(x: &[f32]) -> &[f32] {
        &x[400..x.len() - 400]
    }

    #[test]
    fn sine_1khz_44100_to_8000_keeps_frequency_and_amplitude() {
        let x = sine(1000.0, 44_100, 1.0, 0.5);
        let y = resample_linear(&x, 44_100, 8000);
        assert_eq!(y.len(), 8000);
        let m = middle(&y);
        // 7200 samples = 0.9 s → 1800 sign changes at 1 kHz.
        let zc = sign_changes(m) as i64;
        assert!((zc - 1800).abs() <= 2, "{zc}");
        let a = goertzel_amplitude(m, 1000.0, 8000);
        assert!((a / 0.5 - 1.0).abs() < 0.10, "{a}");
        // Measured much better than the 10 % asked for.
        assert!((a / 0.5 - 1.0).abs() < 0.01, "{a}");
        let peak = m.iter().fold(0.0f32, |p, v| p.max(v.abs()));
        assert!((peak / 0.5 - 1.0).abs() < 0.02, "{peak}");
    }

    #[test]
    fn common_prompt_rates_to_8000() {
        for from in [11_025u32, 16_000, 22_050, 32_000, 44_100, 48_000, 96_000] {
            for freq in [300.0, 1000.0, 3000.0, 3400.0] {
                let x = sine(freq, from, 1.0, 0.5);
                let y = resample_linear(&x, from, 8000);
                assert_eq!(y.len(), 8000, "{from}");
                let a = goertzel_amplitude(middle(&y), freq, 8000);
                let db = 20.0 * (a / 0.5).log10();
                assert!(db.abs() < 0.05, "{from} Hz, {freq} Hz: {db:.2} dB");
            }
        }
    }

    #[test]
    fn upsampling_8000_to_16000_keeps_tone() {
        let x = sine(1000.0, 8000, 1.0, 0.5);
        let y = resample_linear(&x, 8000, 16_000);
        assert_eq!(y.len(), 16_000);
        let m = &y[800..15_200];
        let a = goertzel_amplitude(m, 1000.0, 16_000);
        assert!((a / 0.5 - 1.0).abs() < 0.01, "{a}");
        // No image at 8000 − 1000 = 7 kHz.
        assert!(goertzel_amplitude(m, 7000.0, 16_000) < 0.5e-3);
    }

    #[test]
    fn tone_3900_hz_from_16k_is_attenuated() {
        // 3.9 kHz is above the 3.68 kHz cutoff: it must come out well down
        // (measured −36.7 dB).
        let x = sine(3900.0, 16_000, 1.0, 0.5);
        let y = resample_linear(&x, 16_000, 8000);
        let m = middle(&y);
        let a = goertzel_amplitude(m, 3900.0, 8000);
        let db = 20.0 * (a / 0.5).log10();
        assert!(db < -30.0, "{db:.1} dB");
        let rms = (m.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / m.len() as f64).sqrt();
        assert!(rms < 0.5 / 2f64.sqrt() * 0.05, "{rms}");
    }

    #[test]
    fn out_of_band_tone_does_not_alias() {
        // 5 kHz at 16 kHz would alias to 3 kHz at 8 kHz without the filter
        // (measured: everything ≥ 4.1 kHz is more than 80 dB down).
        let x = sine(5000.0, 16_000, 1.0, 0.5);
        let y = resample_linear(&x, 16_000, 8000);
        let a = goertzel_amplitude(middle(&y), 3000.0, 8000);
        let db = 20.0 * (a / 0.5).log10();
        assert!(db < -75.0, "{db:.1} dB");
        // Likewise 6 kHz from 44.1 kHz (would alias to 2 kHz).
        let x = sine(6000.0, 44_100, 1.0, 0.5);
        let y = resample_linear(&x, 44_100, 8000);
        let a = goertzel_amplitude(middle(&y), 2000.0, 8000);
        assert!(20.0 * (a / 0.5).log10() < -75.0);
    }

    #[test]
    fn degenerate_inputs() {
        assert!(resample_linear(&[], 44_100, 8000).is_empty());
        assert!(resample_linear(&[0.5; 10], 0, 8000).is_empty());
        assert!(resample_linear(&[0.5; 10], 8000, 0).is_empty());
        assert!(resample_linear(&[0.5; 10], 8000, MAX_RATE_HZ + 1).is_empty());
        assert_eq!(resample_linear(&[0.25, -0.5], 8000, 8000), vec![0.25, -0.5]);
        assert_eq!(resample_linear(&[0.5; 3], 44_100, 8000).len(), 1);
        assert_eq!(resample_linear(&[0.5; 7], 8000, 44_100).len(), 39);
        // DC passes with unit gain (away from the edges).
        let y = resample_linear(&[0.5; 4410], 44_100, 8000);
        assert!(y[300..500].iter().all(|v| (v - 0.5).abs() < 1e-3));
    }

    #[test]
    fn sample_conversions_clamp() {
        assert_eq!(f32_to_i16(1.0), 32767);
        assert_eq!(f32_to_i16(2.0), 32767);
        assert_eq!(f32_to_i16(-1.0), -32768);
        assert_eq!(f32_to_i16(-7.0), -32768);
        assert_eq!(f32_to_i16(f32::NAN), 0);
        assert_eq!(f32_to_i16(f32::INFINITY), 32767);
        assert_eq!(f32_to_i16(0.5), 16384);
        assert_eq!(i16_to_f32(i16::MIN), -1.0);
        assert_eq!(i16_to_f32(16384), 0.5);
        for s in i16::MIN..=i16::MAX {
            assert_eq!(f32_to_i16(i16_to_f32(s)), s);
        }
    }
}
