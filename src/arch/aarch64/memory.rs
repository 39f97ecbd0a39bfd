//! The arm64 virtual memory layout (Linux 6.1: arch/arm64/include/asm/memory.h), for 4 KiB
//! pages and 48-bit virtual addresses, and the address conversions that depend on it.
//!
//! ```text
//!   0xffff_ffff_ffff_ffff +--------------------------------+
//!                         | (guard)                    2 MiB|
//!   0xffff_fe00_0000_0000 +--------------------------------+ VMEMMAP_END
//!                         | vmemmap: struct page array  2 TiB|
//!   0xffff_fc00_0000_0000 +--------------------------------+ VMEMMAP_START
//!                         | (8 MiB gap)                     |
//!   0xffff_fbff_ff80_0000 +--------------------------------+ PCI_IO_END
//!                         | PCI I/O                   16 MiB|
//!   0xffff_fbff_fe80_0000 +--------------------------------+ PCI_IO_START
//!                         | (8 MiB gap)                     |
//!   0xffff_fbff_fe00_0000 +--------------------------------+ FIXADDR_TOP
//!                         | fixmap (FDT, early console)     |
//!                         | ...                             |
//!   0xffff_fbff_f000_0000 +--------------------------------+ VMALLOC_END
//!                         | vmalloc (and ioremap)  ~125 TiB |
//!   0xffff_8000_0800_0000 +--------------------------------+ VMALLOC_START = KIMAGE_VADDR
//!                         |   the kernel image: _text.._end |
//!   0xffff_8000_0000_0000 +--------------------------------+ MODULES_VADDR = _PAGE_END(48)
//!                         | modules                  128 MiB|
//!                         +--------------------------------+
//!                         | linear map of all RAM  128 TiB  |
//!   0xffff_0000_0000_0000 +--------------------------------+ PAGE_OFFSET
//! ```
//! (The image sits at the start of the vmalloc range, as in Linux 6.1; the modules area
//! is the 128 MiB below it.)

use core::sync::atomic::{AtomicU64, Ordering};

use crate::mm::{PhysAddr, VirtAddr};

/// Linux: VA_BITS (CONFIG_ARM64_VA_BITS_48).
pub const VA_BITS: u32 = 48;
/// Linux: PAGE_OFFSET — start of the linear map.
pub const PAGE_OFFSET: u64 = 0xffff_0000_0000_0000;
/// Linux: _PAGE_END(VA_BITS_MIN) — end of the linear map.
pub const PAGE_END: u64 = 0xffff_8000_0000_0000;
/// Linux: MODULES_VSIZE (128 MiB in 6.1).
pub const MODULES_VSIZE: u64 = 128 << 20;
/// Linux: MODULES_VADDR.
pub const MODULES_VADDR: u64 = PAGE_END;
/// Linux: MODULES_END.
pub const MODULES_END: u64 = MODULES_VADDR + MODULES_VSIZE;
/// Linux: KIMAGE_VADDR — where the kernel image is linked.
pub const KIMAGE_VADDR: u64 = MODULES_END;
/// Linux: THREAD_SIZE — each secondary's (idle task's) stack (the boot CPU's is the
/// linker script's INIT_STACK_SIZE).
pub const THREAD_SIZE: u64 = 16 * 1024;
/// Linux: STRUCT_PAGE_MAX_SHIFT (a 64-byte struct page).
pub const STRUCT_PAGE_MAX_SHIFT: u32 = 6;
/// Linux: VMEMMAP_SHIFT.
pub const VMEMMAP_SHIFT: u32 = 12 - STRUCT_PAGE_MAX_SHIFT;
/// Linux: VMEMMAP_SIZE.
pub const VMEMMAP_SIZE: u64 = (PAGE_END - PAGE_OFFSET) >> VMEMMAP_SHIFT;
/// Linux: VMEMMAP_START.
pub const VMEMMAP_START: u64 = 0u64.wrapping_sub(1 << (VA_BITS - VMEMMAP_SHIFT));
/// Linux: VMEMMAP_END.
pub const VMEMMAP_END: u64 = VMEMMAP_START + VMEMMAP_SIZE;
/// Linux: PCI_IO_SIZE.
pub const PCI_IO_SIZE: u64 = 16 << 20;
/// Linux: PCI_IO_END.
pub const PCI_IO_END: u64 = VMEMMAP_START - (8 << 20);
/// Linux: PCI_IO_START.
pub const PCI_IO_START: u64 = PCI_IO_END - PCI_IO_SIZE;
/// Linux: FIXADDR_TOP.
pub const FIXADDR_TOP: u64 = VMEMMAP_START - (32 << 20);
/// Linux: VMALLOC_START.
pub const VMALLOC_START: u64 = MODULES_END;
/// Linux: VMALLOC_END (VMEMMAP_START - SZ_256M in 6.1).
pub const VMALLOC_END: u64 = VMEMMAP_START - (256 << 20);
// mm/percpu.rs spells VMALLOC_TOTAL out (mm/ does not import arch/); it must match this layout.
const _: () = assert!(crate::mm::percpu::VMALLOC_TOTAL == VMALLOC_END - VMALLOC_START);
/// Linux: MIN_KIMG_ALIGN — the Image must be loaded 2 MiB aligned.
pub const MIN_KIMG_ALIGN: u64 = 2 << 20;

