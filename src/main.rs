//! The `appletap` binary: parses arguments, runs the command, maps outcomes to exit codes
//! (0 success, 1 an input could not be fully read, 2 usage or signature errors).

use std::process::ExitCode;

// mimalloc instead of glibc's malloc: DNS names, flow state and flow records are small,
// short-lived allocations, and glibc's malloc/free took 10% of all instructions on the
// benchmark capture (callgrind, first 100,000 packets).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // `live --config FILE` merges the file's settings under the command line's.
    let cli = match appletap::app::config::parse_from(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(e) => match e.downcast::<clap::Error>() {
            Ok(clap_error) => clap_error.exit(),
            Err(e) => {
                eprintln!("appletap: {e:#}");
                return ExitCode::from(appletap::app::EXIT_USAGE);
            }
        },
    };
    match appletap::app::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("appletap: {e:#}");
            ExitCode::from(appletap::app::EXIT_USAGE)
        }
    }
}
