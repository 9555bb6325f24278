//! Archives behind filemarks that did not wait: written, but on tape only
//! once the drive has flushed its buffer. Until then the catalog keeps the
//! start of the first of them as where a run that dies takes over
//! (`writing`); a flush, then the tape's state saved, then their `written`
//! items published in the order they were written. A run that dies before
//! the publishing writes the unpublished ones again: their items are
//! still queued.

use crate::catalog::tapes::Tape;
use crate::config::Config;
use crate::manifest::{Digest, Header, Record};
use crate::spool::{Claim, Output, Spool};
use crate::tape::label::Label;
use crate::tape::{Drive, Written};
use crate::units::Size;

use super::items::{Placement, publish, publish_next_copy};
use super::tapes::close_tape;

/// What publishing needs besides the tape.
pub(super) struct Publishing<'a> {
    pub(super) spool: &'a Spool,
    pub(super) config: &'a Config,
    pub(super) block_size: usize,
}

/// An archive written whole to the loaded tape, not yet flushed.
pub(super) struct OnTape {
    pub(super) claim: Claim,
    pub(super) header: Header,
    pub(super) records: Vec<Record>,
    /// The pool it went to.
    pub(super) pool: String,
    pub(super) file: u64,
    pub(super) start: u64,
    pub(super) bytes: u64,
    pub(super) sha256: Option<Digest>,
    pub(super) sealed_for: Vec<String>,
}

/// The archives written since the last flush, oldest first.
#[derive(Default)]
pub(super) struct Behind {
    items: Vec<OnTape>,
    bytes: u64,
}

impl Behind {
    pub(super) fn push(&mut self, archive: OnTape) {
        self.bytes += archive.bytes;
        self.items.push(archive);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Bytes written since the last flush.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Let the archives go unpublished: they stay queued and are written
    /// again (what reached the tape is unknown).
    pub(super) fn release(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }

    /// [`Behind::settle`], then close the tape with its catalog when it is
    /// past its early warning (`past_warning`: the last filemark said so;
    /// or the flush does). Returns how many were published.
    pub(super) fn settle_closing(
        &mut self,
        drive: &mut dyn Drive,
        tape: &mut Tape,
        label: &Label,
        output: &mut Output,
        ctx: &Publishing,
        past_warning: bool,
    ) -> anyhow::Result<usize> {
        let (n, flushed) = self.settle(drive, tape, label, output, ctx)?;
        if past_warning || flushed == Written::EarlyWarning {
            close_tape(drive, tape, &ctx.config.paths.catalog, ctx.block_size)?;
        }
        Ok(n)
    }

    /// Flush the drive, save the tape's state, then publish each archive
    /// (its `written` item, its next copy) and finish its packed item.
    /// Returns how many were published and what the flush said of the
    /// early warning. Nothing behind: nothing done.
    pub(super) fn settle(
        &mut self,
        drive: &mut dyn Drive,
        tape: &mut Tape,
        label: &Label,
        output: &mut Output,
        ctx: &Publishing,
    ) -> anyhow::Result<(usize, Written)> {
        if self.items.is_empty() {
            return Ok((0, Written::Ok));
        }
        let catalog = &ctx.config.paths.catalog;
        // The flush the feature `unflushed-tape` (never in a build anyone
        // runs) leaves out, to prove that tests/it/write.rs finds archives
        // published before they were on tape.
        #[cfg(not(feature = "unflushed-tape"))]
        let flushed = drive.flush();
        #[cfg(feature = "unflushed-tape")]
        let flushed = {
            let _ = &drive;
            Ok::<_, crate::tape::TapeError>(Written::Ok)
        };
        let flushed = match flushed {
            Ok(w) => w,
            Err(e) => {
                tape.state = crate::catalog::tapes::TapeState::Suspect;
                tape.save(catalog)?;
                let n = self.items.len();
                self.release();
                return Err(anyhow::Error::from(e).context(format!(
                    "flushing tape {} after {n} archive(s) (now marked suspect; they stay queued)",
                    label.label
                )));
            }
        };
        // On tape: the catalog's tape first, so that a run dying while
        // publishing never takes over before a published archive.
        tape.writing = None;
        tape.save(catalog)?;
        let n = self.items.len();
        for a in self.items.drain(..) {
            publish(
                output,
                catalog,
                &a.header,
                &a.header.id,
                &a.records,
                &Placement {
                    tape: label,
                    file: a.file,
                    start: a.start,
                    block_size: ctx.block_size,
                    partial: false,
                    sha256: a.sha256,
                    bytes: a.bytes,
                    sealed_for: &a.sealed_for,
                },
            )?;
            // The next copy, in the next pool of the stream's policy: from
            // the same archive, which stays in the cache until every copy
            // is verified.
            if let Some(next) =
                publish_next_copy(ctx.spool, ctx.config, &a.header, &a.records, &a.pool)?
            {
                log::info!("{}: the next copy is {next}", a.header.id);
            }
            a.claim.finish()?;
            log::info!(
                "{}: tape {} file {} from block {} ({})",
                a.header.id,
                label.label,
                a.file,
                a.start,
                Size(a.bytes).human()
            );
        }
        self.bytes = 0;
        Ok((n, flushed))
    }
}
