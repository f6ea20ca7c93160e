//! Bounded whole-file reads: every file appletap reads whole (signature files; a config file
//! later) goes through [`read_to_string_limited`], so `/dev/zero`, a FIFO or a huge file
//! named by mistake costs at most the limit in memory and time instead of all of it.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest signature file read: the shipped set is about 100 KiB, so 16 MiB leaves room for
/// any hand-written set while refusing a capture or a device named by mistake.
pub const SIGNATURE_FILE_LIMIT: u64 = 16 << 20;

/// A file that could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum ReadLimitedError {
    /// Opening or reading failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds more than the limit (or never ends, like `/dev/zero`).
    #[error(
        "{} is larger than the {} limit for this kind of file: check that it is the file you meant, or split it",
        path.display(),
        human(*limit)
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// The file is not UTF-8 text.
    #[error("{} is not UTF-8 text (byte {valid_up_to} is not): is it the file you meant?", path.display())]
    NotText {
        /// The file.
        path: PathBuf,
        /// Bytes of valid UTF-8 before the first bad one.
        valid_up_to: usize,
    },
}

/// `limit` bytes in the largest binary unit that divides it (16 MiB, 512 KiB, 100 bytes).
fn human(limit: u64) -> String {
    match limit {
        l if l >= 1 << 30 && l.is_multiple_of(1 << 30) => format!("{} GiB", l >> 30),
        l if l >= 1 << 20 && l.is_multiple_of(1 << 20) => format!("{} MiB", l >> 20),
        l if l >= 1 << 10 && l.is_multiple_of(1 << 10) => format!("{} KiB", l >> 10),
        l => format!("{l} bytes"),
    }
}

/// Reads `path` whole as UTF-8 text, refusing more than `limit` bytes. At most `limit + 1`
/// bytes are ever read (through [`Read::take`]), whatever the file is: a device that never
/// ends or a FIFO costs no more than a large regular file.
///
/// # Errors
/// [`ReadLimitedError`]: the file cannot be read, holds more than `limit` bytes, or is not
/// UTF-8.
pub fn read_to_string_limited(path: &Path, limit: u64) -> Result<String, ReadLimitedError> {
    let io = |source| ReadLimitedError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    // The size is only a hint (devices and FIFOs report 0): reserve no more than the limit.
    let hint = file
        .metadata()
        .map_or(0, |m| m.len())
        .min(limit)
        .saturating_add(1);
    let mut bytes = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadLimitedError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    String::from_utf8(bytes).map_err(|e| ReadLimitedError::NotText {
        path: path.to_path_buf(),
        valid_up_to: e.utf8_error().valid_up_to(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_file_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ten.txt");
        std::fs::write(&p, "0123456789").unwrap();
        assert_eq!(read_to_string_limited(&p, 10).unwrap(), "0123456789");
        assert_eq!(read_to_string_limited(&p, 100).unwrap(), "0123456789");
    }

    #[test]
    fn one_byte_over_the_limit_is_refused_naming_file_and_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("eleven.txt");
        std::fs::write(&p, "0123456789a").unwrap();
        let e = read_to_string_limited(&p, 10).unwrap_err();
        assert!(matches!(e, ReadLimitedError::TooLarge { limit: 10, .. }));
        let msg = e.to_string();
        assert!(
            msg.contains("eleven.txt") && msg.contains("10 bytes"),
            "{msg}"
        );
    }

    #[test]
    fn dev_zero_stops_at_the_limit() {
        // An endless file: the read must stop at limit + 1 bytes.
        let e = read_to_string_limited(Path::new("/dev/zero"), SIGNATURE_FILE_LIMIT).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("/dev/zero") && msg.contains("16 MiB limit"),
            "{msg}"
        );
    }

    #[test]
    fn binary_and_missing_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bin");
        std::fs::write(&p, [b'a', 0xff, b'b']).unwrap();
        let e = read_to_string_limited(&p, 10).unwrap_err();
        assert!(matches!(
            e,
            ReadLimitedError::NotText { valid_up_to: 1, .. }
        ));
        let e = read_to_string_limited(&dir.path().join("missing"), 10).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn limits_print_in_their_unit() {
        assert_eq!(human(16 << 20), "16 MiB");
        assert_eq!(human(512 << 10), "512 KiB");
        assert_eq!(human(100), "100 bytes");
    }
}
