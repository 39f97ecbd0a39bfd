//! Host tests of `mm/cma.rs` and `mm/cma/contiguous.rs` (`cargo hosttest`): the `cma=`
//! parameter as Linux's early_cma() reads it (bad values included), dma_contiguous_reserve()'s
//! choice, cma_declare_contiguous()'s placement and its refusals with Linux's lines, and on
//! a simulated machine: the area in the buddy as MIGRATE_CMA, which allocations may use it,
//! cma_alloc() (moving a movable page out) and cma_release().

use super::contiguous::{dma_contiguous_select, parse_cma, CmaCmdline, CmaRequest};
use super::*;
use crate::include::mmzone::MIGRATE_MOVABLE;
use crate::mm::gfp::{__GFP_NOWARN, GFP_HIGHUSER_MOVABLE, GFP_KERNEL};
use crate::mm::mmzone::NR_FREE_CMA_PAGES;
use crate::mm::page_alloc::migrate::{
    __clear_page_movable, __set_page_movable, MigrateMode, MovableOperations,
};
use crate::mm::testing::{printed, Backing, Machine, UpToBuddy};
use core::ptr::NonNull;
use core::sync::atomic::AtomicUsize;

const MB: u64 = 1 << 20;
const RAM: u64 = 0x4000_0000;

// ----- cma= (early_cma)

fn cma(p: &str) -> CmaCmdline {
    parse_cma(Some(p), CmaCmdline::NONE).unwrap()
}

#[test]
fn cma_parameter_is_read_as_linuxs_early_cma() {
    assert_eq!(
        cma("64M"),
        CmaCmdline {
            size: Some(64 * MB),
            base: 0,
            limit: 0
        }
    );
    // @BASE alone: the limit is BASE + SIZE, which makes the area fixed.
    assert_eq!(
        cma("16M@0x60000000"),
        CmaCmdline {
            size: Some(16 * MB),
            base: 0x6000_0000,
            limit: 0x6100_0000
        }
    );
    assert_eq!(
        cma("48M@0x50000000-0x70000000"),
        CmaCmdline {
            size: Some(48 * MB),
            base: 0x5000_0000,
            limit: 0x7000_0000
        }
    );
    // memparse(): base 0 (octal after a 0), suffixes of either case, no number reads as 0.
    assert_eq!(cma("010M").size, Some(8 * MB));
    assert_eq!(cma("1g").size, Some(1 << 30));
    assert_eq!(cma("0x1000000").size, Some(16 * MB));
    assert_eq!(cma("foo").size, Some(0));
    assert_eq!(cma("").size, Some(0));
    assert_eq!(cma("0").size, Some(0));
    // Trailing junk after SIZE is ignored; after @ only `-` continues.
    assert_eq!(cma("32Mxyz"), cma("32M"));
    assert_eq!(cma("32M@0x60000000x").limit, 0x6200_0000);
    // A later cma= sets SIZE again and keeps what it does not say (Linux's statics).
    let first = cma("16M@0x60000000");
    let again = parse_cma(Some("32M"), first).unwrap();
    assert_eq!(
        (again.size, again.base, again.limit),
        (Some(32 * MB), 0x6000_0000, 0x6100_0000)
    );
    // `cma` without a value: Linux's error, and do_early_param's `Malformed early option`.
    printed();
    assert!(parse_cma(None, CmaCmdline::NONE).is_err());
    assert_eq!(printed(), ["cma: Config string not provided"]);
}

