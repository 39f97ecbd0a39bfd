//! Linux: arch/arm64/lib/clear_page.S — zeroing a whole page with DC ZVA: what the page
//! allocator's `__GFP_ZERO` / init_on_alloc, swiotlb's buffer and the early page-table
//! pages use.

/// Linux: clear_page() (arch/arm64/lib/clear_page.S) — DC ZVA over the page in blocks of
/// DCZID_EL0's size, or, when DC ZVA is prohibited (DZP), stores of zero pairs.
///
/// # Safety
/// `page` is the linear-map address of a whole page nobody else uses, mapped writable.
pub unsafe fn clear_page(page: *mut u8) {
    let dczid: u64;
    // SAFETY: DCZID_EL0 is readable at EL1; it only describes DC ZVA.
    unsafe { core::arch::asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack)) };
    let end = page as usize + crate::mm::PAGE_SIZE as usize;
    let mut p = page as usize;
    if dczid & (1 << 4) == 0 {
        let block = 4usize << (dczid & 0xf);
        while p < end {
            // SAFETY: the caller's page: DC ZVA zeroes the naturally aligned block holding
            // `p`, which lies inside the page (blocks are at most 2 KiB, pages 4 KiB).
            unsafe { core::arch::asm!("dc zva, {}", in(reg) p, options(nostack)) };
            p += block;
        }
    } else {
        while p < end {
            // SAFETY: 64 bytes of the caller's page.
            unsafe {
                core::arch::asm!(
                    "stp xzr, xzr, [{0}]",
                    "stp xzr, xzr, [{0}, #16]",
                    "stp xzr, xzr, [{0}, #32]",
                    "stp xzr, xzr, [{0}, #48]",
                    in(reg) p,
                    options(nostack)
                )
            };
            p += 64;
        }
    }
}
