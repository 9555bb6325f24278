//! The verify loop: each `written` archive read back from tape in whole
//! blocks, every member's ustar header checked and its data re-hashed at
//! the offsets the packed manifest gave, the good members recorded in the
//! tape's journal (fsync'd) and published as `verified`, the bad ones put
//! back in the staged queue from their staged copies, and the cache freed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::os::unix::ffi::OsStrExt;

use crate::archive::parse::{self, At, Found};
use crate::catalog::journal::{self, Entry};
use crate::catalog::tape::{Tape, TapeState};
use crate::cli::CommonArgs;
use crate::config::{Config, VerifyWhen};
use crate::exit::{Exit, ExitError};
use crate::manifest::{Digest, EntryType, Header, Kind, Record};
use crate::spool::{Claim, Input, Output, Queue, Spool};
use crate::tape::label::Label;
use crate::tape::session::{Choice, Session};
use crate::tape::stream::MAX_BLOCK;
use crate::tape::{Drive, Read};
use crate::units::Size;
use sha2::{Digest as _, Sha256};

fn unavailable(m: impl Into<String>) -> anyhow::Error {
    ExitError::new(Exit::Unavailable, m.into()).into()
}

/// What reading one archive back found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Indexes (into the records) of members that read back intact.
    pub good: Vec<usize>,
    /// Members that did not, with why.
    pub bad: Vec<(usize, String)>,
    /// Members past the end of a cut copy: neither good nor bad here.
    pub cut_off: usize,
    /// The tape could not be read at some point.
    pub read_error: Option<String>,
    pub bytes: u64,
}

/// A byte range of the archive to look at: a member's headers (parsed and
/// compared with its record) or its data (hashed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Header,
    Data,
}

struct Span {
    member: usize,
    part: Part,
    start: u64,
    end: u64,
}

/// The data a record has in the archive; `None` for a part of a split
/// file, whose length its header tells.
fn data_len(r: &Record) -> Option<u64> {
    match r.entry {
        EntryType::File if r.part.is_some() => None,
        EntryType::File => Some(r.size),
        _ => Some(0),
    }
}

/// A member's header bytes alone, as an archive the parser can read (the
/// data that follows is hashed apart, so it is not needed here).
struct Headers<'a>(&'a [u8]);

impl At for Headers<'_> {
    fn read_at(&mut self, at: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let mut bytes = self.0;
        bytes.read_at(at, len)
    }

    fn len(&self) -> u64 {
        u64::MAX / 4
    }
}

/// Does the member's header say what its record says? Its data length
/// when it does (for a part of a split file, which only the header gives).
fn check_headers(bytes: &[u8], r: &Record) -> Result<u64, String> {
    let p = match parse::member_at(&mut Headers(bytes), 0) {
        Ok(Found::Member(p)) => p,
        Ok(Found::End) => return Err("no header where the manifest puts one".into()),
        Err(bad) => return Err(format!("its header on tape does not parse: {}", bad.why)),
    };
    let wrong = |what: &str| {
        Err(format!(
            "its header on tape has another {what} than the manifest"
        ))
    };
    if p.path != r.path.as_os_str().as_bytes() {
        return wrong("path");
    }
    if p.entry != r.entry {
        return wrong("type");
    }
    if Some(p.data_offset) != r.data_offset.zip(r.offset).map(|(d, o)| d - o) {
        return wrong("length");
    }
    if (p.mode, p.uid, p.gid, p.mtime_ns) != (r.mode & 0o7777, r.uid, r.gid, r.mtime_ns) {
        return wrong("mode, owner or mtime");
    }
    let link = r.link.as_ref().map(|l| l.as_os_str().as_bytes().to_vec());
    if matches!(r.entry, EntryType::Symlink | EntryType::Hardlink) && p.link != link {
        return wrong("link target");
    }
    if matches!(r.entry, EntryType::Char | EntryType::Block) && p.rdev != r.rdev {
        return wrong("device number");
    }
    match data_len(r) {
        Some(n) if r.entry == EntryType::File && p.size != n => wrong("size"),
        Some(n) => Ok(n),
        None if (p.part, p.part_offset, p.total) != (r.part, r.part_offset, Some(r.size))
            || r.part_len.is_some_and(|len| len != p.size) =>
        {
            wrong("part")
        }
        None => Ok(p.size),
    }
}