#[test]
fn dma_contiguous_reserve_chooses_as_linux() {
    let limit = 0x1_0000_0000;
    // No cma=: CONFIG_CMA_SIZE_MBYTES below the DMA limit.
    assert_eq!(
        dma_contiguous_select(CmaCmdline::NONE, limit),
        Some(CmaRequest {
            size: 64 * MB,
            base: 0,
            limit,
            fixed: false
        })
    );
    // cma=0 (or a value that reads as 0): no area, no line.
    assert_eq!(dma_contiguous_select(cma("0"), limit), None);
    assert_eq!(dma_contiguous_select(cma("foo"), limit), None);
    // SIZE only: the DMA limit still applies (min_not_zero).
    assert_eq!(
        dma_contiguous_select(cma("32M"), limit).unwrap().limit,
        limit
    );
    // SIZE@BASE: fixed at BASE.
    let r = dma_contiguous_select(cma("16M@0x60000000"), limit).unwrap();
    assert!(r.fixed && r.base == 0x6000_0000 && r.limit == 0x6100_0000);
    // SIZE@BASE-LIMIT: anywhere in [BASE, LIMIT); a LIMIT above the DMA limit is clipped.
    let r = dma_contiguous_select(cma("48M@0x50000000-0x70000000"), limit).unwrap();
    assert!(!r.fixed && r.limit == 0x7000_0000);
    let r = dma_contiguous_select(cma("48M@0x50000000-0x200000000"), limit).unwrap();
    assert_eq!(r.limit, limit);
}

// ----- placement (cma_declare_contiguous)

fn memblock_of(banks: &[(u64, u64)], reserve: &[(u64, u64)]) -> Memblock {
    let banks: Vec<_> = banks.iter().map(|&(b, s)| (b, s, None)).collect();
    let mut m = Machine::from_banks(&banks).backed(Backing::Top(4 * MB));
    for &(b, s) in reserve {
        m = m.reserve(b, s);
    }
    let up = m.memblock();
    // The simulated RAM must outlive the memblock that points into it.
    let mb = up.mb;
    up.ram.leak();
    mb
}

fn declare(mb: &mut Memblock, areas: &CmaAreas, req: CmaRequest) -> Result<(u64, u64), i32> {
    areas
        .cma_declare_contiguous(
            mb, req.base, req.size, req.limit, 0, 0, req.fixed, "reserved",
        )
        .map(|c| (c.cma_get_base().0, c.cma_get_size()))
}

fn req(size: u64, base: u64, limit: u64, fixed: bool) -> CmaRequest {
    CmaRequest {
        size,
        base,
        limit,
        fixed,
    }
}

#[test]
fn the_default_area_goes_top_down_below_the_limit_pageblock_aligned() {
    let areas = CmaAreas::new();
    // 1 GiB, the top 1.5 MiB taken (as page tables and the memmap take it at boot).
    let mut mb = memblock_of(&[(RAM, 1 << 30)], &[(0x7fe8_0000, 0x18_0000)]);
    printed();
    assert_eq!(
        declare(&mut mb, &areas, req(64 * MB, 0, 0x8000_0000, false)),
        Ok((0x7be0_0000, 64 * MB))
    );
    assert_eq!(printed(), ["cma: Reserved 64 MiB at 0x000000007be00000"]);
    assert!(mb.is_region_reserved(PhysAddr(0x7be0_0000), 64 * MB));
    assert_eq!(areas.totalcma_pages(), 16384);
    // A size that is not a pageblock multiple is rounded up, and said so.
    assert_eq!(
        declare(&mut mb, &areas, req(5 * MB, 0, 0, false)).map(|a| a.1),
        Ok(6 * MB)
    );
    assert_eq!(
        printed()[0].split(" at ").next(),
        Some("cma: Reserved 6 MiB")
    );
}

#[test]
fn with_memory_above_4g_the_area_goes_bottom_up_from_4g_unless_the_limit_is_below() {
    let areas = CmaAreas::new();
    let mut mb = memblock_of(&[(RAM, 8 << 30)], &[]);
    // Below the DMA limit (4 GiB): bottom-up finds nothing in [4G, 4G), top-down below.
    assert_eq!(
        declare(&mut mb, &areas, req(64 * MB, 0, 0x1_0000_0000, false)),
        Ok((0xfc00_0000, 64 * MB))
    );
    // No limit: bottom-up from 4 GiB.
    assert_eq!(
        declare(&mut mb, &areas, req(32 * MB, 0, 0, false)),
        Ok((0x1_0000_0000, 32 * MB))
    );
    assert!(!mb.bottom_up(), "memblock's direction is restored");
}

