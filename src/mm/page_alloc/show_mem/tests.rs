//! Tests of the allocation-failure report (`page_alloc/show_mem.rs`): warn_alloc() with
//! show_free_areas() as Linux prints them.

use super::super::tests::{one_block_dma, DMA_MOVABLE};
use super::*;
use crate::include::mmzone::ZONE_DMA;
use crate::kernel::printk::take_captured;
use crate::mm::gfp::*;

#[test]
fn node_list_prints_ranges_like_nodemask_pr_args() {
    assert_eq!(NodeList(Nodemask(0b1011)).to_string(), "0-1,3");
}

#[test]
fn order_ten_fails_cleanly_on_a_fragmented_zone() {
    let sim = one_block_dma();
    // Take every page, give back every other one: 512 free pages, no two adjacent.
    let pages: Vec<u64> = (0..1024)
        .map(|_| sim.alloc(DMA_MOVABLE, 0).unwrap())
        .collect();
    for p in pages.iter().filter(|&&p| p % 2 == 0) {
        sim.free(*p, 0);
    }
    assert_eq!(sim.counts(0, ZONE_DMA), [512, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    take_captured();
    assert!(sim
        .pa
        .__alloc_pages(GFP_KERNEL | GFP_DMA, 10, 0, None)
        .is_none());
    let out = take_captured();
    let lines: Vec<&str> = out.lines().map(|l| &l[15..]).collect();
    assert_eq!(
        lines[0],
        "swapper/0: page allocation failure: order:10, mode:0xcc1(GFP_KERNEL|GFP_DMA), nodemask=(null)"
    );
    assert_eq!(lines[1], "Mem-Info:");
    assert!(lines.contains(&"Node 0 DMA: 512*4kB (M) 0*8kB 0*16kB 0*32kB 0*64kB 0*128kB 0*256kB 0*512kB 0*1024kB 0*2048kB 0*4096kB = 2048kB"), "{out}");
    assert!(lines.contains(&"lowmem_reserve[]: 0 0 0 0"), "{out}");
    assert_eq!(sim.counts(0, ZONE_DMA), [512, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    for p in pages.iter().filter(|&&p| p % 2 == 1) {
        sim.free(*p, 0);
    }
    assert_eq!(sim.counts(0, ZONE_DMA)[10], 1);
    // Past MAX_ORDER: refused outright.
    assert!(sim.alloc(DMA_MOVABLE | __GFP_NOWARN, 11).is_none());
}
