//! The daemon's decisions, tick by tick, with a clock the tests move.

use super::*;

const MIB: u64 = 1 << 20;

fn config() -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    let text = "[paths]\nspool = \"spool\"\ncache = \"cache\"\ncatalog = \"catalog\"\nlog = \"log\"\n\n\
                [[stream]]\nname = \"home\"\nsource = \"src\"\nschedule = \"1h\"\n\n\
                [[stream]]\nname = \"work\"\nsource = \"work\"\n\n\
                [pack]\narchive_size = \"4M\"\n\n\
                [cache]\nhigh_water = \"90%\"\nlow_water = \"70%\"\n\n\
                [supervisor]\nscan_interval = \"6h\"\nmax_wait = \"1h\"\ntape_start_threshold = \"10M\"\n\n\
                [supervisor.retry]\nbackoff = \"60s\"\n\n\
                [[drive]]\nname = \"d0\"\ndevice = \"virtual:lib#0\"\ncapacity = \"1G\"\n\n\
                [[drive]]\nname = \"d1\"\ndevice = \"virtual:lib#1\"\ncapacity = \"1G\"\n";
    let config = Config::parse(text, &dir.path().join("pipeline.toml"), dir.path())
        .unwrap_or_else(|e| panic!("{e}"));
    (dir, config)
}

/// A queue of `n` items of `mib` MiB in all, the oldest written at `oldest`.
fn queue(n: usize, mib: u64, oldest: SystemTime) -> QueueView {
    QueueView {
        ids: (0..n)
            .map(|i| format!("home-20261204T100000-{i:04}"))
            .collect(),
        bytes: mib * MIB,
        oldest: (n > 0).then_some(oldest),
        first_need: if n > 0 { mib * MIB / n as u64 + MIB } else { 0 },
    }
}

/// The world at one tick: everything quiet and empty, the clocks at
/// `now`/`wall`; tests change what they need.
struct Tick {
    now: Instant,
    wall: SystemTime,
    next_scan: BTreeMap<String, Instant>,
    cache: (u64, u64),
    throttled: bool,
    scanned: QueueView,
    staged: QueueView,
    packed: QueueView,
    written: QueueView,
    children: Vec<Child>,
    backoff: HashMap<String, Instant>,
    idle: HashMap<String, (Vec<String>, Instant)>,
    once: Option<Once>,
}

impl Tick {
    fn new() -> Tick {
        let now = Instant::now();
        Tick {
            now,
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            next_scan: [
                ("home".to_string(), now + Duration::from_secs(7200)),
                ("work".to_string(), now + Duration::from_secs(7200)),
            ]
            .into(),
            cache: (0, 1000 * MIB),
            throttled: false,
            scanned: QueueView::default(),
            staged: QueueView::default(),
            packed: QueueView::default(),
            written: QueueView::default(),
            children: Vec::new(),
            backoff: HashMap::new(),
            idle: HashMap::new(),
            once: None,
        }
    }

    fn plan(&self, config: &Config) -> Plan {
        plan(&World {
            config,
            now: self.now,
            wall: self.wall,
            next_scan: &self.next_scan,
            cache: self.cache,
            throttled: self.throttled,
            scanned: &self.scanned,
            staged: &self.staged,
            packed: &self.packed,
            written: &self.written,
            children: &self.children,
            backoff: &self.backoff,
            idle: &self.idle,
            once: self.once,
        })
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.wall += d;
    }
}

fn jobs(p: &Plan) -> Vec<String> {
    p.start.iter().map(Start::job).collect()
}

