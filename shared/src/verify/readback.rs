//! Reading one archive back from tape and judging every member: its
//! headers parsed and compared with its record, its data hashed and
//! compared with the digest taken from the source.

use std::os::unix::ffi::OsStrExt;

use crate::archive::parse::{self, At, Found};
use crate::manifest::{Digest, EntryType, Record};
use std::io::Read as _;

use crate::archive::sealed::{self, CountedReader, Identities, OpenError, OpenSpans};
use crate::tape::spans::{SpanReader, Spans};
use crate::tape::stream::{MAX_BLOCK, TapeFileReader};
use crate::tape::{Drive, Read};

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
    /// The bytes read from the tape file.
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

/// The spans to look at in an archive, in the order they come: each
/// member's headers, then its data if it has any.
fn spans_of(records: &[Record]) -> Vec<Span> {
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
                end: n.map_or(u64::MAX, |n| d.saturating_add(n)),
            });
        }
    }
    spans.sort_by_key(|s| (s.start, s.part == Part::Data));
    spans
}

/// What is known of each member so far: why it is bad (the first reason
/// found), and whether all of it was read.
struct Verdicts {
    bad: Vec<Option<String>>,
    done: Vec<bool>,
}

impl Verdicts {
    fn new(members: usize) -> Verdicts {
        Verdicts {
            bad: vec![None; members],
            done: vec![false; members],
        }
    }

    /// A member's headers, read whole, checked against its record; the
    /// data length they give when they agree with it.
    fn headers(&mut self, member: usize, r: &Record, header: &[u8]) -> Option<u64> {
        let len = match check_headers(header, r) {
            Ok(len) => Some(len),
            Err(why) => {
                self.bad[member].get_or_insert(why);
                None
            }
        };
        if data_len(r) == Some(0) {
            self.done[member] = true;
        }
        len
    }

    /// A member's data, read whole: its digest against the recorded one.
    fn data(&mut self, member: usize, r: &Record, got: Digest) {
        if Some(got) != r.sha256 {
            self.bad[member].get_or_insert(format!(
                "SHA-256 {got} read back, {} expected",
                r.sha256.map(|d| d.to_string()).unwrap_or_default()
            ));
        }
        self.done[member] = true;
    }

    /// A hard link is only as good as the member it links to.
    fn follow_hard_links(&mut self, records: &[Record]) {
        let (bad, done) = (&mut self.bad, &mut self.done);
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
    }

