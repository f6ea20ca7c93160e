//! Command-line arguments (clap derive). Doc comments are the help text; no logic here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum, ValueHint};

/// appletap: see which Apple services a network uses, from capture files or a live interface.
#[derive(Debug, Parser)]
#[command(name = "appletap", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read pcap/pcapng files and report flows, packets and bytes per service.
    Read(ReadArgs),
    /// List the signature set, or check a signature file.
    Signatures(SignaturesArgs),
}

/// Output format of reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned text for people.
    Table,
    /// One JSON document for tools.
    Json,
}

/// Options shared by the subcommands that classify traffic.
#[derive(Debug, Args)]
pub struct SignatureOpt {
    /// Use this signature file instead of the built-in set (format: signatures/README.md).
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub signatures: Option<PathBuf>,
}

/// `appletap read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Capture files (pcap or pcapng), read in order as one capture; `-` reads standard input.
    #[arg(required = true, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub files: Vec<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also write one JSON object per flow, one per line, to PATH (`-` for standard output,
    /// in which case the report goes to standard error).
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub flows: Option<PathBuf>,
    /// Most flows held in memory at once; the oldest is evicted (and counted) beyond it.
    #[arg(long, value_name = "N", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_flows: u64,
    /// Never show a progress bar (it is shown only when standard error is a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Signature set selection.
    #[command(flatten)]
    pub sig: SignatureOpt,
}

/// `appletap signatures`.
#[derive(Debug, Args)]
pub struct SignaturesArgs {
    /// Output format of the listing.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Validate FILE and report what it holds (or what is wrong with it), without listing it.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub check: Option<PathBuf>,
    /// Signature set selection.
    #[command(flatten)]
    pub sig: SignatureOpt,
}
