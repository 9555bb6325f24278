//! Opening: the online wait, no tape, write protection, driver options;
//! and loading and unloading.

use super::*;

#[test]
fn open_sets_up_the_driver() {
    let t = tape(100, 90, Quirk::RealDrive);
    let d = open(&t);
    assert!(!d.sys().nonblocking, "O_NONBLOCK is cleared for I/O");
    let t = t.lock().unwrap();
    assert_eq!(t.opens, [Access::ReadWrite]);
    assert_ne!(t.options & MT_ST_SCSI2LOGICAL, 0);
    assert_eq!(t.options & MT_ST_ASYNC_WRITES, 0);
    assert_eq!(t.block_size, 0, "variable-block mode");
}

#[test]
fn open_waits_until_the_tape_is_online() {
    let t = tape(100, 90, Quirk::RealDrive);
    t.lock().unwrap().opens_until_ready = 3;
    let options = OpenOptions {
        ready_timeout: Duration::from_secs(60),
        poll_interval: Duration::from_secs(10),
        ..OpenOptions::default()
    };
    let mut clock = FakeClock::default();
    let mut d = open_with(&t, &options, &mut clock).unwrap();
    assert_eq!(clock.sleeps, 3);
    // st decides readiness at open: every look is a fresh open.
    assert_eq!(t.lock().unwrap().opens.len(), 4);
    assert!(d.status().unwrap().online);
}

#[test]
fn open_gives_up_when_the_timeout_passes() {
    let t = tape(100, 90, Quirk::RealDrive);
    t.lock().unwrap().opens_until_ready = u32::MAX;
    let options = OpenOptions {
        ready_timeout: Duration::from_secs(60),
        poll_interval: Duration::from_secs(10),
        ..OpenOptions::default()
    };
    let mut clock = FakeClock::default();
    let err = open_with(&t, &options, &mut clock).err().unwrap();
    assert!(matches!(err, TapeError::NotReady), "{err}");
    assert_eq!(clock.now, Duration::from_secs(60));
    assert_eq!(t.lock().unwrap().opens.len(), 7);

    // With no time to wait, one look.
    let t = tape(100, 90, Quirk::RealDrive);
    t.lock().unwrap().opens_until_ready = 1;
    let options = OpenOptions {
        ready_timeout: Duration::ZERO,
        ..OpenOptions::default()
    };
    let mut clock = FakeClock::default();
    let err = open_with(&t, &options, &mut clock).err().unwrap();
    assert!(matches!(err, TapeError::NotReady), "{err}");
    assert_eq!(clock.sleeps, 0);
}

#[test]
fn open_without_a_tape() {
    let t = tape(100, 90, Quirk::RealDrive);
    t.lock().unwrap().loaded = false;
    let mut clock = FakeClock::default();
    let err = open_with(&t, &OpenOptions::default(), &mut clock)
        .err()
        .unwrap();
    assert!(matches!(err, TapeError::NoTape), "{err}");
    assert_eq!(clock.sleeps, 0, "an empty drive is not waited for");
}

#[test]
fn open_of_a_busy_drive() {
    let t = tape(100, 90, Quirk::RealDrive);
    t.lock().unwrap().busy = true;
    let err = open_with(&t, &OpenOptions::default(), &mut FakeClock::default())
        .err()
        .unwrap();
    assert!(
        matches!(err, TapeError::Busy(ref d) if d == "/dev/nst0"),
        "{err}"
    );
}

#[test]
fn write_protected_tape_is_opened_read_only() {
    let t = tape(100, 90, Quirk::RealDrive);
    let mut d = open(&t);
    d.rewind().unwrap();
    d.write_block(b"label").unwrap();
    d.write_filemarks(1).unwrap();
    drop(d);
    t.lock().unwrap().write_protected = true;

    let mut d = open(&t);
    assert_eq!(
        t.lock().unwrap().opens,
        [Access::ReadWrite, Access::ReadWrite, Access::ReadOnly]
    );
    assert!(d.status().unwrap().write_protected);
    d.rewind().unwrap();
    assert_eq!(read(&mut d), Read::Data(5));
    assert!(matches!(
        d.write_block(b"x"),
        Err(TapeError::WriteProtected)
    ));
    assert!(matches!(
        d.write_filemarks(1),
        Err(TapeError::WriteProtected)
    ));
    assert!(matches!(d.erase(false), Err(TapeError::WriteProtected)));
    assert_eq!(t.lock().unwrap().count("write"), 1, "nothing was tried");
}

#[test]
fn read_only_device_node_falls_back_to_reading() {
    for errno in [Errno::EACCES, Errno::EROFS] {
        let t = tape(100, 90, Quirk::RealDrive);
        t.lock().unwrap().rw_open_error = Some(errno);
        let mut d = open(&t);
        assert_eq!(
            t.lock().unwrap().opens,
            [Access::ReadWrite, Access::ReadOnly]
        );
        d.rewind().unwrap();
        assert!(matches!(
            d.write_block(b"x"),
            Err(TapeError::WriteProtected)
        ));
    }
}

#[test]
fn driver_options_without_root() {
    // An administrator set scsi2logical; reel runs as a tape operator.
    let t = tape(100, 90, Quirk::RealDrive);
    {
        let mut t = t.lock().unwrap();
        t.root = false;
        t.options |= MT_ST_SCSI2LOGICAL;
    }
    let d = open(&t);
    drop(d);

    // Nobody did: positions would not be logical block addresses.
    let t = tape(100, 90, Quirk::RealDrive);
    t.lock().unwrap().root = false;
    let err = open_with(&t, &OpenOptions::default(), &mut FakeClock::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("scsi2logical"), "{err}");

    // Nor can it be checked.
    let t = tape(100, 90, Quirk::RealDrive);
    {
        let mut t = t.lock().unwrap();
        t.root = false;
        t.sysfs = false;
    }
    assert!(open_with(&t, &OpenOptions::default(), &mut FakeClock::default()).is_err());
}

