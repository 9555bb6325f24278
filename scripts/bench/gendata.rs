//! Deterministic test-data generator for reel's benchmarks and tests.
//!
//! The same `--seed` and options give the same tree, byte for byte (names,
//! contents, sizes, modes, mtimes), so benchmark runs are comparable across
//! machines and commits. Profiles:
//!
//! - `small`: many small files (0 B to 64 KiB, most under 8 KiB) in a deep
//!   tree, like home directories and source trees;
//! - `large`: a few large files, like images and video;
//! - `mixed`: both, plus what breaks naive tools: names that are not UTF-8,
//!   hold newlines, tabs, backslashes or a leading dash, names of 255 bytes,
//!   paths near 4096 bytes, empty files and directories, symlinks, hard
//!   links and files with identical content.
//!
//! Contents come from a seeded xorshift generator: incompressible, as most
//! data that goes to tape is. Run it as `scripts/bench/gendata`.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use reel_shared::units::Size;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Profile {
    Small,
    Large,
    Mixed,
}

/// Generate a deterministic file tree for benchmarks.
#[derive(Parser, Debug)]
#[command(name = "gendata")]
struct Args {
    /// Directory to create (must not exist, or be empty)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "mixed")]
    profile: Profile,
    /// Total bytes of file content to aim for
    #[arg(long, default_value = "256M")]
    total: Size,
    /// Seed of the generator: same seed, same tree
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// small profile: write exactly this many files (then --total is ignored)
    #[arg(long, value_name = "N")]
    files: Option<u64>,
    /// small profile: no file larger than this
    #[arg(long, default_value = "128K", value_name = "SIZE")]
    max_file_size: Size,
    /// Also write this many large files of --large-size (any profile)
    #[arg(long, default_value_t = 0, value_name = "N")]
    large_count: u64,
    #[arg(long, default_value = "1G", value_name = "SIZE")]
    large_size: Size,
}

/// xorshift64*: small, fast, and stable forever (unlike a crate's RNG,
/// whose stream may change between versions).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // splitmix64 once, so that seeds 1, 2, 3 give unrelated streams.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

#[derive(Default)]
struct Stats {
    files: u64,
    dirs: u64,
    links: u64,
    bytes: u64,
}

struct Gen {
    rng: Rng,
    root: PathBuf,
    stats: Stats,
    buf: Vec<u8>,
    /// Every mtime is this plus a few seconds per file: fixed, not "now".
    epoch: SystemTime,
}

impl Gen {
    fn dir(&mut self, rel: &Path) -> anyhow::Result<PathBuf> {
        let p = self.root.join(rel);
        if !p.exists() {
            fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
            self.stats.dirs += 1;
        }
        Ok(p)
    }

