//! `appletap audit`: which Apple services are blocked and which traffic is unexpected, from
//! capture files or an interface; `--fail-on` turns a verdict into an exit code.

use std::process::ExitCode;

use anyhow::Result;

use super::live::{LiveParams, run_live};
use super::output::{write_stderr, write_stdout};
use super::read::run_files;
use super::{EXIT_AUDIT_FAILED, EXIT_PARTIAL};
use crate::cli::{AuditArgs, FailOn, Format};
use crate::report::health::{HealthLine, Verdict};
use crate::report::{Drops, InputSummary};

/// The audit's JSON document: the health and unexpected-traffic sections only.
#[derive(serde::Serialize)]
struct AuditDoc<'a> {
    appletap_version: &'a str,
    inputs: &'a [InputSummary],
    health: &'a [HealthLine],
    unexpected: &'a [crate::report::UnexpectedLine],
    unclassified_apple_names: &'a [crate::report::NameCount],
    floods_and_scans: &'a crate::report::floods::FloodsAndScans,
    drops: &'a Drops,
    devices: &'a crate::report::devices::Devices,
}

pub(super) fn audit(args: &AuditArgs) -> Result<ExitCode> {
    let mut events = super::events::EventSink::open(&args.classify, &args.files)?;
    let mut run = match (&args.interface, args.files.is_empty()) {
        (Some(iface), true) => {
            let params = LiveParams {
                iface,
                filter: args.filter.as_deref(),
                snaplen: 65_535,
                buffer_mib: crate::capture::live::DEFAULT_BUFFER_MIB,
                interval: None,
                listen: None,
                duration: Some(args.duration),
                classify: &args.classify,
                backend: crate::cli::CaptureBackend::Libpcap,
                readers: None,
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
    events.report(&run.report);
    if let Some(e) = events.error.take() {
        run.errors.push(e);
        run.failed = true;
    }
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
                floods_and_scans: &r.floods_and_scans,
                drops: &r.drops,
                devices: &r.devices,
            })? + "\n"
        }
    };
    write_stdout(&text);
    for e in &run.errors {
        write_stderr(&format!("appletap: {e}\n"));
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
