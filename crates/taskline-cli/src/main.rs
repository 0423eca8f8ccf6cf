//! The `taskline` command.
fn main() {}
