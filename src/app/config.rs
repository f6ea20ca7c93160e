//! `live --config FILE`: the command line from a TOML file. Each key is a long option of
//! `live` without its dashes (`interval = 5`, `max-flows = 50000`, `overwrite = true`), found
//! in clap's own definition of `live`, so every option has a key the day it is added and the
//! keys never drift from `--help`. Values are checked with the option's own parser and
//! reported at the file, line and column; options given on the command line win over the file.

use std::any::TypeId;
use std::ffi::OsString;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, Command, CommandFactory, FromArgMatches};
use toml::de::{DeTable, DeValue};

use crate::cli::Cli;
use crate::limits::read_to_string_limited;

/// Largest config file read: a complete one is about 2 KiB; 1 MiB refuses a capture or a
/// device named by mistake.
pub const CONFIG_FILE_LIMIT: u64 = 1 << 20;

/// Options that are not settings of a run and so have no key.
const NOT_KEYS: &[&str] = &["config", "help", "version"];

/// Parses `argv` (the program name first) as the command line, merged with `live --config`'s
/// file when one is given.
///
/// # Errors
/// A [`clap::Error`] for the command line itself (the caller lets clap print it and exit), or
/// the config file's problem, naming the file, line and column and what to write instead.
pub fn parse_from(argv: Vec<OsString>) -> Result<Cli> {
    let cmd = Cli::command();
    let matches = cmd.clone().try_get_matches_from(&argv)?;
    let Some(("live", live)) = matches.subcommand() else {
        return Ok(Cli::from_arg_matches(&matches)?);
    };
    let Some(path) = live.get_one::<PathBuf>("config").cloned() else {
        return Ok(Cli::from_arg_matches(&matches)?);
    };
    let live_cmd = cmd
        .find_subcommand("live")
        .ok_or_else(|| anyhow!("no live subcommand"))?;
    let settings = load(&path, live_cmd)?;
    let mut merged = argv;
    let mut interface_origin = None;
    for s in settings {
        // A flag given on the command line wins; a default is overridden.
        if live.value_source(&s.id) == Some(ValueSource::CommandLine) {
            continue;
        }
        if s.id == "interface" {
            interface_origin = Some(s.origin.clone());
        }
        merged.extend(s.args);
    }
    let matches = cmd.try_get_matches_from(merged).map_err(|e| {
        anyhow!(
            "{} together with the command line: {}",
            path.display(),
            first_line(&e.to_string())
        )
    })?;
    if let Some(("live", live)) = matches.subcommand()
        && !live.contains_id("interface")
    {
        bail!(
            "{}: no interface: add `interface = \"eth0\"` to the file or give -i IFACE",
            path.display()
        );
    }
    let mut cli = Cli::from_arg_matches(&matches)?;
    if let crate::cli::Command::Live(args) = &mut cli.command {
        args.interface_origin = interface_origin;
    }
    Ok(cli)
}

/// One key of the file, as command-line arguments.
#[derive(Debug)]
struct Setting {
    /// clap's id of the option.
    id: String,
    /// `--key=value` (several for an array), or `--key` for `true`.
    args: Vec<OsString>,
    /// `FILE:LINE:COL` of the value.
    origin: String,
}

/// The keys a config file may hold: the long names of `live`'s options.
#[must_use]
pub fn keys(live: &Command) -> Vec<&Arg> {
    live.get_arguments()
        .filter(|a| a.get_long().is_some_and(|l| !NOT_KEYS.contains(&l)))
        .collect()
}

/// Reads and checks the file at `path` against `live`'s options.
fn load(path: &Path, live: &Command) -> Result<Vec<Setting>> {
    let text = read_to_string_limited(path, CONFIG_FILE_LIMIT)?;
    let at = |span: Range<usize>| format!("{}:{}", path.display(), line_col(&text, span.start));
    let table = DeTable::parse(&text).map_err(|e| {
        let place = e.span().map_or_else(|| path.display().to_string(), &at);
        anyhow!("{place}: {}", first_line(e.message()))
    })?;
    let keys = keys(live);
    let mut out = Vec::new();
    for (key, value) in table.get_ref() {
        let name: &str = key.get_ref();
        let Some(arg) = keys.iter().find(|a| a.get_long() == Some(name)) else {
            let expected: Vec<&str> = keys.iter().filter_map(|a| a.get_long()).collect();
            bail!(
                "{}: unknown key {name:?} (expected one of: {})",
                at(key.span()),
                expected.join(", ")
            );
        };
        let origin = at(value.span());
        let args = to_args(arg, value.get_ref()).map_err(|e| anyhow!("{origin}: {name}: {e}"))?;
        out.push(Setting {
            id: arg.get_id().to_string(),
            args,
            origin,
        });
    }
    Ok(out)
}

/// The value of one key as command-line arguments, checked with the option's own parser.
fn to_args(arg: &Arg, value: &DeValue<'_>) -> Result<Vec<OsString>, String> {
    let long = arg.get_long().unwrap_or_default();
    match arg.get_action() {
        ArgAction::SetTrue => match value.as_bool() {
            Some(true) => Ok(vec![format!("--{long}").into()]),
            Some(false) => Ok(Vec::new()),
            None => Err(format!(
                "expected true or false, found {}",
                value.type_str()
            )),
        },
        ArgAction::Set => Ok(vec![one(arg, value)?]),
        ArgAction::Append => match value.as_array() {
            Some(items) => items.iter().map(|v| one(arg, v.get_ref())).collect(),
            None => Ok(vec![one(arg, value)?]),
        },
        _ => Err("this option cannot be set in a config file".to_string()),
    }
}

/// Integer types of option values: a TOML integer, never a string, is expected for them.
fn wants_integer(arg: &Arg) -> bool {
    let t = arg.get_value_parser().type_id();
    [
        TypeId::of::<u64>(),
        TypeId::of::<u32>(),
        TypeId::of::<u16>(),
        TypeId::of::<u8>(),
        TypeId::of::<i64>(),
        TypeId::of::<i32>(),
        TypeId::of::<usize>(),
    ]
    .into_iter()
    .any(|id| t == id)
}

/// One value as `--long=value`, after the option's parser accepted it.
fn one(arg: &Arg, value: &DeValue<'_>) -> Result<OsString, String> {
    let text = match (wants_integer(arg), value) {
        (true, DeValue::Integer(i)) => {
            i64::from_str_radix(i.as_str().replace('_', "").as_str(), i.radix())
                .map_err(|e| format!("{e}"))?
                .to_string()
        }
        (false, DeValue::String(s)) => s.to_string(),
        (true, v) => return Err(format!("expected an integer, found {}", v.type_str())),
        (false, v) => return Err(format!("expected a string, found {}", v.type_str())),
    };
    let long = arg.get_long().unwrap_or_default();
    // The option alone in a command of its own: its requirements on other options are checked
    // once the whole command line is put together.
    let mut probe = Arg::new("value")
        .long(long.to_string())
        .value_parser(arg.get_value_parser().clone())
        .action(ArgAction::Set);
    if let Some(names) = arg.get_value_names() {
        probe = probe.value_names(names.iter().cloned());
    }
    Command::new("config")
        .no_binary_name(true)
        .arg(probe)
        .try_get_matches_from([format!("--{long}={text}")])
        .map_err(|e| first_line(&e.to_string()))?;
    Ok(format!("--{long}={text}").into())
}

/// `LINE:COL` (both from 1) of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> String {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{line}:{col}")
}

/// clap's and toml's messages on one line, without the `error: ` prefix and the usage lines.
fn first_line(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join(" ")
}
