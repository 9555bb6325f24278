//! The writing end of a scan: cuts what the walk found into `scanned`
//! manifests (a new one once the batch holds `archive_size` bytes or
//! `batch_records` records, so the stages downstream can start before a
//! huge scan ends), and resolves hard links.
//!
//! Hard links: regular files with more than one link are held back until
//! the walk ends, grouped by device and inode. A group goes out when any of
//! its paths is new or changed: the smallest path as the file, the others
//! as `hardlink` records pointing at it (their `size` is the linked file's),
//! all in one manifest, because tar needs the target in the same archive.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;

use crate::manifest::{EntryType, Header, Kind, Record};
use crate::spool::{Output, OutputItem, Spool};

pub struct Batcher<'a> {
    pub output: &'a mut Output,
    pub spool: &'a Spool,
    pub stream: String,
    pub source: String,
    pub max_bytes: u64,
    pub max_records: u64,
    current: Option<(OutputItem, u64)>,
    pub manifests: Vec<String>,
    links: HashMap<(u64, u64), Vec<(Record, bool)>>,
}

impl<'a> Batcher<'a> {
    pub fn new(
        output: &'a mut Output,
        spool: &'a Spool,
        stream: &str,
        source: String,
        max_bytes: u64,
        max_records: u64,
    ) -> Self {
        Batcher {
            output,
            spool,
            stream: stream.to_string(),
            source,
            max_bytes: max_bytes.max(1),
            max_records: max_records.max(1),
            current: None,
            manifests: Vec::new(),
            links: HashMap::new(),
        }
    }

    fn item(&mut self) -> anyhow::Result<&mut (OutputItem, u64)> {
        if self.current.is_none() {
            let id = self.spool.new_id(&self.stream)?;
            let mut header = Header::new(Kind::Scanned, &self.stream, &id);
            header
                .extra
                .insert("source".into(), self.source.clone().into());
            let item = self.output.begin(&header)?;
            self.manifests.push(id);
            self.current = Some((item, 0));
        }
        Ok(self.current.as_mut().expect("just set"))
    }

    pub fn push(&mut self, record: &Record) -> anyhow::Result<()> {
        let (max_bytes, max_records) = (self.max_bytes, self.max_records);
        let (item, bytes) = self.item()?;
        item.write(record)?;
        *bytes += record.size;
        if *bytes >= max_bytes || item.records() >= max_records {
            self.cut()?;
        }
        Ok(())
    }

    /// Publish the current batch.
    pub fn cut(&mut self) -> anyhow::Result<()> {
        if let Some((item, _)) = self.current.take() {
            item.commit()?;
        }
        Ok(())
    }

    pub fn hold_link(&mut self, dev: u64, ino: u64, record: Record, wanted: bool) {
        self.links
            .entry((dev, ino))
            .or_default()
            .push((record, wanted));
    }

    /// Write the hard-link groups that have a new or changed path; returns
    /// (records written, bytes of content).
    pub fn flush_links(&mut self) -> anyhow::Result<(u64, u64)> {
        let mut groups: Vec<Vec<(Record, bool)>> = self
            .links
            .drain()
            .map(|(_, g)| g)
            .filter(|g| g.iter().any(|(_, wanted)| *wanted))
            .collect();
        for g in &mut groups {
            g.sort_by(|a, b| {
                a.0.path
                    .as_os_str()
                    .as_bytes()
                    .cmp(b.0.path.as_os_str().as_bytes())
            });
        }
        groups.sort_by(|a, b| a[0].0.path.cmp(&b[0].0.path));
        let (mut records, mut bytes) = (0, 0);
        for group in groups {
            // Cut between groups, never inside one.
            if let Some((item, b)) = &self.current
                && (*b >= self.max_bytes || item.records() >= self.max_records)
            {
                self.cut()?;
            }
            let first = group[0].0.path.clone();
            bytes += group[0].0.size;
            let (item, batch_bytes) = self.item()?;
            *batch_bytes += group[0].0.size;
            for (i, (mut r, _)) in group.into_iter().enumerate() {
                if i > 0 {
                    r.entry = EntryType::Hardlink;
                    r.link = Some(first.clone());
                }
                item.write(&r)?;
                records += 1;
            }
        }
        Ok((records, bytes))
    }
}
