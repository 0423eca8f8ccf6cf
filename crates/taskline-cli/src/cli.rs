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
    /// Flame graph (SVG) of a pprof CPU profile (taskline's `cpu*.pb.gz`
    /// or any pprof writer's).
    Flamegraph(FlamegraphArgs),
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

/// `taskline flamegraph`.
#[derive(Debug, Args)]
pub struct FlamegraphArgs {
    /// The pprof profile (`.pb.gz` or uncompressed).
    pub profile: PathBuf,
    /// Output file (written atomically); default: the profile's name with `.svg`.
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Only samples whose label KEY contains VALUE, like `go tool pprof
    /// -tagfocus`: `--tagfocus spawn_site=src/main.rs:42`.
    #[arg(long, value_name = "KEY=VALUE")]
    pub tagfocus: Option<String>,
    /// Split the graph by this label first (a root frame per value), e.g.
    /// `spawn_site`, `task`, `worker`, `thread`.
    #[arg(long, value_name = "LABEL")]
    pub group_by: Option<String>,
    /// The sample value drawn (`cpu` or `samples`); default: the last type.
    #[arg(long)]
    pub value: Option<String>,
    /// Image width in pixels.
    #[arg(long, default_value_t = 1200, value_parser = clap::value_parser!(u32).range(200..=100_000))]
    pub width: u32,
    /// Write folded stacks (`root;...;leaf value`, for inferno or
    /// flamegraph.pl) instead of an SVG.
    #[arg(long)]
    pub folded: bool,
}
