//! Kernel page tables (Linux: arch/arm64/mm/mmu.c). For now: the fixmap, through which the
//! kernel reads the device tree and drives the early console before the linear map exists.
//!
//! The fixmap's tables (`bm_pud`, `bm_pmd`, `bm_pte`) are static, as in Linux, and hang off
//! the live TTBR1 table (`init_pg_dir` now, `swapper_pg_dir` later).

use aarch64_cpu::registers::TTBR1_EL1;

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::clear_page::clear_page;
use super::pgtable::{
    create_pgd_mapping, flush_tlb_all, flush_tlb_kernel_page, get_entry, set_entry, table_index,
    try_create_pgd_mapping, Descriptor, PageTable, PgTableAccess, PgtableNoMem, FLUSH_BY_CALLER,
    NO_BLOCK_MAPPINGS, NO_CONT_MAPPINGS, NO_EXEC_MAPPINGS, PAGE_KERNEL, PAGE_KERNEL_RO,
    PAGE_KERNEL_ROX, PMD_SIZE, PROT_DEVICE_NGNRE, PTRS_PER_TABLE,
};

use crate::arch::aarch64::fixmap::{
    fix_to_virt, END_OF_FIXED_ADDRESSES, FIXADDR_TOP, FIX_EARLYCON_MEM_BASE, FIX_FDT, FIX_PGD,
    FIX_PMD, FIX_PTE, FIX_PUD, MAX_FDT_SIZE, MIN_FDT_ALIGN,
};
use crate::arch::aarch64::memory::{__va, kimage_voffset, kimg_to_phys, pa_symbol};
use crate::kernel::sections;
use crate::mm::addr::PgProt;
use crate::mm::debug_page_alloc::debug_pagealloc_enabled;
use crate::mm::memblock::{self, MEMBLOCK_ALLOC_NOLEAKTRACE};
use crate::mm::{PhysAddr, VirtAddr, PAGE_SIZE};

// The page tables below are `__page_aligned_bss`, as in Linux: linker.ld puts them first in
// .bss, where their 4 KiB alignment leaves no padding (which could push _end, and with it the
// pages map_kernel maps, over the next 64 KiB).

/// Linux: reserved_pg_dir — an empty table for TTBR0 when nothing should be mapped there
/// (and for TTBR1 during the switch to swapper_pg_dir; head.S's idmap code names it).
#[no_mangle]
#[allow(non_upper_case_globals)]
#[link_section = ".bss..page_aligned"]
static reserved_pg_dir: PageTable = PageTable::new();

#[link_section = ".bss..page_aligned"]
static BM_PUD: PageTable = PageTable::new();
#[link_section = ".bss..page_aligned"]
static BM_PMD: PageTable = PageTable::new();
#[link_section = ".bss..page_aligned"]
static BM_PTE: PageTable = PageTable::new();

/// The table at physical address `pa`, reached through the kernel image mapping: only
/// tables inside the image (init_pg_dir, the bm_* tables, swapper_pg_dir) qualify.
fn image_table(pa: PhysAddr) -> *mut u64 {
    (pa.as_u64() + kimage_voffset.load(core::sync::atomic::Ordering::Relaxed)) as *mut u64
}

/// The PGD currently live in TTBR1.
fn current_pgd() -> *mut u64 {
    image_table(PhysAddr(TTBR1_EL1.get_baddr()))
}

/// Linux: early_fixmap_init() — hook bm_pud/bm_pmd/bm_pte into the live kernel PGD so that
/// `__set_fixmap` and `fixmap_remap_fdt` work before any allocator exists.
pub fn early_fixmap_init() {
    let addr = fix_to_virt(END_OF_FIXED_ADDRESSES - 1);
    // Every slot must share one PUD entry and, for the page slots, the one bm_pte.
    assert_eq!(addr >> 30, (FIXADDR_TOP - 1) >> 30);
    let pgd = current_pgd();
    // SAFETY: single CPU, early boot; the PGD and the bm_* tables are inside the image,
    // mapped read-write by head.S, and these entries map nothing yet.
    unsafe {
        set_entry(
            pgd,
            table_index(addr, 0),
            Descriptor::table(pa_symbol(BM_PUD.as_ptr())),
        );
        set_entry(
            BM_PUD.as_ptr(),
            table_index(addr, 1),
            Descriptor::table(pa_symbol(BM_PMD.as_ptr())),
        );
        set_entry(
            BM_PMD.as_ptr(),
            table_index(addr, 2),
            Descriptor::table(pa_symbol(BM_PTE.as_ptr())),
        );
    }
}

/// Re-hooks the fixmap under a new PGD (paging_init copies it into swapper_pg_dir).
pub fn fixmap_pud_entry() -> (usize, Descriptor) {
    let addr = fix_to_virt(END_OF_FIXED_ADDRESSES - 1);
    (
        table_index(addr, 0),
        Descriptor::table(pa_symbol(BM_PUD.as_ptr())),
    )
}

