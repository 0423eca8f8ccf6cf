//! [`TaskTable`]: the aggregator's per-task state, keyed by task id.
//!
//! Tokio hands out task ids from one counter, so the live tasks of a process
//! are mostly a window of ids (not every id in it: with more live tasks than
//! `max_tracked_tasks`, the tracked ones are scattered over a window wider
//! than the table). The table is 7-way set-associative with the bucket
//! indexed by `id & mask`, no hashing: a lookup compares the 7 ids of one
//! bucket (one cache line, which also counts the bucket's entries in the
//! overflow map, so an absent id costs that line alone) and touches one
//! value, and a window of live ids wider than the table still fits,
//! because up to 7 ids that share a bucket can live at once. A hash map would probe its control bytes and then a
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

use crate::IdMap;

/// Ways per bucket: a task may sit in any slot of its bucket. A bucket's
/// ids and its spill count share one 64-byte cache line.
const WAYS: usize = 7;
const MIN_BUCKETS: usize = 128;
/// Marks an empty slot. Task id 0 (never a Tokio id) lives in the overflow map.
const EMPTY: u64 = 0;

/// Where an entry is: a slot of the table, or the overflow map (by id).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Slot {
    Direct(usize),
    Overflow(u64),
}

/// Values by task id: a 7-way set-associative table plus an overflow map.
pub(crate) struct TaskTable<V> {
    /// The buckets' ids (a power of two of buckets).
    buckets: Vec<Bucket>,
    /// Slot values: bucket `b`, way `w` is `values[b * WAYS + w]`.
    values: Vec<V>,
    /// Entries in the slots.
    direct: usize,
    /// Entries whose bucket was full (and id 0).
    overflow: IdMap<u64, V>,
    max_buckets: usize,
    /// Removals that left the table under 1/32 full since it was last busier
    /// than that (or rebuilt): it shrinks once that reaches the slot count.
    low_removals: usize,
    /// How many entries, and ids counted outside the table
    /// ([`TaskTable::count_outside`]), are congruent to `i` modulo the
    /// length (a power of two), saturating at 255 (which then stays): zero
    /// means no entry has that id. Consecutive ids share a cache line here, so the
    /// lookups of absent ids (every event of an untracked task) mostly hit
    /// lines the previous lookups brought in, where their buckets would each
    /// cost a miss. Allocated with the first entry.
    present: Vec<u8>,
    present_len: usize,
}

/// One bucket: the ids of its ways (`EMPTY` when free) and how many
/// entries of this bucket live in the overflow map, so that looking up an
/// absent id (every event of an untracked task) reads this one cache line
/// and not the map. One cache line.
#[derive(Clone, Copy)]
#[repr(align(64))]
struct Bucket {
    ids: [u64; WAYS],
    spilled: u64,
}

const EMPTY_BUCKET: Bucket = Bucket {
    ids: [EMPTY; WAYS],
    spilled: 0,
};

