//! [`LinuxSt`] against the simulated st drive of `fake.rs`. The helpers
//! here write and read numbered blocks; the tests are grouped by what they
//! exercise.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::errno::Errno;

use super::fake::{FakeClock, FakeSt, Quirk, Tape, opener};
use super::sys::{Access, MT_ST_ASYNC_WRITES, MT_ST_SCSI2LOGICAL};
use super::{LinuxSt, OpenOptions};
use crate::tape::{Drive, Read, TapeError, Written};

type Shared = Arc<Mutex<Tape>>;

fn tape(capacity: usize, early_warning: usize, quirk: Quirk) -> Shared {
    Tape::new(capacity, early_warning, quirk).shared()
}

fn open_with(
    tape: &Shared,
    options: &OpenOptions,
    clock: &mut FakeClock,
) -> Result<LinuxSt<FakeSt>, TapeError> {
    LinuxSt::open_with("/dev/nst0", options, opener(tape), clock)
}

fn open(tape: &Shared) -> LinuxSt<FakeSt> {
    open_with(tape, &OpenOptions::default(), &mut FakeClock::default()).unwrap()
}

fn block(i: usize) -> Vec<u8> {
    format!("block {i:05}").into_bytes()
}

fn read(d: &mut LinuxSt<FakeSt>) -> Read {
    let mut buf = vec![0; 64];
    d.read_block(&mut buf).unwrap()
}

/// Read `n` data blocks and return their contents.
fn read_blocks(d: &mut LinuxSt<FakeSt>, n: usize) -> Vec<Vec<u8>> {
    let mut buf = vec![0; 64];
    (0..n)
        .map(|i| match d.read_block(&mut buf) {
            Ok(Read::Data(len)) => buf[..len].to_vec(),
            other => panic!("block {i}: expected data, got {other:?}"),
        })
        .collect()
}

/// Three files of five blocks, each closed with a filemark.
fn three_files(d: &mut LinuxSt<FakeSt>) {
    for file in 0..3 {
        for b in 0..5 {
            assert_eq!(d.write_block(&block(file * 5 + b)).unwrap(), Written::Ok);
        }
        assert_eq!(d.write_filemarks(1).unwrap(), Written::Ok);
    }
}

mod open;
mod read;
mod write;
