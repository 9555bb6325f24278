//! `reel stats [TAPE]`: what the telemetry records of reel-write say about
//! tapes and drives. Each `<log>/telemetry/<LABEL>-<start>.jsonl` is one
//! run on one tape; a least-squares line through its (time, bytes) points
//! is the run's effective rate. A run much slower than the history of its
//! tape, or of all runs, is flagged: dirty heads and worn media show up as
//! a drive or a tape slowing down.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::catalog::tapes::Tape;
use crate::config::Config;
use crate::exit::Exit;
use crate::telemetry::{fit, mbs, slower_than};
use crate::units::Size;
use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    /// `start` and `end` records begin and close a session; the others
    /// come every few seconds while writing.
    #[serde(default)]
    pub event: Option<String>,
    /// Since the session began.
    pub elapsed_s: f64,
    pub tape: String,
    pub bytes: u64,
    pub rate: u64,
    pub ring_fill: f64,
    pub starvations: u64,
}

/// One run of reel-write on one tape.
#[derive(Debug)]
pub struct Session {
    pub file: PathBuf,
    pub tape: String,
    pub records: Vec<Record>,
}

impl Session {
    /// The least-squares slope of bytes over time, bytes per second.
    pub fn rate(&self) -> Option<f64> {
        fit(self.records.iter().map(|r| (r.elapsed_s, r.bytes as f64)))
    }

    fn starved(&self) -> bool {
        self.records.last().is_some_and(|r| r.starvations > 0)
    }
}

/// Every session under `dir`, oldest first (the file names sort by start).
pub fn load(dir: &Path) -> anyhow::Result<Vec<Session>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(d) => d
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    // <LABEL>-<start>[-<n>].jsonl: by start time, then n, then label.
    files.sort_by_key(|p| {
        let stem = p
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let mut parts: Vec<&str> = stem.rsplit('-').collect();
        let n = match parts.first().map(|s| s.parse::<u32>()) {
            Some(Ok(n)) if parts.len() > 2 && parts[0].len() < 4 => {
                parts.remove(0);
                n
            }
            _ => 1,
        };
        let start = parts.first().map(|s| s.to_string());
        (start, n, stem)
    });
    let mut sessions = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let mut records = Vec::new();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let r: Record = serde_json::from_str(line).map_err(|e| {
                crate::exit::ExitError::new(
                    Exit::Data,
                    format!("{}:{}: {e}", file.display(), n + 1),
                )
            })?;
            records.push(r);
        }
        if let Some(tape) = records.first().map(|r| r.tape.clone()) {
            sessions.push(Session {
                file,
                tape,
                records,
            });
        }
    }
    Ok(sessions)
}

pub fn run(
    config: &Config,
    tape: Option<&str>,
    plot: Option<&Path>,
    json: bool,
) -> anyhow::Result<Exit> {
    let sessions = load(&config.paths.log.join("telemetry"))?;
    let chosen: Vec<&Session> = sessions
        .iter()
        .filter(|s| tape.is_none_or(|t| s.tape == t))
        .collect();
    if chosen.is_empty() {
        let what = tape.map_or("any tape".to_string(), |t| format!("tape {t}"));
        return Err(crate::exit::ExitError::new(
            Exit::NoInput,
            format!(
                "no telemetry for {what} in {}",
                config.paths.log.join("telemetry").display()
            ),
        )
        .into());
    }
    let all: Vec<(usize, f64)> = sessions
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.rate().map(|r| (i, r)))
        .collect();
    let mut report = Vec::new();
    for s in &chosen {
        let index = sessions
            .iter()
            .position(|x| std::ptr::eq(x, *s))
            .expect("from the list");
        let rate = s.rate();
        let before = |same_tape: bool| -> Vec<f64> {
            all.iter()
                .filter(|(i, _)| *i < index && (!same_tape || sessions[*i].tape == s.tape))
                .map(|(_, r)| *r)
                .collect()
        };
        let mut flags = Vec::new();
        if let Some(r) = rate {
            if s.starved() {
                // The source set the pace, not the drive: no verdict.
            } else {
                if let Some(f) = slower_than(r, &before(true), &format!("tape {}'s runs", s.tape)) {
                    flags.push(format!("slow: {f} (worn or dirty tape?)"));
                }
                if let Some(f) = slower_than(r, &before(false), "all runs") {
                    flags.push(format!("slow: {f} (clean the drive's heads?)"));
                }
            }
        }
        let catalog = Tape::load(&config.paths.catalog, &s.tape)?;
        let eta = match (rate, &catalog) {
            (Some(r), Some(t)) if r > 0.0 => {
                let left = config.smallest_capacity().0.saturating_sub(t.bytes);
                Some(left as f64 / r)
            }
            _ => None,
        };
        let last = s.records.last().expect("a session has records");
        report.push(serde_json::json!({
            "tape": s.tape,
            "telemetry": s.file.display().to_string(),
            "records": s.records.len(),
            "seconds": last.elapsed_s,
            "bytes": last.bytes,
            "rate": rate.map(|r| r as u64),
            "starvations": last.starvations,
            "mean_ring_fill": mean_fill(s),
            "eta_to_full_s": eta.map(|e| e.round() as u64),
            "flags": flags,
        }));
    }
    if json {
        crate::outln!("{}", serde_json::Value::Array(report.clone()))?;
    } else {
        crate::outln!(
            "{:<10} {:>7} {:>10} {:>12} {:>6} {:>10}  flags",
            "tape",
            "seconds",
            "bytes",
            "rate",
            "starve",
            "full in"
        )?;
        for r in &report {
            crate::outln!(
                "{:<10} {:>7.0} {:>10} {:>12} {:>6} {:>10}  {}",
                r["tape"].as_str().unwrap_or(""),
                r["seconds"].as_f64().unwrap_or(0.0),
                Size(r["bytes"].as_u64().unwrap_or(0)).human(),
                r["rate"].as_u64().map_or("-".into(), |x| mbs(x as f64)),
                r["starvations"],
                r["eta_to_full_s"]
                    .as_u64()
                    .map_or("-".into(), |s| format!("{:.1} h", s as f64 / 3600.0)),
                r["flags"]
                    .as_array()
                    .map(|f| f
                        .iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join("; "))
                    .unwrap_or_default()
            )?;
        }
    }
    if let Some(path) = plot {
        std::fs::write(path, svg(&chosen))
            .with_context(|| format!("writing {}", path.display()))?;
        log::info!("plot written to {}", path.display());
    }
    Ok(Exit::Ok)
}