/// Linux: __set_fixmap() — map (or, with `prot = None`, unmap) one fixmap page slot.
pub fn set_fixmap(idx: usize, phys: PhysAddr, prot: Option<PgProt>) -> u64 {
    assert!(
        idx > FIX_FDT && idx < END_OF_FIXED_ADDRESSES,
        "fixmap slot {idx} out of range"
    );
    let va = fix_to_virt(idx);
    let desc = prot.map_or(Descriptor(0), |p| {
        Descriptor::page(phys.align_down(PAGE_SIZE), p)
    });
    // SAFETY: bm_pte covers every page slot (checked in early_fixmap_init); the slot is
    // owned by its one user (the console, the page-table fixmaps), which remaps it only
    // after it stopped using the old mapping, and the TLB flush below completes the change.
    unsafe { set_entry(BM_PTE.as_ptr(), table_index(va, 3), desc) };
    flush_tlb_kernel_page(va);
    va + (phys.as_u64() & (PAGE_SIZE - 1))
}

/// Linux: earlycon_map() — the early console's registers at `phys`, mapped with device
/// attributes in the FIX_EARLYCON_MEM_BASE slot (Linux: set_fixmap_io()); returns the
/// virtual address of `phys`.
pub fn earlycon_map(phys: PhysAddr) -> u64 {
    set_fixmap(FIX_EARLYCON_MEM_BASE, phys, Some(PROT_DEVICE_NGNRE))
}

/// Why the device tree could not be mapped.
#[derive(Debug, PartialEq, Eq)]
pub enum FdtMapError {
    Null,
    Misaligned(u64),
    BadMagic(u32),
    TooBig(u64),
}

impl core::fmt::Display for FdtMapError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            Self::Null => write!(f, "no device tree pointer (x0 = 0 at entry)"),
            Self::Misaligned(pa) => write!(f, "{pa:#x} is not {MIN_FDT_ALIGN}-byte aligned"),
            Self::BadMagic(m) => write!(f, "bad magic {m:#010x} (expected 0xd00dfeed)"),
            Self::TooBig(n) => write!(f, "totalsize {n:#x} exceeds {MAX_FDT_SIZE:#x}"),
        }
    }
}

/// Maps the 2 MiB blocks covering `[base, base + len)` at the FDT slots.
fn map_fdt_blocks(base: PhysAddr, len: u64, prot: PgProt) {
    let virt = fix_to_virt(FIX_FDT);
    let mut off = 0;
    while off < len {
        let va = virt + off;
        // SAFETY: the FDT slots are PMD-aligned (FIX_FDT_SIZE is a multiple of 2 MiB and
        // FIXADDR_TOP is 2 MiB aligned), belong to the FDT alone and lie under bm_pmd.
        unsafe {
            let old = get_entry(BM_PMD.as_ptr(), table_index(va, 2));
            let new = Descriptor::block(base + off, prot);
            if old.is_valid() && old != new {
                // Break-before-make: a live block changes its permissions.
                set_entry(BM_PMD.as_ptr(), table_index(va, 2), Descriptor(0));
                flush_tlb_kernel_page(va);
            }
            set_entry(BM_PMD.as_ptr(), table_index(va, 2), new);
        }
        flush_tlb_kernel_page(va);
        off += PMD_SIZE;
    }
}

/// Linux: fixmap_remap_fdt() — map the device tree at `dt_phys` into the fixmap with `prot`
/// and return its virtual address and size. The header is mapped first so that its
/// `totalsize` says how much more to map.
pub fn fixmap_remap_fdt(
    dt_phys: PhysAddr,
    prot: PgProt,
) -> Result<(*const u8, usize), FdtMapError> {
    if dt_phys.as_u64() == 0 {
        return Err(FdtMapError::Null);
    }
    if !dt_phys.is_aligned(MIN_FDT_ALIGN) {
        return Err(FdtMapError::Misaligned(dt_phys.as_u64()));
    }
    let base = dt_phys.align_down(PMD_SIZE);
    let offset = dt_phys - base;
    map_fdt_blocks(base, offset + 8, prot);
    let virt = (fix_to_virt(FIX_FDT) + offset) as *const u8;
    // SAFETY: the first 8 bytes of the blob were just mapped (MIN_FDT_ALIGN keeps them in
    // one block); volatile because the mapping changes under the compiler's feet.
    let (magic, size) = unsafe {
        let hdr = virt.cast::<u32>();
        (
            u32::from_be(hdr.read_volatile()),
            u32::from_be(hdr.add(1).read_volatile()) as u64,
        )
    };
    if magic != 0xd00d_feed {
        return Err(FdtMapError::BadMagic(magic));
    }
    if size > MAX_FDT_SIZE {
        return Err(FdtMapError::TooBig(size));
    }
    map_fdt_blocks(base, offset + size, prot);
    Ok((virt, size as usize))
}

/// Linux: cpu_uninstall_idmap() / cpu_set_reserved_ttbr0() — once the kernel runs from its
/// virtual address, the identity map in TTBR0 goes: stray low addresses must fault.
pub fn cpu_uninstall_idmap() {
    let pa = pa_symbol(reserved_pg_dir.as_ptr());
    // SAFETY: TTBR0 points to an empty, page-aligned table; nothing runs from the idmap any
    // more (we are at the kernel's virtual address), and the TLB flush drops its entries.
    unsafe { core::arch::asm!("msr ttbr0_el1, {0}", "isb", in(reg) pa.as_u64(), options(nostack)) };
    super::pgtable::flush_tlb_all();
}

