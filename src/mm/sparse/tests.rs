//! Host unit tests of `src/mm/sparse.rs` (`cargo hosttest`).

use super::*;
use crate::mm::memblock::MemblockFlags;
use crate::mm::PhysAddr;

#[test]
fn sections_are_listed_once_with_their_node() {
    let mut mb = Memblock::new();
    // 128 MiB + 64 MiB on node 0, a hole, 256 MiB on node 1 starting mid-section.
    mb.add_node(PhysAddr(0x4000_0000), 0xc00_0000, 0, MemblockFlags::NONE)
        .unwrap();
    mb.add_node(PhysAddr(0x5400_0000), 0x1000_0000, 1, MemblockFlags::NONE)
        .unwrap();
    let mut v = Vec::new();
    let info = sparse_init(&spin::Mutex::new(mb), |s| v.push(s));
    let nrs: Vec<(u64, i32)> = v.iter().map(|s| (s.nr, s.nid)).collect();
    // 0x40000000 is section 8; 0x4c000000 ends in section 9, which node 1 (from
    // 0x54000000, section 10) does not share; node 1 spans sections 10..=12.
    assert_eq!(nrs, vec![(8, 0), (9, 0), (10, 1), (11, 1), (12, 1)]);
    assert_eq!(info.memmap_bytes, 5 * 2 * 1024 * 1024);
}

#[test]
fn a_section_shared_by_two_ranges_is_listed_once() {
    let mut mb = Memblock::new();
    mb.add_node(PhysAddr(0x4000_0000), 0x10_0000, 0, MemblockFlags::NONE)
        .unwrap();
    mb.add_node(PhysAddr(0x4100_0000), 0x10_0000, 0, MemblockFlags::NONE)
        .unwrap();
    let mut n = 0;
    sparse_init(&spin::Mutex::new(mb), |_| n += 1);
    assert_eq!(n, 1);
}