/// Read the tape file under the head (the archive) and judge every member:
/// its headers parsed and compared with its record, its data hashed and
/// compared with the digest taken from the source. `partial`: a copy cut
/// by the early warning, whose tail is missing.
pub fn read_archive(drive: &mut dyn Drive, records: &[Record], partial: bool) -> Outcome {
    let mut spans: Vec<Span> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let Some(d) = r.data_offset else { continue };
        spans.push(Span {
            member: i,
            part: Part::Header,
            start: r.offset.unwrap_or(d.saturating_sub(512)).min(d),
            end: d,
        });
        let n = data_len(r);
        if n != Some(0) {
            spans.push(Span {
                member: i,
                part: Part::Data,
                start: d,
                // A part's end is set once its header is read.
                end: n.map_or(u64::MAX, |n| d + n),
            });
        }
    }
    spans.sort_by_key(|s| (s.start, s.part == Part::Data));
    let mut out = Outcome::default();
    let mut bad: Vec<Option<String>> = vec![None; records.len()];
    let mut done = vec![false; records.len()];
    let mut header = Vec::with_capacity(4096);
    let mut sha = Sha256::new();
    let mut next = 0; // the first span not finished
    let mut at = 0u64; // archive offset of buf[0]
    let mut buf = vec![0u8; MAX_BLOCK];
    loop {
        let n = match drive.read_block(&mut buf) {
            Ok(Read::Data(n)) => n,
            Ok(Read::Filemark | Read::EndOfData) => break,
            Err(e) => {
                let block = drive.position().map_or("?".into(), |p| p.to_string());
                out.read_error = Some(format!("unreadable at block {block}: {e}"));
                break;
            }
        };
        let chunk = &buf[..n];
        let end = at + n as u64;
        let mut k = next;
        while k < spans.len() && spans[k].start < end {
            let s = &spans[k];
            let (member, part, s_end) = (s.member, s.part, s.end);
            let from = s.start.max(at);
            let to = s.end.min(end);
            if from < to {
                let piece = &chunk[(from - at) as usize..(to - at) as usize];
                match s.part {
                    Part::Header => header.extend_from_slice(piece),
                    Part::Data => sha.update(piece),
                }
            }
            if s_end <= end {
                // This span is whole.
                let r = &records[member];
                match part {
                    Part::Header => {
                        match check_headers(&header, r) {
                            Ok(len) => {
                                if data_len(r).is_none()
                                    && let Some(next_span) = spans.get_mut(k + 1)
                                    && next_span.member == member
                                {
                                    next_span.end = next_span.start + len;
                                }
                            }
                            Err(why) => {
                                bad[member].get_or_insert(why);
                            }
                        }
                        header.clear();
                        if data_len(r) == Some(0) {
                            done[member] = true;
                        }
                    }
                    Part::Data => {
                        let got = Digest(std::mem::take(&mut sha).finalize().into());
                        if Some(got) != r.sha256 {
                            bad[member].get_or_insert(format!(
                                "SHA-256 {got} read back, {} expected",
                                r.sha256.map(|d| d.to_string()).unwrap_or_default()
                            ));
                        }
                        done[member] = true;
                    }
                }
                if k == next {
                    next += 1;
                }
                k += 1;
            } else {
                break;
            }
        }
        at = end;
    }
    out.bytes = at;
    // A hard link is only as good as the member it links to.
    for i in 0..records.len() {
        if records[i].entry == EntryType::Hardlink
            && let Some(target) = &records[i].link
            && let Some(t) = records.iter().position(|r| &r.path == target)
            && (bad[t].is_some() || !done[t])
        {
            done[i] = done[t];
            if bad[t].is_some() {
                bad[i].get_or_insert(format!("links to {}, which is bad", target.display()));
            }
        }
    }
    for i in 0..records.len() {
        if records[i].data_offset.is_none() {
            continue;
        }
        match (&bad[i], done[i]) {
            (Some(why), _) => out.bad.push((i, why.clone())),
            (None, true) => out.good.push(i),
            (None, false) if partial && out.read_error.is_none() => out.cut_off += 1,
            (None, false) => out.bad.push((
                i,
                out.read_error
                    .clone()
                    .unwrap_or_else(|| "the archive on tape ends before it".into()),
            )),
        }
    }
    out
}