/// The fixmap slot each table level is reached through while the linear map is not live
/// (Linux: pgd_set_fixmap, pud_set_fixmap, pmd_set_fixmap, pte_set_fixmap).
const fn level_slot(level: u32) -> usize {
    match level {
        0 => FIX_PGD,
        1 => FIX_PUD,
        2 => FIX_PMD,
        _ => FIX_PTE,
    }
}

/// Table access through the fixmap (Linux: pgd_set_fixmap() and friends): for tables that
/// are not reachable through the linear map (paging_init's, before it exists) or that it
/// maps read-only (swapper_pg_dir); new tables from memblock.
pub struct FixmapTables {
    mapped: [u64; 4],
}

impl FixmapTables {
    pub const fn new() -> Self {
        Self {
            mapped: [u64::MAX; 4],
        }
    }

    /// Maps the new table page `pa` at FIX_PTE and zeroes it (the walker remaps FIX_PTE
    /// before its next use, so borrowing it is safe).
    fn zero_table(&mut self, pa: PhysAddr) {
        let va = set_fixmap(FIX_PTE, pa, Some(PAGE_KERNEL));
        self.mapped[3] = pa.as_u64();
        // SAFETY: FIX_PTE now maps the new page, writable, which memblock gave to us alone
        // (DC ZVA needs Normal memory: the fixmap maps it PAGE_KERNEL).
        unsafe { clear_page(va as *mut u8) };
    }
}

/// Linux: pgd_clear_fixmap() and friends — no stale window onto a table stays mapped.
impl Drop for FixmapTables {
    fn drop(&mut self) {
        for level in 0..4 {
            if self.mapped[level as usize] != u64::MAX {
                set_fixmap(level_slot(level), PhysAddr(0), None);
            }
        }
    }
}

impl Default for FixmapTables {
    fn default() -> Self {
        Self::new()
    }
}

impl PgTableAccess for FixmapTables {
    fn table(&mut self, level: u32, pa: PhysAddr) -> *mut u64 {
        let slot = level_slot(level);
        if self.mapped[level as usize] != pa.as_u64() {
            set_fixmap(slot, pa, Some(PAGE_KERNEL));
            self.mapped[level as usize] = pa.as_u64();
        }
        fix_to_virt(slot) as *mut u64
    }

    /// Linux: early_pgtable_alloc() — a page from memblock, zeroed through FIX_PTE.
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        let pa = memblock::memblock_phys_alloc_range(
            PAGE_SIZE,
            PAGE_SIZE,
            PhysAddr(0),
            MEMBLOCK_ALLOC_NOLEAKTRACE,
        )
        .unwrap_or_else(|| panic!("Failed to allocate page table page"));
        self.zero_table(pa);
        PAGES_FOR_TABLES.fetch_add(1, Ordering::Relaxed);
        Some(pa)
    }
}

/// Pages memblock gives paging_init's table walker at a time (Memblock::
/// phys_alloc_pgtable_pages): a 1 GiB stretch of the linear map in pages needs 512.
const PGTABLE_BATCH: u64 = 256;

/// paging_init's table access: [`FixmapTables`], with the new tables' pages taken from
/// memblock a batch at a time (ours; Linux's early_pgtable_alloc() asks once a page).
pub struct BootTables {
    fix: FixmapTables,
    /// Pages reserved for tables and not handed out yet: `left` pages from `batch`, given
    /// from the top down (the order of Linux's one early_pgtable_alloc() a table).
    batch: u64,
    left: u64,
}

impl BootTables {
    pub const fn new() -> Self {
        Self {
            fix: FixmapTables::new(),
            batch: 0,
            left: 0,
        }
    }

    /// The next page for a table: the one Linux's top-down memblock_phys_alloc_range()
    /// would give, memblock being asked once a batch ([`PGTABLE_BATCH`]).
    fn take_page(&mut self) -> PhysAddr {
        if self.left == 0 {
            let (batch, n) = memblock::MEMBLOCK
                .lock()
                .phys_alloc_pgtable_pages(PGTABLE_BATCH)
                .unwrap_or_else(|| panic!("Failed to allocate page table page"));
            (self.batch, self.left) = (batch.as_u64(), n);
        }
        self.left -= 1;
        PAGES_FOR_TABLES.fetch_add(1, Ordering::Relaxed);
        PhysAddr(self.batch + self.left * PAGE_SIZE)
    }
}

impl Default for BootTables {
    fn default() -> Self {
        Self::new()
    }
}

/// The batch's pages not handed out go back to memblock, so that `reserved` ends as Linux's
/// one allocation a table leaves it.
impl Drop for BootTables {
    fn drop(&mut self) {
        if self.left != 0 {
            memblock::memblock_phys_free(PhysAddr(self.batch), self.left * PAGE_SIZE)
                .expect("paging_init: giving back unused page-table pages");
        }
    }
}

impl PgTableAccess for BootTables {
    fn table(&mut self, level: u32, pa: PhysAddr) -> *mut u64 {
        self.fix.table(level, pa)
    }

    /// Linux: early_pgtable_alloc() — a page from memblock (this batch), zeroed.
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        let pa = self.take_page();
        self.fix.zero_table(pa);
        Some(pa)
    }

    /// early_pgtable_alloc() for a table the walker fills whole before linking it in: not
    /// zeroed (what memblock gives is overwritten).
    fn alloc_table_overwritten(&mut self) -> Option<PhysAddr> {
        Some(self.take_page())
    }
}

