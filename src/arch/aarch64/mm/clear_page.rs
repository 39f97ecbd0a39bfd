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
        if block <= crate::mm::PAGE_SIZE as usize / 4 {
            // Four blocks a turn (Linux's loop does one): 2.5 instructions a block instead
            // of 4. A page is a whole number of four-block runs (both are powers of two).
            // SAFETY: the caller's page, [p, end), zeroed block by block as above.
            unsafe {
                core::arch::asm!(
                    "2:",
                    "dc zva, {p}",
                    "add {p}, {p}, {b}",
                    "dc zva, {p}",
                    "add {p}, {p}, {b}",
                    "dc zva, {p}",
                    "add {p}, {p}, {b}",
                    "dc zva, {p}",
                    "add {p}, {p}, {b}",
                    "cmp {p}, {e}",
                    "b.lo 2b",
                    p = inout(reg) p => _,
                    b = in(reg) block,
                    e = in(reg) end,
                    options(nostack)
                )
            };
            return;
        }
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
