//! `reel-supervisor --once`, the README's first command: the repository's
//! own pipeline.toml, a sample tree, every stage as a child process, then
//! everything findable and restorable; a second run backs up what changed.

use crate::support::Env;

fn journal_len(env: &Env) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(env.path("var/catalog/tapes"))
        .unwrap()
        .flatten()
    {
        if e.path().extension().is_some_and(|x| x == "jsonl") {
            reel_shared::catalog::journal::read(&e.path(), |_| {
                n += 1;
                Ok(())
            })
            .unwrap();
        }
    }
    n
}

#[test]
fn the_main_job_backs_up_the_sample_tree_and_says_how_to_restore_it() {
    let env = Env::new();
    let config =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pipeline.toml")).unwrap();
    env.write("pipeline.toml", &config);
    let run = env.run("reel-supervisor", &["--once"]);
    run.expect(0);
    assert!(
        run.stdout.contains("Backed up and verified"),
        "{}",
        run.report()
    );
    assert!(run.stdout.contains("reel-restore"), "{}", run.report());
    // Every file of the sample is in the catalog and comes back.
    let found = env.run("reel", &["find", "big.bin", "--json"]);
    found.expect(0);
    env.run("reel-restore", &["project-3", "--to", "back"])
        .expect(0);
    assert_eq!(
        std::fs::read(env.path("back/project-3/file-007.txt")).unwrap(),
        std::fs::read(env.path("var/sample/project-3/file-007.txt")).unwrap()
    );
    let first = journal_len(&env);
    assert!(first > 300, "{first}");
    // The pipeline is empty; nothing is left in the cache.
    let status = env.run("reel", &["status", "--json"]);
    status.expect(0);
    // A second run after one change backs up exactly that file.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(env.path("var/sample/project-2/file-001.txt"), "changed").unwrap();
    env.run("reel-supervisor", &["--once"]).expect(0);
    assert_eq!(journal_len(&env), first + 1);
    env.run("reel-restore", &["project-2/file-001.txt", "--to", "again"])
        .expect(0);
    assert_eq!(
        std::fs::read(env.path("again/project-2/file-001.txt")).unwrap(),
        b"changed"
    );
}
