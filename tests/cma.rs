//! CMA on the real machine (mm/cma.c, kernel/dma/contiguous.c): the `cma:` lines and the
//! `Memory:` line's `cma-reserved` equal Linux 6.1's for the same machine and `cma=`
//! (`expect-linux-lines --cma`: tests/fixtures/linux-6.1, the cma* captures and the -smp 4
//! variants; the zones test compares the other machines); bad `cma=` values behave as
//! Linux's early_cma() makes them. With `test.cma`: the area's pageblocks are MIGRATE_CMA
//! in the buddy and counted (`CmaTotal`/`CmaFree`, zone `cma_pages`); movable allocations
//! fill the whole area; cma_alloc() then gets 16 MiB, contiguous and inside the area, by
//! migrating the movable pages out (their owner's data intact, its table repointed);
//! cma_release() gives it back and the free counts return to what they were. With
//! `test.cma_smp` (multi-threaded TCG, 4 CPUs): while three CPUs churn movable pages that
//! land in the area (their owner isolates, moves and puts back pages as zsmalloc does),
//! CPU 0 takes and gives back 16 MiB again and again; no page's data is lost and every
//! free count comes back.
//!
//! The placements match because this kernel, like Linux 6.1 with Debian's config, maps the
//! linear map with pages by default (rodata=full), whose tables paging_init() takes from
//! the top of memory before the memmap and the CMA area.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use arm64_mm::arch::aarch64::kernel::smp::{num_online_cpus, smp_processor_id};
use arm64_mm::arch::aarch64::kernel::smp_call::on_each_cpu;
use arm64_mm::arch::aarch64::kernel::time::{counter, frequency};
use arm64_mm::kernel::ktest;
use arm64_mm::kernel::params::boot_command_line;
use arm64_mm::mm::cma::contiguous::{
    dma_alloc_from_contiguous, dma_contiguous_default_area, dma_release_from_contiguous,
};
use arm64_mm::mm::gfp::{__GFP_NOWARN, GFP_HIGHUSER_MOVABLE, GFP_KERNEL};
use arm64_mm::mm::mmzone::{Zone, NR_FREE_CMA_PAGES};
use arm64_mm::mm::page_alloc::migrate::{
    __clear_page_movable, __set_page_movable, MigrateMode, MovableOperations,
};
use arm64_mm::mm::page_alloc::{page_alloc, PageAlloc, PagePtr};
use arm64_mm::mm::Pfn;
use arm64_mm::{check, qemu_test};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

qemu_test!(
    r#"
run -m 512M --smp 2 --append "test.cma"
expect-output ] cma: Reserved 64 MiB at 0x000000005
run -m 512M --smp 4 --append "test.cma_smp" -- -accel tcg,thread=multi
expect-output ] cma test: smp:
run -m 1G --smp 2 --append "cma=32M loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/cma1_1G_cma32M.log
run -m 1G --smp 2 --append "cma=16M@0x60000000 loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/cma2_1G_cma16M_at_0x60000000.log
run -m 4G --smp 2 --append "cma=0 loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/cma3_4G_cma0.log
expect-no-output cma: 
run -m 2G --smp 2 --append "cma=48M@0x50000000-0x70000000 loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/cma4_2G_cma48M_at_0x50000000-0x70000000.log
run -m 1G --smp 2 --append "cma=32M@0x7fe00000 loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/cma5_1G_cma32M_at_0x7fe00000.log
run -m 1G --smp 4 --append "nr_cpus=1 loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/t_1G_smp4_nrcpus1.log
run -m 1G --smp 4 --append "maxcpus=2 loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/u_1G_smp4_maxcpus2.log
run -m 1G --smp 4 --append "nosmp loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/v_1G_smp4_nosmp.log
run -m 1G --smp 4 --append "maxcpus=y loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/w_1G_smp4_maxcpusy.log
run -m 1G --smp 4 --append "nr_cpus=x loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/y_1G_smp4_nrcpusx.log
run -m 1G --smp 4 --append "nr_cpus=3 maxcpus= loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/z_1G_smp4_nrcpus3_maxcpusempty.log
run -m 1G --append "cma"
expect-output ] cma: Config string not provided
expect-output ] Malformed early option 'cma'
expect-output ] cma: Reserved 64 MiB at
run -m 1G --append "cma=foo"
expect-no-output cma: Reserved
expect-output , 0K cma-reserved)
run -m 1G --append "cma=5M"
expect-output ] cma: Reserved 6 MiB at
expect-output , 6144K cma-reserved)
run -m 1G --append "cma=16M@0x40000000"
expect-output ] cma: Failed to reserve 16 MiB
expect-output , 0K cma-reserved)
run -m 1G --append "cma=16M@0x40100000"
expect-output ] cma: Region at 0x0000000040100000 must be aligned to 0x0000000000200000 bytes
expect-output ] cma: Failed to reserve 16 MiB
"#
);

