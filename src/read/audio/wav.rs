//! The WAV file: RIFF/WAVE, PCM (format 1), 8 kHz, 16-bit little-endian, two channels
//! (left: the caller, right: the line), written to a temporary file beside the target and
//! renamed onto it, so the target is never a half-written file.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Samples per second of Connect's tracks ("Audio sent to Kinesis uses a sampling rate of
/// 8 kHz": https://docs.aws.amazon.com/connect/latest/adminguide/plan-live-media-streams.html).
pub const SAMPLE_RATE: u32 = 8_000;
pub const CHANNELS: u16 = 2;
pub const BITS: u16 = 16;
/// Bytes of one frame (a sample of each channel).
pub const FRAME_BYTES: u32 = (CHANNELS as u32) * (BITS as u32 / 8);
pub const HEADER_BYTES: u32 = 44;
/// The most frames a WAV holds: its sizes are 32-bit (about 37 hours at 8 kHz stereo).
pub const MAX_FRAMES: u64 = ((u32::MAX - HEADER_BYTES) / FRAME_BYTES) as u64;

/// The 44-byte header of a PCM WAV of `frames` frames.
pub fn header(frames: u32) -> [u8; HEADER_BYTES as usize] {
    let data = frames.saturating_mul(FRAME_BYTES);
    let mut h = [0u8; HEADER_BYTES as usize];
    let mut put = |at: usize, b: &[u8]| h[at..at + b.len()].copy_from_slice(b);
    put(0, b"RIFF");
    put(4, &(36u32.saturating_add(data)).to_le_bytes());
    put(8, b"WAVE");
    put(12, b"fmt ");
    put(16, &16u32.to_le_bytes());
    put(20, &1u16.to_le_bytes()); // PCM
    put(22, &CHANNELS.to_le_bytes());
    put(24, &SAMPLE_RATE.to_le_bytes());
    put(28, &(SAMPLE_RATE * FRAME_BYTES).to_le_bytes());
    put(32, &(FRAME_BYTES as u16).to_le_bytes());
    put(34, &BITS.to_le_bytes());
    put(36, b"data");
    put(40, &data.to_le_bytes());
    h
}

/// Writes `left` and `right` (the shorter padded with silence) as a WAV at `out`: into a
/// temporary file in the same folder first, flushed to disk, then renamed onto `out`. On
/// any error the temporary file is removed and `out` is left as it was. Returns the bytes
/// written.
pub fn write(out: &Path, left: &[i16], right: &[i16]) -> io::Result<u64> {
    let frames = left.len().max(right.len());
    let frames = u32::try_from(frames)
        .ok()
        .filter(|&f| u64::from(f) <= MAX_FRAMES)
        .ok_or_else(|| {
            io::Error::other(format!(
                "{frames} frames are more than a WAV file holds ({MAX_FRAMES})"
            ))
        })?;
    let temp = temp_beside(out)?;
    let written = (|| {
        let file = std::fs::File::create(&temp)?;
        let mut w = io::BufWriter::with_capacity(1 << 16, file);
        w.write_all(&header(frames))?;
        for i in 0..frames as usize {
            let l = left.get(i).copied().unwrap_or(0);
            let r = right.get(i).copied().unwrap_or(0);
            w.write_all(&l.to_le_bytes())?;
            w.write_all(&r.to_le_bytes())?;
        }
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, out)?;
        Ok(u64::from(HEADER_BYTES) + u64::from(frames) * u64::from(FRAME_BYTES))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// `DIR/.NAME.PID.partial` for `DIR/NAME`.
fn temp_beside(out: &Path) -> io::Result<PathBuf> {
    let name = out.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "--out names no file (give a path such as call.wav)",
        )
    })?;
    let mut temp = std::ffi::OsString::from(".");
    temp.push(name);
    temp.push(format!(".{}.partial", std::process::id()));
    Ok(out.with_file_name(temp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_a_pcm_stereo_8khz_wav() {
        let h = header(8_000);
        assert_eq!(&h[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes([h[4], h[5], h[6], h[7]]), 36 + 32_000);
        assert_eq!(&h[8..16], b"WAVEfmt ");
        assert_eq!(u32::from_le_bytes([h[16], h[17], h[18], h[19]]), 16);
        assert_eq!(u16::from_le_bytes([h[20], h[21]]), 1);
        assert_eq!(u16::from_le_bytes([h[22], h[23]]), 2);
        assert_eq!(u32::from_le_bytes([h[24], h[25], h[26], h[27]]), 8_000);
        assert_eq!(u32::from_le_bytes([h[28], h[29], h[30], h[31]]), 32_000);
        assert_eq!(u16::from_le_bytes([h[32], h[33]]), 4);
        assert_eq!(u16::from_le_bytes([h[34], h[35]]), 16);
        assert_eq!(&h[36..40], b"data");
        assert_eq!(u32::from_le_bytes([h[40], h[41], h[42], h[43]]), 32_000);
    }

    #[test]
    fn channels_interleave_and_the_shorter_is_padded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("call.wav");
        let bytes = write(&out, &[1, 2, 3], &[-1]).expect("written");
        let wav = std::fs::read(&out).expect("read");
        assert_eq!(bytes, wav.len() as u64);
        assert_eq!(wav.len(), 44 + 3 * 4);
        let samples: Vec<i16> = wav[44..]
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(samples, [1, -1, 2, 0, 3, 0]);
        // Nothing left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["call.wav"]);
    }

    #[test]
    fn a_failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("missing-folder").join("call.wav");
        assert!(write(&out, &[1], &[1]).is_err());
        assert!(!out.exists());
        // A folder in the way of the rename: the temporary file is removed.
        let folder = dir.path().join("taken");
        std::fs::create_dir(&folder).expect("mkdir");
        assert!(write(&folder, &[1], &[1]).is_err());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["taken"]);
    }
}
