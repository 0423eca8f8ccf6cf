//! `taskline report`.

use std::time::Duration;

use taskline_core::RecorderConfig;
use taskline_trace::analysis::{AnalysisConfig, Analyzer};

use crate::cli::ReportArgs;
use crate::error::CliError;
use crate::load::load;
use crate::output;

/// Run the analyses on the trace and print them.
pub fn run(args: &ReportArgs) -> Result<(), CliError> {
    let threshold = slow_poll_threshold(args.slow_poll_ms)?;
    let loaded = load(&args.trace)?;
    // A trace does not record the recorder's slow-poll threshold: the flag
    // stands for it, in the same configuration the recorder would use.
    let config = AnalysisConfig {
        recorder: RecorderConfig {
            slow_poll_threshold: threshold,
            ..RecorderConfig::default()
        },
        top_n: usize::from(args.top),
        ..AnalysisConfig::default()
    };
    let rec = &loaded.recording;
    let report = Analyzer::analyze(&rec.events, &rec.registry, config)
        .map_err(|e| CliError::new(e.to_string()))?;
    let text = if args.json {
        output::json(&report)?
    } else {
        let mut t = report.to_string();
        if rec.dropped_events > 0 {
            t.push_str(&format!(
                "\nwarning: the recorder dropped {} events; the figures above miss them\n",
                rec.dropped_events
            ));
        }
        t
    };
    output::print(&text)
}

/// `--slow-poll-ms` as a duration: finite, positive, at most a day.
fn slow_poll_threshold(ms: f64) -> Result<Duration, CliError> {
    if !ms.is_finite() || ms <= 0.0 || ms > 86_400_000.0 {
        return Err(CliError::new(format!(
            "--slow-poll-ms must be a positive number of milliseconds up to one day, not {ms}"
        )));
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}
