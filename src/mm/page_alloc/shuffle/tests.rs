//! Host unit tests of the free-list shuffle (`src/mm/page_alloc/shuffle.rs`).

use super::*;
use crate::include::mmzone::MIGRATE_TYPES;
use crate::include::mmzone::ZONE_DMA;
use crate::mm::gfp::GFP_KERNEL;
use crate::mm::page::{list_add_tail, lru_to_page};
use crate::mm::testing::{Backing, Machine};

const MB: u64 = 1 << 20;
const RAM: u64 = 0x4000_0000;

/// The pfns on one free list, head to tail.
fn list_pfns(pa: &PageAlloc, zone: &Zone, order: u32, mt: u32) -> Vec<u64> {
    let head = PageAlloc::free_list(zone, order, mt);
    let mut out = Vec::new();
    // SAFETY: the test owns the machine; nothing else runs on it.
    unsafe {
        let mut p = (*head).next;
        while p != head {
            out.push(pa.page_to_pfn(lru_to_page(p)).0);
            p = (*p).next;
        }
    }
    out
}

#[test]
fn list_swap_exchanges_neighbours_and_strangers() {
    let mut nodes: Vec<ListHead> = (0..6).map(|_| ListHead::new()).collect();
    let base = nodes.as_mut_ptr();
    // SAFETY: all entries live in `nodes`, which outlives the lists.
    unsafe {
        let (h1, h2) = (base, base.add(1));
        for h in [h1, h2] {
            (*h).next = h;
            (*h).prev = h;
        }
        let (a, b, c, d) = (base.add(2), base.add(3), base.add(4), base.add(5));
        list_add_tail(a, h1);
        list_add_tail(b, h1);
        list_add_tail(c, h1);
        list_add_tail(d, h2);
        let walk = |h: *mut ListHead| {
            let mut v = Vec::new();
            let mut p = (*h).next;
            while p != h {
                v.push(p.offset_from(base));
                assert_eq!((*(*p).next).prev, p, "links consistent");
                p = (*p).next;
            }
            v
        };
        list_swap(a, b); // neighbours
        assert_eq!(walk(h1), vec![3, 2, 4]);
        list_swap(c, d); // different lists
        assert_eq!((walk(h1), walk(h2)), (vec![3, 2, 5], vec![4]));
        list_swap(a, b); // neighbours the other way round
        assert_eq!(walk(h1), vec![2, 3, 5]);
    }
}

#[test]
fn shuffle_zone_permutes_the_top_order_and_keeps_every_count() {
    // 128 MiB: 32 free blocks of order 10 (less what memblock keeps at the top).
    let mut sim = Machine::from_banks(&[(RAM, 128 * MB, None)])
        .backed(Backing::Full)
        .buddy();
    sim.free_all();
    let pa = sim.pa;
    let zone = sim.zone(0, ZONE_DMA);
    let counts = sim.counts(0, ZONE_DMA);
    let lists: Vec<Vec<u64>> = (0..MIGRATE_TYPES as u32)
        .map(|mt| list_pfns(pa, zone, SHUFFLE_ORDER, mt))
        .collect();
    let movable = lists.iter().map(Vec::len).max().unwrap();
    assert!(movable >= 16, "enough blocks to shuffle ({movable})");
    let valid = |pfn: Pfn| pfn.0 >= RAM >> 12 && pfn.0 < (RAM + 128 * MB) >> 12;
    let swaps = pa.__shuffle_zone(zone, &valid);
    assert!(swaps > 0, "some blocks were swapped");
    assert_eq!(
        sim.counts(0, ZONE_DMA),
        counts,
        "free counts per order unchanged"
    );
    let mut changed = false;
    for (mt, before) in lists.iter().enumerate() {
        let after = list_pfns(pa, zone, SHUFFLE_ORDER, mt as u32);
        let (mut b, mut a) = (before.clone(), after.clone());
        b.sort_unstable();
        a.sort_unstable();
        assert_eq!(
            a, b,
            "migratetype {mt}: the same blocks, only their order differs"
        );
        changed |= &after != before;
    }
    assert!(changed, "the order-10 lists were reordered");
    // Every block still comes out whole, and goes back.
    let got: Vec<u64> = (0..counts[SHUFFLE_ORDER as usize])
        .map(|_| {
            sim.alloc(GFP_KERNEL, SHUFFLE_ORDER)
                .expect("an order-10 block")
        })
        .collect();
    assert!(got.iter().all(|p| p % 1024 == 0));
    for p in got {
        sim.free(p, SHUFFLE_ORDER);
    }
    assert_eq!(sim.counts(0, ZONE_DMA), counts);
}

#[test]
fn the_parameter_and_the_coin() {
    // parse_shuffle, not shuffle_param_set: the switch is global, and other tests free
    // order-10 blocks concurrently.
    assert_eq!(parse_shuffle(Some("1")), Ok(true));
    assert_eq!(parse_shuffle(Some("Y")), Ok(true));
    assert_eq!(parse_shuffle(Some("on")), Ok(true));
    assert_eq!(parse_shuffle(Some("off")), Ok(false));
    assert_eq!(parse_shuffle(Some("0")), Ok(false));
    assert!(parse_shuffle(Some("maybe")).is_err());
    assert!(parse_shuffle(Some("")).is_err());
    assert!(parse_shuffle(None).is_err());
    assert!(!is_shuffle_order(9));
    let flips: Vec<bool> = (0..256).map(|_| shuffle_pick_tail()).collect();
    let heads = flips.iter().filter(|&&b| b).count();
    assert!((64..=192).contains(&heads), "a fair coin: {heads} of 256");
}
