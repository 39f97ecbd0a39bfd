//! Host unit tests of `src/mm/memblock.rs` (`cargo hosttest`), on the shared scaffold
//! `mm::testing` (simulated RAM and a machine builder).

use super::*;
use crate::kernel::printk::take_captured;
use crate::mm::testing::{__pa, __va, printed, Machine, SimRam};
use proptest::prelude::*;

const SZ_2: u64 = 2;
const SZ_16: u64 = 16;
const SZ_64: u64 = 64;
const SZ_128: u64 = 128;
const SZ_256: u64 = 256;
const SZ_1K: u64 = 1 << 10;
const SZ_2K: u64 = 2 << 10;
const SZ_4K: u64 = 4 << 10;
const SZ_8K: u64 = 8 << 10;
const SZ_16K: u64 = 16 << 10;
const SZ_32K: u64 = 32 << 10;
const SZ_64K: u64 = 64 << 10;
const SZ_128K: u64 = 128 << 10;
const SZ_256K: u64 = 256 << 10;
const SZ_512K: u64 = 512 << 10;
const SZ_1M: u64 = 1 << 20;
const SZ_2M: u64 = 2 << 20;
const SZ_4M: u64 = 4 << 20;
const SZ_8M: u64 = 8 << 20;
const SZ_16M: u64 = 16 << 20;
const SZ_32M: u64 = 32 << 20;
const SZ_64M: u64 = 64 << 20;
const SZ_128M: u64 = 128 << 20;
const SZ_256M: u64 = 256 << 20;
const SZ_512M: u64 = 512 << 20;
const SZ_1G: u64 = 1 << 30;
const SZ_2G: u64 = 2 << 30;

/// Where the simulated RAM starts, as on QEMU's virt machine.
const RAM: u64 = 0x4000_0000;

fn pa(x: u64) -> PhysAddr {
    PhysAddr(x)
}

/// A memblock with `size` bytes of simulated RAM at `base`, added as memory.
fn with_ram(base: u64, size: u64) -> (SimRam, Memblock) {
    let m = Machine::from_banks(&[(base, size, None)]).memblock();
    (m.ram, m.mb)
}

fn regs(t: &MemblockType) -> Vec<(u64, u64)> {
    t.regions().iter().map(|r| (r.base.0, r.size)).collect()
}

// ---- basic_api.c: initialization and memblock_add() ----

#[test]
fn initialization() {
    let mb = Memblock::new();
    assert_eq!(mb.memory().cnt(), 1);
    assert_eq!(mb.memory().max(), INIT_MEMBLOCK_REGIONS);
    assert_eq!(mb.memory().name(), "memory");
    assert_eq!(mb.reserved().cnt(), 1);
    assert_eq!(mb.reserved().max(), INIT_MEMBLOCK_RESERVED_REGIONS);
    assert_eq!(mb.reserved().name(), "reserved");
    assert!(!mb.bottom_up());
    assert_eq!(mb.current_limit(), MEMBLOCK_ALLOC_ANYWHERE);
    assert_eq!(mb.memory().regions()[0], MemblockRegion::ZERO);
    assert_eq!(core::mem::size_of::<MemblockRegion>(), 24);
}

#[test]
fn add_simple() {
    let mut mb = Memblock::new();
    mb.add(pa(SZ_1G), SZ_4M).unwrap();
    assert_eq!(regs(mb.memory()), [(SZ_1G, SZ_4M)]);
    assert_eq!(mb.memory().regions()[0].nid, MAX_NUMNODES);
    assert_eq!(mb.memory().total_size(), SZ_4M);
}

#[test]
fn add_node_simple() {
    let mut mb = Memblock::new();
    mb.add_node(pa(SZ_1M), SZ_16M, 1, MemblockFlags::HOTPLUG)
        .unwrap();
    let r = mb.memory().regions()[0];
    assert_eq!(
        (r.base.0, r.size, r.nid, r.flags),
        (SZ_1M, SZ_16M, 1, MemblockFlags::HOTPLUG)
    );
    assert_eq!(mb.memory().total_size(), SZ_16M);
}

#[test]
fn add_disjoint() {
    let mut mb = Memblock::new();
    mb.add(pa(SZ_1G), SZ_8K).unwrap();
    mb.add(pa(SZ_1G + SZ_16K), SZ_8K).unwrap();
    assert_eq!(regs(mb.memory()), [(SZ_1G, SZ_8K), (SZ_1G + SZ_16K, SZ_8K)]);
    assert_eq!(mb.memory().total_size(), 2 * SZ_8K);
}

#[test]
fn add_overlap_top() {
    let mut mb = Memblock::new();
    mb.add(pa(SZ_512M), SZ_1G).unwrap();
    mb.add(pa(SZ_256M), SZ_512M).unwrap();
    let total = (SZ_512M - SZ_256M) + SZ_1G;
    assert_eq!(regs(mb.memory()), [(SZ_256M, total)]);
    assert_eq!(mb.memory().total_size(), total);
}

#[test]
fn add_overlap_bottom() {
    let mut mb = Memblock::new();
    mb.add(pa(SZ_128M), SZ_512M).unwrap();
    mb.add(pa(SZ_256M), SZ_1G).unwrap();
    let total = (SZ_256M - SZ_128M) + SZ_1G;
    assert_eq!(regs(mb.memory()), [(SZ_128M, total)]);
    assert_eq!(mb.memory().total_size(), total);
}

#[test]
fn add_within() {
    let mut mb = Memblock::new();
    mb.add(pa(SZ_8M), SZ_32M).unwrap();
    mb.add(pa(SZ_16M), SZ_1M).unwrap();
    assert_eq!(regs(mb.memory()), [(SZ_8M, SZ_32M)]);
    assert_eq!(mb.memory().total_size(), SZ_32M);
}

#[test]
fn add_twice() {
    let mut mb = Memblock::new();
    mb.add(pa(SZ_16K), SZ_2M).unwrap();
    mb.add(pa(SZ_16K), SZ_2M).unwrap();
    assert_eq!(mb.memory().cnt(), 1);
    assert_eq!(mb.memory().total_size(), SZ_2M);
}

#[test]
fn add_between_merges_three() {
    let mut mb = Memblock::new();
    mb.add(pa(SZ_1G), SZ_8K).unwrap();
    mb.add(pa(SZ_1G + SZ_16K), SZ_8K).unwrap();
    mb.add(pa(SZ_1G + SZ_8K), SZ_8K).unwrap();
    assert_eq!(regs(mb.memory()), [(SZ_1G, 3 * SZ_8K)]);
    assert_eq!(mb.memory().total_size(), 3 * SZ_8K);
}

#[test]
fn add_covering_several_inserts_only_the_holes() {
    let mut mb = Memblock::new();
    mb.add_node(pa(SZ_1M), SZ_1M, 0, MemblockFlags::NONE)
        .unwrap();
    mb.add_node(pa(SZ_4M), SZ_1M, 0, MemblockFlags::NONE)
        .unwrap();
    mb.add_node(pa(0), SZ_8M, 0, MemblockFlags::NONE).unwrap();
    assert_eq!(regs(mb.memory()), [(0, SZ_8M)]);
    assert_eq!(mb.memory().total_size(), SZ_8M);
}

#[test]
fn add_near_max_is_capped() {
    let mut mb = Memblock::new();
    let base = PHYS_ADDR_MAX.0 - SZ_1M;
    mb.add(pa(base), SZ_2M).unwrap();
    assert_eq!(regs(mb.memory()), [(base, SZ_1M)]);
    assert_eq!(mb.memory().total_size(), SZ_1M);
    assert_eq!(mb.end_of_dram(), PHYS_ADDR_MAX);
}

#[test]
fn add_zero_size_is_a_no_op() {
    let mut mb = Memblock::new();
    mb.add(pa(SZ_1G), 0).unwrap();
    assert_eq!(mb.memory().cnt(), 1);
    assert_eq!(mb.memory().total_size(), 0);
    assert_eq!(mb.memory().regions()[0].size, 0);
}

#[test]
fn adjacent_regions_with_different_nid_or_flags_do_not_merge() {
    let mut mb = Memblock::new();
    mb.add_node(pa(SZ_1G), SZ_1M, 0, MemblockFlags::NONE)
        .unwrap();
    mb.add_node(pa(SZ_1G + SZ_1M), SZ_1M, 1, MemblockFlags::NONE)
        .unwrap();
    mb.add_node(pa(SZ_1G + SZ_2M), SZ_1M, 1, MemblockFlags::HOTPLUG)
        .unwrap();
    mb.add_node(pa(SZ_1G + 3 * SZ_1M), SZ_1M, 1, MemblockFlags::HOTPLUG)
        .unwrap();
    assert_eq!(
        regs(mb.memory()),
        [
            (SZ_1G, SZ_1M),
            (SZ_1G + SZ_1M, SZ_1M),
            (SZ_1G + SZ_2M, SZ_2M)
        ]
    );
    assert_eq!(mb.memory().total_size(), SZ_4M);
}

