//! A real tape library, driven through the `mtx` program (DESIGN.md §7).
//!
//! This part reads the output of `mtx status` (`parse.rs`).

mod parse;
mod sense;

#[cfg(test)]
mod parse_tests;

pub use parse::parse_status;
