//! Runs a command: wires capture sources, the classifier (inline or pipelined) and the report
//! together, and owns output, progress display, signals and exit codes. The only place that
//! touches files, terminals, clocks and signals.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam_channel::{Receiver, Sender, bounded};

use crate::audit::Verdict;
use crate::capture::file::CaptureFile;
use crate::capture::live::{self, CaptureDrops, LiveCapture};
use crate::capture::{Next, Packet, PacketSource};
use crate::cli::{
    AuditArgs, ClassifyOpt, Cli, Command, FailOn, Format, InterfacesArgs, LiveArgs, ReadArgs,
    SignatureOpt, SignaturesArgs,
};
use crate::engine::{Engine, EngineConfig};
use crate::flow::record::FlowRecord;
use crate::pipeline::Pipeline;
use crate::report::{Drops, InputSummary, Report, render_table};
use crate::shared::Shared;
use crate::signature::SignatureSet;
use crate::tally::{PacketStats, Tally};

/// Exit code: an input could not be fully read (the partial report was still printed).
pub const EXIT_PARTIAL: u8 = 1;
/// Exit code: bad usage or a bad signature file.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: `audit --fail-on` found the condition it was given.
pub const EXIT_AUDIT_FAILED: u8 = 3;

/// Set by SIGINT/SIGTERM: stop reading, flush every flow, print the final report.
static STOP: AtomicBool = AtomicBool::new(false);

fn install_signal_handler() {
    // A second signal while flushing is ignored: the final report is on its way.
    let _ = ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst));
}

fn stopping() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Runs the parsed command line.
///
/// # Errors
/// Setup failures (signature file, output file, capture interface) that the caller reports
/// with exit code 2.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Read(args) => read(&args),
        Command::Live(args) => live(&args),
        Command::Audit(args) => audit(&args),
        Command::Interfaces(args) => interfaces(&args),
        Command::Signatures(args) => signatures(&args),
    }
}

/// Loads the signature set named by `--signatures`, or the built-in one.
///
/// # Errors
/// The file's problem, naming file, line and entry.
pub fn load_signatures(opt: &SignatureOpt) -> Result<Arc<SignatureSet>> {
    let set = match &opt.signatures {
        Some(p) => SignatureSet::from_path(p)?,
        None => SignatureSet::builtin()?,
    };
    Ok(Arc::new(set))
}

/// Where flow records go, and whether writing them has failed.
struct FlowSink {
    out: Option<Box<dyn Write + Send>>,
    label: String,
    error: Option<String>,
}