/// The drive reel-verify reads with.
fn target<'c>(
    config: &'c Config,
    device: Option<&str>,
    drive: Option<&str>,
) -> anyhow::Result<Session<'c>> {
    let choice = Choice::given(device, drive);
    Ok(Session::new(
        Some(config),
        choice,
        Duration::from_secs(600),
    )?)
}

/// Remove a staged copy and the directories it leaves empty, up to the
/// item's directory under `<cache>/staged/`.
fn free_staged(cache: &Path, staged_root: &Path) {
    // Only what is in the cache: a manifest cannot make reel-verify delete
    // anything else.
    if !crate::fsutil::within(cache, staged_root) {
        log::warn!(
            "not removing {}: it is not in {}",
            cache.display(),
            staged_root.display()
        );
        return;
    }
    if std::fs::remove_file(cache).is_err() {
        return;
    }
    let mut dir = cache.parent();
    while let Some(d) = dir {
        if !d.starts_with(staged_root) || d == staged_root || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// A new staged item with the records that failed, from their staged
/// copies: they go to tape again.
fn requeue(
    spool: &Spool,
    header: &Header,
    records: &[&Record],
    file: u64,
) -> anyhow::Result<String> {
    let id = format!("{}-retry-f{file}", header.id);
    let mut h = Header::new(Kind::Staged, &header.stream, &id);
    h.created = header.created.clone();
    if let Some(source) = header.extra.get("source") {
        h.extra.insert("source".into(), source.clone());
    }
    let mut item = spool.begin(Queue::Staged, &h)?;
    for r in records {
        let mut rec = (*r).clone();
        rec.archive = None;
        rec.offset = None;
        rec.data_offset = None;
        rec.tape = None;
        rec.file = None;
        rec.block = None;
        if rec.entry == EntryType::Hardlink && rec.cache.is_some() {
            // Stored as a link to a copy in the same archive: it has a
            // staged copy of its own, so it can go as a file.
            rec.entry = EntryType::File;
            rec.link = None;
        }
        item.write(&rec)?;
    }
    item.commit()?;
    Ok(id)
}

/// The drive with the tape in it, and what its journal already holds.
struct Loaded {
    drive: Box<dyn Drive>,
    label: Label,
    seen: HashSet<(u64, PathBuf)>,
}

struct Verifier<'a> {
    config: &'a Config,
    t: Session<'a>,
    spool: Spool,
    output: Output,
    loaded: Option<Loaded>,
    verified: u64,
    failed: u64,
    archives: u64,
    /// Items that could not be read or named no tape: moved to failed/.
    bad_items: u64,
}

impl Verifier<'_> {
    fn load(&mut self) -> anyhow::Result<&mut Loaded> {
        if self.loaded.is_none() {
            let (drive, label) = self.t.open_labelled()?;
            let seen = journal::recorded(&self.config.paths.catalog, &label.label)?;
            self.loaded = Some(Loaded { drive, label, seen });
        }
        Ok(self.loaded.as_mut().expect("just loaded"))
    }

    /// Verify one written item on the loaded tape; the tape it needs when
    /// it is on another one (the claim is let go).
    fn item(&mut self, claim: Claim) -> anyhow::Result<Option<String>> {
        let Some((claim, header, records)) = claim.read_all("reel-verify")?.item() else {
            self.bad_items += 1;
            return Ok(None);
        };
        let get = |k: &str| header.extra.get(k);
        let (Some(tape), Some(file), Some(start)) = (
            get("tape").and_then(|v| v.as_str()).map(str::to_string),
            get("file").and_then(|v| v.as_u64()),
            get("start_block").and_then(|v| v.as_u64()),
        ) else {
            claim.reject(
                "the written manifest lacks tape, file or start_block",
                "reel-verify",
            )?;
            self.bad_items += 1;
            return Ok(None);
        };
        let partial = get("partial").and_then(|v| v.as_bool()).unwrap_or(false);
        let catalog = self.config.paths.catalog.clone();
        let staged_root = self.config.paths.cache.join("staged");
        let device = self.t.device().to_string();
        let Loaded { drive, label, seen } = self.load()?;
        if label.label != tape {
            claim.release();
            return Ok(Some(tape));
        }
        if let Some(uuid) = get("tape_uuid").and_then(|v| v.as_str())
            && uuid != label.uuid
        {
            claim.release();
            return Err(unavailable(format!(
                "the tape in {device} is labelled {tape} but is not the tape {} was written to (uuid {} ≠ {uuid})",
                header.id, label.uuid
            )));
        }
        // Position: the archive's first block, and check the drive agrees.
        drive.seek(start)?;
        let at = drive.position()?;
        if at != start {
            claim.release();
            return Err(unavailable(format!(
                "tape {tape}: asked for block {start} (file {file}), the drive is at {at}"
            )));
        }
        let outcome = read_archive(drive.as_mut(), &records, partial);
        if let Some(mut state) = Tape::load(&catalog, &tape)? {
            if let Some(e) = &outcome.read_error {
                log::error!("tape {tape} file {file}: {e}; the tape is marked suspect");
                state.state = TapeState::Suspect;
            }
            state.verified = Some(crate::time::Utc::now().rfc3339());
            state.last_verify = Some(format!(
                "file {file}: {} good, {} bad{}",
                outcome.good.len(),
                outcome.bad.len(),
                outcome
                    .read_error
                    .as_ref()
                    .map(|e| format!(", {e}"))
                    .unwrap_or_default()
            ));
            state.save(&catalog)?;
        }
        for (i, why) in &outcome.bad {
            let r = &records[*i];
            log::error!(
                "{}: tape {tape} file {file} block {}: {why}",
                r.path.display(),
                r.block.map_or("?".into(), |b| b.to_string())
            );
        }
        // The journal first (the truth), then the queues.
        let now = crate::time::Utc::now().rfc3339();
        let entries: Vec<Entry> = outcome
            .good
            .iter()
            .map(|&i| &records[i])
            .filter(|r| !seen.contains(&(file, r.path.clone())))
            .map(|r| Entry {
                stream: header.stream.clone(),
                verified: now.clone(),
                record: r.clone(),
            })
            .collect();
        journal::append(&catalog, &tape, &entries)?;
        for e in &entries {
            seen.insert((file, e.record.path.clone()));
        }
        let bad: Vec<&Record> = outcome.bad.iter().map(|(i, _)| &records[*i]).collect();
        if !bad.is_empty() {
            let id = requeue(&self.spool, &header, &bad, file)?;
            log::warn!(
                "{} member(s) of {} go to tape again as staged item {id}",
                bad.len(),
                header.id
            );
        }
        let mut h = header.clone();
        h.kind = Kind::Verified;
        h.extra.insert("verified".into(), now.into());
        h.extra.insert("bad".into(), outcome.bad.len().into());
        let mut item = self.output.begin(&h)?;
        for &i in &outcome.good {
            item.write(&records[i])?;
        }
        item.commit()?;
        if !partial {
            // On tape and recorded, or queued again from their copies: the
            // cache has done its work for this archive.
            for &i in &outcome.good {
                if let Some(c) = &records[i].cache {
                    free_staged(c, &staged_root);
                }
            }
            if let Some(a) = get("archive_path").and_then(|v| v.as_str()) {
                let archives = self.config.paths.cache.join("archives");
                if Path::new(a).parent() == Some(archives.as_path())
                    && crate::fsutil::within(Path::new(a), &archives)
                {
                    let _ = std::fs::remove_file(a);
                } else {
                    log::warn!(
                        "not removing {a}: it is not an archive in {}",
                        archives.display()
                    );
                }
            }
        }
        claim.finish()?;
        self.archives += 1;
        self.verified += outcome.good.len() as u64;
        self.failed += outcome.bad.len() as u64;
        log::info!(
            "{}: tape {tape} file {file}: {} member(s) verified, {} bad{} ({})",
            header.id,
            outcome.good.len(),
            outcome.bad.len(),
            if outcome.cut_off > 0 {
                format!(", {} past the cut", outcome.cut_off)
            } else {
                String::new()
            },
            Size(outcome.bytes).human()
        );
        Ok(None)
    }
}