/// Linux: kimage_voffset — virtual minus physical address of the kernel image.
/// Written once by head.S before any Rust code runs.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static kimage_voffset: AtomicU64 = AtomicU64::new(0);

/// Linux: __pa_symbol() — the physical address of something in the kernel image.
pub fn pa_symbol<T>(p: *const T) -> PhysAddr {
    PhysAddr(p as u64 - kimage_voffset.load(Ordering::Relaxed))
}

/// Linux: __kimg_to_phys() for a typed virtual address.
pub fn kimg_to_phys(va: VirtAddr) -> PhysAddr {
    pa_symbol(va.as_ptr::<u8>())
}

/// Linux: memstart_addr — the physical address the linear map starts at (PHYS_OFFSET).
/// Set by arm64_memblock_init(); `u64::MAX` (Linux: -1) until then.
#[allow(non_upper_case_globals)]
pub static memstart_addr: AtomicU64 = AtomicU64::new(u64::MAX);

/// Linux: PHYS_OFFSET.
pub fn phys_offset() -> u64 {
    let off = memstart_addr.load(Ordering::Relaxed);
    debug_assert!(
        off != u64::MAX,
        "PHYS_OFFSET used before arm64_memblock_init"
    );
    off
}

/// Linux: __is_lm_address() — is `va` in the linear map?
pub const fn is_lm_address(va: u64) -> bool {
    va >= PAGE_OFFSET && va < PAGE_END
}

/// Linux: __va() / __phys_to_virt() — the linear-map address of `pa`.
pub fn __va(pa: PhysAddr) -> VirtAddr {
    // Linux's memstart_addr is an s64 that KASLR may make negative: wrap, as C does.
    VirtAddr(pa.as_u64().wrapping_sub(phys_offset()) | PAGE_OFFSET)
}

/// Linux: __pa() / __virt_to_phys() — for linear-map and kernel-image addresses.
pub fn __pa(va: VirtAddr) -> PhysAddr {
    if is_lm_address(va.as_u64()) {
        PhysAddr((va.as_u64() & !PAGE_OFFSET).wrapping_add(phys_offset()))
    } else {
        kimg_to_phys(va)
    }
}

/// Linux: phys_to_virt().
pub fn phys_to_virt(pa: PhysAddr) -> *mut u8 {
    __va(pa).as_mut_ptr()
}

/// Linux: virt_to_phys().
pub fn virt_to_phys<T>(p: *const T) -> PhysAddr {
    __pa(VirtAddr(p as u64))
}

/// Linux: lm_alias() — the linear-map alias of a kernel-image address.
pub fn lm_alias<T>(p: *const T) -> VirtAddr {
    __va(pa_symbol(p))
}

/// Linux: high_memory — the linear-map address just past the end of RAM.
#[allow(non_upper_case_globals)]
pub static high_memory: AtomicU64 = AtomicU64::new(0);

/// Linux: vmemmap — `struct page` of pfn N is `vmemmap + N`; the array is offset so that
/// the first pfn of the linear map lands on VMEMMAP_START.
pub fn vmemmap() -> *mut crate::mm::page::Page {
    // memstart_addr >> PAGE_SHIFT as Linux's s64: arithmetic, so a memstart that KASLR
    // moved below 0 puts vmemmap above VMEMMAP_START.
    let base = ((phys_offset() as i64) >> crate::mm::PAGE_SHIFT) as u64;
    (VMEMMAP_START.wrapping_sub(base.wrapping_mul(crate::mm::page::STRUCT_PAGE_SIZE)))
        as *mut crate::mm::page::Page
}

/// Linux: pfn_to_page() (SPARSEMEM_VMEMMAP). Only pfns in present sections are backed.
pub fn pfn_to_page(pfn: crate::mm::Pfn) -> *mut crate::mm::page::Page {
    vmemmap().wrapping_add(pfn.0 as usize)
}

/// Linux: page_to_pfn().
pub fn page_to_pfn(page: *const crate::mm::page::Page) -> crate::mm::Pfn {
    crate::mm::Pfn((page as u64).wrapping_sub(vmemmap() as u64) / crate::mm::page::STRUCT_PAGE_SIZE)
}

/// Linux: page_address() — every page is in the linear map on arm64 (no highmem).
pub fn page_address(page: *const crate::mm::page::Page) -> VirtAddr {
    __va(page_to_pfn(page).phys())
}

/// Linux: virt_to_page() for linear-map and kernel-image addresses.
pub fn virt_to_page<T>(p: *const T) -> *mut crate::mm::page::Page {
    pfn_to_page(virt_to_phys(p).pfn_down())
}
