//! Command-line arguments (clap derive). Doc comments are the help text; no logic here.
//! Every numeric flag is bounded when parsed (clap then names the allowed range and exits 2),
//! so no value given on the command line can overflow what it is later added to.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum, ValueHint};

/// Most classifier threads (`--threads`).
pub const MAX_THREADS: u64 = 256;
/// Most flows held at once (`--max-flows`): at a few hundred bytes to a few KiB per flow, more
/// would not fit a sane machine's memory anyway.
pub const MAX_FLOWS: u64 = 100_000_000;
/// Flows held at once by default (`--max-flows`): at about 1 KiB per flow held (measured with
/// `scripts/scan-memory.sh`, README "Memory"), the flow table then peaks near 150 MiB and the
/// whole process stays under 256 MiB at any number of distinct flows and threads, so a small
/// sensor runs in its defaults. Far above the flows a home or small office network has open.
pub const DEFAULT_MAX_FLOWS: u64 = 100_000;
/// Bytes of IP fragments held for reassembly by default (`--max-fragment-bytes`): 8 MiB,
/// Suricata's defrag memcap is 32 MiB for a whole sensor.
pub const DEFAULT_MAX_FRAGMENT_BYTES: u64 = 8 << 20;
/// Most devices in the inventory (`--max-devices`): each holds a few names and addresses, at
/// most a few KiB.
pub const MAX_DEVICES: u64 = 1_000_000;
/// Devices in the inventory by default (`--max-devices`): far more than a home or office
/// network has, at most a few tens of MiB.
pub const DEFAULT_MAX_DEVICES: u64 = 10_000;
/// Longest report interval (`live --interval`): a day.
pub const MAX_INTERVAL_SECS: u64 = 86_400;
/// Longest capture (`--duration`): ten years of 365.25 days. Added to a monotonic clock
/// reading; 2^63 seconds overflowed it and panicked.
pub const MAX_DURATION_SECS: u64 = 315_576_000;
/// Largest snapshot length (`live --snaplen`): libpcap's MAXIMUM_SNAPLEN.
pub const MAX_SNAPLEN: i32 = 262_144;
/// Default capture ring (`live --buffer-size`), in MiB. With the TPACKET_V3 ring libpcap
/// packs packets by their captured length: 128 MiB holds about 220,000 packets of the
/// benchmark capture (500 bytes on average), 0.4 s at 550,000 packets/s, so a reading thread
/// that loses its core for a moment catches up without a drop. Measured on 2 shared cores
/// (`scripts/live-throughput.sh`): the full 4-million-packet capture at tcpreplay's top speed
/// (450-630 kpps) was read whole at 1 and 2 threads with 128 MiB; with 32 MiB, 1.2% (one
/// thread) and 0.1% (two) were kernel drops.
pub const DEFAULT_BUFFER_MIB: u32 = 128;
/// Largest capture ring (`live --buffer-size`), in MiB: libpcap takes the size in bytes as a
/// C int.
pub const MAX_BUFFER_MIB: i64 = 2047;

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
    /// Capture on a live interface and report per service every interval until stopped.
    Live(LiveArgs),
    /// Which Apple services are blocked and which traffic is unexpected, from capture files
    /// or a live interface.
    Audit(AuditArgs),
    /// List the interfaces appletap can capture on.
    Interfaces(InterfacesArgs),
    /// List the signature set, or check a signature file.
    Signatures(SignaturesArgs),
    /// Print a shell completion script, generated from this command line's definition.
    Completions(CompletionsArgs),
    /// Write the manual pages (appletap.1, appletap-live.1, ...) into a directory.
    Man(ManArgs),
}

