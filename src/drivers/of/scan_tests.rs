//! Host tests of the memblock side of the early scan: device trees (QEMU's and the crafted
//! bad ones in tests/fixtures/dtb/bad) through early_init_dt_scan_nodes and
//! early_init_fdt_scan_reserved_mem into a memblock instance.

use super::fdt::{
    early_init_dt_add_memory_arch, early_init_dt_scan_nodes, early_init_fdt_scan_reserved_mem,
};
use super::libfdt::Fdt;
use crate::kernel::printk::take_captured;
use crate::mm::memblock::{Memblock, MemblockFlags};
use crate::mm::PhysAddr;

const G: u64 = 1 << 30;
const M: u64 = 1 << 20;

fn scan(blob: &[u8]) -> (Memblock, String) {
    take_captured();
    let fdt = Fdt::new(blob).expect("fixture parses");
    let mut mb = Memblock::new();
    early_init_dt_scan_nodes(&fdt, &mut mb);
    (mb, take_captured())
}

#[test]
fn qemu_numa_tree_gives_both_nodes() {
    let (mb, _) = scan(include_bytes!("../../../tests/fixtures/dtb/f_4G_numa2.dtb"));
    assert_eq!(mb.phys_mem_size(), 4 * G);
    assert_eq!(mb.start_of_dram(), PhysAddr(0x4000_0000));
    assert_eq!(mb.end_of_dram(), PhysAddr(0x1_4000_0000));
}

#[test]
fn zero_sized_node_is_skipped_with_a_warning() {
    let (mb, out) = scan(include_bytes!(
        "../../../tests/fixtures/dtb/bad/zero-size.dtb"
    ));
    assert_eq!(mb.phys_mem_size(), G);
    assert!(
        out.contains("/memory@80000000: reg: entry 0 at 0x80000000 has size 0, skipped"),
        "{out}"
    );
}

#[test]
fn overlapping_nodes_give_the_union_and_a_warning() {
    let (mb, out) = scan(include_bytes!(
        "../../../tests/fixtures/dtb/bad/overlap.dtb"
    ));
    assert_eq!(mb.phys_mem_size(), G);
    assert_eq!(mb.memory().cnt(), 1);
    assert!(
        out.contains("overlaps memory already added; using the union"),
        "{out}"
    );
}

#[test]
fn usable_memory_wins_over_reg() {
    let (mb, _) = scan(include_bytes!(
        "../../../tests/fixtures/dtb/bad/usable-memory.dtb"
    ));
    assert_eq!(mb.phys_mem_size(), 512 * M);
}

#[test]
fn three_address_cells_give_no_memory_and_a_clear_error() {
    let (mb, out) = scan(include_bytes!(
        "../../../tests/fixtures/dtb/bad/three-cells.dtb"
    ));
    assert_eq!(mb.phys_mem_size(), 0);
    assert!(
        out.contains("cannot decode with #address-cells = 3"),
        "{out}"
    );
}

#[test]
fn memory_above_the_pa_range_is_still_scanned() {
    // The scan adds it; arm64_memblock_init removes it (QEMU test memblock covers that).
    let (mb, _) = scan(include_bytes!(
        "../../../tests/fixtures/dtb/bad/above-pa.dtb"
    ));
    assert_eq!(mb.phys_mem_size(), 3 * G);
}

#[test]
fn reserved_memory_and_memreserve_reach_memblock() {
    let blob = include_bytes!("../../../tests/fixtures/dtb/bad/reserved.dtb");
    let (mut mb, _) = scan(blob);
    // What arm64_memblock_init reserves first: the kernel.
    mb.reserve(PhysAddr(0x4021_0000), 0x10_0000).unwrap();
    take_captured();
    early_init_fdt_scan_reserved_mem(&Fdt::new(blob).unwrap(), &mut mb);
    let out = take_captured();
    assert!(
        out.contains("failed to reserve memory for node 'over-kernel@40200000': base 0x0000000040200000, size 2 MiB"),
        "{out}"
    );
    // no-map over free memory: a NOMAP memory region, not a reservation.
    let secmon = mb
        .memory()
        .regions()
        .iter()
        .find(|r| r.base == PhysAddr(0x7e00_0000))
        .copied();
    assert_eq!(
        secmon.map(|r| (r.size, r.flags)),
        Some((M, MemblockFlags::NOMAP))
    );
    assert!(!mb.is_reserved(PhysAddr(0x7e00_0000)));
    assert!(mb.is_region_reserved(PhysAddr(0x7d00_0000), 2 * M));
    assert!(
        mb.is_region_reserved(PhysAddr(0x7f00_0000), 0x1_0000),
        "/memreserve/"
    );
    // The dynamic pool: 4 MiB, 4 MiB aligned, inside alloc-ranges (top-down: at the top).
    assert!(mb.is_region_reserved(PhysAddr(0x5fc0_0000), 4 * M));
    assert!(out.contains(
        "OF: reserved mem: allocated memory for 'pool' node: base 0x000000005fc00000, size 4 MiB"
    ));
}

#[test]
fn add_memory_arch_page_aligns_and_ignores_slivers() {
    let mut mb = Memblock::new();
    take_captured();
    early_init_dt_add_memory_arch(&mut mb, 0x4000_0800, 0x3000);
    assert_eq!(mb.memory().regions()[0].base, PhysAddr(0x4000_1000));
    assert_eq!(mb.phys_mem_size(), 0x2000);
    early_init_dt_add_memory_arch(&mut mb, 0x5000_0800, 0x400);
    assert!(take_captured().contains("Ignoring memory block 0x50000800 - 0x50000c00"));
    assert_eq!(mb.phys_mem_size(), 0x2000);
    early_init_dt_add_memory_arch(&mut mb, u64::MAX - 0xfff - 0x1000, 0x4000);
    assert!(take_captured().contains("Ignoring memory range"));
}
