//! The sources' per-thread interning cache: spawn site and string -> id.
//!
//! Interning goes through the [`Registry`], which takes a lock (and, for a
//! new key, allocates). Every spawn names its site and many `tracing`
//! events name a resource type, so both sources look ids up here first: a
//! direct-mapped table per thread, fixed size, that makes a repeated lookup
//! a multiply (or a short hash), an index and a compare. A collision only
//! costs a second trip to the registry. Entries are owned by a recorder (its
//! [`Recorder::id`](crate::Recorder::id)), since ids are only meaningful in
//! that recorder's registry.
//!
//! Two kinds of key share the table:
//! - a `&'static Location` (the runtime hooks' spawn location), compared by
//!   address;
//! - a string with a line, a column and a tag (the `tracing` sources' spawn
//!   location fields, or a plain string), compared by hash and content.

use std::cell::RefCell;
use std::panic::Location;
use std::sync::Arc;

use crate::event::TaskKind;
use crate::record::registry::Registry;

/// Slots per thread (a power of two): 256 × 40 bytes.
const SLOTS: usize = 256;
/// `tag` of a plain string entry (site entries use their `TaskKind`).
const STRING_TAG: u8 = 0xff;
/// `tag` of a `&'static Location` entry.
const LOCATION_TAG: u8 = 0xfe;

struct Slot {
    owner: u64,
    /// The location's address, or the string key's hash.
    key: u64,
    line: u32,
    col: u32,
    tag: u8,
    id: u32,
    /// The string of a string entry; `None` for a location entry.
    text: Option<Arc<str>>,
}

const EMPTY: Slot = Slot {
    owner: 0,
    key: 0,
    line: 0,
    col: 0,
    tag: 0,
    id: 0,
    text: None,
};

thread_local! {
    static CACHE: RefCell<[Slot; SLOTS]> = const { RefCell::new([EMPTY; SLOTS]) };
}

/// Fibonacci hashing: the top bits of a multiply spread neighbouring keys
/// (`Location`s are 24 bytes apart) over the whole table.
#[inline]
fn slot_of(key: u64) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (u64::BITS - SLOTS.trailing_zeros())) as usize
}

/// FxHash-style hash of a string plus the extra key parts.
fn string_hash(owner: u64, s: &str, line: u32, col: u32, tag: u8) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = owner.wrapping_mul(K);
    let mut mix = |v: u64| h = (h.rotate_left(5) ^ v).wrapping_mul(K);
    let bytes = s.as_bytes();
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        mix(u64::from_le_bytes(a));
    }
    for &b in chunks.remainder() {
        mix(u64::from(b));
    }
    mix((u64::from(line) << 32) | u64::from(col));
    mix(u64::from(tag) | ((bytes.len() as u64) << 8));
    h
}

/// Looks `(owner, key, line, col, tag, text)` up, or computes the id with
/// `miss` and remembers it (unless it is [`Registry::OVERFLOW`]). Falls back
/// to `miss` during thread teardown or a re-entrant call.
#[inline]
fn cached(
    owner: u64,
    key: u64,
    line: u32,
    col: u32,
    tag: u8,
    text: Option<&str>,
    miss: impl FnOnce() -> u32,
) -> u32 {
    let idx = slot_of(key);
    let hit = CACHE.try_with(|c| {
        let c = c.try_borrow().ok()?;
        let slot = &c[idx];
        (slot.owner == owner
            && slot.key == key
            && slot.tag == tag
            && slot.line == line
            && slot.col == col
            && slot.text.as_deref() == text)
            .then_some(slot.id)
    });
    if let Ok(Some(id)) = hit {
        return id;
    }
    let id = miss();
    if id != Registry::OVERFLOW {
        let _ = CACHE.try_with(|c| {
            if let Ok(mut c) = c.try_borrow_mut() {
                c[idx] = Slot {
                    owner,
                    key,
                    line,
                    col,
                    tag,
                    id,
                    text: text.map(Arc::from),
                };
            }
        });
    }
    id
}

/// The site id of a runtime-hooks spawn at `loc`, interned in `owner`'s
/// `registry` as a plain task's site.
#[inline]
pub(crate) fn site_of_location(
    owner: u64,
    registry: &Registry,
    loc: &'static Location<'static>,
) -> u32 {
    let key = loc as *const Location<'static> as usize as u64;
    cached(owner, key, 0, 0, LOCATION_TAG, None, || {
        registry.intern_site(loc.file(), loc.line(), loc.column(), TaskKind::Task)
    })
}

/// [`Registry::intern_site`] through the cache.
pub(crate) fn intern_site(
    owner: u64,
    registry: &Registry,
    file: &str,
    line: u32,
    col: u32,
    kind: TaskKind,
) -> u32 {
    let tag = kind as u8;
    let key = string_hash(owner, file, line, col, tag);
    cached(owner, key, line, col, tag, Some(file), || {
        registry.intern_site(file, line, col, kind)
    })
}

/// [`Registry::intern`] through the cache.
pub(crate) fn intern_str(owner: u64, registry: &Registry, s: &str) -> u32 {
    let key = string_hash(owner, s, 0, 0, STRING_TAG);
    cached(owner, key, 0, 0, STRING_TAG, Some(s), || registry.intern(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::config::RecorderConfig;
    use crate::record::recorder::Recorder;

    #[test]
    fn repeated_lookups_hit_and_owners_do_not_mix() {
        let a = Recorder::new(RecorderConfig::default()).unwrap();
        let b = Recorder::new(RecorderConfig::default()).unwrap();
        // Give b a different first id, so a mixed-up owner would show.
        b.registry().intern("padding");
        let loc = Location::caller();
        let sa = site_of_location(a.id(), a.registry(), loc);
        assert_eq!(site_of_location(a.id(), a.registry(), loc), sa);
        let sb = site_of_location(b.id(), b.registry(), loc);
        assert_eq!(b.registry().site(sb).map(|s| s.line), Some(loc.line()));
        let x = intern_str(a.id(), a.registry(), "tokio::sync::mpsc");
        assert_eq!(intern_str(a.id(), a.registry(), "tokio::sync::mpsc"), x);
        assert_eq!(a.registry().string(x).as_deref(), Some("tokio::sync::mpsc"));
        let y = intern_str(a.id(), a.registry(), "tokio::sync::Mutex");
        assert_ne!(x, y);
        let s1 = intern_site(a.id(), a.registry(), "src/a.rs", 3, 4, TaskKind::Task);
        let s2 = intern_site(a.id(), a.registry(), "src/a.rs", 3, 4, TaskKind::Blocking);
        assert_ne!(s1, s2, "the kind is part of the key");
        assert_eq!(
            intern_site(a.id(), a.registry(), "src/a.rs", 3, 4, TaskKind::Task),
            s1
        );
        a.shutdown();
        b.shutdown();
    }
}
