//! [`TaskTable`]: the aggregator's per-task state, keyed by task id.
//!
//! Tokio hands out task ids from one counter, so the live tasks of a process
//! are mostly a window of ids (not every id in it: with more live tasks than
//! `max_tracked_tasks`, the tracked ones are scattered over a window wider
//! than the table). The table is 8-way set-associative with the bucket
//! indexed by `id & mask`, no hashing: a lookup compares the 8 ids of one
//! bucket (one cache line) and touches one value, and a window of live ids
//! wider than the table still fits, because up to 8 ids that share a bucket
//! can live at once. A hash map would probe its control bytes and then a
//! slot at random places (two cache misses per lookup once the table
//! outgrows the cache); a direct-mapped table (one slot per bucket) sends
//! every collision to the overflow map, which is what a scattered window
//! did to it. A task whose bucket is full goes to a small overflow hash map.
//!
//! The table doubles when it is half full, up to `max_slots` (twice the
//! tracked tasks, so at most half full and buckets rarely overflow). It
//! halves only after as many removals as it has slots have found it under
//! 1/32 full with no busier moment in between, that is after a sustained
//! quiet period: waves of spawns and
//! terminations (a task per pixel, row after row) do not rebuild it back and
//! forth. Rebuilding moves every entry, so its cost is amortized over the
//! inserts or removals that caused it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Multiplicative hasher for task ids (already unique integers).
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A hash map keyed by integer ids with [`IdHasher`].
pub(crate) type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

const MIN_SLOTS: usize = 1024;
/// Ways per bucket: a task may sit in any slot of its bucket, and a
/// lookup compares the bucket's ids, which share one 64-byte cache line.
const WAYS: usize = 8;
/// Marks an empty slot. Task id 0 (never a Tokio id) lives in the overflow map.
const EMPTY: u64 = 0;

/// Values by task id: an 8-way set-associative table plus an overflow map.
pub(crate) struct TaskTable<V> {
    /// Slot ids, `EMPTY` when free; 64-byte aligned buckets of [`WAYS`].
    ids: Vec<Bucket>,
    /// Slot values, same indices as the ids.
    values: Vec<V>,
    /// Entries in the slots.
    direct: usize,
    overflow: IdMap<V>,
    max_slots: usize,
    /// Removals that left the table under 1/32 full since it was last busier
    /// than that (or rebuilt): it shrinks once that reaches the slot count.
    low_removals: usize,
}

/// The ids of one bucket: one cache line.
#[derive(Clone, Copy)]
#[repr(align(64))]
struct Bucket([u64; WAYS]);

const EMPTY_BUCKET: Bucket = Bucket([EMPTY; WAYS]);

