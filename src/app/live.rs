//! `appletap live`: one interface through the classifier until a signal, the duration or a
//! capture error, with a report every interval.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::output::{
    FlowSink, Writer, output_closed, outputs_gone, render, write_stderr, write_stdout,
};
use super::{
    EXIT_PARTIAL, Run, classifier_config, install_signal_handler, load_signatures, stopping,
};
use crate::capture::live::{CaptureDrops, LiveCapture};
use crate::capture::{Next, PacketSource};
use crate::cli::{CaptureBackend, ClassifyOpt, Format, LiveArgs};
use crate::pipeline::{Classifier, Totals};
use crate::report::{Drops, InputSummary, Report};
use crate::signature::{SharedSignatures, SignatureSet};

fn live_report(
    sigs: &SignatureSet,
    iface: &str,
    t: &Totals,
    cap_drops: CaptureDrops,
    error: Option<String>,
) -> Report {
    let mut r = Report::build(
        sigs,
        vec![InputSummary {
            file: format!("live:{iface}"),
            format: None,
            packets: t.counters.packets.read,
            error,
        }],
        &t.counters,
        &t.names,
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

/// How often live mode asks whether its outputs lost their reader: `| head -1` exited, and
/// with no traffic nothing may be written that would tell.
const OUTPUT_POLL: Duration = Duration::from_millis(100);

/// Settings of one live capture.
pub(super) struct LiveParams<'a> {
    pub(super) iface: &'a str,
    pub(super) filter: Option<&'a str>,
    pub(super) snaplen: i32,
    /// The kernel's capture ring, in MiB.
    pub(super) buffer_mib: u32,
    pub(super) interval: Option<Duration>,
    pub(super) duration: Option<u64>,
    pub(super) classify: &'a ClassifyOpt,
    /// libpcap, or AF_PACKET sockets ([`super::readers`]).
    pub(super) backend: CaptureBackend,
    /// AF_PACKET sockets reading in parallel (default: the machine's cores).
    pub(super) readers: Option<u64>,
    /// Serve metrics here (`--listen`).
    pub(super) listen: Option<std::net::SocketAddr>,
}

/// Captures live until a signal, the duration or a capture error; calls `on_interval` with a
/// report every interval.
pub(super) fn run_live(
    p: &LiveParams<'_>,
    mut on_interval: impl FnMut(&Report) -> Result<()>,
) -> Result<Run> {
    let sigs = Arc::new(SharedSignatures::new(load_signatures(&p.classify.sig)?));
    super::reload::on_hangup(Arc::clone(&sigs), p.classify.sig.signatures.clone());
    if p.backend == CaptureBackend::AfPacket {
        let params = super::readers::ReadersParams {
            iface: p.iface,
            filter: p.filter,
            snaplen: p.snaplen,
            interval: p.interval,
            duration: p.duration,
            classify: p.classify,
            readers: p.readers,
            buffer_mib: p.buffer_mib,
            sigs: &sigs,
            listen: p.listen,
        };
        let report = |t: &Totals, drops, error| live_report(&sigs.load(), p.iface, t, drops, error);
        return super::readers::run_readers(&params, &report, on_interval);
    }
    let mut cap = LiveCapture::open_with(p.iface, p.filter, p.snaplen, p.buffer_mib)?;
    let mut notifier = super::service::Notifier::from_env();
    notifier.ready(p.iface);
    let mut sensor = p
        .listen
        .map(|addr| super::sensor::start(addr, &p.classify.sig))
        .transpose()?;
    let sink = FlowSink::open(p.classify, &[])?;
    install_signal_handler();
    let writer = Writer::start(sink);
    let mut classifier = Classifier::new(
        sigs.load(),
        classifier_config(p.classify, true),
        writer.tx.clone(),
    );
    classifier.follow_reloads(&sigs);
    // Standard output carries the report or the flow records; with `--flows -` standard
    // error carries the report.
    let stderr_too = p.classify.flows.as_deref() == Some(Path::new("-"));
    let started = Instant::now();
    let mut next_poll = started;
    let mut next_report = p.interval.map(|i| started + i);
    let deadline = p.duration.map(|d| started + Duration::from_secs(d));
    let mut error = None;
    let mut drain = false;
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
                error = Some(e.to_string());
                break;
            }
        }
        n = n.wrapping_add(1);
        // The clock is read here, at the edge, never in the core; at most every 64 packets,
        // and on every idle pass.
        if n.is_multiple_of(64) || idle {
            let now = Instant::now();
            if stopping() || deadline.is_some_and(|d| now >= d) {
                drain = true;
                break;
            }
            if output_closed() {
                break;
            }
            notifier.tick(now);
            if now >= next_poll {
                next_poll = now + OUTPUT_POLL;
                if outputs_gone(stderr_too) {
                    break;
                }
            }
            if let (Some(at), Some(every)) = (next_report, p.interval)
                && now >= at
            {
                next_report = Some(at + every);
                let t = classifier.progress();
                let drops = cap.drops();
                on_interval(&live_report(&sigs.load(), p.iface, &t, drops, None))?;
            }
            // Only when a scrape asked, at most once a second; the report is built on the
            // sensor's thread.
            if let Some(s) = &mut sensor
                && s.wants_snapshot(now)
            {
                if let Some(pending) = classifier.progress_settled(super::sensor::settled_now()) {
                    let (drops, sigs) = (cap.drops(), Arc::clone(&sigs));
                    let iface = p.iface.to_string();
                    s.publish(Box::new(move || {
                        let totals = pending.collect();
                        // The set is taken after the workers answered: a worker may have taken a
                        // reloaded set meanwhile, and the report must name all it counted.
                        crate::sensor::Published::new(live_report(
                            &sigs.load(),
                            &iface,
                            &totals,
                            drops,
                            None,
                        ))
                    }));
                } else {
                    s.retry();
                }
            }
        }
    }
    if drain {
        // What the ring already holds is counted: read until it stays empty for longer than
        // the kernel takes to hand over a block that is not full (an empty read can come
        // while the last packets still sit in such a block), for at most DRAIN.
        let until = Instant::now() + super::readers::DRAIN;
        let quiet_for = Duration::from_millis(2 * crate::capture::live::READ_TIMEOUT_MS as u64);
        let mut last_packet = Instant::now();
        loop {
            match cap.next_packet() {
                Next::Packet(pkt) => {
                    classifier.push(&pkt);
                    last_packet = Instant::now();
                    if last_packet >= until {
                        break;
                    }
                }
                Next::Idle => {
                    let now = Instant::now();
                    if now >= until || now.duration_since(last_packet) > quiet_for {
                        break;
                    }
                }
                Next::End | Next::Error(_) => break,
            }
        }
    }
    notifier.stopping();
    if let Some(s) = sensor {
        s.stop();
    }
    let drops = cap.drops();
    let totals = classifier.finish();
    let sink = writer.finish();
    let report = live_report(&sigs.load(), p.iface, &totals, drops, error.clone());
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

