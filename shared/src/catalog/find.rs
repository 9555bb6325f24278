//! Searching the catalog by path: `reel find` and `reel-restore`. The
//! journals are read as streams (nothing is loaded whole but the matches);
//! a pattern with glob characters (`*?[{`) is a glob over the whole path,
//! anything else a path prefix.

use std::collections::{BTreeMap, HashMap};
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
    /// Only versions taken from the source at or before this time (see
    /// `time::parse_at` for what it may be).
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

/// The verified copies matching `q`, sorted by path (and, for every
/// version, by when each was taken from the source).
pub fn search(catalog: &std::path::Path, q: &Query) -> Result<Vec<Entry>, CatalogError> {
    let patterns = Patterns::new(&q.patterns).map_err(CatalogError::Query)?;
    match search_indexed(catalog, q, &patterns) {
        Ok(Some(found)) => return Ok(found),
        Ok(None) => {}
        // Never trusted, never "nothing matches": rebuilt from the
        // journals and asked again; where it cannot be rebuilt (no write
        // access to the catalog), the journals answer.
        Err(CatalogError::Damaged(why)) => {
            log::warn!("the catalog index is damaged ({why}): rebuilding it from the journals");
            match super::rebuild::rebuild(catalog, super::rebuild::DEFAULT_CHUNK) {
                Ok(_) => {
                    if let Some(found) = search_indexed(catalog, q, &patterns)? {
                        return Ok(found);
                    }
                }
                Err(e) => log::warn!("cannot rebuild it ({e}): reading the journals instead"),
            }
        }
        Err(e) => return Err(e),
    }
    search_journals(catalog, q, &patterns)
}

/// The literal start of a pattern: what every match begins with.
fn literal_prefix(pattern: &str) -> &str {
    let p = pattern.trim_start_matches('/');
    if !p.contains(['*', '?', '[', '{']) {
        // A prefix pattern matches by its bytes; a trailing '/' was trimmed.
        return p.trim_end_matches('/');
    }
    // In a glob, a backslash escapes what follows: the start stops there.
    &p[..p.find(['*', '?', '[', '{', '\\']).unwrap_or(p.len())]
}

/// The literal runs of a glob: bytes that every path it matches contains
/// as they are. `None` where the glob is not read with certainty here (a
/// class or an alternation holding an escape, a bracket, a brace): then no
/// run is promised. A `/` next to a `*` is left out (`**/` matches no
/// directory at all), and so is everything inside `[…]` and `{…}`.
fn literal_runs(glob: &str) -> Option<Vec<Vec<u8>>> {
    let b = glob.trim_start_matches('/').as_bytes();
    let (mut runs, mut run) = (Vec::new(), Vec::new());
    let mut end_run = |run: &mut Vec<u8>| {
        if !run.is_empty() {
            runs.push(std::mem::take(run));
        }
    };
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                run.push(*b.get(i + 1)?);
                i += 2;
            }
            b'*' => {
                if run.last() == Some(&b'/') {
                    run.pop();
                }
                end_run(&mut run);
                while b.get(i) == Some(&b'*') {
                    i += 1;
                }
                if b.get(i) == Some(&b'/') {
                    i += 1;
                }
            }
            b'?' => {
                end_run(&mut run);
                i += 1;
            }
            b'[' => {
                end_run(&mut run);
                let mut j = i + 1;
                if matches!(b.get(j), Some(b'!' | b'^')) {
                    j += 1;
                }
                if b.get(j) == Some(&b']') {
                    j += 1;
                }
                let close = j + b.get(j..)?.iter().position(|&c| c == b']')?;
                if b[i + 1..close].iter().any(|c| b"\\[{}".contains(c)) {
                    return None;
                }
                i = close + 1;
            }
            b'{' => {
                end_run(&mut run);
                let close = i + b[i..].iter().position(|&c| c == b'}')?;
                if b[i + 1..close].iter().any(|c| b"\\[]{".contains(c)) {
                    return None;
                }
                i = close + 1;
            }
            c => {
                run.push(c);
                i += 1;
            }
        }
    }
    end_run(&mut run);
    Some(runs)
}

