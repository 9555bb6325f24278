//! Finding the line of a key, and the key at a byte offset, in the config
//! text, so every error can say `pipeline.toml:12: cache.low_water: …`.
//!
//! The TOML is parsed a second time into toml's spanned document tree; the
//! typed [`super::Config`] does not keep spans, which keeps the model plain.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl From<&str> for Seg {
    fn from(s: &str) -> Self {
        Seg::Key(s.to_string())
    }
}

impl From<usize> for Seg {
    fn from(i: usize) -> Self {
        Seg::Index(i)
    }
}

/// `stream[1].source`
pub fn render_key(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

pub struct Document<'a> {
    text: &'a str,
    root: DeTable<'a>,
}

impl<'a> Document<'a> {
    /// Parse; a syntax error comes back as its line and a one-line message.
    pub fn parse(text: &'a str) -> Result<Self, (Option<usize>, String)> {
        match DeTable::parse(text) {
            Ok(root) => Ok(Document {
                text,
                root: root.into_inner(),
            }),
            Err(e) => {
                let line = e.span().map(|s| line_of(text, s.start));
                Err((line, format!("syntax error: {}", e.message().trim())))
            }
        }
    }

    /// The 1-based line holding byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        line_of(self.text, offset)
    }

    /// The deepest key whose key or value covers `offset`.
    pub fn key_at(&self, offset: usize) -> Option<String> {
        let mut path = Vec::new();
        key_in_table(&self.root, offset, &mut path);
        (!path.is_empty()).then(|| render_key(&path))
    }

    /// The line where `path` is set; for a key that is not in the file (a
    /// default), the line of the nearest enclosing table that is.
    pub fn line_of_key(&self, path: &[Seg]) -> Option<usize> {
        let mut best: Option<Range<usize>> = None;
        let mut table = Some(&self.root);
        let mut value: Option<&DeValue> = None;
        for seg in path {
            let found = match (seg, table, value) {
                (Seg::Key(k), Some(t), _) => t
                    .iter()
                    .find(|(key, _)| key.get_ref().as_ref() == k.as_str())
                    .map(|(key, v)| (key.span(), v)),
                (Seg::Index(i), _, Some(DeValue::Array(a))) => a.get(*i).map(|v| (v.span(), v)),
                _ => None,
            };
            let Some((span, v)) = found else { break };
            best = Some(span);
            value = Some(v.get_ref());
            table = match v.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            };
        }
        best.map(|s| self.line_of(s.start))
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn covers(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

fn key_in_table(table: &DeTable, offset: usize, path: &mut Vec<Seg>) -> bool {
    for (key, value) in table.iter() {
        if covers(&key.span(), offset) {
            path.push(Seg::Key(key.get_ref().to_string()));
            return true;
        }
        if covers(&value.span(), offset) {
            path.push(Seg::Key(key.get_ref().to_string()));
            key_in_value(value.get_ref(), offset, path);
            return true;
        }
    }
    // Array-of-tables elements and dotted tables do not always cover their
    // whole body; look inside them too.
    for (key, value) in table.iter() {
        path.push(Seg::Key(key.get_ref().to_string()));
        if key_in_value(value.get_ref(), offset, path) {
            return true;
        }
        path.pop();
    }
    false
}

fn key_in_value(value: &DeValue, offset: usize, path: &mut Vec<Seg>) -> bool {
    match value {
        DeValue::Table(t) => key_in_table(t, offset, path),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                if covers(&item.span(), offset) {
                    key_in_value(item.get_ref(), offset, path);
                    return true;
                }
                if key_in_value(item.get_ref(), offset, path) {
                    return true;
                }
                path.pop();
            }
            false
        }
        _ => false,
    }
}
