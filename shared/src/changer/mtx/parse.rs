//! Reading the text of `mtx status` into a [`ChangerStatus`].
//!
//! mtx prints one header line and one line per element:
//!
//! ```text
//!   Storage Changer /dev/sg5:2 Drives, 24 Slots ( 1 Import/Export )
//! Data Transfer Element 0:Full (Storage Element 22 Loaded):VolumeTag = 000057L5
//! Data Transfer Element 1:Empty
//!       Storage Element 13:Full :VolumeTag=000052L5
//!       Storage Element 24 IMPORT/EXPORT:Empty
//! ```
//!
//! The format is stable but its spacing is not: drives write `VolumeTag = X`
//! and slots `VolumeTag=X`, a full slot is `Full ` with a trailing space,
//! libraries pad tags with spaces to 32 or 36 characters, and copies that
//! went through documents or other tools lose the header's indent, gain tabs
//! or CRLF line ends. So the parser splits on words and on `:`/`=` rather than
//! on exact columns, and trims every value. It stays strict about *what* a
//! line says: a line it does not understand is an error naming that line,
//! because guessing wrong about which slot holds which tape moves the wrong
//! tape.
//!
//! mtx writes SCSI sense data (`mtx: Request Sense: …`) and
//! `Mode sense … failed` to stderr before the status when the library
//! complains; those lines are skipped, but their sense key is kept to explain
//! a failure. When mtx cannot read the element status at all it prints
//! `READ ELEMENT STATUS Command Failed` instead of a status, which is
//! reported as [`ChangerError::NotReady`].

use std::collections::HashSet;

use super::sense::{Sense, is_noise};
use crate::changer::{ChangerError, ChangerStatus, DriveElement, SlotElement};

/// Parse the output of `mtx status`.
///
/// Accepts stdout alone or stdout and stderr together. Drives are numbered
/// from 0 and slots from 1, as mtx numbers them. When the header line is
/// present, the drive, slot and import/export counts it announces must match
/// the element lines, so a cut-off output is an error rather than a smaller
/// library.
///
/// Errors: [`ChangerError::NotReady`] when mtx says it could not read the
/// element status; [`ChangerError::Parse`], with the 1-based line, for a line
/// it does not understand or counts that disagree with the header.
pub fn parse_status(text: &str) -> Result<ChangerStatus, ChangerError> {
    let mut parser = Parser::default();
    for raw in text.lines() {
        parser
            .line(raw)
            .map_err(|message| parse_error(parser.line, message))?;
        if let Some(reason) = parser.failure.take() {
            return Err(ChangerError::NotReady(reason));
        }
    }
    let last_line = parser.line.max(1);
    parser.finish(last_line)
}

fn parse_error(line: usize, message: String) -> ChangerError {
    ChangerError::Parse { line, message }
}

/// What the header line announces.
struct Header {
    line: usize,
    drives: u32,
    slots: u32,
    import_export: u32,
}

#[derive(Default)]
struct Parser {
    /// The number of the line being read (1-based).
    line: usize,
    header: Option<Header>,
    status: ChangerStatus,
    drive_seen: HashSet<u32>,
    slot_seen: HashSet<u32>,
    sense: Sense,
    /// Set when mtx said it could not read the status.
    failure: Option<String>,
}