pub(super) fn live(args: &LiveArgs) -> Result<ExitCode> {
    let to_stderr = args.classify.flows.as_deref() == Some(Path::new("-"));
    let emit = |text: String| {
        if to_stderr {
            write_stderr(&text);
        } else {
            write_stdout(&text);
        }
    };
    let params = LiveParams {
        iface: &args.interface,
        filter: args.filter.as_deref(),
        snaplen: args.snaplen,
        buffer_mib: args.buffer_size,
        interval: Some(Duration::from_secs(args.interval)),
        duration: args.duration,
        classify: &args.classify,
        backend: args.capture,
        readers: args.readers,
        listen: args.listen,
    };
    super::readers::check_options(args.capture, args.readers, &args.classify)?;
    super::sensor::configure_auth(
        args.auth_token_file.as_deref(),
        args.auth_basic_file.as_deref(),
    )?;
    let mut events = super::events::EventSink::open(&args.classify, &[])?;
    let mut run = run_live(&params, |report| {
        events.report(report);
        emit(render(report, args.format, false)?);
        if args.format == Format::Table {
            emit("\n".into());
        }
        Ok(())
    })
    .map_err(|e| match &args.interface_origin {
        // Capture errors are returned only when opening: name where the interface was set.
        Some(origin) if e.downcast_ref::<crate::capture::CaptureError>().is_some() => {
            e.context(format!("interface {:?} set at {origin}", args.interface))
        }
        _ => e,
    })?;
    events.report(&run.report);
    if let Some(e) = events.error.take() {
        run.errors.push(e);
        run.failed = true;
    }
    emit(render(&run.report, args.format, false)?);
    for e in &run.errors {
        write_stderr(&format!("appletap: {e}\n"));
    }
    Ok(if run.failed {
        ExitCode::from(EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    })
}
