//! memtest: the boot-time RAM test behind `memtest=`. Mirrors Linux 6.1's mm/memtest.c.
//!
//! Before the page allocator takes over, `early_memtest()` writes a pattern into every free
//! 8-byte word memblock knows of, reads it back, and reserves (`memblock_reserve`) every run
//! of words that did not keep it, so the buddy allocator never hands broken RAM out. Each
//! pass uses one pattern; the passes walk the table from the N-th entry down to entry 0,
//! which is 0, so free memory is left zeroed.
//!
//! ```text
//! memtest=N:  pass N-1, N-2, ..., 0   pattern = PATTERNS[pass % 17]
//!   do_one_pass:  for each free range of memblock, clamped to [start, end)
//!     memtest:      write every word, then read every word; coalesce bad words into runs
//!       reserve_bad_mem:  print the run and memblock_reserve() it
//! ```
//!
//! Linux stores and loads through `__va()`; here memory is reached through the memblock
//! instance's own `phys_to_virt` hook, behind the small [`MemtestAccess`] trait. The trait is
//! the seam a host test needs to stand in for faulty RAM (ordinary memory never is), and
//! costs nothing in the kernel: it is generic, so [`LinearMap`] is inlined.
//!
//! Differences from Linux: a bad word at physical address 0 or 8 is reported (Linux uses
//! `start_bad == 0` as "no bad run yet" and so misses those), and memblock's free ranges are
//! re-walked from where the last one ended instead of resuming a `u64` iterator index, since
//! a reservation made while testing a range changes the list under the iterator.

use core::sync::atomic::{AtomicU32, Ordering};
use core::{fmt, mem};

use super::addr::{align_up, PhysAddr};
use super::memblock::{Memblock, MemblockFlags, MEMBLOCK};
use crate::include::numa::NUMA_NO_NODE;
use crate::kernel::params::{parse_u64, SetupResult};

/// Linux: patterns[] — one per pass, walked from the last entry used down to entry 0.
pub const PATTERNS: [u64; 17] = [
    // The first entry has to be 0, so memtest leaves free memory zeroed.
    0,
    0xffff_ffff_ffff_ffff,
    0x5555_5555_5555_5555,
    0xaaaa_aaaa_aaaa_aaaa,
    0x1111_1111_1111_1111,
    0x2222_2222_2222_2222,
    0x4444_4444_4444_4444,
    0x8888_8888_8888_8888,
    0x3333_3333_3333_3333,
    0x6666_6666_6666_6666,
    0x9999_9999_9999_9999,
    0xcccc_cccc_cccc_cccc,
    0x7777_7777_7777_7777,
    0xbbbb_bbbb_bbbb_bbbb,
    0xdddd_dddd_dddd_dddd,
    0xeeee_eeee_eeee_eeee,
    // "LINUXrlz" in memory order (the log prints it byte-swapped, so it reads backwards).
    0x7a6c_7258_554e_494c,
];

/// The unit memtest writes and checks (Linux: `sizeof(pattern)`).
const INCR: u64 = mem::size_of::<u64>() as u64;

/// Linux: memtest_pattern — the number of passes; 0 (the default) turns memtest off.
static MEMTEST_PATTERN: AtomicU32 = AtomicU32::new(0);

/// The number of passes `memtest=` asked for (0: memtest is off).
pub fn memtest_pattern() -> u32 {
    MEMTEST_PATTERN.load(Ordering::Relaxed)
}

/// Linux: parse_memtest() — `memtest` alone runs every pattern once, `memtest=N` runs N
/// passes (kstrtouint base 0: decimal, `0x` hex or `0` octal). Anything else is an error,
/// which makes `parse_early_param()` print "Malformed early option 'memtest'".
fn parse_memtest(arg: Option<&str>) -> SetupResult {
    MEMTEST_PATTERN.store(memtest_passes(arg)?, Ordering::Relaxed);
    Ok(())
}

/// The pass count of a `memtest` argument, without storing it.
fn memtest_passes(arg: Option<&str>) -> Result<u32, &'static str> {
    match arg {
        None => Ok(PATTERNS.len() as u32),
        Some(s) => parse_u64(s)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or("expected a number of passes"),
    }
}
crate::early_param!("memtest", parse_memtest);

