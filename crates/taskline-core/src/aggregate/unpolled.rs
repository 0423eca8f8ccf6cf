//! [`UnpolledTable`]: what the aggregator keeps of a task between its spawn
//! and its first poll.
//!
//! A spawned task waits in a run queue, sometimes behind tens of thousands
//! of others (a task per pixel spawns a million in a burst). Its state is
//! written at spawn and read at the first poll, long after it left the
//! cache, and a full task state costs two cache lines there (bucket and
//! value of the [`TaskTable`](crate::aggregate::task_table::TaskTable)). This table
//! keeps only what the first poll needs (id, spawn time, site: three
//! records to a cache line), 3-way set-associative with the bucket indexed
//! by `id & mask`. Tokio numbers tasks from one counter, so spawns write it
//! front to back and first polls, which follow spawn order closely, read it
//! front to back: both are streams the hardware prefetcher runs ahead of.
//! The task table is left with the tasks that were polled, usually few and
//! in cache.
//!
//! A spawn whose bucket is full (three tasks spawned `len`, `2 * len`...
//! ids apart all still unpolled) does not fit: the caller keeps that task in
//! the task table from the start. So does a task whose name arrives before
//! its first poll.

/// Marks a free slot (task id 0 is never a Tokio id; it never fits).
const EMPTY: u64 = 0;

/// Records per bucket: three 20-byte records share one cache line.
const WAYS: usize = 3;

/// What a never-polled task's first poll needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Unpolled {
    /// Task id (`EMPTY` for a free slot).
    pub(crate) id: u64,
    /// Spawn timestamp (ns).
    pub(crate) spawned_ns: u64,
    /// Spawn site id.
    pub(crate) site: u32,
}

/// One bucket: its ids, spawn times and sites, one cache line.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct Bucket {
    ids: [u64; WAYS],
    spawned_ns: [u64; WAYS],
    sites: [u32; WAYS],
}

const _: () = assert!(std::mem::size_of::<Bucket>() == 64);

/// Spawn records of never-polled tasks, 3-way set-associative by task id.
#[derive(Debug)]
pub(crate) struct UnpolledTable {
    /// A power of two of buckets (none before the first insert).
    buckets: Vec<Bucket>,
    /// Most buckets (a power of two).
    capacity: usize,
    len: usize,
}

/// Bytes one bucket (three records) takes.
pub(crate) const BUCKET_BYTES: usize = std::mem::size_of::<Bucket>();

/// Fewest buckets.
pub(crate) const MIN_BUCKETS: usize = 512;

impl UnpolledTable {
    /// An empty table that grows to at most the power of two of buckets at
    /// or above `max_entries` (at least [`MIN_BUCKETS`]): three slots per
    /// entry, so that a window of unpolled ids scattered over a range wider
    /// than the table (more live tasks than are tracked) still fits. It
    /// starts at [`MIN_BUCKETS`] and doubles when a third full or when a
    /// bucket is full.
    pub(crate) fn new(max_entries: usize) -> Self {
        UnpolledTable {
            buckets: Vec::new(),
            capacity: max_entries.clamp(MIN_BUCKETS, 1 << 26).next_power_of_two(),
            len: 0,
        }
    }

    /// A table that stores nothing: every task goes to the task table, as
    /// before this table existed (the reference in differential tests).
    #[cfg(test)]
    pub(crate) fn refusing() -> Self {
        UnpolledTable {
            buckets: Vec::new(),
            capacity: 0,
            len: 0,
        }
    }

    /// Records in the table.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bucket of `id` and its preferred way (as in the task table:
    /// successive rounds over the buckets prefer successive ways).
    #[inline]
    fn bucket(&self, id: u64) -> (usize, usize) {
        let n = self.buckets.len();
        let way = ((id as usize) >> n.trailing_zeros()) % WAYS;
        ((id as usize) & (n - 1), way)
    }

    /// Where `id` is: (bucket, way).
    #[inline]
    fn find(&self, id: u64) -> Option<(usize, usize)> {
        if id == EMPTY || self.buckets.is_empty() {
            return None;
        }
        let (b, pref) = self.bucket(id);
        let bucket = self.buckets.get(b)?;
        if bucket.ids[pref] == id {
            return Some((b, pref));
        }
        bucket.ids.iter().position(|&x| x == id).map(|w| (b, w))
    }

    /// Stores `record`; false (and nothing stored) when its bucket is full.
    pub(crate) fn insert(&mut self, record: Unpolled) -> bool {
        if record.id == EMPTY || self.capacity == 0 {
            return false;
        }
        if self.buckets.is_empty() {
            self.buckets = vec![Bucket::default(); MIN_BUCKETS.min(self.capacity)];
        }
        if self.len >= self.buckets.len() && self.buckets.len() < self.capacity {
            self.grow();
        }
        let placed = self.place(record)
            || (self.buckets.len() < self.capacity && {
                self.grow();
                self.place(record)
            });
        if placed {
            self.len += 1;
        }
        placed
    }

