//! `reel catalog export --sqlite FILE` (issue #24): the catalog as a
//! SQLite database, for questions `reel find` does not answer, asked with
//! `sqlite3`. The journals remain the truth; the database is derived, and
//! an export into an existing database adds only what the journals added
//! since (docs/catalog.md §10 has the schema).
//!
//! Incremental by journal: `reel_export` keeps, per journal file, its
//! header line and how many bytes of it were exported. A journal that
//! grew is read from there; one whose header changed (the tape was
//! recycled and labelled again) or that shrank is exported again whole;
//! the members of one that is gone are deleted. Tapes and expiries are
//! small and exported whole each time. Everything happens in one
//! transaction: an export cut short leaves the database as it was.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use rusqlite::{Connection, params};

use super::journal::{self, Entry};
use super::{CatalogError, tapes};

/// The schema's version (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS tapes (
    label TEXT PRIMARY KEY, uuid TEXT NOT NULL, pool TEXT NOT NULL,
    state TEXT NOT NULL, files INTEGER NOT NULL, bytes INTEGER NOT NULL,
    place TEXT, place_note TEXT, place_since TEXT,
    sealed_for TEXT, drive_key TEXT, loads INTEGER,
    verified TEXT, last_verify TEXT, updated TEXT
);
CREATE TABLE IF NOT EXISTS members (
    tape TEXT NOT NULL, file INTEGER NOT NULL, block INTEGER,
    archive TEXT, stream TEXT NOT NULL,
    path BLOB NOT NULL, path_text TEXT, type TEXT NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, mtime TEXT NOT NULL,
    mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,
    owner TEXT, "group" TEXT, sha256 TEXT, link BLOB,
    part INTEGER, part_offset INTEGER,
    taken_ns INTEGER NOT NULL, taken TEXT NOT NULL, verified TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS members_path ON members (path_text);
CREATE INDEX IF NOT EXISTS members_place ON members (tape, file, block);
CREATE INDEX IF NOT EXISTS members_version ON members (stream, path, taken_ns);
CREATE INDEX IF NOT EXISTS members_mtime ON members (mtime_ns);
CREATE INDEX IF NOT EXISTS members_sha256 ON members (sha256);
CREATE TABLE IF NOT EXISTS expired (
    stream TEXT NOT NULL, path BLOB NOT NULL, path_text TEXT,
    taken_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reel_export (
    journal TEXT PRIMARY KEY, header TEXT NOT NULL, bytes INTEGER NOT NULL
);
CREATE VIEW IF NOT EXISTS tape_files AS
    SELECT tape, file, archive, stream, MIN(block) AS first_block,
           COUNT(*) AS members, SUM(size) AS bytes
    FROM members GROUP BY tape, file;
CREATE VIEW IF NOT EXISTS archives AS
    SELECT archive, stream, COUNT(DISTINCT tape) AS copies,
           group_concat(DISTINCT tape) AS tapes, COUNT(*) AS member_copies
    FROM members GROUP BY archive;
CREATE VIEW IF NOT EXISTS verify_runs AS
    SELECT tape, verified, COUNT(*) AS members, SUM(size) AS bytes
    FROM members GROUP BY tape, verified;
CREATE VIEW IF NOT EXISTS copies AS
    SELECT stream, path, path_text, taken_ns, COUNT(DISTINCT tape) AS copies,
           group_concat(DISTINCT tape) AS tapes
    FROM members GROUP BY stream, path, taken_ns;
"#;

/// What an export did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Exported {
    /// Member lines added.
    pub members: u64,
    /// Journals read (whole or from where the last export stopped).
    pub journals: usize,
    /// Journals exported again whole (recycled or shorter) or gone.
    pub replaced: usize,
    pub tapes: usize,
}

fn sql(file: &Path) -> impl Fn(rusqlite::Error) -> CatalogError + '_ {
    move |e| CatalogError::Invalid(format!("{}: {e}", file.display()))
}

