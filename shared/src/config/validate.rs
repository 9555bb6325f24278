//! The checks serde cannot do: values that are each fine but impossible
//! together, or impossible for the hardware. Each failure names its key.

use std::collections::HashSet;
use std::path::Path;

use super::locate::Seg;
use super::{Config, Source, Water};
use crate::fsutil::resolve_existing_prefix;

type Failure = (Vec<Seg>, String);

macro_rules! key {
    ($($seg:expr),* $(,)?) => { vec![$(Seg::from($seg)),*] };
}

/// Largest block the Linux st driver is asked for; real drives allow less
/// (LTO: 8 MiB), the drive self-test finds the exact limit.
const MAX_BLOCK: u64 = 16 << 20;

pub fn check(c: &Config) -> Result<(), Failure> {
    check_paths(c)?;
    check_streams(c)?;
    check_drives(c)?;
    check_changers(c)?;
    check_drive_keys(c)?;
    check_archive_keys(c)?;
    check_pools(c)?;
    check_sizes(c)?;
    check_cache(c)?;
    check_supervisor(c)
}

fn check_paths(c: &Config) -> Result<(), Failure> {
    let p = &c.paths;
    for (name, path) in [
        ("spool", &p.spool),
        ("cache", &p.cache),
        ("catalog", &p.catalog),
        ("log", &p.log),
    ] {
        if path.as_os_str().is_empty() || path == Path::new("/") {
            return Err((
                key!("paths", name),
                format!("{name} must be a directory other than /"),
            ));
        }
    }
    if let Some(g) = &p.group
        && g.is_empty()
    {
        return Err((key!("paths", "group"), "group is empty".into()));
    }
    Ok(())
}

