//! `appletap completions SHELL` and `appletap man DIR`: shell completions (clap_complete) and
//! manual pages (clap_mangen) generated from the same definition as `--help`, so they never
//! drift from it. The Debian package is built with what these print (scripts/make-deb.sh).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;

use super::output::write_stdout;
use crate::cli::{Cli, CompletionsArgs, ManArgs};

/// The completion script for `shell`.
#[must_use]
pub fn completion_script(shell: clap_complete::Shell) -> String {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "appletap", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn completions(args: &CompletionsArgs) -> Result<ExitCode> {
    write_stdout(&completion_script(args.shell));
    Ok(ExitCode::SUCCESS)
}

/// Writes `appletap.1` and one page per subcommand (`appletap-live.1`, ...) into `dir`.
///
/// # Errors
/// The directory could not be created or a page written.
pub fn write_man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("cannot write manual pages into {}", dir.display()))
}

pub(super) fn man(args: &ManArgs) -> Result<ExitCode> {
    write_man_pages(&args.dir)?;
    Ok(ExitCode::SUCCESS)
}
