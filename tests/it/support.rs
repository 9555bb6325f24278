//! Test helpers: a temporary directory per test, running programs with full
//! diagnostics when an expectation fails.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every program, by name.
pub const PROGRAMS: [&str; 9] = [
    "reel",
    "reel-scan",
    "reel-stage",
    "reel-pack",
    "reel-write",
    "reel-verify",
    "reel-restore",
    "reel-supervisor",
    "reel-drivesim",
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
        other => panic!("no program {other}"),
    }
}

/// A temporary working directory with a config in it.
pub struct Env {
    dir: tempfile::TempDir,
}

/// A config with everything under the test's directory.
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
    pub fn run(&self, program: &str, args: &[&str]) -> Run {
        let mut cmd = Command::new(bin(program));
        cmd.args(args)
            .current_dir(self.root())
            .env_remove("REEL_CONFIG")
            .env_remove("RUST_LOG");
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