fn check_streams(c: &Config) -> Result<(), Failure> {
    let mut names = HashSet::new();
    for (i, s) in c.streams.iter().enumerate() {
        let valid = !s.name.is_empty()
            && s.name.len() <= 64
            && s.name.starts_with(|ch: char| ch.is_ascii_alphanumeric())
            && s.name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '.');
        if !valid {
            return Err((
                key!("stream", i, "name"),
                format!(
                    "stream name {:?} must be letters, digits, '_' or '.' (it starts item ids)",
                    s.name
                ),
            ));
        }
        if !names.insert(s.name.as_str()) {
            return Err((
                key!("stream", i, "name"),
                format!("a second stream is named {:?}", s.name),
            ));
        }
        for (j, glob) in s.exclude.iter().enumerate() {
            if let Err(e) = globset::Glob::new(glob) {
                return Err((
                    key!("stream", i, "exclude", j),
                    format!("bad glob {glob:?}: {}", e.kind()),
                ));
            }
        }
        let Source::Local(src) = &s.source else {
            continue;
        };
        let src_real = resolve_existing_prefix(src);
        for (name, path) in [
            ("cache", &c.paths.cache),
            ("spool", &c.paths.spool),
            ("catalog", &c.paths.catalog),
        ] {
            let real = resolve_existing_prefix(path);
            if real.starts_with(&src_real) {
                return Err((
                    key!("paths", name),
                    format!(
                        "{name} {} is inside the source {} of stream {:?}: it would back up itself",
                        path.display(),
                        src.display(),
                        s.name
                    ),
                ));
            }
            if src_real.starts_with(&real) {
                return Err((
                    key!("stream", i, "source"),
                    format!(
                        "source {} is inside paths.{name} {}",
                        src.display(),
                        path.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_drives(c: &Config) -> Result<(), Failure> {
    let mut names = HashSet::new();
    for (i, d) in c.drives.iter().enumerate() {
        if d.name.is_empty() || !names.insert(d.name.as_str()) {
            return Err((
                key!("drive", i, "name"),
                format!("drive name {:?} is empty or used twice", d.name),
            ));
        }
        let bs = d.block_size.0;
        if bs == 0 || bs % 512 != 0 {
            return Err((
                key!("drive", i, "block_size"),
                format!("block size {} is not a multiple of 512", d.block_size),
            ));
        }
        if bs > MAX_BLOCK {
            return Err((
                key!("drive", i, "block_size"),
                format!("block size {} is above 16M", d.block_size),
            ));
        }
        // reel-pack pads every archive to one block size, and any drive
        // may write it.
        if let Some(first) = c.drives.first()
            && d.block_size != first.block_size
        {
            return Err((
                key!("drive", i, "block_size"),
                format!(
                    "block size {} differs from {}'s {}: every [[drive]] must have the same block_size",
                    d.block_size, first.name, first.block_size
                ),
            ));
        }
        if d.buffer.0 < 2 * bs {
            return Err((
                key!("drive", i, "buffer"),
                format!(
                    "buffer {} must hold at least two blocks of {}",
                    d.buffer, d.block_size
                ),
            ));
        }
        if d.start_fill.fraction() <= 0.0 {
            return Err((
                key!("drive", i, "start_fill"),
                "start_fill must be above 0%".into(),
            ));
        }
        if d.capacity.0 < 1 << 20 {
            return Err((
                key!("drive", i, "capacity"),
                format!("capacity {} is below 1M", d.capacity),
            ));
        }
        if let Some(ch) = &d.changer
            && !c.changers.iter().any(|x| &x.name == ch)
        {
            return Err((
                key!("drive", i, "changer"),
                format!("no [[changer]] is named {ch:?}"),
            ));
        }
        if d.element.is_some() && d.changer.is_none() {
            return Err((
                key!("drive", i, "element"),
                "element needs a changer: the element is the drive's place in it".into(),
            ));
        }
        // A drive of a changer reel reads itself (sg:) is found by serial
        // when it names no element: nothing to compare before it runs.
        let by_serial = |d: &crate::config::Drive| {
            d.element.is_none()
                && c.changers.iter().any(|x| {
                    Some(&x.name) == d.changer.as_ref() && matches!(x.device, super::Device::Sg(_))
                })
        };
        if let Some(ch) = &d.changer
            && !by_serial(d)
        {
            let element = crate::device::drive_element(d);
            if let Some(other) = c.drives[..i].iter().find(|o| {
                o.changer.as_ref() == Some(ch)
                    && !by_serial(o)
                    && crate::device::drive_element(o) == element
            }) {
                return Err((
                    key!("drive", i, "element"),
                    format!(
                        "drive {:?} is element {element} of changer {ch:?}, as drive {:?} is: give each drive of a library its own element (`element = N`, as mtx counts)",
                        d.name, other.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_changers(c: &Config) -> Result<(), Failure> {
    let mut names = HashSet::new();
    for (i, ch) in c.changers.iter().enumerate() {
        if ch.name.is_empty() || !names.insert(ch.name.as_str()) {
            return Err((
                key!("changer", i, "name"),
                format!("changer name {:?} is empty or used twice", ch.name),
            ));
        }
        if ch.slots == Some(0) {
            return Err((
                key!("changer", i, "slots"),
                "a changer needs at least one slot".into(),
            ));
        }
    }
    Ok(())
}

/// Names once each, a pool in one key at most. The key files themselves
/// are read when a tape needs them, so that a configuration can be checked
/// where the keys are not.
fn check_drive_keys(c: &Config) -> Result<(), Failure> {
    let mut names = HashSet::new();
    let mut pools = std::collections::HashMap::new();
    for (i, k) in c.drive_keys.iter().enumerate() {
        if k.name.is_empty() || !names.insert(k.name.as_str()) {
            return Err((
                key!("drive_key", i, "name"),
                format!("drive_key name {:?} is empty or used twice", k.name),
            ));
        }
        for (j, pool) in k.pools.iter().enumerate() {
            if let Some(other) = pools.insert(pool.as_str(), k.name.as_str()) {
                return Err((
                    key!("drive_key", i, "pools", j),
                    format!(
                        "pool {pool:?} is written with drive_key {other:?} already: a pool has one key"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Names once each, recipients that parse, a stream in one key at most
/// and one that exists. Identity files are read when an archive needs them.
fn check_archive_keys(c: &Config) -> Result<(), Failure> {
    let mut names = HashSet::new();
    let mut streams = std::collections::HashMap::new();
    for (i, k) in c.archive_keys.iter().enumerate() {
        if k.name.is_empty() || !names.insert(k.name.as_str()) {
            return Err((
                key!("archive_key", i, "name"),
                format!("archive_key name {:?} is empty or used twice", k.name),
            ));
        }
        match (&k.passphrase_file, k.recipients.is_empty()) {
            (None, _) => {
                crate::archive::sealed::Recipients::parse(&k.recipients)
                    .map_err(|m| (key!("archive_key", i, "recipients"), m))?;
            }
            (Some(_), false) => {
                return Err((
                    key!("archive_key", i, "passphrase_file"),
                    "an age file sealed with a passphrase can have no other recipient: set recipients or passphrase_file, not both".into(),
                ));
            }
            (Some(f), true) => {
                if f.as_os_str().is_empty() {
                    return Err((
                        key!("archive_key", i, "passphrase_file"),
                        "passphrase_file is empty".into(),
                    ));
                }
                if k.identity.is_some() {
                    return Err((
                        key!("archive_key", i, "identity"),
                        "a passphrase key opens its archives with its passphrase_file: no identity"
                            .into(),
                    ));
                }
            }
        }
        for (j, s) in k.streams.iter().enumerate() {
            if !c.streams.iter().any(|x| &x.name == s) {
                return Err((
                    key!("archive_key", i, "streams", j),
                    format!("no [[stream]] is named {s:?}"),
                ));
            }
            if let Some(other) = streams.insert(s.as_str(), k.name.as_str()) {
                return Err((
                    key!("archive_key", i, "streams", j),
                    format!(
                        "stream {s:?} is sealed with archive_key {other:?} already: a stream has one key"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_pools(c: &Config) -> Result<(), Failure> {
    let mut names = HashSet::new();
    let mut streams = std::collections::HashMap::new();
    for (i, p) in c.pools.iter().enumerate() {
        // It names spool items (`<id>-copy-<pool>`): the characters of
        // an item id, and short.
        if p.name.len() > 32
            || crate::spool::check_item_id(&p.name).is_err()
            || !names.insert(p.name.as_str())
        {
            return Err((
                key!("pool", i, "name"),
                format!(
                    "pool name {:?} is used twice, or not 1 to 32 letters, digits, '.', '_' or '-'",
                    p.name
                ),
            ));
        }
        for (j, s) in p.streams.iter().enumerate() {
            if !c.streams.iter().any(|x| &x.name == s) {
                return Err((
                    key!("pool", i, "streams", j),
                    format!("no [[stream]] is named {s:?}"),
                ));
            }
            if let Some(other) = streams.insert(s.as_str(), p.name.as_str()) {
                return Err((
                    key!("pool", i, "streams", j),
                    format!("stream {s:?} goes to pool {other:?} already: a stream has one pool"),
                ));
            }
        }
        if p.keep_versions == Some(0) {
            return Err((
                key!("pool", i, "keep_versions"),
                "keep_versions counts the versions kept of a path, the newest included: at least 1, or leave it out".into(),
            ));
        }
        for (name, limit) in [
            ("retire_after_loads", p.retire_after_loads),
            ("retire_after_errors", p.retire_after_errors),
        ] {
            if limit == Some(0) {
                return Err((
                    key!("pool", i, name),
                    format!(
                        "{name} = 0 would retire every tape at once: at least 1, or leave it out"
                    ),
                ));
            }
        }
    }
    for (i, p) in c.pools.iter().enumerate() {
        let mut seen = HashSet::new();
        for (j, copy) in p.copies.iter().enumerate() {
            if !names.contains(copy.as_str()) {
                return Err((
                    key!("pool", i, "copies", j),
                    format!("no [[pool]] is named {copy:?}"),
                ));
            }
            if !seen.insert(copy.as_str()) {
                return Err((
                    key!("pool", i, "copies", j),
                    format!("pool {copy:?} is named twice: each copy goes to another pool"),
                ));
            }
        }
    }
    Ok(())
}

fn check_sizes(c: &Config) -> Result<(), Failure> {
    let Some(size) = c.pack.archive_size else {
        return Ok(());
    };
    if size.0 < 1 << 20 {
        return Err((
            key!("pack", "archive_size"),
            format!("archive_size {size} is below 1M"),
        ));
    }
    if let Some((i, d)) = c.drives.iter().enumerate().find(|(_, d)| size > d.capacity) {
        return Err((
            key!("pack", "archive_size"),
            format!(
                "archive_size {size} is larger than a tape in drive {:?} (capacity {}, drive[{i}])",
                d.name, d.capacity
            ),
        ));
    }
    Ok(())
}

fn check_cache(c: &Config) -> Result<(), Failure> {
    let (high, low) = (c.cache.high_water, c.cache.low_water);
    let inverted = match (high, low) {
        (Water::Percent(h), Water::Percent(l)) => l >= h,
        (Water::Used(h), Water::Used(l)) => l >= h,
        _ => false,
    };
    if inverted {
        return Err((
            key!("cache", "low_water"),
            format!("low_water ({low}) must be below high_water ({high})"),
        ));
    }
    // Larger files are copied faster on their own (in the kernel, shared
    // blocks on XFS) than through a bundle's buffer.
    if c.cache.bundle_below.0 > 64 << 20 {
        return Err((
            key!("cache", "bundle_below"),
            format!(
                "bundle_below ({}) is at most 64M: larger files are copied faster as files of their own",
                c.cache.bundle_below
            ),
        ));
    }
    Ok(())
}

fn check_supervisor(c: &Config) -> Result<(), Failure> {
    let r = &c.supervisor.retry;
    if r.backoff > r.max_backoff {
        return Err((
            key!("supervisor", "retry", "backoff"),
            format!(
                "backoff ({}) is above max_backoff ({})",
                r.backoff, r.max_backoff
            ),
        ));
    }
    if c.supervisor.scan_interval.0.is_zero() {
        return Err((
            key!("supervisor", "scan_interval"),
            "scan_interval must be above 0s".into(),
        ));
    }
    Ok(())
}
