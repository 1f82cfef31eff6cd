//! Voice prompts: loading, lookup and composition.
//!
//! A [`PromptSet`] maps a prompt id (the file name stem, e.g. `vm-goodbye`) to
//! telephone-ready audio: mono, 8000 Hz, 16-bit linear PCM samples, ready to be
//! G.711-encoded and packetised.
//!
//! Two sources are supported:
//! * [`PromptSet::load_embedded`]: the synthetic British English prompts
//!   rendered by `prompts/render.sh` and compiled into the binary, so the
//!   service speaks with no configuration, from any working directory;
//! * [`PromptSet::load_dir`]: a directory of recordings (WAV, FLAC, MP3 or
//!   OGG/Vorbis, any sample rate, any channel count), e.g. professional
//!   recordings that replace some or all of the synthetic ones; combine the two
//!   with [`PromptSet::overlay`].
//!
//! Every file is decoded with symphonia, mixed down to mono and resampled to
//! 8 kHz with [`codecs::resample::resample_linear`] (a band-limited
//! interpolator, so sibilants above 4 kHz are filtered out, not aliased).
//! Loading does file I/O and is meant to run once at start up (or on reload),
//! off the media path; lookups are cheap `Arc` clones.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use codecs::resample;
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

#[path = "../../prompts/embedded.rs"]
mod embedded;

/// Sample rate of every prompt in a [`PromptSet`], in Hz.
pub const SAMPLE_RATE: u32 = 8000;

/// Silence inserted between prompts by [`PromptSet::compose`]: 40 ms at 8 kHz.
///
/// The rendered prompts already carry 80 ms of silence at each end, so joined
/// fragments are separated by about 200 ms in total.
pub const COMPOSE_GAP_SAMPLES: usize = 320;

/// Largest prompt file read from disk, in bytes (64 MiB: over five minutes of
/// 48 kHz stereo 16-bit WAV).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Longest prompt accepted, in seconds of decoded audio.
pub const MAX_PROMPT_SECONDS: u64 = 300;

/// Most audio files accepted in one prompt directory.
pub const MAX_FILES: usize = 2000;

/// File extensions recognised as prompts, in order of preference when two
/// files share a stem (alphabetical: flac, mp3, ogg, wav). Matching is
/// case-insensitive; other files in the directory are ignored.
pub const EXTENSIONS: &[&str] = &["flac", "mp3", "ogg", "wav"];

/// Why prompts could not be loaded or composed.
#[derive(Debug)]
pub enum PromptError {
    /// Reading the directory or a file failed.
    Io {
        /// The directory or file concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A file is larger than [`MAX_FILE_BYTES`].
    FileTooLarge {
        /// The file concerned.
        path: PathBuf,
        /// Its size in bytes.
        bytes: u64,
    },
    /// The directory holds more than [`MAX_FILES`] audio files.
    TooManyFiles {
        /// The directory concerned.
        path: PathBuf,
    },
    /// A file could not be decoded (unknown format, corrupt data, no audio
    /// track, unsupported codec, nonsensical parameters, ...).
    Decode {
        /// The file (or `<embedded>/<id>.wav`) concerned.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A file decodes to more than [`MAX_PROMPT_SECONDS`] of audio.
    TooLong {
        /// The file concerned.
        path: PathBuf,
    },
    /// A file decodes to no audio at all.
    Empty {
        /// The file concerned.
        path: PathBuf,
    },
    /// [`PromptSet::compose`] was asked for a prompt the set does not hold.
    Missing {
        /// The prompt id.
        id: String,
    },
}

impl fmt::Display for PromptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PromptError::Io { path, source } => {
                write!(f, "prompt file {}: {source}", path.display())
            }
            PromptError::FileTooLarge { path, bytes } => write!(
                f,
                "prompt file {}: {bytes} bytes exceeds the {MAX_FILE_BYTES}-byte limit",
                path.display()
            ),
            PromptError::TooManyFiles { path } => write!(
                f,
                "prompt directory {}: more than {MAX_FILES} audio files",
                path.display()
            ),
            PromptError::Decode { path, reason } => {
                write!(f, "prompt file {}: cannot decode: {reason}", path.display())
            }
            PromptError::TooLong { path } => write!(
                f,
                "prompt file {}: longer than {MAX_PROMPT_SECONDS} s",
                path.display()
            ),
            PromptError::Empty { path } => {
                write!(f, "prompt file {}: contains no audio", path.display())
            }
            PromptError::Missing { id } => write!(f, "prompt {id:?} is not available"),
        }
    }
}

