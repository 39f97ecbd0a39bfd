//! The Contiguous Memory Allocator. Mirrors Linux 6.1's mm/cma.c: `cma_declare_contiguous_nid`
//! reserves an area from memblock at boot (`cma: Reserved 64 MiB at 0x…`),
//! `cma_init_reserved_areas` hands its pageblocks to the buddy as MIGRATE_CMA (movable
//! allocations may use them), `cma_alloc` takes a run of its pages back — moving what
//! movable pages hold them (`alloc_contig_range`, page_alloc/contig.rs) — and `cma_release`
//! returns them. Each area has a bitmap of the pages handed out (one bit per
//! `2^order_per_bit` pages), under its own lock; `alloc_contig_range` runs under one global
//! lock (Linux's `cma_mutex`).
//!
//! The kernel's areas are [`CMA_AREAS`] (Linux: `cma_areas[]`, `cma_area_count`); the global
//! area of the DMA API is declared by `contiguous.rs` (kernel/dma/contiguous.c). Host tests
//! build their own [`CmaAreas`] over a simulated machine.
//!
//! What is different from Linux: no debugfs/sysfs statistics; the bitmap is a `Vec` from
//! the kernel heap (Linux: `bitmap_zalloc`, also after the slab is up).

pub mod contiguous;

use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::addr::{Pfn, PhysAddr, PAGE_SHIFT, PAGE_SIZE};
use super::memblock::Memblock;
use super::page_alloc::{PageAlloc, PagePtr, EBUSY, EINVAL};
use crate::include::mmzone::MIGRATE_CMA;
use crate::include::pageblock_flags::PAGEBLOCK_NR_PAGES;
use crate::kernel::printk::LineBuf;
use crate::mm::gfp::{__GFP_NOWARN, GFP_KERNEL};

/// Linux: CONFIG_CMA_AREAS (Debian's arm64 config: 7).
pub const CONFIG_CMA_AREAS: usize = 7;
/// Linux: MAX_CMA_AREAS — the areas CONFIG_CMA_AREAS allows plus the global one.
pub const MAX_CMA_AREAS: usize = 1 + CONFIG_CMA_AREAS;
/// Linux: CMA_MAX_NAME.
pub const CMA_MAX_NAME: usize = 64;
/// Linux: CMA_MIN_ALIGNMENT_PAGES — a pageblock.
pub const CMA_MIN_ALIGNMENT_PAGES: u64 = PAGEBLOCK_NR_PAGES;
/// Linux: CMA_MIN_ALIGNMENT_BYTES.
pub const CMA_MIN_ALIGNMENT_BYTES: u64 = PAGE_SIZE * CMA_MIN_ALIGNMENT_PAGES;
/// Linux: errno ENOSPC.
pub const ENOSPC: i32 = 28;
/// Linux: errno ENOMEM.
pub const ENOMEM: i32 = 12;
/// Linux: SZ_1M.
const SZ_1M: u64 = 1 << 20;
/// Linux: SZ_4G.
const SZ_4G: u64 = 1 << 32;
/// Linux: NUMA_NO_NODE.
const NUMA_NO_NODE: i32 = -1;

/// Linux: struct cma — one area.
pub struct Cma {
    /// Linux: cma->base_pfn.
    base_pfn: u64,
    /// Linux: cma->count — pages (0 once activation failed).
    count: AtomicU64,
    /// Linux: cma->order_per_bit — pages per bitmap bit, as a power of two.
    order_per_bit: u32,
    /// Linux: cma->bitmap under cma->lock (empty until cma_activate_area()).
    bitmap: spin::Mutex<Vec<u64>>,
    /// Linux: cma->name.
    name: LineBuf<CMA_MAX_NAME>,
    /// Linux: cma->reserve_pages_on_error.
    reserve_pages_on_error: bool,
}

/// Linux: cma_mutex — one alloc_contig_range() at a time.
static CMA_MUTEX: spin::Mutex<()> = spin::Mutex::new(());

impl Cma {
    /// Linux: cma_get_base().
    pub fn cma_get_base(&self) -> PhysAddr {
        Pfn(self.base_pfn).phys()
    }