/// Page-table pages paging_init allocated (reported, and checked by the tests).
pub static PAGES_FOR_TABLES: AtomicU64 = AtomicU64::new(0);

/// Linux: rodata=full (CONFIG_RODATA_FULL_DEFAULT_ENABLED: the default in Linux 6.1's
/// arm64 defconfig and in Debian's) maps the linear map with pages so that permissions can
/// change page by page. The default here too, so that paging_init takes the same page
/// tables from the top of memory as Linux and what memblock places after them (the memmap,
/// the CMA area, the swiotlb buffer) lands where Linux's does; `rodata=on` maps the linear
/// map with 1 GiB / 2 MiB blocks and contiguous runs.
static RODATA_FULL: AtomicBool = AtomicBool::new(true);

/// Linux: parse_rodata() (arm64 accepts on, off is refused here, full).
fn parse_rodata(val: Option<&str>) -> crate::kernel::params::SetupResult {
    match val {
        Some("full") => RODATA_FULL.store(true, Ordering::Relaxed),
        Some("on") => RODATA_FULL.store(false, Ordering::Relaxed),
        _ => return Err("expected rodata=on or rodata=full"),
    }
    Ok(())
}
crate::early_param!("rodata", parse_rodata);

/// Linux: crash_mem_map — `crashkernel` was given, so the linear map is built with pages
/// (the region is reserved only after the zones are known, and must be unmappable then).
static CRASH_MEM_MAP: AtomicBool = AtomicBool::new(false);

/// Linux: enable_crash_mem_map() — runs for any `crashkernel` argument, valid or not;
/// reserve_crashkernel() parses it properly later.
fn enable_crash_mem_map(_val: Option<&str>) -> crate::kernel::params::SetupResult {
    CRASH_MEM_MAP.store(true, Ordering::Relaxed);
    Ok(())
}
crate::early_param!("crashkernel", enable_crash_mem_map);

/// Was `crashkernel` on the command line (parse_early_param has run)?
pub fn crash_mem_map() -> bool {
    CRASH_MEM_MAP.load(Ordering::Relaxed)
}

/// Linux: map_kernel_segment() — map one segment and register it as an early vmalloc
/// area (the image lies in the vmalloc range), with a guard page unless `no_guard`.
#[allow(clippy::too_many_arguments)]
fn map_kernel_segment(
    pgd: PhysAddr,
    start: u64,
    end: u64,
    prot: PgProt,
    flags: u32,
    no_guard: bool,
    acc: &mut BootTables,
) {
    if end <= start {
        return;
    }
    create_pgd_mapping(
        pgd,
        kimg_to_phys(VirtAddr(start)),
        start,
        end - start,
        prot,
        flags,
        acc,
    );
    use crate::mm::vmalloc::{VM_MAP, VM_NO_GUARD};
    let (vm_flags, size) = if no_guard {
        (VM_MAP | VM_NO_GUARD, end - start)
    } else {
        (VM_MAP, end - start + PAGE_SIZE)
    };
    crate::mm::vmalloc::api::vm_area_add_early(start, size, vm_flags, "paging_init");
}

/// Linux: map_kernel() — each segment with its own permissions: text read-only
/// executable, rodata read-write until mark_rodata_ro(), init text read-only executable,
/// init data and data read-write, nothing executable but text. The page below the boot
/// stack stays unmapped, so overflowing the stack faults.
fn map_kernel(pgd: PhysAddr, acc: &mut BootTables) {
    let (stext, etext, rodata, itext, itext_end, idata, idata_end, data, guard, stack, end) = (
        sections::_stext(),
        sections::_etext(),
        sections::__start_rodata(),
        sections::__inittext_begin(),
        sections::__inittext_end(),
        sections::__initdata_begin(),
        sections::__initdata_end(),
        sections::_data(),
        sections::init_stack_guard(),
        sections::init_stack(),
        sections::_end(),
    );
    map_kernel_segment(pgd, stext, etext, PAGE_KERNEL_ROX, 0, true, acc);
    map_kernel_segment(pgd, rodata, itext, PAGE_KERNEL, NO_CONT_MAPPINGS, true, acc);
    map_kernel_segment(pgd, itext, itext_end, PAGE_KERNEL_ROX, 0, true, acc);
    map_kernel_segment(pgd, idata, idata_end, PAGE_KERNEL, 0, true, acc);
    map_kernel_segment(pgd, data, guard, PAGE_KERNEL, 0, true, acc);
    // The unmapped page below the stack stays out of vmalloc's reach too.
    use crate::mm::vmalloc::{VM_MAP, VM_NO_GUARD};
    crate::mm::vmalloc::api::vm_area_add_early(
        guard,
        stack - guard,
        VM_MAP | VM_NO_GUARD,
        "stack guard",
    );
    map_kernel_segment(pgd, stack, end, PAGE_KERNEL, 0, false, acc);
    fixmap_copy(pgd, acc);
}

/// Linux: fixmap_copy() — hang the fixmap's bm_pud under the new PGD.
fn fixmap_copy(pgd: PhysAddr, acc: &mut BootTables) {
    let (idx, desc) = fixmap_pud_entry();
    let t = acc.table(0, pgd);
    // SAFETY: `t` maps swapper_pg_dir, which is not live yet.
    unsafe { set_entry(t, idx, desc) };
}

