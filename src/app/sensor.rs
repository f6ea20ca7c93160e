//! The commands' side of the sensor: starting the metrics server and dashboard for
//! `live --listen` (with its credentials), the snapshot the capture loop hands it, and
//! `read --metrics-file`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use super::output::write_stderr;
use super::output_guard::check_output;
use crate::capture::Timestamp;
use crate::cli::SignatureOpt;
use crate::report::Report;
use crate::sensor::metrics::signature_version;
use crate::sensor::{Auth, Encoding, Metrics, Sensor, is_loopback};
use crate::signature::BUILTIN_TEXT;

/// How old a live flow must be (since its first packet) before the metrics count it: its
/// label (a name seen a few packets in) and its outcome (answered or not) have settled by then,
/// so the per-service counters only ever grow. Younger flows are counted once they are that
/// old, or when they end.
pub(super) const SETTLE: Duration = Duration::from_secs(5);

/// The metrics, with the build info for the signature set in use.
fn new_metrics(sig: &SignatureOpt) -> Result<Metrics> {
    let version = match &sig.signatures {
        Some(p) => signature_version(
            &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        ),
        None => signature_version(BUILTIN_TEXT.as_bytes()),
    };
    Ok(Metrics::new(&version))
}

/// The credentials `--listen` asks for, read once when the command starts (before any
/// capture), so that every capture backend's [`start`] serves with them.
static AUTH: OnceLock<Auth> = OnceLock::new();

/// Reads `--auth-token-file` and `--auth-basic-file`; an unreadable, empty or malformed file
/// stops the command here, before the capture opens.
pub(super) fn configure_auth(token_file: Option<&Path>, basic_file: Option<&Path>) -> Result<()> {
    let auth = Auth::load(token_file, basic_file).context("reading the --listen credentials")?;
    // A second call (none today) keeps the first credentials.
    let _ = AUTH.set(auth);
    Ok(())
}

/// Starts serving metrics, the dashboard and the JSON API on `addr`; says where on standard
/// error, with a warning when it is not loopback and asks for no credentials.
pub(super) fn start(addr: SocketAddr, sig: &SignatureOpt) -> Result<Sensor> {
    let auth = AUTH.get().cloned().unwrap_or_default();
    let open = !auth.required();
    let sensor = Sensor::start_with(addr, new_metrics(sig)?, auth)?;
    let at = sensor.local_addr();
    if !is_loopback(&at) && open {
        write_stderr(&format!(
            "appletap: warning: serving metrics and the dashboard on {at}, beyond loopback, \
             without credentials: anyone who can reach it can read them (see --auth-basic-file)\n"
        ));
    }
    write_stderr(&format!("appletap: metrics at http://{at}/metrics\n"));
    write_stderr(&format!("appletap: dashboard at http://{at}/\n"));
    Ok(sensor)
}

/// The packet time up to which live flows count in a snapshot: [`SETTLE`] before now (live
/// packets carry the kernel's wall-clock time).
pub(super) fn settled_now() -> Timestamp {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(SETTLE);
    Timestamp(u64::try_from(now.as_nanos()).unwrap_or(u64::MAX))
}

/// Refuses `--metrics-file PATH` before anything is read when it would replace an input or a
/// capture file.
pub(super) fn check_metrics_file(path: &Path, inputs: &[PathBuf]) -> Result<()> {
    if path == Path::new("-") {
        bail!("--metrics-file needs a file name, not -");
    }
    if let Err(e) = check_output(path, inputs.iter().map(PathBuf::as_path), false) {
        bail!(
            "refusing to write metrics to {}: {}",
            path.display(),
            match e {
                crate::app::output_guard::OutputGuardError::IsInput { .. } => "it is also an input",
                crate::app::output_guard::OutputGuardError::ExistingCapture { .. } =>
                    "it is an existing capture file",
            }
        );
    }
    Ok(())
}

/// Writes the metrics of a finished run to `path` in Prometheus' text format: to a temporary
/// file beside it, then renamed over it, so a collector never reads half a file.
pub(super) fn write_metrics_file(path: &Path, sig: &SignatureOpt, report: &Report) -> Result<()> {
    let metrics = new_metrics(sig)?;
    metrics.update(report, Some(&crate::sensor::api::by_kind(&report.devices)));
    let text = metrics.encode(Encoding::Text);
    let name = path
        .file_name()
        .with_context(|| format!("--metrics-file {} names no file", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing metrics to {}", path.display()));
    }
    Ok(())
}