    /// Every member placed in the archive sorted into good, bad or (in a
    /// `partial` copy read to its end) cut off.
    fn sort_into(self, out: &mut Outcome, records: &[Record], partial: bool) {
        for (i, r) in records.iter().enumerate() {
            if r.data_offset.is_none() {
                continue;
            }
            match (&self.bad[i], self.done[i]) {
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
    }
}

/// Read the tape file under the head (the archive) and judge every member:
/// its headers parsed and compared with its record, its data hashed and
/// compared with the digest taken from the source. `partial`: a copy cut
/// by the early warning, whose tail is missing. A sealed archive (age) is
/// read through `identities`; the error: it cannot be decrypted here (no
/// identity, or none of its recipients), which says nothing of the tape.
pub fn read_archive(
    drive: &mut dyn Drive,
    records: &[Record],
    partial: bool,
    identities: Option<&Identities>,
) -> Result<Outcome, String> {
    // The first block tells a sealed archive from a clear one (whose first
    // member is reel's REEL-ARCHIVE.txt).
    let mut first = vec![0u8; MAX_BLOCK];
    let n = match drive.read_block(&mut first) {
        Ok(Read::Data(n)) => n,
        Ok(Read::Filemark | Read::EndOfData) => {
            return Ok(judge(&mut NoSpans, records, partial, false));
        }
        Err(e) => {
            let at = drive.position().map_or("?".into(), |p| p.to_string());
            let mut out = judge(&mut NoSpans, records, partial, false);
            out.read_error = Some(format!("unreadable at block {at}: {e}"));
            return Ok(out);
        }
    };
    first.truncate(n);
    if !sealed::is_sealed(&first) {
        return Ok(judge(
            &mut SpanReader::after(drive, &first),
            records,
            partial,
            false,
        ));
    }
    let ids = identities.ok_or(
        "the archive is sealed (age) and this host has no identity to open it: set `identity` in its [[archive_key]]",
    )?;
    let (input, tape_bytes) =
        CountedReader::new(std::io::Cursor::new(first).chain(TapeFileReader::new(drive)));
    match ids.open(input) {
        // A sealed copy cut by the early warning ends in a chunk cut short:
        // where it stops decrypting is the cut (its members past it are on
        // the next tape, whole).
        Ok(plain) => Ok(judge(
            &mut OpenSpans::new(plain, 0, tape_bytes),
            records,
            partial,
            partial,
        )),
        Err(OpenError::NotMine(why)) => Err(why),
        Err(OpenError::Damaged(why)) => {
            let mut out = judge(&mut NoSpans, records, partial, false);
            out.read_error = Some(why);
            Ok(out)
        }
    }
}

/// An archive with nothing in it.
struct NoSpans;

impl Spans for NoSpans {
    fn next_block(&mut self) -> Result<Option<crate::tape::spans::Block<'_>>, String> {
        Ok(None)
    }
    fn bytes_read(&self) -> u64 {
        0
    }
}

/// Judge every member from the archive's blocks; `error_is_cut`: an
/// error reading them is where a cut copy ends. The data is hashed on
/// other threads, a member each, while this one reads on: SHA-256 is
/// slower than reading, and small members come one after another.
fn judge(reader: &mut dyn Spans, records: &[Record], partial: bool, error_is_cut: bool) -> Outcome {
    let mut spans = spans_of(records);
    let mut out = Outcome::default();
    let mut verdicts = Verdicts::new(records.len());
    let mut header = Vec::with_capacity(4096);
    let mut next = 0; // the first span not finished
    let hashers = crate::hashers::Hashers::start();
    loop {
        let block = match reader.next_block() {
            Ok(Some(block)) => block,
            Ok(None) => break,
            Err(e) if error_is_cut => {
                log::debug!("the cut copy ends: {e}");
                break;
            }
            Err(e) => {
                out.read_error = Some(e);
                break;
            }
        };
        let end = block.end();
        let mut k = next;
        while k < spans.len() && spans[k].start < end {
            let s = &spans[k];
            let (member, part, s_end) = (s.member, s.part, s.end);
            let piece = block.span(s.start, s.end);
            match s.part {
                Part::Header => header.extend_from_slice(piece),
                Part::Data => hashers.add(member, piece.to_vec(), s_end <= end),
            }
            if s_end > end {
                break;
            }
            // This span is whole.
            if part == Part::Header {
                let r = &records[member];
                if let Some(len) = verdicts.headers(member, r, &header)
                    && data_len(r).is_none()
                    && let Some(next_span) = spans.get_mut(k + 1)
                    && next_span.member == member
                {
                    next_span.end = next_span.start.saturating_add(len);
                }
                header.clear();
            }
            if k == next {
                next += 1;
            }
            k += 1;
        }
    }
    for (member, got) in hashers.finish() {
        verdicts.data(member, &records[member], got);
    }
    out.bytes = reader.bytes_read();
    verdicts.follow_hard_links(records);
    verdicts.sort_into(&mut out, records, partial);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record placed in the archive: its header at `offset`, its data
    /// 512 bytes after.
    fn placed(path: &str, entry: EntryType, offset: u64, size: u64) -> Record {
        let mut r = Record::new(path, entry);
        r.size = size;
        (r.offset, r.data_offset) = (Some(offset), Some(offset + 512));
        r
    }

    #[test]
    fn each_member_has_a_header_span_and_data_only_if_it_has_data() {
        let mut part = placed("big", EntryType::File, 2048, 100);
        part.part = Some(2);
        let records = [
            placed("dir", EntryType::Dir, 1024, 0),
            placed("a", EntryType::File, 0, 10),
            part,
            Record::new("not on tape", EntryType::File),
        ];
        let spans: Vec<_> = spans_of(&records)
            .iter()
            .map(|s| (s.member, s.part, s.start, s.end))
            .collect();
        assert_eq!(
            spans,
            [
                (1, Part::Header, 0, 512),
                (1, Part::Data, 512, 522),
                (0, Part::Header, 1024, 1536),
                (2, Part::Header, 2048, 2560),
                // Its header tells where a part's data ends.
                (2, Part::Data, 2560, u64::MAX),
            ]
        );
    }

    #[test]
    fn a_hard_link_is_as_good_as_its_target_and_a_cut_copy_loses_its_tail() {
        let mut link = placed("b", EntryType::Hardlink, 1024, 0);
        link.link = Some("a".into());
        let records = [
            placed("a", EntryType::File, 0, 10),
            link,
            placed("c", EntryType::File, 2048, 10),
        ];
        let outcome = |partial: bool| {
            let mut v = Verdicts::new(records.len());
            v.data(0, &records[0], Digest([0; 32]));
            v.follow_hard_links(&records);
            let mut out = Outcome::default();
            v.sort_into(&mut out, &records, partial);
            out
        };
        let out = outcome(true);
        assert_eq!(out.good, [] as [usize; 0]);
        assert_eq!(out.bad.len(), 2);
        assert!(out.bad[0].1.starts_with("SHA-256 "), "{:?}", out.bad);
        assert_eq!(out.bad[1], (1, "links to a, which is bad".to_string()));
        assert_eq!(out.cut_off, 1, "c, past the cut");
        let out = outcome(false);
        assert_eq!(
            out.bad[2],
            (2, "the archive on tape ends before it".to_string())
        );
    }
}
