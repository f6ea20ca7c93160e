//! `appletap read`: capture files in order through the classifier, one report at the end.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;

use super::output::{FlowSink, Writer, progress_bar, render, write_stderr, write_stdout};
use super::{
    EXIT_PARTIAL, Run, classifier_config, install_signal_handler, load_signatures, stopping,
};
use crate::capture::file::{CaptureFile, is_stop};
use crate::capture::{Next, PacketSource};
use crate::cli::{ClassifyOpt, ReadArgs};
use crate::pipeline::Classifier;
use crate::report::{Drops, InputSummary, Report};

/// Reads capture files in order through the classifier and builds the report.
pub(super) fn run_files(
    files: &[std::path::PathBuf],
    classify: &ClassifyOpt,
    no_progress: bool,
) -> Result<Run> {
    let sigs = load_signatures(&classify.sig)?;
    let sink = FlowSink::open(classify, files)?;
    install_signal_handler();
    let writer = Writer::start(sink);
    let mut config = classifier_config(classify, false);
    // N threads in all: from two on, one reads each file ahead and N - 1 classify. The
    // kernel's copy of the file is a quarter of the work, and on the reading thread it set
    // the pace of `--threads 2` (capture/ahead.rs has the figures).
    let read_ahead = config.threads >= 2;
    if read_ahead {
        config.threads -= 1;
    }
    let mut classifier = Classifier::new(Arc::clone(&sigs), config, writer.tx.clone());
    let mut inputs = Vec::new();
    let mut failed = false;
    for path in files {
        if stopping() {
            break;
        }
        let name = path.display().to_string();
        // A FIFO, pipe or terminal may keep us waiting in open or read: a signal ends the wait.
        let opened = if path == Path::new("-") {
            CaptureFile::from_stdin("standard input".into(), stopping)
        } else {
            CaptureFile::open_stoppable(path, stopping)
        };
        let mut cap = match opened {
            Ok(c) => c,
            Err(e) => {
                failed = true;
                let error = if is_stop(&e) {
                    stopped_note(&name, 0)
                } else {
                    e.to_string()
                };
                inputs.push(InputSummary {
                    file: name,
                    format: None,
                    packets: 0,
                    error: Some(error),
                });
                continue;
            }
        };
        if read_ahead {
            cap.read_ahead();
        }
        let bar = progress_bar(!no_progress, cap.file_len(), &name);
        let mut error = None;
        let mut n: u64 = 0;
        loop {
            // Every packet already in memory up to the next stop check, then one the slow
            // way (reading more of the file, or telling the end or an error).
            let room = STOP_CHECK_EVERY - n % STOP_CHECK_EVERY;
            let took = classifier.push_buffered(&mut cap, room);
            n += took;
            if took == room {
                if check_stop(&mut error, &name, n, &bar, &cap) {
                    break;
                }
                continue;
            }
            match PacketSource::next_packet(&mut cap) {
                Next::Packet(pkt) => classifier.push(&pkt),
                Next::Idle => {}
                Next::End => break,
                Next::Error(e) if is_stop(&e) => {
                    error = Some(stopped_note(&name, cap.records_read()));
                    break;
                }
                Next::Error(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
            n += 1;
            if n.is_multiple_of(STOP_CHECK_EVERY) && check_stop(&mut error, &name, n, &bar, &cap) {
                break;
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        classifier.end_of_input();
        failed |= error.is_some();
        inputs.push(InputSummary {
            file: name,
            format: Some(cap.format()),
            packets: cap.records_read(),
            error,
        });
    }
    let totals = classifier.finish();
    let sink = writer.finish();
    let report = Report::build(
        &sigs,
        inputs,
        &totals.counters,
        &totals.names,
        totals.evicted,
        Drops {
            pipeline: totals.pipeline_drops,
            ..Drops::default()
        },
    );
    let mut errors: Vec<String> = report
        .inputs
        .iter()
        .filter_map(|i| i.error.clone())
        .collect();
    if let Some(e) = sink.error {
        errors.push(e);
        failed = true;
    }
    Ok(Run {
        report,
        failed,
        errors,
    })
}

/// Packets read between two looks at whether a signal asks to stop (and moves of the
/// progress bar).
const STOP_CHECK_EVERY: u64 = 8192;

/// Every [`STOP_CHECK_EVERY`] packets: whether a signal asks to stop (then `error` says so),
/// and the progress bar moved on.
fn check_stop(
    error: &mut Option<String>,
    name: &str,
    n: u64,
    bar: &Option<indicatif::ProgressBar>,
    cap: &CaptureFile,
) -> bool {
    if stopping() {
        *error = Some(stopped_note(name, n));
        return true;
    }
    if let Some(b) = bar {
        b.set_position(cap.bytes_consumed());
    }
    false
}

/// What a report says of an input a signal stopped.
fn stopped_note(name: &str, packets: u64) -> String {
    format!("{name}: stopped by a signal after {packets} packets; the report covers them")
}

pub(super) fn read(args: &ReadArgs) -> Result<ExitCode> {
    if let Some(path) = &args.metrics_file {
        super::sensor::check_metrics_file(path, &args.files)?;
    }
    let mut events = super::events::EventSink::open(&args.classify, &args.files)?;
    let mut run = run_files(&args.files, &args.classify, args.no_progress)?;
    events.report(&run.report);
    if let Some(e) = events.error.take() {
        run.errors.push(e);
        run.failed = true;
    }
    if let Some(path) = &args.metrics_file
        && let Err(e) = super::sensor::write_metrics_file(path, &args.classify.sig, &run.report)
    {
        run.errors.push(format!("{e:#}"));
        run.failed = true;
    }
    let text = render(&run.report, args.format, true)?;
    if args.classify.flows.as_deref() == Some(Path::new("-")) {
        write_stderr(&text);
    } else {
        write_stdout(&text);
    }
    for e in &run.errors {
        write_stderr(&format!("appletap: {e}\n"));
    }
    Ok(if run.failed {
        ExitCode::from(EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    })
}
