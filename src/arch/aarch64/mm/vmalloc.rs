//! arm64's side of vmalloc (Linux: arch/arm64/include/asm/vmalloc.h and the arch parts of
//! asm/pgtable.h that mm/vmalloc.c and mm/ioremap.c use): the range, the protections and
//! the page-table updates, handed to the generic allocator as its `VmallocArch` hooks.

use super::mmu::{
    flush_tlb_kernel_range, ioremap_page_range, kernel_va_to_phys, vmap_pages_range,
    vunmap_range_noflush,
};
use super::pgtable::{PAGE_KERNEL, PROT_DEVICE_NGNRE};
use crate::arch::aarch64::memory::{__va, VMALLOC_END, VMALLOC_START};
use crate::arch::aarch64::percpu::smp_processor_id;
use crate::mm::vmalloc::api::VmallocArch;

/// What mm/vmalloc asks of arm64 (registered by start_kernel).
pub static VMALLOC_ARCH: VmallocArch = VmallocArch {
    vmalloc_start: VMALLOC_START,
    vmalloc_end: VMALLOC_END,
    page_kernel: PAGE_KERNEL,
    prot_device: PROT_DEVICE_NGNRE,
    va: __va,
    vmap_pages_range: |va, n, phys, prot| vmap_pages_range(va, n, phys, prot).is_ok(),
    ioremap_page_range: |va, pa, size, prot| ioremap_page_range(va, pa, size, prot).is_ok(),
    vunmap_range_noflush,
    flush_tlb_kernel_range,
    kernel_va_to_phys,
    smp_processor_id,
};