    /// Linux: cma_get_size().
    pub fn cma_get_size(&self) -> u64 {
        self.count() << PAGE_SHIFT
    }

    /// Linux: cma_get_name().
    pub fn cma_get_name(&self) -> &str {
        self.name.as_str()
    }

    /// The first pfn of the area.
    pub fn base_pfn(&self) -> u64 {
        self.base_pfn
    }

    /// Pages in the area.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Linux: cma_bitmap_maxno().
    fn cma_bitmap_maxno(&self) -> u64 {
        self.count() >> self.order_per_bit
    }

    /// Linux: cma_bitmap_aligned_mask().
    fn cma_bitmap_aligned_mask(&self, align_order: u32) -> u64 {
        if align_order <= self.order_per_bit {
            0
        } else {
            (1 << (align_order - self.order_per_bit)) - 1
        }
    }

    /// Linux: cma_bitmap_aligned_offset() — where in the bitmap an `align_order`-aligned
    /// pfn falls, given the area's base.
    fn cma_bitmap_aligned_offset(&self, align_order: u32) -> u64 {
        (self.base_pfn & ((1 << align_order) - 1)) >> self.order_per_bit
    }

    /// Linux: cma_bitmap_pages_to_bits().
    fn cma_bitmap_pages_to_bits(&self, pages: u64) -> u64 {
        pages.next_multiple_of(1 << self.order_per_bit) >> self.order_per_bit
    }

    /// Pages handed out by cma_alloc() and not released.
    pub fn allocated_pages(&self) -> u64 {
        let map = self.bitmap.lock();
        let bits: u64 = map.iter().map(|w| w.count_ones() as u64).sum();
        bits << self.order_per_bit
    }

    /// Linux: cma_clear_bitmap().
    fn cma_clear_bitmap(&self, pfn: u64, count: u64) {
        let no = (pfn - self.base_pfn) >> self.order_per_bit;
        let n = self.cma_bitmap_pages_to_bits(count);
        bitmap_clear(&mut self.bitmap.lock(), no, n);
    }

    /// Linux: cma_activate_area() — the area's pages to the buddy as MIGRATE_CMA, if they all
    /// lie in one zone (alloc_contig_range() works within a zone); otherwise they are freed
    /// as ordinary pages and the area is dead (`CMA area … could not be activated`). The
    /// pages the area takes off the totals on failure are returned.
    fn cma_activate_area(&self, pa: &PageAlloc) -> u64 {
        let base = self.base_pfn;
        let count = self.count();
        let words = self.cma_bitmap_maxno().div_ceil(64) as usize;
        let zone_of = |pfn: u64| {
            // SAFETY: a pfn of the area: memblock memory, so it has a struct page.
            let p = unsafe { &*pa.pfn_to_page(Pfn(pfn)) };
            (p.page_to_nid(), p.page_zonenum())
        };
        let zone = zone_of(base);
        let one_zone = (base + 1..base + count).all(|pfn| zone_of(pfn) == zone);
        if one_zone {
            *self.bitmap.lock() = alloc::vec![0u64; words];
            let mut pfn = base;
            while pfn < base + count {
                let page = core::ptr::NonNull::new(pa.pfn_to_page(Pfn(pfn))).expect("memmap");
                pa.init_cma_reserved_pageblock(page);
                pfn += PAGEBLOCK_NR_PAGES;
            }
            return 0;
        }
        if !self.reserve_pages_on_error {
            for pfn in base..base + count {
                let page = core::ptr::NonNull::new(pa.pfn_to_page(Pfn(pfn))).expect("memmap");
                pa.free_reserved_page(page);
            }
        }
        self.count.store(0, Ordering::Relaxed);
        pr_err!(
            "cma: CMA area {} could not be activated",
            self.cma_get_name()
        );
        count
    }

