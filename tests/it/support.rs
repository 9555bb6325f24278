//! Test helpers: a temporary directory per test, running programs with full
//! diagnostics when an expectation fails.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every program, by name.
pub const PROGRAMS: [&str; 10] = [
    "reel",
    "reel-scan",
    "reel-stage",
    "reel-pack",
    "reel-write",
    "reel-verify",
    "reel-restore",
    "reel-supervisor",
    "reel-drivesim",
    "reel-tcmu",
];

/// The path of a program's binary, as cargo built it for this test crate.
pub fn bin(name: &str) -> &'static str {
    match name {
        "reel" => env!("CARGO_BIN_EXE_reel"),
        "reel-scan" => env!("CARGO_BIN_EXE_reel-scan"),
        "reel-stage" => env!("CARGO_BIN_EXE_reel-stage"),
        "reel-pack" => env!("CARGO_BIN_EXE_reel-pack"),
        "reel-write" => env!("CARGO_BIN_EXE_reel-write"),
        "reel-verify" => env!("CARGO_BIN_EXE_reel-verify"),
        "reel-restore" => env!("CARGO_BIN_EXE_reel-restore"),
        "reel-supervisor" => env!("CARGO_BIN_EXE_reel-supervisor"),
        "reel-drivesim" => env!("CARGO_BIN_EXE_reel-drivesim"),
        "reel-tcmu" => env!("CARGO_BIN_EXE_reel-tcmu"),
        other => panic!("no program {other}"),
    }
}

/// A temporary working directory with a config in it.
pub struct Env {
    dir: tempfile::TempDir,
}

/// A config with everything under the test's directory.
/// A virtual library `lib` (in `./lib`) loading one drive `d` with tapes
/// of 64 MiB: to append to [`CONFIG`].
pub const LIBRARY: &str = "[[changer]]\nname = \"lib\"\ndevice = \"virtual:lib\"\n\n\
     [[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\nchanger = \"lib\"\ncapacity = \"64M\"\nbuffer = \"4M\"\n";

pub const CONFIG: &str = r#"
[paths]
spool = "var/spool"
cache = "var/cache"
catalog = "var/catalog"
log = "var/log"

[[stream]]
name = "home"
source = "src"
"#;