impl std::error::Error for PromptError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PromptError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A set of voice prompts, keyed by id (file stem), each mono 8 kHz i16 PCM.
#[derive(Debug, Clone, Default)]
pub struct PromptSet {
    prompts: HashMap<String, Arc<[i16]>>,
}

impl PromptSet {
    /// An empty set.
    pub fn new() -> PromptSet {
        PromptSet::default()
    }

    /// Loads every `*.flac`, `*.mp3`, `*.ogg` and `*.wav` file (extension
    /// case-insensitive) directly inside `dir`, keyed by file stem. Hidden
    /// files, sub-directories and other extensions are ignored. When several
    /// files share a stem, the first in [`EXTENSIONS`] order wins (flac, mp3,
    /// ogg, wav) and a warning is logged for the others.
    ///
    /// Fails on the first file that cannot be read or decoded; the error names
    /// the file. An empty directory gives an empty set.
    pub fn load_dir(dir: &Path) -> Result<PromptSet, PromptError> {
        let io_err = |source| PromptError::Io {
            path: dir.to_path_buf(),
            source,
        };
        // stem -> (extension rank, path)
        let mut chosen: HashMap<String, (usize, PathBuf)> = HashMap::new();
        let mut count = 0usize;
        for entry in std::fs::read_dir(dir).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let path = entry.path();
            let Some((stem, rank)) = classify(&path) else {
                continue;
            };
            if !entry.file_type().map_err(io_err)?.is_file() && !path.is_file() {
                continue;
            }
            count += 1;
            if count > MAX_FILES {
                return Err(PromptError::TooManyFiles {
                    path: dir.to_path_buf(),
                });
            }
            match chosen.get_mut(&stem) {
                Some(existing) => {
                    let (kept, dropped) = if rank < existing.0 {
                        (path.clone(), std::mem::replace(existing, (rank, path)).1)
                    } else {
                        (existing.1.clone(), path)
                    };
                    tracing::warn!(
                        kept = %kept.display(),
                        ignored = %dropped.display(),
                        "two prompt files share a stem; using the first by extension order flac, mp3, ogg, wav"
                    );
                }
                None => {
                    chosen.insert(stem, (rank, path));
                }
            }
        }