#[test]
fn overlapping_add_keeps_existing_attributes_and_warns() {
    let mut mb = Memblock::new();
    mb.add_node(pa(SZ_2M), SZ_1M, 0, MemblockFlags::NONE)
        .unwrap();
    take_captured();
    mb.add_node(pa(SZ_1M), SZ_4M, 1, MemblockFlags::NONE)
        .unwrap();
    let r = mb.memory().regions();
    assert_eq!(
        regs(mb.memory()),
        [(SZ_1M, SZ_1M), (SZ_2M, SZ_1M), (3 * SZ_1M, SZ_2M)]
    );
    assert_eq!((r[0].nid, r[1].nid, r[2].nid), (1, 0, 1));
    // Linux's WARN_ON(nid != ...) fires in both passes.
    assert_eq!(
        printed()
            .iter()
            .filter(|l| l.starts_with("WARNING:"))
            .count(),
        2
    );
}

// ---- basic_api.c: memblock_reserve() ----

#[test]
fn reserve_simple() {
    let mut mb = Memblock::new();
    mb.reserve(pa(SZ_2G), SZ_128M).unwrap();
    assert_eq!(regs(mb.reserved()), [(SZ_2G, SZ_128M)]);
    assert_eq!(mb.reserved_size(), SZ_128M);
}

#[test]
fn reserve_disjoint() {
    let mut mb = Memblock::new();
    mb.reserve(pa(SZ_256M), SZ_16M).unwrap();
    mb.reserve(pa(SZ_512M), SZ_512M).unwrap();
    assert_eq!(regs(mb.reserved()), [(SZ_256M, SZ_16M), (SZ_512M, SZ_512M)]);
    assert_eq!(mb.reserved_size(), SZ_16M + SZ_512M);
}

#[test]
fn reserve_overlap_top() {
    let mut mb = Memblock::new();
    mb.reserve(pa(SZ_1G), SZ_1G).unwrap();
    mb.reserve(pa(SZ_128M), SZ_1G).unwrap();
    let total = (SZ_1G - SZ_128M) + SZ_1G;
    assert_eq!(regs(mb.reserved()), [(SZ_128M, total)]);
    assert_eq!(mb.reserved_size(), total);
}

#[test]
fn reserve_overlap_bottom() {
    let mut mb = Memblock::new();
    mb.reserve(pa(SZ_2K), SZ_128K).unwrap();
    mb.reserve(pa(SZ_128K), SZ_128K).unwrap();
    let total = (SZ_128K - SZ_2K) + SZ_128K;
    assert_eq!(regs(mb.reserved()), [(SZ_2K, total)]);
    assert_eq!(mb.reserved_size(), total);
}

#[test]
fn reserve_within() {
    let mut mb = Memblock::new();
    mb.reserve(pa(SZ_1M), SZ_8M).unwrap();
    mb.reserve(pa(SZ_2M), SZ_64K).unwrap();
    assert_eq!(regs(mb.reserved()), [(SZ_1M, SZ_8M)]);
    assert_eq!(mb.reserved_size(), SZ_8M);
}

#[test]
fn reserve_twice() {
    let mut mb = Memblock::new();
    mb.reserve(pa(SZ_16K), SZ_2M).unwrap();
    mb.reserve(pa(SZ_16K), SZ_2M).unwrap();
    assert_eq!(mb.reserved().cnt(), 1);
    assert_eq!(mb.reserved_size(), SZ_2M);
}

#[test]
fn reserve_between() {
    let mut mb = Memblock::new();
    mb.reserve(pa(SZ_1G), SZ_8K).unwrap();
    mb.reserve(pa(SZ_1G + SZ_16K), SZ_8K).unwrap();
    mb.reserve(pa(SZ_1G + SZ_8K), SZ_8K).unwrap();
    assert_eq!(regs(mb.reserved()), [(SZ_1G, 3 * SZ_8K)]);
}

#[test]
fn reserve_near_max_is_capped() {
    let mut mb = Memblock::new();
    let base = PHYS_ADDR_MAX.0 - SZ_1M;
    mb.reserve(pa(base), SZ_2M).unwrap();
    assert_eq!(regs(mb.reserved()), [(base, SZ_1M)]);
    assert_eq!(mb.reserved_size(), SZ_1M);
}

// ---- basic_api.c: memblock_remove() ----

#[test]
fn remove_simple() {
    let mut mb = Memblock::new();
    mb.add(pa(SZ_2K), SZ_4K).unwrap();
    mb.add(pa(SZ_128K), SZ_4M).unwrap();
    mb.remove(pa(SZ_2K), SZ_4K).unwrap();
    assert_eq!(regs(mb.memory()), [(SZ_128K, SZ_4M)]);
    assert_eq!(mb.phys_mem_size(), SZ_4M);
}

#[test]
fn remove_absent() {
    let mut mb = Memblock::new();
    mb.add(pa(SZ_512K), SZ_4M).unwrap();
    mb.remove(pa(SZ_64M), SZ_1G).unwrap();
    assert_eq!(regs(mb.memory()), [(SZ_512K, SZ_4M)]);
    assert_eq!(mb.phys_mem_size(), SZ_4M);
}

#[test]
fn remove_overlap_top() {
    let mut mb = Memblock::new();
    mb.add(pa(SZ_32M), SZ_32M).unwrap();
    mb.remove(pa(SZ_16M), SZ_32M).unwrap();
    assert_eq!(regs(mb.memory()), [(SZ_32M + SZ_16M, SZ_16M)]);
    assert_eq!(mb.phys_mem_size(), SZ_16M);
}

#[test]
fn remove_overlap_bottom() {
    let mut mb = Memblock::new();
    mb.add(pa(SZ_2M), SZ_64M).unwrap();
    mb.remove(pa(SZ_32M), SZ_256M).unwrap();
    assert_eq!(regs(mb.memory()), [(SZ_2M, SZ_32M - SZ_2M)]);
    assert_eq!(mb.phys_mem_size(), SZ_32M - SZ_2M);
}

#[test]
fn remove_within_splits() {
    let mut mb = Memblock::new();
    mb.add(pa(SZ_1M), SZ_32M).unwrap();
    mb.remove(pa(SZ_16M), SZ_1M).unwrap();
    let (s1, s2) = (SZ_16M - SZ_1M, (SZ_1M + SZ_32M) - (SZ_16M + SZ_1M));
    assert_eq!(regs(mb.memory()), [(SZ_1M, s1), (SZ_16M + SZ_1M, s2)]);
    assert_eq!(mb.phys_mem_size(), s1 + s2);
}

#[test]
fn remove_only_region_leaves_the_dummy() {
    let mut mb = Memblock::new();
    mb.add(pa(SZ_2K), SZ_4K).unwrap();
    mb.remove(pa(SZ_2K), SZ_4K).unwrap();
    assert_eq!(mb.memory().cnt(), 1);
    assert_eq!(mb.phys_mem_size(), 0);
    let r = mb.memory().regions()[0];
    assert_eq!((r.base.0, r.size, r.nid), (0, 0, MAX_NUMNODES));
    // The dummy is overwritten by the next add.
    mb.add(pa(SZ_1M), SZ_1M).unwrap();
    assert_eq!(regs(mb.memory()), [(SZ_1M, SZ_1M)]);
}

#[test]
fn remove_near_max() {
    let mut mb = Memblock::new();
    mb.add(pa(PHYS_ADDR_MAX.0 - SZ_2M), SZ_2M).unwrap();
    mb.remove(pa(PHYS_ADDR_MAX.0 - SZ_1M), SZ_2M).unwrap();
    assert_eq!(regs(mb.memory()), [(PHYS_ADDR_MAX.0 - SZ_2M, SZ_1M)]);
    assert_eq!(mb.phys_mem_size(), SZ_1M);
}

#[test]
fn remove_overlapping_two_regions() {
    let mut mb = Memblock::new();
    mb.add(pa(SZ_16M), SZ_32M).unwrap();
    mb.add(pa(SZ_64M), SZ_64M).unwrap();
    mb.remove(pa(SZ_32M), SZ_64M).unwrap();
    assert_eq!(
        regs(mb.memory()),
        [(SZ_16M, SZ_16M), (SZ_32M + SZ_64M, SZ_32M)]
    );
    assert_eq!(mb.phys_mem_size(), SZ_16M + SZ_32M);
}

// ---- basic_api.c: memblock_phys_free() / memblock_free() ----

#[test]
fn phys_free_simple() {
    let mut mb = Memblock::new();
    mb.reserve(pa(SZ_4M), SZ_1M).unwrap();
    mb.reserve(pa(SZ_8M), SZ_1M).unwrap();
    mb.phys_free(pa(SZ_4M), SZ_1M).unwrap();
    assert_eq!(regs(mb.reserved()), [(SZ_8M, SZ_1M)]);
    assert_eq!(mb.reserved_size(), SZ_1M);
}

#[test]
fn phys_free_absent() {
    let mut mb = Memblock::new();
    mb.reserve(pa(SZ_2M), SZ_8K).unwrap();
    mb.phys_free(pa(SZ_16M), SZ_128M).unwrap();
    assert_eq!(regs(mb.reserved()), [(SZ_2M, SZ_8K)]);
}

#[test]
fn phys_free_overlap_top() {
    let mut mb = Memblock::new();
    mb.reserve(pa(SZ_8M), SZ_32M).unwrap();
    mb.phys_free(pa(SZ_1M), SZ_8M).unwrap();
    let total = (SZ_8M + SZ_32M) - (SZ_1M + SZ_8M);
    assert_eq!(regs(mb.reserved()), [(SZ_1M + SZ_8M, total)]);
    assert_eq!(mb.reserved_size(), total);
}

