//! Refuses an output path that would destroy data: one of the run's inputs (the output is
//! truncated when opened, before the input is read), or an existing capture file (most
//! likely a capture the user meant to read, as in `--flows a.pcap b.pcap`). Checked before
//! anything is opened for writing, so a refused run leaves every file as it was.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};

/// An output path that must not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputGuardError {
    /// The output is one of the inputs (same path, or same file through a link).
    #[error(
        "refusing to write flow records to {}: it is also an input ({}), and would be emptied before it is read; name a new file for --flows (e.g. flows.jsonl)",
        output.display(),
        input.display()
    )]
    IsInput {
        /// The output path as given.
        output: PathBuf,
        /// The input it is, as given.
        input: PathBuf,
    },
    /// The output is an existing capture file and overwriting was not asked for.
    #[error(
        "refusing to write flow records to {}: it is an existing {format} capture file; to read it, list it as an argument without --flows; to keep flow records, name a new file for --flows (e.g. flows.jsonl); to replace the capture, add --overwrite",
        output.display()
    )]
    ExistingCapture {
        /// The output path as given.
        output: PathBuf,
        /// `pcap` or `pcapng`.
        format: &'static str,
    },
}

/// Checks that writing `output` destroys neither an input nor (unless `overwrite`) an existing
/// capture file. `-` (standard output) is always allowed; an input `-` (standard input) is
/// compared through `/dev/stdin`, so `read - --flows x.pcap < x.pcap` is caught too.
///
/// # Errors
/// [`OutputGuardError`] saying what the output would destroy and what to do instead.
pub fn check_output<'a>(
    output: &Path,
    inputs: impl IntoIterator<Item = &'a Path>,
    overwrite: bool,
) -> Result<(), OutputGuardError> {
    if output == Path::new("-") {
        return Ok(());
    }
    for input in inputs {
        if same_file(output, input) {
            return Err(OutputGuardError::IsInput {
                output: output.to_path_buf(),
                input: input.to_path_buf(),
            });
        }
    }
    if !overwrite && let Some(format) = capture_format(output) {
        return Err(OutputGuardError::ExistingCapture {
            output: output.to_path_buf(),
            format,
        });
    }
    Ok(())
}

/// Whether `output` and `input` name the same file: the same device and inode (hard links,
/// symbolic links), or the same canonical path (`./x` and `x`, also when `x` does not exist
/// yet and opening the output would create the very file then read as input).
fn same_file(output: &Path, input: &Path) -> bool {
    let input = if input == Path::new("-") {
        Path::new("/dev/stdin")
    } else {
        input
    };
    let out = std::fs::metadata(output);
    // Writing a device or a FIFO truncates nothing (and `/dev/stdin` may resolve to the very
    // `/dev/null` the output names).
    if out.as_ref().is_ok_and(|m| !m.is_file()) {
        return false;
    }
    if let (Ok(a), Ok(b)) = (out, std::fs::metadata(input))
        && same_inode(&a, &b)
    {
        return true;
    }
    match (resolve(output), resolve(input)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(unix)]
fn same_inode(a: &Metadata, b: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.is_file() && b.is_file() && a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_inode(_: &Metadata, _: &Metadata) -> bool {
    false
}

/// The canonical path of `p`, or for a file that does not exist yet its canonical directory
/// joined with its name.
fn resolve(p: &Path) -> Option<PathBuf> {
    if let Ok(c) = p.canonicalize() {
        return Some(c);
    }
    let name = p.file_name()?;
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    parent.canonicalize().ok().map(|d| d.join(name))
}

/// The capture format whose magic number opens `path`, if it is an existing regular file.
/// Devices and FIFOs are never read (reading would block or consume their data).
fn capture_format(path: &Path) -> Option<&'static str> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut magic = [0u8; 4];
    File::open(path).ok()?.read_exact(&mut magic).ok()?;
    match magic {
        // Microsecond and nanosecond pcap, in either byte order.
        [0xa1, 0xb2, 0xc3, 0xd4]
        | [0xd4, 0xc3, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0x3c, 0x4d]
        | [0x4d, 0x3c, 0xb2, 0xa1] => Some("pcap"),
        // The Section Header Block type (a palindrome: the same in either byte order).
        [0x0a, 0x0d, 0x0d, 0x0a] => Some("pcapng"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample/iphone.pcap")
    }

    fn copy_of(dir: &Path, name: &str, from: &Path) -> PathBuf {
        let p = dir.join(name);
        std::fs::copy(from, &p).unwrap();
        p
    }

    #[test]
    fn an_input_is_never_an_output_even_with_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let a = copy_of(dir.path(), "a.pcap", &sample());
        for overwrite in [false, true] {
            let e = check_output(&a, [a.as_path()], overwrite).unwrap_err();
            assert!(matches!(e, OutputGuardError::IsInput { .. }), "{e}");
        }
    }

    #[test]
    fn dot_slash_and_hard_link_and_symlink_are_the_same_input() {
        let dir = tempfile::tempdir().unwrap();
        let a = copy_of(dir.path(), "a.txt", Path::new("Cargo.toml"));
        let dotted = dir.path().join(".").join("a.txt");
        let hard = dir.path().join("hard.txt");
        std::fs::hard_link(&a, &hard).unwrap();
        let soft = dir.path().join("soft.txt");
        std::os::unix::fs::symlink(&a, &soft).unwrap();
        for other in [&dotted, &hard, &soft] {
            assert!(
                check_output(other, [a.as_path()], true).is_err(),
                "{}",
                other.display()
            );
            assert!(check_output(&a, [other.as_path()], true).is_err());
        }
    }

    #[test]
    fn an_input_that_does_not_exist_yet_is_still_the_output() {
        // `--flows x.pcap x.pcap` with no x.pcap: opening the output would create the input.
        let dir = tempfile::tempdir().unwrap();
        let x = dir.path().join("x.pcap");
        let dotted = dir.path().join(".").join("x.pcap");
        assert!(check_output(&x, [dotted.as_path()], false).is_err());
    }

    #[test]
    fn existing_captures_need_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let ng = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps");
        let ng = std::fs::read_dir(ng)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "pcapng"))
            .expect("a shared pcapng capture");
        for (from, want) in [(sample(), "pcap"), (ng, "pcapng")] {
            let out = copy_of(dir.path(), "out", &from);
            match check_output(&out, [], false) {
                Err(OutputGuardError::ExistingCapture { format, .. }) => assert_eq!(format, want),
                other => panic!("{}: {other:?}", from.display()),
            }
            assert!(check_output(&out, [], true).is_ok());
        }
    }

    #[test]
    fn new_files_text_files_devices_and_stdout_are_fine() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("old.jsonl");
        std::fs::write(&text, "{}\n").unwrap();
        let sample = sample();
        for out in [
            dir.path().join("new.jsonl"),
            text,
            PathBuf::from("/dev/null"),
            PathBuf::from("-"),
        ] {
            assert!(
                check_output(&out, [sample.as_path()], false).is_ok(),
                "{}",
                out.display()
            );
        }
    }

    #[test]
    fn message_says_what_to_do() {
        let e = OutputGuardError::ExistingCapture {
            output: "a.pcap".into(),
            format: "pcap",
        }
        .to_string();
        assert!(
            e.contains("a.pcap") && e.contains("--overwrite") && e.contains("without --flows"),
            "{e}"
        );
    }
}