/// The written items waiting, as (tape, file, id), in tape order.
/// The written items, in tape order: (tape, tape file, id). An item that
/// cannot be read, or names no tape, is moved to failed/ here (counted in
/// `bad`): it would be ignored, or have tapes loaded one by one for nothing.
fn waiting(spool: &Spool, bad: &mut u64) -> anyhow::Result<Vec<(String, u64, String)>> {
    let mut out = Vec::new();
    for id in spool.list(Queue::Written)? {
        let path = spool.item_path(Queue::Written, &id);
        let why = match crate::manifest::ManifestReader::open(&path) {
            Ok((h, _)) => {
                let tape = h.extra.get("tape").and_then(|v| v.as_str());
                let file = h.extra.get("file").and_then(|v| v.as_u64());
                match (tape, file) {
                    (Some(t), Some(f)) if !t.is_empty() => {
                        out.push((t.to_string(), f, id));
                        continue;
                    }
                    _ => format!(
                        "{}: the written manifest names no tape or tape file",
                        path.display()
                    ),
                }
            }
            // Taken meanwhile.
            Err(crate::manifest::ManifestError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                continue;
            }
            Err(e) => e.to_string(),
        };
        if let Some(claim) = spool.claim_id(Queue::Written, &id)? {
            claim.reject(&why, "reel-verify")?;
            *bad += 1;
        }
    }
    out.sort();
    Ok(out)
}

