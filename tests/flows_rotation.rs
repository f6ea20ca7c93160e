//! `--flows-rotate-size` under load and a full disk: the largest shared captures read at once
//! with a small size limit give rotated files whose records, put together, are exactly those of
//! one unrotated run (none lost, duplicated or split); a tmpfs of 64 KiB filling up gives a clear
//! message naming the file and the count of records not written, and every record that reached
//! the disk is whole.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::netns::is_root;
use common::*;

/// The largest shared captures, together thousands of flows.
fn big_captures() -> Vec<PathBuf> {
    let mut v = shared_captures();
    v.sort_by_key(|p| std::cmp::Reverse(std::fs::metadata(p).unwrap().len()));
    v.truncate(6);
    v
}

/// Runs `read --flows DIR/flows.jsonl EXTRA... CAPTURES`; exit code and standard error.
fn read_into(dir: &Path, extra: &[&str], captures: &[PathBuf]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_appletap"))
        .args(["read", "--format", "json", "--threads", "2", "--flows"])
        .arg(dir.join("flows.jsonl"))
        .args(extra)
        .args(captures)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every line of every file in `dir` (each must be a JSON object), and the files' sizes.
fn lines_of(dir: &Path) -> (Vec<String>, Vec<u64>) {
    let mut lines = Vec::new();
    let mut sizes = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'), "{}", p.display());
        for l in text.lines() {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: a split record? {e}: {l}", p.display()));
            assert!(v.is_object());
            lines.push(l.to_string());
        }
        sizes.push(text.len() as u64);
    }
    (lines, sizes)
}

#[test]
fn rotated_files_hold_exactly_the_records_of_one_run() {
    let captures = big_captures();
    let (_, one) = read_with_records("2", &[], &captures);
    assert!(one.len() > 300, "{} records", one.len());
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = read_into(dir.path(), &["--flows-rotate-size", "16KiB"], &captures);
    assert_eq!(code, Some(0), "{err}");
    let (mut got, sizes) = lines_of(dir.path());
    got.sort();
    assert_eq!(
        got, one,
        "the rotated files together hold one run's records"
    );
    assert!(sizes.len() > 10, "{} files", sizes.len());
    // A file is cut before the record that would take it past the limit (records are far
    // smaller than 16 KiB here).
    assert!(sizes.iter().all(|s| *s <= 16 * 1024), "{sizes:?}");
    // Names: flows.jsonl (the current file) and flows.jsonl.YYYYMMDDTHHMMSSZ-NNNNNN.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names[0], "flows.jsonl");
    for (i, n) in names[1..].iter().enumerate() {
        let rest = n.strip_prefix("flows.jsonl.").unwrap();
        let (stamp, seq) = rest.split_once('-').unwrap();
        assert_eq!(stamp.len(), 16, "{n}");
        assert!(stamp.ends_with('Z') && stamp.as_bytes()[8] == b'T', "{n}");
        assert_eq!(seq, format!("{:06}", i + 1), "{n}");
    }
}

/// A tmpfs of 64 KiB, unmounted on drop.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(ok.success(), "mount -t tmpfs");
        Self(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_disk_says_which_file_and_how_many_records_and_keeps_the_rest_whole() {
    if !is_root() {
        eprintln!("not root: cannot mount a small tmpfs; full-disk test skipped");
        return;
    }
    let captures = big_captures();
    let (_, one) = read_with_records("2", &[], &captures);
    let all: BTreeSet<&String> = one.iter().collect();
    for extra in [&[][..], &["--flows-rotate-size", "16KiB"][..]] {
        let disk = SmallDisk::mount();
        let (code, err) = read_into(disk.0.path(), extra, &captures);
        assert_eq!(code, Some(1), "{extra:?}: {err}");
        let file = disk.0.path().join("flows.jsonl");
        assert!(
            err.contains(&format!("writing flow records to {}", file.display()))
                && err.contains("No space left on device"),
            "{extra:?}: {err}"
        );
        let lost: usize = err
            .lines()
            .find_map(|l| {
                let at = l.find(" flow record(s) could not be written")?;
                l[..at].rsplit(' ').next()?.parse().ok()
            })
            .unwrap_or_else(|| panic!("{extra:?}: no count in {err}"));
        let (kept, _) = lines_of(disk.0.path());
        assert!(!kept.is_empty() && lost > 0, "{extra:?}: {err}");
        // What reached the disk is whole records of the run, each once; with what was
        // counted as lost, every record.
        let kept_set: BTreeSet<&String> = kept.iter().collect();
        assert_eq!(kept_set.len(), kept.len(), "{extra:?}: duplicates");
        assert!(kept_set.is_subset(&all), "{extra:?}");
        assert_eq!(kept.len() + lost, one.len(), "{extra:?}: {err}");
    }
}
