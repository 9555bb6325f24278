//! Retention and recycling (issue #23): from what the catalog holds — the
//! verified copies of each version of each path, the tapes and where they
//! are — and each stream's policy, what expires, which tapes may be used
//! again, and which copies are missing.
//!
//! Nothing here reads or writes a file or a clock: the caller gives the
//! time and the catalog's state and acts on the plan, so the rules can be
//! tried over random histories (the property test below).
//!
//! The rules, each on the side of keeping:
//! - A copy **counts** when its tape is neither lost nor suspect.
//! - A version is **safe** once every pool of its policy holds a counted
//!   copy; it became safe when the last of those pools first got one.
//! - The newest version of a path never expires. An older one expires
//!   when at least `keep_versions` safe versions are newer than it (so
//!   that many are kept, the newest included), and `keep_for` has passed
//!   since the first newer version became safe (a version is superseded
//!   only by one that is safe). Either rule alone does when the other is
//!   not set; without both, nothing expires.
//! - A tape is **recyclable** when it holds copies and every one of them
//!   is of an expired version, and it is neither lost nor retired: no
//!   version still kept loses a copy by its reuse.
//! - A version still kept **misses a copy** in each pool of its policy that
//!   holds no counted copy of it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One version of one path: the stream, the path's bytes, and when it
/// was taken from the source (`taken_ns`, as the journals have it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VersionKey {
    pub stream: String,
    pub path: Vec<u8>,
    pub taken_ns: i128,
}

impl VersionKey {
    /// The version a journal entry is a copy of.
    pub fn of(e: &super::Entry) -> VersionKey {
        VersionKey {
            stream: e.stream.clone(),
            path: e.record.path.as_os_str().as_encoded_bytes().to_vec(),
            taken_ns: i128::from(e.taken_ns()),
        }
    }
}

/// A verified copy of a version: on which tape, verified when (ns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub tape: String,
    pub verified_ns: i128,
}

/// Every version the catalog holds, with its verified copies.
pub type Catalogued = BTreeMap<VersionKey, Vec<Copy>>;

/// What the planner needs of a tape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapeFacts {
    pub label: String,
    pub pool: String,
    pub lost: bool,
    pub suspect: bool,
    pub retired: bool,
}

/// A stream's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The pools that must each hold a verified copy; none: one copy, in
    /// any pool.
    pub copies: Vec<String>,
    /// Versions kept of a path, the newest included (this many safe newer
    /// ones before an older one may go); `None`: no limit by count.
    pub keep_versions: Option<u32>,
    /// How long a superseded version is kept (ns); `None`: forever.
    pub keep_for_ns: Option<i128>,
}

impl Policy {
    /// One copy on any tape, kept forever: reel's behaviour for a stream
    /// no `[[pool]]` takes.
    pub fn forever() -> Policy {
        Policy {
            copies: Vec::new(),
            keep_versions: None,
            keep_for_ns: None,
        }
    }

    /// The pools a copy is needed in (`None`: any).
    fn needs(&self) -> Vec<Option<&str>> {
        if self.copies.is_empty() {
            vec![None]
        } else {
            self.copies.iter().map(|p| Some(p.as_str())).collect()
        }
    }
}

/// What to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Versions that expire now (not expired before).
    pub expire: Vec<VersionKey>,
    /// Tapes whose every copy is of an expired version.
    pub recyclable: Vec<String>,
    /// Kept versions and the pools that hold no counted copy of them
    /// (`any` when the policy names none and no tape has one).
    pub missing: Vec<(VersionKey, String)>,
    /// When the next of the kept versions expires (ns), if one will by
    /// the time rule alone.
    pub next_expiry_ns: Option<i128>,
}

/// The versions of one path, each with its copies.
type Versions<'a> = Vec<(&'a VersionKey, &'a Vec<Copy>)>;