/// `appletap completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to complete for (bash scripts go to /usr/share/bash-completion/completions).
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `appletap man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write the pages into (created if missing).
    #[arg(value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub dir: PathBuf,
}

/// Options of the classifier shared by `read` and `live`.
#[derive(Debug, Args)]
pub struct ClassifyOpt {
    /// Also write one JSON object per flow, one per line, to PATH as flows end (`-` for
    /// standard output, in which case reports go to standard error).
    /// Refused when PATH is one of the inputs, or an existing capture file (see --overwrite).
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub flows: Option<PathBuf>,
    /// Let --flows replace an existing capture file (never one of the inputs).
    #[arg(long, requires = "flows")]
    pub overwrite: bool,
    /// Shape of the --flows records: appletap's own fields, or `ecs` documents (Elastic Common
    /// Schema) for Elasticsearch and OpenSearch.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = FlowsFormat::Plain, requires = "flows")]
    pub flows_format: FlowsFormat,
    /// Start a new --flows file before one would grow past SIZE (bytes, or with KiB, MiB or
    /// GiB): the full file is renamed PATH.YYYYMMDDTHHMMSSZ-NNNNNN beside it. Records are never split.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, requires = "flows")]
    pub flows_rotate_size: Option<ByteSize>,
    /// Start a new --flows file every SECONDS (one that holds at least a record), renamed as
    /// with --flows-rotate-size.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=MAX_DURATION_SECS), requires = "flows")]
    pub flows_rotate_interval: Option<u64>,
    /// Seed of the records' Community ID, 0 to 65535: the same on every sensor whose records
    /// are joined (Zeek's and Suricata's default is 0).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub community_id_seed: u16,
    /// Write events as JSON lines to PATH: a service's health verdict changing, and each new
    /// unexpected-traffic finding (`-` for standard output). Refused when PATH is one of the
    /// inputs, or an existing capture file.
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub events: Option<PathBuf>,
    /// Threads (default: the machine's cores; live, one fewer, at least 1): 1 classifies on the
    /// reading thread; N > 1 has one thread read, decode and dispatch and N - 1 worker threads
    /// classify, except that reading a file, one of the N reads it ahead. The output is the
    /// same for any number. 1 to 256.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=MAX_THREADS))]
    pub threads: Option<u64>,
    /// Most flows held in memory at once; the oldest is evicted (and counted) beyond it.
    /// Each flow held costs about 1 KiB. 1 to 100,000,000.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_FLOWS, value_parser = clap::value_parser!(u64).range(1..=MAX_FLOWS))]
    pub max_flows: u64,
    /// Most devices in the inventory; beyond it, the devices whose keys hash highest are left
    /// out (the same ones for any --threads) and their flows and announcements counted.
    /// 1 to 1,000,000.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_DEVICES, value_parser = clap::value_parser!(u64).range(1..=MAX_DEVICES))]
    pub max_devices: u64,
    /// Most bytes of IP fragments held for reassembly, in all (a datagram per 4 KiB of it may
    /// be held; one source may hold an eighth of each). Beyond it the oldest datagram is
    /// dropped (counted). 65,536 to 1,073,741,824.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_FRAGMENT_BYTES, value_parser = clap::value_parser!(u64).range(65_536..=1 << 30))]
    pub max_fragment_bytes: u64,
    /// Signature set selection.
    #[command(flatten)]
    pub sig: SignatureOpt,
    /// IPFIX export of flow records.
    #[command(flatten)]
    pub ipfix: IpfixOpt,
}

/// IPFIX export (`--ipfix`), shared by `read` and `live`.
#[derive(Debug, Args)]
pub struct IpfixOpt {
    /// Also export each flow record as IPFIX (RFC 7011, biflows per RFC 5103) over UDP to
    /// the collector at HOST:PORT. Never slows capture: what cannot be sent is counted.
    #[arg(long, value_name = "HOST:PORT")]
    pub ipfix: Option<String>,
    /// Private enterprise number of appletap's own IPFIX elements (confidence, server name)
    /// and of its application ids. Default 32473, reserved for documentation (RFC 5612).
    #[arg(long, value_name = "PEN", default_value_t = 32473, requires = "ipfix", value_parser = clap::value_parser!(u32).range(1..))]
    pub ipfix_enterprise: u32,
    /// IPFIX observation domain id of the messages.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "ipfix")]
    pub ipfix_domain: u32,
}

/// `appletap live`.
#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Interface to capture on (see `appletap interfaces`).
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "IFACE",
        required = false,
        required_unless_present = "config"
    )]
    pub interface: String,
    /// Read settings from this TOML file: each key is a long option of `live` without its
    /// dashes (`interval = 5`, `max-flows = 50000`); options given on the command line win.
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub config: Option<PathBuf>,
    /// Where the interface was set when it came from --config (`FILE:LINE:COL`), for errors.
    #[arg(skip)]
    pub interface_origin: Option<String>,
    /// BPF capture filter, as for tcpdump (e.g. "not port 22").
    #[arg(long, value_name = "BPF")]
    pub filter: Option<String>,
    /// Seconds between reports, 1 to 86400 (a day).
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=MAX_INTERVAL_SECS))]
    pub interval: u64,
    /// Stop by itself after this many seconds (default: run until SIGINT or SIGTERM), 1 to
    /// 315576000 (ten years).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=MAX_DURATION_SECS))]
    pub duration: Option<u64>,
    /// Report format: tables, or one JSON object per line per report with `json`.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Bytes captured per packet, 64 to 262144 (libpcap's largest).
    #[arg(long, value_name = "BYTES", default_value_t = 65_535, value_parser = clap::value_parser!(i32).range(64..=i64::from(MAX_SNAPLEN)))]
    pub snaplen: i32,
    /// How packets are captured: `libpcap` (the default, portable) or `af-packet` (Linux:
    /// several AF_PACKET sockets sharing the traffic by flow, see --readers).
    #[arg(long, value_enum, value_name = "BACKEND", default_value_t = CaptureBackend::Libpcap)]
    pub capture: CaptureBackend,
    /// With --capture af-packet: sockets reading in parallel, each on its own thread with its
    /// own classifier; the kernel hands each flow to one of them (default: the machine's
    /// cores). The report is the same for any number. 1 to 64.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=MAX_READERS))]
    pub readers: Option<u64>,
    /// Size of the kernel's capture ring in MiB (tcpdump's -B, in KiB there), 1 to 2047: it
    /// holds the packets that arrive while appletap is busy.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_BUFFER_MIB, value_parser = clap::value_parser!(u32).range(1..=MAX_BUFFER_MIB))]
    pub buffer_size: u32,
    /// Serve Prometheus metrics at http://ADDR/metrics, a live dashboard at / and the JSON API
    /// at /api/: IP:PORT, or a PORT alone for 127.0.0.1:PORT (loopback; any other address is
    /// said on standard error).
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub listen: Option<std::net::SocketAddr>,
    /// With --listen: answer only requests with `Authorization: Bearer TOKEN`, TOKEN being
    /// the first line of PATH (for scrapers and API clients; a browser cannot send it).
    #[arg(long, value_name = "PATH", requires = "listen", value_hint = ValueHint::FilePath)]
    pub auth_token_file: Option<PathBuf>,
    /// With --listen: ask for HTTP basic auth, the first line of PATH being `user:password`
    /// (the browser asks once for the dashboard and re-sends it).
    #[arg(long, value_name = "PATH", requires = "listen", value_hint = ValueHint::FilePath)]
    pub auth_basic_file: Option<PathBuf>,
    /// Classifier options.
    #[command(flatten)]
    pub classify: ClassifyOpt,
}

/// Most readers (`live --readers`).
pub const MAX_READERS: u64 = 64;

/// How `live` captures packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CaptureBackend {
    /// libpcap, one reading thread (any system).
    Libpcap,
    /// Linux AF_PACKET sockets with memory-mapped rings in a fanout group, one per reader.
    AfPacket,
}

/// Shape of flow records (`--flows-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlowsFormat {
    /// appletap's own fields (README "Flow records").
    Plain,
    /// Elastic Common Schema documents (README "ECS records").
    Ecs,
}

