//! [`ProfileCollector`]: periodic CPU profiles into a bounded directory,
//! like Go's continuous-profiling collectors: every `interval`, sample for
//! `duration`, write `cpu-<UTC time>.pb.gz`, remove the oldest files past
//! `max_files`.
//!
//! One profiler runs the whole time with its timers disarmed between two
//! windows ([`ProfilerGuard::pause`]), so the runtime's threads register
//! once (through [`ProfileCollector::handle`]) and an idle window costs no
//! signal. The number of profiles written is a public atomic
//! ([`ProfileCollector::collected`]) that a metrics exporter reads (the
//! OpenTelemetry counter `taskline.profiles.collected`, `profile.type =
//! cpu`), and an optional callback sees each file as it is written.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::config::ProfilerConfig;
use crate::error::ProfileError;
use crate::profile::write_atomically;
use crate::profiler::{Profiler, ProfilerGuard, ProfilerHandle};
use crate::symbolize::SymbolCache;

/// The callback [`CollectorConfig::on_profile`] sets.
pub type OnProfile = Arc<dyn Fn(&CollectedProfile) + Send + Sync>;

/// One profile the collector wrote.
#[derive(Clone, Debug)]
pub struct CollectedProfile {
    /// The file.
    pub path: PathBuf,
    /// Samples in it.
    pub samples: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// When and where [`ProfileCollector`] writes profiles.
///
/// ```
/// use std::time::Duration;
/// use taskline_profile::CollectorConfig;
/// let c = CollectorConfig::new("profiles").interval(Duration::from_secs(60)).duration(Duration::from_secs(10));
/// assert!(c.validate().is_ok());
/// assert!(c.clone().duration(Duration::from_secs(61)).validate().is_err());
/// ```
#[derive(Clone)]
pub struct CollectorConfig {
    /// The directory profiles go to (created if missing).
    pub dir: PathBuf,
    /// Time from the start of one profile to the start of the next,
    /// default 60 s.
    pub interval: Duration,
    /// How long each profile samples (`0 < duration ≤ interval`), default 10 s.
    pub duration: Duration,
    /// Profiles kept in `dir` (the oldest `cpu-*.pb.gz` beyond it are
    /// removed), default 10.
    pub max_files: usize,
    /// The sampler's configuration (its
    /// [`trace_samples`](ProfilerConfig::trace_samples) is ignored: the
    /// collector keeps no timed samples).
    pub profiler: ProfilerConfig,
    /// Called after each profile is written (on the collector's thread).
    pub on_profile: Option<OnProfile>,
}

impl fmt::Debug for CollectorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CollectorConfig")
            .field("dir", &self.dir)
            .field("interval", &self.interval)
            .field("duration", &self.duration)
            .field("max_files", &self.max_files)
            .field("profiler", &self.profiler)
            .field("on_profile", &self.on_profile.is_some())
            .finish()
    }
}

impl CollectorConfig {
    /// Defaults, writing into `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CollectorConfig {
            dir: dir.into(),
            interval: Duration::from_secs(60),
            duration: Duration::from_secs(10),
            max_files: 10,
            profiler: ProfilerConfig::default(),
            on_profile: None,
        }
    }

    /// Sets [`interval`](Self::interval).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets [`duration`](Self::duration).
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    /// Sets [`max_files`](Self::max_files).
    pub fn max_files(mut self, max_files: usize) -> Self {
        self.max_files = max_files;
        self
    }

    /// Sets [`profiler`](Self::profiler).
    pub fn profiler(mut self, profiler: ProfilerConfig) -> Self {
        self.profiler = profiler;
        self
    }

    /// Sets [`on_profile`](Self::on_profile).
    pub fn on_profile(mut self, f: impl Fn(&CollectedProfile) + Send + Sync + 'static) -> Self {
        self.on_profile = Some(Arc::new(f));
        self
    }

    /// Checks the timing and the bound (the directory is checked by
    /// [`ProfileCollector::start`], which creates it), then the profiler's
    /// configuration.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let bad = |field: &'static str, reason: String| Err(ProfileError::Config { field, reason });
        if self.interval.is_zero() {
            return bad("interval", "must be longer than 0".into());
        }
        if self.duration.is_zero() {
            return bad("duration", "must be longer than 0".into());
        }
        if self.duration > self.interval {
            return bad(
                "duration",
                format!(
                    "{:?} is longer than the interval ({:?}): profiles would overlap",
                    self.duration, self.interval
                ),
            );
        }
        if self.max_files == 0 {
            return bad("max_files", "must keep at least 1 file".into());
        }
        self.profiler.validate()
    }
}