/// The test's movable pages: the owner's table (page addresses by slot), as a driver
/// (zsmalloc, a balloon) keeps them.
static mut TABLE: Vec<usize> = Vec::new();
static MIGRATED: AtomicUsize = AtomicUsize::new(0);

fn table() -> &'static mut Vec<usize> {
    // SAFETY: one CPU runs the test; the migration callbacks run from its cma_alloc() call,
    // while the test itself does not hold the reference.
    unsafe { &mut *core::ptr::addr_of_mut!(TABLE) }
}

fn isolate(_pa: &PageAlloc, _page: PagePtr, _mode: MigrateMode) -> bool {
    true
}

/// Move a page: copy it, repoint the table, make the new page movable, let go of the old.
fn migrate(pa: &PageAlloc, dst: PagePtr, src: PagePtr, _mode: MigrateMode) -> i32 {
    // SAFETY: both are pages of the linear map; src is isolated (ours), dst just allocated.
    unsafe {
        core::ptr::copy_nonoverlapping(
            pa.page_address(src).as_ptr::<u8>(),
            pa.page_address(dst).as_mut_ptr::<u8>(),
            4096,
        );
        let slot = (*src.as_ptr()).private;
        (*dst.as_ptr()).private = slot;
        (*src.as_ptr()).private = 0;
        table()[slot as usize] = dst.as_ptr() as usize;
    }
    __set_page_movable(dst, &OPS);
    pa.get_page(dst);
    __clear_page_movable(src);
    pa.put_page(src);
    MIGRATED.fetch_add(1, Ordering::Relaxed);
    0
}

fn putback(_pa: &PageAlloc, _page: PagePtr) {}

static OPS: MovableOperations = MovableOperations {
    isolate_page: isolate,
    migrate_page: migrate,
    putback_page: putback,
};

/// What a page of slot `i` holds: the slot number in its first and last words.
fn tag(i: usize) -> u64 {
    0xc3a0_0000_0000_0000 | i as u64
}

fn zone_of(pa: &'static PageAlloc<'static>, pfn: u64) -> &'static Zone {
    pa.nodes()
        .pgdats()
        .flat_map(|p| p.node_zones.iter())
        .find(|z| z.spanned_pages > 0 && z.zone_spans_pfn(Pfn(pfn)))
        .expect("a zone spans the pfn")
}

fn cma_free(pa: &PageAlloc) -> u64 {
    pa.zones()
        .map(|z| z.zone_page_state(NR_FREE_CMA_PAGES))
        .sum()
}