#[test]
fn phys_free_overlap_bottom() {
    let mut mb = Memblock::new();
    mb.reserve(pa(SZ_8M), SZ_32M).unwrap();
    mb.phys_free(pa(SZ_32M), SZ_32M).unwrap();
    assert_eq!(regs(mb.reserved()), [(SZ_8M, SZ_32M - SZ_8M)]);
}

#[test]
fn phys_free_within() {
    let mut mb = Memblock::new();
    mb.reserve(pa(SZ_1M), SZ_8M).unwrap();
    mb.phys_free(pa(SZ_4M), SZ_1M).unwrap();
    assert_eq!(
        regs(mb.reserved()),
        [(SZ_1M, SZ_4M - SZ_1M), (SZ_4M + SZ_1M, SZ_4M)]
    );
    assert_eq!(mb.reserved().cnt(), 2);
    assert_eq!(mb.reserved_size(), SZ_8M - SZ_1M);
}

#[test]
fn phys_free_only_region_and_near_max() {
    let mut mb = Memblock::new();
    mb.reserve(pa(SZ_2K), SZ_16K).unwrap();
    mb.phys_free(pa(SZ_2K), SZ_16K).unwrap();
    assert_eq!((mb.reserved().cnt(), mb.reserved_size()), (1, 0));

    mb.reserve(pa(PHYS_ADDR_MAX.0 - SZ_2M), SZ_2M).unwrap();
    mb.phys_free(pa(PHYS_ADDR_MAX.0 - SZ_1M), SZ_2M).unwrap();
    assert_eq!(regs(mb.reserved()), [(PHYS_ADDR_MAX.0 - SZ_2M, SZ_1M)]);
}

#[test]
fn free_by_virtual_address() {
    let (_arena, mut mb) = with_ram(RAM, SZ_1M);
    let p = mb.alloc(SZ_4K, SZ_4K).unwrap();
    assert_eq!(mb.reserved_size(), SZ_4K);
    mb.free(p.as_ptr(), SZ_4K);
    assert_eq!(mb.reserved_size(), 0);
    mb.free(ptr::null(), SZ_4K); // ignored, as in Linux
}

// ---- flags, nodes, queries ----

#[test]
fn nomap_and_hotplug_split_and_remerge() {
    let mut mb = Memblock::new();
    mb.add(pa(RAM), SZ_16M).unwrap();
    mb.mark_nomap(pa(RAM + SZ_4M), SZ_1M).unwrap();
    assert_eq!(
        regs(mb.memory()),
        [
            (RAM, SZ_4M),
            (RAM + SZ_4M, SZ_1M),
            (RAM + SZ_4M + SZ_1M, SZ_16M - SZ_4M - SZ_1M)
        ]
    );
    assert!(mb.memory().regions()[1].is_nomap());
    assert_eq!(mb.phys_mem_size(), SZ_16M);
    assert!(mb.is_memory(pa(RAM + SZ_4M)));
    assert!(!mb.is_map_memory(pa(RAM + SZ_4M)));
    assert!(mb.is_map_memory(pa(RAM + SZ_4M - 1)));
    mb.clear_nomap(pa(RAM + SZ_4M), SZ_1M).unwrap();
    assert_eq!(regs(mb.memory()), [(RAM, SZ_16M)]);

    mb.mark_hotplug(pa(RAM), SZ_8M).unwrap();
    assert_eq!(mb.memory().cnt(), 2);
    assert!(mb.memory().regions()[0].is_hotpluggable());
    mb.clear_hotplug(pa(0), PHYS_ADDR_MAX.0).unwrap();
    assert_eq!(regs(mb.memory()), [(RAM, SZ_16M)]);
}

#[test]
fn set_node_splits_and_merges() {
    let mut mb = Memblock::new();
    mb.add(pa(RAM), SZ_4M).unwrap();
    mb.set_node(pa(RAM + SZ_1M), SZ_1M, MemType::Memory, 1)
        .unwrap();
    let nids: Vec<i32> = mb.memory().regions().iter().map(|r| r.nid).collect();
    assert_eq!(nids, [MAX_NUMNODES, 1, MAX_NUMNODES]);
    mb.set_node(pa(0), PHYS_ADDR_MAX.0, MemType::Memory, 0)
        .unwrap();
    assert_eq!(regs(mb.memory()), [(RAM, SZ_4M)]);
    assert_eq!(mb.memory().regions()[0].nid, 0);
}

#[test]
fn queries() {
    let mut mb = Memblock::new();
    mb.add(pa(RAM), SZ_16M).unwrap();
    mb.add(pa(RAM + SZ_32M), SZ_16M).unwrap();
    mb.reserve(pa(RAM + SZ_1M), SZ_1M).unwrap();
    assert_eq!(mb.start_of_dram(), pa(RAM));
    assert_eq!(mb.end_of_dram(), pa(RAM + SZ_32M + SZ_16M));
    assert_eq!(mb.phys_mem_size(), SZ_32M);
    assert!(mb.is_memory(pa(RAM)));
    assert!(!mb.is_memory(pa(RAM + SZ_16M)));
    assert!(mb.is_region_memory(pa(RAM + SZ_1M), SZ_8M));
    assert!(!mb.is_region_memory(pa(RAM + SZ_8M), SZ_16M));
    assert!(mb.is_region_reserved(pa(RAM), SZ_1M + 1));
    assert!(!mb.is_region_reserved(pa(RAM), SZ_1M));
    assert!(mb.is_reserved(pa(RAM + SZ_2M - 1)));
    assert!(!mb.is_reserved(pa(RAM + SZ_2M)));
    assert!(mb.overlaps_region(MemType::Memory, pa(RAM + SZ_16M - 1), SZ_1M));
    assert!(!mb.overlaps_region(MemType::Memory, pa(RAM + SZ_16M), SZ_16M));
    // Empty lists answer with their dummy entry, as Linux's do.
    let empty = Memblock::new();
    assert_eq!((empty.start_of_dram(), empty.end_of_dram()), (pa(0), pa(0)));
    assert!(!empty.is_memory(pa(0)));
}

// ---- iterators ----

#[test]
fn free_range_iterators_exclude_reserved_and_nomap() {
    let mut mb = Memblock::new();
    mb.add(pa(RAM), SZ_16M).unwrap();
    mb.add_node(pa(RAM + SZ_32M), SZ_16M, 1, MemblockFlags::NONE)
        .unwrap();
    mb.reserve(pa(RAM + SZ_1M), SZ_1M).unwrap();
    mb.reserve(pa(RAM + SZ_16M - SZ_1M), SZ_32M).unwrap();
    mb.mark_nomap(pa(RAM + SZ_4M), SZ_4M).unwrap();
    let fwd: Vec<_> = mb
        .free_mem_ranges(NUMA_NO_NODE, MemblockFlags::NONE)
        .map(|(s, e, n)| (s.0, e.0, n))
        .collect();
    assert_eq!(
        fwd,
        [
            (RAM, RAM + SZ_1M, MAX_NUMNODES),
            (RAM + SZ_2M, RAM + SZ_4M, MAX_NUMNODES),
            (RAM + SZ_8M, RAM + SZ_16M - SZ_1M, MAX_NUMNODES),
            (RAM + SZ_32M + SZ_16M - SZ_1M, RAM + SZ_32M + SZ_16M, 1),
        ]
    );
    let mut rev: Vec<_> = mb
        .free_mem_ranges_rev(NUMA_NO_NODE, MemblockFlags::NONE)
        .map(|(s, e, n)| (s.0, e.0, n))
        .collect();
    rev.reverse();
    assert_eq!(rev, fwd);
    // Asking for NOMAP includes it.
    assert_eq!(
        mb.free_mem_ranges(NUMA_NO_NODE, MemblockFlags::NOMAP)
            .count(),
        5
    );
    let merged: Vec<_> = mb
        .free_mem_ranges(NUMA_NO_NODE, MemblockFlags::NOMAP)
        .map(|(s, e, _)| (s.0, e.0))
        .collect();
    assert_eq!(merged[1], (RAM + SZ_2M, RAM + SZ_4M));
    assert_eq!(merged[2], (RAM + SZ_4M, RAM + SZ_8M));
    // The node filter.
    let node1: Vec<_> = mb
        .free_mem_ranges(1, MemblockFlags::NONE)
        .map(|(s, e, _)| (s.0, e.0))
        .collect();
    assert_eq!(
        node1,
        [(RAM + SZ_32M + SZ_16M - SZ_1M, RAM + SZ_32M + SZ_16M)]
    );
    // for_each_mem_range skips NOMAP, for_each_reserved_mem_range lists reservations.
    let mem: Vec<_> = mb.mem_ranges().map(|(s, e, _)| (s.0, e.0)).collect();
    assert_eq!(
        mem,
        [
            (RAM, RAM + SZ_4M),
            (RAM + SZ_8M, RAM + SZ_16M),
            (RAM + SZ_32M, RAM + SZ_32M + SZ_16M)
        ]
    );
    let mut mem_rev: Vec<_> = mb.mem_ranges_rev().map(|(s, e, _)| (s.0, e.0)).collect();
    mem_rev.reverse();
    assert_eq!(mem_rev, mem);
    assert_eq!(mb.reserved_mem_ranges().count(), 2);
}

