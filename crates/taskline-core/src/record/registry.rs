//! Append-only interning of strings, spawn sites and threads.
//!
//! Events refer to strings, sites and threads by small dense ids (from 0) so
//! they stay 32 bytes and pointer-free. Interning takes a lock, but happens
//! once per distinct value: the hooks and the layer keep per-thread caches so
//! the hot path does not come here. The number of interned strings and sites
//! is bounded ([`Registry::with_limit`]); past the bound, interning returns
//! [`Registry::OVERFLOW`], which names nothing.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::event::TaskKind;

/// A spawn site: where a task was spawned, and what kind of task it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Site {
    /// Source file of the spawn call.
    pub file: Arc<str>,
    /// Line of the spawn call (1-based, 0 = unknown).
    pub line: u32,
    /// Column of the spawn call (1-based, 0 = unknown).
    pub col: u32,
    /// What sort of task is spawned there.
    pub kind: TaskKind,
}

impl Site {
    /// Whether the site is inside Tokio itself (its file is in the `tokio`
    /// crate's `src/`), e.g. the `spawn_blocking` with which the runtime
    /// starts its worker threads: the runtime's own work, not the
    /// application's. The one rule reports and
    /// [`ThreadRoles`](crate::ThreadRoles) use.
    ///
    /// ```
    /// use taskline_core::{Site, TaskKind};
    /// let site = |file: &str| Site { file: file.into(), line: 1, col: 1, kind: TaskKind::Blocking };
    /// assert!(site("/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.48.0/src/runtime/scheduler/multi_thread/worker.rs").is_runtime_internal());
    /// assert!(site("C:\\cargo\\tokio-1.48.0\\src\\runtime\\blocking\\pool.rs").is_runtime_internal());
    /// assert!(!site("src/main.rs").is_runtime_internal());
    /// assert!(!site("/srv/tokio-app/src/main.rs").is_runtime_internal());
    /// ```
    pub fn is_runtime_internal(&self) -> bool {
        is_tokio_source(&self.file)
    }
}

/// Whether `file` is a source file of the `tokio` crate: a path component
/// `tokio` or `tokio-<version>` directly followed by `src`.
fn is_tokio_source(file: &str) -> bool {
    let mut parts = file.split(['/', '\\']).peekable();
    while let Some(p) = parts.next() {
        let tokio = p == "tokio"
            || p.strip_prefix("tokio-")
                .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()));
        if tokio && parts.peek() == Some(&"src") {
            return true;
        }
    }
    false
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// An OS thread that recorded events.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ThreadInfo {
    /// The recorder's number for the thread (the `thread` field of its events).
    pub id: u16,
    /// The OS thread name (`"<unnamed>"` when it had none).
    pub name: Arc<str>,
    /// The Tokio worker index, once an event from this thread revealed it.
    pub worker: Option<u32>,
    /// The OS thread id (Linux `gettid`), when known: what a trace names
    /// the thread by, so that CPU samples of the same thread land on its
    /// track. `None` off Linux and in registries rebuilt from traces that
    /// did not record it.
    pub tid: Option<u32>,
}

/// The calling thread's OS thread id (Linux `gettid`; `None` elsewhere).
/// One system call: call it once per thread, not on a hot path.
///
/// ```
/// # #[cfg(target_os = "linux")]
/// assert_eq!(taskline_core::os_thread_id(), Some(std::process::id())); // the main thread's tid is the pid
/// ```
pub fn os_thread_id() -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions and cannot fail.
        u32::try_from(unsafe { libc::gettid() }).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[derive(Default)]
struct Inner {
    strings: Vec<Arc<str>>,
    string_ids: HashMap<Arc<str>, u32>,
    sites: Vec<Site>,
    site_ids: HashMap<Site, u32>,
    threads: Vec<ThreadInfo>,
}

/// Interned strings, spawn sites and threads of one recording.
pub struct Registry {
    inner: RwLock<Inner>,
    limit: usize,
}

impl Default for Registry {
    fn default() -> Self {
        Self::with_limit(Self::OVERFLOW as usize)
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.read();
        f.debug_struct("Registry")
            .field("strings", &g.strings.len())
            .field("sites", &g.sites.len())
            .field("threads", &g.threads.len())
            .finish()
    }
}

impl Registry {
    /// The id returned when the registry is full; it names no string or site.
    pub const OVERFLOW: u32 = u32::MAX;

    /// An empty registry with effectively no bound on interned values.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty registry holding at most `max_entries` strings and at most
    /// `max_entries` sites.
    pub fn with_limit(max_entries: usize) -> Self {
        Registry {
            inner: RwLock::new(Inner::default()),
            limit: max_entries.min(Self::OVERFLOW as usize),
        }
    }