/// `appletap interfaces`.
#[derive(Debug, Args)]
pub struct InterfacesArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
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
    /// Never show a progress bar (it is shown only when standard error is a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Also write the Prometheus metrics once at the end to PATH, in the text format
    /// node_exporter's textfile collector reads (written to a temporary file, then renamed).
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub metrics_file: Option<PathBuf>,
    /// Classifier options.
    #[command(flatten)]
    pub classify: ClassifyOpt,
}

/// `--listen`: `IP:PORT`, `[IPv6]:PORT`, or a port alone for loopback.
/// A size in bytes (`--flows-rotate-size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

/// `1000`, `64KiB`, `100MiB`, `2GiB` (also `K`, `M`, `G`: binary units all).
fn parse_size(s: &str) -> Result<ByteSize, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        _ => {
            return Err(format!(
                "{s:?}: expected bytes, or a number with KiB, MiB or GiB"
            ));
        }
    };
    n.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|&n| n > 0)
        .map(ByteSize)
        .ok_or_else(|| format!("{s:?}: expected a size of at least 1 byte, e.g. 100MiB"))
}

fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|_| format!("{s:?} is not IP:PORT (e.g. 127.0.0.1:9477) or a port"))
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

/// When `audit` should exit with code 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Some Apple service is blocked (attempts made, none answered).
    Blocked,
    /// Some Apple service is degraded or blocked (some attempts failed).
    Degraded,
}

/// `appletap audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Capture files to audit (or use -i to audit a live interface).
    #[arg(value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub files: Vec<PathBuf>,
    /// Audit live traffic on this interface for --duration seconds instead of files.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,
    /// Seconds to capture with -i, 1 to 315576000 (ten years).
    #[arg(long, value_name = "SECONDS", default_value_t = 60, requires = "interface", value_parser = clap::value_parser!(u64).range(1..=MAX_DURATION_SECS))]
    pub duration: u64,
    /// BPF capture filter with -i.
    #[arg(long, value_name = "BPF", requires = "interface")]
    pub filter: Option<String>,
    /// Exit with code 3 when this holds (for scripts and monitoring checks).
    #[arg(long, value_enum, value_name = "CONDITION")]
    pub fail_on: Option<FailOn>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Classifier options.
    #[command(flatten)]
    pub classify: ClassifyOpt,
}