    /// Linux: cma_debug_show_areas() — the free runs of the bitmap (`N@BIT` each). Linux
    /// prints it after a failed cma_alloc() only with CONFIG_CMA_DEBUG, which Debian's
    /// config leaves off; so does cma_alloc() here.
    pub fn cma_debug_show_areas(&self) {
        let map = self.bitmap.lock();
        let nbits = self.cma_bitmap_maxno();
        let mut line = LineBuf::<512>::new();
        let _ = write!(line, "cma: number of available pages: ");
        let (mut start, mut nr_total) = (0, 0);
        loop {
            let next_zero = find_next_bit(&map, nbits, start, false);
            if next_zero >= nbits {
                break;
            }
            let next_set = find_next_bit(&map, nbits, next_zero, true);
            let nr_zero = next_set - next_zero;
            let nr_part = nr_zero << self.order_per_bit;
            let plus = if nr_total != 0 { "+" } else { "" };
            let _ = write!(line, "{}{}@{}", plus, nr_part, next_zero);
            nr_total += nr_part;
            start = next_zero + nr_zero;
        }
        let _ = write!(line, "=> {} free of {} total pages", nr_total, self.count());
        pr_info!("{}", line.as_str());
    }

    /// Linux: cma_alloc() — `count` contiguous pages of the area, aligned to `2^align`
    /// pages, each an allocated order-0 page; None if no run could be had (reported unless
    /// `no_warn`). Runs whose pages will not move are skipped for the next.
    pub fn cma_alloc(
        &self,
        pa: &PageAlloc,
        count: u64,
        align: u32,
        no_warn: bool,
    ) -> Option<PagePtr> {
        // Not activated (or dead), or nothing asked: nothing, quietly.
        if self.count() == 0 || count == 0 || self.bitmap.lock().is_empty() {
            return None;
        }
        let mask = self.cma_bitmap_aligned_mask(align);
        let offset = self.cma_bitmap_aligned_offset(align);
        let bitmap_maxno = self.cma_bitmap_maxno();
        let bitmap_count = self.cma_bitmap_pages_to_bits(count);
        if bitmap_count > bitmap_maxno {
            return None;
        }
        let gfp = GFP_KERNEL | if no_warn { __GFP_NOWARN } else { 0 };
        let mut start = 0;
        let mut ret = -ENOMEM;
        let mut page = None;
        loop {
            let bitmap_no = {
                let mut map = self.bitmap.lock();
                if map.is_empty() {
                    break;
                }
                let no = bitmap_find_next_zero_area_off(
                    &map,
                    bitmap_maxno,
                    start,
                    bitmap_count,
                    mask,
                    offset,
                );
                if no >= bitmap_maxno {
                    break;
                }
                bitmap_set(&mut map, no, bitmap_count);
                no
            };
            let pfn = self.base_pfn + (bitmap_no << self.order_per_bit);
            ret = {
                let _m = CMA_MUTEX.lock();
                match pa.alloc_contig_range(pfn, pfn + count, MIGRATE_CMA, gfp) {
                    Ok(()) => 0,
                    Err(e) => e,
                }
            };
            if ret == 0 {
                page = core::ptr::NonNull::new(pa.pfn_to_page(Pfn(pfn)));
                break;
            }
            self.cma_clear_bitmap(pfn, count);
            if ret != -EBUSY {
                break;
            }
            // Try again a little further on.
            start = bitmap_no + mask + 1;
        }
        if page.is_none() && !no_warn {
            pr_err!(
                "cma: cma_alloc: {}: alloc failed, req-size: {} pages, ret: {}",
                self.cma_get_name(),
                count,
                ret
            );
            // (cma_debug_show_areas(): CONFIG_CMA_DEBUG only.)
        }
        page
    }

    /// Linux: cma_pages_valid() — do `pages` start inside the area?
    pub fn cma_pages_valid(&self, pa: &PageAlloc, pages: PagePtr, _count: u64) -> bool {
        let pfn = pa.page_to_pfn(pages.as_ptr()).0;
        pfn >= self.base_pfn && pfn < self.base_pfn + self.count()
    }

