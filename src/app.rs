//! Runs a command: wires capture sources, the core and the report together, and owns output,
//! progress display and exit codes. The only place that touches files and terminals.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::capture::file::CaptureFile;
use crate::cli::{Cli, Command, Format, ReadArgs, SignatureOpt, SignaturesArgs};
use crate::engine::{Engine, EngineConfig};
use crate::flow::record::FlowRecord;
use crate::report::{InputSummary, Report, render_table};
use crate::signature::SignatureSet;

/// Exit code: an input could not be fully read (the partial report was still printed).
pub const EXIT_PARTIAL: u8 = 1;
/// Exit code: bad usage or a bad signature file.
pub const EXIT_USAGE: u8 = 2;

/// Runs the parsed command line.
///
/// # Errors
/// Setup failures (signature file, output file) that the caller reports with exit code 2.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Read(args) => read(&args),
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
    out: Option<Box<dyn Write>>,
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
        let (out, label): (Box<dyn Write>, String) = if path == Path::new("-") {
            (
                Box::new(BufWriter::new(io::stdout())),
                "standard output".into(),
            )
        } else {
            let f = File::create(path)
                .with_context(|| format!("cannot write flow records to {}", path.display()))?;
            (
                Box::new(BufWriter::with_capacity(1 << 16, f)),
                path.display().to_string(),
            )
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

    fn finish(&mut self) {
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

fn read(args: &ReadArgs) -> Result<ExitCode> {
    let sigs = load_signatures(&args.sig)?;
    let config = EngineConfig {
        max_flows: usize::try_from(args.max_flows).unwrap_or(usize::MAX),
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(Arc::clone(&sigs), config);
    let mut sink = FlowSink::open(args.flows.as_deref())?;
    let flows_on_stdout = args.flows.as_deref() == Some(Path::new("-"));
    let mut inputs = Vec::new();
    let mut failed = false;
    for path in &args.files {
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
        while let Some(next) = cap.next_packet() {
            match next {
                Ok(pkt) => engine.process(&pkt),
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
            n += 1;
            if n.is_multiple_of(4096) {
                sink.write(&engine.take_finished());
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
    engine.finish();
    sink.write(&engine.take_finished());
    sink.finish();
    let report = Report::build(
        &sigs,
        engine.shared(),
        inputs,
        engine.tally(),
        engine.stats(),
        engine.flow_counts().1,
    );
    let text = match args.format {
        Format::Table => render_table(&report),
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
    };
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
