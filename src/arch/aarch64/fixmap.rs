//! The fixmap: compile-time virtual slots below FIXADDR_TOP for pages that must be mapped
//! before the linear map exists (Linux: arch/arm64/include/asm/fixmap.h, and the FDT limits
//! of asm/boot.h).

use crate::mm::{PAGE_SHIFT, PAGE_SIZE};

pub use super::memory::FIXADDR_TOP;

/// Linux: MAX_FDT_SIZE.
pub const MAX_FDT_SIZE: u64 = 2 << 20;
/// Linux: MIN_FDT_ALIGN.
pub const MIN_FDT_ALIGN: u64 = 8;
/// Linux: FIX_FDT_SIZE — room for a 2 MiB blob at any offset inside a 2 MiB block.
const FIX_FDT_SIZE: u64 = MAX_FDT_SIZE + (2 << 20);

/// Linux: enum fixed_addresses. Slot N is the page at FIXADDR_TOP - N * PAGE_SIZE.
pub const FIX_HOLE: usize = 0;
pub const FIX_FDT_END: usize = 1;
pub const FIX_FDT: usize = FIX_FDT_END + (FIX_FDT_SIZE / PAGE_SIZE) as usize - 1;
pub const FIX_EARLYCON_MEM_BASE: usize = FIX_FDT + 1;
pub const FIX_PTE: usize = FIX_EARLYCON_MEM_BASE + 1;
pub const FIX_PMD: usize = FIX_PTE + 1;
pub const FIX_PUD: usize = FIX_PMD + 1;
pub const FIX_PGD: usize = FIX_PUD + 1;
pub const END_OF_FIXED_ADDRESSES: usize = FIX_PGD + 1;

/// Linux: FIXADDR_SIZE.
pub const FIXADDR_SIZE: u64 = (END_OF_FIXED_ADDRESSES as u64) << PAGE_SHIFT;
/// Linux: FIXADDR_START.
pub const FIXADDR_START: u64 = FIXADDR_TOP - FIXADDR_SIZE;

/// Linux: __fix_to_virt().
pub const fn fix_to_virt(idx: usize) -> u64 {
    FIXADDR_TOP - ((idx as u64) << PAGE_SHIFT)
}