/// What to search the names of a pattern's range for: its longest literal
/// run that its literal start (the range) does not already promise; empty
/// for a prefix, or when the glob has none.
fn needle(pattern: &str) -> Vec<u8> {
    let p = pattern.trim_start_matches('/');
    if !p.contains(['*', '?', '[', '{']) {
        return Vec::new();
    }
    let start = literal_prefix(p).as_bytes();
    literal_runs(p)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter(|(i, run)| !(*i == 0 && !start.is_empty() && start.starts_with(run)))
        .map(|(_, run)| run)
        .max_by_key(Vec::len)
        .unwrap_or_default()
}

/// The path within a name of `stream` (`stream NUL path NUL part`).
fn path_of<'a>(name: &'a [u8], stream: &str) -> Option<&'a [u8]> {
    name.get(stream.len() + 1..name.len().checked_sub(5)?)
}

/// The newest copies through the generation's path index plus the
/// journals' tails; `None` when there is no path index or the query needs
/// every version or a point in time (the journals then).
fn search_indexed(
    catalog: &std::path::Path,
    q: &Query,
    patterns: &Patterns,
) -> Result<Option<Vec<Entry>>, CatalogError> {
    if q.all_versions || q.at.is_some() {
        return Ok(None);
    }
    let Some(state) = super::generation::current_state(catalog) else {
        return Ok(None);
    };
    // A journal no longer what the generation indexed (shorter, or gone):
    // its line offsets cannot be trusted; read the journals instead.
    if super::generation::delta_bytes(catalog)?.is_none() {
        return Ok(None);
    }
    let dir = catalog.join("index").join("current");
    let Some(names) = super::names::Names::open(&dir)? else {
        return Ok(None);
    };
    if state.journal_ids.is_empty() && !names.is_empty() {
        return Ok(None);
    }
    let tapes = catalog.join("tapes");
    // The streams: the first name, then past its stream, and so on.
    let streams: Vec<String> = match &q.stream {
        Some(s) => vec![s.clone()],
        None => {
            let mut out = Vec::new();
            let mut from: Vec<u8> = Vec::new();
            while let Some((n, _, _)) = names.at_or_after(&from)? {
                let s = &n[..n.iter().position(|&b| b == 0).unwrap_or(n.len())];
                out.push(String::from_utf8_lossy(s).into_owned());
                from = [s, &[1u8][..]].concat(); // past "stream\0…"
            }
            out
        }
    };
    type Key = (String, PathBuf, Option<u32>);
    let mut found: HashMap<Key, Entry> = HashMap::new();
    for stream in &streams {
        for p in &q.patterns {
            let prefix = [stream.as_bytes(), b"\0", literal_prefix(p).as_bytes()].concat();
            let range = names.prefix_range(&prefix)?;
            let hits = names.matching(range, &needle(p), |name| {
                path_of(name, stream).is_some_and(|path| patterns.matches(path))
            })?;
            for (_, jid, offset) in hits {
                let Some(journal) = state.journal_ids.get(jid as usize) else {
                    continue;
                };
                let e = journal::entry_at(&tapes.join(journal), offset)?;
                found.insert((e.stream.clone(), e.record.path.clone(), e.record.part), e);
            }
        }
    }
    // What was appended since the generation was built.
    for path in journal::journals(catalog)? {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let covered = state.journals.get(&file).copied().unwrap_or(0);
        if std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) <= covered {
            continue;
        }
        journal::read_from(&path, covered, |e| {
            if q.stream.as_ref().is_some_and(|s| *s != e.stream)
                || !patterns.matches(e.record.path.as_os_str().as_bytes())
            {
                return Ok(());
            }
            let k = (e.stream.clone(), e.record.path.clone(), e.record.part);
            let newer = found
                .get(&k)
                .is_none_or(|old| old.version_key() <= e.version_key());
            if newer {
                found.insert(k, e);
            }
            Ok(())
        })?;
    }
    let mut out: Vec<Entry> = found.into_values().collect();
    // The index keeps the newest copy of each part: where a path's parts are
    // not one whole version, the journals choose (a file split in parts is
    // rare; its versions are read in full there).
    let mut pieces: HashMap<(&str, &std::path::Path), Vec<&Entry>> = HashMap::new();
    for e in &out {
        pieces
            .entry((&e.stream, &e.record.path))
            .or_default()
            .push(e);
    }
    if pieces
        .values()
        .any(|v| v.len() > 1 && !one_whole_version(v))
    {
        return Ok(None);
    }
    out.sort_by(|a, b| {
        (
            a.record.path.as_os_str().as_bytes(),
            &a.stream,
            a.record.part,
            &a.verified,
        )
            .cmp(&(
                b.record.path.as_os_str().as_bytes(),
                &b.stream,
                b.record.part,
                &b.verified,
            ))
    });
    Ok(Some(out))
}

