//! [`TaskTable`]: the aggregator's per-task state, keyed by task id.
//!
//! Tokio hands out task ids from one counter, so the live tasks of a process
//! are mostly a window of consecutive ids. A direct-mapped table indexed by
//! `id & mask` therefore finds nearly every task with one memory access and
//! no hashing, where a hash map touches its control bytes and then the slot
//! (two cache misses per lookup once the table outgrows the cache, which it
//! does with tens of thousands of live tasks). A task whose slot is taken by
//! another live task goes to a small overflow hash map.
//!
//! The table doubles when it is half full, up to `max_slots`, and halves when
//! it is 1/32 full (wide hysteresis: bursts of spawns and terminations do not
//! rebuild it back and forth); rebuilding moves every entry, so its cost is
//! amortized over the inserts or removals that caused it.

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
/// Marks an empty slot. Task id 0 (never a Tokio id) lives in the overflow map.
const EMPTY: u64 = 0;

#[derive(Clone)]
struct Slot<V> {
    id: u64,
    value: V,
}

/// Values by task id: a direct-mapped table plus an overflow map.
pub(crate) struct TaskTable<V> {
    slots: Vec<Slot<V>>,
    /// Entries in `slots`.
    direct: usize,
    overflow: IdMap<V>,
    max_slots: usize,
}

impl<V: Clone + Default> TaskTable<V> {
    /// An empty table that never grows beyond the power of two at or above
    /// `max_entries` slots.
    pub(crate) fn new(max_entries: usize) -> Self {
        TaskTable {
            slots: Vec::new(),
            direct: 0,
            overflow: IdMap::default(),
            max_slots: max_entries.max(MIN_SLOTS).next_power_of_two(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.direct + self.overflow.len()
    }

    #[inline]
    fn index(&self, id: u64) -> Option<usize> {
        if self.slots.is_empty() || id == EMPTY {
            None
        } else {
            Some((id as usize) & (self.slots.len() - 1))
        }
    }

    #[inline]
    pub(crate) fn get(&self, id: u64) -> Option<&V> {
        if let Some(i) = self.index(id)
            && self.slots[i].id == id
        {
            return Some(&self.slots[i].value);
        }
        if self.overflow.is_empty() {
            None
        } else {
            self.overflow.get(&id)
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut V> {
        if let Some(i) = self.index(id)
            && self.slots[i].id == id
        {
            return Some(&mut self.slots[i].value);
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
    pub(crate) fn insert(&mut self, id: u64, value: V) {
        if let Some(v) = self.get_mut(id) {
            *v = value;
            return;
        }
        if (self.len() + 1) * 2 > self.slots.len() && self.slots.len() < self.max_slots {
            let grown = (self.slots.len() * 2).clamp(MIN_SLOTS, self.max_slots);
            self.rebuild(grown);
        }
        self.place(id, value);
    }

    fn place(&mut self, id: u64, value: V) {
        match self.index(id) {
            Some(i) if self.slots[i].id == EMPTY => {
                self.slots[i] = Slot { id, value };
                self.direct += 1;
            }
            _ => {
                self.overflow.insert(id, value);
            }
        }
    }

    pub(crate) fn remove(&mut self, id: u64) -> Option<V> {
        let removed = match self.index(id) {
            Some(i) if self.slots[i].id == id => {
                self.slots[i].id = EMPTY;
                self.direct -= 1;
                Some(std::mem::take(&mut self.slots[i].value))
            }
            _ if self.overflow.is_empty() => None,
            _ => self.overflow.remove(&id),
        };
        if removed.is_some() && self.slots.len() > MIN_SLOTS && self.len() * 32 < self.slots.len() {
            self.rebuild(self.slots.len() / 2);
        }
        removed
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &V)> {
        self.slots
            .iter()
            .filter(|s| s.id != EMPTY)
            .map(|s| (s.id, &s.value))
            .chain(self.overflow.iter().map(|(&id, v)| (id, v)))
    }

    fn rebuild(&mut self, slots: usize) {
        let old = std::mem::take(&mut self.slots);
        let overflow = std::mem::take(&mut self.overflow);
        self.slots = vec![
            Slot {
                id: EMPTY,
                value: V::default(),
            };
            slots
        ];
        self.direct = 0;
        for s in old.into_iter().filter(|s| s.id != EMPTY) {
            self.place(s.id, s.value);
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
        assert!(t.slots.len() <= MIN_SLOTS * 2, "shrank: {}", t.slots.len());
    }

    #[test]
    fn never_exceeds_its_slot_bound() {
        let mut t: TaskTable<u8> = TaskTable::new(3000);
        for id in 1..=10_000u64 {
            t.insert(id, 1);
        }
        assert_eq!(t.slots.len(), 4096);
        assert_eq!(t.len(), 10_000);
        assert!((1..=10_000u64).all(|id| t.contains_key(id)));
    }
}