/// What the collector's thread and the owner share.
struct Control {
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Control {
    /// Sleeps until `deadline` or a stop; `true` when stopped.
    fn sleep_until(&self, deadline: Instant) -> bool {
        let mut stop = self.stop.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if *stop {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            stop = self
                .wake
                .wait_timeout(stop, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Periodic CPU profiles into a bounded directory; stops on drop.
///
/// ```no_run
/// use std::time::Duration;
/// use taskline_profile::{CollectorConfig, ProfileCollector, ProfileRuntimeExt};
/// let collector = ProfileCollector::start(
///     CollectorConfig::new("/var/tmp/profiles").interval(Duration::from_secs(300)),
/// )?;
/// let rt = tokio::runtime::Builder::new_multi_thread()
///     .profile_threads(&collector.handle())
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ProfileCollector {
    guard: Arc<ProfilerGuard>,
    control: Arc<Control>,
    collected: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for ProfileCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileCollector")
            .field("collected", &self.collected.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ProfileCollector {
    /// Validates `config`, creates the directory and checks it is
    /// writable, starts a paused profiler and the collector thread
    /// (`taskline-profile-collector`); the first profile starts at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskline_profile::{CollectorConfig, ProfileCollector, ProfileError};
    /// let err = ProfileCollector::start(CollectorConfig::new("p").interval(Duration::ZERO)).unwrap_err();
    /// assert!(matches!(err, ProfileError::Config { field: "interval", .. }));
    /// ```
    pub fn start(config: CollectorConfig) -> Result<ProfileCollector, ProfileError> {
        config.validate()?;
        check_writable(&config.dir)?;
        // The collector writes pprof files only: no log of timed samples
        // for a trace, which would fill up and stay full.
        let guard = Arc::new(Profiler::start(config.profiler.clone().trace_samples(0))?);
        guard.pause()?;
        let control = Arc::new(Control {
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let collected = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let thread = {
            let (guard, control) = (Arc::clone(&guard), Arc::clone(&control));
            let (collected, failures) = (Arc::clone(&collected), Arc::clone(&failures));
            std::thread::Builder::new()
                .name("taskline-profile-collector".into())
                .spawn(move || run(&config, &guard, &control, &collected, &failures))
                .map_err(|error| ProfileError::Os {
                    call: "spawn the profile collector thread",
                    error,
                })?
        };
        Ok(ProfileCollector {
            guard,
            control,
            collected,
            failures,
            thread: Some(thread),
        })
    }

    /// Registers threads with the collector's profiler (e.g.
    /// `builder.profile_threads(&collector.handle())`).
    pub fn handle(&self) -> ProfilerHandle {
        self.guard.handle()
    }

    /// Profiles written so far: the counter a metrics exporter publishes
    /// (`taskline.profiles.collected{profile.type=cpu}`). It stays valid
    /// (and stops growing) after the collector stops.
    pub fn collected(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.collected)
    }

    /// Profiles that could not be written (e.g. the disk is full).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Stops the collector (a profile in progress is discarded) and the
    /// profiler; returns the number of profiles written.
    pub fn stop(mut self) -> u64 {
        self.shutdown();
        self.collected.load(Ordering::Relaxed)
    }

    fn shutdown(&mut self) {
        *self
            .control
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.control.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ProfileCollector {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn check_writable(dir: &Path) -> Result<(), ProfileError> {
    let fail = |e: std::io::Error| {
        ProfileError::Io(std::io::Error::new(
            e.kind(),
            format!("profile directory {}: {e}", dir.display()),
        ))
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(format!(".taskline-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(fail)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn run(
    config: &CollectorConfig,
    guard: &ProfilerGuard,
    control: &Control,
    collected: &AtomicU64,
    failures: &AtomicU64,
) {
    let mut symbols = SymbolCache::default();
    let mut next = Instant::now();
    loop {
        if control.sleep_until(next) {
            return;
        }
        next += config.interval;
        let _ = guard.take_profile(); // drop anything from before the window
        if guard.resume().is_err() {
            failures.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let stopped = control.sleep_until(Instant::now() + config.duration);
        let _ = guard.pause();
        if stopped {
            return;
        }
        let profile = guard.take_profile();
        let path = config.dir.join(file_name(profile.start));
        let written = profile
            .to_pprof_with(&mut symbols)
            .and_then(|bytes| write_atomically(&path, &bytes));
        match written {
            Ok(()) => {
                collected.fetch_add(1, Ordering::Relaxed);
                prune(&config.dir, config.max_files);
                if let Some(f) = &config.on_profile {
                    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
                    let info = CollectedProfile {
                        path,
                        samples: profile.total(),
                        bytes,
                    };
                    // A panicking callback must not end the collection.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&info)));
                }
            }
            Err(_) => {
                failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        // A window that overran the interval (slow disk): start the next now.
        next = next.max(Instant::now());
    }
}

/// `cpu-YYYYMMDDTHHMMSS.mmmZ.pb.gz` for a profile started at `t`: names
/// sort by time.
pub(crate) fn file_name(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "cpu-{y:04}{m:02}{day:02}T{:02}{:02}{:02}.{:03}Z.pb.gz",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Year, month, day of `days` since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Removes the oldest `cpu-*.pb.gz` files of `dir` beyond `keep`.
pub(crate) fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("cpu-") && n.ends_with(".pb.gz"))
        .collect();
    if names.len() <= keep {
        return;
    }
    names.sort_unstable();
    for old in &names[..names.len() - keep] {
        let _ = std::fs::remove_file(dir.join(old));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_utc_and_sort_by_time() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        assert_eq!(file_name(t), "cpu-20240229T123456.789Z.pb.gz");
        assert_eq!(
            file_name(SystemTime::UNIX_EPOCH),
            "cpu-19700101T000000.000Z.pb.gz"
        );
        let later = t + Duration::from_secs(86_400 * 400);
        assert!(file_name(later) > file_name(t));
    }

    #[test]
    fn prune_keeps_the_newest_profiles_only() {
        let dir = std::env::temp_dir().join(format!("taskline-prune-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..5 {
            std::fs::write(dir.join(format!("cpu-2024010{i}T000000.000Z.pb.gz")), b"x").unwrap();
        }
        std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
        prune(&dir, 2);
        let mut left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "cpu-20240103T000000.000Z.pb.gz",
                "cpu-20240104T000000.000Z.pb.gz",
                "notes.txt"
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
