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
use super::memblock::{Memblock, MemblockFlags, MEMBLOCK, NUMA_NO_NODE};
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
mod tests {
    use super::*;
    use crate::kernel::printk::take_captured;
    use std::cell::Cell;

    /// Where the simulated RAM starts, as on QEMU's virt machine.
    const RAM: u64 = 0x4000_0000;
    const SZ_4K: u64 = 0x1000;
    const SZ_64K: u64 = 0x1_0000;
    /// What the simulated RAM holds before anyone writes it.
    const FILL: u8 = 0xaa;

    // The simulated RAM of the current test thread: (phys base, host address, size).
    std::thread_local! {
        static ARENA: Cell<(u64, usize, usize)> = const { Cell::new((0, 0, 0)) };
    }

    /// Host memory standing in for physical `[base, base + size)`. A `Vec<u64>` keeps it
    /// 8-byte aligned, which memblock's `__va()` contract promises for aligned addresses.
    struct Arena {
        words: Vec<u64>,
        base: u64,
    }

    impl Arena {
        fn new(base: u64, size: u64) -> Self {
            let fill = u64::from_ne_bytes([FILL; 8]);
            let mut words = vec![fill; (size / 8) as usize];
            ARENA.with(|a| a.set((base, words.as_mut_ptr() as usize, size as usize)));
            Self { words, base }
        }