#[test]
fn a_stream_is_scanned_when_due_and_its_next_scan_follows_its_schedule() {
    let (_d, c) = config();
    let mut t = Tick::new();
    assert!(t.plan(&c).start.is_empty());
    t.advance(Duration::from_secs(7200));
    let p = t.plan(&c);
    assert_eq!(
        p.start,
        [
            Start::Scan {
                stream: "home".into(),
                next: t.now + Duration::from_secs(3600)
            },
            Start::Scan {
                stream: "work".into(),
                next: t.now + Duration::from_secs(6 * 3600)
            },
        ]
    );
    // Already running: not twice.
    t.children.push(Child {
        job: "scan:home".into(),
        stage: "reel-scan",
        drive: None,
    });
    assert_eq!(jobs(&t.plan(&c)), ["scan:work"]);
}

#[test]
fn staging_stops_above_high_water_and_resumes_only_below_low_water() {
    let (_d, c) = config();
    let mut t = Tick::new();
    t.scanned = queue(2, 5, t.wall);
    t.cache = (800 * MIB, 1000 * MIB);
    let p = t.plan(&c);
    assert_eq!(jobs(&p), ["stage"]);
    assert!(!p.throttled);
    t.cache.0 = 950 * MIB;
    let p = t.plan(&c);
    assert!(p.start.is_empty() && p.throttled);
    assert!(p.held["stage"].contains("above high_water"), "{:?}", p.held);
    // Draining, but not yet below low_water: still held.
    t.throttled = true;
    t.cache.0 = 750 * MIB;
    assert!(t.plan(&c).throttled);
    t.cache.0 = 600 * MIB;
    let p = t.plan(&c);
    assert!(!p.throttled);
    assert_eq!(jobs(&p), ["stage"]);
}

#[test]
fn packing_waits_for_an_archives_worth_or_max_wait_and_for_room() {
    let (_d, c) = config();
    let mut t = Tick::new();
    t.staged = queue(1, 1, t.wall);
    let p = t.plan(&c);
    assert!(p.start.is_empty());
    assert!(p.held["pack"].contains("below an archive"), "{:?}", p.held);
    assert!(p.held["pack"].contains("waits until"), "{:?}", p.held);
    // An hour later (max_wait), a small batch goes anyway.
    t.advance(Duration::from_secs(3600));
    assert_eq!(jobs(&t.plan(&c)), ["pack"]);
    // An archive's worth goes at once, if the cache has room for it.
    let mut t = Tick::new();
    t.staged = queue(1, 8, t.wall);
    assert_eq!(jobs(&t.plan(&c)), ["pack"]);
    t.cache = (995 * MIB, 1000 * MIB);
    let p = t.plan(&c);
    assert!(p.start.is_empty());
    assert!(
        p.held["pack"].contains("no room in the cache"),
        "{:?}",
        p.held
    );
}

#[test]
fn each_free_drive_verifies_first_then_writes_no_more_writers_than_items() {
    let (_d, c) = config();
    let mut t = Tick::new();
    t.written = queue(1, 20, t.wall);
    t.packed = queue(3, 30, t.wall);
    // One verifier (on d0), one writer (on d1).
    assert_eq!(jobs(&t.plan(&c)), ["verify", "write:d1"]);
    // d0 busy writing: d1 verifies.
    t.children.push(Child {
        job: "write:d0".into(),
        stage: "reel-write",
        drive: Some("d0".into()),
    });
    assert_eq!(t.plan(&c).start, [Start::Verify { drive: "d1".into() }]);
    // Nothing written; one packed item and one writer already: no second.
    t.written = QueueView::default();
    t.packed = queue(1, 30, t.wall);
    assert!(t.plan(&c).start.is_empty());
    // Below tape_start_threshold: held until max_wait after the oldest.
    t.children.clear();
    t.packed = queue(2, 3, t.wall);
    let p = t.plan(&c);
    assert!(p.start.is_empty());
    assert!(
        p.held["write:d0"].contains("tape_start_threshold"),
        "{:?}",
        p.held
    );
    t.advance(Duration::from_secs(3600));
    assert_eq!(jobs(&t.plan(&c)), ["write:d0", "write:d1"]);
}

