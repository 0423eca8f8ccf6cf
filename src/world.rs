//! The process's taskline world: which recorders the front door started,
//! which of them instrument a runtime, and which one the process-wide
//! `tracing` subscriber feeds. It exists to catch one mistake: a runtime
//! whose hooks record into recorder A while the global subscriber (or a
//! layer in it) records that runtime's wakes, names and blocking sections
//! into recorder B. Each recorder then holds half a story (A: polls without
//! wakes; B: wakes without polls) and nothing fails. The world notices it
//! at every set-up step and at every report, says so once on stderr and
//! flags both guards ([`crate::Taskline::mixing`]).
//!
//! What it can see: recorders started with [`crate::Taskline::builder`]
//! (their hooks however they were installed, since `Recorder::hooks_attached`
//! says so), and a global subscriber or layer made by one of their guards
//! (installed by the builder's `tracing(..)` or by hand). A subscriber set
//! with `tracing::subscriber::set_default` is per thread, not the process's,
//! and a recorder made with `Recorder::new` is outside the front door; the
//! world does not look at either.

use std::any::TypeId;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use taskline_core::Recorder;

/// A runtime's hooks record into one recorder while the process's `tracing`
/// subscriber feeds another: see [`crate::Taskline::mixing`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mixing {
    /// The recorder whose runtime hooks are attached ([`Recorder::id`]).
    pub hooks_recorder: u64,
    /// The recorder the global `tracing` subscriber or layer feeds.
    pub tracing_recorder: u64,
}

impl fmt::Display for Mixing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "taskline: two recorders are mixed: a runtime's hooks record into recorder {} \
             while the global tracing subscriber records into recorder {}, so neither sees \
             both polls and wakes. Use one Taskline: its build_runtime() for the runtime and \
             its tracing()/subscriber()/layer() for the subscriber",
            self.hooks_recorder, self.tracing_recorder
        )
    }
}

/// Finds the recorder a `tracing` dispatcher feeds, for one concrete
/// subscriber type made by the front door.
type Probe = fn(&tracing::Dispatch) -> Option<u64>;

struct Member {
    recorder: Recorder,
    /// The front door instrumented a runtime builder for it (also without
    /// `tokio_unstable`, where `Recorder::hooks_attached` stays false).
    instrumented: Arc<AtomicBool>,
}

#[derive(Default)]
struct World {
    members: Vec<Member>,
    /// The recorder the global subscriber installed by the front door feeds.
    global: Option<u64>,
    /// What a look at the global dispatcher found once it was set (it
    /// cannot change afterwards): `Some(None)` = not one of ours.
    seen_global: Option<Option<u64>>,
    probes: Vec<(TypeId, Probe)>,
    mixing: Option<Mixing>,
}

static WORLD: Mutex<World> = Mutex::new(World {
    members: Vec::new(),
    global: None,
    seen_global: None,
    probes: Vec::new(),
    mixing: None,
});

fn world() -> MutexGuard<'static, World> {
    WORLD.lock().unwrap_or_else(|e| e.into_inner())
}

/// Adds a recorder started by the front door; returns its "instrumented" flag.
pub(crate) fn join(recorder: &Recorder) -> Arc<AtomicBool> {
    let instrumented = Arc::new(AtomicBool::new(false));
    world().members.push(Member {
        recorder: recorder.clone(),
        instrumented: instrumented.clone(),
    });
    instrumented
}

/// The recorder of the most recently started guard that is still running.
pub(crate) fn current() -> Option<Recorder> {
    world().members.last().map(|m| m.recorder.clone())
}

/// Removes a recorder whose guard finished.
pub(crate) fn leave(recorder_id: u64) {
    world().members.retain(|m| m.recorder.id() != recorder_id);
}

/// The front door installed the global subscriber feeding `recorder_id`.
pub(crate) fn set_global(recorder_id: u64) {
    world().global = Some(recorder_id);
}

/// Lets the world recognise a subscriber of type `T` (made by a guard and
/// maybe installed by hand) in the global dispatcher.
pub(crate) fn add_probe<T: 'static>(probe: Probe) {
    let mut w = world();
    let id = TypeId::of::<T>();
    if !w.probes.iter().any(|(t, _)| *t == id) {
        w.probes.push((id, probe));
    }
}

/// The recorder the process's global subscriber feeds, if it is one the
/// front door made.
fn global_recorder(w: &mut World) -> Option<u64> {
    if let Some(id) = w.global {
        return Some(id);
    }
    if let Some(seen) = w.seen_global {
        return seen;
    }
    if !tracing::dispatcher::has_been_set() || w.probes.is_empty() {
        return None;
    }
    // A new thread has no scoped default: it sees the global dispatcher.
    let probes: Vec<Probe> = w.probes.iter().map(|(_, p)| *p).collect();
    let look = move || {
        tracing::dispatcher::get_default(|d| {
            if d.is::<tracing::subscriber::NoSubscriber>() {
                None
            } else {
                Some(probes.iter().find_map(|p| p(d)))
            }
        })
    };
    let found = std::thread::Builder::new()
        .name("taskline-world".into())
        .spawn(look)
        .ok()
        .and_then(|h| h.join().ok())
        .flatten();
    // Set once, the global dispatcher never changes: remember the answer.
    if let Some(seen) = found {
        w.seen_global = Some(seen);
        return seen;
    }
    None
}

/// Looks for a mixed pair; says so on stderr the first time one is found.
/// Returns the mixing that involves `recorder_id`, if any.
pub(crate) fn check(recorder_id: u64) -> Option<Mixing> {
    let mut w = world();
    if w.mixing.is_none()
        && let Some(tracing_recorder) = global_recorder(&mut w)
    {
        let hooked = w.members.iter().find(|m| {
            m.recorder.id() != tracing_recorder
                && (m.recorder.hooks_attached() || m.instrumented.load(Ordering::Relaxed))
        });
        if let Some(m) = hooked {
            let mixing = Mixing {
                hooks_recorder: m.recorder.id(),
                tracing_recorder,
            };
            eprintln!("{mixing}");
            w.mixing = Some(mixing);
        }
    }
    w.mixing
        .filter(|m| m.hooks_recorder == recorder_id || m.tracing_recorder == recorder_id)
}