        fn bytes(&self, pa: u64, len: u64) -> &[u8] {
            let off = (pa - self.base) as usize;
            // SAFETY: a u64 slice viewed as its bytes; the index below checks the bounds.
            let all = unsafe {
                core::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.words.len() * 8)
            };
            &all[off..off + len as usize]
        }
    }

    impl Drop for Arena {
        fn drop(&mut self) {
            ARENA.with(|a| a.set((0, 0, 0)));
        }
    }

    fn arena_p2v(p: PhysAddr) -> *mut u8 {
        let (base, host, size) = ARENA.with(|a| a.get());
        assert!(
            p.0 >= base && p.0 - base <= size as u64,
            "phys {:#x} is outside the simulated RAM",
            p.0
        );
        (host + (p.0 - base) as usize) as *mut u8
    }

    /// A memblock over `size` bytes of simulated RAM at RAM, with `reserved` taken.
    fn with_ram(size: u64, reserved: &[(u64, u64)]) -> (Arena, Memblock) {
        let arena = Arena::new(RAM, size);
        let mut mb = Memblock::new();
        // SAFETY: the arena maps [RAM, RAM + size) linearly, 8-byte aligned, and nothing
        // else uses it.
        unsafe { mb.set_phys_to_virt(arena_p2v) };
        mb.add(PhysAddr(RAM), size).unwrap();
        for &(base, len) in reserved {
            mb.reserve(PhysAddr(base), len).unwrap();
        }
        (arena, mb)
    }

    /// What this thread printed, without the timestamps.
    fn printed() -> Vec<String> {
        take_captured()
            .lines()
            .map(|l| l.split_once("] ").map_or(l, |(_, t)| t).to_string())
            .collect()
    }

    fn regions(mb: &Memblock) -> Vec<(u64, u64)> {
        mb.reserved()
            .regions()
            .iter()
            .map(|r| (r.base.0, r.size))
            .collect()
    }

    /// Every byte memblock still calls free is zero.
    fn check_free_zeroed(arena: &Arena, mb: &Memblock) {
        for (s, e, _) in mb.free_mem_ranges(NUMA_NO_NODE, MemblockFlags::NONE) {
            assert!(
                arena.bytes(s.0, e - s).iter().all(|&b| b == 0),
                "free range {:#x}-{:#x} is not zeroed",
                s.0,
                e.0
            );
        }
    }

    #[test]
    fn patterns_end_with_zero_and_print_byte_swapped() {
        assert_eq!(PATTERNS[0], 0);
        assert_eq!(PATTERNS.len(), 17);
        // cpu_to_be64() on a little-endian CPU: the joke reads backwards in the log.
        assert_eq!(format!("{:016x}", PATTERNS[16].to_be()), "4c494e5558726c7a");
        assert_eq!(&PATTERNS[16].to_le_bytes(), b"LINUXrlz");
    }

    #[test]
    fn memtest_param_parses_like_linux() {
        // The only test touching the global: it restores "off" at the end.
        assert_eq!(parse_memtest(None), Ok(()));
        assert_eq!(memtest_pattern(), 17);
        assert_eq!(parse_memtest(Some("4")), Ok(()));
        assert_eq!(memtest_pattern(), 4);
        assert_eq!(parse_memtest(Some("0x20")), Ok(()));
        assert_eq!(memtest_pattern(), 32);
        assert_eq!(parse_memtest(Some("010")), Ok(()));
        assert_eq!(memtest_pattern(), 8);
        for bad in ["", "x", "4K", "-1", "4294967296"] {
            assert!(parse_memtest(Some(bad)).is_err(), "memtest={bad} accepted");
        }
        // A malformed value keeps what was there.
        assert_eq!(memtest_pattern(), 8);
        assert_eq!(parse_memtest(Some("0")), Ok(()));
        assert_eq!(memtest_pattern(), 0);
        // Off: early_memtest() neither prints nor touches memblock.
        take_captured();
        early_memtest(PhysAddr(0), PhysAddr(u64::MAX));
        assert_eq!(take_captured(), "");
    }

    #[test]
    fn malformed_memtest_is_reported_by_early_param() {
        use crate::kernel::params::{parse_early_param_with, ObsKernelParam};
        let table = [ObsKernelParam {
            name: "memtest",
            setup: |arg| memtest_passes(arg).map(|_| ()),
            early: true,
        }];
        take_captured();
        parse_early_param_with("memtest=lots", &table);
        assert_eq!(printed(), ["Malformed early option 'memtest'"]);
        parse_early_param_with("memtest memtest=3", &table);
        assert_eq!(printed(), Vec::<String>::new());
    }

    #[test]
    fn free_memory_ends_zeroed_and_reserved_memory_untouched() {
        let size = 16 * SZ_4K;
        let reserved = [
            (RAM, SZ_4K),
            (RAM + 5 * SZ_4K, 2 * SZ_4K),
            (RAM + 15 * SZ_4K, SZ_4K),
        ];
        let (arena, mut mb) = with_ram(size, &reserved);
        take_captured();
        early_memtest_on(&mut mb, 2, PhysAddr(RAM), PhysAddr(RAM + size));

        assert_eq!(
            printed(),
            [
                "early_memtest: # of tests: 2",
                "  0x0000000040001000 - 0x0000000040005000 pattern ffffffffffffffff",
                "  0x0000000040007000 - 0x000000004000f000 pattern ffffffffffffffff",
                "  0x0000000040001000 - 0x0000000040005000 pattern 0000000000000000",
                "  0x0000000040007000 - 0x000000004000f000 pattern 0000000000000000",
            ]
        );
        // Nothing was found bad, so nothing new is reserved.
        assert_eq!(
            regions(&mb),
            [
                (RAM, SZ_4K),
                (RAM + 5 * SZ_4K, 2 * SZ_4K),
                (RAM + 15 * SZ_4K, SZ_4K)
            ]
        );
        check_free_zeroed(&arena, &mb);
        for (base, len) in reserved {
            assert!(arena.bytes(base, len).iter().all(|&b| b == FILL));
        }
    }

    #[test]
    fn all_patterns_run_from_the_last_down_to_zero() {
        let (arena, mut mb) = with_ram(SZ_4K, &[]);
        take_captured();
        // 20 passes: indices 19 % 17 = 2, 1, 0, 16, 15, ..., 0.
        early_memtest_on(&mut mb, 20, PhysAddr(RAM), PhysAddr(RAM + SZ_4K));
        let lines = printed();
        assert_eq!(lines[0], "early_memtest: # of tests: 20");
        let patterns: Vec<&str> = lines[1..]
            .iter()
            .map(|l| l.rsplit_once(' ').unwrap().1)
            .collect();
        let expected: Vec<String> = (0..20u32)
            .rev()
            .map(|i| format!("{:016x}", PATTERNS[i as usize % 17].to_be()))
            .collect();
        assert_eq!(patterns, expected);
        assert_eq!(patterns[3], "4c494e5558726c7a");
        assert!(arena.bytes(RAM, SZ_4K).iter().all(|&b| b == 0));
    }

    #[test]
    fn ranges_are_clamped_to_start_and_end() {
        let (arena, mut mb) = with_ram(4 * SZ_4K, &[(RAM + 2 * SZ_4K, SZ_4K)]);
        take_captured();
        let (start, end) = (RAM + 0x800, RAM + 3 * SZ_4K + 0x100);
        early_memtest_on(&mut mb, 1, PhysAddr(start), PhysAddr(end));
        assert_eq!(
            printed(),
            [
                "early_memtest: # of tests: 1",
                "  0x0000000040000800 - 0x0000000040002000 pattern 0000000000000000",
                "  0x0000000040003000 - 0x0000000040003100 pattern 0000000000000000",
            ]
        );
        assert!(arena.bytes(RAM, 0x800).iter().all(|&b| b == FILL));
        assert!(arena.bytes(RAM + 0x800, 0x1800).iter().all(|&b| b == 0));
        assert!(arena
            .bytes(RAM + 2 * SZ_4K, SZ_4K)
            .iter()
            .all(|&b| b == FILL));
        assert!(arena.bytes(RAM + 3 * SZ_4K, 0x100).iter().all(|&b| b == 0));
        assert!(arena
            .bytes(RAM + 3 * SZ_4K + 0x100, 0xf00)
            .iter()
            .all(|&b| b == FILL));
    }

    #[test]
    fn partial_words_at_range_edges_are_left_alone() {
        // Reserved [0x3, 0x8) and [0x1d, 0x20) leave the free range [0x8, 0x1d) plus
        // [0x0, 0x3): memtest only ever writes whole aligned words, as Linux's does.
        let (arena, mut mb) = with_ram(SZ_4K, &[(RAM + 3, 5), (RAM + 0x1d, 3)]);
        take_captured();
        early_memtest_on(&mut mb, 1, PhysAddr(RAM), PhysAddr(RAM + 0x20));
        assert_eq!(
            printed(),
            [
                "early_memtest: # of tests: 1",
                "  0x0000000040000000 - 0x0000000040000003 pattern 0000000000000000",
                "  0x0000000040000008 - 0x000000004000001d pattern 0000000000000000",
            ]
        );
        // [0, 3) holds no whole word; [8, 0x1d) holds two, [8, 0x18).
        assert_eq!(arena.bytes(RAM, 8), [FILL; 8]);
        assert_eq!(arena.bytes(RAM + 8, 0x10), [0; 0x10]);
        assert_eq!(arena.bytes(RAM + 0x18, 8), [FILL; 8]);
    }

    /// A test double for RAM with stuck-at-1 bits: after each write pass it really corrupts
    /// the chosen words in the simulated RAM, so the verify pass, which is the real one,
    /// finds what faulty DRAM would show. It also logs the ranges written.
    struct StuckBits<'a> {
        ram: LinearMap,
        /// (physical address of a word, bits stuck at 1)
        faults: &'a [(u64, u64)],
        writes: Vec<(u64, usize, u64)>,
    }

    impl MemtestAccess for StuckBits<'_> {
        unsafe fn write_pattern(&mut self, start: PhysAddr, words: usize, pattern: u64) {
            // SAFETY: the caller's contract, passed on.
            unsafe { self.ram.write_pattern(start, words, pattern) };
            self.writes.push((start.0, words, pattern));
            let end = start.0 + words as u64 * INCR;
            for &(pa, stuck) in self.faults {
                if (start.0..end).contains(&pa) {
                    let p = self.ram.words(PhysAddr(pa));
                    // SAFETY: an aligned word inside the range the caller gave us.
                    unsafe { p.write_volatile(p.read_volatile() | stuck) };
                }
            }
        }

        unsafe fn read_back(&mut self, start: PhysAddr, words: usize, f: impl FnMut(u64)) {
            // SAFETY: the caller's contract, passed on.
            unsafe { self.ram.read_back(start, words, f) }
        }
    }

    #[test]
    fn bad_words_are_coalesced_into_runs_and_reserved() {
        let size = 4 * SZ_4K;
        let (arena, mut mb) = with_ram(size, &[(RAM + 2 * SZ_4K, SZ_4K)]);
        // Three adjacent bad words, one good, one bad; one bad word in the second range;
        // one bad word in reserved memory, which memtest must never look at.
        let faults = [
            (RAM + 0x100, 1),
            (RAM + 0x108, 1 << 63),
            (RAM + 0x110, 0x10),
            (RAM + 0x120, 1),
            (RAM + 3 * SZ_4K + 0xff8, 1),
            (RAM + 2 * SZ_4K + 0x40, 1),
        ];
        let mut mem = StuckBits {
            ram: LinearMap::of(&mb),
            faults: &faults,
            writes: Vec::new(),
        };
        take_captured();
        // SAFETY: the double wraps mb's own linear map.
        unsafe { early_memtest_with(&mut mb, &mut mem, 17, PhysAddr(RAM), PhysAddr(RAM + size)) };
        let lines = printed();

        // The first pattern, 0x7a6c7258554e494c, has every stuck bit at 0: all are caught
        // in the first pass, and the later passes skip what is now reserved.
        assert_eq!(
            lines[..5],
            [
                "early_memtest: # of tests: 17",
                "  0x0000000040000000 - 0x0000000040002000 pattern 4c494e5558726c7a",
                "  4c494e5558726c7a bad mem addr 0x0000000040000100 - 0x0000000040000118 reserved",
                "  4c494e5558726c7a bad mem addr 0x0000000040000120 - 0x0000000040000128 reserved",
                "  0x0000000040003000 - 0x0000000040004000 pattern 4c494e5558726c7a",
            ]
        );
        assert_eq!(
            lines[5],
            "  4c494e5558726c7a bad mem addr 0x0000000040003ff8 - 0x0000000040004000 reserved"
        );
        assert_eq!(lines.iter().filter(|l| l.contains("bad mem")).count(), 3);
        // Pass two already sees the holes.
        assert_eq!(
            lines[6..10],
            [
                "  0x0000000040000000 - 0x0000000040000100 pattern eeeeeeeeeeeeeeee",
                "  0x0000000040000118 - 0x0000000040000120 pattern eeeeeeeeeeeeeeee",
                "  0x0000000040000128 - 0x0000000040002000 pattern eeeeeeeeeeeeeeee",
                "  0x0000000040003000 - 0x0000000040003ff8 pattern eeeeeeeeeeeeeeee",
            ]
        );
        assert_eq!(lines.len(), 1 + 3 + 2 + 16 * 4);

        assert_eq!(
            regions(&mb),
            [
                (RAM + 0x100, 0x18),
                (RAM + 0x120, 8),
                (RAM + 2 * SZ_4K, SZ_4K),
                (RAM + 3 * SZ_4K + 0xff8, 8),
            ]
        );
        check_free_zeroed(&arena, &mb);
        // The reserved page was never written, its fault notwithstanding.
        assert!(arena
            .bytes(RAM + 2 * SZ_4K, SZ_4K)
            .iter()
            .all(|&b| b == FILL));
        assert!(mem.writes.iter().all(|&(s, n, _)| {
            let e = s + n as u64 * INCR;
            e <= RAM + 2 * SZ_4K || s >= RAM + 3 * SZ_4K
        }));
    }

    #[test]
    fn a_stuck_bit_shows_only_under_a_pattern_that_differs() {
        // Bit 0 stuck at 1 is invisible under all-ones (pass 1) and caught by the final
        // zero pattern (pass 0), which then reports it with that pattern.
        let (_arena, mut mb) = with_ram(SZ_4K, &[]);
        let faults = [(RAM + 0x800, 1)];
        let mut mem = StuckBits {
            ram: LinearMap::of(&mb),
            faults: &faults,
            writes: Vec::new(),
        };
        take_captured();
        // SAFETY: the double wraps mb's own linear map.
        unsafe { early_memtest_with(&mut mb, &mut mem, 2, PhysAddr(RAM), PhysAddr(RAM + SZ_4K)) };
        assert_eq!(
            printed(),
            [
                "early_memtest: # of tests: 2",
                "  0x0000000040000000 - 0x0000000040001000 pattern ffffffffffffffff",
                "  0x0000000040000000 - 0x0000000040001000 pattern 0000000000000000",
                "  0000000000000000 bad mem addr 0x0000000040000800 - 0x0000000040000808 reserved",
            ]
        );
        assert_eq!(regions(&mb), [(RAM + 0x800, 8)]);
        assert_eq!(mem.writes.len(), 2);
    }

    #[test]
    fn a_whole_bad_range_is_one_run() {
        let (_arena, mut mb) = with_ram(SZ_64K, &[]);
        let faults: Vec<(u64, u64)> = (0..SZ_4K / 8)
            .map(|i| (RAM + SZ_4K + i * 8, 1 << 7))
            .collect();
        let mut mem = StuckBits {
            ram: LinearMap::of(&mb),
            faults: &faults,
            writes: Vec::new(),
        };
        take_captured();
        // SAFETY: the double wraps mb's own linear map.
        unsafe { early_memtest_with(&mut mb, &mut mem, 1, PhysAddr(RAM), PhysAddr(RAM + SZ_64K)) };
        assert_eq!(
            printed()[2],
            "  0000000000000000 bad mem addr 0x0000000040001000 - 0x0000000040002000 reserved"
        );
        assert_eq!(regions(&mb), [(RAM + SZ_4K, SZ_4K)]);
    }
}