/// How memtest reaches the words it tests: Linux's two loops over `__va()`, as one call each.
///
/// A range is always whole, 8-byte aligned words of memory that is free in the memblock
/// being tested, which is what the `# Safety` sections below ask for.
pub trait MemtestAccess {
    /// Linux's write loop: store `pattern` in each of the `words` words from `start`.
    ///
    /// # Safety
    /// `start` is 8-byte aligned and `[start, start + 8 * words)` is free memory (in
    /// `memory`, not `reserved`) of the memblock the accessor was made for.
    unsafe fn write_pattern(&mut self, start: PhysAddr, words: usize, pattern: u64);

    /// Linux's verify loop: call `f` with the value of each of the `words` words from
    /// `start`, in address order, as the memory holds it now.
    ///
    /// # Safety
    /// As for [`MemtestAccess::write_pattern`].
    unsafe fn read_back(&mut self, start: PhysAddr, words: usize, f: impl FnMut(u64));
}

/// The accessor the kernel uses: volatile stores and loads through memblock's `__va()`.
/// Volatile because the point is to ask the RAM: a compiler that sees a store followed by a
/// load of the same word may fold the load away (Linux later moved to WRITE_ONCE/READ_ONCE
/// for the same reason).
#[derive(Clone, Copy)]
pub struct LinearMap {
    phys_to_virt: fn(PhysAddr) -> *mut u8,
}

impl LinearMap {
    /// The accessor for `mb`'s free memory: the ranges its `set_phys_to_virt` contract covers.
    pub fn of(mb: &Memblock) -> Self {
        Self {
            phys_to_virt: mb.phys_to_virt(),
        }
    }

    fn words(&self, start: PhysAddr) -> *mut u64 {
        (self.phys_to_virt)(start).cast::<u64>()
    }
}

impl MemtestAccess for LinearMap {
    unsafe fn write_pattern(&mut self, start: PhysAddr, words: usize, pattern: u64) {
        let p = self.words(start);
        for i in 0..words {
            // SAFETY: the caller guarantees the range is free memory of the memblock whose
            // hook this is; its contract maps free memory linearly, writable and 8-byte
            // aligned where the physical address is (`start` is), and unused by anyone else.
            unsafe { p.add(i).write_volatile(pattern) };
        }
    }

    unsafe fn read_back(&mut self, start: PhysAddr, words: usize, mut f: impl FnMut(u64)) {
        let p = self.words(start);
        for i in 0..words {
            // SAFETY: as in write_pattern.
            f(unsafe { p.add(i).read_volatile() });
        }
    }
}

/// Linux's `%pa`: a phys_addr_t as `0x` and 16 hex digits.
struct Pa(u64);

