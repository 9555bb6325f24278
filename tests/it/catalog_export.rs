//! `reel catalog export --sqlite` (issue #24), read back with the `sqlite3`
//! shell: the export holds every journal line and every tape, an export
//! into an earlier one equals a fresh one, and the README's queries run.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use crate::support::{CONFIG, Env, LIBRARY};

fn setup() -> Env {
    let env = Env::new();
    env.write("pipeline.toml", &format!("{CONFIG}\n{LIBRARY}"));
    std::fs::create_dir_all(env.path("src/docs")).unwrap();
    std::fs::write(env.path("src/docs/a.txt"), b"alpha\n").unwrap();
    std::fs::write(env.path("src/docs/big.bin"), vec![7u8; 300_000]).unwrap();
    // A name that is not UTF-8.
    std::fs::write(
        env.path("src").join(OsStr::from_bytes(b"caf\xe9")),
        b"latin-1\n",
    )
    .unwrap();
    env
}

/// `sqlite3 DB` with `commands` on stdin; its stdout.
fn sqlite(db: &std::path::Path, commands: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("sqlite3")
        .arg("-batch")
        .arg("-bail")
        .arg(db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sqlite3 (scripts/install-deps installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(commands.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "sqlite3 {commands}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every journal line as `tape|file|HEXPATH|sha256`, sorted: read from
/// the journals directly.
fn journal_lines(env: &Env) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(env.path("var/catalog/tapes")).unwrap() {
        let p = e.unwrap().path();
        if p.extension() != Some(OsStr::new("jsonl")) {
            continue;
        }
        for line in std::fs::read_to_string(&p).unwrap().lines().skip(1) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let path: Vec<u8> = match v["path"].as_str() {
                Some(t) => t.as_bytes().to_vec(),
                None => {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD
                        .decode(v["path_b64"].as_str().unwrap())
                        .unwrap()
                }
            };
            let hex: String = path.iter().map(|b| format!("{b:02X}")).collect();
            out.push(format!(
                "{}|{}|{hex}|{}",
                v["tape"].as_str().unwrap(),
                v["file"],
                v["sha256"].as_str().unwrap_or("")
            ));
        }
    }
    out.sort();
    out
}

const MEMBERS: &str =
    "SELECT tape, file, hex(path), coalesce(sha256, '') FROM members ORDER BY 1, 2, 3, 4;\n";

fn lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn an_export_holds_the_catalog_and_an_incremental_one_equals_a_fresh_one() {
    let env = setup();
    env.run("reel-supervisor", &["--once"]).expect(0);
    let db = env.path("catalog.db");
    env.run("reel", &["catalog", "export", "--sqlite", "catalog.db"])
        .expect(0);
    let journal = journal_lines(&env);
    assert!(journal.len() >= 4, "{journal:?}");
    assert_eq!(lines(&sqlite(&db, MEMBERS)), journal);
    let tapes: Vec<serde_json::Value> =
        serde_json::from_str(&env.run("reel", &["tapes", "--json"]).stdout).unwrap();
    let mut labels: Vec<String> = tapes
        .iter()
        .map(|t| t["label"].as_str().unwrap().to_string())
        .collect();
    labels.sort();
    assert_eq!(lines(&sqlite(&db, "SELECT label FROM tapes;\n")), labels);
    // The name that is not UTF-8: its bytes, and no text.
    assert_eq!(
        sqlite(
            &db,
            "SELECT hex(path), path_text IS NULL FROM members WHERE hex(path) = '636166E9';\n"
        ),
        "636166E9|1\n"
    );

    // More backups, then the same file again: only what was added.
    std::fs::write(env.path("src/docs/a.txt"), b"alpha, second version\n").unwrap();
    std::fs::write(env.path("src/docs/new.txt"), b"new\n").unwrap();
    env.run("reel-supervisor", &["--once"]).expect(0);
    let run = env.run("reel", &["catalog", "export", "--sqlite", "catalog.db"]);
    run.expect(0);
    let added = journal_lines(&env).len() - journal.len();
    assert!(
        run.stderr
            .contains(&format!(": {added} member line(s) added")),
        "{added} added: {}",
        run.report()
    );
    env.run("reel", &["catalog", "export", "--sqlite", "fresh.db"])
        .expect(0);
    let fresh = env.path("fresh.db");
    let all = "SELECT * FROM members ORDER BY tape, file, block, hex(path);\n\
               SELECT * FROM tapes ORDER BY label;\n";
    assert_eq!(sqlite(&db, all), sqlite(&fresh, all));
    assert_eq!(lines(&sqlite(&db, MEMBERS)), journal_lines(&env));
    // Nothing new: nothing added.
    let run = env.run("reel", &["catalog", "export", "--sqlite", "catalog.db"]);
    assert!(
        run.stderr.contains(": 0 member line(s) added"),
        "{}",
        run.report()
    );
}

#[test]
fn an_export_into_a_database_that_is_not_one_is_refused() {
    let env = setup();
    let db = env.path("other.db");
    sqlite(&db, "CREATE TABLE t (x);\n");
    let run = env.run("reel", &["catalog", "export", "--sqlite", "other.db"]);
    run.expect(65);
    assert!(
        run.stderr.contains("not a reel catalog export"),
        "{}",
        run.report()
    );
}

/// The queries of the README's "The catalog in SQLite", each run with the
/// `sqlite3` shell and parameters a sysadmin would give.
#[test]
fn the_readme_queries_run_with_the_sqlite3_shell() {
    let env = setup();
    env.run("reel-supervisor", &["--once"]).expect(0);
    env.run("reel", &["catalog", "export", "--sqlite", "catalog.db"])
        .expect(0);
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("<!-- queries: run by tests/it/catalog_export.rs -->")
        .unwrap();
    let end = readme.find("<!-- /queries -->").unwrap();
    let sql: String = readme[start..end]
        .lines()
        .skip(1)
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let queries: Vec<&str> = sql
        .split(';')
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .collect();
    assert_eq!(queries.len(), 5, "{sql}");
    let tape = sqlite(
        &env.path("catalog.db"),
        "SELECT label FROM tapes LIMIT 1;\n",
    );
    let params = format!(
        ".parameter set :tape '{}'\n.parameter set :from '2000-01-01'\n.parameter set :to '2100-01-01'\n.parameter set :dir 'docs'\n",
        tape.trim()
    );
    let answers: Vec<String> = queries
        .iter()
        .map(|q| sqlite(&env.path("catalog.db"), &format!("{params}{q};\n")))
        .collect();
    // Each answers what it asks: the biggest file first, every member of
    // the tape, the files changed since 2000, the one tape to recall for
    // docs/, and every version on one tape only (one copy here).
    assert!(answers[0].starts_with("300000|docs/big.bin"), "{answers:?}");
    assert!(answers[1].lines().count() >= 4, "{answers:?}");
    assert!(answers[2].contains("docs/a.txt"), "{answers:?}");
    assert_eq!(
        answers[3],
        format!("{}|in the library|2|300006\n", tape.trim()),
        "{answers:?}"
    );
    assert!(answers[4].contains("docs/a.txt"), "{answers:?}");
}
