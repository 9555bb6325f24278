//! Benchmark helper: record every entry of the manifests on stdin as
//! verified on tape BENCH1L9, so a scan benchmark runs against a catalog
//! that already holds the tree (what a nightly scan meets). Tests and
//! benchmarks only: the real catalog is written by reel-verify.
//!
//!     reel-scan --out - | seedcatalog --catalog DIR --stream NAME

use std::io::BufReader;
use std::path::PathBuf;

use clap::Parser;
use reel_shared::catalog::{Entry, journal};
use reel_shared::manifest::ManifestReader;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    catalog: PathBuf,
    #[arg(long, default_value = "BENCH1L9")]
    tape: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let verified = reel_shared::time::Utc::now().rfc3339();
    let mut reader = ManifestReader::new(
        BufReader::with_capacity(1 << 20, std::io::stdin()),
        "<stdin>",
    );
    let mut batch = Vec::with_capacity(50_000);
    let mut total = 0u64;
    while let Some(header) = reader.next_manifest()? {
        while let Some(mut record) = reader.next_record()? {
            record.tape = Some(args.tape.clone());
            record.file = Some(1);
            record.block = Some(0);
            batch.push(Entry {
                stream: header.stream.clone(),
                verified: verified.clone(),
                record,
            });
            if batch.len() == batch.capacity() {
                journal::append(&args.catalog, &args.tape, &batch)?;
                total += batch.len() as u64;
                batch.clear();
            }
        }
    }
    journal::append(&args.catalog, &args.tape, &batch)?;
    total += batch.len() as u64;
    eprintln!("seedcatalog: {total} entries recorded on {}", args.tape);
    Ok(())
}
