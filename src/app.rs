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

use crate::capture::file::CaptureFile;
use crate::capture::live::{self, CaptureDrops, LiveCapture};
use crate::capture::{Next, Packet, PacketSource};
use crate::cli::{
    ClassifyOpt, Cli, Command, Format, InterfacesArgs, LiveArgs, ReadArgs, SignatureOpt,
    SignaturesArgs,
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
    fn open(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else {
            return Ok(Self {
                out: None,
                label: String::new(),
                error: None,
            });
        };
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
    Pipelined(Pipeline),
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
            Self::Pipelined(Pipeline::new(
                sigs,
                config,
                threads,
                live,
                writer.tx.clone(),
            ))
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

fn read(args: &ReadArgs) -> Result<ExitCode> {
    let sigs = load_signatures(&args.classify.sig)?;
    let sink = FlowSink::open(args.classify.flows.as_deref())?;
    let flows_on_stdout = args.classify.flows.as_deref() == Some(Path::new("-"));
    install_signal_handler();
    let writer = Writer::start(sink);
    let mut classifier = Classifier::new(Arc::clone(&sigs), &args.classify, false, &writer);
    let mut inputs = Vec::new();
    let mut failed = false;
    for path in &args.files {
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
        let bar = progress_bar(!args.no_progress, cap.file_len(), &name);
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
    let text = render(&report, args.format, true)?;
    if flows_on_stdout {
        eprint!("{text}");
    } else {
        write_stdout(&text);
    }
    for i in &report.inputs {
        if let Some(e) = &i.error {
            eprintln!("appletap: {e}");
        }
    }
    if let Some(e) = &sink.error {
        eprintln!("appletap: {e}");
        failed = true;
    }
    Ok(if failed {
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
    Report::build(
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
    )
}

fn live(args: &LiveArgs) -> Result<ExitCode> {
    let sigs = load_signatures(&args.classify.sig)?;
    let mut cap = LiveCapture::open(&args.interface, args.filter.as_deref(), args.snaplen)?;
    let sink = FlowSink::open(args.classify.flows.as_deref())?;
    let reports_to_stderr = args.classify.flows.as_deref() == Some(Path::new("-"));
    install_signal_handler();
    let writer = Writer::start(sink);
    let mut classifier = Classifier::new(Arc::clone(&sigs), &args.classify, true, &writer);
    let shared = classifier.shared();
    let started = Instant::now();
    let interval = Duration::from_secs(args.interval);
    let mut next_report = started + interval;
    let deadline = args.duration.map(|d| started + Duration::from_secs(d));
    let emit = |text: String| {
        if reports_to_stderr {
            eprint!("{text}");
        } else {
            write_stdout(&text);
        }
    };
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
            if stopping() || deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            if Instant::now() >= next_report {
                next_report += interval;
                let t = classifier.progress();
                let drops = cap.drops();
                let report = live_report(&sigs, &shared, &args.interface, &t, drops, None);
                emit(render(&report, args.format, false)?);
                if args.format == Format::Table {
                    emit(format!("({} flows active)\n\n", t.active_flows));
                }
            }
        }
    }
    let drops = cap.drops();
    let totals = classifier.finish();
    let sink = writer.finish();
    let report = live_report(
        &sigs,
        &shared,
        &args.interface,
        &totals,
        drops,
        error.clone(),
    );
    emit(render(&report, args.format, false)?);
    if let Some(e) = &sink.error {
        eprintln!("appletap: {e}");
        return Ok(ExitCode::from(EXIT_PARTIAL));
    }
    if let Some(e) = error {
        eprintln!("appletap: {e}");
        return Ok(ExitCode::from(EXIT_PARTIAL));
    }
    Ok(ExitCode::SUCCESS)
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
