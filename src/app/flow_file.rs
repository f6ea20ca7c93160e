//! The `--flows` file: whole records only, rotated by size or time (`--flows-rotate-size`,
//! `--flows-rotate-interval`), reopened on SIGHUP (logrotate), and a full disk survived.
//!
//! Records are buffered whole and written by this module's own loop rather than a `BufWriter`,
//! so that after a failed write (`ENOSPC`) it knows how many bytes reached the file: the file
//! is cut back to the last whole record, the records that could not be written are counted,
//! and later records are tried again (the disk may have room again). Nothing already written
//! is touched. Rotated files are named by the UTC time of the rotation; the few lines of
//! calendar arithmetic are written here rather than pulling in a date crate for one format.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::sync::atomic::{AtomicU64, Ordering};

/// Bumped by each SIGHUP: a file writer whose generation differs reopens its file between two
/// records ([`reopen_generation`]).
static REOPEN: AtomicU64 = AtomicU64::new(0);

/// How many times the outputs were asked to reopen their files.
pub(super) fn reopen_generation() -> u64 {
    REOPEN.load(Ordering::Acquire)
}

/// Asks every output file (`--flows`, `--events`) to be reopened (SIGHUP).
pub(super) fn request_reopen() {
    REOPEN.fetch_add(1, Ordering::AcqRel);
}

/// Bytes of whole records held before they are written.
const BUFFER: usize = 1 << 16;
/// Longest records are held before they are written (a log shipper follows the file).
const HOLD: Duration = Duration::from_secs(1);

/// When to start a new file.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Rotation {
    /// Before the file would grow past this many bytes.
    pub(super) size: Option<u64>,
    /// Once the file is this old (and holds a record).
    pub(super) interval: Option<Duration>,
}

/// A `--flows` file being written.
pub(super) struct FlowFile {
    path: PathBuf,
    /// `None` after opening failed: opened again at the next write.
    file: Option<File>,
    /// Bytes of whole records in the current file.
    len: u64,
    /// Whole records not yet written, and how many.
    buf: Vec<u8>,
    buffered: u64,
    rotation: Rotation,
    opened: Instant,
    /// When the buffer was last written out: held records wait at most [`HOLD`].
    written: Instant,
    /// Files rotated so far (the `-N` of their names).
    rotated: u64,
    /// The SIGHUP generation the file was opened in.
    reopen_seen: u64,
    /// Records that could not be written, and the first reason.
    pub(super) lost: u64,
    pub(super) first_error: Option<String>,
    /// The first reason, until the caller says it ([`FlowFile::take_new_error`]).
    unsaid: Option<String>,
    /// The file is a pipe whose reader went away (`--flows /dev/stdout | head`): not an
    /// error, the end of the output.
    pub(super) broken_pipe: bool,
}

