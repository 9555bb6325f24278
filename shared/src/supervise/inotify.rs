//! inotify on the streams' local sources: a change under a source asks for
//! a scan of its stream soon. Watches are one per directory; a directory
//! created later is watched as soon as its creation is seen. When the
//! kernel's watch limit is reached, or the event queue overflows, the
//! periodic scan (`scan_interval`) is what remains: inotify is a hint,
//! never the only way changes are found (it sees nothing on NFS either).

use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::config::{Config, Source};
use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

pub struct Watcher {
    inotify: Inotify,
    /// Each watch: its stream, its directory, and the device of the source
    /// root when the stream stays on one file system.
    watches: HashMap<WatchDescriptor, (String, PathBuf, Option<u64>)>,
    full: bool,
}

fn mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_ONLYDIR
        | AddWatchFlags::IN_DONT_FOLLOW
}

impl Watcher {
    /// Watch every local source of `config`.
    pub fn new(config: &Config) -> std::io::Result<Watcher> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        let mut w = Watcher {
            inotify,
            watches: HashMap::new(),
            full: false,
        };
        for s in &config.streams {
            if let Source::Local(dir) = &s.source {
                let dev = std::fs::metadata(dir).ok().map(|m| m.dev());
                let dev = if s.one_file_system { dev } else { None };
                w.add_tree(&s.name, dir, dev);
                log::info!("stream {}: watching {} for changes", s.name, dir.display());
            }
        }
        Ok(w)
    }

    pub fn count(&self) -> usize {
        self.watches.len()
    }

    /// Watch `dir` and every directory below it (symbolic links are not
    /// followed; with `dev`, other file systems are left out).
    fn add_tree(&mut self, stream: &str, dir: &Path, dev: Option<u64>) {
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            if self.full {
                return;
            }
            match self.inotify.add_watch(&d, mask()) {
                Ok(wd) => {
                    self.watches
                        .insert(wd, (stream.to_string(), d.clone(), dev));
                }
                Err(Errno::ENOSPC) => {
                    log::warn!(
                        "inotify watch limit reached at {} watches (sysctl fs.inotify.max_user_watches): changes in the rest are found by the periodic scan",
                        self.watches.len()
                    );
                    self.full = true;
                    return;
                }
                // Gone already, or not readable: the scan will say so.
                Err(e) => {
                    log::debug!("inotify: {}: {e}", d.display());
                    continue;
                }
            }
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let Ok(t) = e.file_type() else { continue };
                if !t.is_dir() {
                    continue;
                }
                let path = e.path();
                if let Some(dev) = dev
                    && std::fs::symlink_metadata(&path).is_ok_and(|m| m.dev() != dev)
                {
                    continue;
                }
                todo.push(path);
            }
        }
    }

    /// The streams with changes since the last call.
    pub fn changed(&mut self) -> BTreeSet<String> {
        let mut streams = BTreeSet::new();
        let mut new_dirs = Vec::new();
        loop {
            let events = match self.inotify.read_events() {
                Ok(ev) if !ev.is_empty() => ev,
                Ok(_) | Err(Errno::EAGAIN) => break,
                Err(e) => {
                    log::warn!("inotify: {e}");
                    break;
                }
            };
            for ev in events {
                if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    // Lost events: every stream may have changed.
                    log::info!("inotify queue overflowed: scanning every stream");
                    streams.extend(self.watches.values().map(|(s, _, _)| s.clone()));
                    continue;
                }
                if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                    self.watches.remove(&ev.wd);
                    continue;
                }
                let Some((stream, dir, dev)) = self.watches.get(&ev.wd) else {
                    continue;
                };
                streams.insert(stream.clone());
                if ev.mask.contains(AddWatchFlags::IN_ISDIR)
                    && ev
                        .mask
                        .intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
                    && let Some(name) = &ev.name
                {
                    new_dirs.push((stream.clone(), dir.join(name), *dev));
                }
            }
        }
        for (stream, dir, dev) in new_dirs {
            self.add_tree(&stream, &dir, dev);
        }
        streams
    }
}