    /// Rebuilds a registry from exported parts (e.g. read back from a trace
    /// file). Ids are the positions in the vectors; `threads[i].id` is kept as given.
    pub fn from_parts(strings: Vec<Arc<str>>, sites: Vec<Site>, threads: Vec<ThreadInfo>) -> Self {
        let mut inner = Inner::default();
        for (i, s) in strings.iter().enumerate() {
            inner.string_ids.entry(s.clone()).or_insert(i as u32);
        }
        for (i, s) in sites.iter().enumerate() {
            inner.site_ids.entry(s.clone()).or_insert(i as u32);
        }
        inner.strings = strings;
        inner.sites = sites;
        inner.threads = threads;
        Registry {
            inner: RwLock::new(inner),
            limit: Self::OVERFLOW as usize,
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The id of `s`, interning it on first use ([`Registry::OVERFLOW`] when full).
    pub fn intern(&self, s: &str) -> u32 {
        if let Some(&id) = self.read().string_ids.get(s) {
            return id;
        }
        let mut g = self.write();
        if let Some(&id) = g.string_ids.get(s) {
            return id;
        }
        if g.strings.len() >= self.limit {
            return Self::OVERFLOW;
        }
        let id = g.strings.len() as u32;
        let a: Arc<str> = Arc::from(s);
        g.strings.push(a.clone());
        g.string_ids.insert(a, id);
        id
    }

    /// The string with id `id`.
    pub fn string(&self, id: u32) -> Option<Arc<str>> {
        self.read().strings.get(id as usize).cloned()
    }

    /// The id of a spawn site, interning it on first use ([`Registry::OVERFLOW`] when full).
    pub fn intern_site(&self, file: &str, line: u32, col: u32, kind: TaskKind) -> u32 {
        let site = Site {
            file: Arc::from(file),
            line,
            col,
            kind,
        };
        if let Some(&id) = self.read().site_ids.get(&site) {
            return id;
        }
        let mut g = self.write();
        if let Some(&id) = g.site_ids.get(&site) {
            return id;
        }
        if g.sites.len() >= self.limit {
            return Self::OVERFLOW;
        }
        let id = g.sites.len() as u32;
        g.sites.push(site.clone());
        g.site_ids.insert(site, id);
        id
    }

    /// The site with id `id`.
    pub fn site(&self, id: u32) -> Option<Site> {
        self.read().sites.get(id as usize).cloned()
    }

    /// The thread with recorder number `id`.
    pub fn thread(&self, id: u16) -> Option<ThreadInfo> {
        self.read().threads.get(id as usize).cloned()
    }

    /// Registers the calling thread under the next free number (None when
    /// all 65536 numbers are used), with its OS thread id.
    pub(crate) fn register_thread(&self, name: Option<&str>) -> Option<u16> {
        let mut g = self.write();
        let id = u16::try_from(g.threads.len()).ok()?;
        g.threads.push(ThreadInfo {
            id,
            name: Arc::from(name.unwrap_or("<unnamed>")),
            worker: None,
            tid: os_thread_id(),
        });
        Some(id)
    }

    /// Records that thread `id` is Tokio worker `worker`.
    pub fn set_worker(&self, id: u16, worker: u32) {
        let mut g = self.write();
        if let Some(t) = g.threads.get_mut(id as usize) {
            t.worker = Some(worker);
        }
    }

    /// All interned strings, indexed by id.
    pub fn strings(&self) -> Vec<Arc<str>> {
        self.read().strings.clone()
    }

    /// All interned sites, indexed by id.
    pub fn sites(&self) -> Vec<Site> {
        self.read().sites.clone()
    }

    /// All registered threads, indexed by their number.
    pub fn threads(&self) -> Vec<ThreadInfo> {
        self.read().threads.clone()
    }

    /// A rough upper bound of the bytes the interned values take.
    pub fn approx_bytes(&self) -> usize {
        let g = self.read();
        let s: usize = g.strings.iter().map(|s| s.len() + 64).sum();
        let t: usize = g.sites.iter().map(|s| s.file.len() + 96).sum();
        s + t + g.threads.len() * 64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intern_is_dense_and_idempotent() {
        let r = Registry::new();
        assert_eq!(r.intern("a"), 0);
        assert_eq!(r.intern("b"), 1);
        assert_eq!(r.intern("a"), 0);
        assert_eq!(r.string(1).as_deref(), Some("b"));
        assert_eq!(r.string(2), None);
        assert_eq!(r.intern_site("f.rs", 1, 2, TaskKind::Task), 0);
        assert_eq!(r.intern_site("f.rs", 1, 2, TaskKind::Blocking), 1);
        assert_eq!(r.intern_site("f.rs", 1, 2, TaskKind::Task), 0);
        assert_eq!(r.site(1).map(|s| s.kind), Some(TaskKind::Blocking));
        assert_eq!(r.register_thread(Some("w")), Some(0));
        r.set_worker(0, 3);
        assert_eq!(r.thread(0).and_then(|t| t.worker), Some(3));
        let back = Registry::from_parts(r.strings(), r.sites(), r.threads());
        assert_eq!(back.intern("b"), 1);
        assert_eq!(back.intern("c"), 2);
        assert_eq!(back.sites(), r.sites());
        assert_eq!(back.threads(), r.threads());
    }

    #[test]
    fn bounded() {
        let r = Registry::with_limit(2);
        assert_eq!(r.intern("a"), 0);
        assert_eq!(r.intern("b"), 1);
        assert_eq!(r.intern("c"), Registry::OVERFLOW);
        assert_eq!(r.string(Registry::OVERFLOW), None);
        assert_eq!(r.intern("a"), 0);
    }
}