fn test_cma(pa: &'static PageAlloc<'static>) {
    let Some(cma) = dma_contiguous_default_area() else {
        check!(false, "the global CMA area was reserved");
        return;
    };
    let (base, count) = (cma.base_pfn(), cma.count());
    check!(count == 16384, "the area is 64 MiB: {} pages", count);
    check!(
        pa.totalcma_pages() == count,
        "totalcma_pages is the area: {}",
        pa.totalcma_pages()
    );
    let zone = zone_of(pa, base);
    let all_cma = (base..base + count)
        .step_by(512)
        .all(|p| zone.get_pageblock_migratetype(Pfn(p)) == 4);
    check!(all_cma, "every pageblock of the area is MIGRATE_CMA");
    check!(
        zone.cma_pages.load(Ordering::Relaxed) == count,
        "the zone counts the area in cma_pages"
    );
    let mut meminfo = (0, 0);
    arm64_mm::mm::show::meminfo(pa, &mut |l| {
        let kb = |l: &str| l.split_whitespace().nth(1).and_then(|v| v.parse().ok());
        if l.starts_with("CmaTotal:") {
            meminfo.0 = kb(l).unwrap_or(0);
        }
        if l.starts_with("CmaFree:") {
            meminfo.1 = kb(l).unwrap_or(0);
        }
    });
    check!(meminfo.0 == 65536, "meminfo CmaTotal: {} kB", meminfo.0);
    pa.drain_all_pages(None);
    let (free0, cma0) = (pa.nr_free_pages(), cma_free(pa));
    check!(
        meminfo.1 == cma0 * 4 && cma0 == count,
        "meminfo CmaFree: {} kB, the whole area free",
        meminfo.1
    );

    // Fill the area with movable pages (and whatever else they take on the way).
    table().reserve(free0 as usize);
    let mut in_area = 0;
    while in_area < count {
        let Some(page) = pa.alloc_pages(GFP_HIGHUSER_MOVABLE | __GFP_NOWARN, 0) else {
            break;
        };
        let slot = table().len();
        let va = pa.page_address(page).as_mut_ptr::<u64>();
        // SAFETY: our page, mapped in the linear map.
        unsafe {
            *va = tag(slot);
            *va.add(511) = tag(slot);
            (*page.as_ptr()).private = slot as u64;
        }
        __set_page_movable(page, &OPS);
        table().push(page.as_ptr() as usize);
        let pfn = pa.page_to_pfn(page.as_ptr()).0;
        if (base..base + count).contains(&pfn) {
            in_area += 1;
        }
    }
    check!(
        in_area == count,
        "movable allocations filled the area: {} of {} pages ({} pages allocated)",
        in_area,
        count,
        table().len()
    );

    // Keep the area full; give back what the filling took elsewhere, so that migration
    // has somewhere to go (Linux would reclaim).
    let mut kept = 0;
    for addr in table().iter_mut() {
        let page = NonNull::new(*addr as *mut arm64_mm::mm::page::Page).unwrap();
        let p = pa.page_to_pfn(page.as_ptr()).0;
        if (base..base + count).contains(&p) {
            kept += 1;
            continue;
        }
        // SAFETY: the owner's page.
        unsafe { (*page.as_ptr()).private = 0 };
        __clear_page_movable(page);
        pa.put_page(page);
        *addr = 0;
    }
    check!(
        kept == count && cma_free(pa) == 0,
        "the area stays full after the rest is freed"
    );

    // 16 MiB out of a full area: everything there has to move.
    let want = 4096;
    let t0 = counter();
    let got = cma.cma_alloc(pa, want, 8, false);
    let us = (counter() - t0) * 1_000_000 / frequency();
    arm64_mm::pr_info!(
        "cma test: cma_alloc of 16 MiB from the full area: {} us, {} pages migrated",
        us,
        MIGRATED.load(Ordering::Relaxed)
    );
    check!(got.is_some(), "cma_alloc of 16 MiB from the full area");
    let Some(pages) = got else { return };
    let pfn = pa.page_to_pfn(pages.as_ptr()).0;
    check!(
        pfn >= base && pfn + want <= base + count && pfn.is_multiple_of(256),
        "the range {:#x}..{:#x} lies in the area {:#x}..{:#x}, aligned to 1 MiB",
        pfn,
        pfn + want,
        base,
        base + count
    );
    let ours = (pfn..pfn + want).all(|p| {
        // SAFETY: a page of the range cma_alloc handed us.
        let pg = unsafe { &*pa.pfn_to_page(Pfn(p)) };
        pg.page_count() == 1 && !pg.page_buddy() && pg.mapping == 0
    });
    check!(ours, "each page of the range is allocated to us, unmapped");
    let moved = MIGRATED.load(Ordering::Relaxed);
    check!(
        moved as u64 >= want,
        "{} movable pages were migrated out of the range",
        moved
    );
    let mut intact = 0;
    let mut outside = 0;
    for (slot, &addr) in table().iter().enumerate().filter(|(_, &a)| a != 0) {
        let page = NonNull::new(addr as *mut arm64_mm::mm::page::Page).unwrap();
        let p = pa.page_to_pfn(page.as_ptr()).0;
        if !(pfn..pfn + want).contains(&p) {
            outside += 1;
        }
        let va = pa.page_address(page).as_mut_ptr::<u64>();
        // SAFETY: the owner's page.
        if unsafe { *va == tag(slot) && *va.add(511) == tag(slot) } {
            intact += 1;
        }
    }
    check!(outside == kept, "no movable page is left in the range");
    check!(
        intact == kept,
        "the movable data survived migration: {} of {} pages",
        intact,
        kept
    );
    // The range is ours: write all of it.
    let va = pa.page_address(pages).as_mut_ptr::<u64>();
    for i in 0..(want * 512) as usize {
        // SAFETY: the 16 MiB cma_alloc handed us, contiguous in the linear map.
        unsafe { *va.add(i) = i as u64 };
    }
    // SAFETY: as above.
    let last = unsafe { *va.add((want * 512) as usize - 1) };
    check!(
        last == want * 512 - 1,
        "the 16 MiB are contiguous and writable"
    );
    check!(
        cma.allocated_pages() == want,
        "the area's bitmap holds the range"
    );
    let outside_page = NonNull::new(pa.pfn_to_page(Pfn(base - 1))).unwrap();
    check!(
        !cma.cma_release(pa, outside_page, 1),
        "cma_release refuses a page outside the area"
    );
    check!(cma.cma_release(pa, pages, want), "cma_release of the range");
    check!(cma.allocated_pages() == 0, "the bitmap is empty again");

    // The owner frees its pages; everything is back.
    for &addr in table().iter().filter(|&&a| a != 0) {
        let page = NonNull::new(addr as *mut arm64_mm::mm::page::Page).unwrap();
        // SAFETY: the owner's page.
        unsafe { (*page.as_ptr()).private = 0 };
        __clear_page_movable(page);
        pa.put_page(page);
    }
    // (The table's own memory goes back too.)
    *table() = Vec::new();
    pa.drain_all_pages(None);
    check!(
        pa.nr_free_pages() == free0 && cma_free(pa) == cma0,
        "free counts are back: {} free ({} before), {} CMA free ({} before)",
        pa.nr_free_pages(),
        free0,
        cma_free(pa),
        cma0
    );
    // And the area can be had again through the DMA API's calls, now without migration.
    let t0 = counter();
    let again = dma_alloc_from_contiguous(pa, want, 12, false);
    let us = (counter() - t0) * 1_000_000 / frequency();
    arm64_mm::pr_info!("cma test: 16 MiB from the empty area: {} us", us);
    check!(
        again.is_some(),
        "dma_alloc_from_contiguous on the empty area"
    );
    if let Some(p) = again {
        let pfn = pa.page_to_pfn(p.as_ptr()).0;
        // The base is 1 MiB- but not 16 MiB-aligned: the first fit is the base only if
        // the order 12 asked was clamped to CONFIG_CMA_ALIGNMENT (8).
        check!(
            pfn == base && base.is_multiple_of(256) && !base.is_multiple_of(4096),
            "aligned to CONFIG_CMA_ALIGNMENT (order 8), not the order 12 asked: {:#x}",
            pfn
        );
        check!(
            dma_release_from_contiguous(pa, p, want),
            "dma_release_from_contiguous"
        );
    }
}