#[test]
fn base_and_limit_bound_the_area() {
    let areas = CmaAreas::new();
    let mut mb = memblock_of(&[(RAM, 2 << 30)], &[]);
    printed();
    // cma=48M@0x50000000-0x70000000: the highest fit below the limit.
    assert_eq!(
        declare(
            &mut mb,
            &areas,
            req(48 * MB, 0x5000_0000, 0x7000_0000, false)
        ),
        Ok((0x6d00_0000, 48 * MB))
    );
    // cma=16M@0x60000000: fixed, exactly there.
    assert_eq!(
        declare(
            &mut mb,
            &areas,
            req(16 * MB, 0x6000_0000, 0x6100_0000, true)
        ),
        Ok((0x6000_0000, 16 * MB))
    );
    // The same place again: busy.
    assert_eq!(
        declare(
            &mut mb,
            &areas,
            req(16 * MB, 0x6000_0000, 0x6100_0000, true)
        ),
        Err(-EBUSY)
    );
    assert_eq!(
        printed(),
        [
            "cma: Reserved 48 MiB at 0x000000006d000000",
            "cma: Reserved 16 MiB at 0x0000000060000000",
            "cma: Failed to reserve 16 MiB"
        ]
    );
}

#[test]
fn bad_requests_fail_with_linuxs_lines() {
    let areas = CmaAreas::new();
    let mut mb = memblock_of(&[(RAM, 1 << 30)], &[(0x6000_0000, MB)]);
    printed();
    // A fixed base off a pageblock.
    assert_eq!(
        declare(
            &mut mb,
            &areas,
            req(16 * MB, 0x4010_0000, 0x4110_0000, true)
        ),
        Err(-EINVAL)
    );
    // A fixed area across the end of the linear map (cma=32M@0x7fe00000, as captured).
    assert_eq!(
        declare(
            &mut mb,
            &areas,
            req(32 * MB, 0x7fe0_0000, 0x81e0_0000, true)
        ),
        Err(-EINVAL)
    );
    // Past the limit.
    assert_eq!(
        declare(
            &mut mb,
            &areas,
            req(32 * MB, 0x7f00_0000, 0x7f80_0000, false)
        ),
        Err(-EINVAL)
    );
    // Larger than memory, and larger than any free piece.
    assert_eq!(
        declare(&mut mb, &areas, req(4 << 30, 0, 0, false)),
        Err(-EINVAL)
    );
    assert_eq!(
        declare(&mut mb, &areas, req(1000 * MB, 0, 0, false)),
        Err(-ENOMEM)
    );
    assert_eq!(
        printed(),
        [
            "cma: Region at 0x0000000040100000 must be aligned to 0x0000000000200000 bytes",
            "cma: Failed to reserve 16 MiB",
            "cma: Region at 0x000000007fe00000 defined on low/high memory boundary (0x0000000080000000)",
            "cma: Failed to reserve 32 MiB",
            "cma: Size (0x0000000002000000) of region at 0x000000007f000000 exceeds limit (0x000000007f800000)",
            "cma: Failed to reserve 32 MiB",
            "cma: Size (0x0000000100000000) of region at 0x0000000000000000 exceeds limit (0x0000000080000000)",
            "cma: Failed to reserve 4096 MiB",
            "cma: Failed to reserve 1000 MiB",
        ]
    );
    // Size 0 and a bad alignment: refused before anything, with no line (as Linux).
    assert_eq!(
        areas
            .cma_declare_contiguous(&mut mb, 0, 0, 0, 0, 0, false, "x")
            .err(),
        Some(-EINVAL)
    );
    assert_eq!(
        areas
            .cma_declare_contiguous(&mut mb, 0, MB, 0, 3 * MB, 0, false, "x")
            .err(),
        Some(-EINVAL)
    );
    assert!(printed().is_empty());
    assert_eq!(areas.totalcma_pages(), 0, "nothing was reserved");
}

#[test]
fn at_most_max_cma_areas() {
    let areas = CmaAreas::new();
    let mut mb = memblock_of(&[(RAM, 1 << 30)], &[]);
    for _ in 0..MAX_CMA_AREAS {
        assert!(declare(&mut mb, &areas, req(2 * MB, 0, 0, false)).is_ok());
    }
    printed();
    assert_eq!(
        declare(&mut mb, &areas, req(2 * MB, 0, 0, false)),
        Err(-ENOSPC)
    );
    assert_eq!(
        printed(),
        ["cma: Not enough slots for CMA reserved regions!"]
    );
    assert_eq!(areas.areas().count(), MAX_CMA_AREAS);
}