/// Export `catalog` into the SQLite database `file` (created when absent).
pub fn export(catalog: &Path, file: &Path) -> Result<Exported, CatalogError> {
    let err = sql(file);
    let mut db = Connection::open(file).map_err(&err)?;
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(&err)?;
    let has_tables: bool = db
        .query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .map_err(&err)?;
    if has_tables && version != SCHEMA_VERSION {
        return Err(CatalogError::Invalid(format!(
            "{}: not a reel catalog export of schema {SCHEMA_VERSION} (user_version {version}): export into a new file",
            file.display()
        )));
    }
    db.pragma_update(None, "journal_mode", "WAL")
        .map_err(&err)?;
    let tx = db.transaction().map_err(&err)?;
    tx.execute_batch(SCHEMA).map_err(&err)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(&err)?;
    let mut out = Exported::default();

    // Tapes, whole.
    tx.execute("DELETE FROM tapes", []).map_err(&err)?;
    for t in tapes::all(catalog)? {
        tx.execute(
            "INSERT INTO tapes VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            params![
                t.label,
                t.uuid,
                t.pool,
                format!("{:?}", t.state).to_lowercase(),
                t.files as i64,
                t.bytes as i64,
                t.place.as_ref().map(|p| format!("{:?}", p.kind).to_lowercase()),
                t.place.as_ref().and_then(|p| p.note.clone()),
                t.place.as_ref().map(|p| p.since.clone()),
                (!t.sealed_for.is_empty()).then(|| t.sealed_for.join(" ")),
                t.drive_key,
                t.cartridge.as_ref().and_then(|c| c.loads).map(|n| n as i64),
                t.verified,
                t.last_verify,
                t.updated,
            ],
        )
        .map_err(&err)?;
        out.tapes += 1;
    }

    // Members, journal by journal.
    let mut done: HashMap<String, (String, u64)> = HashMap::new();
    {
        let mut q = tx
            .prepare("SELECT journal, header, bytes FROM reel_export")
            .map_err(&err)?;
        let rows = q
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(&err)?;
        for row in rows {
            let (j, h, b) = row.map_err(&err)?;
            done.insert(j, (h, b as u64));
        }
    }
    let journals = journal::journals(catalog)?;
    let mut present = std::collections::HashSet::new();
    for path in &journals {
        let label = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        present.insert(label.clone());
        let header = first_line(path)?;
        let len = std::fs::metadata(path)
            .map_err(|e| CatalogError::io(path, e))?
            .len();
        let from = match done.get(&label) {
            Some((h, b)) if *h == header && *b <= len => *b,
            Some(_) => {
                tx.execute("DELETE FROM members WHERE tape = ?1", [&label])
                    .map_err(&err)?;
                out.replaced += 1;
                0
            }
            None => 0,
        };
        if from == len {
            continue;
        }
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO members VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)",
            )
            .map_err(&err)?;
        let read = journal::read_from(path, from, |e| {
            insert_member(&mut insert, &label, &e).map_err(&err)?;
            out.members += 1;
            Ok(())
        })?;
        tx.execute(
            "INSERT OR REPLACE INTO reel_export VALUES (?1, ?2, ?3)",
            params![label, header, (from + read) as i64],
        )
        .map_err(&err)?;
        out.journals += 1;
    }
    for gone in done.keys().filter(|j| !present.contains(*j)) {
        tx.execute("DELETE FROM members WHERE tape = ?1", [gone])
            .map_err(&err)?;
        tx.execute("DELETE FROM reel_export WHERE journal = ?1", [gone])
            .map_err(&err)?;
        out.replaced += 1;
    }

    // Expiries, whole.
    tx.execute("DELETE FROM expired", []).map_err(&err)?;
    for k in super::retention::expired(catalog)? {
        tx.execute(
            "INSERT INTO expired VALUES (?1, ?2, ?3, ?4)",
            params![
                k.stream,
                k.path,
                std::str::from_utf8(&k.path).ok(),
                i64::try_from(k.taken_ns).unwrap_or(i64::MIN)
            ],
        )
        .map_err(&err)?;
    }
    tx.commit().map_err(&err)?;
    Ok(out)
}

fn insert_member(
    insert: &mut rusqlite::CachedStatement,
    tape: &str,
    e: &Entry,
) -> rusqlite::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let r = &e.record;
    let path = r.path.as_os_str().as_bytes();
    let taken = e.taken_ns();
    let when = |ns: i64| crate::time::Utc::from_ns(i128::from(ns)).rfc3339();
    insert.execute(params![
        r.tape.as_deref().unwrap_or(tape),
        r.file.map(|f| f as i64).unwrap_or(-1),
        r.block.map(|b| b as i64),
        r.archive,
        e.stream,
        path,
        std::str::from_utf8(path).ok(),
        entry_name(r.entry),
        r.size as i64,
        r.mtime_ns,
        when(r.mtime_ns),
        i64::from(r.mode),
        i64::from(r.uid),
        i64::from(r.gid),
        r.user,
        r.group,
        r.sha256.map(|d| d.to_string()),
        r.link.as_ref().map(|l| l.as_os_str().as_bytes().to_vec()),
        r.part.map(i64::from),
        r.part_offset.map(|o| o as i64),
        taken,
        when(taken),
        e.verified,
    ])?;
    Ok(())
}

/// A journal's first line (its header), which changes when the tape is
/// recycled and its journal starts again.
fn first_line(path: &Path) -> Result<String, CatalogError> {
    let f = std::fs::File::open(path).map_err(|e| CatalogError::io(path, e))?;
    let mut line = String::new();
    std::io::BufReader::new(f)
        .read_line(&mut line)
        .map_err(|e| CatalogError::io(path, e))?;
    Ok(line.trim_end().to_string())
}

/// The `type` a record's JSON gives its entry.
fn entry_name(t: crate::manifest::EntryType) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