/// The mean ring fill of the records taken while writing (the start and
/// end records say nothing of it); 0 when there are none.
pub(crate) fn mean_fill(s: &Session) -> f64 {
    let fills: Vec<f64> = s
        .records
        .iter()
        .filter(|r| r.event.is_none())
        .map(|r| r.ring_fill)
        .collect();
    if fills.is_empty() {
        0.0
    } else {
        fills.iter().sum::<f64>() / fills.len() as f64
    }
}

/// Seconds, MB/s, ring fill in %.
type Point = (f64, f64, f64);

/// Rate (MB/s, left axis) and ring fill (%, right axis) over time, the
/// sessions one after the other.
pub fn svg(sessions: &[&Session]) -> String {
    const W: f64 = 900.0;
    const H: f64 = 320.0;
    const L: f64 = 60.0;
    const R: f64 = 50.0;
    const T: f64 = 30.0;
    const B: f64 = 40.0;
    let mut points: Vec<Point> = Vec::new();
    let mut offset = 0.0;
    for s in sessions {
        for r in &s.records {
            points.push((
                offset + r.elapsed_s,
                r.rate as f64 / 1e6,
                r.ring_fill * 100.0,
            ));
        }
        offset += s.records.last().map_or(0.0, |r| r.elapsed_s);
    }
    let t_max = points.iter().map(|p| p.0).fold(1.0, f64::max);
    let r_max = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let x = |t: f64| L + (W - L - R) * t / t_max;
    let y = |v: f64, max: f64| T + (H - T - B) * (1.0 - v / max);
    let line = |f: &dyn Fn(&Point) -> (f64, f64)| {
        points
            .iter()
            .map(|p| {
                let (a, b) = f(p);
                format!("{a:.1},{b:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">
<rect width="{W}" height="{H}" fill="white"/>
<text x="{L}" y="18">reel-write: rate (MB/s, blue) and ring fill (%, orange) over {t_max:.0} s</text>
<line x1="{L}" y1="{yb}" x2="{xr}" y2="{yb}" stroke="black"/>
<line x1="{L}" y1="{T}" x2="{L}" y2="{yb}" stroke="black"/>
<line x1="{xr}" y1="{T}" x2="{xr}" y2="{yb}" stroke="black"/>
<text x="{L}" y="{yl}" text-anchor="middle">0</text>
<text x="{xr}" y="{yl}" text-anchor="middle">{t_max:.0} s</text>
<text x="{lx}" y="{T}" text-anchor="end">{r_max:.0}</text>
<text x="{lx}" y="{yb}" text-anchor="end">0</text>
<text x="{rx}" y="{T}">100 %</text>
<text x="{rx}" y="{yb}">0 %</text>
<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{rate}"/>
<polyline fill="none" stroke="#ff7f0e" stroke-width="1.5" points="{fill}"/>
</svg>
"##,
        yb = H - B,
        xr = W - R,
        yl = H - B + 16.0,
        lx = L - 6.0,
        rx = W - R + 6.0,
        rate = line(&|p| (x(p.0), y(p.1, r_max))),
        fill = line(&|p| (x(p.0), y(p.2, 100.0))),
    );
    out
}