#[test]
fn pfn_ranges_skip_partial_pages_and_filter_nodes() {
    let mut mb = Memblock::new();
    mb.add_node(pa(RAM + 0x800), SZ_8K, 0, MemblockFlags::NONE)
        .unwrap();
    mb.add_node(pa(RAM + SZ_1M), 0x800, 0, MemblockFlags::NONE)
        .unwrap();
    mb.add_node(pa(RAM + SZ_2M), SZ_8K, 1, MemblockFlags::NONE)
        .unwrap();
    let all: Vec<_> = mb
        .mem_pfn_ranges(MAX_NUMNODES)
        .map(|(s, e, n)| (s.0, e.0, n))
        .collect();
    let p = RAM >> 12;
    assert_eq!(all, [(p + 1, p + 2, 0), (p + 512, p + 514, 1)]);
    assert_eq!(mb.mem_pfn_ranges(1).count(), 1);
}

// ---- alloc_api.c / alloc_helpers_api.c / alloc_nid_api.c ----

#[test]
fn alloc_top_down_simple() {
    let (_a, mut mb) = with_ram(RAM, SZ_16K);
    let p = mb.phys_alloc(SZ_2, SMP_CACHE_BYTES).unwrap();
    assert_eq!(p, pa(RAM + SZ_16K - SMP_CACHE_BYTES));
    assert_eq!(
        regs(mb.reserved()),
        [(RAM + SZ_16K - SMP_CACHE_BYTES, SZ_2)]
    );
    assert_eq!(mb.reserved_size(), SZ_2);
}

#[test]
fn alloc_bottom_up_simple() {
    let (_a, mut mb) = with_ram(RAM, SZ_16K);
    mb.set_bottom_up(true);
    let p = mb.phys_alloc(SZ_2, SMP_CACHE_BYTES).unwrap();
    assert_eq!(p, pa(RAM));
    assert_eq!(regs(mb.reserved()), [(RAM, SZ_2)]);
}

#[test]
fn alloc_next_to_reservations_merges() {
    // Top-down: below a reservation at the top.
    let (_a, mut mb) = with_ram(RAM, SZ_64K);
    mb.reserve(pa(RAM + SZ_64K - SZ_8K), SZ_8K).unwrap();
    let p = mb.phys_alloc(SZ_4K, SZ_4K).unwrap();
    assert_eq!(p, pa(RAM + SZ_64K - SZ_8K - SZ_4K));
    assert_eq!(
        regs(mb.reserved()),
        [(RAM + SZ_64K - SZ_8K - SZ_4K, SZ_8K + SZ_4K)]
    );
    drop((_a, mb));
    // Bottom-up: above a reservation at the bottom.
    let (_a, mut mb) = with_ram(RAM, SZ_64K);
    mb.set_bottom_up(true);
    mb.reserve(pa(RAM), SZ_8K).unwrap();
    let p = mb.phys_alloc(SZ_4K, SZ_4K).unwrap();
    assert_eq!(p, pa(RAM + SZ_8K));
    assert_eq!(regs(mb.reserved()), [(RAM, SZ_8K + SZ_4K)]);
}

#[test]
fn alloc_in_gap_exact_fit_and_too_small() {
    for bottom_up in [false, true] {
        let (_a, mut mb) = with_ram(RAM, SZ_64K);
        mb.set_bottom_up(bottom_up);
        // Two reservations leave exactly an 8K hole in the middle.
        mb.reserve(pa(RAM), SZ_16K + SZ_8K).unwrap();
        mb.reserve(pa(RAM + SZ_32K), SZ_32K).unwrap();
        assert_eq!(mb.phys_alloc(SZ_8K + 1, SZ_16), None);
        let p = mb.phys_alloc(SZ_8K, SZ_4K).unwrap();
        assert_eq!(p, pa(RAM + SZ_16K + SZ_8K));
        assert_eq!(regs(mb.reserved()), [(RAM, SZ_64K)]);
        assert_eq!(mb.phys_alloc(1, 1), None);
    }
}

#[test]
fn alloc_with_gaps_takes_the_first_fit_in_search_order() {
    let (_a, mut mb) = with_ram(RAM, SZ_128K);
    mb.reserve(pa(RAM + SZ_16K), SZ_16K).unwrap();
    mb.reserve(pa(RAM + SZ_64K), SZ_16K).unwrap();
    mb.reserve(pa(RAM + SZ_128K - SZ_4K), SZ_4K).unwrap();
    // Top-down: highest hole that fits 16K is [80K, 124K).
    assert_eq!(
        mb.phys_alloc(SZ_16K, SZ_4K),
        Some(pa(RAM + SZ_128K - SZ_4K - SZ_16K))
    );
    mb.set_bottom_up(true);
    // Bottom-up: [0, 16K) fits 16K exactly.
    assert_eq!(mb.phys_alloc(SZ_16K, SZ_4K), Some(pa(RAM)));
    // Next lowest fit of 32K: [32K, 64K).
    assert_eq!(mb.phys_alloc(SZ_32K, SZ_4K), Some(pa(RAM + SZ_32K)));
}

#[test]
fn alloc_no_memory_no_space_too_large() {
    let mut mb = Memblock::new();
    assert_eq!(mb.phys_alloc(SZ_1K, SMP_CACHE_BYTES), None);
    assert!(mb.alloc(SZ_1K, SMP_CACHE_BYTES).is_none());
    assert_eq!(mb.reserved_size(), 0);

    let (_a, mut mb) = with_ram(RAM, SZ_16K);
    assert_eq!(mb.phys_alloc(SZ_16K + 1, SMP_CACHE_BYTES), None);
    mb.reserve(pa(RAM), SZ_16K).unwrap();
    assert_eq!(mb.phys_alloc(SZ_1K, SMP_CACHE_BYTES), None);
    assert_eq!(regs(mb.reserved()), [(RAM, SZ_16K)]);
}

#[test]
fn alloc_respects_current_limit_and_max_addr() {
    let (_a, mut mb) = with_ram(RAM, SZ_1M);
    mb.set_current_limit(pa(RAM + SZ_256K));
    assert_eq!(mb.current_limit(), pa(RAM + SZ_256K));
    assert_eq!(mb.phys_alloc(SZ_4K, SZ_4K), Some(pa(RAM + SZ_256K - SZ_4K)));
    // try_nid's max_addr above the limit is capped by it...
    let p = mb
        .alloc_try_nid(SZ_4K, SZ_4K, pa(0), MEMBLOCK_ALLOC_ANYWHERE, NUMA_NO_NODE)
        .unwrap();
    assert_eq!(__pa(p.as_ptr()), pa(RAM + SZ_256K - SZ_8K));
    // ...and one below it applies.
    let p = mb
        .alloc_try_nid(SZ_4K, SZ_4K, pa(0), pa(RAM + SZ_64K), NUMA_NO_NODE)
        .unwrap();
    assert_eq!(__pa(p.as_ptr()), pa(RAM + SZ_64K - SZ_4K));
    // phys_alloc_range's end is not capped by the limit.
    assert_eq!(
        mb.phys_alloc_range(SZ_4K, SZ_4K, pa(0), MEMBLOCK_ALLOC_ANYWHERE),
        Some(pa(RAM + SZ_1M - SZ_4K))
    );
    mb.set_current_limit(MEMBLOCK_ALLOC_ANYWHERE);
    assert_eq!(mb.phys_alloc(SZ_4K, SZ_4K), Some(pa(RAM + SZ_1M - SZ_8K)));
}

#[test]
fn alloc_range_min_and_max() {
    for bottom_up in [false, true] {
        let (_a, mut mb) = with_ram(RAM, SZ_1M);
        mb.set_bottom_up(bottom_up);
        let (lo, hi) = (RAM + SZ_256K, RAM + SZ_512K);
        let p = mb.phys_alloc_range(SZ_64K, SZ_4K, pa(lo), pa(hi)).unwrap();
        assert_eq!(p, pa(if bottom_up { lo } else { hi - SZ_64K }));
        // A range too small for the request fails, it does not spill over.
        assert_eq!(
            mb.phys_alloc_range(SZ_64K, SZ_4K, pa(lo), pa(lo + SZ_32K)),
            None
        );
    }
}

#[test]
fn alloc_min_addr_is_only_a_preference() {
    let (_a, mut mb) = with_ram(RAM, SZ_256K);
    mb.reserve(pa(RAM + SZ_128K), SZ_128K).unwrap();
    // Nothing free at or above min_addr: memblock_alloc_internal() retries from 0.
    let p = mb.alloc_from(SZ_4K, SZ_4K, pa(RAM + SZ_128K)).unwrap();
    assert_eq!(__pa(p.as_ptr()), pa(RAM + SZ_128K - SZ_4K));
    // phys_alloc_range has no such retry.
    assert_eq!(
        mb.phys_alloc_range(SZ_4K, SZ_4K, pa(RAM + SZ_128K), pa(RAM + SZ_256K)),
        None
    );
}

