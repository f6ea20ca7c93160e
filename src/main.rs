//! The `appletap` binary: parses arguments, runs the command, maps outcomes to exit codes
//! (0 success, 1 an input could not be fully read, 2 usage or signature errors).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = appletap::cli::Cli::parse();
    match appletap::app::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("appletap: {e:#}");
            ExitCode::from(appletap::app::EXIT_USAGE)
        }
    }
}
