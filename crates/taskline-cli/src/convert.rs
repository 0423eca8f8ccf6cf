//! `taskline convert --to chrome-json`: Chrome's JSON trace event format.
//!
//! One process; a thread per recorded thread (named from the registry);
//! polls as `B`/`E` slices named by the task's spawn site, blocking sections
//! and parks as slices, spawn / wake / terminate / resource waits as thread
//! instants, counters as `C` events. Timestamps in microseconds (with
//! nanosecond decimals) since the recorder's epoch.

use std::collections::HashMap;
use std::io::{self, Write};

use serde_json::{Value, json};
use taskline_core::Registry;
use taskline_core::{Event, EventKind};
use taskline_trace::CounterSample;

use crate::cli::{ConvertArgs, Format};
use crate::error::CliError;
use crate::load::load;

/// Task → site names kept at most (live tasks); later tasks are named by id.
const MAX_TASK_NAMES: usize = 1 << 16;

/// Convert the trace.
pub fn run(args: &ConvertArgs) -> Result<(), CliError> {
    let loaded = load(&args.trace)?;
    let rec = &loaded.recording;
    match args.to {
        Format::ChromeJson => taskline_trace::write_atomically(&args.out, |out| {
            chrome_json(&rec.events, &rec.counters, &rec.registry, out)
        })
        .map_err(|e| CliError::new(format!("cannot write {}: {e}", args.out.display()))),
    }
}

fn us(ts_ns: u64) -> f64 {
    ts_ns as f64 / 1e3
}

fn site_label(registry: &Registry, site: u32) -> String {
    registry
        .site(site)
        .map_or_else(|| "poll".to_owned(), |s| s.to_string())
}

fn write_event(out: &mut impl Write, first: &mut bool, v: &Value) -> io::Result<()> {
    if !std::mem::take(first) {
        out.write_all(b",\n")?;
    }
    serde_json::to_writer(&mut *out, v).map_err(io::Error::other)
}

/// Encode `events` and the trace's counter samples (alive tasks, runnable
/// tasks, process RSS) as a Chrome JSON trace into `out`.
pub fn chrome_json(
    events: &[Event],
    counters: &[CounterSample],
    registry: &Registry,
    out: &mut impl Write,
) -> io::Result<()> {
    out.write_all(b"{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n")?;
    let mut first = true;
    for t in registry.threads() {
        let name = match t.worker {
            Some(w) => format!("{} (worker {w})", t.name),
            None => t.name.to_string(),
        };
        let v = json!({"name":"thread_name","ph":"M","pid":1,"tid":t.id,"args":{"name":name}});
        write_event(out, &mut first, &v)?;
    }
    let mut task_sites: HashMap<u64, u32> = HashMap::new();
    for e in events {
        let Some(kind) = e.kind() else { continue };
        let ts = us(e.ts_ns);
        let tid = e.thread;
        let v = match kind {
            EventKind::Spawn => {
                if task_sites.len() < MAX_TASK_NAMES {
                    task_sites.insert(e.task, e.aux);
                }
                json!({"name":"spawn","ph":"i","s":"t","ts":ts,"pid":1,"tid":tid,
                       "args":{"task":e.task,"site":site_label(registry, e.aux)}})
            }
            EventKind::PollStart => {
                let name = task_sites
                    .get(&e.task)
                    .map_or_else(|| format!("task {}", e.task), |s| site_label(registry, *s));
                json!({"name":name,"cat":"poll","ph":"B","ts":ts,"pid":1,"tid":tid,
                       "args":{"task":e.task}})
            }
            EventKind::PollEnd => json!({"ph":"E","ts":ts,"pid":1,"tid":tid}),
            EventKind::Wake => json!({"name":"wake","ph":"i","s":"t","ts":ts,"pid":1,"tid":tid,
                                      "args":{"task":e.task,"waker":e.arg}}),
            EventKind::ResourceWait => {
                let res = registry
                    .string(e.aux)
                    .map_or_else(|| "?".to_owned(), |s| s.to_string());
                json!({"name":"wait","ph":"i","s":"t","ts":ts,"pid":1,"tid":tid,
                       "args":{"task":e.task,"resource":res}})
            }
            EventKind::BlockingStart => {
                json!({"name":"blocking","cat":"blocking","ph":"B","ts":ts,"pid":1,"tid":tid,
                       "args":{"task":e.task}})
            }
            EventKind::BlockingEnd | EventKind::Unpark => {
                json!({"ph":"E","ts":ts,"pid":1,"tid":tid})
            }
            EventKind::Park => {
                json!({"name":"idle","cat":"park","ph":"B","ts":ts,"pid":1,"tid":tid})
            }
            EventKind::Terminate => {
                task_sites.remove(&e.task);
                json!({"name":"terminate","ph":"i","s":"t","ts":ts,"pid":1,"tid":tid,
                       "args":{"task":e.task}})
            }
            EventKind::TaskName => {
                let name = registry.string(e.aux).map(|s| s.to_string());
                json!({"name":"task name","ph":"i","s":"t","ts":ts,"pid":1,"tid":tid,
                       "args":{"task":e.task,"name":name}})
            }
            EventKind::SpanEnter => {
                let name = registry
                    .string(e.aux)
                    .map_or_else(|| "span".to_owned(), |s| s.to_string());
                json!({"name":name,"cat":"span","ph":"B","ts":ts,"pid":1,"tid":tid})
            }
            EventKind::SpanExit => json!({"ph":"E","ts":ts,"pid":1,"tid":tid}),
        };
        write_event(out, &mut first, &v)?;
    }
    for c in counters {
        let v = json!({"name":c.track,"ph":"C","ts":us(c.ts_ns),"pid":1,"args":{"value":c.value}});
        write_event(out, &mut first, &v)?;
    }
    out.write_all(b"\n]}\n")
}