pub fn run(
    common: &CommonArgs,
    device: Option<&str>,
    drive_name: Option<&str>,
    from_stdin: bool,
    to_stdout: bool,
) -> anyhow::Result<Exit> {
    let config = common.load_config()?;
    let t = target(&config, device, drive_name)?;
    let spool = config.prepare_dirs()?;
    let output = Output::of(&spool, Queue::Verified, to_stdout);
    let mut v = Verifier {
        config: &config,
        t,
        spool: spool.clone(),
        output,
        loaded: None,
        verified: 0,
        failed: 0,
        archives: 0,
        bad_items: 0,
    };
    let mut needed: Vec<String> = Vec::new();
    let mut held: Vec<String> = Vec::new();
    if from_stdin {
        // As they come; an item for another tape stays queued.
        let mut input = Input::stdin(spool.clone(), Queue::Written);
        while let Some(claim) = input.next_item()? {
            if let Some(tape) = v.item(claim)? {
                needed.push(tape);
            }
        }
    } else {
        // The loaded tape's items in tape order, then the other tapes',
        // loaded through the changer.
        let mut tried: HashSet<String> = HashSet::new();
        loop {
            let mut items = waiting(&spool, &mut v.bad_items)?;
            if config.verify.when == VerifyWhen::Tape {
                // Only full tapes: one pass over each, fewer direction
                // changes; the cache holds the rest meanwhile.
                let full = |t: &str| {
                    Tape::load(&config.paths.catalog, t)
                        .ok()
                        .flatten()
                        .is_some_and(|s| s.state != TapeState::Writable)
                };
                items.retain(|(t, _, _)| {
                    let keep = full(t);
                    if !keep && !held.contains(t) {
                        held.push(t.clone());
                    }
                    keep
                });
            }
            if items.is_empty() {
                break;
            }
            // The tape in the drive: none that helps (empty, blank, not
            // ours) is no stop when the changer can bring the ones needed.
            let has_changer = v.t.has_library();
            let here = match v.load() {
                Ok(l) => Some(l.label.label.clone()),
                Err(e) if has_changer && crate::cli::exit_of(&e) == Exit::Unavailable => {
                    log::info!("{e:#}: the tapes needed come from the changer");
                    v.loaded = None;
                    None
                }
                Err(e) => return Err(e),
            };
            let mine: Vec<_> = items
                .iter()
                .filter(|(t, _, _)| Some(t) == here.as_ref())
                .collect();
            if mine.is_empty() {
                let other = items
                    .iter()
                    .map(|(t, _, _)| t.clone())
                    .find(|t| !tried.contains(t));
                match other {
                    Some(want) => {
                        tried.insert(want.clone());
                        v.loaded = None; // lets go of the drive
                        if v.t.load(&want)? {
                            continue;
                        }
                    }
                    None => {
                        needed = items.into_iter().map(|(t, _, _)| t).collect();
                        break;
                    }
                }
                continue;
            }
            let mut done = 0;
            for (_, _, id) in mine {
                if let Some(claim) = spool.claim_id(Queue::Written, id)? {
                    v.item(claim)?;
                    done += 1;
                }
            }
            if done == 0 {
                break; // another reel-verify has them
            }
        }
    }
    log::info!(
        "{} archive(s): {} member(s) verified, {} bad",
        v.archives,
        v.verified,
        v.failed
    );
    if !held.is_empty() {
        log::info!(
            "archives on tape(s) {} wait until the tape is full ([verify] when = \"tape\")",
            held.join(", ")
        );
    }
    if v.failed > 0 || v.bad_items > 0 {
        if v.bad_items > 0 {
            log::error!(
                "{} item(s) could not be verified and went to failed/ (see `reel status`)",
                v.bad_items
            );
        }
        return Ok(Exit::Data);
    }
    if !needed.is_empty() {
        needed.sort();
        needed.dedup();
        return Err(unavailable(format!(
            "written items wait for tape(s) {}: load one and run reel-verify again",
            needed.join(", ")
        )));
    }
    Ok(Exit::Ok)
}

