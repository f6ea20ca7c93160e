//! The small commands: `appletap interfaces` and `appletap signatures`.

use std::process::ExitCode;

use anyhow::Result;

use super::load_signatures;
use super::output::write_stdout;
use crate::capture::live;
use crate::cli::{Format, InterfacesArgs, SignaturesArgs};
use crate::signature::SignatureSet;

pub(super) fn interfaces(args: &InterfacesArgs) -> Result<ExitCode> {
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

pub(super) fn signatures(args: &SignaturesArgs) -> Result<ExitCode> {
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