impl Parser {
    fn line(&mut self, raw: &str) -> Result<(), String> {
        self.line += 1;
        // `trim` also removes the `\r` of CRLF line ends and the padding
        // after a tag.
        let line = raw.trim();
        if line.is_empty() {
            return Ok(());
        }
        if self.sense.note(line) || is_noise(line) {
            return Ok(());
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if starts_with_words(&words, &["storage", "changer"]) {
            return self.header(line);
        }
        let (head, rest) = match line.split_once(':') {
            Some((head, rest)) => (head.split_whitespace().collect::<Vec<_>>(), rest),
            None => (Vec::new(), ""),
        };
        if starts_with_words(&head, &["data", "transfer", "element"]) && head.len() == 4 {
            let index = element_number(head[3])?;
            return self.drive(index, rest);
        }
        if starts_with_words(&head, &["storage", "element"]) {
            let import_export = match &head[2..] {
                [_] => false,
                [_, ie] if ie.eq_ignore_ascii_case("import/export") => true,
                _ => return Err(unrecognised(line)),
            };
            let number = element_number(head[2])?;
            return self.slot(number, import_export, rest);
        }
        if line.to_ascii_lowercase().contains("command failed") {
            self.failure = Some(match self.sense.describe() {
                Some(sense) => format!("{line} ({sense})"),
                None => line.to_string(),
            });
            return Ok(());
        }
        Err(unrecognised(line))
    }

    /// `Storage Changer <device>:<D> Drives, <S> Slots ( <I> Import/Export )`
    fn header(&mut self, line: &str) -> Result<(), String> {
        if let Some(first) = &self.header {
            return Err(format!(
                "a second `Storage Changer` header (the first is on line {}): \
                 are these two outputs run together?",
                first.line
            ));
        }
        if !self.status.drives.is_empty() || !self.status.slots.is_empty() {
            return Err("the `Storage Changer` header comes after element lines".into());
        }
        // The device name may itself hold colons (`/dev/disk/by-path/…0:0:0`),
        // the counts never do, so they follow the last one.
        let counts = line.rsplit_once(':').map(|(_, c)| c).unwrap_or("");
        let words: Vec<&str> = counts
            .split(|c: char| c.is_whitespace() || matches!(c, ',' | '(' | ')'))
            .filter(|w| !w.is_empty())
            .collect();
        let expected = || {
            format!(
                "cannot read the counts in `{}`: expected \
                 `<N> Drives, <N> Slots ( <N> Import/Export )`",
                counts.trim()
            )
        };
        let [d, drives_word, s, slots_word, i, ie_word] = words[..] else {
            return Err(expected());
        };
        let word_ok = |word: &str, singular: &str| {
            let word = word.to_ascii_lowercase();
            word == singular || word == format!("{singular}s")
        };
        if !word_ok(drives_word, "drive")
            || !word_ok(slots_word, "slot")
            || !ie_word.eq_ignore_ascii_case("import/export")
        {
            return Err(expected());
        }
        let count = |w: &str| w.parse::<u32>().map_err(|_| expected());
        self.header = Some(Header {
            line: self.line,
            drives: count(d)?,
            slots: count(s)?,
            import_export: count(i)?,
        });
        Ok(())
    }

    fn drive(&mut self, index: u32, rest: &str) -> Result<(), String> {
        if !self.drive_seen.insert(index) {
            return Err(format!("drive {index} is listed twice"));
        }
        if let Some(h) = &self.header {
            if index >= h.drives {
                return Err(format!(
                    "the header announces {}, so there is no drive {index} \
                     (drives are numbered from 0)",
                    count(h.drives.into(), "drive")
                ));
            }
        }
        let fields = Fields::split(rest)?;
        let words = state_words(fields.state);
        let (full, source_slot) = match words[..] {
            [w] if w.eq_ignore_ascii_case("empty") => (false, None),
            [w] if w.eq_ignore_ascii_case("full") => (true, None),
            [w, ref clause @ ..] if w.eq_ignore_ascii_case("full") => {
                (true, source_clause(clause, fields.state)?)
            }
            _ => return Err(bad_state(fields.state, "`Empty` or `Full (…)`")),
        };
        self.status.drives.push(DriveElement {
            index,
            full,
            // An empty element has no tape, whatever tag the library reports.
            barcode: if full { fields.volume_tag } else { None },
            source_slot,
            serial: None,
        });
        Ok(())
    }

    fn slot(&mut self, number: u32, import_export: bool, rest: &str) -> Result<(), String> {
        if number == 0 {
            return Err("storage element 0: slots are numbered from 1".into());
        }
        if !self.slot_seen.insert(number) {
            return Err(format!("slot {number} is listed twice"));
        }
        if let Some(h) = &self.header {
            if number > h.slots {
                return Err(format!(
                    "the header announces {}, so there is no slot {number}",
                    count(h.slots.into(), "slot")
                ));
            }
        }
        let fields = Fields::split(rest)?;
        let full = match state_words(fields.state)[..] {
            [w] if w.eq_ignore_ascii_case("empty") => false,
            [w] if w.eq_ignore_ascii_case("full") => true,
            _ => return Err(bad_state(fields.state, "`Empty` or `Full`")),
        };
        self.status.slots.push(SlotElement {
            number,
            full,
            barcode: if full { fields.volume_tag } else { None },
            import_export,
        });
        Ok(())
    }

    fn finish(self, last_line: usize) -> Result<ChangerStatus, ChangerError> {
        let status = self.status;
        let Some(h) = self.header else {
            if status.drives.is_empty() && status.slots.is_empty() {
                let mut message =
                    "no `Storage Changer` header and no element lines: not `mtx status` output"
                        .to_string();
                if let Some(sense) = self.sense.describe() {
                    message.push_str(&format!(" (mtx reported {sense})"));
                }
                return Err(parse_error(last_line, message));
            }
            return Ok(status);
        };
        let drives = status.drives.len() as u64;
        let slots = status.slots.len() as u64;
        let ie = status.slots.iter().filter(|s| s.import_export).count() as u64;
        let announced = (h.drives as u64, h.slots as u64, h.import_export as u64);
        if (drives, slots, ie) != announced {
            let cut_off = drives < announced.0 || slots < announced.1;
            let message = format!(
                "{}: the header announces {} and {} ({} import/export), \
                 but {} and {} ({ie} import/export) are listed",
                if cut_off {
                    "incomplete output"
                } else {
                    "inconsistent output"
                },
                count(announced.0, "drive"),
                count(announced.1, "slot"),
                h.import_export,
                count(drives, "drive"),
                count(slots, "slot"),
            );
            return Err(parse_error(h.line, message));
        }
        Ok(status)
    }
}

/// The part of an element line after the first `:`: a state, then
/// `:VolumeTag=…` and `:AlternateVolumeTag=…` fields (with or without spaces
/// around `=`).
struct Fields<'a> {
    state: &'a str,
    volume_tag: Option<String>,
}

