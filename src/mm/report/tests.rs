use super::*;

fn cut(base: u64, end: u64, owners: &[OwnedRange]) -> Vec<(&'static str, u64, u64)> {
    let mut v = Vec::new();
    attribute(base, end, owners, &mut |p| {
        v.push((p.owner, p.base, p.size))
    });
    v
}

fn o(owner: &'static str, base: u64, size: u64) -> OwnedRange {
    OwnedRange { owner, base, size }
}

#[test]
fn attribute_covers_exactly_with_other_in_the_gaps() {
    let owners = [
        o("b", 0x3000, 0x1000),
        o("a", 0x1000, 0x1000),
        o("far", 0x9000, 0x1000),
    ];
    assert_eq!(
        cut(0x0, 0x5000, &owners),
        [
            ("other", 0x0, 0x1000),
            ("a", 0x1000, 0x1000),
            ("other", 0x2000, 0x1000),
            ("b", 0x3000, 0x1000),
            ("other", 0x4000, 0x1000),
        ]
    );
}

#[test]
fn attribute_clips_overlaps_and_merges_neighbours() {
    // An owner running past the region is clipped; the overlap goes to the first claim;
    // two adjacent ranges of one owner become one.
    let owners = [
        o("x", 0x0, 0x2000),
        o("y", 0x1000, 0x2000),
        o("y", 0x3000, 0x1000),
    ];
    assert_eq!(
        cut(0x1000, 0x3800, &owners),
        [("x", 0x1000, 0x1000), ("y", 0x2000, 0x1800)]
    );
    assert_eq!(cut(0x10, 0x20, &[]), [("other", 0x10, 0x10)]);
}

#[test]
fn free_runs_merge_only_adjacent_equal_blocks() {
    let blocks = alloc::vec![
        (1024, 10, 1),
        (0, 10, 1),
        (2048, 10, 0),
        (3072, 9, 0),
        (4096, 0, 0)
    ];
    assert_eq!(
        free_runs(blocks),
        [
            FreeRun {
                pfn: 0,
                pages: 2048,
                order: 10,
                mt: 1
            },
            FreeRun {
                pfn: 2048,
                pages: 1024,
                order: 10,
                mt: 0
            },
            FreeRun {
                pfn: 3072,
                pages: 512,
                order: 9,
                mt: 0
            },
            FreeRun {
                pfn: 4096,
                pages: 1,
                order: 0,
                mt: 0
            },
        ]
    );
}