impl FlowFile {
    /// Creates (or empties) `path`.
    pub(super) fn create(path: &Path, rotation: Rotation) -> io::Result<Self> {
        let file = File::create(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Some(file),
            len: 0,
            buf: Vec::with_capacity(BUFFER),
            buffered: 0,
            rotation,
            opened: Instant::now(),
            written: Instant::now(),
            rotated: 0,
            reopen_seen: reopen_generation(),
            lost: 0,
            first_error: None,
            unsaid: None,
            broken_pipe: false,
        })
    }

    /// Adds one whole record (its line, newline included).
    pub(super) fn push(&mut self, line: &[u8]) {
        let pending = self.len + self.buf.len() as u64;
        if let Some(max) = self.rotation.size
            && pending > 0
            && pending + line.len() as u64 > max
        {
            self.rotate();
        }
        self.buf.extend_from_slice(line);
        self.buffered += 1;
        if self.buf.len() >= BUFFER {
            self.write_out();
        }
    }

    /// Between records, and at least every writer tick: reopens the file after SIGHUP,
    /// rotates it when its interval is over.
    pub(super) fn tick(&mut self) {
        if self.written.elapsed() >= HOLD {
            self.write_out();
        }
        let generation = reopen_generation();
        if generation != self.reopen_seen {
            self.reopen_seen = generation;
            self.write_out();
            // logrotate moved the file away: a new one is made; else appended to.
            self.file = None;
            self.open_again(true);
        }
        if let Some(every) = self.rotation.interval
            && self.opened.elapsed() >= every
        {
            if self.len + self.buf.len() as u64 > 0 {
                self.rotate();
            } else {
                self.opened = Instant::now();
            }
        }
    }

    /// Writes what is buffered.
    pub(super) fn flush(&mut self) {
        self.write_out();
    }

    fn open_again(&mut self, append: bool) {
        let opened = if append {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
        } else {
            File::create(&self.path)
        };
        match opened.and_then(|f| Ok((f.metadata()?.len(), f))) {
            Ok((len, f)) => {
                self.file = Some(f);
                self.len = len;
                self.opened = Instant::now();
            }
            Err(e) => self.failed(&format!("cannot open {}: {e}", self.path.display())),
        }
    }

    /// Starts a new file: the current one, complete, is renamed beside it.
    fn rotate(&mut self) {
        self.write_out();
        if self.file.is_none() {
            return;
        }
        let to = self.rotated_name();
        match std::fs::rename(&self.path, &to) {
            Ok(()) => {
                self.rotated += 1;
                self.file = None;
                self.open_again(false);
            }
            // Not rotated: the records go on into the same file.
            Err(e) => self.failed(&format!(
                "cannot rename {} to {}: {e}",
                self.path.display(),
                to.display()
            )),
        }
    }

    /// `PATH.YYYYMMDDTHHMMSSZ-NNNNNN`, N counting this run's rotations from 1 (and going higher
    /// if such a file exists), so names sort in the order the files were written.
    fn rotated_name(&self) -> PathBuf {
        let stamp = utc_stamp(SystemTime::now());
        let mut n = self.rotated + 1;
        loop {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{stamp}-{n:06}"));
            let p = PathBuf::from(name);
            if !p.exists() {
                return p;
            }
            n += 1;
        }
    }

    /// Writes the buffered records; on failure keeps the whole ones that reached the file,
    /// cuts off a partly written one and counts the rest as lost.
    fn write_out(&mut self) {
        self.written = Instant::now();
        if self.buf.is_empty() {
            return;
        }
        if self.file.is_none() {
            self.open_again(true);
        }
        let Some(file) = self.file.as_mut() else {
            self.lose_buffer();
            return;
        };
        let mut off = 0;
        let mut error = None;
        while off < self.buf.len() {
            match file.write(&self.buf[off..]) {
                Ok(0) => {
                    error = Some(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let Some(e) = error else {
            self.len += self.buf.len() as u64;
            self.buf.clear();
            self.buffered = 0;
            return;
        };
        if e.kind() == io::ErrorKind::BrokenPipe {
            self.broken_pipe = true;
            self.buf.clear();
            self.buffered = 0;
            return;
        }
        // The whole records that reached the file stay; a partly written one is cut off.
        let whole = memchr::memrchr(b'\n', &self.buf[..off]).map_or(0, |i| i + 1);
        let kept = memchr::memchr_iter(b'\n', &self.buf[..whole]).count() as u64;
        let end = self.len + whole as u64;
        let cut = file
            .set_len(end)
            .and_then(|()| file.seek(SeekFrom::Start(end)).map(drop));
        self.len = end;
        self.buf.drain(..whole);
        self.buffered -= kept;
        let mut why = format!(
            "writing flow records to {} failed: {e}",
            self.path.display()
        );
        if let Err(c) = cut {
            why.push_str(&format!(
                " (and cutting off a partly written record failed: {c})"
            ));
            // Appended to from now on: after whatever is in the file.
            self.file = None;
        }
        self.failed(&why);
        self.lose_buffer();
    }

    fn lose_buffer(&mut self) {
        self.lost += self.buffered;
        self.buf.clear();
        self.buffered = 0;
    }

    /// Keeps the first reason, to be said at once (live mode goes on for days) and summed up
    /// at the end of the run.
    fn failed(&mut self, why: &str) {
        if self.first_error.is_none() {
            self.first_error = Some(why.to_string());
            self.unsaid = Some(format!(
                "{why}; records that cannot be written are counted, the capture goes on, and what is already in the file stays"
            ));
        }
    }

    /// The first failure's message, once.
    pub(super) fn take_new_error(&mut self) -> Option<String> {
        self.unsaid.take()
    }

    /// The end-of-run message when something was lost or failed.
    pub(super) fn summary(&self) -> Option<String> {
        let why = self.first_error.as_ref()?;
        Some(if self.lost > 0 {
            format!(
                "{why}: {} flow record(s) could not be written; the records in the file(s) are whole",
                self.lost
            )
        } else {
            format!("{why} (no flow record was lost)")
        })
    }
}

/// `YYYYMMDDTHHMMSSZ` of `t` (UTC).
fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (H. Hinnant's `civil_from_days`).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_dates() {
        let at = |s: u64| utc_stamp(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "19700101T000000Z");
        // `date -u -d @951782400`: 2000-02-29 00:00:00 (a leap day of a century year).
        assert_eq!(at(951_782_400), "20000229T000000Z");
        // `date -u -d @1796563155 +%Y%m%dT%H%M%SZ`.
        assert_eq!(at(1_796_563_155), "20261206T131915Z");
    }

    #[test]
    fn rotates_between_records_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.jsonl");
        let rotation = Rotation {
            size: Some(25),
            interval: None,
        };
        let mut f = FlowFile::create(&path, rotation).unwrap();
        for i in 0..10 {
            f.push(format!("{{\"n\":{i:04}}}\n").as_bytes());
        }
        f.flush();
        let mut all = Vec::new();
        let mut files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        // f.jsonl sorts before f.jsonl.STAMP-N: the current file holds the latest records.
        files.rotate_left(1);
        for p in &files {
            let text = std::fs::read_to_string(p).unwrap();
            assert!(
                text.len() <= 25 && text.ends_with('\n'),
                "{}: {text:?}",
                p.display()
            );
            all.extend(text.lines().map(String::from));
        }
        let want: Vec<String> = (0..10).map(|i| format!("{{\"n\":{i:04}}}")).collect();
        assert_eq!(all, want);
        assert_eq!(files.len(), 5, "two 12-byte records a file");
    }

    #[test]
    fn reopen_after_a_move_puts_each_record_whole_in_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.jsonl");
        let moved = dir.path().join("f.jsonl.1");
        let mut f = FlowFile::create(&path, Rotation::default()).unwrap();
        f.push(b"{\"n\":1}\n");
        f.push(b"{\"n\":2}\n");
        // logrotate: move, then SIGHUP; the buffered records still belong to the moved file.
        std::fs::rename(&path, &moved).unwrap();
        request_reopen();
        f.tick();
        f.push(b"{\"n\":3}\n");
        f.flush();
        assert_eq!(
            std::fs::read_to_string(&moved).unwrap(),
            "{\"n\":1}\n{\"n\":2}\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"n\":3}\n");
        assert_eq!((f.lost, f.summary()), (0, None));
    }

    #[test]
    fn rotates_by_time_only_files_with_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.jsonl");
        let rotation = Rotation {
            size: None,
            interval: Some(Duration::ZERO),
        };
        let mut f = FlowFile::create(&path, rotation).unwrap();
        f.tick();
        f.push(b"{}\n");
        f.tick();
        f.tick();
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "one rotated file, one new: {names:?}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }

    #[test]
    fn a_full_device_counts_what_it_lost() {
        // /dev/full: every write fails with ENOSPC.
        let mut f = FlowFile::create(Path::new("/dev/full"), Rotation::default()).unwrap();
        for _ in 0..3 {
            f.push(b"{}\n");
        }
        f.flush();
        assert_eq!(f.lost, 3);
        let said = f.summary().unwrap();
        assert!(
            said.contains("/dev/full") && said.contains("3 flow record(s)"),
            "{said}"
        );
    }
}