impl<'a> Fields<'a> {
    fn split(rest: &'a str) -> Result<Self, String> {
        let mut pieces = rest.split(':');
        let state = pieces.next().unwrap_or("");
        // (name, value) pairs; a piece that does not start a known field is
        // a colon inside the previous value, since a volume tag may hold any
        // printable character.
        let mut fields: Vec<(&str, String)> = Vec::new();
        for piece in pieces {
            match field_start(piece) {
                Some((name, value)) => {
                    if fields.iter().any(|(n, _)| *n == name) {
                        return Err(format!("`{name}` appears twice"));
                    }
                    fields.push((name, value.to_string()));
                }
                None => match fields.last_mut() {
                    Some((_, value)) => {
                        value.push(':');
                        value.push_str(piece);
                    }
                    None => {
                        return Err(format!(
                            "unknown field `{}`: expected `VolumeTag=` or `AlternateVolumeTag=`",
                            piece.trim()
                        ));
                    }
                },
            }
        }
        // The alternate tag is accepted but not kept: reel identifies tapes
        // by their primary barcode only.
        let volume_tag = fields
            .into_iter()
            .find(|(name, _)| *name == "VolumeTag")
            .and_then(|(_, value)| {
                let value = value.trim();
                (!value.is_empty()).then(|| value.to_string())
            });
        Ok(Fields { state, volume_tag })
    }
}

/// `VolumeTag = X` → ("VolumeTag", "X…"), for the two fields mtx prints.
fn field_start(piece: &str) -> Option<(&'static str, &str)> {
    let piece = piece.trim_start();
    for name in ["VolumeTag", "AlternateVolumeTag"] {
        let Some(head) = piece.get(..name.len()) else {
            continue;
        };
        if head.eq_ignore_ascii_case(name) {
            if let Some(value) = piece[name.len()..].trim_start().strip_prefix('=') {
                return Some((name, value));
            }
        }
    }
    None
}

/// `(Storage Element 22 Loaded)` → Some(22); `(Unknown Storage Element
/// Loaded)` → None.
fn source_clause(words: &[&str], state: &str) -> Result<Option<u32>, String> {
    let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    match lower[..] {
        ["unknown", "storage", "element", "loaded"] => Ok(None),
        ["storage", "element", n, "loaded"] => match n.parse::<u32>() {
            Ok(0) | Err(_) => Err(bad_state(state, "a source slot numbered from 1")),
            Ok(n) => Ok(Some(n)),
        },
        _ => Err(bad_state(
            state,
            "`Full (Storage Element <N> Loaded)` or `Full (Unknown Storage Element Loaded)`",
        )),
    }
}

/// The words of a state, parentheses dropped: `Full (Storage Element 6
/// Loaded)` → [Full, Storage, Element, 6, Loaded].
fn state_words(state: &str) -> Vec<&str> {
    state
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|w| !w.is_empty())
        .collect()
}

fn starts_with_words(words: &[&str], expected: &[&str]) -> bool {
    words.len() >= expected.len()
        && words
            .iter()
            .zip(expected)
            .all(|(w, e)| w.eq_ignore_ascii_case(e))
}

/// `1 slot`, `41 slots`.
pub(super) fn count(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn element_number(word: &str) -> Result<u32, String> {
    word.parse()
        .map_err(|_| format!("`{word}` is not an element number"))
}

fn bad_state(state: &str, expected: &str) -> String {
    format!(
        "unknown element state `{}`: expected {expected}",
        state.trim()
    )
}

fn unrecognised(line: &str) -> String {
    format!("unrecognised line `{line}`")
}
