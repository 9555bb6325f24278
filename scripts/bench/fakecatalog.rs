//! Benchmark helper: a synthetic catalog of N verified members, for the
//! scale benchmark (`scripts/bench/catalog-scale.sh`): paths
//! `dNNNNN/fNNNNNNNNN.dat` (1,000 per directory) of stream `bench`, each a
//! member of tape BENCH1L9 with a size, an mtime and a digest derived from
//! its number. Tests and benchmarks only: the real catalog is written by
//! reel-verify.
//!
//!     fakecatalog --catalog DIR --entries N

use std::path::PathBuf;

use clap::Parser;
use reel_shared::catalog::{Entry, journal};
use reel_shared::manifest::{Digest, EntryType, Record};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    catalog: PathBuf,
    #[arg(long)]
    entries: u64,
    #[arg(long, default_value = "BENCH1L9")]
    tape: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let verified = reel_shared::time::Utc::now().rfc3339();
    let mut batch = Vec::with_capacity(100_000);
    for i in 0..args.entries {
        let mut r = Record::new(format!("d{:05}/f{:09}.dat", i / 1000, i), EntryType::File);
        r.size = 1000 + i % 100_000;
        r.mtime_ns = 1_700_000_000_000_000_000 + i as i64 * 1_000_000;
        r.mode = 0o644;
        let mut d = [0u8; 32];
        d[..8].copy_from_slice(&i.to_le_bytes());
        r.sha256 = Some(Digest(d));
        r.tape = Some(args.tape.clone());
        r.file = Some(1 + i / 100_000);
        r.block = Some(i);
        r.archive = Some(format!("bench-{}", i / 100_000));
        r.offset = Some(0);
        r.data_offset = Some(512);
        r.taken_ns = Some(r.mtime_ns);
        batch.push(Entry {
            stream: "bench".into(),
            verified: verified.clone(),
            record: r,
        });
        if batch.len() == batch.capacity() {
            journal::append(&args.catalog, &args.tape, &batch)?;
            batch.clear();
        }
    }
    journal::append(&args.catalog, &args.tape, &batch)?;
    eprintln!("fakecatalog: {} entries on {}", args.entries, args.tape);
    Ok(())
}
