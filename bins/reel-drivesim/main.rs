//! `reel-drivesim`: placeholder (being built): a sink that models an LTO drive.

fn main() {}
