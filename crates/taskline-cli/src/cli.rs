//! Command-line syntax (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// See what a Tokio runtime did, from a taskline trace file.
#[derive(Debug, Parser)]
#[command(name = "taskline", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Go-style analyses: per-site table, scheduling latency, blocking
    /// profile, worker utilization and MMU, slow polls.
    Report(ReportArgs),
    /// Summary of a trace file: events by kind, threads, time span, size, losses.
    Inspect(InspectArgs),
    /// Convert a trace to another format.
    Convert(ConvertArgs),
}

/// `taskline report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The trace file (written by taskline's Perfetto writer or flight recorder).
    pub trace: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Rows per table (and length of the worst lists).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub top: u16,
    /// Polls longer than this many milliseconds are slow.
    #[arg(long, default_value_t = 10.0, allow_negative_numbers = true)]
    pub slow_poll_ms: f64,
}

/// `taskline inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The trace file.
    pub trace: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Output formats of `taskline convert`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Chrome's JSON trace event format (chrome://tracing, Perfetto UI, speedscope).
    ChromeJson,
}

/// `taskline convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The trace file.
    pub trace: PathBuf,
    /// Output format.
    #[arg(long)]
    pub to: Format,
    /// Output file (written atomically).
    pub out: PathBuf,
}