        let mut prompts = HashMap::with_capacity(chosen.len());
        for (stem, (_, path)) in chosen {
            let meta = std::fs::metadata(&path).map_err(|source| PromptError::Io {
                path: path.clone(),
                source,
            })?;
            if meta.len() > MAX_FILE_BYTES {
                return Err(PromptError::FileTooLarge {
                    path,
                    bytes: meta.len(),
                });
            }
            let bytes = std::fs::read(&path).map_err(|source| PromptError::Io {
                path: path.clone(),
                source,
            })?;
            let ext = extension_lower(&path).unwrap_or_default();
            let samples = decode_to_telephone(io::Cursor::new(bytes), &ext, &path)?;
            tracing::debug!(id = %stem, samples = samples.len(), "loaded prompt");
            prompts.insert(stem, samples);
        }
        Ok(PromptSet { prompts })
    }

    /// Decodes the synthetic en-GB prompts compiled into the binary (every
    /// entry of `prompts/catalogue.toml`, rendered by `prompts/render.sh`).
    ///
    /// Only fails if the build embedded a broken file, which the unit tests
    /// rule out; callers may still treat an error as fatal at start-up.
    pub fn load_embedded() -> Result<PromptSet, PromptError> {
        let mut prompts = HashMap::with_capacity(embedded::EMBEDDED.len());
        for &(id, bytes) in embedded::EMBEDDED {
            let path = PathBuf::from(format!("<embedded>/{id}.wav"));
            let samples = decode_to_telephone(io::Cursor::new(bytes), "wav", &path)?;
            prompts.insert(id.to_string(), samples);
        }
        Ok(PromptSet { prompts })
    }

    /// Ids of the prompts compiled into the binary, in catalogue order.
    pub fn embedded_ids() -> impl Iterator<Item = &'static str> {
        embedded::EMBEDDED.iter().map(|&(id, _)| id)
    }

    /// Adds every prompt of `other` to `self`, replacing prompts with the
    /// same id (e.g. professional recordings over the embedded defaults).
    pub fn overlay(&mut self, other: PromptSet) {
        self.prompts.extend(other.prompts);
    }

    /// Adds or replaces one prompt (mono, 8 kHz samples).
    pub fn insert(&mut self, id: impl Into<String>, samples: Arc<[i16]>) {
        self.prompts.insert(id.into(), samples);
    }

    /// The samples of prompt `id` (mono, 8 kHz), if present.
    pub fn get(&self, id: &str) -> Option<Arc<[i16]>> {
        self.prompts.get(id).cloned()
    }

    /// Whether prompt `id` is present.
    pub fn contains(&self, id: &str) -> bool {
        self.prompts.contains_key(id)
    }

    /// Number of prompts.
    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    /// Whether the set holds no prompts.
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }

    /// All prompt ids, sorted.
    pub fn ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.prompts.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }

    /// The prompts among `required` that the set does not hold, in the order
    /// given (duplicates reported once).
    pub fn missing(&self, required: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for id in required {
            if !self.prompts.contains_key(*id) && !out.iter().any(|m| m == id) {
                out.push((*id).to_string());
            }
        }
        out
    }

    /// The prompts `ids` played back to back, separated by
    /// [`COMPOSE_GAP_SAMPLES`] of silence (none before the first or after the
    /// last). Fails with [`PromptError::Missing`] on the first unknown id.
    pub fn compose(&self, ids: &[&str]) -> Result<Vec<i16>, PromptError> {
        let parts = ids
            .iter()
            .map(|id| {
                self.prompts.get(*id).ok_or_else(|| PromptError::Missing {
                    id: (*id).to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let total = parts.iter().map(|p| p.len()).sum::<usize>()
            + COMPOSE_GAP_SAMPLES * parts.len().saturating_sub(1);
        let mut out = Vec::with_capacity(total);
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                out.resize(out.len() + COMPOSE_GAP_SAMPLES, 0);
            }
            out.extend_from_slice(part);
        }
        Ok(out)
    }
}

/// The lower-case extension of `path`, if it is valid UTF-8.
fn extension_lower(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

/// `(stem, rank in EXTENSIONS)` if `path` names a prompt file we load.
fn classify(path: &Path) -> Option<(String, usize)> {
    let ext = extension_lower(path)?;
    let rank = EXTENSIONS.iter().position(|e| *e == ext)?;
    let stem = path.file_stem()?.to_str()?;
    if stem.is_empty() || stem.starts_with('.') {
        return None;
    }
    Some((stem.to_string(), rank))
}

fn decode_err(path: &Path, reason: impl fmt::Display) -> PromptError {
    PromptError::Decode {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Decodes a whole audio file into mono 8 kHz i16 samples.
fn decode_to_telephone(
    source: impl MediaSource + 'static,
    ext: &str,
    path: &Path,
) -> Result<Arc<[i16]>, PromptError> {
    let (mono, rate) = decode_mono(source, ext, path)?;
    if !(resample::MIN_RATE_HZ..=resample::MAX_RATE_HZ).contains(&rate) {
        return Err(decode_err(
            path,
            format!("unsupported sample rate {rate} Hz"),
        ));
    }
    // Band-limited: energy above 4 kHz is filtered out, not aliased.
    let resampled = resample::resample_linear(&mono, rate, SAMPLE_RATE);
    if resampled.is_empty() {
        return Err(PromptError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(resampled.iter().map(|&s| resample::f32_to_i16(s)).collect())
}

/// Decodes the first audio track of a file to mono f32 at its own rate.
fn decode_mono(
    source: impl MediaSource + 'static,
    ext: &str,
    path: &Path,
) -> Result<(Vec<f32>, u32), PromptError> {
    let mss = MediaSourceStream::new(Box::new(source), Default::default());
    let mut hint = Hint::new();
    if !ext.is_empty() {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            mss,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| decode_err(path, e))?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| decode_err(path, "no audio track"))?;
    let track_id = track.id;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| decode_err(path, e))?;

    let mut mono: Vec<f32> = Vec::new();
    let mut rate: Option<u32> = None;
    let mut buf: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(SymphoniaError::ResetRequired) => break,
            Err(e) => return Err(decode_err(path, e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            // A damaged packet: skip it, as players do; a file that is all
            // damage ends up Empty.
            Err(SymphoniaError::DecodeError(e)) => {
                tracing::debug!(path = %path.display(), error = e, "skipping undecodable packet");
                continue;
            }
            Err(e) => return Err(decode_err(path, e)),
        };
        let spec = *decoded.spec();
        if spec.rate == 0 {
            return Err(decode_err(path, "sample rate 0"));
        }
        match rate {
            None => rate = Some(spec.rate),
            Some(r) if r != spec.rate => {
                return Err(decode_err(
                    path,
                    format!(
                        "sample rate changes mid-stream ({r} Hz to {} Hz)",
                        spec.rate
                    ),
                ))
            }
            Some(_) => {}
        }
        let channels = spec.channels.count();
        if channels == 0 {
            return Err(decode_err(path, "no channels"));
        }
        let frames = decoded.frames();
        if frames == 0 {
            continue;
        }
        let limit = MAX_PROMPT_SECONDS.saturating_mul(u64::from(spec.rate));
        if (mono.len() as u64).saturating_add(frames as u64) > limit {
            return Err(PromptError::TooLong {
                path: path.to_path_buf(),
            });
        }
        // `frames` is bounded by the check above and `channels` by symphonia's
        // 32-bit channel mask, so the allocation below is bounded too.
        if buf
            .as_ref()
            .is_none_or(|b| b.capacity() < frames * channels)
        {
            buf = Some(SampleBuffer::<f32>::new(frames as u64, spec));
        }
        let Some(sb) = buf.as_mut() else {
            continue; // unreachable: set just above
        };
        sb.copy_interleaved_ref(decoded);
        let scale = 1.0 / channels as f32;
        mono.extend(
            sb.samples()
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() * scale),
        );
    }
    match rate {
        Some(r) if !mono.is_empty() => Ok((mono, r)),
        _ => Err(PromptError::Empty {
            path: path.to_path_buf(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const CATALOGUE: &str = include_str!("../../prompts/catalogue.toml");

    /// Ids from the catalogue, parsed the way render.sh does.
    fn catalogue_ids() -> Vec<String> {
        CATALOGUE
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l.split_once('=').expect("catalogue line has '='");
                let v = v.trim();
                assert!(
                    v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                    "{l}"
                );
                k.trim().to_string()
            })
            .collect()
    }

    fn rendered_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/en-GB")
    }

    /// A fresh, empty temporary directory unique to this test.
    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("coda-prompts-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        dir
    }

    /// A canonical 16-bit PCM WAV file.
    fn wav_bytes(rate: u32, channels: u16, interleaved: &[i16]) -> Vec<u8> {
        let data_len = (interleaved.len() * 2) as u32;
        let mut b = Vec::with_capacity(44 + data_len as usize);
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&(36 + data_len).to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes()); // PCM
        b.extend_from_slice(&channels.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
        b.extend_from_slice(&(channels * 2).to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(b"data");
        b.extend_from_slice(&data_len.to_le_bytes());
        for s in interleaved {
            b.extend_from_slice(&s.to_le_bytes());
        }
        b
    }

    fn tone(freq: f32, rate: u32, seconds: f32, amplitude: f32) -> Vec<i16> {
        let n = (rate as f32 * seconds) as usize;
        (0..n)
            .map(|i| {
                let t = i as f32 / rate as f32;
                (amplitude * 32767.0 * (2.0 * std::f32::consts::PI * freq * t).sin()) as i16
            })
            .collect()
    }

    /// Frequency estimate from sign changes (two per cycle).
    fn zero_crossing_hz(samples: &[i16], rate: u32) -> f32 {
        let crossings = samples
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count();
        crossings as f32 * rate as f32 / (2.0 * samples.len() as f32)
    }

    fn rms(samples: &[i16]) -> f32 {
        let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        (sum / samples.len() as f64).sqrt() as f32
    }

    #[test]
    fn catalogue_is_plausible_and_unique() {
        let ids = catalogue_ids();
        assert!((60..=250).contains(&ids.len()), "{} ids", ids.len());
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "duplicate ids in catalogue");
        for id in &ids {
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "bad id {id}"
            );
        }
    }

    #[test]
    fn rendered_directory_has_every_catalogue_prompt() {
        let set = PromptSet::load_dir(&rendered_dir()).expect("load rendered prompts");
        let ids = catalogue_ids();
        let required: Vec<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(set.missing(&required), Vec::<String>::new());
        assert_eq!(set.len(), ids.len(), "stray files in prompts/en-GB");
        for id in &required {
            let p = set.get(id).expect("present");
            // Every prompt has 2 x 80 ms padding plus some speech, and is
            // audible (peak normalised to about -3 dBFS).
            assert!(p.len() > 1280 + 800, "{id} too short: {}", p.len());
            assert!(p.len() < 15 * 8000, "{id} too long: {}", p.len());
            let peak = p.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
            assert!((15_000..=26_000).contains(&peak), "{id} peak {peak}");
        }
    }

    #[test]
    fn embedded_matches_catalogue_and_rendered_files() {
        let embedded = PromptSet::load_embedded().expect("embedded prompts decode");
        let ids = catalogue_ids();
        let embedded_ids: Vec<&str> = PromptSet::embedded_ids().collect();
        assert_eq!(
            embedded_ids, ids,
            "prompts/embedded.rs is stale: run render.sh"
        );
        let from_disk = PromptSet::load_dir(&rendered_dir()).expect("load rendered prompts");
        for id in &ids {
            assert_eq!(embedded.get(id), from_disk.get(id), "{id} differs");
        }
    }

    #[test]
    fn wav_at_44100_stereo_is_resampled_to_8000_mono() {
        let dir = temp_dir("wav44k");
        let left = tone(1000.0, 44_100, 1.0, 0.5);
        let interleaved: Vec<i16> = left.iter().flat_map(|&s| [s, s]).collect();
        std::fs::write(dir.join("beep.WAV"), wav_bytes(44_100, 2, &interleaved)).unwrap();
        let set = PromptSet::load_dir(&dir).expect("load");
        let beep = set.get("beep").expect("beep present");
        assert!((7990..=8010).contains(&beep.len()), "len {}", beep.len());
        // Skip the filter's edge transients.
        let body = &beep[400..beep.len() - 400];
        let hz = zero_crossing_hz(body, SAMPLE_RATE);
        assert!((980.0..=1020.0).contains(&hz), "tone at {hz} Hz");
        let expected_rms = 0.5 * 32767.0 / std::f32::consts::SQRT_2;
        let r = rms(body);
        assert!((r - expected_rms).abs() < 0.05 * expected_rms, "rms {r}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn flac_at_44100_made_by_sox_is_resampled_to_8000() {
        let dir = temp_dir("flac44k");
        let out = dir.join("tone.flac");
        let status = Command::new("sox")
            .args(["-n", "-r", "44100", "-c", "2", "-b", "16"])
            .arg(&out)
            .args(["synth", "1", "sine", "1000", "vol", "0.5"])
            .status();
        match status {
            Ok(s) if s.success() => {}
            _ => {
                eprintln!("sox not available; skipping FLAC test");
                return;
            }
        }
        let set = PromptSet::load_dir(&dir).expect("load");
        let t = set.get("tone").expect("tone present");
        assert!((7990..=8010).contains(&t.len()), "len {}", t.len());
        let hz = zero_crossing_hz(&t[400..t.len() - 400], SAMPLE_RATE);
        assert!((980.0..=1020.0).contains(&hz), "tone at {hz} Hz");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn tone_above_4khz_is_filtered_not_aliased() {
        // 6 kHz at 44.1 kHz would alias to 2 kHz with plain linear resampling.
        let dir = temp_dir("alias");
        std::fs::write(
            dir.join("hiss.wav"),
            wav_bytes(44_100, 1, &tone(6000.0, 44_100, 0.5, 0.5)),
        )
        .unwrap();
        let set = PromptSet::load_dir(&dir).expect("load");
        let hiss = set.get("hiss").expect("present");
        let r = rms(&hiss[400..hiss.len() - 400]);
        let input_rms = 0.5 * 32767.0 / std::f32::consts::SQRT_2;
        // At least 30 dB down.
        assert!(r < input_rms * 0.0316, "rms {r} vs {input_rms}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn rate_below_8000_is_upsampled() {
        let dir = temp_dir("up");
        std::fs::write(
            dir.join("low.wav"),
            wav_bytes(4000, 1, &tone(500.0, 4000, 1.0, 0.5)),
        )
        .unwrap();
        let set = PromptSet::load_dir(&dir).expect("load");
        let low = set.get("low").expect("present");
        assert!((7990..=8010).contains(&low.len()), "len {}", low.len());
        let hz = zero_crossing_hz(&low[100..low.len() - 100], SAMPLE_RATE);
        assert!((490.0..=510.0).contains(&hz), "tone at {hz} Hz");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn corrupt_file_is_an_error_naming_the_file() {
        let dir = temp_dir("corrupt");
        std::fs::write(dir.join("broken.wav"), b"RIFF\x10\0\0\0WAVEjunkjunkjunk").unwrap();
        let err = PromptSet::load_dir(&dir).expect_err("corrupt file must fail");
        assert!(matches!(err, PromptError::Decode { .. }), "{err:?}");
        assert!(err.to_string().contains("broken.wav"), "{err}");

        // Random bytes with an audio extension, too.
        std::fs::remove_file(dir.join("broken.wav")).unwrap();
        std::fs::write(dir.join("noise.mp3"), [0x5au8; 1000]).unwrap();
        let err = PromptSet::load_dir(&dir).expect_err("garbage must fail");
        assert!(err.to_string().contains("noise.mp3"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn truncated_wav_header_only_is_empty_error() {
        let dir = temp_dir("headeronly");
        std::fs::write(dir.join("silent.wav"), wav_bytes(8000, 1, &[])).unwrap();
        let err = PromptSet::load_dir(&dir).expect_err("no audio must fail");
        assert!(
            matches!(err, PromptError::Empty { .. } | PromptError::Decode { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("silent.wav"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn absurd_sample_rate_is_an_error_naming_the_file() {
        let dir = temp_dir("rate");
        std::fs::write(dir.join("slow.wav"), wav_bytes(500, 1, &[0; 500])).unwrap();
        let err = PromptSet::load_dir(&dir).expect_err("500 Hz must fail");
        assert!(matches!(err, PromptError::Decode { .. }), "{err:?}");
        assert!(err.to_string().contains("slow.wav"), "{err}");
        assert!(err.to_string().contains("500 Hz"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn empty_directory_loads_empty() {
        let dir = temp_dir("empty");
        let set = PromptSet::load_dir(&dir).expect("load");
        assert!(set.is_empty());
        assert_eq!(set.missing(&["vm-goodbye"]), vec!["vm-goodbye".to_string()]);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn missing_directory_is_io_error_naming_it() {
        let dir = temp_dir("gone").join("does-not-exist");
        let err = PromptSet::load_dir(&dir).expect_err("must fail");
        assert!(matches!(err, PromptError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("does-not-exist"), "{err}");
    }

    #[test]
    fn other_files_and_subdirectories_are_ignored() {
        let dir = temp_dir("ignore");
        std::fs::write(dir.join("README.txt"), b"not audio").unwrap();
        std::fs::write(dir.join(".hidden.wav"), b"not audio either").unwrap();
        std::fs::create_dir(dir.join("sub.wav")).unwrap();
        std::fs::write(dir.join("ok.wav"), wav_bytes(8000, 1, &[1, 2, 3])).unwrap();
        let set = PromptSet::load_dir(&dir).expect("load");
        assert_eq!(set.ids(), vec!["ok"]);
        assert_eq!(set.get("ok").as_deref(), Some(&[1i16, 2, 3][..]));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn shared_stem_prefers_flac_over_wav() {
        let dir = temp_dir("dupe");
        let status = Command::new("sox")
            .args(["-n", "-r", "8000", "-c", "1", "-b", "16"])
            .arg(dir.join("greeting.flac"))
            .args(["synth", "0.1", "sine", "1000"])
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("sox not available; skipping");
            return;
        }
        std::fs::write(dir.join("greeting.wav"), wav_bytes(8000, 1, &[7; 10])).unwrap();
        let set = PromptSet::load_dir(&dir).expect("load");
        assert_eq!(set.len(), 1);
        assert_eq!(set.get("greeting").map(|g| g.len()), Some(800), "flac wins");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn compose_joins_with_gap_and_reports_missing() {
        let mut set = PromptSet::new();
        set.insert("a", Arc::from(vec![1i16, 2]));
        set.insert("b", Arc::from(vec![3i16]));
        let out = set.compose(&["a", "b", "a"]).expect("compose");
        let mut expected = vec![1, 2];
        expected.extend(std::iter::repeat_n(0, COMPOSE_GAP_SAMPLES));
        expected.push(3);
        expected.extend(std::iter::repeat_n(0, COMPOSE_GAP_SAMPLES));
        expected.extend([1, 2]);
        assert_eq!(out, expected);
        assert!(set.compose(&[]).expect("empty compose").is_empty());
        let err = set.compose(&["a", "zzz"]).expect_err("missing");
        assert!(
            matches!(&err, PromptError::Missing { id } if id == "zzz"),
            "{err:?}"
        );
        assert_eq!(set.missing(&["a", "x", "b", "x"]), vec!["x".to_string()]);
    }

    #[test]
    fn overlay_replaces_matching_ids() {
        let mut base = PromptSet::new();
        base.insert("a", Arc::from(vec![1i16]));
        base.insert("b", Arc::from(vec![2i16]));
        let mut pro = PromptSet::new();
        pro.insert("b", Arc::from(vec![20i16]));
        pro.insert("c", Arc::from(vec![30i16]));
        base.overlay(pro);
        assert_eq!(base.ids(), vec!["a", "b", "c"]);
        assert_eq!(base.get("b").as_deref(), Some(&[20i16][..]));
    }

    #[test]
    fn deposit_sentence_composes_from_embedded() {
        let set = PromptSet::load_embedded().expect("embedded");
        let ids = [
            "vm-person-at-extension",
            "digit-4",
            "digit-2",
            "vm-is-unavailable",
            "vm-leave-message",
        ];
        let out = set.compose(&ids).expect("compose");
        let parts: usize = ids.iter().map(|id| set.get(id).unwrap().len()).sum();
        assert_eq!(out.len(), parts + 4 * COMPOSE_GAP_SAMPLES);
    }
}
