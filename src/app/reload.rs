//! SIGHUP in `live`: reloads the signature set and reopens every file live mode appends to
//! (`--flows`, `--events`), so logrotate can move a file away and send SIGHUP. Done on the
//! signal thread: the capture loops never wait for a file to load. A bad new file is reported
//! with what to fix, and the set in use keeps running.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::output::write_stderr;
use crate::signature::{SharedSignatures, SignatureSet};

/// Bumped by each SIGHUP: a file writer whose generation differs reopens its file between two
/// records ([`reopen_generation`]).
static REOPEN: AtomicU64 = AtomicU64::new(0);

/// How many times the outputs were asked to reopen their files.
pub(super) fn reopen_generation() -> u64 {
    REOPEN.load(Ordering::Acquire)
}

/// Asks every output file to be reopened, as SIGHUP does (tests).
#[cfg(test)]
pub(super) fn request_reopen() {
    REOPEN.fetch_add(1, Ordering::AcqRel);
}

/// Makes SIGHUP reload the signature set (`--signatures`, or the built-in set) into `shared` and reopen the output files.
pub(super) fn on_hangup(shared: Arc<SharedSignatures>, signatures: Option<PathBuf>) {
    super::on_hangup(move || {
        reload(&shared, signatures.as_deref());
        REOPEN.fetch_add(1, Ordering::AcqRel);
    });
}

fn reload(shared: &SharedSignatures, signatures: Option<&std::path::Path>) {
    let loaded = match signatures {
        Some(p) => SignatureSet::from_path(p),
        None => SignatureSet::builtin(),
    };
    match loaded {
        Ok(set) => {
            let named: std::collections::HashSet<&str> =
                set.services.iter().map(|s| s.id.as_str()).collect();
            let old = shared.load();
            let dropped = old
                .services
                .iter()
                .filter(|s| !named.contains(s.id.as_str()))
                .count();
            let (services, rules) = (set.services.len(), set.rule_count());
            let now = shared.replace(set);
            let kept = if dropped > 0 {
                format!(
                    " ({dropped} service(s) no longer in it keep what they counted, and count nothing more)"
                )
            } else {
                String::new()
            };
            write_stderr(&format!(
                "appletap: SIGHUP: signatures reloaded from {}: {services} services, {rules} rules{kept}; flows that end from now on are labelled by them\n",
                now.origin
            ));
        }
        Err(e) => {
            let old = shared.load();
            write_stderr(&format!(
                "appletap: SIGHUP: signatures NOT reloaded, still using the {} rules of {}: {e}\n",
                old.rule_count(),
                old.origin
            ));
        }
    }
}