#[test]
fn alloc_alignment() {
    let (_a, mut mb) = with_ram(RAM, SZ_1M);
    mb.reserve(pa(RAM + SZ_1M - 0x1234), 0x1234).unwrap();
    let p = mb.phys_alloc(SZ_16, SZ_64K).unwrap();
    assert!(p.is_aligned(SZ_64K));
    assert_eq!(p, pa(RAM + SZ_1M - SZ_64K));
    mb.set_bottom_up(true);
    mb.reserve(pa(RAM), 0x10).unwrap();
    let p = mb.phys_alloc(SZ_16, SZ_4K).unwrap();
    assert_eq!(p, pa(RAM + SZ_4K));
    // align 0 means SMP_CACHE_BYTES.
    let p = mb.phys_alloc(SZ_16, 0).unwrap();
    assert_eq!(p, pa(RAM + SZ_64));
}

#[test]
fn alloc_never_returns_the_first_page() {
    let (_a, mut mb) = with_ram(0, SZ_16K);
    mb.set_bottom_up(true);
    assert_eq!(mb.phys_alloc(SZ_128, SZ_16), Some(pa(PAGE_SIZE)));
    mb.set_bottom_up(false);
    assert_eq!(mb.phys_alloc_range(SZ_16K, SZ_16, pa(0), pa(SZ_16K)), None);
}

#[test]
fn alloc_skips_nomap_memory() {
    let (_a, mut mb) = with_ram(RAM, SZ_64K);
    mb.mark_nomap(pa(RAM + SZ_32K), SZ_32K).unwrap();
    assert_eq!(mb.phys_alloc(SZ_4K, SZ_4K), Some(pa(RAM + SZ_32K - SZ_4K)));
    assert_eq!(mb.phys_alloc(SZ_32K, SZ_4K), None);
}

#[test]
fn alloc_zeroes_but_raw_does_not() {
    let (arena, mut mb) = with_ram(RAM, SZ_64K);
    let p = mb.alloc(SZ_256, SZ_16).unwrap();
    let at = __pa(p.as_ptr());
    assert_eq!(at, pa(RAM + SZ_64K - SZ_256));
    assert!(arena.bytes(at, SZ_256).iter().all(|&b| b == 0));
    // The byte after the block was not touched.
    assert!(arena.bytes(at - 1, 1) == [0xaa]);

    let p = mb.alloc_raw(SZ_256, SZ_16).unwrap();
    assert!(arena
        .bytes(__pa(p.as_ptr()), SZ_256)
        .iter()
        .all(|&b| b == 0xaa));
    let p = mb
        .alloc_try_nid_raw(
            SZ_128,
            SZ_16,
            pa(0),
            MEMBLOCK_ALLOC_ACCESSIBLE,
            NUMA_NO_NODE,
        )
        .unwrap();
    assert!(arena
        .bytes(__pa(p.as_ptr()), SZ_128)
        .iter()
        .all(|&b| b == 0xaa));
    let p = mb.alloc_node(SZ_128, SZ_16, NUMA_NO_NODE).unwrap();
    assert!(arena
        .bytes(__pa(p.as_ptr()), SZ_128)
        .iter()
        .all(|&b| b == 0));
    assert_eq!(mb.reserved_size(), 2 * SZ_256 + 2 * SZ_128);
}

#[test]
fn alloc_try_nid_falls_back_to_any_node() {
    let mut arena = SimRam::new();
    arena.back(RAM, SZ_128K);
    let mut mb = Memblock::new();
    // SAFETY: the arena maps the whole RAM used below.
    unsafe { mb.set_phys_to_virt(__va) };
    mb.add_node(pa(RAM), SZ_64K, 0, MemblockFlags::NONE)
        .unwrap();
    mb.add_node(pa(RAM + SZ_64K), SZ_64K, 1, MemblockFlags::NONE)
        .unwrap();
    // Node 0 is preferred even though node 1 is higher.
    let p = mb.phys_alloc_try_nid(SZ_4K, SZ_4K, 0).unwrap();
    assert_eq!(p, pa(RAM + SZ_64K - SZ_4K));
    // Fill node 1; requests for it then land on node 0.
    mb.reserve(pa(RAM + SZ_64K), SZ_64K).unwrap();
    let p = mb.alloc_node(SZ_4K, SZ_4K, 1).unwrap();
    assert_eq!(__pa(p.as_ptr()), pa(RAM + SZ_64K - SZ_8K));
    // ...but not for the exact-node variant.
    assert!(mb
        .alloc_exact_nid_raw(SZ_4K, SZ_4K, pa(0), MEMBLOCK_ALLOC_ACCESSIBLE, 1)
        .is_none());
    let p = mb
        .alloc_exact_nid_raw(SZ_4K, SZ_4K, pa(0), MEMBLOCK_ALLOC_ACCESSIBLE, 0)
        .unwrap();
    assert_eq!(__pa(p.as_ptr()), pa(RAM + SZ_64K - 3 * SZ_4K));
    // A nonexistent node falls back too.
    assert!(mb.phys_alloc_try_nid(SZ_4K, SZ_4K, 7).is_some());
    drop(arena);
}

#[test]
fn find_in_range_node_does_not_reserve() {
    let (_a, mb) = with_ram(RAM, SZ_64K);
    let found = mb.find_in_range_node(
        SZ_4K,
        SZ_4K,
        pa(0),
        MEMBLOCK_ALLOC_ACCESSIBLE,
        NUMA_NO_NODE,
        MemblockFlags::NONE,
    );
    assert_eq!(found, Some(pa(RAM + SZ_64K - SZ_4K)));
    assert_eq!(mb.reserved_size(), 0);
}

// ---- array doubling ----

/// Adds (or reserves) `n` disjoint 64-byte ranges starting at `base`, 128 bytes apart.
fn fill(mb: &mut Memblock, t: MemType, base: u64, n: usize) -> Result<(), MemblockError> {
    for i in 0..n as u64 {
        let b = pa(base + i * SZ_128);
        match t {
            MemType::Memory => mb.add(b, SZ_64)?,
            MemType::Reserved => mb.reserve(b, SZ_64)?,
        }
    }
    Ok(())
}

#[test]
fn doubling_is_refused_before_allow_resize() {
    let (_a, mut mb) = with_ram(RAM, SZ_1M);
    fill(&mut mb, MemType::Reserved, RAM, INIT_MEMBLOCK_REGIONS).unwrap();
    let before = regs(mb.reserved());
    take_captured();
    assert_eq!(
        mb.reserve(pa(RAM + SZ_512K), SZ_4K),
        Err(MemblockError::NoMem)
    );
    assert_eq!(regs(mb.reserved()), before);
    assert_eq!(
        (mb.reserved().cnt(), mb.reserved().max()),
        (INIT_MEMBLOCK_REGIONS, INIT_MEMBLOCK_REGIONS)
    );
    // Splitting a region needs room too.
    assert_eq!(mb.phys_free(pa(RAM + 16), 16), Err(MemblockError::NoMem));
    assert_eq!(regs(mb.reserved()), before);
    // An allocation that would need a new region fails cleanly.
    assert_eq!(mb.phys_alloc(SZ_4K, SZ_4K), None);
    assert_eq!(regs(mb.reserved()), before);
    assert_eq!(printed(), Vec::<String>::new());
}

#[test]
fn doubling_reserved_array() {
    let (arena, mut mb) = with_ram(RAM, SZ_1M);
    mb.allow_resize();
    mb.set_debug(true);
    fill(&mut mb, MemType::Reserved, RAM, INIT_MEMBLOCK_REGIONS).unwrap();
    let before = regs(mb.reserved());
    take_captured();
    mb.reserve(pa(RAM + SZ_512K), SZ_4K).unwrap();

    // The new array is two pages at the top of memory, and reserved itself.
    let new_alloc = align_up(2 * INIT_MEMBLOCK_REGIONS as u64 * 24, PAGE_SIZE);
    assert_eq!(new_alloc, SZ_8K);
    let array_at = RAM + SZ_1M - new_alloc;
    assert_eq!(mb.reserved().max(), 2 * INIT_MEMBLOCK_REGIONS);
    assert_eq!(mb.reserved().cnt(), INIT_MEMBLOCK_REGIONS + 2);
    let ext = mb.reserved().ext.unwrap();
    assert_eq!(ext.phys, pa(array_at));
    assert_eq!(ext.ptr.as_ptr().cast::<u8>(), __va(pa(array_at)));
    let now = regs(mb.reserved());
    assert_eq!(now[..INIT_MEMBLOCK_REGIONS], before[..]);
    assert_eq!(
        now[INIT_MEMBLOCK_REGIONS..],
        [(RAM + SZ_512K, SZ_4K), (array_at, new_alloc)]
    );
    assert_eq!(
        mb.reserved_size(),
        INIT_MEMBLOCK_REGIONS as u64 * SZ_64 + SZ_4K + new_alloc
    );
    // The regions really live in the arena now.
    let first = u64::from_le_bytes(arena.bytes(pa(array_at), 8).try_into().unwrap());
    assert_eq!(first, RAM);

    let out = printed();
    assert_eq!(
        out[1],
        format!(
            "memblock: reserved is doubled to 256 at [{:#018x}-{:#018x}]",
            array_at,
            array_at + 256 * 24 - 1
        )
    );
    assert!(out[2].starts_with(&format!(
        "memblock_reserve: [{:#018x}-{:#018x}] src/mm/memblock.rs:",
        array_at,
        array_at + SZ_8K - 1
    )));

    // Everything still works on the moved array, including a second doubling, which
    // gives the first moved array back.
    fill(
        &mut mb,
        MemType::Reserved,
        RAM + SZ_256K,
        INIT_MEMBLOCK_REGIONS,
    )
    .unwrap();
    assert_eq!(mb.reserved().max(), 4 * INIT_MEMBLOCK_REGIONS);
    let ext2 = mb.reserved().ext.unwrap();
    // 512 entries take exactly three pages; they go below the first moved array, which
    // is then freed.
    let alloc2 = align_up(4 * INIT_MEMBLOCK_REGIONS as u64 * 24, PAGE_SIZE);
    assert_eq!(alloc2, 3 * SZ_4K);
    assert_eq!(ext2.phys, pa(array_at - alloc2));
    assert!(!mb.is_region_reserved(pa(array_at), new_alloc));
    assert!(mb.is_region_reserved(ext2.phys, alloc2));
    assert_eq!(mb.reserved().cnt(), 2 * INIT_MEMBLOCK_REGIONS + 2);
    assert_eq!(
        mb.reserved_size(),
        2 * INIT_MEMBLOCK_REGIONS as u64 * SZ_64 + SZ_4K + alloc2
    );
}

