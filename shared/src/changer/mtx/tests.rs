//! Tests of [`Mtx`] against a fake `mtx`: a shell script that logs its
//! arguments, prints a fixture, and can fail a chosen number of times first.
//! They check the exact argument vectors, the retries, and the refusals that
//! need no library at all.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{Mtx, RetryPolicy, parse_status};
use crate::changer::{Changer, ChangerError};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/device-output/"
);
const PVE: &str = "mtx-status-pve-sch0-2drive-24slot-lto5.txt";
const NOT_READY: &str = "mtx-status-ibm-3361-4lx-error-not-ready.txt";
const DEVICE: &str = "/dev/sg5";

const UNIT_ATTENTION: &str = "\
mtx: Request Sense: Long Report=yes
mtx: Request Sense: Error Code=70 (Current)
mtx: Request Sense: Sense Key=Unit Attention
mtx: Request Sense: Additional Sense Code = 28
mtx: Request Sense: Additional Sense Qualifier = 00
MOVE MEDIUM from Element Address 1012 to 500 Failed
";

const ILLEGAL_REQUEST: &str = "\
mtx: Request Sense: Long Report=yes
mtx: Request Sense: Sense Key=Illegal Request
mtx: Request Sense: Additional Sense Code = 3B
mtx: Request Sense: Additional Sense Qualifier = 0D
MOVE MEDIUM from Element Address 1012 to 500 Failed
";

/// A fake `mtx` in a temporary directory.
struct FakeMtx {
    dir: tempfile::TempDir,
    program: PathBuf,
}

impl FakeMtx {
    /// Answers `status` with this fixture and every move with success.
    fn new(fixture: &str) -> Self {
        Self::failing(fixture, "none", 0, "")
    }

    /// Like `new`, but the first `failures` runs of command `verb` print
    /// `stderr` and exit 1.
    fn failing(fixture: &str, verb: &str, failures: u32, stderr: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
        std::fs::write(path("stderr"), stderr).unwrap();
        let script = format!(
            r#"#!/bin/sh
for a in "$@"; do printf '[%s]' "$a" >> '{log}'; done
printf '\n' >> '{log}'
if [ "$3" = '{verb}' ]; then
    n=$(cat '{count}' 2>/dev/null || echo 0)
    if [ "$n" -lt {failures} ]; then
        echo $((n + 1)) > '{count}'
        # What mtx prints before it tries the move.
        [ "$3" = load ] && printf 'Loading media from Storage Element %s into drive %s...' "$4" "$5"
        cat '{stderr}' >&2
        exit 1
    fi
fi
case "$3" in
    status) cat '{fixtures}{fixture}' ;;
    load) echo "Loading media from Storage Element $4 into drive $5...done" ;;
    unload) echo "Unloading drive $5 into Storage Element $4...done" ;;
esac
"#,
            log = path("log"),
            count = path("count"),
            stderr = path("stderr"),
            fixtures = FIXTURES,
        );
        let program = dir.path().join("mtx");
        install_executable(&program, &script);
        FakeMtx { dir, program }
    }

    /// An `Mtx` on /dev/sg5 that runs the fake, retrying 3 times at once.
    fn mtx(&self) -> Mtx {
        Mtx::new(DEVICE)
            .with_program(&self.program)
            .with_retry(RetryPolicy {
                retries: 3,
                delay: Duration::ZERO,
            })
    }

    /// The argument vector of every run so far.
    fn calls(&self) -> Vec<Vec<String>> {
        let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        log.lines()
            .map(|line| {
                let inner = line.strip_prefix('[').unwrap().strip_suffix(']').unwrap();
                inner.split("][").map(String::from).collect()
            })
            .collect()
    }
}

