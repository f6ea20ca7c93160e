//! `--events PATH`: writes the events each report brings ([`crate::report::events`]) as JSON
//! lines, flushed at once so a log shipper sees them while live mode runs. Opened before any
//! capture is read and refused like `--flows` when it would destroy an input or a capture.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;

use super::output_guard;
use crate::cli::ClassifyOpt;
use crate::report::Report;
use crate::report::events::EventTracker;

/// Where events go (nowhere without `--events`), and the first write error.
pub(super) struct EventSink {
    out: Option<Box<dyn Write>>,
    tracker: EventTracker,
    label: String,
    /// The file (not standard output), reopened after SIGHUP (logrotate moved it away).
    path: Option<PathBuf>,
    reopen_seen: u64,
    /// Why events stopped being written, for the end of the run (exit code 1).
    pub(super) error: Option<String>,
}

impl EventSink {
    /// Opens `opt.events`, refused (exit 2) when it is one of `inputs` or the signature file,
    /// or an existing capture file without `--overwrite`.
    pub(super) fn open(opt: &ClassifyOpt, inputs: &[PathBuf]) -> Result<Self> {
        let mut sink = Self {
            out: None,
            tracker: EventTracker::default(),
            label: String::new(),
            path: None,
            reopen_seen: super::flow_file::reopen_generation(),
            error: None,
        };
        let Some(path) = opt.events.as_deref() else {
            return Ok(sink);
        };
        let read = inputs.iter().map(|p| p.as_path());
        let read = read.chain(opt.sig.signatures.as_deref());
        output_guard::check_output(path, read, opt.overwrite)
            .map_err(|e| anyhow::anyhow!("--events: {e}"))?;
        sink.label = path.display().to_string();
        if path == Path::new("-") {
            sink.out = Some(Box::new(io::stdout()));
        } else {
            match File::create(path) {
                Ok(f) => {
                    sink.out = Some(Box::new(f));
                    sink.path = Some(path.to_path_buf());
                }
                Err(e) => sink.error = Some(format!("cannot write events to {}: {e}", sink.label)),
            }
        }
        Ok(sink)
    }

    /// Writes the events `report` brings since the last one.
    pub(super) fn report(&mut self, report: &Report) {
        let generation = super::flow_file::reopen_generation();
        if generation != self.reopen_seen
            && let Some(path) = &self.path
            && self.out.is_some()
        {
            self.reopen_seen = generation;
            // Each event was written whole and flushed: the old file is complete.
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                Ok(f) => self.out = Some(Box::new(f)),
                Err(e) => {
                    self.error = Some(format!("cannot reopen events file {}: {e}", self.label));
                    self.out = None;
                }
            }
        }
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| (d.as_micros() as f64) / 1e6);
        let mut text = String::new();
        for e in self.tracker.next(report, at) {
            match serde_json::to_string(&e) {
                Ok(line) => {
                    text.push_str(&line);
                    text.push('\n');
                }
                Err(e) => self.error = Some(format!("encoding an event failed: {e}")),
            }
        }
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            self.error = Some(format!("writing events to {} failed: {e}", self.label));
            self.out = None;
        }
    }
}
