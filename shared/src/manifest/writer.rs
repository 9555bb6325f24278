//! Streaming manifest writer: one line per call, nothing held in memory.

use std::io::{self, Write};

use super::{Header, Record};

/// Writes a header, then records, as JSON Lines.
pub struct ManifestWriter<W: Write> {
    out: W,
    records: u64,
}

impl<W: Write> ManifestWriter<W> {
    /// Start a manifest by writing its header line.
    pub fn new(mut out: W, header: &Header) -> io::Result<Self> {
        serde_json::to_writer(&mut out, header)?;
        out.write_all(b"\n")?;
        Ok(ManifestWriter { out, records: 0 })
    }

    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        debug_assert!(record.validate().is_ok(), "{:?}", record.validate());
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")?;
        self.records += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Flush and hand back the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }
}
