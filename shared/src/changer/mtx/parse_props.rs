//! Property tests of `parse_status`: whatever mtx prints, however it pads
//! the text, parses back; a cut output never passes for a smaller library.

use proptest::prelude::*;

use super::parse_status;
use crate::changer::{ChangerError, ChangerStatus, DriveElement, SlotElement};

fn arb_status() -> impl Strategy<Value = ChangerStatus> {
    let tag = prop::option::of("[A-Z0-9]{1,8}");
    let drive = (any::<bool>(), tag.clone(), prop::option::of(1u32..100));
    let slot = (any::<bool>(), tag, any::<bool>());
    (
        prop::collection::vec(drive, 0..4),
        prop::collection::vec(slot, 1..30),
    )
        .prop_map(|(drives, slots)| ChangerStatus {
            drives: drives
                .into_iter()
                .enumerate()
                .map(|(i, (full, barcode, source_slot))| DriveElement {
                    index: i as u32,
                    full,
                    barcode: barcode.filter(|_| full),
                    source_slot: source_slot.filter(|_| full),
                    serial: None,
                })
                .collect(),
            slots: slots
                .into_iter()
                .enumerate()
                .map(|(i, (full, barcode, import_export))| SlotElement {
                    number: i as u32 + 1,
                    full,
                    barcode: barcode.filter(|_| full),
                    import_export,
                })
                .collect(),
        })
}

/// How a given library or copy lays the text out.
#[derive(Debug, Clone)]
struct Layout {
    header: bool,
    header_indent: usize,
    slot_indent: &'static str,
    pad: usize,
    crlf: bool,
}

fn arb_layout() -> impl Strategy<Value = Layout> {
    (
        any::<bool>(),
        0usize..3,
        prop::sample::select(vec!["      ", "", "\t", "  \t "]),
        prop::sample::select(vec![0usize, 5, 24, 28]),
        any::<bool>(),
    )
        .prop_map(|(header, header_indent, slot_indent, pad, crlf)| Layout {
            header,
            header_indent,
            slot_indent,
            pad,
            crlf,
        })
}

/// Print a status the way mtx.c does, in the given layout.
fn render(s: &ChangerStatus, l: &Layout) -> String {
    let pad = " ".repeat(l.pad);
    let mut lines = Vec::new();
    if l.header {
        let ie = s.slots.iter().filter(|s| s.import_export).count();
        lines.push(format!(
            "{}Storage Changer /dev/sg5:{} Drives, {} Slots ( {ie} Import/Export )",
            " ".repeat(l.header_indent),
            s.drives.len(),
            s.slots.len(),
        ));
    }
    for d in &s.drives {
        let mut line = format!("Data Transfer Element {}:", d.index);
        if !d.full {
            line.push_str("Empty");
        } else {
            match d.source_slot {
                Some(n) => line.push_str(&format!("Full (Storage Element {n} Loaded)")),
                None => line.push_str("Full (Unknown Storage Element Loaded)"),
            }
            if let Some(b) = &d.barcode {
                line.push_str(&format!(":VolumeTag = {b}{pad}"));
            }
        }
        lines.push(line);
    }
    for slot in &s.slots {
        let mut line = format!(
            "{}Storage Element {}{}:{}",
            l.slot_indent,
            slot.number,
            if slot.import_export {
                " IMPORT/EXPORT"
            } else {
                ""
            },
            if slot.full { "Full " } else { "Empty" },
        );
        if let Some(b) = &slot.barcode {
            line.push_str(&format!(":VolumeTag={b}{pad}"));
        }
        lines.push(line);
    }
    let eol = if l.crlf { "\r\n" } else { "\n" };
    lines.join(eol) + eol
}

proptest! {
    #[test]
    fn rendered_status_parses_back(status in arb_status(), layout in arb_layout()) {
        let text = render(&status, &layout);
        prop_assert_eq!(parse_status(&text).unwrap(), status);
    }

    #[test]
    fn truncated_output_never_passes_for_a_smaller_library(
        status in arb_status(),
        layout in arb_layout(),
        cut in 1usize..100,
    ) {
        let layout = Layout { header: true, ..layout };
        let text = render(&status, &layout);
        let lines: Vec<&str> = text.lines().collect();
        let keep = lines.len().saturating_sub(cut).max(1);
        prop_assume!(keep < lines.len());
        let result = parse_status(&lines[..keep].join("\n"));
        prop_assert!(
            matches!(&result, Err(ChangerError::Parse { message, .. }) if message.contains("incomplete")),
            "{:?}", result
        );
    }
}
