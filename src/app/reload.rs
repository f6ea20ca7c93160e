//! SIGHUP in `live`: reloads the signature set and reopens every file live mode appends to
//! (`--flows`, `--events`), so logrotate can move a file away and send SIGHUP. Done on the
//! signal thread: the capture loops never wait for a file to load. A bad new file is reported
//! with what to fix, and the set in use keeps running.

use std::path::PathBuf;
use std::sync::Arc;

use super::output::write_stderr;
use crate::signature::{SharedSignatures, SignatureSet};

/// Makes SIGHUP reload the signature set (`--signatures`, or the built-in set) into `shared` and reopen the output files.
pub(super) fn on_hangup(shared: Arc<SharedSignatures>, signatures: Option<PathBuf>) {
    super::on_hangup(move || {
        reload(&shared, signatures.as_deref());
        super::flow_file::request_reopen();
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
