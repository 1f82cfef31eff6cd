//! Durable WAV files: 8 kHz mono 16-bit PCM, written with write + fsync + rename + dir fsync.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// WAV bytes (RIFF, PCM 16-bit, mono, 8 kHz) of `samples`.
pub fn wav_bytes(samples: &[i16]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Writes `samples` to `path` so that after return the file and its name survive a crash.
pub fn write_wav_durably(path: &Path, samples: &[i16]) -> io::Result<()> {
    write_file_durably(path, &wav_bytes(samples))
}

/// Writes `bytes` to `path` (via a temporary name, fsync, rename, fsync of the directory) so
/// that after return the file and its name survive a crash, and a crash before leaves no
/// half-written file under the final name.
pub fn write_file_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no directory"))?;
    let tmp = path.with_extension(format!("tmp{:08x}", rand::random::<u32>()));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Reads an 8 kHz mono 16-bit WAV written by coda (or any such WAV).
pub fn read_wav(path: &Path) -> io::Result<Vec<i16>> {
    let reader = hound::WavReader::open(path).map_err(|e| match e {
        hound::Error::IoError(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    })?;
    let spec = reader.spec();
    if spec.channels != 1 || spec.bits_per_sample != 16 || spec.sample_rate != 8000 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: expected 8 kHz mono 16-bit, found {} Hz, {} channels, {} bits",
                path.display(),
                spec.sample_rate,
                spec.channels,
                spec.bits_per_sample
            ),
        ));
    }
    reader
        .into_samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}