impl fmt::Display for Pa {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

/// Linux: reserve_bad_mem() — report the run `[start_bad, end_bad)` and take it out of use.
fn reserve_bad_mem(mb: &mut Memblock, pattern: u64, start_bad: u64, end_bad: u64) {
    pr_info!(
        "  {:016x} bad mem addr {} - {} reserved",
        pattern.to_be(),
        Pa(start_bad),
        Pa(end_bad)
    );
    // Linux ignores memblock_reserve()'s result too: with the region array full there is
    // nothing better to do at this point than to go on.
    let _ = mb.reserve(PhysAddr(start_bad), end_bad - start_bad);
}

/// Linux: memtest() — test the whole words of `[start_phys, start_phys + size)` with
/// `pattern`, reserving each run of consecutive bad words as one range.
///
/// # Safety
/// `[start_phys, start_phys + size)` is free memory of `mb`, and `mem` reaches `mb`'s memory.
unsafe fn memtest<M: MemtestAccess>(
    mb: &mut Memblock,
    mem: &mut M,
    pattern: u64,
    start_phys: PhysAddr,
    size: u64,
) {
    let start_phys_aligned = align_up(start_phys.0, INCR);
    // A partial word at either end is left alone, as in Linux.
    let words = (size.saturating_sub(start_phys_aligned - start_phys.0) / INCR) as usize;
    let start = PhysAddr(start_phys_aligned);

    // SAFETY: whole aligned words inside the caller's free range.
    unsafe { mem.write_pattern(start, words, pattern) };

    // The current run of bad words: (first, last).
    let mut bad: Option<(u64, u64)> = None;
    let mut addr = start_phys_aligned;
    // SAFETY: as for the write. Reserving a run while reading is fine: it only moves
    // memblock's bookkeeping, not the memory being read.
    unsafe {
        mem.read_back(start, words, |val| {
            if val != pattern {
                bad = match bad {
                    Some((first, last)) if addr == last + INCR => Some((first, addr)),
                    Some((first, last)) => {
                        reserve_bad_mem(mb, pattern, first, last + INCR);
                        Some((addr, addr))
                    }
                    None => Some((addr, addr)),
                };
            }
            addr += INCR;
        })
    };
    if let Some((first, last)) = bad {
        reserve_bad_mem(mb, pattern, first, last + INCR);
    }
}

/// The first free range of `mb`, clamped to `[start, end)`, that begins at or after `from`.
fn next_free_range(mb: &Memblock, from: u64, start: u64, end: u64) -> Option<(u64, u64)> {
    mb.free_mem_ranges(NUMA_NO_NODE, MemblockFlags::NONE)
        .map(|(s, e, _)| (s.0.clamp(start, end), e.0.clamp(start, end)))
        .find(|&(s, e)| s < e && s >= from)
}

/// Linux: do_one_pass() — one pattern over every free range, clamped to `[start, end)`.
///
/// Linux resumes `for_each_free_mem_range` across the `memblock_reserve()` calls of a bad
/// run; here the walk restarts after each range from where that range ended. The free
/// ranges are sorted and disjoint and a reservation only splits the range just tested, so
/// this visits the same ranges.
///
/// # Safety
/// `mem` reaches `mb`'s memory (as for [`early_memtest_with`]).
unsafe fn do_one_pass<M: MemtestAccess>(
    mb: &mut Memblock,
    mem: &mut M,
    pattern: u64,
    start: PhysAddr,
    end: PhysAddr,
) {
    let mut from = start.0;
    while let Some((this_start, this_end)) = next_free_range(mb, from, start.0, end.0) {
        pr_info!(
            "  {} - {} pattern {:016x}",
            Pa(this_start),
            Pa(this_end),
            pattern.to_be()
        );
        // SAFETY: memblock just reported the range as free, and `mem` reaches `mb`'s
        // memory (the caller's contract).
        unsafe {
            memtest(
                mb,
                mem,
                pattern,
                PhysAddr(this_start),
                this_end - this_start,
            )
        };
        from = this_end;
    }
}

/// Linux: early_memtest() on a given memblock and pass count: `passes` passes over the
/// free memory of `mb` inside `[start, end)`, the last with pattern 0, through `mb`'s own
/// `__va()` hook (whose `set_phys_to_virt` contract covers exactly that memory).
pub fn early_memtest_on(mb: &mut Memblock, passes: u32, start: PhysAddr, end: PhysAddr) {
    let mut mem = LinearMap::of(mb);
    // SAFETY: the accessor is mb's own linear map.
    unsafe { early_memtest_with(mb, &mut mem, passes, start, end) };
}

/// [`early_memtest_on`] through a caller's accessor, such as a test double for faulty RAM.
///
/// # Safety
/// Every access `mem` makes under the [`MemtestAccess`] contract for `mb`'s free memory
/// must be sound: `mem` is [`LinearMap::of`]`(mb)` or wraps it.
pub unsafe fn early_memtest_with<M: MemtestAccess>(
    mb: &mut Memblock,
    mem: &mut M,
    passes: u32,
    start: PhysAddr,
    end: PhysAddr,
) {
    if passes == 0 {
        return;
    }
    pr_info!("early_memtest: # of tests: {}", passes);
    for i in (0..passes).rev() {
        let idx = i as usize % PATTERNS.len();
        // SAFETY: passed on from the caller.
        unsafe { do_one_pass(mb, mem, PATTERNS[idx], start, end) };
    }
}

/// Linux: early_memtest() — test the kernel's free memory in `[start, end)` as often as
/// `memtest=` asked (not at all by default). Call before memblock hands memory to the
/// buddy allocator, with the linear map up (memblock's `__va()` must work).
pub fn early_memtest(start: PhysAddr, end: PhysAddr) {
    let passes = memtest_pattern();
    if passes == 0 {
        return;
    }
    early_memtest_on(&mut MEMBLOCK.lock(), passes, start, end);
}

#[cfg(test)]
mod tests;