// ----- test.cma_smp: CPU 0 allocates from the area while the others churn movable pages.

/// The churners' pages, by slot: the page's address, | ISOLATED while migration holds it.
const SLOTS_N: usize = 512;
/// Slots 0..RESIDENT are filled before the churn starts and left alone by the churners:
/// only migration moves them.
const RESIDENT: usize = 256;
const ISOLATED: usize = 1;
static SLOTS: [AtomicUsize; SLOTS_N] = [const { AtomicUsize::new(0) }; SLOTS_N];
/// The owner's lock (zsmalloc's pool lock): slot changes, isolation, migration.
static OWNER_LOCK: spin::Mutex<()> = spin::Mutex::new(());
static STOP: AtomicBool = AtomicBool::new(false);
static SMP_ERRORS: AtomicU64 = AtomicU64::new(0);
static SMP_MOVED: AtomicU64 = AtomicU64::new(0);
static SMP_CHURNED: AtomicU64 = AtomicU64::new(0);
static SMP_GOT: AtomicU64 = AtomicU64::new(0);
static SMP_BUSY: AtomicU64 = AtomicU64::new(0);

fn smp_tag(slot: u64) -> u64 {
    0x5a5a_0000_0000_0000 | slot
}

fn churn_isolate(_pa: &PageAlloc, page: PagePtr, _mode: MigrateMode) -> bool {
    let _g = OWNER_LOCK.lock();
    // SAFETY: the caller holds a reference and the page lock.
    let slot = unsafe { (*page.as_ptr()).private } as usize;
    if slot < SLOTS_N && SLOTS[slot].load(Ordering::Relaxed) == page.as_ptr() as usize {
        SLOTS[slot].store(page.as_ptr() as usize | ISOLATED, Ordering::Relaxed);
        true
    } else {
        false
    }
}

