//! Streaming manifest reader: one line in memory at a time, every error
//! naming the file and line.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::record::{Line, WireLine};
use super::{Header, ManifestError, Record};

/// The longest line accepted. A record with a 4096-byte non-UTF-8 path and
/// link is under 12 KiB; anything near this limit is not a manifest.
const MAX_LINE: u64 = 1 << 20;

/// Reads one manifest, or several in a row (stdin mode), line by line.
pub struct ManifestReader<R> {
    input: R,
    name: String,
    line_no: u64,
    buf: Vec<u8>,
    /// A header read while looking for a record: it starts the next manifest.
    next_header: Option<Header>,
    started: bool,
}

impl ManifestReader<BufReader<File>> {
    /// Open a manifest file and read its header.
    pub fn open(path: &Path) -> Result<(Header, Self), ManifestError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|source| ManifestError::Io {
            file: name.clone(),
            source,
        })?;
        let mut reader =
            ManifestReader::new(BufReader::with_capacity(256 * 1024, file), name.clone());
        match reader.next_manifest()? {
            Some(header) => Ok((header, reader)),
            None => Err(ManifestError::invalid(
                &name,
                1,
                "empty file: a manifest starts with a header line",
            )),
        }
    }
    /// The records of a manifest file and the bytes they describe, read as
    /// a stream (nothing is held whole).
    pub fn totals(path: &Path) -> Result<(u64, u64), ManifestError> {
        let (_, mut reader) = ManifestReader::open(path)?;
        let (mut records, mut bytes) = (0, 0);
        for r in reader.records() {
            records += 1;
            bytes += r?.bytes();
        }
        Ok((records, bytes))
    }
}

/// Read only the header of a manifest file.
pub fn read_header(path: &Path) -> Result<Header, ManifestError> {
    ManifestReader::open(path).map(|(h, _)| h)
}

impl<R: BufRead> ManifestReader<R> {
    /// `name` is what errors call the input (a path, or `<stdin>`).
    pub fn new(input: R, name: impl Into<String>) -> Self {
        ManifestReader {
            input,
            name: name.into(),
            line_no: 0,
            buf: Vec::new(),
            next_header: None,
            started: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number of the last line read.
    pub fn line(&self) -> u64 {
        self.line_no
    }

    /// Move to the next manifest and return its header, skipping any records
    /// of the current one not yet read. `None` at the end of the input.
    pub fn next_manifest(&mut self) -> Result<Option<Header>, ManifestError> {
        if let Some(h) = self.next_header.take() {
            return Ok(Some(h));
        }
        loop {
            match self.read_line()? {
                None => return Ok(None),
                Some(Line::Header(h)) => {
                    self.started = true;
                    return Ok(Some(h));
                }
                Some(Line::Record(_)) if !self.started => {
                    return Err(self.error(
                        "expected a manifest header ({\"reel\":\"manifest/1\",\"kind\":…}) as the first line",
                    ));
                }
                Some(Line::Record(_)) => {}
            }
        }
    }

    /// The next record of the current manifest; `None` at the end of the
    /// input or where the next manifest begins.
    pub fn next_record(&mut self) -> Result<Option<Record>, ManifestError> {
        if self.next_header.is_some() {
            return Ok(None);
        }
        if !self.started {
            return Err(ManifestError::invalid(
                &self.name,
                0,
                "records read before the header",
            ));
        }
        match self.read_line()? {
            None => Ok(None),
            Some(Line::Record(r)) => Ok(Some(r)),
            Some(Line::Header(h)) => {
                self.next_header = Some(h);
                Ok(None)
            }
        }
    }

    /// The records of the current manifest as an iterator.
    pub fn records(&mut self) -> impl Iterator<Item = Result<Record, ManifestError>> + '_ {
        std::iter::from_fn(move || self.next_record().transpose())
    }

    fn error(&self, message: impl std::fmt::Display) -> ManifestError {
        ManifestError::invalid(&self.name, self.line_no, message)
    }

    /// Read and parse the next non-blank line.
    fn read_line(&mut self) -> Result<Option<Line>, ManifestError> {
        loop {
            self.buf.clear();
            let n = (&mut self.input)
                .take(MAX_LINE + 1)
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| ManifestError::Io {
                    file: self.name.clone(),
                    source,
                })?;
            if n == 0 {
                return Ok(None);
            }
            self.line_no += 1;
            if self.buf.last() != Some(&b'\n') {
                if n as u64 > MAX_LINE {
                    return Err(self.error(format!("line longer than {MAX_LINE} bytes")));
                }
                return Err(self.error("the last line has no newline: the manifest is truncated"));
            }
            self.buf.pop();
            if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let wire: WireLine =
                serde_json::from_slice(&self.buf).map_err(|e| self.error(json_message(&e)))?;
            return wire
                .into_line(&self.buf)
                .map(Some)
                .map_err(|m| self.error(m));
        }
    }
}

