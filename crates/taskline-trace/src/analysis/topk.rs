//! A bounded "worst N" list.

/// Keeps the `k` greatest items seen (by `Ord`, greater = worse). Memory is
/// `k` items whatever the number of offers.
#[derive(Clone, Debug)]
pub(crate) struct TopK<T> {
    k: usize,
    items: Vec<T>,
}

impl<T: Ord + Clone> TopK<T> {
    /// An empty list keeping at most `k` items.
    pub(crate) fn new(k: usize) -> Self {
        TopK {
            k,
            items: Vec::new(),
        }
    }

    /// Index of the smallest kept item.
    fn min_index(&self) -> Option<usize> {
        self.items
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.cmp(b.1))
            .map(|(i, _)| i)
    }

    /// Offer an item. When `same` finds a kept item for the same subject
    /// (e.g. the same task), only the worse of the two is kept.
    pub(crate) fn offer(&mut self, item: T, same: impl Fn(&T, &T) -> bool) {
        if self.k == 0 {
            return;
        }
        if self.items.len() >= self.k
            && let Some(min) = self.min_index()
            && item <= self.items[min]
        {
            return;
        }
        if let Some(existing) = self.items.iter_mut().find(|x| same(x, &item)) {
            if item > *existing {
                *existing = item;
            }
            return;
        }
        if self.items.len() < self.k {
            self.items.push(item);
        } else if let Some(min) = self.min_index() {
            self.items[min] = item;
        }
    }

    /// The kept items, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter()
    }

    /// The kept items, worst first.
    pub(crate) fn sorted(&self) -> Vec<T> {
        let mut v = self.items.clone();
        v.sort_by(|a, b| b.cmp(a));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_worst_and_dedups() {
        let mut t = TopK::new(3);
        for (v, id) in [(5, 1), (1, 2), (9, 3), (7, 4), (3, 5), (8, 3), (10, 4)] {
            t.offer((v, id), |a: &(i32, i32), b| a.1 == b.1);
        }
        assert_eq!(t.sorted(), vec![(10, 4), (9, 3), (5, 1)]);
        let mut z = TopK::new(0);
        z.offer(1, |_, _| false);
        assert!(z.sorted().is_empty());
    }
}