    /// Linux: cma_release() — give back `count` pages from `pages`, which cma_alloc() handed
    /// out. False (nothing done) if they are not the area's.
    pub fn cma_release(&self, pa: &PageAlloc, pages: PagePtr, count: u64) -> bool {
        if !self.cma_pages_valid(pa, pages, count) {
            return false;
        }
        let pfn = pa.page_to_pfn(pages.as_ptr()).0;
        if pfn + count > self.base_pfn + self.count() {
            return false;
        }
        pa.free_contig_range(pfn, count);
        self.cma_clear_bitmap(pfn, count);
        true
    }
}

/// Linux: cma_areas[] and cma_area_count — the areas declared at boot. Declaring goes
/// through `&self` (each slot is set once), so the kernel's table is a plain static.
pub struct CmaAreas {
    areas: [spin::Once<Cma>; MAX_CMA_AREAS],
    count: AtomicUsize,
    /// Pages of the areas reserved (Linux: totalcma_pages as cma_init_reserved_mem() counts it).
    totalcma_pages: AtomicU64,
}

impl Default for CmaAreas {
    fn default() -> Self {
        Self::new()
    }
}

impl CmaAreas {
    /// No areas.
    pub const fn new() -> Self {
        Self {
            areas: [const { spin::Once::new() }; MAX_CMA_AREAS],
            count: AtomicUsize::new(0),
            totalcma_pages: AtomicU64::new(0),
        }
    }

    /// The areas declared, in order.
    pub fn areas(&self) -> impl Iterator<Item = &Cma> {
        self.areas[..self.count.load(Ordering::Acquire)]
            .iter()
            .filter_map(|a| a.get())
    }

    /// Pages of the areas reserved.
    pub fn totalcma_pages(&self) -> u64 {
        self.totalcma_pages.load(Ordering::Relaxed)
    }

    /// Linux: cma_init_reserved_mem() — make an area of memory memblock already reserved.
    pub fn cma_init_reserved_mem(
        &self,
        mb: &Memblock,
        base: PhysAddr,
        size: u64,
        order_per_bit: u32,
        name: &str,
    ) -> Result<&Cma, i32> {
        let idx = self.count.load(Ordering::Relaxed);
        if idx == MAX_CMA_AREAS {
            pr_err!("cma: Not enough slots for CMA reserved regions!");
            return Err(-ENOSPC);
        }
        if size == 0 || !mb.is_region_reserved(base, size) {
            return Err(-EINVAL);
        }
        if !CMA_MIN_ALIGNMENT_PAGES.is_multiple_of(1 << order_per_bit) {
            return Err(-EINVAL);
        }
        if !(base.0 | size).is_multiple_of(CMA_MIN_ALIGNMENT_BYTES) {
            return Err(-EINVAL);
        }
        let mut n = LineBuf::<CMA_MAX_NAME>::new();
        if name.is_empty() {
            let _ = write!(n, "cma{}", idx);
        } else {
            let _ = write!(n, "{}", name);
        }
        let cma = self.areas[idx].call_once(|| Cma {
            base_pfn: base.pfn_down().0,
            count: AtomicU64::new(size >> PAGE_SHIFT),
            order_per_bit,
            bitmap: spin::Mutex::new(Vec::new()),
            name: n,
            reserve_pages_on_error: false,
        });
        self.count.store(idx + 1, Ordering::Release);
        self.totalcma_pages
            .fetch_add(size >> PAGE_SHIFT, Ordering::Relaxed);
        Ok(cma)
    }

    /// Linux: cma_declare_contiguous_nid() — reserve `size` bytes from memblock, at `base`
    /// if `fixed`, else anywhere below `limit` (0: no limit) aligned to at least a pageblock
    /// (CMA_MIN_ALIGNMENT_BYTES): above 4 GiB bottom-up first if memory reaches that far,
    /// else top-down from `base`. Prints Linux's `cma: Reserved N MiB at 0x…` or `cma: Failed to reserve N MiB`.
    #[allow(clippy::too_many_arguments)]
    pub fn cma_declare_contiguous_nid(
        &self,
        mb: &mut Memblock,
        base: u64,
        size: u64,
        limit: u64,
        alignment: u64,
        order_per_bit: u32,
        fixed: bool,
        name: &str,
        nid: i32,
    ) -> Result<&Cma, i32> {
        let r = self.declare(
            mb,
            base,
            size,
            limit,
            alignment,
            order_per_bit,
            fixed,
            name,
            nid,
        );
        match &r {
            Ok(c) => pr_info!(
                "cma: Reserved {} MiB at {:#018x}",
                c.cma_get_size() / SZ_1M,
                c.cma_get_base().0
            ),
            Err((_, Some(size))) => pr_err!("cma: Failed to reserve {} MiB", size / SZ_1M),
            // Rejected before anything was tried: Linux returns without a line.
            Err((_, None)) => {}
        }
        r.map_err(|(e, _)| e)
    }

