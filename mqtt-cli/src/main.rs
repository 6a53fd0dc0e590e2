//! `mqtt`: publish and subscribe from the shell, with the flags of `mosquitto_pub` and
//! `mosquitto_sub`.
//!
//! ```text
//! mqtt sub -h localhost -t 'sensors/#' -v
//! mqtt pub -h localhost -t sensors/kitchen -m 21.5 -q 1
//! ```
//!
//! Errors, exit codes, `-d` lines and signals follow mosquitto_pub and mosquitto_sub, so that
//! scripts written for those work with `mqtt`: a bad command line exits 1, a refused
//! connection exits with the CONNACK code, SIGINT and SIGTERM end `mqtt sub` with
//! DISCONNECT and exit 0.
// The doc comments on the argument structs are clap's `--help` text, printed as written:
// URL patterns like `[user[:password]@]` and `<pid>` there are not links or HTML.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod args;
mod connect;
mod format;
mod json;
mod packet_log;
mod props;
mod pub_cmd;
mod reason;
mod sub_cmd;
mod utc;

use std::process::ExitCode;

use args::{Cli, Command};

/// Why the command stopped early, each printed and numbered as mosquitto_pub and
/// mosquitto_sub print and number it.
#[derive(Debug)]
pub(crate) enum CliError {
    /// The flags do not make sense: the complaint, then where to find the usage; exit 1.
    Usage(String),
    /// `--help` or `--version`: the text goes to stdout, and the exit code is 1 as in
    /// mosquitto's clients.
    Info(String),
    /// The broker refused the connection: mosquitto's words for the CONNACK code, which is
    /// also the exit code.
    Refused {
        /// The CONNACK return code (3.1, 3.1.1) or reason code (5.0).
        code: u8,
        /// What the code means.
        message: String,
    },
    /// Connecting failed or the connection was lost.
    Connect(String),
    /// A message could not be published.
    Publish(String),
    /// Subscribing failed.
    Subscribe(String),
    /// Reading input failed.
    Io(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Usage(m)
            | Self::Info(m)
            | Self::Connect(m)
            | Self::Publish(m)
            | Self::Subscribe(m)
            | Self::Io(m) => f.write_str(m),
            Self::Refused { message, .. } => f.write_str(message),
        }
    }
}

impl CliError {
    /// Prints the error as mosquitto's clients do (`quiet` keeps all but usage errors off
    /// stderr) and returns the exit code. `command` is `mqtt pub`, `mqtt sub` or `mqtt`.
    fn report(&self, command: &str, quiet: bool) -> ExitCode {
        match self {
            Self::Usage(m) => eprintln!("Error: {m}\n\nUse '{command} --help' to see usage."),
            Self::Info(text) => print!("{text}"),
            _ if quiet => {}
            Self::Refused { message, .. } => eprintln!("Connection error: {message}"),
            other => eprintln!("Error: {other}"),
        }
        match self {
            Self::Refused { code, .. } => ExitCode::from(*code),
            _ => ExitCode::FAILURE,
        }
    }
}

fn main() -> ExitCode {
    // No panic message with a backtrace ever reaches the user: one line, exit code 1.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("Error: internal error: {info}");
        std::process::exit(1);
    }));
    let cli = match Cli::from_command_line() {
        Ok(cli) => cli,
        Err(e) => {
            let args: Vec<_> = std::env::args_os().collect();
            return e.report(args::command_name(&args), false);
        }
    };
    let command = match &cli.command {
        Command::Pub(_) => "mqtt pub",
        Command::Sub(_) => "mqtt sub",
    };
    let quiet = match &cli.command {
        Command::Pub(a) => a.conn.quiet,
        Command::Sub(a) => a.conn.quiet,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Pub(args) => pub_cmd::run(args).await.map(|()| ExitCode::SUCCESS),
            Command::Sub(args) => sub_cmd::run(args).await.map(|finish| match finish {
                sub_cmd::Finish::Done => ExitCode::SUCCESS,
                sub_cmd::Finish::TimedOut => {
                    if !quiet {
                        eprintln!("Timed out");
                    }
                    ExitCode::from(sub_cmd::TIMEOUT_EXIT)
                }
            }),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => e.report(command, quiet),
    }
}
