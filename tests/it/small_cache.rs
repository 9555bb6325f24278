//! A cache much smaller than the source: the pipeline stages, packs, writes
//! and verifies a little at a time and never stalls. The cache is a real
//! small file system (a 20 MB tmpfs, mounted by the test: root only).

use std::path::{Path, PathBuf};

use crate::support::Env;

/// A tmpfs of `size` at `dir`, unmounted when dropped.
struct Mounted(PathBuf);

impl Mounted {
    fn tmpfs(dir: &Path, size: &str) -> Mounted {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "mounting a tmpfs at {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Mounted(dir.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn data(seed: u32, len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|j| (j.wrapping_mul(2_654_435_761) >> 11) as u8 ^ seed as u8)
        .collect()
}

#[test]
fn a_20_mb_cache_backs_up_a_57_mb_source_without_stalling() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: mounting the small cache needs root (CI runs as root)");
        return;
    }
    let env = Env::new();
    let config =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pipeline.toml")).unwrap();
    let config = config.replace("archive_size = \"64M\"", "archive_size = \"4M\"");
    assert!(
        config.contains("archive_size = \"4M\""),
        "the default config changed"
    );
    env.write("pipeline.toml", &config);
    let _cache = Mounted::tmpfs(&env.path("var/cache"), "20m");
    // 57 MB: a 6 MB file (an archive of its own), 44 files of 1 MB, and 300
    // small ones in a few directories.
    let src = env.path("var/sample");
    std::fs::create_dir_all(src.join("small/a")).unwrap();
    std::fs::create_dir_all(src.join("small/b")).unwrap();
    std::fs::write(src.join("big.bin"), data(1, 6 << 20)).unwrap();
    for i in 0..44 {
        std::fs::write(src.join(format!("m{i:02}.bin")), data(i + 2, 1 << 20)).unwrap();
    }
    for i in 0..300u32 {
        let d = if i % 2 == 0 { "small/a" } else { "small/b" };
        std::fs::write(
            src.join(format!("{d}/s{i:03}.txt")),
            data(i, 3000 + i as usize * 7),
        )
        .unwrap();
    }
    let run = env.run("reel-supervisor", &["--once"]);
    run.expect(0);
    // Everything is verified on tape, and nothing is left in the cache.
    let found = env.run("reel", &["find", "", "--json"]);
    let list: Vec<serde_json::Value> = serde_json::from_str(&found.stdout).unwrap();
    let files = list.iter().filter(|e| e["type"] == "file").count();
    assert_eq!(files, 1 + 44 + 300, "{}", run.report());
    assert!(
        crate::verify::files_under(&env.path("var/cache")).is_empty(),
        "{}",
        run.report()
    );
    let back = env.run("reel-restore", &["big.bin", "--to", "out"]);
    back.expect(0);
    assert!(std::fs::read(env.path("out/big.bin")).unwrap() == data(1, 6 << 20));
}
