//! arm64's KFENCE primitives (Linux 6.1: arch/arm64/include/asm/kfence.h): a pool page is
//! protected by clearing its valid bit in the linear map — which KFENCE has paging_init()
//! build from pages (mmu.rs: can_set_direct_map()) —, the same set_memory_valid() that
//! debug_pagealloc's `__kernel_map_pages()` uses.

use super::mmu::__kernel_map_pages;
use crate::arch::aarch64::memory::__pa;
use crate::mm::VirtAddr;

/// Linux: kfence_protect_page() — unmap (`protect`) or map again the linear-map page at
/// `addr` (set_memory_valid(addr, 1, !protect)); the TLB is flushed after an unmap.
pub fn kfence_protect_page(addr: usize, protect: bool) -> bool {
    __kernel_map_pages(__pa(VirtAddr(addr as u64)).pfn_down(), 1, !protect);
    true
}