impl<V: Clone + Default> TaskTable<V> {
    /// An empty table that never grows beyond the power of two of buckets
    /// at or above `2 * max_entries` slots (so at most half full).
    pub(crate) fn new(max_entries: usize) -> Self {
        TaskTable {
            buckets: Vec::new(),
            values: Vec::new(),
            direct: 0,
            overflow: IdMap::default(),
            low_removals: 0,
            present: Vec::new(),
            present_len: max_entries
                .saturating_mul(8)
                .clamp(1024, 1 << 26)
                .next_power_of_two(),
            max_buckets: max_entries
                .saturating_mul(2)
                .div_ceil(WAYS)
                .max(MIN_BUCKETS)
                .next_power_of_two(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.direct + self.overflow.len()
    }

    fn slots(&self) -> usize {
        self.buckets.len() * WAYS
    }

    /// The bucket of `id` and its preferred way: consecutive ids fill
    /// consecutive buckets, and successive rounds over the buckets prefer
    /// successive ways, so a window of live ids spreads evenly and most ids
    /// sit in their preferred way, found with one comparison.
    #[inline]
    fn bucket(&self, id: u64) -> Option<(usize, usize)> {
        if self.buckets.is_empty() || id == EMPTY {
            None
        } else {
            let n = self.buckets.len();
            let way = ((id as usize) >> n.trailing_zeros()) % WAYS;
            Some(((id as usize) & (n - 1), way))
        }
    }

    /// Where `id` is: `Ok(slot)` in the table, `Err(true)` possibly in the
    /// overflow map, `Err(false)` absent.
    #[inline]
    fn find(&self, id: u64) -> Result<usize, bool> {
        let Some((b, pref)) = self.bucket(id) else {
            return Err(!self.overflow.is_empty());
        };
        if self.present[self.present_index(id)] == 0 {
            return Err(false);
        }
        let bucket = &self.buckets[b];
        if bucket.ids[pref] == id {
            return Ok(b * WAYS + pref);
        }
        match bucket.ids.iter().position(|&x| x == id) {
            Some(way) => Ok(b * WAYS + way),
            None => Err(bucket.spilled != 0),
        }
    }

    /// Where the value of `id` is, if present: a handle for
    /// [`TaskTable::at_mut`] that stays valid until the table changes.
    #[inline]
    pub(crate) fn slot(&self, id: u64) -> Option<Slot> {
        match self.find(id) {
            Ok(i) => Some(Slot::Direct(i)),
            Err(true) => self
                .overflow
                .contains_key(&id)
                .then_some(Slot::Overflow(id)),
            Err(false) => None,
        }
    }

    /// The value at `slot` (from [`TaskTable::slot`], with no change to the
    /// table since).
    #[inline]
    pub(crate) fn at_mut(&mut self, slot: Slot) -> Option<&mut V> {
        match slot {
            Slot::Direct(i) => self.values.get_mut(i),
            Slot::Overflow(id) => self.overflow.get_mut(&id),
        }
    }

    #[inline]
    pub(crate) fn get(&self, id: u64) -> Option<&V> {
        match self.find(id) {
            Ok(i) => Some(&self.values[i]),
            Err(true) => self.overflow.get(&id),
            Err(false) => None,
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut V> {
        match self.find(id) {
            Ok(i) => Some(&mut self.values[i]),
            Err(true) => self.overflow.get_mut(&id),
            Err(false) => None,
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
    /// less than an insert that may replace).
    pub(crate) fn insert_new(&mut self, id: u64, value: V) {
        debug_assert!(!self.contains_key(id));
        if (self.len() + 1) * 2 > self.slots() && self.buckets.len() < self.max_buckets {
            let grown = (self.buckets.len() * 2).clamp(MIN_BUCKETS, self.max_buckets);
            self.rebuild(grown);
        }
        self.count_in(id);
        self.place(id, value);
        if self.len() * 32 >= self.slots() {
            // Busy again: the quiet period, if any, is over.
            self.low_removals = 0;
        }
    }

    #[inline]
    fn present_index(&self, id: u64) -> usize {
        (id as usize) & (self.present_len - 1)
    }

    /// Counts a new entry `id` in `present`.
    fn count_in(&mut self, id: u64) {
        let i = self.present_index(id);
        self.present[i] = self.present[i].saturating_add(1);
    }

    /// Counts `id` as tracked outside the table (by the caller, e.g. in a
    /// table of its own), so that [`TaskTable::maybe_tracked`] answers for
    /// both. Undo with [`TaskTable::uncount_outside`].
    pub(crate) fn count_outside(&mut self, id: u64) {
        if self.present.is_empty() {
            self.present = vec![0; self.present_len];
        }
        self.count_in(id);
    }

    /// Uncounts an `id` counted with [`TaskTable::count_outside`].
    pub(crate) fn uncount_outside(&mut self, id: u64) {
        self.count_out(id);
    }

    /// False when neither the table nor the caller's counted ids (see
    /// [`TaskTable::count_outside`]) hold `id`; true when they may. One
    /// byte, shared with neighbouring ids: the cheap first test for the
    /// events of untracked tasks.
    #[inline]
    pub(crate) fn maybe_tracked(&self, id: u64) -> bool {
        self.present
            .get(self.present_index(id))
            .is_some_and(|&c| c != 0)
    }

    /// Uncounts a removed entry `id` (a saturated count stays).
    fn count_out(&mut self, id: u64) {
        let i = self.present_index(id);
        if let Some(c) = self.present.get_mut(i)
            && *c != u8::MAX
        {
            *c = c.saturating_sub(1);
        }
    }

    fn place(&mut self, id: u64, value: V) {
        let Some((b, pref)) = self.bucket(id) else {
            self.overflow.insert(id, value);
            return;
        };
        let bucket = &mut self.buckets[b];
        let way = if bucket.ids[pref] == EMPTY {
            Some(pref)
        } else {
            bucket.ids.iter().position(|&x| x == EMPTY)
        };
        match way {
            Some(w) => {
                bucket.ids[w] = id;
                self.values[b * WAYS + w] = value;
                self.direct += 1;
            }
            None => {
                bucket.spilled += 1;
                self.overflow.insert(id, value);
            }
        }
    }

    pub(crate) fn remove(&mut self, id: u64) -> Option<V> {
        let removed = match self.find(id) {
            Ok(i) => {
                self.buckets[i / WAYS].ids[i % WAYS] = EMPTY;
                self.direct -= 1;
                Some(std::mem::take(&mut self.values[i]))
            }
            Err(false) => None,
            Err(true) => {
                let v = self.overflow.remove(&id);
                if v.is_some()
                    && let Some((b, _)) = self.bucket(id)
                {
                    self.buckets[b].spilled -= 1;
                }
                v
            }
        };
        if removed.is_some() {
            self.count_out(id);
        }
        if removed.is_some() && self.buckets.len() > MIN_BUCKETS && self.len() * 32 < self.slots() {
            self.low_removals += 1;
            if self.low_removals >= self.slots() {
                self.rebuild(self.buckets.len() / 2);
            }
        }
        removed
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &V)> {
        self.buckets
            .iter()
            .flat_map(|b| b.ids.iter())
            .zip(self.values.iter())
            .filter(|(id, _)| **id != EMPTY)
            .map(|(&id, v)| (id, v))
            .chain(self.overflow.iter().map(|(&id, v)| (id, v)))
    }

    fn rebuild(&mut self, buckets: usize) {
        let old_buckets = std::mem::take(&mut self.buckets);
        let old_values = std::mem::take(&mut self.values);
        let overflow = std::mem::take(&mut self.overflow);
        if self.present.is_empty() {
            // Allocated with the buckets, so `find` can index it unchecked.
            self.present = vec![0; self.present_len];
        }
        self.buckets = vec![EMPTY_BUCKET; buckets];
        self.values = vec![V::default(); buckets * WAYS];
        self.direct = 0;
        self.low_removals = 0;
        let old = old_buckets
            .iter()
            .flat_map(|b| b.ids.iter())
            .zip(old_values);
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
        let spilled: u64 = t.buckets.iter().map(|b| b.spilled).sum();
        let id0 = u64::from(t.overflow.contains_key(&0));
        assert_eq!(
            spilled + id0,
            t.overflow.len() as u64,
            "spill counts match the map"
        );
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
            t.slots() < big && t.buckets.len() <= MIN_BUCKETS * 2,
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
        let mut rng = crate::test_rng::XorShift::new(0x9E37_79B9);
        let mut n = 0;
        while n < 1000 {
            let id = 1 + rng.below(40_000);
            if !t.contains_key(id) {
                t.insert_new(id, 1);
                n += 1;
            }
        }
        assert_eq!(
            t.slots(),
            512 * WAYS,
            "the power of two of buckets above 2000 slots"
        );
        assert!(
            t.overflow.len() < 20,
            "{} in the overflow map",
            t.overflow.len()
        );
        let spilled: u64 = t.buckets.iter().map(|b| b.spilled).sum();
        assert_eq!(spilled as usize, t.overflow.len());
    }

    #[test]
    fn saturated_presence_counts_stay_correct() {
        // 300 live ids share one presence count (saturating at 255).
        let mut t: TaskTable<u64> = TaskTable::new(64);
        assert_eq!(t.present_len, 1024);
        let ids: Vec<u64> = (0..300u64).map(|k| 1 + k * 1024).collect();
        for &id in &ids {
            t.insert_new(id, id);
        }
        assert_eq!(t.present[1], u8::MAX);
        assert!(ids.iter().all(|&id| t.get(id) == Some(&id)));
        assert_eq!(t.get(2), None, "a neighbouring id is absent");
        for &id in &ids {
            assert_eq!(t.remove(id), Some(id));
        }
        assert_eq!(t.present[1], u8::MAX, "saturated: stays 'maybe'");
        assert!(ids.iter().all(|&id| t.get(id).is_none()));
        t.insert_new(1, 5);
        assert_eq!(t.get(1), Some(&5));
        assert_eq!(t.remove(1), Some(5));
        // Unsaturated counts go back to zero.
        t.insert_new(3, 3);
        t.insert_new(3 + 1024, 4);
        assert_eq!(t.present[3], 2);
        t.remove(3);
        t.remove(3 + 1024);
        assert_eq!(t.present[3], 0);
    }

    #[test]
    fn never_exceeds_its_slot_bound() {
        let mut t: TaskTable<u8> = TaskTable::new(3000);
        for id in 1..=10_000u64 {
            t.insert(id, 1);
        }
        assert_eq!(
            t.buckets.len(),
            1024,
            "2 * 3000 slots of 7 ways, rounded up"
        );
        assert_eq!(t.len(), 10_000);
        assert!((1..=10_000u64).all(|id| t.contains_key(id)));
    }
}