// ----- the area in the buddy

/// 64 MiB of RAM, a 16 MiB area declared the default way and activated.
fn cma_machine() -> (UpToBuddy, &'static Cma) {
    let mut sim = Machine::from_banks(&[(RAM, 64 * MB, None)])
        .backed(Backing::Full)
        .buddy();
    let areas: &'static CmaAreas = Box::leak(Box::new(CmaAreas::new()));
    let cma = areas
        .cma_declare_contiguous(&mut sim.mb, 0, 16 * MB, 0, 0, 0, false, "test")
        .unwrap();
    sim.pa.totalcma_pages_add(areas.totalcma_pages() as i64);
    sim.free_all();
    areas.cma_init_reserved_areas(sim.pa);
    printed();
    (sim, cma)
}

fn cma_free(sim: &UpToBuddy) -> u64 {
    sim.pa
        .zones()
        .map(|z| z.zone_page_state(NR_FREE_CMA_PAGES))
        .sum()
}

#[test]
fn the_area_joins_the_buddy_as_migrate_cma() {
    let (sim, cma) = cma_machine();
    let (base, count) = (cma.base_pfn(), cma.count());
    assert_eq!(count, 4096);
    let zone = sim.zone(0, 0);
    for pfn in (base..base + count).step_by(512) {
        assert_eq!(zone.get_pageblock_migratetype(Pfn(pfn)), MIGRATE_CMA);
    }
    assert_eq!(zone.cma_pages.load(Ordering::Relaxed), count);
    assert_eq!(cma_free(&sim), count);
    assert_eq!(sim.pa.totalcma_pages(), count);
    // The area counts as managed memory now, as Linux's adjust_managed_page_count().
    assert!(sim.pa.totalram_pages() >= count);
    let mut meminfo = Vec::new();
    crate::mm::show::meminfo(sim.pa, &mut |l| meminfo.push(l.to_string()));
    assert!(meminfo.contains(&"CmaTotal:          16384 kB".to_string()));
    assert!(meminfo.contains(&"CmaFree:           16384 kB".to_string()));
    let mut zoneinfo = Vec::new();
    crate::mm::show::zoneinfo(sim.pa.nodes(), &mut |l| zoneinfo.push(l.to_string()));
    assert!(zoneinfo.contains(&"        cma      4096".to_string()));
    // show_mem's count of it.
    let mut show = Vec::new();
    crate::mm::page_alloc::show_mem(sim.pa, None, 3, &mut |l| show.push(l.to_string()));
    assert!(
        show.contains(&"4096 pages cma reserved".to_string()),
        "{:?}",
        show
    );
}

#[test]
fn only_movable_allocations_use_the_area_and_first_when_it_holds_most_free_memory() {
    let (sim, cma) = cma_machine();
    let area = cma.base_pfn()..cma.base_pfn() + cma.count();
    // While CMA is under half of the free memory, movable requests take their own blocks.
    let first = sim.alloc(GFP_HIGHUSER_MOVABLE, 0).expect("movable page");
    assert!(
        !area.contains(&first),
        "CMA is a quarter of free memory: not used yet"
    );
    sim.free(first, 0);
    // Unmovable allocations never land there; they run out with the area untouched.
    let mut taken = Vec::new();
    while let Some(pfn) = sim.alloc(GFP_KERNEL | __GFP_NOWARN, 0) {
        assert!(!area.contains(&pfn), "GFP_KERNEL got CMA pfn {:#x}", pfn);
        taken.push(pfn);
    }
    printed();
    assert_eq!(cma_free(&sim), cma.count());
    // Now CMA is most of the free memory: a movable request takes it.
    let pfn = sim.alloc(GFP_HIGHUSER_MOVABLE, 0).expect("movable page");
    assert!(area.contains(&pfn));
    sim.free(pfn, 0);
    for pfn in taken {
        sim.free(pfn, 0);
    }
    sim.pa.drain_all_pages(None);
    assert_eq!(cma_free(&sim), cma.count());
}

