//! [`IdMap`]: the hash map every consumer keys by task, site or thread id.
//!
//! Ids are already unique, well-spread integers, so SipHash (the standard
//! library's default) is wasted work: the consumers look a task up on nearly
//! every event, and SipHash cost more than the rest of the lookup. One
//! definition here, used by the aggregator, the trace encoder and the OTel
//! task sink.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A multiplicative hasher for integer ids (and small tuples of them).
///
/// Not for keys an adversary chooses: it has no resistance to collisions.
#[derive(Default, Clone, Copy, Debug)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
    #[inline]
    fn write_u16(&mut self, v: u16) {
        self.write_u64(u64::from(v));
    }
    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ self.0.rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

/// A hash map keyed by ids, hashed with [`IdHasher`].
///
/// ```
/// let mut polls: taskline_core::IdMap<u64, u32> = Default::default();
/// *polls.entry(42).or_default() += 1;
/// assert_eq!(polls[&42], 1);
/// ```
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
