//! Benchmark helper: a synthetic catalog of N verified members, for the
//! scale benchmark (`scripts/bench/catalog-scale.sh`): paths
//! `dNNNNN/fNNNNNNNNN.dat` (1,000 per directory) of stream `bench`, each a
//! member of tape BENCH1L9 with a size, an mtime and a digest derived from
//! its number. Tests and benchmarks only: the real catalog is written by
//! reel-verify.
//!
//!     fakecatalog --catalog DIR --entries N
//!     fakecatalog --tree DIR --entries N
//!
//! With `--tree`, it writes no journal but the files of the first N
//! members under DIR, each with the size and mtime the catalog records (the
//! files are sparse: no data), so that a scan of DIR as stream `bench`
//! finds every file already on tape.

use std::path::PathBuf;

use clap::Parser;
use reel_shared::catalog::{Entry, journal};
use reel_shared::manifest::{Digest, EntryType, Record};

#[derive(Parser)]
struct Args {
    #[arg(long, required_unless_present = "tree")]
    catalog: Option<PathBuf>,
    #[arg(long, conflicts_with = "catalog")]
    tree: Option<PathBuf>,
    #[arg(long)]
    entries: u64,
    #[arg(long, default_value = "BENCH1L9")]
    tape: String,
}

/// Member i's path, size and mtime.
fn member(i: u64) -> (String, u64, i64) {
    (
        format!("d{:05}/f{:09}.dat", i / 1000, i),
        1000 + i % 100_000,
        1_700_000_000_000_000_000 + i as i64 * 1_000_000,
    )
}

/// The files of members 0..n under `root`, a directory of 1,000 at a time
/// on every core.
fn tree(root: &std::path::Path, n: u64) -> anyhow::Result<()> {
    use rayon::prelude::*;
    (0..n.div_ceil(1000)).into_par_iter().try_for_each(|d| {
        std::fs::create_dir_all(root.join(format!("d{d:05}")))?;
        for i in d * 1000..((d + 1) * 1000).min(n) {
            let (path, size, mtime) = member(i);
            let f = std::fs::File::create(root.join(path))?;
            f.set_len(size)?;
            f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(mtime as u64))?;
        }
        anyhow::Ok(())
    })?;
    eprintln!("fakecatalog: {n} files under {}", root.display());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let Some(catalog) = args.catalog else {
        return tree(args.tree.as_deref().expect("--tree"), args.entries);
    };
    let verified = reel_shared::time::Utc::now().rfc3339();
    let mut batch = Vec::with_capacity(100_000);
    for i in 0..args.entries {
        let (path, size, mtime) = member(i);
        let mut r = Record::new(path, EntryType::File);
        r.size = size;
        r.mtime_ns = mtime;
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
            journal::append(&catalog, &args.tape, &batch)?;
            batch.clear();
        }
    }
    journal::append(&catalog, &args.tape, &batch)?;
    eprintln!("fakecatalog: {} entries on {}", args.entries, args.tape);
    Ok(())
}