impl Env {
    pub fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        env.write("pipeline.toml", CONFIG);
        std::fs::create_dir_all(env.path("src")).unwrap();
        env
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The ids of the items in a queue of the spool (`var/spool`), sorted.
    pub fn spool_items(&self, queue: &str) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(self.path(&format!("var/spool/{queue}")))
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".jsonl").map(str::to_string)
            })
            .collect();
        ids.sort();
        ids
    }

    pub fn write(&self, rel: &str, contents: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }

    /// Run `program` as the user nobody (for what root would not notice,
    /// like a file it may not read), after opening the test directory and
    /// `open` (relative paths) to everyone.
    pub fn run_as_nobody(&self, program: &str, open: &[&str]) -> Run {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        for p in std::iter::once(self.root().to_path_buf()).chain(open.iter().map(|p| self.path(p)))
        {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let out = Command::new(bin(program))
            .current_dir(self.root())
            .env_remove("REEL_CONFIG")
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        Run {
            command: format!("{program} (as nobody)"),
            dir: self.root().to_path_buf(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Run `program args…` in the test directory, with a clean environment
    /// as far as reel is concerned.
    /// The whole pipeline once, by hand: scan, stage, pack, write and
    /// verify, each expected to succeed.
    pub fn back_up(&self) {
        for program in &PROGRAMS[1..6] {
            self.run(program, &[]).expect(0);
        }
    }

    pub fn run(&self, program: &str, args: &[&str]) -> Run {
        self.run_with(program, args, &[])
    }

    /// `run`, with variables set in the program's environment.
    pub fn run_with(&self, program: &str, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(bin(program));
        cmd.args(args)
            .current_dir(self.root())
            .env_remove("REEL_CONFIG")
            .env_remove("RUST_LOG")
            .envs(vars.iter().copied());
        detach(&mut cmd);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        Run {
            command: format!("{program} {}", args.join(" ")),
            dir: self.root().to_path_buf(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// What a program run did.
pub struct Run {
    pub command: String,
    pub dir: PathBuf,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panic, showing everything, unless the exit code is `code`.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Self {
        if self.code != Some(code) {
            panic!("expected exit {code}\n{}", self.report());
        }
        self
    }

    /// The command, its exit code, stdout, stderr and the spool's files.
    pub fn report(&self) -> String {
        let mut s = format!(
            "command: {}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}--- spool\n",
            self.command, self.code, self.stdout, self.stderr
        );
        for line in listing(&self.dir.join("var/spool")) {
            let _ = writeln!(s, "{line}");
        }
        s
    }
}

/// Every file under `dir`, relative, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Run the child in a session of its own, without a controlling terminal:
/// a program that would ask an operator at /dev/tty finds nobody there,
/// even when the tests run in a terminal.
pub fn detach(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

/// How long a test waits for something a program promised before it calls
/// the program stuck. Not a timing threshold: only a hang reaches it.
pub const STUCK: std::time::Duration = std::time::Duration::from_secs(300);

/// Poll `cond` until it holds (a wait for an event the program makes
/// visible, never a guess at how long it takes); `what` names it when the
/// program is stuck.
#[track_caller]
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !cond() {
        assert!(t0.elapsed() < STUCK, "stuck waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A program running in the background, its stderr collected line by line
/// so that a test can wait for what the program says: a handshake instead
/// of a sleep.
pub struct Background {
    pub child: std::process::Child,
    command: String,
    dir: PathBuf,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Env {
    /// `program args…` as `run` would start it, to be adjusted (stdin) and
    /// started with `Background::start`.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin(program));
        cmd.args(args)
            .current_dir(self.root())
            .env_remove("REEL_CONFIG")
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null());
        detach(&mut cmd);
        cmd
    }

    /// Start `program args…` in the background.
    pub fn spawn(&self, program: &str, args: &[&str]) -> Background {
        Background::start(self.command(program, args), self.root())
    }
}

impl Background {
    pub fn start(mut cmd: Command, dir: &Path) -> Background {
        use std::io::BufRead;
        let command = format!(
            "{} {}",
            cmd.get_program().to_string_lossy(),
            cmd.get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut child = cmd
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Background {
            child,
            command,
            dir: dir.to_path_buf(),
            lines,
            reader: Some(reader),
        }
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(self.pid(), signal).unwrap();
    }

    /// Wait until `cond` holds; the program ending first is a failure
    /// that shows what it said.
    #[track_caller]
    pub fn wait_until(&mut self, what: &str, mut cond: impl FnMut(&Background) -> bool) {
        let t0 = std::time::Instant::now();
        while !cond(self) {
            if let Some(status) = self.child.try_wait().unwrap() {
                // It may have said it on its way out.
                self.join_reader();
                if cond(self) {
                    return;
                }
                panic!(
                    "{} ended ({status}) before {what}:\n{}",
                    self.command,
                    self.stderr()
                );
            }
            assert!(
                t0.elapsed() < STUCK,
                "stuck waiting for {what}:\n{}",
                self.stderr()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Wait until a line of its stderr contains `text`.
    #[track_caller]
    pub fn wait_for_line(&mut self, text: &str) {
        self.wait_until(&format!("a line with {text:?}"), |b| {
            b.lines.lock().unwrap().iter().any(|l| l.contains(text))
        });
    }

    /// Stop it with SIGSTOP and wait until it is stopped, so that what the
    /// test looks at cannot move; SIGCONT when the guard goes. `None` if it
    /// ended instead.
    pub fn freeze(&self) -> Option<Frozen> {
        use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
        self.signal(nix::sys::signal::Signal::SIGSTOP);
        // WNOWAIT: an exit stays for `finish` to collect.
        let flags = WaitPidFlag::WSTOPPED | WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(self.pid()), flags).unwrap() {
            WaitStatus::Stopped(..) => Some(Frozen(self.pid())),
            _ => None,
        }
    }

    /// Stop it at a moment when `cond` holds, looked at while it is
    /// stopped: whatever the test then does lands in that state.
    #[track_caller]
    pub fn freeze_when(&mut self, what: &str, mut cond: impl FnMut() -> bool) -> Frozen {
        let t0 = std::time::Instant::now();
        loop {
            match self.freeze() {
                Some(frozen) if cond() => return frozen,
                Some(_) => {}
                None => panic!("{} ended before {what}:\n{}", self.command, self.stderr()),
            }
            assert!(
                t0.elapsed() < STUCK,
                "stuck waiting for {what}:\n{}",
                self.stderr()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    fn join_reader(&mut self) {
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
    }

    /// Wait for it to end: what it did.
    pub fn finish(mut self) -> Run {
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        self.join_reader();
        Run {
            command: self.command.clone(),
            dir: self.dir.clone(),
            code: status.code(),
            stdout: String::new(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stopped program; SIGCONT on drop.
pub struct Frozen(nix::unistd::Pid);

/// Stop `pid`, which need not be our child, with SIGSTOP, and wait until
/// every one of its threads is stopped. `None` if it ended instead.
pub fn freeze_pid(pid: i32) -> Option<Frozen> {
    let pid = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).ok()?;
    let frozen = Frozen(pid);
    let stopped = || -> Option<bool> {
        let mut all = true;
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
            let stat = std::fs::read_to_string(task.ok()?.path().join("stat")).ok()?;
            // The state follows the command name's closing parenthesis.
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            if state == 'Z' || state == 'X' {
                return None;
            }
            all &= state == 'T';
        }
        Some(all)
    };
    let t0 = std::time::Instant::now();
    loop {
        match stopped() {
            None => return None,
            Some(true) => return Some(frozen),
            Some(false) => {
                assert!(t0.elapsed() < STUCK, "process {pid} does not stop");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGCONT);
    }
}

/// A small seeded generator (xorshift): the same seed, the same run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// An index below `n` (0 when `n` is 0).
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }
}

/// A tmpfs of `size` at `dir`, unmounted when dropped.
pub struct Mounted(PathBuf);

impl Mounted {
    pub fn tmpfs(dir: &Path, size: &str) -> Mounted {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "mounting a tmpfs at {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Mounted(dir.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// The bytes read from tape, from reel-restore's summary line.
pub fn bytes_read(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("bytes read from tape"))
        .unwrap_or_else(|| panic!("no summary: {stderr}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "bytes").unwrap();
    let at = at + 1 + words[at + 1..].iter().position(|w| *w == "bytes").unwrap();
    words[at - 1].parse().unwrap()
}