#[test]
fn doubling_memory_array() {
    let mut arena = SimRam::new();
    arena.back(RAM, SZ_1M);
    let mut mb = Memblock::new();
    // SAFETY: the arena maps the simulated RAM.
    unsafe { mb.set_phys_to_virt(__va) };
    mb.allow_resize();
    // 128 small memory regions at the bottom, then a big one the array can go into.
    fill(&mut mb, MemType::Memory, RAM, INIT_MEMBLOCK_REGIONS - 1).unwrap();
    mb.add(pa(RAM + SZ_512K), SZ_512K).unwrap();
    let before = regs(mb.memory());
    assert_eq!(mb.memory().cnt(), INIT_MEMBLOCK_REGIONS);
    mb.add(pa(RAM + SZ_256K), SZ_4K).unwrap();

    assert_eq!(mb.memory().max(), 2 * INIT_MEMBLOCK_REGIONS);
    assert_eq!(mb.memory().cnt(), INIT_MEMBLOCK_REGIONS + 1);
    let now = regs(mb.memory());
    assert_eq!(
        now[..INIT_MEMBLOCK_REGIONS - 1],
        before[..INIT_MEMBLOCK_REGIONS - 1]
    );
    assert_eq!(now[INIT_MEMBLOCK_REGIONS - 1], (RAM + SZ_256K, SZ_4K));
    assert_eq!(now[INIT_MEMBLOCK_REGIONS], (RAM + SZ_512K, SZ_512K));
    assert_eq!(
        mb.phys_mem_size(),
        (INIT_MEMBLOCK_REGIONS as u64 - 1) * SZ_64 + SZ_4K + SZ_512K
    );
    // The array was allocated from memblock: reserved at the top of memory.
    let ext = mb.memory().ext.unwrap();
    assert_eq!(ext.phys, pa(RAM + SZ_1M - SZ_8K));
    assert_eq!(regs(mb.reserved()), [(RAM + SZ_1M - SZ_8K, SZ_8K)]);
    drop(arena);
}

#[test]
fn doubling_fails_without_free_memory() {
    let (_a, mut mb) = with_ram(RAM, SZ_1M);
    mb.allow_resize();
    fill(&mut mb, MemType::Reserved, RAM, INIT_MEMBLOCK_REGIONS - 1).unwrap();
    // Only 64-byte holes and one of 192 bytes remain.
    mb.reserve(pa(RAM + SZ_16K), SZ_1M - SZ_16K).unwrap();
    let before = regs(mb.reserved());
    take_captured();
    assert_eq!(mb.reserve(pa(RAM + 64), 16), Err(MemblockError::NoMem));
    assert_eq!(
        printed(),
        ["memblock: Failed to double reserved array from 128 to 256 entries !"]
    );
    assert_eq!(regs(mb.reserved()), before);
    assert_eq!(mb.reserved().max(), INIT_MEMBLOCK_REGIONS);
}

#[test]
fn new_reserved_array_avoids_the_range_being_reserved() {
    let (_a, mut mb) = with_ram(RAM, SZ_1M);
    mb.allow_resize();
    fill(&mut mb, MemType::Reserved, RAM, INIT_MEMBLOCK_REGIONS).unwrap();
    // Reserving the top of memory: the array must go below it.
    mb.reserve(pa(RAM + SZ_1M - SZ_64K), SZ_64K).unwrap();
    let ext = mb.reserved().ext.unwrap();
    assert_eq!(ext.phys, pa(RAM + SZ_1M - SZ_64K - SZ_8K));
    assert_eq!(
        *regs(mb.reserved()).last().unwrap(),
        (RAM + SZ_1M - SZ_64K - SZ_8K, SZ_64K + SZ_8K)
    );
}

// ---- limits: mem=, cap, enforce, trim ----

#[test]
fn mem_limit_remove_map_keeps_nomap() {
    let mut mb = Memblock::new();
    mb.add(pa(RAM), SZ_16M).unwrap();
    mb.add(pa(RAM + SZ_32M), SZ_16M).unwrap();
    mb.add(pa(RAM + SZ_64M), SZ_16M).unwrap();
    mb.mark_nomap(pa(RAM + SZ_64M), SZ_1M).unwrap();
    mb.reserve(pa(RAM + SZ_1M), SZ_1M).unwrap();
    mb.reserve(pa(RAM + SZ_32M + SZ_8M), SZ_1M).unwrap();
    // mem=24M: all of the first bank and 8M of the second.
    mb.mem_limit_remove_map(SZ_16M + SZ_8M);
    assert_eq!(
        regs(mb.memory()),
        [(RAM, SZ_16M), (RAM + SZ_32M, SZ_8M), (RAM + SZ_64M, SZ_1M)]
    );
    assert_eq!(regs(mb.reserved()), [(RAM + SZ_1M, SZ_1M)]);
    assert_eq!(mb.phys_mem_size(), SZ_16M + SZ_8M + SZ_1M);
    // A limit above the total changes nothing; 0 means none.
    mb.mem_limit_remove_map(SZ_1G);
    mb.mem_limit_remove_map(0);
    assert_eq!(mb.memory().cnt(), 3);
}

#[test]
fn cap_memory_range() {
    let mut mb = Memblock::new();
    mb.add(pa(RAM), SZ_64M).unwrap();
    mb.mark_nomap(pa(RAM), SZ_1M).unwrap();
    mb.reserve(pa(RAM + SZ_2M), SZ_4M).unwrap();
    mb.reserve(pa(RAM + SZ_32M), SZ_1M).unwrap();
    mb.cap_memory_range(pa(RAM + SZ_4M), SZ_16M);
    assert_eq!(regs(mb.memory()), [(RAM, SZ_1M), (RAM + SZ_4M, SZ_16M)]);
    assert_eq!(regs(mb.reserved()), [(RAM + SZ_4M, SZ_2M)]);

    let mut empty = Memblock::new();
    take_captured();
    empty.cap_memory_range(pa(RAM), SZ_1M);
    assert_eq!(
        printed(),
        ["memblock_cap_memory_range: No memory registered yet"]
    );
}

#[test]
fn enforce_memory_limit() {
    let mut mb = Memblock::new();
    mb.add(pa(RAM), SZ_16M).unwrap();
    mb.add(pa(RAM + SZ_32M), SZ_16M).unwrap();
    mb.reserve(pa(RAM + SZ_32M), SZ_16M).unwrap();
    mb.enforce_memory_limit(SZ_16M + SZ_4M);
    assert_eq!(regs(mb.memory()), [(RAM, SZ_16M), (RAM + SZ_32M, SZ_4M)]);
    assert_eq!(regs(mb.reserved()), [(RAM + SZ_32M, SZ_4M)]);
}

#[test]
fn trim_memory() {
    let mut mb = Memblock::new();
    mb.add(pa(RAM + 0x100), SZ_16K).unwrap();
    mb.add(pa(RAM + SZ_64K + 0x10), 0x100).unwrap();
    mb.add(pa(RAM + SZ_128K), SZ_8K).unwrap();
    let total = mb.phys_mem_size();
    mb.trim_memory(PAGE_SIZE);
    assert_eq!(
        regs(mb.memory()),
        [(RAM + SZ_4K, SZ_8K + SZ_4K), (RAM + SZ_128K, SZ_8K)]
    );
    // Linux 6.1 only accounts for the removed region.
    assert_eq!(mb.phys_mem_size(), total - 0x100);
}

// ---- dump and memblock=debug ----

