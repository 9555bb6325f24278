//! `reel find` and `reel tapes` made for people (issue #24): aligned
//! columns, sizes readable, the path last as `ls -l` puts the name;
//! `--long`; `--tape LABEL` in tape order; `--json` for scripts.

use crate::support::{CONFIG, Env, LIBRARY};

fn backed_up() -> Env {
    let env = Env::new();
    env.write("pipeline.toml", &format!("{CONFIG}\n{LIBRARY}"));
    std::fs::create_dir_all(env.path("src/a much longer directory name")).unwrap();
    std::fs::write(env.path("src/x"), b"1").unwrap();
    std::fs::write(
        env.path("src/a much longer directory name/big.bin"),
        vec![1u8; 2_500_000],
    )
    .unwrap();
    std::fs::write(env.path("src/y.txt"), b"twelve bytes").unwrap();
    env.back_up();
    env
}

#[test]
fn find_lists_aligned_columns_with_the_path_last() {
    let env = backed_up();
    let run = env.run("reel", &["find", ""]);
    run.expect(0);
    let paths = [
        "a much longer directory name",
        "a much longer directory name/big.bin",
        "x",
        "y.txt",
    ];
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), paths.len(), "{}", run.stdout);
    // Every path starts in the same column, and is the end of its line.
    let mut starts = Vec::new();
    for (line, path) in lines.iter().zip(paths) {
        assert!(line.ends_with(path), "{line:?} ends with {path:?}");
        starts.push(line.len() - path.len());
    }
    assert!(starts.windows(2).all(|w| w[0] == w[1]), "{}", run.stdout);
    // Sizes for people, tape and tape file.
    assert!(
        lines[1].trim_start().starts_with("2.4 MiB  "),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains(" 1 B  ") && lines[2].contains("V00001L9:"),
        "{}",
        lines[2]
    );

    let run = env.run("reel", &["find", "--long", "y.txt"]);
    run.expect(0);
    let line = run.stdout.lines().next().unwrap();
    assert!(line.starts_with("-rw"), "{line}");
    assert!(
        line.contains("  home  ") && line.ends_with("  y.txt"),
        "{line}"
    );
}

#[test]
fn find_tape_lists_a_tapes_members_in_tape_order() {
    let env = backed_up();
    let run = env.run("reel", &["find", "--tape", "V00001L9", "--json"]);
    run.expect(0);
    let list: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(list.len(), 4);
    let places: Vec<(u64, u64)> = list
        .iter()
        .map(|e| (e["file"].as_u64().unwrap(), e["block"].as_u64().unwrap()))
        .collect();
    let mut sorted = places.clone();
    sorted.sort();
    assert_eq!(places, sorted);
    // With a pattern: only what matches, on that tape.
    let run = env.run("reel", &["find", "--tape", "V00001L9", "*.txt"]);
    run.expect(0);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    // A tape with nothing verified on it.
    let run = env.run("reel", &["find", "--tape", "NOSUCH"]);
    run.expect(66);
    assert!(
        run.stderr.contains("tape NOSUCH: nothing verified on it"),
        "{}",
        run.report()
    );
}

#[test]
fn tapes_lists_aligned_columns_under_their_headings() {
    let env = backed_up();
    let run = env.run("reel", &["tapes"]);
    run.expect(0);
    let header = run.stdout.lines().next().unwrap();
    let at = header.find("state").unwrap();
    let row = run.stdout.lines().nth(1).unwrap();
    assert!(row.starts_with("V00001L9"), "{}", run.stdout);
    assert_eq!(
        &row[at..at + "writable".len()],
        "writable",
        "{}",
        run.stdout
    );
}
