//! `taskline inspect`: what is in a trace file.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use taskline_core::EventKind;
use taskline_trace::Recording;

use crate::cli::InspectArgs;
use crate::error::CliError;
use crate::load::load;
use crate::output;

/// A summary of one trace file.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Trace format version (1 or 2).
    pub format_version: u32,
    /// The file has no end marker: it holds what was written up to its last whole packet.
    pub unfinished: bool,
    /// Second lifecycle reports (spawn, terminate) the writer did not write.
    pub duplicates_skipped: u64,
    /// Samples of the counter tracks (alive and runnable tasks, process RSS).
    pub counter_samples: u64,
    /// CPU samples of a profiler, on the threads' tracks.
    pub cpu_samples: u64,
    /// Distinct stacks of those samples.
    pub cpu_stacks: u64,
    /// File size.
    pub file_bytes: u64,
    /// Events in the file.
    pub events: u64,
    /// `file_bytes / events`.
    pub bytes_per_event: f64,
    /// First event's timestamp (ns since the recorder's epoch).
    pub first_ns: Option<u64>,
    /// Last event's timestamp.
    pub last_ns: Option<u64>,
    /// `last - first` in milliseconds.
    pub span_ms: f64,
    /// Events the recorder dropped before writing.
    pub dropped_events: u64,
    /// Events the writer could not encode.
    pub skipped_events: u64,
    /// Trace packets.
    pub packets: u64,
    /// Flow arrows (cross-task wakes).
    pub flows: u64,
    /// Interned strings.
    pub strings: usize,
    /// Spawn sites.
    pub sites: usize,
    /// Events per kind.
    pub by_kind: Vec<KindCount>,
    /// Threads with their event counts.
    pub threads: Vec<ThreadRow>,
}

/// Events of one kind.
#[derive(Debug, Serialize)]
pub struct KindCount {
    /// Kind name.
    pub kind: String,
    /// Events.
    pub count: u64,
}

/// One recorded thread.
#[derive(Debug, Serialize)]
pub struct ThreadRow {
    /// The recorder's thread number.
    pub id: u16,
    /// OS thread name (`?` when the registry does not know the thread).
    pub name: String,
    /// Tokio worker index, if a worker.
    pub worker: Option<u32>,
    /// Events written by the thread.
    pub events: u64,
    /// CPU samples on the thread's track.
    pub cpu_samples: u64,
}

/// Summarize a recording.
pub fn summarize(rec: &Recording, file_bytes: u64) -> Summary {
    let mut kinds: BTreeMap<u8, u64> = BTreeMap::new();
    let mut per_thread: BTreeMap<u16, u64> = BTreeMap::new();
    for e in &rec.events {
        *kinds.entry(e.kind).or_default() += 1;
        *per_thread.entry(e.thread).or_default() += 1;
    }
    let mut samples_per_thread: BTreeMap<u16, u64> = BTreeMap::new();
    for s in &rec.cpu_samples {
        if let Some(t) = rec.cpu_sample_thread(s) {
            *samples_per_thread.entry(t).or_default() += 1;
        }
    }
    let by_kind = kinds
        .into_iter()
        .map(|(k, count)| KindCount {
            kind: EventKind::from_u8(k)
                .map_or_else(|| format!("unknown({k})"), |k| format!("{k:?}")),
            count,
        })
        .collect();
    let mut threads: Vec<ThreadRow> = rec
        .registry
        .threads()
        .into_iter()
        .map(|t| ThreadRow {
            id: t.id,
            name: t.name.to_string(),
            worker: t.worker,
            events: per_thread.remove(&t.id).unwrap_or(0),
            cpu_samples: samples_per_thread.get(&t.id).copied().unwrap_or(0),
        })
        .collect();
    threads.extend(per_thread.into_iter().map(|(id, events)| ThreadRow {
        id,
        name: "?".into(),
        worker: None,
        events,
        cpu_samples: 0,
    }));
    threads.sort_by_key(|t| t.id);
    let first = rec.events.first().map(|e| e.ts_ns);
    let last = rec.events.last().map(|e| e.ts_ns);
    let events = rec.events.len() as u64;
    Summary {
        file_bytes,
        events,
        bytes_per_event: if events > 0 {
            file_bytes as f64 / events as f64
        } else {
            0.0
        },
        first_ns: first,
        last_ns: last,
        span_ms: match (first, last) {
            (Some(a), Some(b)) => b.saturating_sub(a) as f64 / 1e6,
            _ => 0.0,
        },
        format_version: rec.format_version,
        unfinished: rec.unfinished,
        duplicates_skipped: rec.duplicates_skipped,
        counter_samples: rec.counters.len() as u64,
        cpu_samples: rec.cpu_samples.len() as u64,
        cpu_stacks: rec.cpu_stacks.len() as u64,
        dropped_events: rec.dropped_events,
        skipped_events: rec.events_skipped,
        packets: rec.packets,
        flows: rec.flows,
        strings: rec.registry.strings().len(),
        sites: rec.registry.sites().len(),
        by_kind,
        threads,
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unfinished {
            writeln!(
                f,
                "UNFINISHED: no end marker (crash, kill or cut file); what follows is what was read"
            )?;
        }
        writeln!(
            f,
            "{} events in {} bytes ({:.1} bytes/event), {} packets, trace format {}",
            self.events, self.file_bytes, self.bytes_per_event, self.packets, self.format_version
        )?;
        if self.duplicates_skipped > 0 || self.counter_samples > 0 {
            writeln!(
                f,
                "{} duplicate spawn/terminate reports written once, {} counter samples",
                self.duplicates_skipped, self.counter_samples
            )?;
        }
        if self.cpu_samples > 0 {
            let on_tracks: u64 = self.threads.iter().map(|t| t.cpu_samples).sum();
            writeln!(
                f,
                "{} CPU samples ({} distinct stacks), {} on recorded threads' tracks",
                self.cpu_samples, self.cpu_stacks, on_tracks
            )?;
        }
        match (self.first_ns, self.last_ns) {
            (Some(a), Some(b)) => writeln!(
                f,
                "time span: {:.3} ms (from {a} ns to {b} ns since the recorder's epoch)",
                self.span_ms
            )?,
            _ => writeln!(f, "time span: no events")?,
        }
        writeln!(
            f,
            "lost: {} events dropped by the recorder, {} skipped by the writer",
            self.dropped_events, self.skipped_events
        )?;
        writeln!(
            f,
            "registry: {} strings, {} spawn sites, {} threads; {} flow arrows",
            self.strings,
            self.sites,
            self.threads.len(),
            self.flows
        )?;
        writeln!(f, "\nevents by kind")?;
        for k in &self.by_kind {
            writeln!(f, "  {:>12}  {}", k.count, k.kind)?;
        }
        writeln!(f, "\nthreads")?;
        for t in &self.threads {
            let worker = t.worker.map_or_else(|| "-".to_owned(), |w| w.to_string());
            let samples = if self.cpu_samples > 0 {
                format!("{:>8} CPU samples  ", t.cpu_samples)
            } else {
                String::new()
            };
            writeln!(
                f,
                "  {:>5}  worker {:>3}  {:>12} events  {samples}{}",
                t.id, worker, t.events, t.name
            )?;
        }
        Ok(())
    }
}

/// Print the summary of the trace.
pub fn run(args: &InspectArgs) -> Result<(), CliError> {
    let loaded = load(&args.trace)?;
    let summary = summarize(&loaded.recording, loaded.bytes);
    let text = if args.json {
        output::json(&summary)?
    } else {
        summary.to_string()
    };
    output::print(&text)
}
