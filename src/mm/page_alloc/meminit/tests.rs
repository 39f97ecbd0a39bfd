//! Host unit tests of `src/mm/page_alloc/meminit.rs`: the page allocator's init_on_alloc /
//! init_on_free, on a machine of its own (the switches are per instance).

use super::*;
use crate::kernel::printk::take_captured;
use crate::mm::gfp::{__GFP_MOVABLE, GFP_DMA};
use crate::mm::page_alloc::tests::one_block_dma;
use crate::mm::VirtAddr;

const DMA_MOVABLE: GfpT = GFP_DMA | __GFP_MOVABLE;
const PAGE: usize = crate::mm::PAGE_SIZE as usize;

fn bytes(va: VirtAddr, order: u32) -> &'static [u8] {
    // SAFETY: pages of the leaked simulated RAM (mapped for the process's lifetime).
    unsafe { core::slice::from_raw_parts(va.as_ptr::<u8>(), PAGE << order) }
}

fn fill(va: VirtAddr, order: u32, b: u8) {
    // SAFETY: a block the test owns.
    unsafe { core::ptr::write_bytes(va.as_mut_ptr::<u8>(), b, PAGE << order) };
}

/// Allocate a block of `order` with the switches off, dirty it and free it; then allocate
/// again under `m` and return the block (the same one: the pcp lists and the buddy hand
/// back what was just freed).
fn dirty_then_alloc(pa: &PageAlloc, order: u32, m: MemInit, gfp: GfpT) -> VirtAddr {
    pa.set_meminit(MemInit::default());
    let va = pa.__get_free_pages(DMA_MOVABLE, order).unwrap();
    fill(va, order, 0xa5);
    pa.free_pages(va, order);
    pa.set_meminit(m);
    let again = pa.__get_free_pages(gfp, order).unwrap();
    assert_eq!(again, va, "order {order}: not the block just freed");
    again
}

#[test]
fn init_on_alloc_hands_out_zeroed_blocks_of_every_order() {
    let sim = one_block_dma();
    let on = MemInit {
        init_on_alloc: true,
        init_on_free: false,
    };
    for order in 0..=10 {
        // The control: switches off, the dirt comes back.
        let va = dirty_then_alloc(sim.pa, order, MemInit::default(), DMA_MOVABLE);
        assert!(bytes(va, order).iter().all(|&b| b == 0xa5), "order {order}");
        sim.pa.free_pages(va, order);
        let va = dirty_then_alloc(sim.pa, order, on, DMA_MOVABLE);
        assert!(bytes(va, order).iter().all(|&b| b == 0), "order {order}");
        sim.pa.free_pages(va, order);
    }
    assert!(sim.pa.want_init_on_alloc(0));
    assert!(!sim.pa.want_init_on_free());
}

#[test]
fn init_on_free_zeroes_freed_blocks_and_makes_gfp_zero_free() {
    let sim = one_block_dma();
    let m = MemInit {
        init_on_alloc: false,
        init_on_free: true,
    };
    sim.pa.set_meminit(m);
    for order in [0, 1, 3, 4, 9, 10] {
        let va = sim.pa.__get_free_pages(DMA_MOVABLE, order).unwrap();
        fill(va, order, 0x5a);
        sim.pa.free_pages(va, order);
        // Read through the (simulated) linear map after the free: zeroed.
        assert!(bytes(va, order).iter().all(|&b| b == 0), "order {order}");
    }
    // Linux's post_alloc_hook(): with init_on_free the block is already zero, so neither
    // init_on_alloc nor __GFP_ZERO clears it again. A byte written behind the allocator's
    // back while the page is free shows it.
    sim.pa.set_meminit(MemInit {
        init_on_alloc: true,
        init_on_free: true,
    });
    let va = sim.pa.__get_free_pages(DMA_MOVABLE, 0).unwrap();
    sim.pa.free_pages(va, 0);
    fill(va, 0, 0x11);
    let again = sim
        .pa
        .__get_free_pages(DMA_MOVABLE | crate::mm::gfp::__GFP_ZERO, 0)
        .unwrap();
    assert_eq!(again, va);
    assert!(bytes(va, 0).iter().all(|&b| b == 0x11));
    sim.pa.free_pages(va, 0);
}

/// What this thread printed, without the timestamps.
fn printed() -> String {
    take_captured()
        .lines()
        .map(|l| l.split_once("] ").map_or(l, |(_, t)| t).to_string() + "\n")
        .collect()
}

#[test]
fn report_meminit_prints_linuxs_lines() {
    take_captured();
    report_meminit(MemInit {
        init_on_alloc: true,
        init_on_free: false,
    });
    assert_eq!(
        printed(),
        "mem auto-init: stack:all(zero), heap alloc:on, heap free:off\n"
    );
    report_meminit(MemInit {
        init_on_alloc: false,
        init_on_free: true,
    });
    assert_eq!(
        printed(),
        "mem auto-init: stack:all(zero), heap alloc:off, heap free:on\n\
         mem auto-init: clearing system memory may take some time...\n"
    );
}

#[test]
fn init_on_params_are_kstrtobool() {
    assert_eq!(parse_bool(Some("0")), Ok(false));
    assert_eq!(parse_bool(Some("on")), Ok(true));
    assert_eq!(parse_bool(Some("Y")), Ok(true));
    assert!(parse_bool(Some("maybe")).is_err());
    assert!(
        parse_bool(None).is_err(),
        "a bare init_on_alloc is malformed"
    );
}
