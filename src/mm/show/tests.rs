//! Tests of the reports (`mm/show.rs`): buddyinfo, pagetypeinfo, meminfo and `mm_reports=`
//! in Linux's format.

use super::*;
use crate::kernel::printk::take_captured;
use crate::mm::free_area_init::early_pfn_valid;
use crate::mm::page_alloc::tests::one_block_dma;

// ----- reports

#[test]
fn reports_have_linuxs_format() {
    let sim = one_block_dma();
    let mut lines = Vec::new();
    buddyinfo(sim.pa.nodes(), &mut |l| lines.push(l.to_string()));
    assert_eq!(
        lines[0],
        "Node 0, zone      DMA      0      0      0      0      0      0      0      0      0      0      1 "
    );
    assert!(lines[1].starts_with("Node 0, zone   Normal "));
    let mut lines = Vec::new();
    let mb = &sim.mb;
    pagetypeinfo(sim.pa.nodes(), &|pfn| early_pfn_valid(mb, pfn), &mut |l| {
        lines.push(l.to_string())
    });
    assert_eq!(lines[0], "Page block order: 9");
    assert_eq!(lines[1], "Pages per block:  512");
    assert_eq!(lines[2], "");
    assert_eq!(
        lines[3],
        "Free pages count per migrate type at order       0      1      2      3      4      5      6      7      8      9     10 "
    );
    assert_eq!(
        lines[5],
        "Node    0, zone      DMA, type      Movable      0      0      0      0      0      0      0      0      0      0      1 "
    );
    let hdr = lines
        .iter()
        .position(|l| l.starts_with("Number of blocks type"))
        .unwrap();
    assert_eq!(
        lines[hdr],
        "Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic          CMA      Isolate "
    );
    assert_eq!(
        lines[hdr + 1],
        "Node 0, zone      DMA            0            2            0            0            0            0 "
    );
    let mut lines = Vec::new();
    meminfo(sim.pa, &mut |l| lines.push(l.to_string()));
    let total = sim.pa.totalram_pages() * 4;
    assert_eq!(lines[0], format!("MemTotal:       {:8} kB", total));
    assert_eq!(lines[1], format!("MemFree:        {:8} kB", total));
    assert_eq!(lines[2], format!("MemAvailable:   {:8} kB", total));
    assert_eq!(parse_mm_reports("buddyinfo,meminfo"), Ok(5));
    assert!(parse_mm_reports("slabinfo").is_err());
    take_captured();
    print_mm_reports_bits(sim.pa, &|pfn| early_pfn_valid(mb, pfn), 15);
    let out = take_captured();
    assert!(out.contains("] mm: buddyinfo\n") && out.contains("] Mem-Info:\n"));
}