fn churn_migrate(pa: &PageAlloc, dst: PagePtr, src: PagePtr, _mode: MigrateMode) -> i32 {
    let _g = OWNER_LOCK.lock();
    // SAFETY: src is isolated (ours to move), dst is fresh; both in the linear map.
    unsafe {
        let slot = (*src.as_ptr()).private;
        core::ptr::copy_nonoverlapping(
            pa.page_address(src).as_ptr::<u8>(),
            pa.page_address(dst).as_mut_ptr::<u8>(),
            4096,
        );
        (*dst.as_ptr()).private = slot;
        (*src.as_ptr()).private = 0;
        SLOTS[slot as usize].store(dst.as_ptr() as usize, Ordering::Relaxed);
    }
    __set_page_movable(dst, &CHURN_OPS);
    pa.get_page(dst);
    __clear_page_movable(src);
    pa.put_page(src);
    SMP_MOVED.fetch_add(1, Ordering::Relaxed);
    0
}

fn churn_putback(_pa: &PageAlloc, page: PagePtr) {
    let _g = OWNER_LOCK.lock();
    // SAFETY: isolated by the caller: it holds a reference.
    let slot = unsafe { (*page.as_ptr()).private } as usize;
    SLOTS[slot].store(page.as_ptr() as usize, Ordering::Relaxed);
}

static CHURN_OPS: MovableOperations = MovableOperations {
    isolate_page: churn_isolate,
    migrate_page: churn_migrate,
    putback_page: churn_putback,
};