#[test]
fn dump_all_text() {
    let mut mb = Memblock::new();
    mb.add(pa(RAM), SZ_1G).unwrap();
    mb.add_node(pa(RAM + SZ_2G), SZ_16M, 0, MemblockFlags::NONE)
        .unwrap();
    mb.mark_nomap(pa(RAM + SZ_2G), SZ_1M).unwrap();
    mb.reserve(pa(RAM + SZ_2M), 0x1234).unwrap();
    take_captured();
    mb.dump_all();
    assert_eq!(
        printed(),
        Vec::<String>::new(),
        "quiet without memblock=debug"
    );
    mb.dump_all_always();
    assert_eq!(
        printed(),
        [
            "MEMBLOCK configuration:",
            " memory size = 0x0000000041000000 reserved size = 0x0000000000001234",
            " memory.cnt  = 0x3",
            " memory[0x0]\t[0x0000000040000000-0x000000007fffffff], 0x0000000040000000 bytes flags: 0x0",
            " memory[0x1]\t[0x00000000c0000000-0x00000000c00fffff], 0x0000000000100000 bytes on node 0 flags: 0x4",
            " memory[0x2]\t[0x00000000c0100000-0x00000000c0ffffff], 0x0000000000f00000 bytes on node 0 flags: 0x0",
            " reserved.cnt  = 0x1",
            " reserved[0x0]\t[0x0000000040200000-0x0000000040201233], 0x0000000000001234 bytes flags: 0x0",
        ]
    );
    // An empty list shows its dummy entry, exactly as Linux prints it.
    let empty = Memblock::new();
    empty.dump_all_always();
    let out = printed();
    assert_eq!(out[3], " memory[0x0]\t[0x0000000000000000-0xffffffffffffffff], 0x0000000000000000 bytes on node 0 flags: 0x0");
}

#[test]
fn debug_traces() {
    let (_a, mut mb) = with_ram(RAM, SZ_1M);
    take_captured();
    mb.reserve(pa(RAM), SZ_4K).unwrap();
    assert_eq!(
        printed(),
        Vec::<String>::new(),
        "quiet without memblock=debug"
    );
    mb.set_debug(true);
    let f = file!();

    let l = line!() + 1;
    mb.add(pa(RAM + SZ_2M), SZ_4K).unwrap();
    assert_eq!(
        printed(),
        [format!(
            "memblock_add: [0x0000000040200000-0x0000000040200fff] {f}:{l}"
        )]
    );

    let l = line!() + 1;
    mb.add_node(pa(RAM + SZ_4M), SZ_4K, 1, MemblockFlags::HOTPLUG)
        .unwrap();
    assert_eq!(
        printed(),
        [format!(
            "memblock_add_node: [0x0000000040400000-0x0000000040400fff] nid=1 flags=1 {f}:{l}"
        )]
    );

    let l = line!() + 1;
    mb.remove(pa(RAM + SZ_4M), SZ_4K).unwrap();
    assert_eq!(
        printed(),
        [format!(
            "memblock_remove: [0x0000000040400000-0x0000000040400fff] {f}:{l}"
        )]
    );

    let l = line!() + 1;
    mb.phys_free(pa(RAM), SZ_4K).unwrap();
    assert_eq!(
        printed(),
        [format!(
            "memblock_phys_free: [0x0000000040000000-0x0000000040000fff] {f}:{l}"
        )]
    );

    let l = line!() + 1;
    mb.reserve(pa(RAM), 0).unwrap();
    assert_eq!(
        printed(),
        [format!(
            "memblock_reserve: [0x0000000040000000-0x000000003fffffff] {f}:{l}"
        )]
    );

    let l = line!() + 1;
    let p = mb.phys_alloc(SZ_4K, SZ_4K).unwrap();
    let out = printed();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0], format!("memblock_phys_alloc_range: 4096 bytes align=0x1000 from=0x0000000000000000 max_addr=0x0000000000000000 {f}:{l}"));
    // The reservation is made from inside memblock, so its "caller" is memblock.rs.
    assert!(out[1].starts_with(&format!(
        "memblock_reserve: [{:#018x}-{:#018x}] src/mm/memblock.rs:",
        p.0,
        p.0 + SZ_4K - 1
    )));

    let l = line!() + 1;
    mb.alloc(SZ_64, 0).unwrap();
    let out = printed();
    assert_eq!(out[0], format!("memblock_alloc_try_nid: 64 bytes align=0x0 nid=-1 from=0x0000000000000000 max_addr=0x0000000000000000 {f}:{l}"));

    let l = line!() + 1;
    mb.alloc_try_nid_raw(SZ_64, SZ_64, pa(RAM), pa(RAM + SZ_1M), 0)
        .unwrap();
    let out = printed();
    assert_eq!(out[0], format!("memblock_alloc_try_nid_raw: 64 bytes align=0x40 nid=0 from=0x0000000040000000 max_addr=0x0000000040100000 {f}:{l}"));

    mb.dump_all();
    assert_eq!(printed()[0], "MEMBLOCK configuration:");
}

/// The only test that touches the global instance: the boot parameter, and the instance's
/// methods through its lock.
#[test]
fn global_instance_and_boot_parameter() {
    use crate::kernel::params::{parse_early_param_with, ObsKernelParam};
    let table = [ObsKernelParam {
        name: "memblock",
        setup: early_memblock,
        early: true,
    }];
    parse_early_param_with("memblock=nodebug_please", &table);
    // Linux only looks for "debug" anywhere in the value.
    assert!(MEMBLOCK.lock().debug());
    MEMBLOCK.lock().set_debug(false);
    parse_early_param_with("memblock", &table);
    assert!(!MEMBLOCK.lock().debug());

    let mut arena = SimRam::new();
    arena.back(RAM, SZ_1M);
    let mut mb = MEMBLOCK.lock();
    // SAFETY: the arena maps the RAM added below; only this test uses the global.
    unsafe { mb.set_phys_to_virt(__va) };
    mb.set_virt_to_phys(__pa);
    mb.add(pa(RAM), SZ_1M).unwrap();
    mb.reserve(pa(RAM), SZ_64K).unwrap();
    assert_eq!(
        (mb.start_of_dram(), mb.end_of_dram()),
        (pa(RAM), pa(RAM + SZ_1M))
    );
    assert_eq!((mb.phys_mem_size(), mb.reserved_size()), (SZ_1M, SZ_64K));
    let free: Vec<_> = mb
        .free_mem_ranges(NUMA_NO_NODE, MemblockFlags::NONE)
        .map(|(s, e, _)| (s.0, e.0))
        .collect();
    assert_eq!(free, [(RAM + SZ_64K, RAM + SZ_1M)]);
    let p = mb.alloc(SZ_4K, SZ_4K).unwrap();
    assert!(mb.is_reserved(__pa(p.as_ptr())));
    mb.free(p.as_ptr(), SZ_4K);
    assert_eq!(mb.reserved_size(), SZ_64K);
    assert!(mb.phys_alloc(SZ_4K, SZ_4K).is_some());
    assert!(mb.is_memory(pa(RAM)) && mb.is_map_memory(pa(RAM)));
    let pfns: u64 = mb
        .mem_pfn_ranges(MAX_NUMNODES)
        .map(|(s, e, _)| e.0 - s.0)
        .sum();
    assert_eq!(pfns, SZ_1M / PAGE_SIZE);
    mb.remove(pa(RAM), SZ_1M).unwrap();
    mb.phys_free(pa(0), PHYS_ADDR_MAX.0).unwrap();
    assert_eq!((mb.phys_mem_size(), mb.reserved_size()), (0, 0));
    drop(mb);
    drop(arena);
}

// ---- property tests against a model ----

/// A set of disjoint byte ranges with a node each: what memblock's lists should hold.
#[derive(Clone, Default, Debug)]
struct Model(Vec<(u64, u64, i32)>);

impl Model {
    /// Like memblock_add_range(): only the uncovered parts are added, with `nid`.
    fn add(&mut self, s: u64, e: u64, nid: i32) {
        let mut holes = Vec::new();
        let mut cur = s;
        for &(rs, re, _) in &self.0 {
            if re <= cur || rs >= e {
                continue;
            }
            if rs > cur {
                holes.push((cur, rs, nid));
            }
            cur = cur.max(re);
        }
        if cur < e {
            holes.push((cur, e, nid));
        }
        self.0.extend(holes);
        self.0.sort();
    }

    fn remove(&mut self, s: u64, e: u64) {
        let mut out = Vec::new();
        for &(rs, re, n) in &self.0 {
            if re <= s || rs >= e {
                out.push((rs, re, n));
                continue;
            }
            if rs < s {
                out.push((rs, s, n));
            }
            if re > e {
                out.push((e, re, n));
            }
        }
        self.0 = out;
    }

    /// Maximally merged, as memblock keeps its regions.
    fn canonical(&self) -> Vec<(u64, u64, i32)> {
        let mut out: Vec<(u64, u64, i32)> = Vec::new();
        for &r in &self.0 {
            match out.last_mut() {
                Some(last) if last.1 == r.0 && last.2 == r.2 => last.1 = r.1,
                _ => out.push(r),
            }
        }
        out
    }

    /// `self` minus `other`, as maximal intervals (nodes ignored).
    fn minus(&self, other: &Model) -> Vec<(u64, u64)> {
        let mut m = Model(self.0.iter().map(|&(s, e, _)| (s, e, 0)).collect());
        for &(s, e, _) in &other.0 {
            m.remove(s, e);
        }
        m.canonical().into_iter().map(|(s, e, _)| (s, e)).collect()
    }
}

fn as_triples(t: &MemblockType) -> Vec<(u64, u64, i32)> {
    if t.total_size() == 0 {
        return Vec::new();
    }
    t.regions()
        .iter()
        .map(|r| (r.base.0, r.base.0 + r.size, r.nid))
        .collect()
}

