//! Where a run's output goes: flow records through a writer thread to a file or standard
//! output, reports rendered as a table or JSON, standard output and error that a closed pipe
//! ends quietly (and live mode notices, [`output_closed`]), and the progress bar on a terminal.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use super::flow_file::{FlowFile, Rotation};
use super::ipfix::Exporter;
use super::output_guard;
use crate::cli::{ClassifyOpt, FlowsFormat, Format};
use crate::report::ecs::EcsRecord;
use crate::report::record::FlowRecord;
use crate::report::{Report, render_table};

/// Where flow records go: a file of whole records (rotated, reopened on SIGHUP) or a stream.
enum Out {
    File(FlowFile),
    Stream(Box<dyn Write + Send>),
}

/// Where flow records go, and whether writing them has failed.
pub(super) struct FlowSink {
    out: Option<Out>,
    label: String,
    pub(super) error: Option<String>,
    /// `--community-id-seed`, applied as records are written.
    seed: u16,
    /// `--flows-format`.
    format: FlowsFormat,
    /// `--ipfix`: the exporter fed the same records.
    ipfix: Option<Exporter>,
    /// What the IPFIX export did, once it ended.
    pub(super) ipfix_summary: Option<String>,
}

impl FlowSink {
    /// Opens `opt.flows`, refused (exit 2, nothing written) when it would destroy one of
    /// `inputs` or the signature file, or an existing capture without `--overwrite`.
    /// With `--ipfix`, starts the exporter too.
    pub(super) fn open(opt: &ClassifyOpt, inputs: &[std::path::PathBuf]) -> Result<Self> {
        let mut sink = Self::open_flows(opt, inputs)?;
        sink.ipfix = Exporter::start(&opt.ipfix);
        Ok(sink)
    }

    fn open_flows(opt: &ClassifyOpt, inputs: &[std::path::PathBuf]) -> Result<Self> {
        let Some(path) = opt.flows.as_deref() else {
            return Ok(Self {
                out: None,
                label: String::new(),
                error: None,
                seed: opt.community_id_seed,
                format: opt.flows_format,
                ipfix: None,
                ipfix_summary: None,
            });
        };
        let read = inputs.iter().map(|p| p.as_path());
        let read = read.chain(opt.sig.signatures.as_deref());
        output_guard::check_output(path, read, opt.overwrite)?;
        let rotation = Rotation {
            size: opt.flows_rotate_size.map(|s| s.0),
            interval: opt.flows_rotate_interval.map(Duration::from_secs),
        };
        let (out, label) = if path == Path::new("-") {
            if rotation.size.is_some() || rotation.interval.is_some() {
                anyhow::bail!(
                    "--flows-rotate-size and --flows-rotate-interval need --flows FILE, not standard output (-)"
                );
            }
            (
                Out::Stream(Box::new(BufWriter::new(io::stdout()))),
                "standard output".into(),
            )
        } else {
            match FlowFile::create(path, rotation) {
                Ok(f) => (Out::File(f), path.display().to_string()),
                Err(e) => {
                    // The report still matters more than the records: carry on without them
                    // and say why at the end (exit code 1).
                    return Ok(Self {
                        out: None,
                        seed: opt.community_id_seed,
                        format: opt.flows_format,
                        ipfix: None,
                        ipfix_summary: None,
                        label: path.display().to_string(),
                        error: Some(format!(
                            "cannot write flow records to {}: {e} (the report still covers every flow)",
                            path.display()
                        )),
                    });
                }
            }
        };
        Ok(Self {
            out: Some(out),
            label,
            error: None,
            seed: opt.community_id_seed,
            format: opt.flows_format,
            ipfix: None,
            ipfix_summary: None,
        })
    }

    fn write(&mut self, records: &[FlowRecord]) {
        if let Some(x) = self.ipfix.as_mut() {
            x.send(records);
        }
        let Some(out) = self.out.as_mut() else {
            return;
        };
        if let Out::File(f) = out {
            f.tick();
            let mut line = Vec::with_capacity(1024);
            for r in records {
                line.clear();
                if encode(self.format, self.seed, r, &mut line).is_ok() {
                    line.push(b'\n');
                    f.push(&line);
                }
            }
            say_new_error(f);
            return;
        }
        let Out::Stream(out) = out else {
            return;
        };
        let mut result = Ok(());
        for r in records {
            result = encode(self.format, self.seed, r, &mut *out)
                .map_err(io::Error::from)
                .and_then(|()| out.write_all(b"\n"));
            if result.is_err() {
                break;
            }
        }
        if let Err(e) = result {
            self.fail(e);
        }
    }

    /// Between batches and at least every [`WRITER_TICK`]: SIGHUP's reopening, rotation by
    /// time.
    fn tick(&mut self) {
        if let Some(Out::File(f)) = self.out.as_mut() {
            f.tick();
            // No records for a moment: those held are written, so a quiet sensor's file (and
            // a log shipper reading it) is never far behind.
            f.flush();
            say_new_error(f);
        }
    }

    fn flush(&mut self) {
        match self.out.as_mut() {
            Some(Out::File(f)) => {
                f.flush();
                say_new_error(f);
                if let Some(e) = f.summary() {
                    self.error = Some(e);
                }
            }
            Some(Out::Stream(out)) => {
                if let Err(e) = out.flush() {
                    self.fail(e);
                }
            }
            None => {}
        }
    }

    fn fail(&mut self, e: io::Error) {
        // A reader that went away (`| head`) is not an error; anything else is reported.
        if e.kind() == io::ErrorKind::BrokenPipe {
            CLOSED.store(true, Ordering::SeqCst);
        } else {
            self.error = Some(format!(
                "writing flow records to {} failed: {e}",
                self.label
            ));
        }
        self.out = None;
    }
}