/// The same answers from the journals alone, start to end.
fn search_journals(
    catalog: &std::path::Path,
    q: &Query,
    patterns: &Patterns,
) -> Result<Vec<Entry>, CatalogError> {
    let at =
        q.at.as_deref()
            .map(crate::time::parse_at)
            .transpose()
            .map_err(|e| CatalogError::Query(format!("--at: {e}")))?;
    let mut newest: HashMap<(String, PathBuf), Versions> = HashMap::new();
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
            let order = (e.version_key(), seq);
            if at.is_some_and(|at| e.taken_ns() > at) {
                return Ok(());
            }
            if q.all_versions {
                all.push((order, e));
            } else {
                newest
                    .entry((e.stream.clone(), e.record.path.clone()))
                    .or_default()
                    .add(order, e);
            }
            Ok(())
        })?;
    }
    let mut out: Vec<((u64, u64), Entry)> = if q.all_versions {
        all
    } else {
        newest.into_values().flat_map(Versions::choose).collect()
    };
    out.sort_by(|(oa, a), (ob, b)| {
        (
            a.record.path.as_os_str().as_bytes(),
            &a.stream,
            a.record.part,
            oa,
        )
            .cmp(&(
                b.record.path.as_os_str().as_bytes(),
                &b.stream,
                b.record.part,
                ob,
            ))
    });
    Ok(out.into_iter().map(|(_, e)| e).collect())
}

/// What the journals hold of one path: its newest whole copy, and every
/// version of it that was split in parts (the newest may lack a part: a
/// tape not yet verified, or a file that changed between its parts).
#[derive(Default)]
struct Versions {
    whole: Option<Ordered>,
    /// By version, by part number: the last copy of each.
    split: BTreeMap<u64, BTreeMap<u32, Ordered>>,
}

/// A copy with its place in the order of versions: (version, journal line).
type Ordered = ((u64, u64), Entry);

impl Versions {
    fn add(&mut self, order: (u64, u64), e: Entry) {
        match e.record.part {
            None => {
                if self.whole.as_ref().is_none_or(|(o, _)| *o < order) {
                    self.whole = Some((order, e));
                }
            }
            Some(n) => {
                let parts = self.split.entry(order.0).or_default();
                if parts.get(&n).is_none_or(|(o, _)| *o < order) {
                    parts.insert(n, (order, e));
                }
            }
        }
    }