/// Linux: can_set_direct_map() — may the linear map's pages change one by one? Then it is
/// built from pages: with rodata=full, debug_pagealloc (which unmaps every free page), or
/// KFENCE (which unmaps its guard pages; Linux 6.1 asks IS_ENABLED(CONFIG_KFENCE), we ask
/// whether it will come up).
pub fn can_set_direct_map() -> bool {
    RODATA_FULL.load(Ordering::Relaxed)
        || debug_pagealloc_enabled()
        || crate::mm::kfence::kfence_enabled_early()
}

/// Linux: __kernel_map_pages() (arch/arm64/mm/pageattr.c) — set_memory_valid() over the
/// linear map: set or clear PTE_VALID in the page entries of `numpages` pages from `pfn`,
/// then (on an unmap) flush them from every CPU's TLB. debug_pagealloc calls it from the
/// page allocator, under its locks, so it takes no lock and allocates nothing: the linear
/// map was built from pages (can_set_direct_map()), every table it walks exists for good,
/// and each page's entry is its own word, written by whoever owns the page. Read through
/// the linear map, as Linux's apply_to_page_range() on init_mm.
pub fn __kernel_map_pages(pfn: crate::mm::Pfn, numpages: u64, enable: bool) {
    if !can_set_direct_map() {
        return;
    }
    let start = __va(pfn.phys()).as_u64();
    let end = start + numpages * PAGE_SIZE;
    let mut addr = start;
    while addr < end {
        let mut table = swapper_pg_dir_phys();
        let mut level = 0;
        let t = loop {
            let t: *mut u64 = __va(table).as_mut_ptr();
            if level == 3 {
                break Some(t);
            }
            // SAFETY: a live kernel table, reached through the linear map (read only).
            let d = unsafe { get_entry(t, table_index(addr, level)) };
            if !d.is_valid() || !d.is_table() {
                break None;
            }
            table = d.output_address();
            level += 1;
        };
        let table_end = (addr | (PMD_SIZE - 1)) + 1;
        let next = table_end.min(end);
        match t {
            Some(t) => {
                while addr < next {
                    // SAFETY: the entry of a page the caller owns (being freed or allocated),
                    // in a live page table that is never freed; one aligned u64, written
                    // atomically so the table walker never sees a torn descriptor.
                    unsafe {
                        let e = &*(t.add(table_index(addr, 3)) as *const AtomicU64);
                        let d = e.load(Ordering::Relaxed);
                        e.store(if enable { d | 1 } else { d & !1 }, Ordering::Relaxed);
                    }
                    addr += PAGE_SIZE;
                }
            }
            None => {
                // Not mapped with pages (a block or a hole): nothing to change here.
                addr = next;
            }
        }
    }
    if enable {
        // The new entries are visible to this CPU's walker before the caller touches
        // the pages (arm64 caches no invalid entries, so no invalidation is needed).
        super::pgtable::set_pte_barrier();
    } else {
        flush_tlb_kernel_range(start, end);
    }
}

/// Linux: __map_memblock().
fn map_memblock(
    pgd: PhysAddr,
    start: PhysAddr,
    end: PhysAddr,
    prot: PgProt,
    flags: u32,
    acc: &mut BootTables,
) {
    create_pgd_mapping(
        pgd,
        start,
        __va(start).as_u64(),
        end - start,
        prot,
        flags,
        acc,
    );
}

/// Linux: map_mem() — the linear map of every memblock memory region except NOMAP ones.
/// The kernel's text and rodata are left out of the loop, so it makes no writable alias of
/// them, and then mapped read-only and non-executable on their own. (Linux marks them
/// NOMAP for the loop; that splits a memblock region, which fails when the array is full
/// and cannot grow yet — a tree with hundreds of memory ranges — and the loop would then
/// map the kernel with a block that the read-only mapping cannot split. Subtracting the
/// range here needs no memblock change.)
fn map_mem(pgd: PhysAddr, acc: &mut BootTables) {
    let (stext, init_begin) = (sections::_stext(), sections::__init_begin());
    let kernel_start = kimg_to_phys(VirtAddr(stext));
    let kernel_end = kimg_to_phys(VirtAddr(init_begin));
    let mut flags = NO_EXEC_MAPPINGS;
    // Linux 6.1 defers the crash kernel reservation until the zones are known, so with
    // `crashkernel=` the whole linear map is built with pages.
    if can_set_direct_map() || crash_mem_map() {
        flags |= NO_BLOCK_MAPPINGS | NO_CONT_MAPPINGS;
    }
    // The walker allocates from memblock, so collect the ranges before mapping them: each
    // memory region, less the kernel's text and rodata (at most two pieces per region).
    let mut ranges = [(PhysAddr(0), PhysAddr(0)); memblock::INIT_MEMBLOCK_REGIONS + 1];
    let mut n = 0;
    for (start, end, _) in memblock::MEMBLOCK.lock().mem_ranges() {
        let pieces = [(start, end.min(kernel_start)), (start.max(kernel_end), end)];
        for (s, e) in pieces.into_iter().filter(|(s, e)| s < e) {
            if n == ranges.len() {
                panic!("map_mem: more than {} memory ranges", ranges.len());
            }
            ranges[n] = (s, e);
            n += 1;
        }
    }
    for &(start, end) in &ranges[..n] {
        map_memblock(pgd, start, end, PAGE_KERNEL, flags, acc);
    }
    map_memblock(
        pgd,
        kernel_start,
        kernel_end,
        PAGE_KERNEL_RO,
        NO_CONT_MAPPINGS | NO_EXEC_MAPPINGS,
        acc,
    );
}

