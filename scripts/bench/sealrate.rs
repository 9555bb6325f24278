//! How fast reel seals: an archive read through `SealingReader` (as
//! reel-write reads it into its ring, 256 KiB at a time), from the page
//! cache to nowhere, three times; prints MB/s for each.
//!   Usage: sealrate FILE
use std::io::Read;
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: sealrate FILE");
    let id = age::x25519::Identity::generate();
    let r = reel_shared::archive::sealed::Recipients::parse(&[id.to_public().to_string()])
        .expect("a recipient");
    for _ in 0..3 {
        let f = std::fs::File::open(&path).expect("the file");
        let len = f.metadata().expect("its size").len();
        let t = Instant::now();
        let mut s =
            reel_shared::archive::seal::SealingReader::new(f, len, &r, 256 << 10).expect("sealing");
        let mut buf = vec![0u8; 256 << 10];
        let mut total = 0u64;
        loop {
            let mut filled = 0;
            while filled < buf.len() {
                let n = s.read(&mut buf[filled..]).expect("reading");
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            total += filled as u64;
        }
        let secs = t.elapsed().as_secs_f64();
        println!("{:.0}", total as f64 / secs / 1e6);
    }
}