static MOVED: AtomicUsize = AtomicUsize::new(0);
static OWNER: AtomicUsize = AtomicUsize::new(0);

fn host_isolate(_pa: &PageAlloc, _p: PagePtr, _m: MigrateMode) -> bool {
    true
}
fn host_migrate(pa: &PageAlloc, dst: PagePtr, src: PagePtr, _m: MigrateMode) -> i32 {
    // SAFETY: simulated pages, fully backed; src isolated, dst fresh.
    unsafe {
        core::ptr::copy_nonoverlapping(
            pa.page_address(src).as_ptr::<u8>(),
            pa.page_address(dst).as_mut_ptr::<u8>(),
            4096,
        )
    };
    OWNER.store(dst.as_ptr() as usize, Ordering::Relaxed);
    __set_page_movable(dst, &HOST_OPS);
    pa.get_page(dst);
    __clear_page_movable(src);
    pa.put_page(src);
    MOVED.fetch_add(1, Ordering::Relaxed);
    0
}
fn host_putback(_pa: &PageAlloc, _p: PagePtr) {}
static HOST_OPS: MovableOperations = MovableOperations {
    isolate_page: host_isolate,
    migrate_page: host_migrate,
    putback_page: host_putback,
};

#[test]
fn cma_alloc_moves_movable_pages_out_and_cma_release_gives_the_range_back() {
    let (sim, cma) = cma_machine();
    let (base, count) = (cma.base_pfn(), cma.count());
    sim.pa.drain_all_pages(None);
    let free0 = (sim.pa.nr_free_pages(), cma_free(&sim));
    // A movable page in the area, with data, owned through HOST_OPS; and a pinned one.
    let mut pinned = None;
    let mut movable = None;
    let mut others = Vec::new();
    while movable.is_none() || pinned.is_none() {
        let p = sim.pa.alloc_pages(GFP_HIGHUSER_MOVABLE, 0).unwrap();
        let pfn = sim.pfn(p);
        let in_area = (base..base + count).contains(&pfn);
        if !in_area || movable.is_some_and(|m: u64| m & !511 == pfn & !511) {
            others.push(p);
        } else if movable.is_none() {
            // SAFETY: our page, backed.
            unsafe { *sim.pa.page_address(p).as_mut_ptr::<u64>() = 0x5eed };
            __set_page_movable(p, &HOST_OPS);
            OWNER.store(p.as_ptr() as usize, Ordering::Relaxed);
            movable = Some(pfn);
        } else {
            pinned = Some(pfn);
        }
    }
    for p in others {
        sim.pa.__free_pages(p, 0);
    }
    let (movable, pinned) = (movable.unwrap(), pinned.unwrap());
    // The pinned page makes any run that holds it busy: whole-area requests fail, quietly
    // with no_warn, with Linux's report without.
    assert!(cma.cma_alloc(sim.pa, count, 0, true).is_none());
    assert!(printed().iter().all(|l| !l.contains("alloc failed")));
    assert!(cma.cma_alloc(sim.pa, count, 0, false).is_none());
    let out = printed();
    assert!(
        out.iter()
            .any(|l| l == "cma: cma_alloc: test: alloc failed, req-size: 4096 pages, ret: -16"),
        "{:?}",
        out
    );
    assert_eq!(
        out.len(),
        1,
        "Linux's one line (CONFIG_CMA_DEBUG off): {:?}",
        out
    );
    cma.cma_debug_show_areas();
    assert_eq!(
        printed(),
        ["cma: number of available pages: 4096@0=> 4096 free of 4096 total pages"]
    );
    // Pageblock by pageblock: every block but the pinned page's, the movable page's too
    // (it moves out).
    let mut got = Vec::new();
    while let Some(p) = cma.cma_alloc(sim.pa, 512, 9, true) {
        got.push(sim.pfn(p));
    }
    got.sort();
    let want: Vec<u64> = (base..base + count)
        .step_by(512)
        .filter(|&b| b != pinned & !511)
        .collect();
    assert_eq!(got, want);
    assert!(got.contains(&(movable & !511)));
    assert_eq!(MOVED.load(Ordering::Relaxed), 1);
    let owner = NonNull::new(OWNER.load(Ordering::Relaxed) as *mut crate::mm::page::Page).unwrap();
    assert!(
        !(base..base + count).contains(&sim.pfn(owner)),
        "moved out of the area"
    );
    // SAFETY: the owner's page.
    assert_eq!(
        unsafe { *sim.pa.page_address(owner).as_ptr::<u64>() },
        0x5eed
    );
    assert_eq!(cma.allocated_pages(), 7 * 512);
    printed();
    cma.cma_debug_show_areas();
    assert_eq!(
        printed(),
        [format!(
            "cma: number of available pages: 512@{}=> 512 free of 4096 total pages",
            (pinned & !511) - base
        )]
    );
    for &pfn in &got {
        let p = NonNull::new(sim.pa.pfn_to_page(Pfn(pfn))).unwrap();
        assert!((0..512).all(|i| sim.page(pfn + i).page_count() == 1));
        assert!(cma.cma_release(sim.pa, p, 512));
    }
    assert_eq!(cma.allocated_pages(), 0);
    // Free everything: the counts are back.
    __clear_page_movable(owner);
    sim.pa.put_page(owner);
    sim.free(pinned, 0);
    sim.pa.drain_all_pages(None);
    assert_eq!((sim.pa.nr_free_pages(), cma_free(&sim)), free0);
    assert_eq!(
        sim.zone(0, 0).nr_isolate_pageblock.load(Ordering::Relaxed),
        0
    );
}