/// serde_json appends "at line 1 column N"; on a one-line document only the
/// column helps.
fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => format!("{} (column {})", &text[..i], e.column()),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{EntryType, Kind, ManifestWriter};

    fn sample(id: &str, n: usize) -> Vec<u8> {
        let header = Header::new(Kind::Scanned, "home", id);
        let mut w = ManifestWriter::new(Vec::new(), &header).unwrap();
        for i in 0..n {
            w.write(&Record::new(format!("f{i}"), EntryType::File))
                .unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn several_manifests_in_one_stream() {
        let mut bytes = sample("home-20261123T101500-0001", 2);
        bytes.extend(sample("home-20261123T101500-0002", 0));
        bytes.extend(sample("home-20261123T101500-0003", 3));
        let mut r = ManifestReader::new(&bytes[..], "<stdin>");
        let mut seen = Vec::new();
        while let Some(h) = r.next_manifest().unwrap() {
            let n = r.records().count();
            seen.push((h.id, n));
        }
        assert_eq!(
            seen,
            [
                ("home-20261123T101500-0001".to_string(), 2),
                ("home-20261123T101500-0002".to_string(), 0),
                ("home-20261123T101500-0003".to_string(), 3)
            ]
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let mut bytes = sample("home-20261123T101500-0001", 2);
        bytes.extend(b"{\"path\":\"x\"}\n");
        let mut r = ManifestReader::new(&bytes[..], "m.jsonl");
        r.next_manifest().unwrap();
        let errs: Vec<_> = r.records().filter_map(Result::err).collect();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].to_string(), "m.jsonl:4: record has no \"type\"");
    }

    #[test]
    fn bad_lines_are_refused() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"{\"path\":\"a\",\"type\":\"file\"}\n", ":1: expected a manifest header"),
            (b"{\"reel\":\"manifest/9\",\"kind\":\"scanned\"}\n", ":1: unsupported manifest format"),
            (b"not json\n", ":1: expected ident"),
            (b"{\"reel\":\"manifest/1\",\"kind\":\"scanned\",\"stream\":\"s\",\"id\":\"s-1\",\"created\":\"x\"}", ":1: the last line has no newline"),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (i, (bytes, want)) in cases.iter().enumerate() {
            let p = dir.path().join(format!("m{i}.jsonl"));
            std::fs::write(&p, bytes).unwrap();
            let err = ManifestReader::open(&p)
                .err()
                .expect("must fail")
                .to_string();
            assert!(err.starts_with(&p.display().to_string()), "{err}");
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    }

    #[test]
    fn unsafe_paths_are_refused() {
        let header = sample("home-20261123T101500-0001", 0);
        for (line, want) in [
            (
                r#"{"path":"/etc/passwd","type":"file"}"#,
                "must be relative",
            ),
            (
                r#"{"path":"a/../../x","type":"file"}"#,
                "must not contain \"..\"",
            ),
            (r#"{"path":"","type":"file"}"#, "is empty"),
            (r#"{"path":"a","path_b64":"YQ==","type":"file"}"#, "both"),
            (r#"{"path":"l","type":"symlink"}"#, "needs a \"link\""),
            (
                r#"{"path":"f","type":"file","sha256":"abc"}"#,
                "64 hex digits",
            ),
            (r#"{"path":"f","type":"sock"}"#, "unknown variant"),
        ] {
            let mut bytes = header.clone();
            bytes.extend(line.as_bytes());
            bytes.push(b'\n');
            let mut r = ManifestReader::new(&bytes[..], "m");
            r.next_manifest().unwrap();
            let err = r.next_record().unwrap_err().to_string();
            assert!(err.starts_with("m:2: "), "{err}");
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    }
}