    /// The newest version that is whole; where none is, the newest (whose
    /// restore then names what is missing). Never parts of two versions.
    fn choose(self) -> Vec<Ordered> {
        let whole_key = self.whole.as_ref().map(|((k, _), _)| *k);
        let newest_split = |complete_only: bool| {
            self.split
                .iter()
                .rev()
                .find(|(_, parts)| {
                    !complete_only
                        || one_whole_version(&parts.values().map(|(_, e)| e).collect::<Vec<_>>())
                })
                .map(|(k, _)| *k)
        };
        let pick = match (whole_key, newest_split(true)) {
            (Some(w), Some(s)) if s > w => Some(s),
            (Some(_), _) => None,
            (None, Some(s)) => Some(s),
            (None, None) => newest_split(false),
        };
        match pick {
            Some(k) => {
                let mut split = self.split;
                split
                    .remove(&k)
                    .map(|parts| parts.into_values().collect())
                    .unwrap_or_default()
            }
            None => self.whole.into_iter().collect(),
        }
    }
}

/// Whether copies of one path are one version, whole (see [`is_whole`]).
fn one_whole_version(copies: &[&Entry]) -> bool {
    let version = copies.first().map(|e| e.version_key());
    copies.iter().all(|e| Some(e.version_key()) == version)
        && is_whole(&copies.iter().map(|e| &e.record).collect::<Vec<_>>())
}

