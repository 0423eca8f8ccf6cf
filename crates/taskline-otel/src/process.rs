//! Process metrics: the OpenTelemetry process semantic conventions
//! (`process.cpu.time`, `process.memory.usage`, `process.memory.virtual`,
//! `process.thread.count`, `process.open_file_descriptor.count`) for the
//! process itself, read from Linux's `/proc` when (and only when) the SDK
//! collects.
//!
//! Why: a runtime's metrics say how busy its workers were, not what the
//! process cost. CPU time split by mode, resident memory and thread and
//! descriptor counts are what Go's runtime metrics and every OTel SDK's
//! "process" instrumentation report next to them; with them on one
//! dashboard a busy runtime can be told from a busy process (blocking
//! threads, a growing heap, a descriptor leak).
//!
//! Sources (Linux): `/proc/self/stat` (user and system CPU time, thread
//! count, virtual size, resident pages) and the entries of `/proc/self/fd`.
//! One collection reads `/proc/self/stat` four times and lists
//! `/proc/self/fd` once, on the collecting thread (the SDK's reader thread
//! or whoever calls `force_flush`), never on the application's workers.
//! Memory is bounded: nothing is kept between collections.
//!
//! On other systems [`ProcessSample::read`] answers
//! [`std::io::ErrorKind::Unsupported`] and [`ProcessMetricsExporter::register`]
//! registers no instrument ([`ProcessMetricsExporter::SUPPORTED`] is `false`).

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::Meter;

/// Attribute of `process.cpu.time`: `user` or `system` (OTel semantic
/// conventions, `cpu.mode`).
pub const CPU_MODE: &str = "cpu.mode";

/// One reading of the process's own counters (Linux `/proc/self/stat`).
///
/// ```
/// # if !taskline_otel::ProcessMetricsExporter::SUPPORTED { return; }
/// let s = taskline_otel::ProcessSample::read().unwrap();
/// assert!(s.threads >= 1 && s.memory_rss > 0);
/// assert!(s.memory_virtual >= s.memory_rss);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessSample {
    /// CPU time spent in user mode by every thread of the process, live or
    /// exited (`utime`, at the kernel's clock-tick resolution, usually
    /// 10 ms). Exported as `process.cpu.time{cpu.mode="user"}`.
    ///
    /// ```
    /// # if !taskline_otel::ProcessMetricsExporter::SUPPORTED { return; }
    /// use taskline_otel::ProcessSample;
    /// let before = ProcessSample::read().unwrap().cpu_user;
    /// let start = std::time::Instant::now();
    /// let mut x = 0u64;
    /// while start.elapsed() < std::time::Duration::from_millis(60) {
    ///     x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
    /// }
    /// let after = ProcessSample::read().unwrap().cpu_user;
    /// assert!(after > before, "{before:?} -> {after:?}");
    /// ```
    pub cpu_user: Duration,
    /// CPU time spent in the kernel on the process's behalf (`stime`).
    /// Exported as `process.cpu.time{cpu.mode="system"}`.
    pub cpu_system: Duration,
    /// Resident set size in bytes: physical memory the process occupies
    /// now (`rss` pages × page size). Exported as `process.memory.usage`.
    ///
    /// ```
    /// # if !taskline_otel::ProcessMetricsExporter::SUPPORTED { return; }
    /// use taskline_otel::ProcessSample;
    /// let before = ProcessSample::read().unwrap().memory_rss;
    /// let block = std::hint::black_box(vec![1u8; 64 << 20]); // written: resident
    /// let after = ProcessSample::read().unwrap().memory_rss;
    /// assert!(after >= before + (32 << 20), "{before} -> {after}");
    /// drop(block);
    /// ```
    pub memory_rss: u64,
    /// Virtual memory size in bytes (`vsize`): every mapping, resident or
    /// not. Exported as `process.memory.virtual`.
    pub memory_virtual: u64,
    /// Threads of the process (`num_threads`): Tokio workers, blocking-pool
    /// threads, the SDK's reader, the main thread. Exported as
    /// `process.thread.count`.
    ///
    /// ```
    /// # if !taskline_otel::ProcessMetricsExporter::SUPPORTED { return; }
    /// use taskline_otel::ProcessSample;
    /// let before = ProcessSample::read().unwrap().threads;
    /// let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(3).build().unwrap();
    /// let during = ProcessSample::read().unwrap().threads;
    /// assert!(during >= before + 3, "{before} -> {during}");
    /// drop(rt);
    /// ```
    pub threads: u64,
}

impl ProcessSample {
    /// Reads `/proc/self/stat` once. Fails with
    /// [`io::ErrorKind::Unsupported`] on systems other than Linux, and with
    /// [`io::ErrorKind::InvalidData`] if the file is not in the documented
    /// format.
    pub fn read() -> io::Result<ProcessSample> {
        imp::read_stat()
    }
}