core::arch::global_asm!(
    r#"
    .section .idmap.text, "ax"
    .global idmap_cpu_replace_ttbr1
/*
 * Linux: idmap_cpu_replace_ttbr1 (arch/arm64/mm/proc.S) — runs from the identity map,
 * because for a moment TTBR1 maps nothing: x0 = the new TTBR1 value. No stack is used.
 */
idmap_cpu_replace_ttbr1:
    mrs     x2, daif
    msr     daifset, #0xf
    adrp    x1, reserved_pg_dir
    msr     ttbr1_el1, x1
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    msr     ttbr1_el1, x0
    isb
    msr     daif, x2
    ret
"#
);

extern "C" {
    fn idmap_cpu_replace_ttbr1(ttbr1: u64);
}

/// Linux: cpu_install_idmap() — TTBR0 = the identity map, for code that must run from it.
fn cpu_install_idmap() {
    // SAFETY: init_idmap_pg_dir maps the kernel image at its physical address; nothing
    // else uses TTBR0, and the flush drops stale entries of the reserved table.
    unsafe {
        let pa = pa_symbol(sections::init_idmap_pg_dir() as *const u8);
        core::arch::asm!("msr ttbr0_el1, {0}", "isb", in(reg) pa.as_u64(), options(nostack));
    }
    flush_tlb_all();
}

/// Linux: cpu_replace_ttbr1() — switch TTBR1 to `pgd` through the idmap, with
/// break-before-make on the whole kernel half (TTBR1 → reserved → new).
pub fn cpu_replace_ttbr1(pgd: PhysAddr) {
    cpu_install_idmap();
    let f = pa_symbol(idmap_cpu_replace_ttbr1 as *const ()).as_u64();
    // SAFETY: `f` is the physical alias of idmap_cpu_replace_ttbr1, mapped executable by
    // the idmap just installed; it touches no memory while TTBR1 is being replaced, and
    // `pgd` maps the kernel image (map_kernel) so we return to mapped code.
    unsafe {
        let replace: extern "C" fn(u64) = core::mem::transmute(f);
        replace(pgd.as_u64());
    }
    cpu_uninstall_idmap();
}

/// Linux: paging_init() — build swapper_pg_dir (kernel segments, linear map, fixmap),
/// switch TTBR1 to it, give init_pg_dir back to memblock, let memblock grow its arrays.
pub fn paging_init() {
    let (swapper, init_pg, init_pg_end_va) = (
        sections::swapper_pg_dir(),
        sections::init_pg_dir(),
        sections::init_pg_end(),
    );
    let pgd = kimg_to_phys(VirtAddr(swapper));
    let mut acc = BootTables::new();
    let t = acc.table(0, pgd);
    // SAFETY: swapper_pg_dir is not live; FIX_PGD maps it writable.
    unsafe { core::ptr::write_bytes(t, 0, PTRS_PER_TABLE) };
    map_kernel(pgd, &mut acc);
    map_mem(pgd, &mut acc);
    // The fixmap windows close and the batch's unused pages go back to memblock before
    // anything else asks it for memory.
    drop(acc);
    cpu_replace_ttbr1(pgd);
    SWAPPER_LIVE.store(true, Ordering::Release);
    let pages = PAGES_FOR_TABLES.load(Ordering::Relaxed);
    pr_info!(
        "mm: paging_init: swapper_pg_dir at {:#x}, {} page-table pages ({} KiB) from memblock{}",
        pgd.as_u64(),
        pages,
        pages * PAGE_SIZE / 1024,
        if RODATA_FULL.load(Ordering::Relaxed) {
            ", linear map in pages (rodata=full)"
        } else if debug_pagealloc_enabled() {
            ", linear map in pages (debug_pagealloc)"
        } else if crate::mm::kfence::kfence_enabled_early() {
            ", linear map in pages (kfence)"
        } else {
            ""
        }
    );
    let _ = memblock::memblock_phys_free(kimg_to_phys(VirtAddr(init_pg)), init_pg_end_va - init_pg);
    memblock::memblock_allow_resize();
}

/// Has paging_init switched to swapper_pg_dir?
pub static SWAPPER_LIVE: AtomicBool = AtomicBool::new(false);

/// The physical address of swapper_pg_dir.
pub fn swapper_pg_dir_phys() -> PhysAddr {
    pa_symbol(sections::swapper_pg_dir() as *const u8)
}

/// Linux: update_mapping_prot() — change the permissions of a live kernel mapping.
pub fn update_mapping_prot(phys: PhysAddr, virt: u64, size: u64, prot: PgProt) {
    let _lock = FIXMAP_LOCK.lock();
    let mut acc = FixmapTables::new();
    create_pgd_mapping(
        swapper_pg_dir_phys(),
        phys,
        virt,
        size,
        prot,
        NO_CONT_MAPPINGS | FLUSH_BY_CALLER,
        &mut acc,
    );
    flush_tlb_all();
}

