//! Archives (docs/tape-format.md §4): uncompressed POSIX pax tar files, readable by
//! GNU tar, written member by member at known offsets so that the packed
//! manifest can say where each member's header and data start.

pub mod header;
pub mod parse;
pub mod seal;
pub mod sealed;
pub mod writer;

pub use header::{
    BLOCK, Member, MemberKind, check_header, encode, encode_aligned, padding, small_tar, ustar_size,
};
pub use writer::{ArchiveWriter, Finished, Hashed, Placed, Sink};

#[cfg(test)]
mod tests;
