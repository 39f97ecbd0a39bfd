//! Host unit tests of `src/mm/page_alloc/page_ref.rs` and `src/mm/page/page_ref.rs`:
//! get_page / put_page and the page_ref_* operations with Linux's semantics.

use core::ptr::NonNull;

use crate::kernel::printk::take_captured;
use crate::mm::gfp::{__GFP_COMP, __GFP_MOVABLE, GFP_DMA};
use crate::mm::page::Page;
use crate::mm::page_alloc::tests::one_block_dma;

const GFP: crate::mm::gfp::GfpT = GFP_DMA | __GFP_MOVABLE;

#[test]
fn a_compound_page_is_freed_on_its_last_reference_through_any_of_its_pages() {
    let sim = one_block_dma();
    sim.pa.drain_all_pages(None);
    let free0 = sim.pa.nr_free_pages();
    let head = sim.pa.alloc_pages(GFP | __GFP_COMP, 3).unwrap();
    let tail = NonNull::new(head.as_ptr().wrapping_add(5)).unwrap();
    // SAFETY: pages of the simulated memmap.
    let (h, t) = unsafe { (head.as_ref(), tail.as_ref()) };
    assert!(h.page_head() && t.page_tail());
    sim.pa.get_page(tail);
    assert_eq!(
        (h.page_ref_count(), t.page_ref_count()),
        (2, 0),
        "on the head"
    );
    sim.pa.put_page(tail);
    assert_eq!(h.page_ref_count(), 1);
    sim.pa.drain_all_pages(None);
    assert_eq!(sim.pa.nr_free_pages(), free0 - 8, "still allocated");
    // The last reference, through a tail page: the whole order-3 block goes back.
    sim.pa
        .put_page(NonNull::new(head.as_ptr().wrapping_add(7)).unwrap());
    sim.pa.drain_all_pages(None);
    assert_eq!(sim.pa.nr_free_pages(), free0, "all 8 pages freed");
    assert!(!h.page_head() && !t.page_tail(), "the compound page undone");
    assert!(take_captured().find("Bad page").is_none());

    // put_page() below zero: reported as Linux's VM_BUG_ON_PAGE, nothing freed twice.
    sim.pa.put_page(head);
    let out = take_captured();
    assert!(
        out.contains("page dumped because: VM_BUG_ON_PAGE(page_ref_count(page) == 0)"),
        "{out}"
    );
    sim.pa.drain_all_pages(None);
    assert_eq!(sim.pa.nr_free_pages(), free0);
    // get_page() of a free page: VM_BUG_ON_FOLIO.
    sim.pa.get_page(head);
    assert!(take_captured().contains(
        "page dumped because: VM_BUG_ON_FOLIO(folio_ref_zero_or_close_to_overflow(folio))"
    ));
    assert_eq!(h.page_ref_count(), 0);
    assert!(!sim.pa.get_page_unless_zero(head));
}

#[test]
fn put_page_of_a_plain_page_frees_order_0() {
    let sim = one_block_dma();
    sim.pa.drain_all_pages(None);
    let free0 = sim.pa.nr_free_pages();
    let p = sim.pa.alloc_pages(GFP, 0).unwrap();
    assert!(sim.pa.get_page_unless_zero(p));
    // SAFETY: a page of the memmap.
    assert_eq!(unsafe { p.as_ref() }.page_ref_count(), 2);
    sim.pa.put_page(p);
    sim.pa.drain_all_pages(None);
    assert_eq!(sim.pa.nr_free_pages(), free0 - 1);
    sim.pa.put_page(p);
    sim.pa.drain_all_pages(None);
    assert_eq!(sim.pa.nr_free_pages(), free0);
}

#[test]
fn page_ref_operations_are_linuxs() {
    let p = Page::zeroed();
    p.set_page_count(1);
    p.page_ref_add(3);
    assert_eq!(p.page_ref_count(), 4);
    p.page_ref_sub(2);
    p.page_ref_inc();
    p.page_ref_dec();
    assert_eq!(p.page_ref_count(), 2);
    assert_eq!(p.page_ref_inc_return(), 3);
    assert_eq!(p.page_ref_dec_return(), 2);
    assert_eq!(p.page_ref_sub_return(1), 1);
    assert!(!p.page_ref_freeze(2));
    assert!(p.page_ref_freeze(1));
    assert_eq!(p.page_ref_count(), 0);
    assert!(p.page_ref_zero_or_close_to_overflow());
    assert!(!p.page_ref_add_unless(1, 0));
    p.page_ref_unfreeze(1);
    assert!(p.page_ref_add_unless(1, 0));
    assert!(!p.page_ref_dec_and_test());
    assert!(p.page_ref_dec_and_test());
    p.set_page_count(-100);
    assert!(p.page_ref_zero_or_close_to_overflow(), "near overflow");
    p.set_page_count(-128);
    assert!(!p.page_ref_zero_or_close_to_overflow());
    p.set_page_count(5);
    assert!(p.page_ref_sub_and_test(5));
}
