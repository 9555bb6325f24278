//! Metrics in the Prometheus text exposition format (issue #24), for
//! node_exporter's textfile collector: `[supervisor] metrics_file`,
//! rewritten atomically (a temporary file renamed over it) by every stage
//! program and the supervisor when they exit, and by the supervisor after
//! a stage that was killed and at the end of a pass. Everything comes from what is on disk — the spool, the
//! cache's file system, the catalog's tape states, drive health and
//! streams file, the telemetry sessions — so any program can write it and
//! the figures agree with `reel status`.
//!
//! Names follow Prometheus conventions: `reel_` first, the unit last
//! (`_bytes`, `_seconds`, `_ratio`), `_total` for counters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::config::Config;
use crate::spool::{Queue, Spool};

/// One metric family: its help, type, and samples (labels, value).
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, labels: Vec<(&'static str, String)>, value: f64) -> &mut Self {
        self.samples.push((labels, value));
        self
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        for (labels, value) in &self.samples {
            let _ = write!(out, "{}", self.name);
            if !labels.is_empty() {
                let l: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                let _ = write!(out, "{{{}}}", l.join(","));
            }
            let _ = writeln!(out, " {}", number(*value));
        }
    }
}

/// A label value escaped as the format asks: backslash, quote, newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn seconds_of(rfc3339: &str) -> Option<f64> {
    crate::time::rfc3339_ns(rfc3339).map(|ns| ns as f64 / 1e9)
}

/// The metrics now, as text.
pub fn render(config: &Config, spool: &Spool) -> anyhow::Result<String> {
    let catalog = &config.paths.catalog;
    let mut families = Vec::new();

    let mut items = Family::new(
        "reel_queue_items",
        "gauge",
        "Items waiting in a spool queue.",
    );
    let mut bytes = Family::new(
        "reel_queue_bytes",
        "gauge",
        "Bytes the records of a spool queue's items describe.",
    );
    let mut unreadable = Family::new(
        "reel_queue_unreadable_items",
        "gauge",
        "Items of a spool queue whose manifest cannot be read.",
    );
    for q in Queue::ALL {
        let s = crate::front::status::queue_status(spool, q)?;
        let label = vec![("queue", q.as_str().to_string())];
        items.add(label.clone(), s.items as f64);
        bytes.add(label.clone(), s.bytes as f64);
        unreadable.add(label, s.unreadable as f64);
    }
    families.extend([items, bytes, unreadable]);

    let mut failed = Family::new(
        "reel_failed_items",
        "gauge",
        "Items in failed/, by the stage that failed them.",
    );
    let mut by_stage: BTreeMap<String, usize> = BTreeMap::new();
    for f in spool.failed()? {
        *by_stage
            .entry(f.stage.unwrap_or_else(|| "unknown".into()))
            .or_default() += 1;
    }
    for stage in [
        "reel-scan",
        "reel-stage",
        "reel-pack",
        "reel-write",
        "reel-verify",
    ] {
        by_stage.entry(stage.to_string()).or_default();
    }
    for (stage, n) in by_stage {
        failed.add(vec![("stage", stage)], n as f64);
    }
    families.push(failed);

    let cache = &config.paths.cache;
    let (used, total) = crate::fsutil::fs_usage(cache)?;
    let mut c = Family::new(
        "reel_cache_used_bytes",
        "gauge",
        "Bytes used on the cache's file system.",
    );
    c.add(vec![], used as f64);
    let mut t = Family::new(
        "reel_cache_size_bytes",
        "gauge",
        "Size of the cache's file system.",
    );
    t.add(vec![], total as f64);
    let mut p = Family::new(
        "reel_cache_staging_paused",
        "gauge",
        "1 while staging waits for the cache to drain below low_water.",
    );
    p.add(
        vec![],
        f64::from(u8::from(cache.join(".reel-stage-paused").exists())),
    );
    families.extend([c, t, p]);

    let tapes = crate::catalog::tapes::all(catalog)?;
    let mut by_state = Family::new(
        "reel_tapes",
        "gauge",
        "Tapes the catalog knows, by pool, state and place.",
    );
    let mut counted: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    let mut written = Family::new(
        "reel_tape_written_bytes",
        "gauge",
        "Bytes of archives written to a tape.",
    );
    let mut verified = Family::new(
        "reel_tape_verified_bytes",
        "gauge",
        "Bytes of members verified on a tape.",
    );
    let mut loads = Family::new(
        "reel_tape_loads",
        "gauge",
        "Loads of a tape in its life, as its cartridge memory said.",
    );
    let mut errors = Family::new(
        "reel_tape_unrecovered_errors",
        "gauge",
        "Unrecovered read and write errors of a tape in its life, as the drive said.",
    );
    for tape in &tapes {
        let state = format!("{:?}", tape.state).to_lowercase();
        let place = tape.place.as_ref().map_or("library".to_string(), |p| {
            format!("{:?}", p.kind).to_lowercase()
        });
        *counted
            .entry((tape.pool.clone(), state, place))
            .or_default() += 1;
        let labels = vec![("tape", tape.label.clone()), ("pool", tape.pool.clone())];
        written.add(labels.clone(), tape.bytes as f64);
        verified.add(labels.clone(), tape.verified_bytes as f64);
        if let Some(n) = tape.cartridge.as_ref().and_then(|c| c.loads) {
            loads.add(labels.clone(), n as f64);
        }
        if let Some(v) = &tape.volume {
            errors.add(labels, v.unrecovered() as f64);
        }
    }
    for ((pool, state, place), n) in counted {
        by_state.add(
            vec![("pool", pool), ("state", state), ("place", place)],
            n as f64,
        );
    }
    families.extend([by_state, written, verified, loads, errors]);

    let mut alerts = Family::new(
        "reel_drive_tapealert_flags",
        "gauge",
        "TapeAlert flags up on a drive when reel last read them.",
    );
    for d in crate::catalog::drives::all(catalog)? {
        alerts.add(
            vec![("drive", d.drive.clone()), ("device", d.device.clone())],
            d.alerts.len() as f64,
        );
    }
    families.push(alerts);

    let mut last = Family::new(
        "reel_stream_last_verified_timestamp_seconds",
        "gauge",
        "When a stream last had members verified on tape (Unix time).",
    );
    for (stream, when) in crate::catalog::streams::last_verified(catalog) {
        if let Some(s) = seconds_of(&when) {
            last.add(vec![("stream", stream)], s);
        }
    }
    families.push(last);

    families.extend(write_sessions(&config.paths.log.join("telemetry"))?);

    let mut at = Family::new(
        "reel_metrics_timestamp_seconds",
        "gauge",
        "When this file was written (Unix time).",
    );
    at.add(vec![], crate::time::now_ns() as f64 / 1e9);
    families.push(at);

    let mut out = String::new();
    for f in &families {
        f.render(&mut out);
    }
    Ok(out)
}