/// A churner's step on `slot`: fill an empty slot, or check and free a full one (unless
/// migration holds it).
fn churn_slot(pa: &PageAlloc, slot: usize) {
    let _g = OWNER_LOCK.lock();
    let v = SLOTS[slot].load(Ordering::Relaxed);
    if v & ISOLATED != 0 {
        return;
    }
    if v == 0 {
        let Some(page) = pa.alloc_pages(GFP_HIGHUSER_MOVABLE | __GFP_NOWARN, 0) else {
            return;
        };
        let va = pa.page_address(page).as_mut_ptr::<u64>();
        // SAFETY: our fresh page.
        unsafe {
            *va = smp_tag(slot as u64);
            *va.add(511) = !smp_tag(slot as u64);
            (*page.as_ptr()).private = slot as u64;
        }
        __set_page_movable(page, &CHURN_OPS);
        SLOTS[slot].store(page.as_ptr() as usize, Ordering::Relaxed);
    } else {
        let page = NonNull::new(v as *mut arm64_mm::mm::page::Page).unwrap();
        let va = pa.page_address(page).as_mut_ptr::<u64>();
        // SAFETY: the owner's page (not isolated: under the owner's lock).
        let ok = unsafe { *va == smp_tag(slot as u64) && *va.add(511) == !smp_tag(slot as u64) };
        if !ok {
            SMP_ERRORS.fetch_add(1, Ordering::Relaxed);
            arm64_mm::pr_err!("cma test: slot {} lost its data", slot);
        }
        // SAFETY: as above.
        unsafe { (*page.as_ptr()).private = 0 };
        __clear_page_movable(page);
        SLOTS[slot].store(0, Ordering::Relaxed);
        pa.put_page(page);
    }
    SMP_CHURNED.fetch_add(1, Ordering::Relaxed);
}

