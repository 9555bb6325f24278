//! Data encryption of a served drive: SECURITY PROTOCOL OUT sets a key,
//! blocks are stored sealed with AES-256-GCM, and read back only with that
//! key; the status pages say what is set and what the next block is.

use super::sense::Key;
use super::ssc::Ssc;
use super::tests::{block, data_in, good, no_data, read, sense, ssc, weof, write};
use crate::vtl::VirtualDrive;

/// SECURITY PROTOCOL OUT, Set Data Encryption, as stenc builds it: scope
/// all I_T nexus, the modes, algorithm 1, a plain 32-byte key, a uKAD.
fn set_key(
    ssc: &mut Ssc<VirtualDrive>,
    encrypt: u8,
    decrypt: u8,
    key: Option<[u8; 32]>,
    ukad: &[u8],
) -> super::sense::Reply {
    let mut p = vec![0x00, 0x10, 0, 0, 2 << 5, 0, encrypt, decrypt, 1, 0];
    p.extend_from_slice(&[0; 8]);
    match key {
        Some(k) => {
            p.extend_from_slice(&32u16.to_be_bytes());
            p.extend_from_slice(&k);
        }
        None => p.extend_from_slice(&[0, 0]),
    }
    if !ukad.is_empty() {
        p.extend_from_slice(&[0x00, 0x00]);
        p.extend_from_slice(&(ukad.len() as u16).to_be_bytes());
        p.extend_from_slice(ukad);
    }
    let len = (p.len() - 4) as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    let n = (p.len() as u32).to_be_bytes();
    let cdb = [0xb5, 0x20, 0x00, 0x10, 0, 0, n[0], n[1], n[2], n[3], 0, 0];
    ssc.execute(&cdb, &mut p)
}

fn security_in(ssc: &mut Ssc<VirtualDrive>, protocol: u8, page: u16) -> Vec<u8> {
    let p = page.to_be_bytes();
    let cdb = [0xa2, protocol, p[0], p[1], 0, 0, 0, 0, 0x20, 0, 0, 0];
    let (reply, v) = data_in(ssc, &cdb, 8192);
    good(&reply);
    v
}

fn rewind(ssc: &mut Ssc<VirtualDrive>) {
    good(&no_data(ssc, &[0x01, 0, 0, 0, 0, 0]));
}

#[test]
fn a_tape_written_with_a_key_reads_back_only_with_that_key() {
    let (dir, mut ssc) = ssc();
    let (k1, k2) = ([1u8; 32], [2u8; 32]);
    let data = block(9, 4096);
    good(&set_key(&mut ssc, 2, 2, Some(k1), b"first key"));
    good(&write(&mut ssc, &data));
    good(&weof(&mut ssc, 1));
    // On the virtual tape: no plaintext, a block longer by the envelope.
    let stored = std::fs::read(dir.path().join("tapes/V00001L9/000000")).unwrap();
    assert!(stored.starts_with(b"REELAES1"));
    assert_eq!(stored.len(), 4096 + 8 + 8 + 12 + 2 + 9 + 16);
    assert!(!stored.windows(64).any(|w| w == &data[..64]));
    // With the key: the plaintext, of its own length.
    rewind(&mut ssc);
    let (reply, got) = read(&mut ssc, 4096);
    good(&reply);
    assert_eq!(got, data);
    // Another key: INCORRECT DATA ENCRYPTION KEY.
    good(&set_key(&mut ssc, 2, 2, Some(k2), b""));
    rewind(&mut ssc);
    let (k, asc, ascq, ..) = sense(&read(&mut ssc, 4096).0);
    assert_eq!((k, asc, ascq), (Key::DataProtect, 0x74, 0x03));
    // Encryption off: UNABLE TO DECRYPT DATA.
    good(&set_key(&mut ssc, 0, 0, None, b""));
    rewind(&mut ssc);
    let (k, asc, ascq, ..) = sense(&read(&mut ssc, 4096).0);
    assert_eq!((k, asc, ascq), (Key::DataProtect, 0x74, 0x01));
    // Raw read: the stored bytes.
    good(&set_key(&mut ssc, 2, 1, Some(k2), b""));
    rewind(&mut ssc);
    let (reply, got) = read(&mut ssc, 8192);
    assert_eq!(sense(&reply).0, Key::NoSense, "ILI: shorter than asked");
    assert_eq!(got, stored);
    // The first key again.
    good(&set_key(&mut ssc, 2, 2, Some(k1), b""));
    rewind(&mut ssc);
    assert_eq!(read(&mut ssc, 4096).1, data);
}

#[test]
fn plaintext_reads_in_mixed_mode_and_is_refused_when_only_encrypted_data_may_be_read() {
    let (_dir, mut ssc) = ssc();
    let data = block(3, 512);
    good(&write(&mut ssc, &data));
    good(&weof(&mut ssc, 1));
    good(&set_key(&mut ssc, 2, 3, Some([7; 32]), b""));
    rewind(&mut ssc);
    assert_eq!(read(&mut ssc, 512).1, data);
    good(&set_key(&mut ssc, 2, 2, Some([7; 32]), b""));
    rewind(&mut ssc);
    let (k, asc, ascq, ..) = sense(&read(&mut ssc, 512).0);
    assert_eq!((k, asc, ascq), (Key::DataProtect, 0x74, 0x02));
}