    /// cma_declare_contiguous_nid() without its last line: the area, or the error and the
    /// size the `Failed to reserve` line reports (aligned, as Linux reports it; None where
    /// Linux returns without that line).
    #[allow(clippy::too_many_arguments)]
    fn declare(
        &self,
        mb: &mut Memblock,
        mut base: u64,
        mut size: u64,
        mut limit: u64,
        alignment: u64,
        order_per_bit: u32,
        mut fixed: bool,
        name: &str,
        nid: i32,
    ) -> Result<&Cma, (i32, Option<u64>)> {
        let memblock_end = mb.end_of_dram().0;
        // arm64 has no highmem: high_memory is the end of the linear map.
        let highmem_start = memblock_end;
        if self.count.load(Ordering::Relaxed) == MAX_CMA_AREAS {
            pr_err!("cma: Not enough slots for CMA reserved regions!");
            return Err((-ENOSPC, None));
        }
        if size == 0 {
            return Err((-EINVAL, None));
        }
        if alignment != 0 && !alignment.is_power_of_two() {
            return Err((-EINVAL, None));
        }
        let alignment = alignment.max(CMA_MIN_ALIGNMENT_BYTES);
        if fixed && base & (alignment - 1) != 0 {
            pr_err!(
                "cma: Region at {:#018x} must be aligned to {:#018x} bytes",
                base,
                alignment
            );
            return Err((-EINVAL, Some(size)));
        }
        base = base.next_multiple_of(alignment);
        size = size.next_multiple_of(alignment);
        limit &= !(alignment - 1);
        if base == 0 {
            fixed = false;
        }
        if !(size >> PAGE_SHIFT).is_multiple_of(1 << order_per_bit) {
            return Err((-EINVAL, None));
        }
        if fixed && base < highmem_start && base + size > highmem_start {
            pr_err!(
                "cma: Region at {:#018x} defined on low/high memory boundary ({:#018x})",
                base,
                highmem_start
            );
            return Err((-EINVAL, Some(size)));
        }
        if limit == 0 || limit > memblock_end {
            limit = memblock_end;
        }
        if base + size > limit {
            pr_err!(
                "cma: Size ({:#018x}) of region at {:#018x} exceeds limit ({:#018x})",
                size,
                base,
                limit
            );
            return Err((-EINVAL, Some(size)));
        }
        if fixed {
            if mb.is_region_reserved(PhysAddr(base), size)
                || mb.reserve(PhysAddr(base), size).is_err()
            {
                return Err((-EBUSY, Some(size)));
            }
        } else {
            let mut addr = None;
            if base < highmem_start && limit > highmem_start {
                addr = mb.alloc_range_nid(
                    size,
                    alignment,
                    PhysAddr(highmem_start),
                    PhysAddr(limit),
                    nid,
                    true,
                );
                limit = highmem_start;
            }
            // Above 4 GiB bottom-up first, away from the DMA zones, if memory goes there.
            if addr.is_none() && !mb.bottom_up() && memblock_end >= SZ_4G + size {
                mb.set_bottom_up(true);
                addr = mb.alloc_range_nid(
                    size,
                    alignment,
                    PhysAddr(SZ_4G),
                    PhysAddr(limit),
                    nid,
                    true,
                );
                mb.set_bottom_up(false);
            }
            if addr.is_none() {
                addr =
                    mb.alloc_range_nid(size, alignment, PhysAddr(base), PhysAddr(limit), nid, true);
            }
            base = addr.ok_or((-ENOMEM, Some(size)))?.0;
            // kmemleak scans/reads tracked objects for pointers to other objects, but
            // this area is not for it to read (Linux: kmemleak_ignore_phys(addr)).
            crate::mm::kmemleak::kmemleak_ignore_phys(base);
        }
        match self.cma_init_reserved_mem(mb, PhysAddr(base), size, order_per_bit, name) {
            Ok(c) => Ok(c),
            Err(e) => {
                let _ = mb.phys_free(PhysAddr(base), size);
                Err((e, Some(size)))
            }
        }
    }

