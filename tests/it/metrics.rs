//! The Prometheus metrics file (issue #24): written by the supervisor and
//! by each stage on exit, checked by `promtool check metrics` (Debian's
//! prometheus package) and parsed by a text-format parser, its values
//! compared with `reel status --json`, `reel tapes --json` and the
//! journals.

use std::collections::HashMap;

use crate::support::{CONFIG, Env, LIBRARY};

fn setup() -> Env {
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &format!(
            "{CONFIG}\n[supervisor]\nmetrics_file = \"var/metrics/reel.prom\"\n\n\
             {LIBRARY}"
        ),
    );
    std::fs::write(env.path("src/a.txt"), b"alpha\n").unwrap();
    std::fs::write(env.path("src/b.bin"), vec![3u8; 200_000]).unwrap();
    env
}

/// A sample's name and sorted labels.
type Key = (String, Vec<(String, String)>);

/// The samples of the metrics file: (name, sorted labels) → value.
fn samples(text: &str) -> HashMap<Key, f64> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let mut out = HashMap::new();
    for s in scrape.samples {
        let mut labels: Vec<(String, String)> = s
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.sort();
        let value = match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            other => panic!("{}: unexpected {other:?}", s.metric),
        };
        out.insert((s.metric, labels), value);
    }
    out
}

fn get(m: &HashMap<Key, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut l: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    *m.get(&(name.to_string(), l))
        .unwrap_or_else(|| panic!("{name}{labels:?} in {:?}", m.keys().collect::<Vec<_>>()))
}

#[test]
fn the_metrics_file_passes_promtool_and_agrees_with_reel_status() {
    let env = setup();
    env.run("reel-supervisor", &["--once"]).expect(0);
    // Something waits: a new file scanned and not staged.
    std::fs::write(env.path("src/c.txt"), b"waiting\n").unwrap();
    env.run("reel-scan", &[]).expect(0);
    let file = env.path("var/metrics/reel.prom");
    let text = std::fs::read_to_string(&file).unwrap();
    // Readable by the collector, which runs as another user.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // promtool's lint: names, types, units, help.
    let out = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .expect("promtool (scripts/install-deps installs the prometheus package)");
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let m = samples(&text);

    let status: serde_json::Value =
        serde_json::from_str(&env.run("reel", &["status", "--json"]).stdout).unwrap();
    for q in status["queues"].as_array().unwrap() {
        let name = q["queue"].as_str().unwrap();
        assert_eq!(
            get(&m, "reel_queue_items", &[("queue", name)]),
            q["items"].as_f64().unwrap(),
            "{name}"
        );
        assert_eq!(
            get(&m, "reel_queue_bytes", &[("queue", name)]),
            q["bytes"].as_f64().unwrap(),
            "{name}"
        );
    }
    assert_eq!(get(&m, "reel_queue_items", &[("queue", "scanned")]), 1.0);
    assert_eq!(
        get(&m, "reel_cache_size_bytes", &[]),
        status["cache"]["total"].as_f64().unwrap()
    );
    assert_eq!(
        get(&m, "reel_failed_items", &[("stage", "reel-write")]),
        0.0
    );

    let tapes: Vec<serde_json::Value> =
        serde_json::from_str(&env.run("reel", &["tapes", "--json"]).stdout).unwrap();
    let t = &tapes[0];
    let label = t["label"].as_str().unwrap();
    let pool = t["pool"].as_str().unwrap();
    assert_eq!(
        get(
            &m,
            "reel_tape_written_bytes",
            &[("tape", label), ("pool", pool)]
        ),
        t["bytes"].as_f64().unwrap()
    );
    assert_eq!(
        get(
            &m,
            "reel_tapes",
            &[("pool", pool), ("state", "writable"), ("place", "library")]
        ),
        1.0
    );
    // Verified bytes: the members' data, as the journal has them.
    let journal =
        std::fs::read_to_string(env.path(&format!("var/catalog/tapes/{label}.jsonl"))).unwrap();
    let data: f64 = journal
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "file")
        .map(|v| v["size"].as_f64().unwrap())
        .sum();
    assert_eq!(data, 200_006.0);
    assert_eq!(
        get(
            &m,
            "reel_tape_verified_bytes",
            &[("tape", label), ("pool", pool)]
        ),
        data
    );
    // The write telemetry: every byte written, one session.
    assert_eq!(
        get(&m, "reel_write_bytes_total", &[]),
        t["bytes"].as_f64().unwrap()
    );
    assert_eq!(get(&m, "reel_write_sessions_total", &[]), 1.0);
    assert!(
        get(
            &m,
            "reel_write_last_rate_bytes_per_second",
            &[("tape", label)]
        ) > 0.0
    );
    // When the stream was last verified: after the run began.
    let last = get(
        &m,
        "reel_stream_last_verified_timestamp_seconds",
        &[("stream", "home")],
    );
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(last > 1.7e9 && last <= before + 1.0, "{last}");
}