/// Whether records of one version of a file make the whole file: a single
/// unsplit copy, or parts numbered from 1 with none missing, each starting
/// where the one before ended and the last ending at the file's size.
/// Parts recorded without their length (before reel wrote `part_len`) are
/// judged on their numbers alone.
pub fn is_whole(copies: &[&crate::manifest::Record]) -> bool {
    if let [only] = copies
        && only.part.is_none()
    {
        return true;
    }
    let mut parts = copies.to_vec();
    parts.sort_by_key(|r| r.part);
    let Some(size) = parts.first().map(|r| r.size) else {
        return false;
    };
    let mut at = 0u64;
    for (i, r) in parts.iter().enumerate() {
        if r.part != Some(i as u32 + 1) || r.size != size {
            return false;
        }
        match (r.part_offset, r.part_len) {
            (Some(off), Some(len)) if off == at => at = off.saturating_add(len),
            (_, None) => at = size,
            _ => return false,
        }
    }
    at == size
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn entry(
        tape: &str,
        stream: &str,
        path: &[u8],
        size: u64,
        verified: &str,
        part: Option<u32>,
    ) -> Entry {
        use std::os::unix::ffi::OsStringExt;
        let mut r = crate::manifest::Record::new(
            PathBuf::from(std::ffi::OsString::from_vec(path.to_vec())),
            crate::manifest::EntryType::File,
        );
        r.size = size;
        r.part = part;
        r.tape = Some(tape.into());
        r.file = Some(size);
        r.block = Some(size * 2);
        Entry {
            stream: stream.into(),
            verified: verified.into(),
            record: r,
        }
    }

    /// Part `n` of 3 of a 30-byte file taken at `taken`.
    fn part(tape: &str, path: &[u8], taken: i64, n: u32) -> Entry {
        let mut e = entry(tape, "home", path, 30, "2026-11-01T10:00:00Z", Some(n));
        e.record.taken_ns = Some(taken);
        e.record.part_offset = Some(u64::from(n - 1) * 10);
        e.record.part_len = Some(10);
        e
    }

    #[test]
    fn a_split_file_comes_back_as_one_whole_version_never_a_mix() {
        let dir = tempfile::tempdir().unwrap();
        let cat = dir.path();
        let mut whole = entry("T1", "home", b"now-whole", 7, "2026-11-02T10:00:00Z", None);
        whole.record.taken_ns = Some(300);
        journal::append(
            cat,
            "T1",
            &[
                // "big": version 100 whole on T1, version 200 lacks part 3.
                part("T1", b"big", 100, 1),
                part("T1", b"big", 100, 2),
                part("T1", b"big", 100, 3),
                part("T1", b"big", 200, 1),
                part("T1", b"big", 200, 2),
                // "lost": its only version lacks part 2.
                part("T1", b"lost", 100, 1),
                part("T1", b"lost", 100, 3),
                // "now-whole": split once, whole since.
                part("T1", b"now-whole", 100, 1),
                part("T1", b"now-whole", 100, 2),
                part("T1", b"now-whole", 100, 3),
                whole,
            ],
        )
        .unwrap();
        let got = |indexed: bool| -> Vec<(Vec<u8>, Option<u32>, Option<i64>)> {
            let q = Query {
                patterns: vec![String::new()],
                ..Query::default()
            };
            let ps = Patterns::new(&q.patterns).unwrap();
            let found = if indexed {
                super::super::rebuild(cat, 2).unwrap();
                search(cat, &q).unwrap()
            } else {
                search_journals(cat, &q, &ps).unwrap()
            };
            found
                .into_iter()
                .map(|e| {
                    (
                        e.record.path.as_os_str().as_bytes().to_vec(),
                        e.record.part,
                        e.record.taken_ns,
                    )
                })
                .collect()
        };
        let want: Vec<(Vec<u8>, Option<u32>, Option<i64>)> = vec![
            (b"big".to_vec(), Some(1), Some(100)),
            (b"big".to_vec(), Some(2), Some(100)),
            (b"big".to_vec(), Some(3), Some(100)),
            (b"lost".to_vec(), Some(1), Some(100)),
            (b"lost".to_vec(), Some(3), Some(100)),
            (b"now-whole".to_vec(), None, Some(300)),
        ];
        assert_eq!(got(false), want, "from the journals");
        assert_eq!(got(true), want, "through the path index");
    }

    #[test]
    fn the_path_index_and_the_journals_give_the_same_answers() {
        let dir = tempfile::tempdir().unwrap();
        let cat = dir.path();
        let day = |d: u32| format!("2026-11-{d:02}T10:00:00Z");
        journal::append(
            cat,
            "T1",
            &[
                entry("T1", "home", b"a/one", 1, &day(1), None),
                entry("T1", "home", b"a/two", 2, &day(1), None),
                entry("T1", "home", b"b/\xffodd", 3, &day(1), None),
                entry("T1", "work", b"a/one", 4, &day(1), None),
                entry("T1", "home", b"big", 6, &day(1), Some(1)),
                entry("T1", "home", b"big", 6, &day(1), Some(2)),
            ],
        )
        .unwrap();
        journal::append(
            cat,
            "T2",
            &[
                entry("T2", "home", b"a/one", 7, &day(3), None),
                // An older verification recorded later loses.
                entry("T2", "home", b"a/two", 8, &day(0), None),
            ],
        )
        .unwrap();
        super::super::rebuild(cat, 2).unwrap();
        // Appended after the build: the delta.
        journal::append(
            cat,
            "T2",
            &[
                entry("T2", "home", b"a/three", 9, &day(4), None),
                entry("T2", "home", b"a/one", 10, &day(5), None),
                entry("T2", "work", b"a/two", 11, &day(2), None),
            ],
        )
        .unwrap();
        let show = |v: Vec<Entry>| -> Vec<(String, Vec<u8>, u64)> {
            v.into_iter()
                .map(|e| {
                    (
                        e.stream,
                        e.record.path.as_os_str().as_bytes().to_vec(),
                        e.record.size,
                    )
                })
                .collect()
        };
        for (patterns, stream) in [
            (vec!["a"], None),
            (vec!["a/"], Some("home")),
            (vec!["*/o*"], None),
            (vec!["", "big"], None),
            (vec!["b/*"], None),
            (vec!["nothing"], None),
        ] {
            let q = Query {
                patterns: patterns.iter().map(|p| p.to_string()).collect(),
                stream: stream.map(str::to_string),
                at: None,
                all_versions: false,
            };
            let ps = Patterns::new(&q.patterns).unwrap();
            let indexed = search_indexed(cat, &q, &ps).unwrap().expect("a path index");
            let scanned = search_journals(cat, &q, &ps).unwrap();
            assert_eq!(show(indexed), show(scanned), "{patterns:?} {stream:?}");
        }
        let q = Query {
            patterns: vec!["a/".into()],
            stream: Some("home".into()),
            ..Query::default()
        };
        let sizes: Vec<u64> = search(cat, &q)
            .unwrap()
            .iter()
            .map(|e| e.record.size)
            .collect();
        assert_eq!(
            sizes,
            [10, 9, 2],
            "newest a/one, a/three, and a/two's newer copy"
        );
    }

    #[test]
    fn a_prefix_with_a_trailing_slash_is_a_prefix_and_promises_no_run() {
        // What the property below once took for a glob: "a/" is the
        // prefix "a", and the search looks for no literal run of it.
        let m = Matcher::new("a/").unwrap();
        assert!(m.matches(b"aa") && m.matches(b"a/b") && !m.matches(b"ba"));
        assert_eq!(literal_prefix("a/"), "a");
        assert!(needle("a/").is_empty());
    }

    /// Globs of a small alphabet, so that they often match `path()`s.
    fn glob() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let token = prop::sample::select(vec![
            "a", "b", "ab", "ba", "/", ".", "*", "**", "**/", "/**", "/**/", "?", "[ab]", "[!a]",
            "[]a]", "{a,b}", "{ab,/}", "\\*", "\\a", "[\\]]", "{a,[b]}",
        ]);
        prop::collection::vec(token, 1..7).prop_map(|t| t.concat())
    }

    fn path() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        prop::collection::vec(prop::sample::select(b"ab/.*]".to_vec()), 1..9)
    }

    proptest::proptest! {
        /// What the search relies on: a path a pattern matches starts with
        /// its literal start, and a path a glob matches holds each of the
        /// glob's literal runs (a prefix pattern has none: `needle` gives
        /// it nothing to search for; "a/" is the prefix "a", which "aa"
        /// has).
        #[test]
        fn every_match_holds_the_literal_start_and_runs(g in glob(), p in path()) {
            if let Ok(m) = Matcher::new(&g) && m.matches(&p) {
                proptest::prop_assert!(p.starts_with(literal_prefix(&g).as_bytes()), "{g:?} {p:?}");
                let runs = match m {
                    Matcher::Glob(_) => literal_runs(&g).unwrap_or_default(),
                    Matcher::Prefix(_) => Vec::new(),
                };
                let needle = needle(&g);
                proptest::prop_assert!(
                    p.windows(needle.len().max(1)).any(|w| needle.is_empty() || w == needle.as_slice()),
                    "{g:?} matches {:?} without its needle {:?}", String::from_utf8_lossy(&p), String::from_utf8_lossy(&needle)
                );
                for run in runs {
                    proptest::prop_assert!(
                        p.windows(run.len()).any(|w| w == run.as_slice()),
                        "{g:?} matches {:?} without {:?}", String::from_utf8_lossy(&p), String::from_utf8_lossy(&run)
                    );
                }
            }
        }

        /// The path index's search (literal start, needle, windows of any
        /// size on every core) finds exactly the names a test of every
        /// name finds.
        #[test]
        fn the_search_of_the_names_is_a_test_of_every_name(
            paths in proptest::collection::vec((path(), 0u32..3), 0..60),
            globs in proptest::collection::vec(glob(), 1..4),
            window in 1usize..40,
            stripe in 1usize..9,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut b = super::super::names::Builder::new(dir.path(), 1 << 10);
            for (n, (p, part)) in paths.iter().enumerate() {
                for stream in ["a", "ab"] {
                    let name = super::super::names::name(stream, p, (*part > 0).then_some(*part));
                    b.push(name, (n as u64, 0), 0, n as u64).unwrap();
                }
            }
            b.finish_into(dir.path()).unwrap();
            for f in ["names.idx", "names.bin"] {
                super::super::checked::write_sums(&dir.path().join(f)).unwrap();
            }
            let Some(names) = super::super::names::Names::open(dir.path()).unwrap() else {
                proptest::prop_assert!(paths.is_empty());
                return Ok(());
            };
            for g in &globs {
                let Ok(m) = Matcher::new(g) else { continue };
                for stream in ["a", "ab"] {
                    let brute: Vec<usize> = (0..names.len())
                        .filter(|&i| {
                            let name = names.get(i).unwrap().0;
                            name.starts_with(format!("{stream}\0").as_bytes())
                                && path_of(name, stream).is_some_and(|p| m.matches(p))
                        })
                        .collect();
                    let prefix = [stream.as_bytes(), b"\0", literal_prefix(g).as_bytes()].concat();
                    let range = names.prefix_range(&prefix).unwrap();
                    let keep = |name: &[u8]| path_of(name, stream).is_some_and(|p| m.matches(p));
                    let index = |hits: Vec<super::super::names::Hit>| -> Vec<usize> {
                        hits.into_iter().map(|h| h.0).collect()
                    };
                    let found = index(names
                        .matching_by(range.clone(), &needle(g), keep, (window, stripe))
                        .unwrap());
                    proptest::prop_assert_eq!(&found, &brute, "{:?} in {}, needle {:?}", g, stream, String::from_utf8_lossy(&needle(g)));
                    let found = index(names.matching_by(range, b"", keep, (window, stripe)).unwrap());
                    proptest::prop_assert_eq!(&found, &brute, "{:?} in {} without a needle", g, stream);
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// A path index whose entries were changed behind reel's back (and
        /// their checksums with them) gives an answer or an error, never a
        /// panic, whatever its offsets and lengths say.
        #[test]
        fn a_forged_path_index_is_an_answer_or_damage_never_a_panic(
            paths in proptest::collection::vec(path(), 1..30),
            forged in proptest::collection::vec((0usize..30 * 24, proptest::prelude::any::<u8>()), 1..6),
            g in glob(),
            window in 1usize..40,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut b = super::super::names::Builder::new(dir.path(), 1 << 10);
            for (n, p) in paths.iter().enumerate() {
                b.push(super::super::names::name("a", p, None), (n as u64, 0), 0, 0).unwrap();
            }
            b.finish_into(dir.path()).unwrap();
            let idx = dir.path().join("names.idx");
            let mut bytes = std::fs::read(&idx).unwrap();
            for (at, v) in &forged {
                let at = 16 + at % (bytes.len() - 16);
                bytes[at] = *v;
            }
            std::fs::write(&idx, &bytes).unwrap();
            for f in ["names.idx", "names.bin"] {
                super::super::checked::write_sums(&dir.path().join(f)).unwrap();
            }
            let names = super::super::names::Names::open(dir.path()).unwrap().unwrap();
            let Ok(m) = Matcher::new(&g) else { return Ok(()) };
            let keep = |name: &[u8]| path_of(name, "a").is_some_and(|p| m.matches(p));
            if let Ok(range) = names.prefix_range(b"a\0") {
                for needle in [needle(&g), b"a".to_vec(), Vec::new()] {
                    let _ = names.matching_by(range.clone(), &needle, keep, (window, 3));
                }
            }
        }
    }

    #[test]
    fn the_needle_is_the_longest_run_past_the_literal_start() {
        assert_eq!(needle("**/f*42424.dat"), b"42424.dat");
        assert_eq!(needle("d25000/*7.dat"), b"7.dat");
        assert_eq!(needle("docs/*"), b"");
        assert_eq!(needle("docs/deep"), b"", "a prefix has its range");
        assert_eq!(
            needle("a\\*b*c"),
            b"a*b",
            "an escape ends the literal start"
        );
        assert_eq!(literal_prefix("a\\*b*c"), "a");
        assert_eq!(needle("x/**/y"), b"y");
        assert_eq!(needle("[a\\]]x*"), b"", "a class not read with certainty");
    }
}
