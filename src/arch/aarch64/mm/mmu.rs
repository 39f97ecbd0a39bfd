//! Kernel page tables (Linux: arch/arm64/mm/mmu.c). For now: the fixmap, through which the
//! kernel reads the device tree and drives the early console before the linear map exists.
//!
//! The fixmap's tables (`bm_pud`, `bm_pmd`, `bm_pte`) are static, as in Linux, and hang off
//! the live TTBR1 table (`init_pg_dir` now, `swapper_pg_dir` later).

use aarch64_cpu::registers::TTBR1_EL1;

use super::pgtable::{
    flush_tlb_kernel_page, get_entry, set_entry, table_index, Descriptor, PageTable, PgProt,
    PMD_SIZE,
};
use crate::arch::aarch64::memory::{kimage_voffset, pa_symbol, FIXADDR_TOP};
use crate::mm::{PhysAddr, PAGE_SHIFT, PAGE_SIZE};

/// Linux: MAX_FDT_SIZE.
pub const MAX_FDT_SIZE: u64 = 2 << 20;
/// Linux: MIN_FDT_ALIGN.
pub const MIN_FDT_ALIGN: u64 = 8;
/// Linux: FIX_FDT_SIZE — room for a 2 MiB blob at any offset inside a 2 MiB block.
const FIX_FDT_SIZE: u64 = MAX_FDT_SIZE + (2 << 20);

/// Linux: enum fixed_addresses. Slot N is the page at FIXADDR_TOP - N * PAGE_SIZE.
pub mod fixed_addresses {
    pub const FIX_HOLE: usize = 0;
    pub const FIX_FDT_END: usize = 1;
    pub const FIX_FDT: usize = FIX_FDT_END + (super::FIX_FDT_SIZE / super::PAGE_SIZE) as usize - 1;
    pub const FIX_EARLYCON_MEM_BASE: usize = FIX_FDT + 1;
    pub const FIX_PTE: usize = FIX_EARLYCON_MEM_BASE + 1;
    pub const FIX_PMD: usize = FIX_PTE + 1;
    pub const FIX_PUD: usize = FIX_PMD + 1;
    pub const FIX_PGD: usize = FIX_PUD + 1;
    pub const END_OF_FIXED_ADDRESSES: usize = FIX_PGD + 1;
}
use fixed_addresses::*;

/// Linux: __fix_to_virt().
pub const fn fix_to_virt(idx: usize) -> u64 {
    FIXADDR_TOP - ((idx as u64) << PAGE_SHIFT)
}

/// Linux: reserved_pg_dir — an empty table for TTBR0 when nothing should be mapped there.
static RESERVED_PG_DIR: PageTable = PageTable::new();

static BM_PUD: PageTable = PageTable::new();
static BM_PMD: PageTable = PageTable::new();
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
    let pa = pa_symbol(RESERVED_PG_DIR.as_ptr());
    // SAFETY: TTBR0 points to an empty, page-aligned table; nothing runs from the idmap any
    // more (we are at the kernel's virtual address), and the TLB flush drops its entries.
    unsafe { core::arch::asm!("msr ttbr0_el1, {0}", "isb", in(reg) pa.as_u64(), options(nostack)) };
    super::pgtable::flush_tlb_all();
}