impl<V: Clone + Default> TaskTable<V> {
    /// An empty table that never grows beyond the power of two at or above
    /// `2 * max_entries` slots (so at most half full).
    pub(crate) fn new(max_entries: usize) -> Self {
        TaskTable {
            ids: Vec::new(),
            values: Vec::new(),
            direct: 0,
            overflow: IdMap::default(),
            low_removals: 0,
            max_slots: max_entries
                .saturating_mul(2)
                .max(MIN_SLOTS)
                .next_power_of_two(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.direct + self.overflow.len()
    }

    fn slots(&self) -> usize {
        self.ids.len() * WAYS
    }

    /// The bucket of `id` and its preferred way: consecutive ids fill
    /// consecutive buckets, and successive rounds over the buckets prefer
    /// successive ways, so a window of live ids spreads evenly and most ids
    /// sit in their preferred way. Checking that way first lets the CPU
    /// load the value while it compares the id.
    #[inline]
    fn bucket(&self, id: u64) -> Option<(usize, usize)> {
        if self.ids.is_empty() || id == EMPTY {
            None
        } else {
            let n = self.ids.len();
            let way = ((id as usize) >> n.trailing_zeros()) & (WAYS - 1);
            Some(((id as usize) & (n - 1), way))
        }
    }

    /// The slot holding `id`, if it is in the table proper.
    #[inline]
    fn find(&self, id: u64) -> Option<usize> {
        let (b, pref) = self.bucket(id)?;
        let ids = &self.ids[b].0;
        if ids[pref] == id {
            return Some(b * WAYS + pref);
        }
        let way = ids.iter().position(|&x| x == id)?;
        Some(b * WAYS + way)
    }

    /// Hints the CPU to start loading `id`'s bucket and the value in its
    /// preferred way (a no-op off x86-64). Never faults, whatever `id` is.
    #[inline]
    pub(crate) fn prefetch(&self, id: u64) {
        #[cfg(target_arch = "x86_64")]
        if let Some((b, pref)) = self.bucket(id) {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let bucket: *const Bucket = &self.ids[b];
            let value: *const V = &self.values[b * WAYS + pref];
            // SAFETY: prefetching has no architectural effect (it cannot
            // fault), and both pointers come from in-bounds references.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(bucket.cast());
                _mm_prefetch::<_MM_HINT_T0>(value.cast());
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = id;
    }

    #[inline]
    pub(crate) fn get(&self, id: u64) -> Option<&V> {
        if let Some(i) = self.find(id) {
            return Some(&self.values[i]);
        }
        if self.overflow.is_empty() {
            None
        } else {
            self.overflow.get(&id)
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut V> {
        if let Some(i) = self.find(id) {
            return Some(&mut self.values[i]);
        }
        if self.overflow.is_empty() {
            None
        } else {
            self.overflow.get_mut(&id)
        }
    }

    pub(crate) fn contains_key(&self, id: u64) -> bool {
        self.get(id).is_some()
    }

    /// Inserts or replaces the value of `id`.
    #[cfg(test)]
    pub(crate) fn insert(&mut self, id: u64, value: V) {
        if let Some(v) = self.get_mut(id) {
            *v = value;
            return;
        }
        self.insert_new(id, value);
    }

    /// Inserts `value` for an `id` the caller knows is absent (one lookup
    /// less than [`insert`](Self::insert)).
    pub(crate) fn insert_new(&mut self, id: u64, value: V) {
        debug_assert!(!self.contains_key(id));
        if (self.len() + 1) * 2 > self.slots() && self.slots() < self.max_slots {
            let grown = (self.slots() * 2).clamp(MIN_SLOTS, self.max_slots);
            self.rebuild(grown);
        }
        self.place(id, value);
        if self.len() * 32 >= self.slots() {
            // Busy again: the quiet period, if any, is over.
            self.low_removals = 0;
        }
    }

    fn place(&mut self, id: u64, value: V) {
        let free = self.bucket(id).and_then(|(b, pref)| {
            let ids = &self.ids[b].0;
            let way = if ids[pref] == EMPTY {
                Some(pref)
            } else {
                ids.iter().position(|&x| x == EMPTY)
            };
            way.map(|w| (b, w))
        });
        if let Some((b, way)) = free {
            self.ids[b].0[way] = id;
            self.values[b * WAYS + way] = value;
            self.direct += 1;
        } else {
            self.overflow.insert(id, value);
        }
    }

    pub(crate) fn remove(&mut self, id: u64) -> Option<V> {
        let removed = match self.find(id) {
            Some(i) => {
                self.ids[i / WAYS].0[i % WAYS] = EMPTY;
                self.direct -= 1;
                Some(std::mem::take(&mut self.values[i]))
            }
            None if self.overflow.is_empty() => None,
            None => self.overflow.remove(&id),
        };
        if removed.is_some() && self.slots() > MIN_SLOTS && self.len() * 32 < self.slots() {
            self.low_removals += 1;
            if self.low_removals >= self.slots() {
                self.rebuild(self.slots() / 2);
            }
        }
        removed
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &V)> {
        self.ids
            .iter()
            .flat_map(|b| b.0.iter())
            .zip(self.values.iter())
            .filter(|(id, _)| **id != EMPTY)
            .map(|(&id, v)| (id, v))
            .chain(self.overflow.iter().map(|(&id, v)| (id, v)))
    }

    fn rebuild(&mut self, slots: usize) {
        let old_ids = std::mem::take(&mut self.ids);
        let old_values = std::mem::take(&mut self.values);
        let overflow = std::mem::take(&mut self.overflow);
        self.ids = vec![EMPTY_BUCKET; slots / WAYS];
        self.values = vec![V::default(); slots];
        self.direct = 0;
        self.low_removals = 0;
        let old = old_ids.iter().flat_map(|b| b.0.iter()).zip(old_values);
        for (&id, v) in old.filter(|(id, _)| **id != EMPTY) {
            self.place(id, v);
        }
        for (id, v) in overflow {
            self.place(id, v);
        }
        self.overflow.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_map_through_growth_collisions_and_shrinking() {
        let mut t: TaskTable<u64> = TaskTable::new(1 << 14);
        let mut m: std::collections::HashMap<u64, u64> = Default::default();
        // Consecutive ids, ids that collide modulo every table size, id 0.
        let ids: Vec<u64> = (1..5000u64)
            .chain((0..40).map(|k| 7 + k * 65536))
            .chain([0, u64::MAX])
            .collect();
        for (n, &id) in ids.iter().enumerate() {
            t.insert(id, n as u64);
            m.insert(id, n as u64);
        }
        t.insert(3, 99);
        m.insert(3, 99);
        assert_eq!(t.len(), m.len());
        for (&id, &v) in &m {
            assert_eq!(t.get(id), Some(&v), "id {id}");
        }
        assert!(t.get(123_456_789).is_none());
        let mut seen: Vec<_> = t.iter().map(|(id, &v)| (id, v)).collect();
        let mut want: Vec<_> = m.iter().map(|(&id, &v)| (id, v)).collect();
        seen.sort_unstable();
        want.sort_unstable();
        assert_eq!(seen, want);
        for &id in ids.iter().step_by(2) {
            assert_eq!(t.remove(id), m.remove(&id), "id {id}");
        }
        for &id in &ids {
            assert_eq!(t.get(id), m.get(&id), "id {id}");
        }
        assert_eq!(t.remove(424_242), None);
        let left: Vec<u64> = m.keys().copied().collect();
        for id in left {
            assert_eq!(t.remove(id), m.remove(&id));
        }
        assert_eq!(t.len(), 0);
        // A long quiet period (a few tasks coming and going) shrinks it.
        let big = t.slots();
        for id in 1..200_000u64 {
            t.insert_new(id, id);
            assert_eq!(t.remove(id), Some(id));
        }
        assert!(
            t.slots() < big && t.slots() <= MIN_SLOTS * 2,
            "shrank: {} from {big}",
            t.slots()
        );
    }

    #[test]
    fn waves_of_tasks_do_not_rebuild_it_back_and_forth() {
        let mut t: TaskTable<u64> = TaskTable::new(1 << 16);
        let mut next = 1u64;
        let mut wave = |t: &mut TaskTable<u64>| {
            let ids: Vec<u64> = (next..next + 4000).collect();
            next += 4000;
            for &id in &ids {
                t.insert_new(id, id);
            }
            for &id in &ids {
                assert_eq!(t.remove(id), Some(id));
            }
        };
        wave(&mut t);
        let slots = t.slots();
        assert!(slots >= 8000);
        for _ in 0..50 {
            wave(&mut t);
            assert_eq!(t.slots(), slots, "rebuilt between waves");
        }
    }

    #[test]
    fn a_scattered_window_of_ids_stays_out_of_the_overflow_map() {
        // 1000 live ids picked at random from a window 20 times wider than
        // the table (as when more tasks are live than are tracked).
        let mut t: TaskTable<u8> = TaskTable::new(1000);
        let mut x = 0x9E37_79B9_u64;
        let mut n = 0;
        while n < 1000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = 1 + x % 40_000;
            if !t.contains_key(id) {
                t.insert_new(id, 1);
                n += 1;
            }
        }
        assert_eq!(t.slots(), 2048);
        assert!(
            t.overflow.len() < 20,
            "{} in the overflow map",
            t.overflow.len()
        );
    }

    #[test]
    fn never_exceeds_its_slot_bound() {
        let mut t: TaskTable<u8> = TaskTable::new(3000);
        for id in 1..=10_000u64 {
            t.insert(id, 1);
        }
        assert_eq!(t.slots(), 8192);
        assert_eq!(t.len(), 10_000);
        assert!((1..=10_000u64).all(|id| t.contains_key(id)));
    }
}