    fn file(&mut self, path: &Path, size: u64) -> anyhow::Result<()> {
        let full = self.root.join(path);
        let f = File::create(&full).with_context(|| format!("creating {}", full.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let mut left = size;
        while left > 0 {
            let n = left.min(self.buf.len() as u64) as usize;
            let mut chunk = std::mem::take(&mut self.buf);
            self.rng.fill(&mut chunk[..n]);
            w.write_all(&chunk[..n])?;
            self.buf = chunk;
            left -= n as u64;
        }
        let f = w.into_inner().map_err(|e| e.into_error())?;
        let mode = [0o644, 0o600, 0o755, 0o640][self.rng.below(4) as usize];
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.set_modified(self.epoch + Duration::from_secs(self.rng.below(300 * 86_400)))?;
        self.stats.files += 1;
        self.stats.bytes += size;
        Ok(())
    }

    /// Small files: log-uniform sizes, most below 8 KiB; `budget` bytes, or
    /// exactly `files` files when given.
    fn small_tree(
        &mut self,
        budget: u64,
        tag: &str,
        files: Option<u64>,
        max_size: u64,
    ) -> anyhow::Result<()> {
        let mut spent = 0;
        let mut n = 0u64;
        let more = |spent: u64, n: u64| match files {
            Some(f) => n < f,
            None => spent < budget,
        };
        while more(spent, n) {
            let depth = 1 + self.rng.below(4);
            let mut rel = PathBuf::from(tag);
            for _ in 0..depth {
                rel.push(format!("d{:02}", self.rng.below(12)));
            }
            self.dir(&rel)?;
            let size = (1u64 << self.rng.below(17)) + self.rng.below(1 << 10) - 1;
            let size = match files {
                Some(_) => size.min(max_size),
                None => size.min(budget - spent).min(max_size),
            };
            self.file(&rel.join(format!("f{n:07}.dat")), size)?;
            spent += size.max(1);
            n += 1;
        }
        Ok(())
    }

    /// Large files: sizes between 1/8 and 1/2 of the budget, at most 8 GiB each.
    fn large_files(&mut self, budget: u64, tag: &str) -> anyhow::Result<()> {
        let rel = PathBuf::from(tag);
        self.dir(&rel)?;
        let mut spent = 0;
        let mut n = 0;
        while spent < budget {
            let size = (budget / 8 + self.rng.below(budget / 2 - budget / 8 + 1))
                .min(8 << 30)
                .min(budget - spent);
            self.file(&rel.join(format!("big{n:03}.bin")), size)?;
            spent += size.max(1);
            n += 1;
        }
        Ok(())
    }

    /// The names and shapes that break naive tools.
    fn odd_entries(&mut self) -> anyhow::Result<()> {
        let odd = self.dir(Path::new("odd"))?;
        let names: Vec<Vec<u8>> = vec![
            b"new\nline".to_vec(),
            b"tab\there".to_vec(),
            b"back\\slash".to_vec(),
            b"-leading-dash".to_vec(),
            b" leading space".to_vec(),
            b"latin1-\xe9t\xe9".to_vec(),
            b"\xff\xfe-not-utf8".to_vec(),
            "unicode-\u{1F4BE}-\u{00e9}".as_bytes().to_vec(),
            b"quote\"and'apostrophe".to_vec(),
            b"star*question?bracket[".to_vec(),
            vec![b'n'; 255],
        ];
        for name in names {
            let p = PathBuf::from("odd").join(OsString::from_vec(name));
            let size = self.rng.below(5000);
            self.file(&p, size)?;
        }
        self.file(Path::new("odd/empty-file"), 0)?;
        self.dir(Path::new("odd/empty-dir"))?;
        // A path of about 4000 bytes: 30 levels of 130-byte names.
        let mut deep = PathBuf::from("odd/deep");
        for i in 0..30 {
            deep.push(format!("{i:02}-{}", "x".repeat(127)));
        }
        self.dir(&deep)?;
        self.file(&deep.join("bottom.txt"), 100)?;
        std::os::unix::fs::symlink("../small", odd.join("symlink-to-dir"))?;
        std::os::unix::fs::symlink("empty-file", odd.join("symlink-to-file"))?;
        std::os::unix::fs::symlink("/nonexistent/target", odd.join("dangling-symlink"))?;
        fs::hard_link(odd.join("tab\there"), odd.join("hardlink-to-tab"))?;
        self.stats.links += 4;
        // Identical contents under different names (for content dedup).
        let mut same = vec![0u8; 100_000];
        self.rng.fill(&mut same);
        for i in 0..3 {
            let p = odd.join(format!("duplicate-{i}.bin"));
            fs::write(&p, &same)?;
            File::options()
                .write(true)
                .open(&p)?
                .set_modified(self.epoch)?;
            self.stats.files += 1;
            self.stats.bytes += same.len() as u64;
        }
        Ok(())
    }
}

/// Give directories and symlinks a fixed mtime too (their own creation
/// set it to "now"), children before parents so later steps do not undo it.
fn fix_times(path: &Path, when: SystemTime) -> anyhow::Result<()> {
    use nix::sys::stat::{UtimensatFlags, utimensat};
    use nix::sys::time::TimeSpec;
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            fix_times(&entry?.path(), when)?;
        }
    }
    if meta.is_dir() || meta.file_type().is_symlink() {
        let t = TimeSpec::from(when.duration_since(UNIX_EPOCH)?);
        utimensat(
            nix::fcntl::AT_FDCWD,
            path,
            &t,
            &t,
            UtimensatFlags::NoFollowSymlink,
        )
        .with_context(|| format!("setting the mtime of {}", path.display()))?;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.out.exists() && fs::read_dir(&args.out)?.next().is_some() {
        bail!(
            "{} exists and is not empty; gendata only writes fresh trees",
            args.out.display()
        );
    }
    fs::create_dir_all(&args.out)?;
    let mut g = Gen {
        rng: Rng::new(args.seed),
        root: args.out.clone(),
        stats: Stats::default(),
        buf: vec![0; 1 << 20],
        epoch: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    };
    let total = args.total.0;
    match args.profile {
        Profile::Small => g.small_tree(total, "small", args.files, args.max_file_size.0)?,
        Profile::Large => g.large_files(total, "large")?,
        Profile::Mixed => {
            g.odd_entries()?;
            g.small_tree(total / 4, "small", None, args.max_file_size.0)?;
            g.large_files(total - total / 4, "large")?;
        }
    }
    if args.large_count > 0 {
        g.dir(Path::new("large-fixed"))?;
        for i in 0..args.large_count {
            g.file(
                &PathBuf::from(format!("large-fixed/big{i:02}.bin")),
                args.large_size.0,
            )?;
        }
    }
    fix_times(&args.out, g.epoch)?;
    eprintln!(
        "gendata: {} files, {} directories, {} links, {} in {} (seed {}, profile {:?})",
        g.stats.files,
        g.stats.dirs,
        g.stats.links,
        Size(g.stats.bytes).human(),
        args.out.display(),
        args.seed,
        args.profile
    );
    Ok(())
}