/// Open file descriptors of the process: the entries of `/proc/self/fd`,
/// not counting the one this count opens to list them. Exported as
/// `process.open_file_descriptor.count`. Fails with
/// [`io::ErrorKind::Unsupported`] on systems other than Linux.
///
/// ```
/// # if !taskline_otel::ProcessMetricsExporter::SUPPORTED { return; }
/// use taskline_otel::open_file_descriptors;
/// let before = open_file_descriptors().unwrap();
/// let files: Vec<_> = (0..5).map(|_| std::fs::File::open("/proc/self/stat").unwrap()).collect();
/// assert_eq!(open_file_descriptors().unwrap(), before + 5);
/// drop(files);
/// assert_eq!(open_file_descriptors().unwrap(), before);
/// ```
pub fn open_file_descriptors() -> io::Result<u64> {
    imp::open_fds()
}

/// Exports [`ProcessSample`] and [`open_file_descriptors`] as OpenTelemetry
/// observable instruments (see the crate docs' table):
///
/// | name | kind | unit | attributes |
/// |---|---|---|---|
/// | `process.cpu.time` | counter | `s` | `cpu.mode` = `user` / `system` |
/// | `process.memory.usage` | up-down counter | `By` | |
/// | `process.memory.virtual` | up-down counter | `By` | |
/// | `process.thread.count` | up-down counter | `{thread}` | |
/// | `process.open_file_descriptor.count` | up-down counter | `{file_descriptor}` | |
///
/// Kinds and units are those of the OTel process semantic conventions
/// (the process is the resource, so no `process.pid` attribute). Register
/// once per meter provider: the process is one, however many runtimes it
/// runs. A failed read (e.g. `/proc` not mounted) skips that instrument's
/// data point for that collection; a panic in a callback never reaches the
/// collecting thread.
///
/// ```
/// let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().build();
/// let meter = opentelemetry::metrics::MeterProvider::meter(&provider, "taskline");
/// let process = taskline_otel::ProcessMetricsExporter::register(&meter);
/// assert_eq!(process.is_registered(), cfg!(target_os = "linux"));
/// process.unregister();
/// ```
#[derive(Clone, Debug)]
pub struct ProcessMetricsExporter {
    /// `false` after [`unregister`](Self::unregister) (or when unsupported).
    live: Arc<AtomicBool>,
}

impl ProcessMetricsExporter {
    /// Whether this build can read process metrics (Linux only).
    pub const SUPPORTED: bool = cfg!(target_os = "linux");

    /// Registers the process instruments on `meter`; on systems other than
    /// Linux registers nothing.
    pub fn register(meter: &Meter) -> ProcessMetricsExporter {
        let live = Arc::new(AtomicBool::new(Self::SUPPORTED));
        if Self::SUPPORTED {
            register_instruments(meter, &live);
        }
        ProcessMetricsExporter { live }
    }

    /// [`register`](Self::register) on the global meter provider's meter
    /// `taskline` (see [`opentelemetry::global::meter_provider`]).
    pub fn register_global() -> ProcessMetricsExporter {
        Self::register(&opentelemetry::global::meter(crate::METER_NAME))
    }

    /// Whether the instruments report (registered on a supported system and
    /// not [`unregister`](Self::unregister)ed).
    pub fn is_registered(&self) -> bool {
        self.live.load(Ordering::Relaxed)
    }

    /// Stops reporting: the callbacks observe nothing from now on. Idempotent.
    pub fn unregister(&self) {
        self.live.store(false, Ordering::Relaxed);
    }
}

/// Runs `f` if still registered, swallowing a panic (a `/proc` format we
/// misread must not reach the collecting thread, which may be the app's).
fn guarded(live: &AtomicBool, f: impl FnOnce()) {
    if live.load(Ordering::Relaxed) {
        let _ = catch_unwind(AssertUnwindSafe(f));
    }
}

fn register_instruments(meter: &Meter, live: &Arc<AtomicBool>) {
    let l = live.clone();
    let modes = [
        [KeyValue::new(CPU_MODE, "user")],
        [KeyValue::new(CPU_MODE, "system")],
    ];
    meter
        .f64_observable_counter("process.cpu.time")
        .with_unit("s")
        .with_description("Total CPU seconds of the process, by CPU mode (user, system).")
        .with_callback(move |o| {
            guarded(&l, || {
                if let Ok(s) = ProcessSample::read() {
                    o.observe(s.cpu_user.as_secs_f64(), &modes[0]);
                    o.observe(s.cpu_system.as_secs_f64(), &modes[1]);
                }
            })
        })
        .build();
    sample_gauge(
        meter,
        live,
        "process.memory.usage",
        "By",
        "Physical memory of the process (resident set size).",
        |s| s.memory_rss,
    );
    sample_gauge(
        meter,
        live,
        "process.memory.virtual",
        "By",
        "Virtual memory committed to the process (every mapping).",
        |s| s.memory_virtual,
    );
    sample_gauge(
        meter,
        live,
        "process.thread.count",
        "{thread}",
        "Threads of the process.",
        |s| s.threads,
    );
    let l = live.clone();
    meter
        .i64_observable_up_down_counter("process.open_file_descriptor.count")
        .with_unit("{file_descriptor}")
        .with_description("File descriptors the process has open.")
        .with_callback(move |o| {
            guarded(&l, || {
                if let Ok(n) = open_file_descriptors() {
                    o.observe(clamp_i64(n), &[]);
                }
            })
        })
        .build();
}