/// What reel-write's telemetry sessions say: bytes, seconds and
/// starvations in all, and the last session's rate and ring fill.
fn write_sessions(dir: &Path) -> anyhow::Result<Vec<Family>> {
    let sessions = crate::front::stats::load(dir)?;
    let mut bytes = Family::new(
        "reel_write_bytes_total",
        "counter",
        "Bytes reel-write wrote to tape, from its telemetry.",
    );
    let mut secs = Family::new(
        "reel_write_seconds_total",
        "counter",
        "Seconds reel-write spent writing, from its telemetry.",
    );
    let mut starved = Family::new(
        "reel_write_starvations_total",
        "counter",
        "Times reel-write's ring ran dry while writing.",
    );
    let mut runs = Family::new(
        "reel_write_sessions_total",
        "counter",
        "reel-write runs on a tape (telemetry sessions).",
    );
    let mut rate = Family::new(
        "reel_write_last_rate_bytes_per_second",
        "gauge",
        "The last session's effective write rate.",
    );
    let mut fill = Family::new(
        "reel_write_last_ring_fill_ratio",
        "gauge",
        "The last session's mean ring fill (0 to 1).",
    );
    let (mut b, mut s, mut st) = (0u64, 0f64, 0u64);
    for x in &sessions {
        if let Some(last) = x.records.last() {
            b += last.bytes;
            s += last.elapsed_s;
            st += last.starvations;
        }
    }
    bytes.add(vec![], b as f64);
    secs.add(vec![], s);
    starved.add(vec![], st as f64);
    runs.add(vec![], sessions.len() as f64);
    let mut out = vec![bytes, secs, starved, runs];
    if let Some(x) = sessions.last() {
        let label = vec![("tape", x.tape.clone())];
        rate.add(label.clone(), x.rate().unwrap_or(0.0).max(0.0).round());
        fill.add(label, crate::front::stats::mean_fill(x));
        out.extend([rate, fill]);
    }
    Ok(out)
}

/// Rewrite `[supervisor] metrics_file` when one is configured. Never a
/// reason to fail: a problem is logged.
pub fn write(config: &Config) {
    let Some(file) = &config.supervisor.metrics_file else {
        return;
    };
    let done = crate::spool::Spool::open(&config.paths.spool)
        .map_err(anyhow::Error::from)
        .and_then(|spool| render(config, &spool))
        .and_then(|text| {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            crate::fsutil::write_atomic(file, text.as_bytes())?;
            // The collector runs as another user: the file is for reading.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644))?;
            Ok(())
        });
    if let Err(e) = done {
        log::warn!("metrics not written to {}: {e:#}", file.display());
    }
}
