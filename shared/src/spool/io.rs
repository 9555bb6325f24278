//! Where a stage takes items from and puts them: its spool queue, or
//! stdin/stdout for `--in -` and `--out -` (docs/spool.md §6).
//!
//! An item that arrives on stdin is first published into the stage's input
//! queue, with the lock held from the start, and then processed like any
//! other claimed item. So a stage killed halfway through a pipe loses
//! nothing: the item waits in its queue for the next run.

use std::io::{BufRead, BufReader, BufWriter, Stdout, Write};

use super::{Claim, IoContext, Pending, Queue, Spool, SpoolError};
use crate::manifest::{Header, ManifestError, ManifestReader, ManifestWriter, Record};

/// The source of a stage's items.
pub enum Input {
    /// Claim items from a queue, oldest first, until it is empty.
    Queue { spool: Spool, queue: Queue },
    /// Read manifests from a stream (stdin); each is spooled into `queue`
    /// as it arrives.
    Stream {
        spool: Spool,
        queue: Queue,
        reader: ManifestReader<Box<dyn BufRead>>,
        /// The stream is this process's stdin (whether it has something
        /// to read can be asked: [`Input::ready`]).
        stdin: bool,
    },
}

impl Input {
    /// A stage's input: stdin for `--in -` (`from_stdin`), else `queue`.
    pub fn of(spool: &Spool, queue: Queue, from_stdin: bool) -> Input {
        if from_stdin {
            Input::stdin(spool.clone(), queue)
        } else {
            Input::Queue {
                spool: spool.clone(),
                queue,
            }
        }
    }

    /// Manifests from stdin, each spooled into `queue` as it arrives.
    pub fn stdin(spool: Spool, queue: Queue) -> Input {
        let reader: Box<dyn BufRead> = Box::new(BufReader::new(std::io::stdin()));
        Input::Stream {
            spool,
            queue,
            reader: ManifestReader::new(reader, "<stdin>"),
            stdin: true,
        }
    }

    pub fn stream(spool: Spool, queue: Queue, reader: Box<dyn BufRead>, name: &str) -> Input {
        Input::Stream {
            spool,
            queue,
            reader: ManifestReader::new(reader, name),
            stdin: false,
        }
    }

    /// Whether the next item can be taken without waiting for a writer:
    /// always from a queue; from stdin when it is a file, or a pipe with
    /// something in it (a manifest begun counts; reading the rest may
    /// still wait). Other streams: not known, so no.
    pub fn ready(&self) -> bool {
        match self {
            Input::Queue { .. } => true,
            Input::Stream { stdin: true, .. } => {
                use std::os::fd::AsFd;
                let stdin = std::io::stdin();
                let mut fds = [nix::poll::PollFd::new(
                    stdin.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).is_ok_and(|n| n > 0)
            }
            Input::Stream { .. } => false,
        }
    }

    /// [`Input::next_item`], taking from a queue first the oldest item
    /// `prefer` likes (by id); from a stream, the next one.
    pub fn next_item_preferring(
        &mut self,
        prefer: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Option<Claim>, SpoolError> {
        match self {
            Input::Queue { spool, queue } => spool.claim_preferring(*queue, prefer),
            Input::Stream { .. } => self.next_item(),
        }
    }

    /// The next item to work on, claimed; `None` when there is no more.
    pub fn next_item(&mut self) -> Result<Option<Claim>, SpoolError> {
        match self {
            Input::Queue { spool, queue } => spool.claim(*queue),
            Input::Stream {
                spool,
                queue,
                reader,
                ..
            } => {
                let Some(header) = reader.next_manifest()? else {
                    return Ok(None);
                };
                let want = queue.kind().expect("a stage reads a pipeline queue");
                if header.kind != want {
                    return Err(ManifestError::invalid(
                        reader.name(),
                        reader.line(),
                        format!(
                            "expected a \"{want}\" manifest here, got \"{}\"",
                            header.kind
                        ),
                    )
                    .into());
                }
                let mut pending = spool.begin(*queue, &header)?;
                while let Some(record) = reader.next_record()? {
                    pending.write(&record)?;
                }
                Ok(Some(pending.commit_claimed()?))
            }
        }
    }
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Queue { queue, .. } => write!(f, "Input::Queue({queue})"),
            Input::Stream { reader, .. } => write!(f, "Input::Stream({})", reader.name()),
        }
    }
}

/// Where a stage's output items go.
pub enum Output {
    Queue {
        spool: Spool,
        queue: Queue,
    },
    /// Manifests one after another on stdout (`--out -`).
    Stdout,
}

impl Output {
    /// A stage's output: stdout for `--out -` (`to_stdout`), else `queue`.
    pub fn of(spool: &Spool, queue: Queue, to_stdout: bool) -> Output {
        if to_stdout {
            Output::Stdout
        } else {
            Output::Queue {
                spool: spool.clone(),
                queue,
            }
        }
    }

    pub fn stdout() -> Output {
        Output::Stdout
    }

    /// Start an output item.
    pub fn begin(&mut self, header: &Header) -> Result<OutputItem, SpoolError> {
        match self {
            Output::Queue { spool, queue } => Ok(OutputItem::Spool(spool.begin(*queue, header)?)),
            Output::Stdout => {
                let out = BufWriter::with_capacity(256 * 1024, std::io::stdout());
                let writer = ManifestWriter::new(out, header).at("<stdout>".as_ref())?;
                Ok(OutputItem::Stdout(writer))
            }
        }
    }
}

/// One output item being written. On stdout, an item is flushed whole when
/// committed, so items never interleave.
pub enum OutputItem {
    Spool(Pending),
    Stdout(ManifestWriter<BufWriter<Stdout>>),
}

impl OutputItem {
    pub fn write(&mut self, record: &Record) -> Result<(), SpoolError> {
        match self {
            OutputItem::Spool(p) => p.write(record),
            OutputItem::Stdout(w) => w.write(record).at("<stdout>".as_ref()),
        }
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        match self {
            OutputItem::Spool(p) => p.records(),
            OutputItem::Stdout(w) => w.records(),
        }
    }

    /// Publish the item (spool) or flush it (stdout).
    pub fn commit(self) -> Result<(), SpoolError> {
        match self {
            OutputItem::Spool(p) => p.commit().map(drop),
            OutputItem::Stdout(w) => w
                .finish()
                .and_then(|mut out| out.flush())
                .at("<stdout>".as_ref()),
        }
    }
}