    /// Linux: cma_declare_contiguous() — on any node.
    #[allow(clippy::too_many_arguments)]
    pub fn cma_declare_contiguous(
        &self,
        mb: &mut Memblock,
        base: u64,
        size: u64,
        limit: u64,
        alignment: u64,
        order_per_bit: u32,
        fixed: bool,
        name: &str,
    ) -> Result<&Cma, i32> {
        self.cma_declare_contiguous_nid(
            mb,
            base,
            size,
            limit,
            alignment,
            order_per_bit,
            fixed,
            name,
            NUMA_NO_NODE,
        )
    }

    /// Linux: cma_init_reserved_areas() — activate every area (after the buddy is up and
    /// deferred struct pages are initialised). Areas that cannot be activated are taken off
    /// `pa`'s totalcma_pages.
    pub fn cma_init_reserved_areas(&self, pa: &PageAlloc) {
        for cma in self.areas() {
            let lost = cma.cma_activate_area(pa);
            if lost != 0 {
                self.totalcma_pages.fetch_sub(lost, Ordering::Relaxed);
                pa.totalcma_pages_add(-(lost as i64));
            }
        }
    }
}

// ----- bitmaps (lib/bitmap.c, lib/find_bit.c), over u64 words

/// Linux: find_next_zero_bit() / find_next_bit() — the first bit from `start` below
/// `size` equal to `set`, or `size`.
fn find_next_bit(map: &[u64], size: u64, start: u64, set: bool) -> u64 {
    let mut i = start;
    while i < size {
        let w = map[(i / 64) as usize];
        let w = if set { w } else { !w };
        let w = w >> (i % 64);
        if w == 0 {
            i = (i / 64 + 1) * 64;
            continue;
        }
        i += w.trailing_zeros() as u64;
        return i.min(size);
    }
    size
}

/// Linux: bitmap_find_next_zero_area_off() — the first run of `nr` zero bits from `start`
/// whose index plus `align_offset` is aligned to `align_mask + 1`; a value past `size - nr`
/// if none.
pub fn bitmap_find_next_zero_area_off(
    map: &[u64],
    size: u64,
    mut start: u64,
    nr: u64,
    align_mask: u64,
    align_offset: u64,
) -> u64 {
    loop {
        let mut index = find_next_bit(map, size, start, false);
        index = ((index + align_offset + align_mask) & !align_mask) - align_offset;
        let end = index + nr;
        if end > size {
            return end;
        }
        let i = find_next_bit(map, end, index, true);
        if i < end {
            start = i + 1;
            continue;
        }
        return index;
    }
}

/// Linux: bitmap_set().
pub fn bitmap_set(map: &mut [u64], start: u64, nr: u64) {
    for b in start..start + nr {
        map[(b / 64) as usize] |= 1 << (b % 64);
    }
}

/// Linux: bitmap_clear().
pub fn bitmap_clear(map: &mut [u64], start: u64, nr: u64) {
    for b in start..start + nr {
        map[(b / 64) as usize] &= !(1 << (b % 64));
    }
}

// ----- the kernel's areas

/// The kernel's CMA areas (Linux: cma_areas[]).
pub static CMA_AREAS: CmaAreas = CmaAreas::new();

/// Linux: cma_init_reserved_areas() (a core_initcall) over the kernel's areas.
pub fn cma_init_reserved_areas() {
    if let Some(pa) = super::page_alloc::page_alloc() {
        CMA_AREAS.cma_init_reserved_areas(pa);
    }
}

#[cfg(test)]
mod tests;