fn cma_smp_cpu(_info: usize) {
    let pa = page_alloc().expect("buddy");
    let me = smp_processor_id();
    let cma = dma_contiguous_default_area().expect("the area");
    if me == 0 {
        // Ten rounds of taking the whole area, 16 MiB at a time, then giving it back: every
        // churned page in it has to move.
        for _ in 0..10 {
            let mut held = [None; 4];
            for h in held.iter_mut() {
                let Some(p) = cma.cma_alloc(pa, 4096, 8, true) else {
                    SMP_BUSY.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let pfn = pa.page_to_pfn(p.as_ptr()).0;
                if pfn < cma.base_pfn() || pfn + 4096 > cma.base_pfn() + cma.count() {
                    SMP_ERRORS.fetch_add(1, Ordering::Relaxed);
                }
                let va = pa.page_address(p).as_mut_ptr::<u64>();
                for i in (0..4096 * 512).step_by(64) {
                    // SAFETY: the 16 MiB cma_alloc handed us.
                    unsafe { *va.add(i) = i as u64 };
                }
                *h = Some(p);
                SMP_GOT.fetch_add(1, Ordering::Relaxed);
            }
            for p in held.into_iter().flatten() {
                let va = pa.page_address(p).as_mut_ptr::<u64>();
                // SAFETY: still ours: nothing else may write it.
                if (0..4096 * 512)
                    .step_by(64)
                    .any(|i| unsafe { *va.add(i) } != i as u64)
                {
                    SMP_ERRORS.fetch_add(1, Ordering::Relaxed);
                }
                if !cma.cma_release(pa, p, 4096) {
                    SMP_ERRORS.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        STOP.store(true, Ordering::Release);
    } else {
        let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ me as u64;
        while !STOP.load(Ordering::Acquire) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            churn_slot(pa, RESIDENT + (x % (SLOTS_N - RESIDENT) as u64) as usize);
        }
    }
}

fn test_cma_smp(pa: &'static PageAlloc<'static>) {
    let Some(cma) = dma_contiguous_default_area() else {
        check!(false, "the global CMA area was reserved");
        return;
    };
    check!(
        num_online_cpus() == 4,
        "4 CPUs online: {}",
        num_online_cpus()
    );
    pa.drain_all_pages(None);
    let (free0, cma0) = (pa.nr_free_pages(), cma_free(pa));
    // Hog all but 32 MiB of what GFP_KERNEL can have, so that the churners' movable pages
    // land in the area (CMA first once it holds over half of the free memory) and migration
    // still finds pages elsewhere.
    let mut hog: Vec<usize> = Vec::with_capacity(free0 as usize);
    while pa.nr_free_pages() - cma_free(pa) > 8192 {
        let Some(p) = pa.alloc_pages(GFP_KERNEL | __GFP_NOWARN, 0) else {
            break;
        };
        hog.push(p.as_ptr() as usize);
    }
    // Empty per-CPU lists: the next refills come from the buddy, CMA first. The resident
    // pages first.
    pa.drain_all_pages(None);
    for slot in 0..RESIDENT {
        churn_slot(pa, slot);
    }
    let area = cma.base_pfn()..cma.base_pfn() + cma.count();
    let resident_in_area = SLOTS[..RESIDENT]
        .iter()
        .filter(|s| {
            let v = s.load(Ordering::Relaxed);
            v != 0 && area.contains(&pa.page_to_pfn(v as *const arm64_mm::mm::page::Page).0)
        })
        .count() as u64;
    check!(
        resident_in_area > RESIDENT as u64 / 2,
        "smp: {} of {} resident movable pages are in the area",
        resident_in_area,
        RESIDENT
    );
    on_each_cpu(cma_smp_cpu, 0);
    let in_area = SLOTS
        .iter()
        .map(|s| s.load(Ordering::Relaxed) & !ISOLATED)
        .filter(|&v| v != 0)
        .filter(|&v| area.contains(&pa.page_to_pfn(v as *const arm64_mm::mm::page::Page).0))
        .count();
    arm64_mm::pr_info!(
        "cma test: smp: {} of 40 cma_alloc (ten times the whole area) got 16 MiB ({} found every range busy), {} pages \
         migrated, {} churn steps, {} churned pages in the area at the end",
        SMP_GOT.load(Ordering::Relaxed),
        SMP_BUSY.load(Ordering::Relaxed),
        SMP_MOVED.load(Ordering::Relaxed),
        SMP_CHURNED.load(Ordering::Relaxed),
        in_area
    );
    check!(
        SMP_ERRORS.load(Ordering::Relaxed) == 0,
        "smp: no data lost, every range inside the area and released"
    );
    check!(
        SMP_GOT.load(Ordering::Relaxed) >= 30
            && SMP_MOVED.load(Ordering::Relaxed) >= resident_in_area,
        "smp: cma_alloc succeeded beside the churn, migrating the resident pages and more"
    );
    // Everything back; the resident pages' data checked (churn_slot() checks as it frees).
    for slot in 0..RESIDENT {
        churn_slot(pa, slot);
    }
    check!(
        SMP_ERRORS.load(Ordering::Relaxed) == 0,
        "smp: every resident page kept its data through its migrations"
    );
    for s in SLOTS.iter() {
        let v = s.swap(0, Ordering::Relaxed);
        if v != 0 {
            let page = NonNull::new(v as *mut arm64_mm::mm::page::Page).unwrap();
            // SAFETY: the owner's page; nobody else runs now.
            unsafe { (*page.as_ptr()).private = 0 };
            __clear_page_movable(page);
            pa.put_page(page);
        }
    }
    for &p in &hog {
        pa.__free_pages(NonNull::new(p as *mut arm64_mm::mm::page::Page).unwrap(), 0);
    }
    drop(hog);
    pa.drain_all_pages(None);
    check!(
        pa.nr_free_pages() == free0 && cma_free(pa) == cma0,
        "smp: free counts are back: {} free ({} before), {} CMA free ({} before)",
        pa.nr_free_pages(),
        free0,
        cma_free(pa),
        cma0
    );
}

#[no_mangle]
pub fn kernel_init() -> ! {
    let pa = page_alloc().expect("the buddy allocator runs");
    if boot_command_line().contains("test.cma_smp") {
        test_cma_smp(pa);
    } else if boot_command_line().contains("test.cma") {
        test_cma(pa);
    } else {
        check!(pa.nr_free_pages() > 0, "the machine booted");
    }
    ktest::finish()
}
