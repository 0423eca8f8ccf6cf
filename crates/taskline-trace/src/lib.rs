//! See the crate description; filled in by its issue.

pub mod analysis;