#[test]
fn unload_and_load() {
    let t = tape(100, 90, Quirk::RealDrive);
    let mut d = open(&t);
    d.rewind().unwrap();
    d.write_block(b"data").unwrap();
    d.write_filemarks(1).unwrap();
    d.unload().unwrap();
    let s = d.status().unwrap();
    assert!(s.door_open && !s.online);
    assert_eq!(s.position, None);
    assert!(matches!(d.read_block(&mut [0; 8]), Err(TapeError::NoTape)));

    t.lock().unwrap().loaded = true;
    t.lock().unwrap().block_size = 1024;
    d.load().unwrap();
    let s = d.status().unwrap();
    assert!(s.online && s.bot);
    assert_eq!((s.position, s.block_size), (Some(0), 0));
    assert_eq!(read(&mut d), Read::Data(4));
}

#[test]
fn fixed_block_mode_is_left_alone_when_asked() {
    let t = tape(100, 90, Quirk::RealDrive);
    let options = OpenOptions {
        variable_blocks: false,
        ..OpenOptions::default()
    };
    let mut d = open_with(&t, &options, &mut FakeClock::default()).unwrap();
    assert_eq!(d.status().unwrap().block_size, 512);
    d.set_block_size(0).unwrap();
    assert_eq!(d.status().unwrap().block_size, 0);
}

#[test]
fn open_waits_through_error_recovery() {
    let t = tape(100, 90, Quirk::RealDrive);
    t.lock().unwrap().recovering = 2;
    let mut clock = FakeClock::default();
    open_with(&t, &OpenOptions::default(), &mut clock).unwrap();
    assert_eq!(clock.sleeps, 2);
}

#[test]
fn real_open_names_what_failed() {
    let options = OpenOptions::default();
    let err = LinuxSt::open("/nonexistent/nst0", &options).unwrap_err();
    assert!(matches!(err, TapeError::Io { op: "open", .. }), "{err}");
    let err = LinuxSt::open("/dev/null", &options).unwrap_err();
    assert!(
        matches!(err, TapeError::Io { op, .. } if op.contains("MTIOCGET")),
        "{err}"
    );
}

/// Seen on the kernel's scsi_debug tape: after an unload the cartridge stays
/// in the drive, not ready, and no open comes online until MTLOAD.
#[test]
fn a_tape_unloaded_in_the_drive_is_loaded_without_waiting_for_it() {
    let t = tape(100, 90, Quirk::ScsiDebug);
    t.lock().unwrap().needs_load = true;
    let quick = OpenOptions {
        ready_timeout: Duration::from_secs(60),
        ..OpenOptions::default()
    };
    let mut clock = FakeClock::default();
    assert!(matches!(
        open_with(&t, &quick, &mut clock),
        Err(TapeError::NotReady)
    ));
    let mut clock = FakeClock::default();
    let mut d = LinuxSt::load_with("/dev/nst0", &quick, opener(&t), &mut clock).unwrap();
    assert_eq!(clock.sleeps, 0);
    let s = d.status().unwrap();
    assert!(s.online && s.bot, "{s:?}");
    assert_eq!(t.lock().unwrap().count("MTLOAD"), 1);
}

#[test]
fn tape_alerts_come_from_the_response_page_else_the_tapealert_page() {
    use crate::scsi::tapealert::TapeAlerts;
    let t = tape(100, 90, Quirk::RealDrive);
    let mut d = open(&t);
    // A drive with neither page cannot tell.
    assert_eq!(d.tape_alerts().unwrap(), None);
    // Page 0x2E only (an older drive): one parameter per flag.
    let mut p2e = vec![0x2e, 0, 1, 0x40];
    for n in 1..=64u8 {
        p2e.extend([0, n, 0x03, 1, u8::from(n == 20)]);
    }
    t.lock().unwrap().log_pages = vec![p2e];
    assert_eq!(d.tape_alerts().unwrap(), Some(TapeAlerts::of(&[20])));
    // Page 0x12 first when the drive has it (it does not clear flags).
    let mut p12 = vec![0x12, 0, 0, 12, 0, 0, 0x03, 8];
    p12.extend(TapeAlerts::of(&[4, 5]).0.to_be_bytes());
    t.lock().unwrap().log_pages.insert(0, p12);
    assert_eq!(d.tape_alerts().unwrap(), Some(TapeAlerts::of(&[4, 5])));
    let calls = t.lock().unwrap().calls.clone();
    // Two looks, two looks, one.
    assert_eq!(calls.iter().filter(|c| **c == "LOG SENSE").count(), 5);
}

#[test]
fn the_cartridge_memory_comes_from_read_attribute() {
    let t = tape(100, 90, Quirk::RealDrive);
    let mut d = open(&t);
    // SG_IO refused: the drive cannot tell.
    assert_eq!(d.cartridge_memory().unwrap(), None);
    let mut body = vec![0x00, 0x03, 0x80, 0x00, 0x08];
    body.extend(3u64.to_be_bytes());
    let mut answer = (body.len() as u32).to_be_bytes().to_vec();
    answer.extend(body);
    t.lock().unwrap().attributes = Some(answer);
    let m = d.cartridge_memory().unwrap().unwrap();
    assert_eq!(m.loads, Some(3));
}