/// Batches of records queued for the writer before workers wait: bounded, so a slow disk
/// slows the pipeline down instead of growing memory.
const WRITER_QUEUE: usize = 64;

/// A `--flows` file's first failure, said at once; a reader gone from its pipe ends live mode
/// quietly, as with `--flows -`.
fn say_new_error(f: &mut FlowFile) {
    if f.broken_pipe {
        CLOSED.store(true, Ordering::SeqCst);
    }
    if let Some(e) = f.take_new_error() {
        write_stderr(&format!("appletap: {e}\n"));
    }
}

/// One record as `--flows-format` shapes it, with `--community-id-seed` applied.
fn encode(
    format: FlowsFormat,
    seed: u16,
    r: &FlowRecord,
    out: &mut (impl Write + ?Sized),
) -> serde_json::Result<()> {
    let seeded;
    let r = if seed == 0 {
        r
    } else {
        seeded = r.clone().with_seed(seed);
        &seeded
    };
    match format {
        FlowsFormat::Plain => serde_json::to_writer(out, r),
        FlowsFormat::Ecs => serde_json::to_writer(out, &EcsRecord::of(r)),
    }
}

/// How long the writer waits for records before it writes those it holds, and looks at SIGHUP
/// and the rotation interval.
const WRITER_TICK: Duration = Duration::from_millis(200);

/// A thread that writes flow records as workers finish them.
pub(super) struct Writer {
    /// None when no records are wanted (no `--flows`, no `--ipfix`): engines then keep none.
    pub(super) tx: Option<Sender<Vec<FlowRecord>>>,
    handle: JoinHandle<FlowSink>,
}

impl Writer {
    pub(super) fn start(mut sink: FlowSink) -> Self {
        let (tx, rx): (Sender<Vec<FlowRecord>>, Receiver<Vec<FlowRecord>>) = bounded(WRITER_QUEUE);
        let tx = (sink.out.is_some() || sink.ipfix.is_some()).then_some(tx);
        let handle = std::thread::Builder::new()
            .name("appletap-writer".into())
            .spawn(move || {
                loop {
                    match rx.recv_timeout(WRITER_TICK) {
                        Ok(batch) => sink.write(&batch),
                        Err(RecvTimeoutError::Timeout) => sink.tick(),
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                sink.flush();
                if let Some(x) = sink.ipfix.take() {
                    sink.ipfix_summary = Some(x.finish().1);
                }
                sink
            })
            .expect("spawning the writer thread");
        Self { tx, handle }
    }

    pub(super) fn finish(self) -> FlowSink {
        drop(self.tx);
        // Without a sender the writer's loop ends at once.
        let sink = self.handle.join().unwrap_or(FlowSink {
            out: None,
            seed: 0,
            format: FlowsFormat::Plain,
            ipfix: None,
            ipfix_summary: None,
            label: String::new(),
            error: Some("the flow-record writer failed".into()),
        });
        // The export's counters, whatever became of it (a collector down is no failure of
        // the run: the report and records are whole).
        if let Some(line) = &sink.ipfix_summary {
            write_stderr(&format!("appletap: {line}"));
        }
        sink
    }
}

pub(super) fn progress_bar(
    enabled: bool,
    len: Option<u64>,
    name: &str,
) -> Option<indicatif::ProgressBar> {
    if !enabled || !io::stderr().is_terminal() {
        return None;
    }
    let len = len?;
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr_with_hz(10),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(name.to_string());
    Some(bar)
}

pub(super) fn render(report: &Report, format: Format, pretty: bool) -> Result<String> {
    Ok(match format {
        Format::Table => render_table(report),
        Format::Json if pretty => serde_json::to_string_pretty(report)? + "\n",
        Format::Json => serde_json::to_string(report)? + "\n",
    })
}

/// Set when an output's reader went away: a write failed with a broken pipe (the report,
/// the flow records or a message), or [`outputs_gone`] saw it.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether a write found its reader gone (`| head` exited): live mode then ends, quietly.
pub(super) fn output_closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// Notes a broken pipe; other write errors are as quiet as before (nowhere to report them).
fn note(result: io::Result<()>) {
    if result.is_err_and(|e| e.kind() == io::ErrorKind::BrokenPipe) {
        CLOSED.store(true, Ordering::SeqCst);
    }
}

/// Writes to standard output; a closed pipe (`| head`) ends output quietly.
pub(super) fn write_stdout(text: &str) {
    let mut out = io::stdout().lock();
    note(out.write_all(text.as_bytes()).and_then(|()| out.flush()));
}

/// Writes to standard error; a closed pipe ends output quietly (`eprint!` would panic).
pub(super) fn write_stderr(text: &str) {
    let mut err = io::stderr().lock();
    note(err.write_all(text.as_bytes()).and_then(|()| err.flush()));
}

/// Whether standard output, and standard error when `stderr_too`, lost its reader (a pipe
/// whose reading end is closed), asked without writing: live mode with no traffic has
/// nothing to write and must still end when `| head` has exited. Sets [`output_closed`].
pub(super) fn outputs_gone(stderr_too: bool) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let (out, err) = (io::stdout(), io::stderr());
    let mut fds = vec![PollFd::new(out.as_fd(), PollFlags::empty())];
    if stderr_too {
        fds.push(PollFd::new(err.as_fd(), PollFlags::empty()));
    }
    // POLLERR: a pipe with no reader; POLLHUP: a socket or terminal that hung up.
    let gone = poll(&mut fds, PollTimeout::ZERO).is_ok_and(|_| {
        fds.iter().any(|f| {
            f.revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP))
        })
    });
    if gone {
        CLOSED.store(true, Ordering::SeqCst);
    }
    gone
}