#[test]
fn a_job_waits_out_its_backoff_and_an_unchanged_queue_its_last_clean_run_left() {
    let (_d, c) = config();
    let mut t = Tick::new();
    t.scanned = queue(1, 1, t.wall);
    t.backoff
        .insert("stage".into(), t.now + Duration::from_secs(30));
    assert!(t.plan(&c).start.is_empty());
    t.advance(Duration::from_secs(30));
    assert_eq!(jobs(&t.plan(&c)), ["stage"]);
    // Its last clean run left exactly this queue a moment ago.
    t.backoff.clear();
    t.idle
        .insert("stage".into(), (t.scanned.ids.clone(), t.now));
    assert!(t.plan(&c).start.is_empty());
    // The queue changed: run.
    t.scanned = queue(2, 1, t.wall);
    assert_eq!(jobs(&t.plan(&c)), ["stage"]);
    // Or retry.backoff passed.
    t.scanned = queue(1, 1, t.wall);
    t.advance(Duration::from_secs(60));
    assert_eq!(jobs(&t.plan(&c)), ["stage"]);
}

#[test]
fn once_packs_and_writes_what_is_left_and_reads_the_tape_back_after_its_last_write() {
    let (_d, c) = config();
    let mut t = Tick::new();
    t.once = Some(Once::default());
    // Still scanning or staging: a small batch waits for more, as in the
    // daemon.
    t.staged = queue(1, 1, t.wall);
    let p = t.plan(&c);
    assert!(p.start.is_empty());
    assert!(p.held["pack"].contains("below an archive"), "{:?}", p.held);
    // Nothing more can come: it is packed now.
    t.once = Some(Once {
        staged_final: true,
        ..Once::default()
    });
    assert_eq!(jobs(&t.plan(&c)), ["pack"]);
    // Packed below tape_start_threshold while packing goes on: written
    // once nothing more can come.
    t.staged = QueueView::default();
    t.packed = queue(1, 3, t.wall);
    let p = t.plan(&c);
    assert!(
        p.held["write:d0"].contains("tape_start_threshold"),
        "{:?}",
        p.held
    );
    t.once = Some(Once {
        staged_final: true,
        packed_final: true,
        ..Once::default()
    });
    assert_eq!(jobs(&t.plan(&c)), ["write:d0"]);
    // Written archives wait for the last write: one pass of the tape.
    t.written = queue(1, 8, t.wall);
    t.children.push(Child {
        job: "write:d0".into(),
        stage: "reel-write",
        drive: Some("d0".into()),
    });
    t.packed = QueueView::default();
    assert!(t.plan(&c).start.is_empty());
    t.children.clear();
    assert_eq!(jobs(&t.plan(&c)), ["verify"]);
    // Before that, only a full cache has it read back early.
    t.once = Some(Once::default());
    t.packed = queue(1, 8, t.wall);
    t.children.push(Child {
        job: "write:d0".into(),
        stage: "reel-write",
        drive: Some("d0".into()),
    });
    assert!(t.plan(&c).start.is_empty());
    t.staged = queue(1, 8, t.wall);
    t.cache = (995 * MIB, 1000 * MIB);
    let p = t.plan(&c);
    assert!(p.held.contains_key("pack"), "{:?}", p.held);
    assert_eq!(p.start, [Start::Verify { drive: "d1".into() }]);
    // And a full cache has what is packed written, below the threshold,
    // so that it can be read back and freed.
    t.children.clear();
    t.written = QueueView::default();
    t.packed = queue(1, 3, t.wall);
    assert_eq!(jobs(&t.plan(&c)), ["write:d0"]);
    // A stalled run (nothing ran, nothing could start) does the same with
    // what waits, whatever the cache says.
    t.cache = (0, 1000 * MIB);
    t.staged = queue(1, 1, t.wall);
    assert!(jobs(&t.plan(&c)).is_empty());
    t.once = Some(Once {
        stalled: true,
        ..Once::default()
    });
    assert_eq!(jobs(&t.plan(&c)), ["pack", "write:d0"]);
}
