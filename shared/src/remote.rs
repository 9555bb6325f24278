//! Remote sources (`source = "host:/path"`): pulled with the real `rsync`
//! over ssh into a landing area on the cache, `<cache>/landing/<stream>/`,
//! which is then scanned and staged like a local source (and so hashed).
//! rsync's quick check keeps later pulls incremental; `--delete` keeps the
//! landing area a mirror. The remote shell is `$REEL_RSH` when set (rsync's
//! `-e`), else `ssh -o BatchMode=yes`: a backup must not wait for a password.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Where a remote stream lands on the cache.
pub fn landing_dir(cache: &Path, stream: &str) -> PathBuf {
    cache.join("landing").join(stream)
}

/// Mirror `host:path` into `landing` with rsync.
pub fn pull(host: &str, path: &str, landing: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(landing).with_context(|| format!("creating {}", landing.display()))?;
    let rsh = std::env::var("REEL_RSH").unwrap_or_else(|_| "ssh -o BatchMode=yes".into());
    let from = format!("{host}:{}/", path.trim_end_matches('/'));
    let mut to = landing.as_os_str().to_owned();
    to.push("/");
    let out = Command::new("rsync")
        .args(["-a", "--delete", "--partial-dir=.rsync-partial", "-e", &rsh])
        .arg(&from)
        .arg(&to)
        .output()
        .with_context(|| "running rsync (install the rsync package)")?;
    if !out.status.success() {
        // rsync's own last line ("unexplained error (code 255)") hides the
        // remote shell's reason: keep the last few lines, on one line.
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let tail = lines[lines.len().saturating_sub(3)..].join("; ");
        bail!(
            "rsync {from} {} failed ({}): {tail}",
            landing.display(),
            out.status
        );
    }
    Ok(())
}