/// An observable up-down counter (the semantic conventions' kind for these
/// current values) fed by one field of a fresh [`ProcessSample`].
fn sample_gauge(
    meter: &Meter,
    live: &Arc<AtomicBool>,
    name: &'static str,
    unit: &'static str,
    desc: &'static str,
    f: fn(&ProcessSample) -> u64,
) {
    let l = live.clone();
    meter
        .i64_observable_up_down_counter(name)
        .with_unit(unit)
        .with_description(desc)
        .with_callback(move |o| {
            guarded(&l, || {
                if let Ok(s) = ProcessSample::read() {
                    o.observe(clamp_i64(f(&s)), &[]);
                }
            })
        })
        .build();
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::time::Duration;

    use super::ProcessSample;

    pub(super) fn read_stat() -> io::Result<ProcessSample> {
        let stat = std::fs::read_to_string("/proc/self/stat")?;
        parse_stat(&stat, clock_ticks_per_second(), page_size())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc/self/stat"))
    }

    pub(super) fn open_fds() -> io::Result<u64> {
        let mut n = 0u64;
        for entry in std::fs::read_dir("/proc/self/fd")? {
            entry?;
            n += 1;
        }
        // The listing includes the descriptor read_dir opened for it.
        Ok(n.saturating_sub(1))
    }

    fn clock_ticks_per_second() -> u64 {
        // SAFETY: sysconf has no preconditions; it returns -1 on error.
        let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        u64::try_from(t).ok().filter(|&t| t > 0).unwrap_or(100)
    }

    fn page_size() -> u64 {
        // SAFETY: as above.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        u64::try_from(p).ok().filter(|&p| p > 0).unwrap_or(4096)
    }

    /// Parses `/proc/self/stat` (proc(5)): the command name, field 2, is in
    /// parentheses and may itself contain spaces and parentheses, so the
    /// fields are counted from the last `)`.
    pub(super) fn parse_stat(stat: &str, ticks: u64, page: u64) -> Option<ProcessSample> {
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
        // rest starts at field 3 (state): field n is fields[n - 3].
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        let ticks_to = |t: u64| {
            Duration::from_secs(t / ticks)
                + Duration::from_nanos((t % ticks) * 1_000_000_000 / ticks)
        };
        Some(ProcessSample {
            cpu_user: ticks_to(field(14)?),
            cpu_system: ticks_to(field(15)?),
            threads: field(20)?,
            memory_virtual: field(23)?,
            memory_rss: field(24)?.saturating_mul(page),
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_a_stat_line_with_a_hostile_command_name() {
            // proc(5) field order; comm holds ") (" and spaces.
            let line = "4242 (we ird) (x) S 1 4242 4242 0 -1 4194304 120 0 0 0 \
                        250 37 0 0 20 0 7 0 12345 104857600 2560 18446744073709551615 \
                        1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";
            let s = parse_stat(line, 100, 4096).unwrap();
            assert_eq!(s.cpu_user, Duration::from_millis(2500));
            assert_eq!(s.cpu_system, Duration::from_millis(370));
            assert_eq!(s.threads, 7);
            assert_eq!(s.memory_virtual, 104_857_600);
            assert_eq!(s.memory_rss, 2560 * 4096);
        }

        #[test]
        fn odd_tick_rates_keep_sub_second_precision() {
            let line = "1 (a) S 1 1 1 0 -1 0 0 0 0 0 1537 1 0 0 20 0 1 0 1 10 1";
            let s = parse_stat(line, 1024, 4096).unwrap();
            assert_eq!(s.cpu_user, Duration::from_nanos(1_500_976_562));
        }

        #[test]
        fn truncated_or_garbled_lines_are_refused() {
            assert!(parse_stat("1 (a) S 1 1", 100, 4096).is_none());
            assert!(parse_stat("no parenthesis at all", 100, 4096).is_none());
            let garbled = "1 (a) S 1 1 1 0 -1 0 0 0 0 0 x 1 0 0 20 0 1 0 1 10 1";
            assert!(parse_stat(garbled, 100, 4096).is_none());
        }

        #[test]
        fn the_live_process_reads_sanely() {
            let s = read_stat().unwrap();
            assert!(s.threads >= 1, "{s:?}");
            assert!(
                s.memory_rss > 0 && s.memory_virtual >= s.memory_rss,
                "{s:?}"
            );
            // stdin/stdout/stderr at least, unless the harness closed them.
            assert!(open_fds().unwrap() >= 1);
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;

    use super::ProcessSample;

    fn unsupported() -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "process metrics are read from Linux's /proc; this system has none",
        )
    }

    pub(super) fn read_stat() -> io::Result<ProcessSample> {
        Err(unsupported())
    }

    pub(super) fn open_fds() -> io::Result<u64> {
        Err(unsupported())
    }
}