impl FlowSink {
    /// Opens `opt.flows`, refused (exit 2, nothing written) when it would destroy one of
    /// `inputs` or the signature file, or an existing capture without `--overwrite`.
    fn open(opt: &ClassifyOpt, inputs: &[std::path::PathBuf]) -> Result<Self> {
        let Some(path) = opt.flows.as_deref() else {
            return Ok(Self {
                out: None,
                label: String::new(),
                error: None,
            });
        };
        let read = inputs.iter().map(|p| p.as_path());
        let read = read.chain(opt.sig.signatures.as_deref());
        crate::output_guard::check_output(path, read, opt.overwrite)?;
        let (out, label): (Box<dyn Write + Send>, String) = if path == Path::new("-") {
            (
                Box::new(BufWriter::new(io::stdout())),
                "standard output".into(),
            )
        } else {
            match File::create(path) {
                Ok(f) => (
                    Box::new(BufWriter::with_capacity(1 << 16, f)),
                    path.display().to_string(),
                ),
                Err(e) => {
                    // The report still matters more than the records: carry on without them
                    // and say why at the end (exit code 1).
                    return Ok(Self {
                        out: None,
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
        })
    }

    fn write(&mut self, records: &[FlowRecord]) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let mut result = Ok(());
        for r in records {
            result = serde_json::to_writer(&mut *out, r)
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

    fn flush(&mut self) {
        if let Some(out) = self.out.as_mut()
            && let Err(e) = out.flush()
        {
            self.fail(e);
        }
    }

    fn fail(&mut self, e: io::Error) {
        // A reader that went away (`| head`) is not an error; anything else is reported.
        if e.kind() != io::ErrorKind::BrokenPipe {
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

/// A thread that writes flow records as workers finish them.
struct Writer {
    /// None when no records are wanted (no `--flows`): engines then keep none.
    tx: Option<Sender<Vec<FlowRecord>>>,
    handle: JoinHandle<FlowSink>,
}

impl Writer {
    fn start(mut sink: FlowSink) -> Self {
        let (tx, rx): (Sender<Vec<FlowRecord>>, Receiver<Vec<FlowRecord>>) = bounded(WRITER_QUEUE);
        let tx = sink.out.is_some().then_some(tx);
        let handle = std::thread::Builder::new()
            .name("appletap-writer".into())
            .spawn(move || {
                for batch in rx {
                    sink.write(&batch);
                }
                sink.flush();
                sink
            })
            .expect("spawning the writer thread");
        Self { tx, handle }
    }

    fn finish(self) -> FlowSink {
        drop(self.tx);
        // Without a sender the writer's loop ends at once.
        self.handle.join().unwrap_or(FlowSink {
            out: None,
            label: String::new(),
            error: Some("the flow-record writer failed".into()),
        })
    }
}

/// The classifier: one engine on the reading thread, or the pipeline with N workers.
enum Classifier {
    Inline {
        engine: Box<Engine>,
        records: Option<Sender<Vec<FlowRecord>>>,
        since_flush: u32,
    },
    Pipelined(Box<Pipeline>),
}

/// What a classifier run produced.
struct Totals {
    tally: Tally,
    stats: PacketStats,
    evicted: u64,
    pipeline_drops: u64,
    active_flows: usize,
}

impl Classifier {
    fn new(sigs: Arc<SignatureSet>, opt: &ClassifyOpt, live: bool, writer: &Writer) -> Self {
        let threads = opt.threads.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get()),
            |n| usize::try_from(n).unwrap_or(1),
        );
        let config = EngineConfig {
            max_flows: usize::try_from(opt.max_flows).unwrap_or(usize::MAX),
            ..EngineConfig::default()
        };
        if threads <= 1 {
            let mut engine = Box::new(Engine::new(sigs, config));
            if writer.tx.is_none() {
                engine.discard_records();
            }
            Self::Inline {
                engine,
                records: writer.tx.clone(),
                since_flush: 0,
            }
        } else {
            // N threads in all: this one reads, decodes and dispatches, N - 1 workers
            // classify. (On a 2-core machine three busy threads measured slower than two.)
            Self::Pipelined(Box::new(Pipeline::new(
                sigs,
                config,
                threads,
                live,
                writer.tx.clone(),
            )))
        }
    }

    fn push(&mut self, pkt: &Packet<'_>) {
        match self {
            Self::Inline {
                engine,
                records,
                since_flush,
            } => {
                engine.process(pkt);
                *since_flush += 1;
                if *since_flush >= 4096 {
                    *since_flush = 0;
                    let done = engine.take_finished();
                    if let Some(r) = records
                        && !done.is_empty()
                    {
                        let _ = r.send(done);
                    }
                }
            }
            Self::Pipelined(p) => p.push(pkt),
        }
    }

    fn idle(&mut self) {
        if let Self::Pipelined(p) = self {
            p.flush();
        }
    }

    fn shared(&self) -> Arc<Shared> {
        match self {
            Self::Inline { engine, .. } => Arc::clone(engine.shared()),
            Self::Pipelined(p) => Arc::clone(p.shared()),
        }
    }

    fn progress(&mut self) -> Totals {
        match self {
            Self::Inline { engine, .. } => {
                let (flows, evicted) = engine.flow_counts();
                Totals {
                    tally: engine.snapshot_tally(),
                    stats: *engine.stats(),
                    evicted,
                    pipeline_drops: 0,
                    active_flows: flows,
                }
            }
            Self::Pipelined(p) => {
                let pr = p.progress();
                Totals {
                    tally: pr.tally,
                    stats: pr.stats,
                    evicted: pr.evicted,
                    pipeline_drops: pr.pipeline_drops,
                    active_flows: pr.active_flows,
                }
            }
        }
    }

    fn finish(self) -> Totals {
        match self {
            Self::Inline {
                mut engine,
                records,
                ..
            } => {
                engine.finish();
                let done = engine.take_finished();
                if let Some(r) = records
                    && !done.is_empty()
                {
                    let _ = r.send(done);
                }
                Totals {
                    tally: engine.tally().clone(),
                    stats: *engine.stats(),
                    evicted: engine.flow_counts().1,
                    pipeline_drops: 0,
                    active_flows: 0,
                }
            }
            Self::Pipelined(p) => {
                let o = p.finish();
                Totals {
                    tally: o.tally,
                    stats: o.stats,
                    evicted: o.evicted,
                    pipeline_drops: o.pipeline_drops,
                    active_flows: 0,
                }
            }
        }
    }
}

fn progress_bar(enabled: bool, len: Option<u64>, name: &str) -> Option<indicatif::ProgressBar> {
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

fn render(report: &Report, format: Format, pretty: bool) -> Result<String> {
    Ok(match format {
        Format::Table => render_table(report),
        Format::Json if pretty => serde_json::to_string_pretty(report)? + "\n",
        Format::Json => serde_json::to_string(report)? + "\n",
    })
}

/// The outcome of classifying one set of inputs.
struct Run {
    report: Report,
    /// An input could not be fully read, or flow records could not be written.
    failed: bool,
    /// Messages for standard error (input and output errors).
    errors: Vec<String>,
}

/// Reads capture files in order through the classifier and builds the report.
fn run_files(
    files: &[std::path::PathBuf],
    classify: &ClassifyOpt,
    no_progress: bool,
) -> Result<Run> {
    let sigs = load_signatures(&classify.sig)?;
    let sink = FlowSink::open(classify, files)?;
    install_signal_handler();
    let writer = Writer::start(sink);
    let mut classifier = Classifier::new(Arc::clone(&sigs), classify, false, &writer);
    let mut inputs = Vec::new();
    let mut failed = false;
    for path in files {
        if stopping() {
            break;
        }
        let name = path.display().to_string();
        let opened = if path == Path::new("-") {
            CaptureFile::from_reader("standard input".into(), Box::new(io::stdin()))
        } else {
            CaptureFile::open(path)
        };
        let mut cap = match opened {
            Ok(c) => c,
            Err(e) => {
                failed = true;
                inputs.push(InputSummary {
                    file: name,
                    format: None,
                    packets: 0,
                    error: Some(e.to_string()),
                });
                continue;
            }
        };
        let bar = progress_bar(!no_progress, cap.file_len(), &name);
        let mut error = None;
        let mut n: u64 = 0;
        loop {
            match PacketSource::next_packet(&mut cap) {
                Next::Packet(pkt) => classifier.push(&pkt),
                Next::Idle => {}
                Next::End => break,
                Next::Error(e) => {
                    error = Some(e);
                    break;
                }
            }
            n += 1;
            if n.is_multiple_of(8192) {
                if stopping() {
                    error = Some(format!(
                        "{name}: stopped by a signal after {n} packets; the report covers them"
                    ));
                    break;
                }
                if let Some(b) = &bar {
                    b.set_position(cap.bytes_consumed());
                }
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        failed |= error.is_some();
        inputs.push(InputSummary {
            file: name,
            format: Some(cap.format()),
            packets: cap.records_read(),
            error,
        });
    }
    let shared = classifier.shared();
    let totals = classifier.finish();
    let sink = writer.finish();
    let report = Report::build(
        &sigs,
        &shared,
        inputs,
        &totals.tally,
        &totals.stats,
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

fn read(args: &ReadArgs) -> Result<ExitCode> {
    let run = run_files(&args.files, &args.classify, args.no_progress)?;
    let text = render(&run.report, args.format, true)?;
    if args.classify.flows.as_deref() == Some(Path::new("-")) {
        eprint!("{text}");
    } else {
        write_stdout(&text);
    }
    for e in &run.errors {
        eprintln!("appletap: {e}");
    }
    Ok(if run.failed {
        ExitCode::from(EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    })
}

fn live_report(
    sigs: &SignatureSet,
    shared: &Shared,
    iface: &str,
    t: &Totals,
    cap_drops: CaptureDrops,
    error: Option<String>,
) -> Report {
    let mut r = Report::build(
        sigs,
        shared,
        vec![InputSummary {
            file: format!("live:{iface}"),
            format: None,
            packets: t.stats.read,
            error,
        }],
        &t.tally,
        &t.stats,
        t.evicted,
        Drops {
            kernel_received: Some(cap_drops.received),
            kernel: Some(cap_drops.kernel),
            interface: Some(cap_drops.interface),
            pipeline: t.pipeline_drops,
        },
    );
    r.totals.flows_active = t.active_flows;
    r
}

/// Settings of one live capture.
struct LiveParams<'a> {
    iface: &'a str,
    filter: Option<&'a str>,
    snaplen: i32,
    interval: Option<Duration>,
    duration: Option<u64>,
    classify: &'a ClassifyOpt,
}

/// Captures live until a signal, the duration or a capture error; calls `on_interval` with a
/// report every interval.
fn run_live(p: &LiveParams<'_>, mut on_interval: impl FnMut(&Report) -> Result<()>) -> Result<Run> {
    let sigs = load_signatures(&p.classify.sig)?;
    let mut cap = LiveCapture::open(p.iface, p.filter, p.snaplen)?;
    let sink = FlowSink::open(p.classify, &[])?;
    install_signal_handler();
    let writer = Writer::start(sink);
    let mut classifier = Classifier::new(Arc::clone(&sigs), p.classify, true, &writer);
    let shared = classifier.shared();
    let started = Instant::now();
    let mut next_report = p.interval.map(|i| started + i);
    let deadline = p.duration.map(|d| started + Duration::from_secs(d));
    let mut error = None;
    let mut n: u32 = 0;
    loop {
        let mut idle = false;
        match cap.next_packet() {
            Next::Packet(pkt) => classifier.push(&pkt),
            Next::Idle => {
                idle = true;
                classifier.idle();
            }
            Next::End => break,
            Next::Error(e) => {
                error = Some(e);
                break;
            }
        }
        n = n.wrapping_add(1);
        // The clock is read here, at the edge, never in the core; at most every 64 packets,
        // and on every idle pass.
        if n.is_multiple_of(64) || idle {
            let now = Instant::now();
            if stopping() || deadline.is_some_and(|d| now >= d) {
                break;
            }
            if let (Some(at), Some(every)) = (next_report, p.interval)
                && now >= at
            {
                next_report = Some(at + every);
                let t = classifier.progress();
                let drops = cap.drops();
                on_interval(&live_report(&sigs, &shared, p.iface, &t, drops, None))?;
            }
        }
    }
    let drops = cap.drops();
    let totals = classifier.finish();
    let sink = writer.finish();
    let report = live_report(&sigs, &shared, p.iface, &totals, drops, error.clone());
    let mut errors = Vec::new();
    let mut failed = false;
    if let Some(e) = sink.error {
        errors.push(e);
        failed = true;
    }
    if let Some(e) = error {
        errors.push(e);
        failed = true;
    }
    Ok(Run {
        report,
        failed,
        errors,
    })
}

fn live(args: &LiveArgs) -> Result<ExitCode> {
    let to_stderr = args.classify.flows.as_deref() == Some(Path::new("-"));
    let emit = |text: String| {
        if to_stderr {
            eprint!("{text}");
        } else {
            write_stdout(&text);
        }
    };
    let params = LiveParams {
        iface: &args.interface,
        filter: args.filter.as_deref(),
        snaplen: args.snaplen,
        interval: Some(Duration::from_secs(args.interval)),
        duration: args.duration,
        classify: &args.classify,
    };
    let run = run_live(&params, |report| {
        emit(render(report, args.format, false)?);
        if args.format == Format::Table {
            emit("\n".into());
        }
        Ok(())
    })?;
    emit(render(&run.report, args.format, false)?);
    for e in &run.errors {
        eprintln!("appletap: {e}");
    }
    Ok(if run.failed {
        ExitCode::from(EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    })
}

/// The audit's JSON document: the health and unexpected-traffic sections only.
#[derive(serde::Serialize)]
struct AuditDoc<'a> {
    appletap_version: &'a str,
    inputs: &'a [InputSummary],
    health: &'a [crate::audit::HealthLine],
    unexpected: &'a [crate::report::UnexpectedLine],
    unclassified_apple_names: &'a [crate::report::NameCount],
    drops: &'a Drops,
}

fn audit(args: &AuditArgs) -> Result<ExitCode> {
    let run = match (&args.interface, args.files.is_empty()) {
        (Some(iface), true) => {
            let params = LiveParams {
                iface,
                filter: args.filter.as_deref(),
                snaplen: 65_535,
                interval: None,
                duration: Some(args.duration),
                classify: &args.classify,
            };
            run_live(&params, |_| Ok(()))?
        }
        (None, false) => run_files(&args.files, &args.classify, args.no_progress)?,
        (None, true) => anyhow::bail!(
            "audit needs capture files to read, or -i IFACE to capture live (with --duration SECONDS)"
        ),
        (Some(_), false) => anyhow::bail!(
            "audit takes capture files or -i IFACE, not both: drop -i to audit the files, or the files to capture live"
        ),
    };
    let r = &run.report;
    let text = match args.format {
        Format::Table => {
            let mut t = String::new();
            for i in &r.inputs {
                t.push_str(&format!("input: {} ({} packets)\n", i.file, i.packets));
            }
            t + &crate::report::render_audit(r)
        }
        Format::Json => {
            serde_json::to_string_pretty(&AuditDoc {
                appletap_version: r.appletap_version,
                inputs: &r.inputs,
                health: &r.health,
                unexpected: &r.unexpected,
                unclassified_apple_names: &r.unclassified_apple_names,
                drops: &r.drops,
            })? + "\n"
        }
    };
    write_stdout(&text);
    for e in &run.errors {
        eprintln!("appletap: {e}");
    }
    let worst = r.health.iter().map(|h| h.verdict).max();
    let tripped = match args.fail_on {
        Some(FailOn::Blocked) => worst == Some(Verdict::Blocked),
        Some(FailOn::Degraded) => worst >= Some(Verdict::Degraded),
        None => false,
    };
    Ok(if tripped {
        ExitCode::from(EXIT_AUDIT_FAILED)
    } else if run.failed {
        ExitCode::from(EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    })
}

fn interfaces(args: &InterfacesArgs) -> Result<ExitCode> {
    let list = live::interfaces().map_err(|e| {
        anyhow::anyhow!("cannot list capture interfaces: {e} (run as root or grant CAP_NET_RAW)")
    })?;
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&list)? + "\n",
        Format::Table => {
            let mut s = format!(
                "{:<20} {:<28} {:<40} DESCRIPTION\n",
                "NAME", "FLAGS", "ADDRESSES"
            );
            for i in &list {
                s += &format!(
                    "{:<20} {:<28} {:<40} {}\n",
                    i.name,
                    i.flags.join(","),
                    i.addresses.join(","),
                    i.description.as_deref().unwrap_or("")
                );
            }
            s
        }
    };
    write_stdout(&text);
    Ok(ExitCode::SUCCESS)
}

/// Writes to standard output; a closed pipe (`| head`) ends output quietly.
fn write_stdout(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn signatures(args: &SignaturesArgs) -> Result<ExitCode> {
    if let Some(path) = &args.check {
        let set = SignatureSet::from_path(path)?;
        write_stdout(&format!(
            "{}: OK: {} services, {} port rules, {} host patterns, {} address blocks, {} Bonjour types\n",
            path.display(),
            set.services.len(),
            set.ports.len(),
            set.hosts.len(),
            set.addresses.len(),
            set.bonjour.len()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let set = load_signatures(&args.sig)?;
    let text = match args.format {
        Format::Table => crate::signature::listing::table(&set),
        Format::Json => {
            serde_json::to_string_pretty(&crate::signature::listing::json(&set))? + "\n"
        }
    };
    write_stdout(&text);
    Ok(ExitCode::SUCCESS)
}