/// Write an executable through a child process rather than from this one.
/// Running a file fails with ETXTBSY while any process holds it open for
/// writing, and a test thread that forks at the wrong moment would carry
/// this process's write handle into its child until that child execs.
fn install_executable(path: &Path, text: &str) {
    let mut child = Command::new("sh")
        .args(["-c", r#"cat > "$1" && chmod 755 "$1""#, "sh"])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

fn argv(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn status_call() -> Vec<String> {
    argv(&["-f", DEVICE, "status"])
}

fn refused(result: Result<(), ChangerError>) -> String {
    match result {
        Err(ChangerError::Refused(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn status_runs_mtx_f_device_status() {
    let fake = FakeMtx::new(PVE);
    let mut mtx = fake.mtx();
    assert_eq!(mtx.device(), DEVICE);
    let status = mtx.status().unwrap();
    let text = std::fs::read_to_string(format!("{FIXTURES}{PVE}")).unwrap();
    assert_eq!(status, parse_status(&text).unwrap());
    assert_eq!(fake.calls(), vec![status_call()]);
}

#[test]
fn device_reaches_mtx_as_one_argument_untouched_by_a_shell() {
    let fake = FakeMtx::new(PVE);
    let marker = fake.dir.path().join("marker");
    let device = format!("/dev/sg5 $(touch {}); echo", marker.display());
    let mut mtx = Mtx::new(device.clone()).with_program(&fake.program);
    mtx.status().unwrap();
    assert_eq!(fake.calls(), vec![argv(&["-f", &device, "status"])]);
    assert!(!marker.exists());
}

#[test]
fn status_is_retried_while_the_library_is_not_ready() {
    let not_ready = std::fs::read_to_string(format!("{FIXTURES}{NOT_READY}")).unwrap();
    let fake = FakeMtx::failing(PVE, "status", 2, &not_ready);
    let status = fake.mtx().status().unwrap();
    assert_eq!(status.drives[0].source_slot, Some(22));
    assert_eq!(fake.calls(), vec![status_call(); 3]);
}

#[test]
fn not_ready_past_the_retries_is_not_ready() {
    let not_ready = std::fs::read_to_string(format!("{FIXTURES}{NOT_READY}")).unwrap();
    let fake = FakeMtx::failing(PVE, "status", 10, &not_ready);
    let err = fake.mtx().status().unwrap_err();
    let ChangerError::NotReady(reason) = &err else {
        panic!("expected NotReady, got {err:?}");
    };
    assert!(reason.starts_with("/dev/sg5: "), "{reason}");
    assert!(
        reason.contains("READ ELEMENT STATUS Command Failed"),
        "{reason}"
    );
    assert!(reason.contains("sense key Not Ready"), "{reason}");
    assert!(reason.contains("failed 4 times"), "{reason}");
    // One attempt and three retries.
    assert_eq!(fake.calls(), vec![status_call(); 4]);
}

#[test]
fn no_retries_means_one_attempt() {
    let fake = FakeMtx::failing(PVE, "status", 1, UNIT_ATTENTION);
    let mut mtx = fake.mtx().with_retry(RetryPolicy {
        retries: 0,
        delay: Duration::ZERO,
    });
    assert!(matches!(mtx.status(), Err(ChangerError::NotReady(_))));
    assert_eq!(fake.calls().len(), 1);
}

#[test]
fn other_failures_are_not_retried() {
    let fake = FakeMtx::failing(
        PVE,
        "status",
        1,
        "cannot open SCSI device '/dev/sg5' - No such file or directory\n",
    );
    match fake.mtx().status() {
        Err(ChangerError::Command {
            command,
            status,
            stderr,
        }) => {
            assert_eq!(
                command,
                format!("{} -f /dev/sg5 status", fake.program.display())
            );
            assert!(status.contains('1'), "{status}");
            assert_eq!(
                stderr,
                "cannot open SCSI device '/dev/sg5' - No such file or directory"
            );
        }
        other => panic!("expected a command error, got {other:?}"),
    }
    assert_eq!(fake.calls().len(), 1);
}

#[test]
fn load_checks_status_then_loads_slot_into_drive() {
    let fake = FakeMtx::new(PVE);
    fake.mtx().load(13, 1).unwrap();
    assert_eq!(
        fake.calls(),
        vec![status_call(), argv(&["-f", DEVICE, "load", "13", "1"])]
    );
}

#[test]
fn a_move_is_retried_after_unit_attention() {
    let fake = FakeMtx::failing(PVE, "load", 1, UNIT_ATTENTION);
    fake.mtx().load(13, 1).unwrap();
    let load = argv(&["-f", DEVICE, "load", "13", "1"]);
    assert_eq!(fake.calls(), vec![status_call(), load.clone(), load]);
}

#[test]
fn a_failed_move_gives_one_line_of_stderr() {
    let fake = FakeMtx::failing(PVE, "load", 1, ILLEGAL_REQUEST);
    match fake.mtx().load(13, 1) {
        Err(ChangerError::Command {
            command, stderr, ..
        }) => {
            assert!(command.ends_with("-f /dev/sg5 load 13 1"), "{command}");
            assert_eq!(
                stderr,
                "MOVE MEDIUM from Element Address 1012 to 500 Failed \
                 (sense key Illegal Request, ASC 3B, ASCQ 0D)"
            );
        }
        other => panic!("expected a command error, got {other:?}"),
    }
    assert_eq!(fake.calls().len(), 2, "status, then one load");
}

#[test]
fn unload_passes_slot_before_drive() {
    let fake = FakeMtx::new(PVE);
    fake.mtx().unload(0, 22).unwrap();
    assert_eq!(
        fake.calls(),
        vec![status_call(), argv(&["-f", DEVICE, "unload", "22", "0"])]
    );
}

#[test]
fn transfer_moves_between_slots() {
    let fake = FakeMtx::new(PVE);
    fake.mtx().transfer(13, 24).unwrap();
    assert_eq!(
        fake.calls(),
        vec![status_call(), argv(&["-f", DEVICE, "transfer", "13", "24"])]
    );
}

#[test]
fn impossible_moves_are_refused_after_only_a_status() {
    // PVE: drive 0 holds 000057L5 from slot 22, drive 1 is empty, slot 13
    // holds 000052L5, slot 1 is empty, 24 slots.
    let fake = FakeMtx::new(PVE);
    let mut mtx = fake.mtx();

    let m = refused(mtx.load(1, 1));
    assert!(
        m.contains("slot 1") && m.contains("empty") && m.contains(DEVICE),
        "{m}"
    );

    let m = refused(mtx.load(13, 0));
    assert!(
        m.contains("drive 0") && m.contains("000057L5") && m.contains("slot 22"),
        "{m}"
    );
    assert!(m.contains("000052L5"), "{m}");

    let m = refused(mtx.unload(0, 13));
    assert!(
        m.contains("slot 13") && m.contains("000052L5") && m.contains("000057L5"),
        "{m}"
    );

    let m = refused(mtx.unload(1, 1));
    assert!(m.contains("drive 1") && m.contains("empty"), "{m}");

    let m = refused(mtx.load(25, 1));
    assert!(m.contains("no slot 25") && m.contains("24 slots"), "{m}");

    let m = refused(mtx.load(13, 2));
    assert!(m.contains("no drive 2") && m.contains("2 drives"), "{m}");

    let m = refused(mtx.transfer(1, 2));
    assert!(m.contains("slot 1") && m.contains("empty"), "{m}");

    let m = refused(mtx.transfer(13, 15));
    assert!(m.contains("000055L5"), "{m}");

    assert_eq!(fake.calls(), vec![status_call(); 8]);

    // Moving a slot onto itself needs no status at all.
    refused(mtx.transfer(3, 3));
    assert_eq!(fake.calls().len(), 8);
}

#[test]
fn garbage_from_mtx_is_a_parse_error_naming_the_device() {
    let fake = FakeMtx::new("SOURCES.md");
    match fake.mtx().status() {
        Err(ChangerError::Parse { line, message }) => {
            assert_eq!(line, 1);
            assert!(message.contains("mtx -f /dev/sg5 status"), "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn a_missing_program_says_to_install_mtx() {
    let dir = tempfile::tempdir().unwrap();
    let mut mtx = Mtx::new(DEVICE).with_program(dir.path().join("no-such-mtx"));
    let err = mtx.status().unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, ChangerError::Command { status, .. } if status == "not started"),
        "{err:?}"
    );
    assert!(text.contains("install the `mtx` package"), "{text}");
    assert!(text.contains("no-such-mtx"), "{text}");
    assert!(text.contains("-f /dev/sg5 status"), "{text}");

    // A bare name is looked up on PATH and in the sbin directories, under
    // its own name.
    let mut mtx = Mtx::new(DEVICE).with_program("no-such-mtx-program");
    let text = mtx.status().unwrap_err().to_string();
    assert!(
        text.contains("`no-such-mtx-program` is not on PATH nor in /usr/sbin, /sbin"),
        "{text}"
    );
    assert!(text.contains("install the `mtx` package"), "{text}");
}

#[test]
fn defaults() {
    let mtx = Mtx::new(DEVICE);
    assert_eq!(mtx.program(), Path::new("mtx"));
    assert_eq!(mtx.retry(), RetryPolicy::default());
    assert!(mtx.retry().retries > 0);
}