/// Linux: mark_rodata_ro() — rodata becomes read-only once boot no longer writes it.
pub fn mark_rodata_ro() {
    let (start, end) = (sections::__start_rodata(), sections::__inittext_begin());
    update_mapping_prot(
        kimg_to_phys(VirtAddr(start)),
        start,
        end - start,
        PAGE_KERNEL_RO,
    );
}

/// Table access for the live kernel tables once the linear map exists: every level read
/// through the linear map; the PGD (swapper_pg_dir, read-only everywhere it is mapped)
/// written only through the fixmap, and only when a new PUD table is hooked in (Linux:
/// pgd_offset_k() reads, set_swapper_pgd() writes) — so mapping a vmalloc page borrows no
/// fixmap slot and costs no TLB invalidation; new tables from memblock (the page
/// allocator later).
///
/// Holding one holds [`FIXMAP_LOCK`]: the live tables change, and the fixmap's table slots
/// are borrowed, by one CPU at a time.
pub struct SwapperTables {
    // Dropped first: the fixmap slot is cleared while the lock is still held.
    pgd: FixmapTables,
    _lock: spin::MutexGuard<'static, ()>,
}

impl SwapperTables {
    /// Takes [`FIXMAP_LOCK`] (spinning while another CPU holds it).
    pub fn new() -> Self {
        let lock = FIXMAP_LOCK.lock();
        Self {
            pgd: FixmapTables::new(),
            _lock: lock,
        }
    }
}

/// Linux: `fixmap_lock` (arm64 mmu.c, taken around __create_pgd_mapping) with
/// `init_mm.page_table_lock` (taken when a table is allocated for a kernel address): who
/// edits swapper_pg_dir or borrows the FIX_PGD..FIX_PTE slots. Taken by [`SwapperTables`]
/// and update_mapping_prot(); it nests inside vmalloc's `VMAP` lock (vunmap runs under
/// it) and outside the page allocator's locks (new tables come from the buddy). Never
/// taken by the fault handler.
static FIXMAP_LOCK: spin::Mutex<()> = spin::Mutex::new(());

impl Default for SwapperTables {
    fn default() -> Self {
        Self::new()
    }
}

impl PgTableAccess for SwapperTables {
    /// Every level through the linear map (the PGD's alias there is read-only: only
    /// read it).
    fn table(&mut self, _level: u32, pa: PhysAddr) -> *mut u64 {
        __va(pa).as_mut_ptr()
    }

    /// Linux: set_swapper_pgd() — a PGD entry through the fixmap; other levels in place.
    fn set_table_entry(&mut self, level: u32, pa: PhysAddr, idx: usize, desc: Descriptor) {
        let t = if level == 0 {
            self.pgd.table(0, pa)
        } else {
            __va(pa).as_mut_ptr()
        };
        // SAFETY: FIX_PGD maps swapper_pg_dir writable (we hold FIXMAP_LOCK); the other
        // levels are buddy or memblock pages, writable in the linear map. The entry was
        // empty, so no live mapping changes.
        unsafe { set_entry(t, idx, desc) };
    }

    /// Linux: pgd_pgtable_alloc() — a zeroed page: from the buddy once it runs (None if
    /// it has none: the vmalloc or ioremap then fails, as Linux's pte_alloc_kernel()
    /// does), from memblock before (no memory there is fatal, as in Linux).
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        if let Some(pa) = crate::mm::page_alloc::page_alloc()
            .filter(|_| PGTABLE_FROM_BUDDY.load(Ordering::Acquire))
        {
            let va = pa.get_zeroed_page(crate::mm::gfp::GFP_KERNEL)?;
            PAGES_FOR_TABLES.fetch_add(1, Ordering::Relaxed);
            return Some(crate::arch::aarch64::memory::__pa(va));
        }
        let mut mb = memblock::MEMBLOCK.lock();
        let p = mb
            .alloc(PAGE_SIZE, PAGE_SIZE)
            .unwrap_or_else(|| panic!("Failed to allocate page table page"));
        PAGES_FOR_TABLES.fetch_add(1, Ordering::Relaxed);
        Some(crate::arch::aarch64::memory::virt_to_phys(p.as_ptr()))
    }
}

/// Linux: vmemmap_populate() with vmemmap_populate_hugepages() — back
/// `[start, end)` of the vmemmap with 2 MiB blocks of memory from `nid`, mapped
/// PAGE_KERNEL. Blocks already mapped are kept.
pub fn vmemmap_populate(start: u64, end: u64, nid: i32) {
    let mut acc = SwapperTables::new();
    let pgd = swapper_pg_dir_phys();
    let mut addr = start & !(PMD_SIZE - 1);
    while addr < end {
        let leaf = super::pgtable::walk(pgd, addr, &mut acc);
        if !(leaf.desc.is_valid() && leaf.level == 2) {
            // Linux: vmemmap_alloc_block_buf() → memblock_alloc_try_nid_raw(); the struct
            // pages are initialised by memmap_init, so the block needs no zeroing.
            let pa = memblock::MEMBLOCK
                .lock()
                .phys_alloc_try_nid(PMD_SIZE, PMD_SIZE, nid)
                .unwrap_or_else(|| {
                    panic!("vmemmap: cannot allocate 2 MiB of memmap on node {}", nid)
                });
            create_pgd_mapping(pgd, pa, addr, PMD_SIZE, PAGE_KERNEL, 0, &mut acc);
        }
        addr += PMD_SIZE;
    }
}

