//! Every command output pasted in the README is what the binary prints: each fenced block
//! whose lines start with `$ ` is run (in a scratch folder that sees `fixtures/`, `signatures/`
//! and `../shared/` as the README's paths do) and its standard output compared with the lines
//! after it. A line `...` stands for any lines. After an intended change, regenerate the
//! blocks without `...` with `UPDATE_README=1 cargo test --test readme` and review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One `$ command` of a block with the output pasted under it, and where it sits.
struct Example {
    command: String,
    expected: Vec<String>,
    /// Line numbers (0-based) of the expected output in the README.
    lines: std::ops::Range<usize>,
}

fn examples(readme: &str) -> Vec<Example> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(lang) = lines[i].trim_end().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let start = i + 1;
        let end = (start..lines.len())
            .find(|&j| lines[j].starts_with("```"))
            .unwrap_or(lines.len());
        // Only plain blocks hold pasted output (`sh`, `toml`, `json` blocks are listings).
        let mut j = if lang.is_empty() { start } else { end };
        while j < end {
            if let Some(cmd) = lines[j].strip_prefix("$ ") {
                let from = j + 1;
                let to = (from..end)
                    .find(|&k| lines[k].starts_with("$ "))
                    .unwrap_or(end);
                out.push(Example {
                    command: cmd.to_string(),
                    expected: lines[from..to].iter().map(|l| l.to_string()).collect(),
                    lines: from..to,
                });
                j = to;
            } else {
                j += 1;
            }
        }
        i = end + 1;
    }
    out
}

/// Whether `actual` matches `expected`, where a `...` line matches any lines.
fn matches(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => {
            actual.first().is_some_and(|a| a == first) && matches(rest, &actual[1..])
        }
    }
}

/// A scratch folder laid out like the repository beside `../shared/`.
fn scratch() -> (tempfile::TempDir, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    for name in ["fixtures", "signatures"] {
        std::os::unix::fs::symlink(root.join(name), work.join(name)).unwrap();
    }
    std::os::unix::fs::symlink(root.join("../shared"), dir.path().join("shared")).unwrap();
    (dir, work)
}

fn run(command: &str, cwd: &Path) -> String {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_appletap")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(cwd)
        .env("PATH", path)
        .output()
        .expect("sh runs");
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn every_output_pasted_in_the_readme_is_what_the_binary_prints() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let examples = examples(&readme);
    assert!(examples.len() >= 5, "found {} examples", examples.len());
    let update = std::env::var_os("UPDATE_README").is_some();
    let mut lines: Vec<String> = readme.lines().map(String::from).collect();
    let mut wrong = Vec::new();
    // Later examples first, so that rewriting one keeps the line numbers of the others.
    for ex in examples.iter().rev() {
        let (_dir, work) = scratch();
        let actual = run(&ex.command, &work);
        let actual: Vec<&str> = actual.lines().collect();
        if matches(&ex.expected, &actual) {
            continue;
        }
        if update && !ex.expected.iter().any(|l| l == "...") {
            lines.splice(ex.lines.clone(), actual.iter().map(|l| l.to_string()));
            continue;
        }
        wrong.push(format!(
            "README line {}: `{}` printed:\n{}\n--- the README shows:\n{}",
            ex.lines.start,
            ex.command,
            actual.join("\n"),
            ex.expected.join("\n")
        ));
    }
    if update {
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn the_matcher_takes_ellipses_as_any_lines() {
    let e = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(matches(&e(&["a", "...", "d"]), &["a", "b", "c", "d"]));
    assert!(matches(&e(&["a", "..."]), &["a"]));
    assert!(!matches(&e(&["a", "...", "d"]), &["a", "b"]));
    assert!(!matches(&e(&["a", "b"]), &["a", "b", "c"]));
}