/// Sorted, disjoint, non-empty, maximally merged, total_size right.
fn check_invariants(t: &MemblockType) {
    let r = t.regions();
    assert!(t.cnt() >= 1 && t.cnt() <= t.max());
    if t.total_size() == 0 {
        assert_eq!(
            (t.cnt(), r[0].size),
            (1, 0),
            "empty list keeps one dummy entry"
        );
        return;
    }
    assert!(r.iter().all(|x| x.size > 0));
    for w in r.windows(2) {
        assert!(
            w[0].base.0 + w[0].size <= w[1].base.0,
            "sorted and disjoint"
        );
        let touching = w[0].base.0 + w[0].size == w[1].base.0;
        assert!(
            !(touching && w[0].nid == w[1].nid && w[0].flags == w[1].flags),
            "not merged: {w:?}"
        );
    }
    assert_eq!(t.total_size(), r.iter().map(|x| x.size).sum::<u64>());
}

#[derive(Clone, Debug)]
enum Op {
    Add(u64, u64, i32),
    Reserve(u64, u64),
    Remove(u64, u64),
    Free(u64, u64),
}

/// Ranges in a 64 KiB window above RAM, 16-byte granular, some running past the window.
fn op() -> impl Strategy<Value = Op> {
    let range = (0u64..4096, 0u64..1024).prop_map(|(s, l)| (RAM + s * 16, l * 16));
    prop_oneof![
        (range.clone(), 0i32..2).prop_map(|((s, l), n)| Op::Add(s, l, n)),
        range.clone().prop_map(|(s, l)| Op::Reserve(s, l)),
        range.clone().prop_map(|(s, l)| Op::Remove(s, l)),
        range.prop_map(|(s, l)| Op::Free(s, l)),
    ]
}

proptest! {
    #[test]
    fn lists_match_an_interval_model(ops in prop::collection::vec(op(), 1..60)) {
        let mut mb = Memblock::new();
        let (mut mem, mut res) = (Model::default(), Model::default());
        for op in ops {
            match op {
                Op::Add(s, l, n) => { mb.add_node(pa(s), l, n, MemblockFlags::NONE).unwrap(); mem.add(s, s + l, n); }
                Op::Reserve(s, l) => { mb.reserve(pa(s), l).unwrap(); res.add(s, s + l, MAX_NUMNODES); }
                Op::Remove(s, l) => { mb.remove(pa(s), l).unwrap(); mem.remove(s, s + l); }
                Op::Free(s, l) => { mb.phys_free(pa(s), l).unwrap(); res.remove(s, s + l); }
            }
            check_invariants(mb.memory());
            check_invariants(mb.reserved());
            prop_assert_eq!(as_triples(mb.memory()), mem.canonical());
            prop_assert_eq!(as_triples(mb.reserved()), res.canonical());
        }
        // memory minus reserved, both ways round.
        let free: Vec<_> = mb.free_mem_ranges(NUMA_NO_NODE, MemblockFlags::NONE).map(|(s, e, _)| (s.0, e.0)).collect();
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for (s, e) in free.iter().copied() {
            prop_assert!(s < e);
            match merged.last_mut() { Some(l) if l.1 == s => l.1 = e, _ => merged.push((s, e)) }
        }
        prop_assert_eq!(merged, mem.minus(&res));
        let mut rev: Vec<_> = mb.free_mem_ranges_rev(NUMA_NO_NODE, MemblockFlags::NONE).map(|(s, e, _)| (s.0, e.0)).collect();
        rev.reverse();
        prop_assert_eq!(rev, free);
    }

    #[test]
    fn allocations_match_a_first_fit_model(
        mem_ranges in prop::collection::vec((0u64..64, 1u64..16), 1..6),
        reserved_ranges in prop::collection::vec((0u64..256, 1u64..32), 0..6),
        allocs in prop::collection::vec((1u64..0x3000, 3u32..15, any::<bool>()), 1..30),
    ) {
        // Memory in page units over 80 pages of RAM, reservations in 256-byte units.
        let mut arena = SimRam::new();
        arena.back(RAM, 80 * PAGE_SIZE);
        let mut mb = Memblock::new();
        // SAFETY: every memory range lies in the arena.
        unsafe { mb.set_phys_to_virt(__va) };
        let (mut mem, mut res) = (Model::default(), Model::default());
        for (s, l) in mem_ranges {
            let (s, e) = (RAM + s * PAGE_SIZE, RAM + (s + l) * PAGE_SIZE);
            mb.add(pa(s), e - s).unwrap();
            mem.add(s, e, 0);
        }
        for (s, l) in reserved_ranges {
            let (s, e) = (RAM + s * 256, RAM + (s + l) * 256);
            mb.reserve(pa(s), e - s).unwrap();
            res.add(s, e, 0);
        }
        for (size, align_shift, bottom_up) in allocs {
            let align = 1u64 << align_shift;
            mb.set_bottom_up(bottom_up);
            // The model: every aligned slot in a free interval, first or last of them.
            let slots: Vec<u64> = mem.minus(&res).into_iter().filter_map(|(s, e)| {
                let s = s.max(PAGE_SIZE);
                if bottom_up {
                    let c = align_up(s, align);
                    (c < e && e - c >= size).then_some(c)
                } else {
                    (e >= size).then(|| align_down(e - size, align)).filter(|&c| c >= s)
                }
            }).collect();
            let expect = if bottom_up { slots.first().copied() } else { slots.last().copied() };
            let got = mb.alloc(size, align);
            let got_pa = got.map(|p| __pa(p.as_ptr()).0);
            prop_assert_eq!(got_pa, expect);
            if let Some(p) = got_pa {
                prop_assert!(p % align == 0);
                prop_assert!(mb.is_region_memory(pa(p), size));
                prop_assert!(!res.0.iter().any(|&(s, e, _)| s < p + size && p < e), "overlaps a reservation");
                prop_assert!(arena.bytes(pa(p), size).iter().all(|&b| b == 0));
                res.add(p, p + size, 0);
            }
            check_invariants(mb.reserved());
            let got_res: Vec<_> = as_triples(mb.reserved()).into_iter().map(|(s, e, _)| (s, e)).collect();
            let want_res: Vec<_> = res.canonical().into_iter().map(|(s, e, _)| (s, e)).collect();
            prop_assert_eq!(got_res, want_res);
        }
        drop(arena);
    }
}

// ---- phys_alloc_pgtable_pages(): paging_init's batches of table pages ----

proptest! {
    /// Batches handed out from the top, with what is left given back, are the pages that
    /// one-page top-down allocations (Linux's early_pgtable_alloc()) give, in the same
    /// order, and leave `reserved` the same: over holes, reserved blocks and a limit.
    #[test]
    fn pgtable_batches_match_one_page_allocations(
        banks in prop::collection::vec((0u64..64, 1u64..32), 1..4),
        taken in prop::collection::vec((0u64..96, 1u64..8), 0..6),
        limit in prop::option::of(1u64..100),
        max in 1u64..20,
        tables in 0u64..120,
    ) {
        // Addresses in pages from RAM.
        let build = || {
            let mut mb = Memblock::new();
            for &(s, l) in &banks {
                let _ = mb.add(pa(RAM + s * PAGE_SIZE), l * PAGE_SIZE);
            }
            for &(s, l) in &taken {
                let _ = mb.reserve(pa(RAM + s * PAGE_SIZE), l * PAGE_SIZE);
            }
            if let Some(l) = limit {
                mb.set_current_limit(pa(RAM + l * PAGE_SIZE));
            }
            mb
        };
        let mut one = build();
        let want: Vec<Option<u64>> = (0..tables)
            .map(|_| {
                one.phys_alloc_range(PAGE_SIZE, PAGE_SIZE, pa(0), MEMBLOCK_ALLOC_NOLEAKTRACE)
                    .map(|p| p.0)
            })
            .collect();
        let mut batched = build();
        let (mut base, mut left) = (0, 0);
        let mut got = Vec::new();
        for _ in 0..tables {
            if left == 0 {
                match batched.phys_alloc_pgtable_pages(max) {
                    Some((b, n)) => {
                        prop_assert!((1..=max).contains(&n));
                        (base, left) = (b.0, n);
                    }
                    None => {
                        got.push(None);
                        continue;
                    }
                }
            }
            left -= 1;
            got.push(Some(base + left * PAGE_SIZE));
        }
        if left != 0 {
            batched.phys_free(pa(base), left * PAGE_SIZE).unwrap();
        }
        prop_assert_eq!(got, want);
        prop_assert_eq!(regs(batched.reserved()), regs(one.reserved()));
    }
}

/// Under memblock=debug (and bottom-up) a batch is one page, taken by
/// memblock_phys_alloc_range() itself, so the trace shows Linux's call for every table.
#[test]
fn pgtable_pages_one_at_a_time_under_debug_and_bottom_up() {
    let (_ram, mut mb) = with_ram(RAM, SZ_16M);
    let (top, n) = mb.phys_alloc_pgtable_pages(64).unwrap();
    assert_eq!((top.0, n), (RAM + SZ_16M - 64 * SZ_4K, 64));
    mb.set_debug(true);
    take_captured();
    let (p, n) = mb.phys_alloc_pgtable_pages(64).unwrap();
    assert_eq!((p.0, n), (top.0 - SZ_4K, 1));
    assert!(printed()
        .iter()
        .any(|l| l.starts_with("memblock_phys_alloc_range: 4096 bytes align=0x1000")));
    mb.set_debug(false);
    mb.set_bottom_up(true);
    let (p, n) = mb.phys_alloc_pgtable_pages(64).unwrap();
    assert_eq!((p.0, n), (RAM, 1));
}