/// `--tape LABEL`: audit a whole tape against its journal — every archive
/// with recorded members read back and every recorded member re-hashed.
/// Nothing is added to or taken from the journal; the result goes to the
/// tape's catalog state (`reel tapes`), a read error marks it suspect.
pub fn audit(
    common: &CommonArgs,
    device: Option<&str>,
    drive_name: Option<&str>,
    tape: &str,
) -> anyhow::Result<Exit> {
    let config = common.load_config()?;
    let t = target(&config, device, drive_name)?;
    let catalog = config.paths.catalog.clone();
    let path = journal::journal_path(&catalog, tape);
    if !path.exists() {
        return Err(ExitError::new(
            Exit::NoInput,
            format!(
                "tape {tape} has no journal ({}): nothing to audit",
                path.display()
            ),
        )
        .into());
    }
    let mut files: std::collections::BTreeMap<u64, Vec<Record>> = Default::default();
    journal::read(&path, |e| {
        if let Some(f) = e.record.file {
            files.entry(f).or_default().push(e.record);
        }
        Ok(())
    })?;
    let Some((mut drive, label)) = t.open_tape(tape)? else {
        return Err(unavailable(format!(
            "tape {tape} is neither in {} nor in its library: load it and run reel-verify --tape {tape} again",
            t.device()
        )));
    };
    let block_size = u64::from(label.block_size.max(1));
    let (mut good, mut bad, mut read_error) = (0usize, 0usize, None);
    for (file, records) in &files {
        let Some(start) = records
            .iter()
            .filter_map(|r| Some(r.block? - r.offset? / block_size))
            .min()
        else {
            continue;
        };
        drive.seek(start)?;
        let outcome = read_archive(drive.as_mut(), records, false);
        for (i, why) in &outcome.bad {
            let r = &records[*i];
            log::error!(
                "{}: tape {tape} file {file} block {}: {why}",
                r.path.display(),
                r.block.map_or("?".into(), |b| b.to_string())
            );
        }
        good += outcome.good.len();
        bad += outcome.bad.len();
        if read_error.is_none() {
            read_error = outcome.read_error.map(|e| format!("file {file}: {e}"));
        }
        log::info!(
            "tape {tape} file {file}: {} good, {} bad",
            outcome.good.len(),
            outcome.bad.len()
        );
    }
    if let Some(mut state) = Tape::load(&catalog, tape)? {
        if read_error.is_some() {
            state.state = TapeState::Suspect;
        }
        state.verified = Some(crate::time::Utc::now().rfc3339());
        state.last_verify = Some(format!(
            "audit of {} file(s): {good} good, {bad} bad{}",
            files.len(),
            read_error
                .as_ref()
                .map(|e| format!(", {e}"))
                .unwrap_or_default()
        ));
        state.save(&catalog)?;
    }
    log::info!(
        "tape {tape}: audit of {} file(s): {good} member(s) good, {bad} bad",
        files.len()
    );
    Ok(if bad > 0 { Exit::Data } else { Exit::Ok })
}
