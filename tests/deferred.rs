//! Deferred struct-page init on the real machine: memmap_init() leaves all but the first
//! section of each node's highest zone, the `page_alloc_init_late` stage after smp_init
//! finishes it on the nodes' CPUs and prints Linux's `node N deferred pages initialised in
//! Mms` for exactly the nodes Linux's logs print it for (every node with more than a
//! section in its highest zone; none on a 128 MiB machine). After boot every struct page
//! of every zone is initialised with its zone and node, nothing is left deferred, every
//! managed page reached the buddy, the zones' managed pages add up to totalram, and each
//! zone's free blocks (found by walking its struct pages) add up to its free count and are
//! fully merged, as freeing the same pages in one go at mem_init would leave them.
#![no_std]
#![no_main]

use arm64_mm::arch::aarch64::memory::pfn_to_page;
use arm64_mm::include::mmzone::{MAX_ORDER, MIGRATE_PCPTYPES, MIGRATE_TYPES};
use arm64_mm::include::pageblock_flags::PAGEBLOCK_NR_PAGES;
use arm64_mm::kernel::ktest;
use arm64_mm::mm::free_area_init::early_pfn_valid;
use arm64_mm::mm::memblock::{Memblock, MEMBLOCK};
use arm64_mm::mm::mmzone::NR_FREE_PAGES;
use arm64_mm::mm::page_alloc::page_alloc;
use arm64_mm::mm::Pfn;
use arm64_mm::{check, qemu_test};
use core::sync::atomic::Ordering;

qemu_test!(
    r#"
run -m 128M --smp 1
expect-no-output deferred pages initialised
run -m 1G --smp 2
expect-output ] node 0 deferred pages initialised in
run -m 4G --smp 2 --numa 2
expect-output ] node 0 deferred pages initialised in
expect-output ] node 1 deferred pages initialised in
run -m 2G --smp 4 --numa 4
expect-output ] node 0 deferred pages initialised in
expect-output ] node 1 deferred pages initialised in
expect-output ] node 2 deferred pages initialised in
expect-output ] node 3 deferred pages initialised in
run -m 4G --smp 2 --numa 4
expect-output ] node 2 deferred pages initialised in
expect-output ] node 3 deferred pages initialised in
run -m 3000M --smp 2 --append "kernelcore=1G"
expect-output ] node 0 deferred pages initialised in
"#
);

/// The zone's free blocks, from its struct pages (PageBuddy heads): the pages they hold,
/// and how many have a free buddy of the same order they should have merged with (Linux's
/// __free_one_page() merges any two, up to MAX_ORDER - 1, unless a pageblock of theirs is
/// of a type that does not merge).
fn walk_free_blocks(zone: &arm64_mm::mm::mmzone::Zone, mb: &Memblock) -> (u64, u64) {
    let _g = zone.lock.lock();
    let page = |pfn: u64| {
        // SAFETY: a pfn of the zone in a section with memory (callers check), whose page
        // sparse_init mapped; the zone lock keeps the free blocks still.
        unsafe { &*pfn_to_page(Pfn(pfn)) }
    };
    let (start, end) = (zone.zone_start_pfn.0, zone.zone_end_pfn().0);
    let (mut pages, mut unmerged, mut pfn) = (0, 0, start);
    while pfn < end {
        if !early_pfn_valid(mb, Pfn(pfn)) || !page(pfn).page_buddy() {
            pfn += 1;
            continue;
        }
        let order = page(pfn).buddy_order();
        let buddy = pfn ^ (1 << order);
        let mergeable = |p: u64| zone.get_pageblock_migratetype(Pfn(p)) < MIGRATE_PCPTYPES;
        if (order as usize) < MAX_ORDER - 1
            && (start..end).contains(&buddy)
            && page(buddy).page_buddy()
            && page(buddy).buddy_order() == order
            && mergeable(pfn)
            && mergeable(buddy)
        {
            unmerged += 1;
        }
        pages += 1 << order;
        pfn += 1 << order;
    }
    (pages, unmerged)
}

#[no_mangle]
pub fn kernel_init() -> ! {
    let pa = page_alloc().expect("mem_init ran");
    check!(
        !pa.deferred_pages_active(),
        "page_alloc_init_late left no deferred pages"
    );
    let mb = MEMBLOCK.lock();
    let mut managed_total = 0;
    for pgdat in pa.nodes().pgdats() {
        check!(
            pgdat.first_deferred_pfn.load(Ordering::Relaxed) == u64::MAX,
            "node {}: first_deferred_pfn cleared",
            pgdat.node_id
        );
        for (idx, zone) in pgdat.node_zones.iter().enumerate() {
            if zone.spanned_pages == 0 {
                continue;
            }
            let managed = zone.zone_managed_pages();
            managed_total += managed;
            let (mut walked, mut bad, mut bad_blocks) = (0u64, 0u64, 0u64);
            for pfn in zone.zone_start_pfn.0..zone.zone_end_pfn().0 {
                if !early_pfn_valid(&mb, Pfn(pfn)) {
                    continue;
                }
                // SAFETY: the pfn's section holds memory, so sparse_init mapped its page.
                let page = unsafe { &*pfn_to_page(Pfn(pfn)) };
                walked += 1;
                // An initialised page has its links, and a mapcount (-1, or a page type)
                // where the zeroed memmap has 0.
                if page.page_zonenum() != idx
                    || page.page_to_nid() != pgdat.node_id
                    || page.page_mapcount_raw() == 0
                {
                    bad += 1;
                }
                if pfn % PAGEBLOCK_NR_PAGES == 0
                    && zone.get_pageblock_migratetype(Pfn(pfn)) as usize >= MIGRATE_TYPES
                {
                    bad_blocks += 1;
                }
            }
            check!(
                bad == 0 && bad_blocks == 0 && walked >= zone.present_pages,
                "node {} zone {}: all {} struct pages initialised ({} not), pageblocks typed ({} not)",
                pgdat.node_id,
                zone.name(),
                walked,
                bad,
                bad_blocks
            );
            // Boot allocates little: nearly every managed page is free in the buddy (so the
            // deferred pages were freed, not just counted).
            let free = zone.zone_page_state(NR_FREE_PAGES);
            let (in_blocks, unmerged) = walk_free_blocks(zone, &mb);
            check!(
                in_blocks == free && unmerged == 0,
                "node {} zone {}: free blocks hold {} pages (free count {}), {} could merge",
                pgdat.node_id,
                zone.name(),
                in_blocks,
                free,
                unmerged
            );
            check!(
                free <= managed && managed - free < 8192,
                "node {} zone {}: {} of {} managed pages free",
                pgdat.node_id,
                zone.name(),
                free,
                managed
            );
        }
    }
    check!(
        managed_total == pa.totalram_pages(),
        "zones manage {} pages, totalram {}",
        managed_total,
        pa.totalram_pages()
    );
    drop(mb);
    ktest::finish()
}