/// The plan at `now_ns` for `versions` (each with its copies), on
/// `tapes`, under `policy` (by stream; `fallback` for the others), given
/// the versions `expired` already.
pub fn plan(
    versions: &Catalogued,
    tapes: &[TapeFacts],
    policy: &HashMap<String, Policy>,
    fallback: &Policy,
    expired: &BTreeSet<VersionKey>,
    now_ns: i128,
) -> Plan {
    let tape: HashMap<&str, &TapeFacts> = tapes.iter().map(|t| (t.label.as_str(), t)).collect();
    let counts = |c: &Copy| {
        tape.get(c.tape.as_str())
            .is_some_and(|t| !t.lost && !t.suspect)
    };
    // A counted copy in `pool` (`None`: any).
    let counted_in = |c: &Copy, pool: Option<&str>| {
        tape.get(c.tape.as_str())
            .is_some_and(|t| counts(c) && pool.is_none_or(|p| p == t.pool))
    };
    // When each version became safe, if it is.
    let safe_at = |key: &VersionKey, copies: &[Copy]| -> Option<i128> {
        let p = policy.get(&key.stream).unwrap_or(fallback);
        p.needs()
            .into_iter()
            .map(|pool| {
                copies
                    .iter()
                    .filter(|c| counted_in(c, pool))
                    .map(|c| c.verified_ns)
                    .min()
            })
            .try_fold(i128::MIN, |latest, first| first.map(|f| latest.max(f)))
    };
    let mut out = Plan::default();
    let mut gone: BTreeSet<&VersionKey> = expired.iter().collect();
    // The versions of each path, newest first.
    let mut paths: BTreeMap<(&str, &[u8]), Versions> = BTreeMap::new();
    for (k, copies) in versions {
        paths
            .entry((k.stream.as_str(), k.path.as_slice()))
            .or_default()
            .push((k, copies));
    }
    for list in paths.values_mut() {
        list.sort_by_key(|v| std::cmp::Reverse(v.0.taken_ns));
        let p = policy.get(&list[0].0.stream).unwrap_or(fallback);
        // The newer safe versions seen so far: how many, and when the
        // first of them (the oldest newer one) became safe.
        let mut safe_newer = 0u32;
        let mut superseded_at: Option<i128> = None;
        for (i, (key, copies)) in list.iter().enumerate() {
            if i > 0 && !gone.contains(key) {
                let has_rule = p.keep_versions.is_some() || p.keep_for_ns.is_some();
                let count_ok = p.keep_versions.is_none_or(|n| safe_newer >= n);
                let until = superseded_at
                    .zip(p.keep_for_ns)
                    .map(|(at, keep)| at.saturating_add(keep));
                let time_ok = p.keep_for_ns.is_none() || until.is_some_and(|t| now_ns >= t);
                if has_rule && superseded_at.is_some() && count_ok && time_ok {
                    out.expire.push((*key).clone());
                    gone.insert(key);
                } else if let Some(t) = until.filter(|_| has_rule && count_ok) {
                    out.next_expiry_ns = Some(out.next_expiry_ns.map_or(t, |n| n.min(t)));
                }
            }
            if !gone.contains(key) {
                for pool in p.needs() {
                    if !copies.iter().any(|c| counted_in(c, pool)) {
                        out.missing
                            .push(((*key).clone(), pool.unwrap_or("any").to_string()));
                    }
                }
            }
            if let Some(at) = safe_at(key, copies) {
                safe_newer += 1;
                // Versions further down are superseded since the first of
                // the versions above them became safe.
                superseded_at = Some(superseded_at.map_or(at, |s| s.min(at)));
            }
        }
    }
    // Tapes: recyclable when every copy on them is of a version gone.
    let mut holds: HashMap<&str, bool> = HashMap::new();
    for (k, copies) in versions {
        for c in copies {
            let kept = !gone.contains(k);
            let e = holds.entry(c.tape.as_str()).or_insert(false);
            *e |= kept;
        }
    }
    for t in tapes {
        if !t.lost && !t.retired && holds.get(t.label.as_str()) == Some(&false) {
            out.recyclable.push(t.label.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests;
