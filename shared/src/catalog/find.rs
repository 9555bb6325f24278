//! Searching the catalog by path: `reel find` and `reel-restore`. The
//! journals are read as streams (nothing is loaded whole but the matches);
//! a pattern with glob characters (`*?[{`) is a glob over the whole path,
//! anything else a path prefix.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use globset::GlobMatcher;

use super::CatalogError;
use super::journal::{self, Entry};

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub patterns: Vec<String>,
    pub stream: Option<String>,
    /// Only versions verified at or before this time (RFC 3339, or a date).
    pub at: Option<String>,
    /// Every verified copy, not only the newest of each path.
    pub all_versions: bool,
}

enum Matcher {
    Glob(GlobMatcher),
    Prefix(Vec<u8>),
}

impl Matcher {
    fn new(pattern: &str) -> Result<Matcher, String> {
        let p = pattern.trim_start_matches('/');
        if p.contains(['*', '?', '[', '{']) {
            // `*` stays within a path component; `**` crosses them.
            globset::GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map(|g| Matcher::Glob(g.compile_matcher()))
                .map_err(|e| format!("pattern {pattern:?}: {e}"))
        } else {
            Ok(Matcher::Prefix(p.trim_end_matches('/').as_bytes().to_vec()))
        }
    }

    fn matches(&self, path: &[u8]) -> bool {
        match self {
            Matcher::Glob(g) => g.is_match(std::ffi::OsStr::from_bytes(path)),
            // A prefix of whole components, or of the name: "home/al"
            // finds "home/alice/…" too, as a prefix search should.
            Matcher::Prefix(p) => path.starts_with(p),
        }
    }
}

/// Compiled patterns, as `reel find` reads them.
pub struct Patterns(Vec<Matcher>);

impl Patterns {
    pub fn new(patterns: &[String]) -> Result<Patterns, String> {
        patterns
            .iter()
            .map(|p| Matcher::new(p))
            .collect::<Result<Vec<_>, _>>()
            .map(Patterns)
    }

    pub fn matches(&self, path: &[u8]) -> bool {
        self.0.iter().any(|m| m.matches(path))
    }
}

/// A time as 14 digits, yyyymmddhhmmss; a date alone is its midnight's
/// end of day when `end` (so `--at 2026-11-23` includes that day).
pub fn time_key(text: &str, end: bool) -> u64 {
    let digits: Vec<u64> = text
        .bytes()
        .filter(u8::is_ascii_digit)
        .take(14)
        .map(|d| u64::from(d - b'0'))
        .collect();
    let mut v = digits.iter().fold(0u64, |a, d| a * 10 + d);
    let fill = if end { [2, 3, 5, 9, 5, 9] } else { [0; 6] };
    let missing = 14usize.saturating_sub(digits.len());
    for k in 0..missing {
        v = v * 10 + fill.get(6 - missing + k).copied().unwrap_or(0);
    }
    v
}

/// The verified copies matching `q`, sorted by path (and, for every
/// version, by verify time).
pub fn search(catalog: &std::path::Path, q: &Query) -> Result<Vec<Entry>, CatalogError> {
    let patterns = Patterns::new(&q.patterns).map_err(CatalogError::Invalid)?;
    let at = q.at.as_deref().map(|t| time_key(t, true));
    // A file split across archives: each part is a version's piece.
    type Key = (String, PathBuf, Option<u32>);
    let mut newest: HashMap<Key, ((u64, u64), Entry)> = HashMap::new();
    let mut all: Vec<((u64, u64), Entry)> = Vec::new();
    let mut seq = 0u64;
    for path in journal::journals(catalog)? {
        journal::read(&path, |e| {
            seq += 1;
            if q.stream.as_ref().is_some_and(|s| *s != e.stream) {
                return Ok(());
            }
            let bytes = e.record.path.as_os_str().as_bytes();
            if !patterns.matches(bytes) {
                return Ok(());
            }
            let order = (time_key(&e.verified, false), seq);
            if at.is_some_and(|at| order.0 > at) {
                return Ok(());
            }
            if q.all_versions {
                all.push((order, e));
            } else {
                let k = (e.stream.clone(), e.record.path.clone(), e.record.part);
                if newest.get(&k).is_none_or(|(o, _)| *o < order) {
                    newest.insert(k, (order, e));
                }
            }
            Ok(())
        })?;
    }
    let mut out: Vec<((u64, u64), Entry)> = if q.all_versions {
        all
    } else {
        newest.into_values().collect()
    };
    out.sort_by(|(oa, a), (ob, b)| {
        (a.record.path.as_os_str().as_bytes(), &a.stream, oa).cmp(&(
            b.record.path.as_os_str().as_bytes(),
            &b.stream,
            ob,
        ))
    });
    Ok(out.into_iter().map(|(_, e)| e).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_compare_as_digits_and_a_date_means_its_whole_day() {
        assert_eq!(time_key("2026-11-23T10:15:00Z", false), 20261123101500);
        assert_eq!(time_key("2026-11-23", true), 20261123235959);
        assert_eq!(time_key("2026-11-23", false), 20261123000000);
        assert!(time_key("2026-11-23T10:15:00Z", false) < time_key("2026-11-23", true));
    }

    #[test]
    fn globs_match_whole_paths_and_prefixes_match_starts() {
        let g = Matcher::new("docs/*.txt").unwrap();
        assert!(g.matches(b"docs/a.txt"));
        assert!(!g.matches(b"docs/a.pdf"));
        assert!(!g.matches(b"docs/deep/a.txt"), "* stays in its component");
        assert!(
            Matcher::new("docs/**/*.txt")
                .unwrap()
                .matches(b"docs/deep/a.txt")
        );
        let p = Matcher::new("/home/al").unwrap();
        assert!(p.matches(b"home/alice/x"));
        assert!(!p.matches(b"home/bob"));
        assert!(Matcher::new("[").is_err());
    }
}