#[test]
fn alloc_contig_range_outside_cma_takes_free_movable_blocks_and_refuses_busy_ones() {
    let (sim, cma) = cma_machine();
    let pa = sim.pa;
    pa.drain_all_pages(None);
    let free0 = pa.nr_free_pages();
    // Two free movable pageblocks below the area; a range inside them, unaligned.
    let start = cma.base_pfn() - 4 * 512;
    let zone = sim.zone(0, 0);
    assert_eq!(zone.get_pageblock_migratetype(Pfn(start)), MIGRATE_MOVABLE);
    let (a, b) = (start + 100, start + 1017);
    assert_eq!(
        pa.alloc_contig_range(a, b, MIGRATE_MOVABLE, GFP_KERNEL),
        Ok(())
    );
    assert!((a..b).all(|p| sim.page(p).page_count() == 1 && !sim.page(p).page_buddy()));
    // What the blocks held beyond the range went back; the blocks keep their type.
    pa.drain_all_pages(None);
    assert_eq!(pa.nr_free_pages(), free0 - (b - a));
    assert_eq!(zone.get_pageblock_migratetype(Pfn(start)), MIGRATE_MOVABLE);
    assert_eq!(zone.nr_isolate_pageblock.load(Ordering::Relaxed), 0);
    pa.free_contig_range(a, b - a);
    pa.drain_all_pages(None);
    assert_eq!(pa.nr_free_pages(), free0);
    // One page held (not movable) in the range: its pageblock cannot be isolated.
    assert_eq!(
        pa.alloc_contig_range(start + 600, start + 601, MIGRATE_MOVABLE, GFP_KERNEL),
        Ok(())
    );
    assert_eq!(
        pa.alloc_contig_range(start, start + 1024, MIGRATE_MOVABLE, GFP_KERNEL),
        Err(-EBUSY)
    );
    assert_eq!(zone.nr_isolate_pageblock.load(Ordering::Relaxed), 0);
    assert_eq!(zone.get_pageblock_migratetype(Pfn(start)), MIGRATE_MOVABLE);
    pa.free_contig_range(start + 600, 1);
    pa.drain_all_pages(None);
    assert_eq!(pa.nr_free_pages(), free0);
    assert_eq!(
        pa.alloc_contig_range(start, start + 1024, MIGRATE_MOVABLE, GFP_KERNEL),
        Ok(())
    );
    pa.free_contig_range(start, 1024);
    pa.drain_all_pages(None);
    assert_eq!(pa.nr_free_pages(), free0);
}