#[test]
fn status_pages_say_what_is_set_and_what_the_next_block_is() {
    let (_dir, mut ssc) = ssc();
    let support = security_in(&mut ssc, 0x00, 0x0000);
    assert_eq!(&support[6..], &[0, 2, 0x00, 0x20]);
    let pages = security_in(&mut ssc, 0x20, 0x0000);
    assert_eq!(&pages[4..], &[0, 0, 0, 1, 0, 0x10, 0, 0x20, 0, 0x21]);
    let caps = security_in(&mut ssc, 0x20, 0x0010);
    assert_eq!(caps[20], 1, "algorithm index 1");
    assert_eq!(
        &caps[20 + 20..20 + 24],
        &0x0001_0014u32.to_be_bytes(),
        "AES-GCM 256"
    );
    // Nothing set.
    let des = security_in(&mut ssc, 0x20, 0x0020);
    assert_eq!(&des[..2], &[0x00, 0x20]);
    assert_eq!((des[5], des[6], des[7]), (0, 0, 0));
    good(&set_key(&mut ssc, 2, 2, Some([5; 32]), b"backup-2026"));
    let des = security_in(&mut ssc, 0x20, 0x0020);
    assert_eq!((des[5], des[6], des[7]), (2, 2, 1));
    assert_eq!(
        u32::from_be_bytes([des[8], des[9], des[10], des[11]]),
        1,
        "key instance"
    );
    assert!(des.ends_with(b"backup-2026"), "the uKAD: {des:02x?}");
    assert_eq!(
        usize::from(u16::from_be_bytes([des[2], des[3]])) + 4,
        des.len()
    );
    good(&write(&mut ssc, &block(1, 100)));
    good(&set_key(&mut ssc, 0, 0, None, b""));
    good(&write(&mut ssc, &block(2, 100)));
    good(&weof(&mut ssc, 1));
    rewind(&mut ssc);
    // The next block: encrypted, and no key to read it; its uKAD.
    let nbes = security_in(&mut ssc, 0x20, 0x0021);
    assert_eq!(&nbes[..2], &[0x00, 0x21]);
    assert_eq!(u64::from_be_bytes(nbes[4..12].try_into().unwrap()), 0);
    assert_eq!(nbes[12] & 0x0f, 6);
    assert!(nbes.ends_with(b"backup-2026"));
    good(&set_key(&mut ssc, 2, 2, Some([5; 32]), b""));
    assert_eq!(
        security_in(&mut ssc, 0x20, 0x0021)[12] & 0x0f,
        5,
        "able to decrypt"
    );
    // Peeking did not move the head.
    assert_eq!(read(&mut ssc, 100).1, block(1, 100));
    assert_eq!(
        security_in(&mut ssc, 0x20, 0x0021)[12] & 0x0f,
        3,
        "not encrypted"
    );
    good(&set_key(&mut ssc, 2, 3, Some([5; 32]), b""));
    good(&read(&mut ssc, 100).0);
    assert_eq!(
        security_in(&mut ssc, 0x20, 0x0021)[12] & 0x0f,
        2,
        "a filemark is next"
    );
}

#[test]
fn a_bad_key_page_is_refused_and_ckod_clears_the_key_at_a_tape_change() {
    let (_dir, mut ssc) = ssc();
    // A 16-byte key.
    let mut p = vec![
        0x00,
        0x10,
        0,
        32,
        2 << 5,
        0,
        2,
        2,
        1,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        16,
    ];
    p.extend_from_slice(&[1; 16]);
    let n = (p.len() as u32).to_be_bytes();
    let reply = ssc.execute(
        &[0xb5, 0x20, 0, 0x10, 0, 0, n[0], n[1], n[2], n[3], 0, 0],
        &mut p,
    );
    assert_eq!(sense(&reply).0, Key::IllegalRequest);
    // CKOD set: the key goes with the tape.
    let mut page = vec![0x00, 0x10, 0, 0, 2 << 5, 0x04, 2, 2, 1, 0];
    page.extend_from_slice(&[0; 8]);
    page.extend_from_slice(&32u16.to_be_bytes());
    page.extend_from_slice(&[3; 32]);
    let len = (page.len() - 4) as u16;
    page[2..4].copy_from_slice(&len.to_be_bytes());
    let n = (page.len() as u32).to_be_bytes();
    good(&ssc.execute(
        &[0xb5, 0x20, 0, 0x10, 0, 0, n[0], n[1], n[2], n[3], 0, 0],
        &mut page,
    ));
    assert_eq!(security_in(&mut ssc, 0x20, 0x0020)[5], 2);
    ssc.medium_changed();
    let reply = no_data(&mut ssc, &[0x00, 0, 0, 0, 0, 0]);
    assert_eq!(sense(&reply).0, Key::UnitAttention);
    let des = security_in(&mut ssc, 0x20, 0x0020);
    assert_eq!((des[5], des[6]), (0, 0), "cleared on demount");
}
