//! A small deterministic generator for tests (xorshift64): random inputs
//! that are the same on every run.

/// xorshift64 (shifts 13, 7, 17).
pub(crate) struct XorShift(u64);

impl XorShift {
    /// A generator seeded with `seed` (0 would stay 0: it becomes 1).
    pub(crate) fn new(seed: u64) -> Self {
        XorShift(seed.max(1))
    }

    /// The next value.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// The next value modulo `m` (`m` > 0).
    pub(crate) fn below(&mut self, m: u64) -> u64 {
        self.next_u64() % m
    }
}
