//! Runs a command: wires capture sources, the classifier (inline or pipelined) and the report
//! together, and owns output, progress display, signals and exit codes. The only place that
//! touches files, terminals, clocks and signals.

mod audit;
mod commands;
pub mod config;
pub mod docs;
mod events;
mod flow_file;
mod ipfix;
mod live;
mod output;
pub mod output_guard;
mod read;
mod readers;
mod reload;
mod sensor;
mod service;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Result;

use crate::cli::{ClassifyOpt, Cli, Command, SignatureOpt};
use crate::pipeline::{ClassifierConfig, EngineConfig};
use crate::report::Report;
use crate::signature::SignatureSet;

/// Exit code: an input could not be fully read (the partial report was still printed).
pub const EXIT_PARTIAL: u8 = 1;
/// Exit code: bad usage or a bad signature file.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: `audit --fail-on` found the condition it was given.
pub const EXIT_AUDIT_FAILED: u8 = 3;

/// Set by SIGINT/SIGTERM (and SIGHUP but in `live`): stop reading, flush every flow, print
/// the final report.
static STOP: AtomicBool = AtomicBool::new(false);

/// What SIGHUP does in `live` ([`reload`]): reload the signatures and reopen the outputs.
/// Unset (`read`, `audit`), SIGHUP stops the run as SIGINT does.
static ON_HANGUP: OnceLock<Box<dyn Fn() + Send + Sync>> = OnceLock::new();

/// Makes SIGHUP run `f` instead of stopping: set before [`install_signal_handler`].
fn on_hangup(f: impl Fn() + Send + Sync + 'static) {
    let _ = ON_HANGUP.set(Box::new(f));
}

fn install_signal_handler() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        // The signals are handled on a thread of their own, not in the signal handler: it may
        // write, load files and exit.
        let _ = std::thread::Builder::new()
            .name("appletap-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    if signal == SIGHUP
                        && let Some(f) = ON_HANGUP.get()
                    {
                        f();
                    } else if STOP.swap(true, Ordering::SeqCst) {
                        // A second signal: the first one's report is not coming (an output
                        // that stopped reading holds the flush up) or is not wanted. Without
                        // this only SIGKILL would end a run stuck that way.
                        output::write_stderr(
                            "appletap: a second signal: ending now, without the report\n",
                        );
                        std::process::exit(i32::from(EXIT_PARTIAL));
                    }
                }
            });
    });
}

/// Whether a signal asked the run to stop (a [`crate::capture::file::StopCheck`]).
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
        Command::Read(args) => read::read(&args),
        Command::Live(args) => live::live(&args),
        Command::Audit(args) => audit::audit(&args),
        Command::Interfaces(args) => commands::interfaces(&args),
        Command::Signatures(args) => commands::signatures(&args),
        Command::Completions(args) => docs::completions(&args),
        Command::Man(args) => docs::man(&args),
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

/// The outcome of classifying one set of inputs.
struct Run {
    report: Report,
    /// An input could not be fully read, or flow records could not be written.
    failed: bool,
    /// Messages for standard error (input and output errors).
    errors: Vec<String>,
}

/// The classifier settings the options give (`live` drops at queues that stay full rather
/// than wait for ever).
fn classifier_config(opt: &ClassifyOpt, live: bool) -> ClassifierConfig {
    ClassifierConfig {
        engine: EngineConfig {
            max_flows: usize::try_from(opt.max_flows).unwrap_or(usize::MAX),
            max_devices: usize::try_from(opt.max_devices).unwrap_or(usize::MAX),
            max_fragment_bytes: usize::try_from(opt.max_fragment_bytes).unwrap_or(usize::MAX),
            ..EngineConfig::default()
        },
        threads: opt.threads.map_or_else(
            || default_threads(live),
            |n| usize::try_from(n).unwrap_or(1),
        ),
        drop_when_full: live,
    }
}

/// Threads without `--threads`: every core to read a file; live, one core fewer (at least
/// one thread), left to the kernel, which fills the capture ring on a core of its own. On 2
/// cores one thread read every packet of replays that a second thread, competing with the
/// kernel and tcpreplay for the cores, did not (README "Performance").
fn default_threads(live: bool) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if live {
        cores.saturating_sub(1).max(1)
    } else {
        cores
    }
}
