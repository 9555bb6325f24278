//! The plan of a staged item: which record goes into which archive, and
//! the order of the records.

use super::plan::{Part, Piece, order, plan};
use crate::config::PackOrder;
use crate::manifest::{EntryType, Record};

fn file(path: &str, size: u64) -> Record {
    let mut r = Record::new(path, EntryType::File);
    r.size = size;
    r
}

fn whole(index: usize) -> Piece {
    Piece { index, part: None }
}

fn indexes(archives: &[Vec<Piece>]) -> Vec<Vec<usize>> {
    archives
        .iter()
        .map(|a| a.iter().map(|p| p.index).collect())
        .collect()
}

#[test]
fn files_are_cut_into_archives_of_at_most_archive_size() {
    let records = [file("a", 40), file("b", 40), file("c", 40), file("d", 10)];
    assert_eq!(
        indexes(&plan(&records, 100, 1000)),
        [vec![0, 1], vec![2, 3]]
    );
}

#[test]
fn directories_count_no_bytes() {
    let records = [Record::new("dir", EntryType::Dir), file("dir/f", 100)];
    assert_eq!(indexes(&plan(&records, 100, 1000)), [vec![0, 1]]);
}

#[test]
fn a_file_larger_than_archive_size_gets_an_archive_of_its_own() {
    let records = [file("a", 10), file("big", 150), file("b", 10)];
    assert_eq!(
        indexes(&plan(&records, 100, 1000)),
        [vec![0], vec![1], vec![2]]
    );
}

#[test]
fn a_file_too_large_for_a_tape_is_split_into_parts_of_archive_size() {
    let records = [file("small", 10), file("huge", 250)];
    let archives = plan(&records, 100, 200);
    assert_eq!(archives[0], [whole(0)]);
    let parts: Vec<Part> = archives[1..]
        .iter()
        .map(|a| {
            assert_eq!(a.len(), 1);
            assert_eq!(a[0].index, 1);
            a[0].part.expect("a part")
        })
        .collect();
    let got: Vec<_> = parts
        .iter()
        .map(|p| (p.number, p.offset, p.len, p.at, p.last))
        .collect();
    assert_eq!(
        got,
        [
            (1, 0, 100, 0, false),
            (2, 100, 100, 100, false),
            (3, 200, 50, 200, true)
        ]
    );
}

#[test]
fn a_part_staged_on_its_own_is_an_archive_of_its_own_read_from_its_start() {
    let mut part = file("huge", 250);
    part.part = Some(2);
    part.part_offset = Some(100);
    part.part_len = Some(100);
    let records = [file("a", 10), part, file("b", 10)];
    let archives = plan(&records, 1000, 1000);
    assert_eq!(indexes(&archives), [vec![0], vec![1], vec![2]]);
    let p = archives[1][0].part.expect("a part");
    assert_eq!(
        (p.number, p.offset, p.len, p.at, p.last),
        (2, 100, 100, 0, true)
    );
}

#[test]
fn records_are_ordered_by_path_or_largest_first() {
    let names = |rs: &[Record]| -> Vec<String> {
        rs.iter().map(|r| r.path.display().to_string()).collect()
    };
    let mut records = vec![file("b", 1), file("c", 5), file("a", 5)];
    order(&mut records, PackOrder::Scan);
    assert_eq!(names(&records), ["b", "c", "a"]);
    order(&mut records, PackOrder::Size);
    assert_eq!(names(&records), ["a", "c", "b"]);
    order(&mut records, PackOrder::Path);
    assert_eq!(names(&records), ["a", "b", "c"]);
}