/// Linux: vunmap_range() for kernel-image ranges — clear the leaves, then flush the TLB.
pub fn unmap_kernel_range(start: u64, end: u64) {
    vunmap_range_noflush(start, end);
    flush_tlb_all();
}

/// Linux: flush_tlb_kernel_range() — page by page for small ranges, everything for large
/// ones (Linux's MAX_TLBI_OPS threshold: 512 pages with 4 KiB pages).
pub fn flush_tlb_kernel_range(start: u64, end: u64) {
    if (end - start) >> 12 > 512 {
        flush_tlb_all();
        return;
    }
    // The cleared entries are visible to the table walkers of every CPU before the
    // invalidation (Linux: the dsb(ishst) of __flush_tlb_kernel_pgtable()'s family).
    // SAFETY: a barrier; it changes no memory.
    unsafe { core::arch::asm!("dsb ishst", options(nostack, preserves_flags)) };
    let mut va = start & !(PAGE_SIZE - 1);
    while va < end {
        // SAFETY: TLB maintenance changes no memory the compiler knows about.
        unsafe {
            core::arch::asm!("tlbi vaale1is, {0}", in(reg) (va >> 12) & ((1 << 44) - 1), options(nostack, preserves_flags))
        };
        va += PAGE_SIZE;
    }
    // SAFETY: as above.
    unsafe { core::arch::asm!("dsb ish", "isb", options(nostack, preserves_flags)) };
}

/// Linux: vmap_pages_range() — map the `n` pages `phys(0..n)` at `va` with `prot`, tables
/// from the buddy, each PTE table reached once (the caller flushes nothing: the entries
/// were empty). Fails if there is no page for a table.
pub fn vmap_pages_range(
    va: u64,
    n: usize,
    phys: &mut dyn FnMut(usize) -> PhysAddr,
    prot: PgProt,
) -> Result<(), PgtableNoMem> {
    let mut acc = SwapperTables::new();
    super::pgtable::vmap_pages(swapper_pg_dir_phys(), va, n, phys, prot, &mut acc)
}

/// Linux: ioremap_page_range() — map a physical range with `prot`, blocks where aligned.
/// Fails if there is no page for a table.
pub fn ioremap_page_range(
    va: u64,
    pa: PhysAddr,
    size: u64,
    prot: PgProt,
) -> Result<(), PgtableNoMem> {
    let mut acc = SwapperTables::new();
    try_create_pgd_mapping(
        swapper_pg_dir_phys(),
        pa,
        va,
        size,
        prot,
        NO_CONT_MAPPINGS,
        &mut acc,
    )
}

/// Linux: vmalloc_to_page()'s walk — the physical page mapped at `va`, if any.
pub fn kernel_va_to_phys(va: u64) -> Option<PhysAddr> {
    let mut acc = SwapperTables::new();
    let leaf = super::pgtable::walk(swapper_pg_dir_phys(), va, &mut acc);
    if !leaf.desc.is_valid() || (leaf.level < 3 && leaf.desc.is_table()) {
        return None;
    }
    let size = 1u64 << super::pgtable::level_shift(leaf.level);
    Some(leaf.desc.output_address() + (va & (size - 1)))
}

/// Linux: vunmap_range_noflush() — clear every leaf in `[start, end)`; the caller flushes
/// the TLB (at once, or lazily for vmalloc areas). Tables stay.
pub fn vunmap_range_noflush(start: u64, end: u64) {
    let mut acc = SwapperTables::new();
    let pgd = swapper_pg_dir_phys();
    let mut addr = start;
    while addr < end {
        let mut table = pgd;
        let mut level = 0;
        let next = loop {
            let t = acc.table(level, table);
            let idx = table_index(addr, level);
            // SAFETY: `t` is a live kernel table reached through SwapperTables.
            let d = unsafe { get_entry(t, idx) };
            let size = 1u64 << super::pgtable::level_shift(level);
            if !d.is_valid() {
                break super::pgtable::addr_end(addr, end, size);
            }
            if level == 3 || !d.is_table() {
                assert!(
                    addr & (size - 1) == 0 && addr + size <= end,
                    "unmap_kernel_range: {:#x} is inside a larger mapping",
                    addr
                );
                // SAFETY: as above; the range belongs to the caller, who no longer uses it.
                unsafe { set_entry(t, idx, Descriptor(0)) };
                break addr + size;
            }
            table = d.output_address();
            level += 1;
        };
        addr = next;
    }
}

/// Set by pgtable_init(): page-table pages come from the buddy from then on.
static PGTABLE_FROM_BUDDY: AtomicBool = AtomicBool::new(false);

/// Linux: pgtable_init() — ptlock_cache_init() and pgtable_cache_init() are no-ops for
/// arm64 with 4 KiB pages and 48-bit VA (no split ptlocks, the PGD is a page); what is left
/// is the hand-over: from here page-table pages come from the page allocator, not memblock.
pub fn pgtable_init() {
    PGTABLE_FROM_BUDDY.store(true, Ordering::Release);
}