    /// Doubles the buckets. Old bucket `b`'s records go to new bucket `b`
    /// or `b + old length` (by the next bit of their id), so they always fit.
    fn grow(&mut self) {
        let old = std::mem::take(&mut self.buckets);
        self.buckets = vec![Bucket::default(); old.len() * 2];
        for b in &old {
            for w in 0..WAYS {
                if b.ids[w] != EMPTY {
                    let placed = self.place(Unpolled {
                        id: b.ids[w],
                        spawned_ns: b.spawned_ns[w],
                        site: b.sites[w],
                    });
                    debug_assert!(placed, "a split bucket has room");
                }
            }
        }
    }

    /// Puts `record` in a free way of its bucket; false when it is full.
    fn place(&mut self, record: Unpolled) -> bool {
        let (b, pref) = self.bucket(record.id);
        let bucket = &mut self.buckets[b];
        let way = if bucket.ids[pref] == EMPTY {
            pref
        } else {
            match bucket.ids.iter().position(|&x| x == EMPTY) {
                Some(w) => w,
                None => return false,
            }
        };
        bucket.ids[way] = record.id;
        bucket.spawned_ns[way] = record.spawned_ns;
        bucket.sites[way] = record.site;
        true
    }

    /// Whether `id` is here.
    #[inline]
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.find(id).is_some()
    }

    /// The spawn site of `id`, if its record is here.
    #[inline]
    pub(crate) fn site_of(&self, id: u64) -> Option<u32> {
        let (b, w) = self.find(id)?;
        Some(self.buckets[b].sites[w])
    }

    /// Removes and returns the record of `id`, if it is here.
    #[inline]
    pub(crate) fn take(&mut self, id: u64) -> Option<Unpolled> {
        let (b, w) = self.find(id)?;
        let bucket = &mut self.buckets[b];
        bucket.ids[w] = EMPTY;
        self.len -= 1;
        Some(Unpolled {
            id,
            spawned_ns: bucket.spawned_ns[w],
            site: bucket.sites[w],
        })
    }

    /// Every record, in bucket order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Unpolled> + '_ {
        self.buckets.iter().flat_map(|b| {
            (0..WAYS).filter(|&w| b.ids[w] != EMPTY).map(|w| Unpolled {
                id: b.ids[w],
                spawned_ns: b.spawned_ns[w],
                site: b.sites[w],
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: u64) -> Unpolled {
        Unpolled {
            id,
            spawned_ns: id * 10,
            site: 3,
        }
    }

    #[test]
    fn stores_takes_and_refuses_a_full_bucket() {
        let mut t = UnpolledTable::new(1000);
        assert_eq!(t.capacity, 1024);
        assert!(!t.contains(5), "empty before the first insert");
        for k in 0..3 {
            assert!(t.insert(rec(5 + k * 1024)), "way {k}");
        }
        assert!(!t.insert(rec(5 + 3 * 1024)), "bucket full");
        assert!(!t.contains(5 + 3 * 1024));
        assert!(!t.insert(rec(0)), "id 0 never fits");
        assert_eq!(t.len(), 3);
        assert_eq!(t.take(5 + 1024), Some(rec(5 + 1024)));
        assert_eq!(t.take(5 + 1024), None, "taken once");
        assert!(t.insert(rec(5 + 3 * 1024)), "a way is free again");
        let mut ids: Vec<u64> = t.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, [5, 5 + 2 * 1024, 5 + 3 * 1024]);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn a_scattered_window_of_ids_mostly_fits() {
        // As in a task-per-pixel burst: the first `max` ids all unpolled,
        // then `max` more picked at random from a window 16 times wider
        // than the table. One bucket in 12 gets 3 or more of those; the rest fit.
        let max = 4096;
        let mut t = UnpolledTable::new(max);
        assert!((1..=max as u64).all(|id| t.insert(rec(id))));
        let mut rng = crate::test_rng::XorShift::new(0x9E37_79B9);
        let mut scattered = std::collections::BTreeSet::new();
        while scattered.len() < max {
            scattered.insert(max as u64 + 1 + rng.below(16 * max as u64));
        }
        let refused = scattered.iter().filter(|&&id| !t.insert(rec(id))).count();
        assert!(refused < max / 10, "{refused} refused");
        let kept = scattered.iter().filter(|&&id| t.contains(id)).count();
        assert_eq!(kept + refused, max);
        assert!((1..=max as u64).all(|id| t.take(id) == Some(rec(id))));
        assert_eq!(t.len(), kept);
    }

    #[test]
    fn grows_from_small_and_keeps_every_record() {
        let mut t = UnpolledTable::new(1 << 16);
        assert!(t.insert(rec(1)));
        assert_eq!(t.buckets.len(), MIN_BUCKETS, "starts small");
        assert!((2..=20_000u64).all(|id| t.insert(rec(id))));
        assert!(t.buckets.len() >= 20_000 && t.buckets.len() <= 1 << 16);
        assert_eq!(t.len(), 20_000);
        assert!((1..=20_000u64).all(|id| t.take(id) == Some(rec(id))));
        assert_eq!(t.len(), 0);
    }
}
