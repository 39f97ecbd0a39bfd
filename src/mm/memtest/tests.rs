//! Host unit tests of `src/mm/memtest.rs` (`cargo hosttest`), on the shared scaffold
//! `mm::testing` (simulated RAM and a machine builder).

use super::*;
use crate::kernel::printk::take_captured;
use crate::mm::testing::{printed, Machine, SimRam, FILL};

/// Where the simulated RAM starts, as on QEMU's virt machine.
const RAM: u64 = 0x4000_0000;
const SZ_4K: u64 = 0x1000;
const SZ_64K: u64 = 0x1_0000;

/// A memblock over `size` bytes of simulated RAM at RAM, with `reserved` taken.
fn with_ram(size: u64, reserved: &[(u64, u64)]) -> (SimRam, Memblock) {
    let m = reserved
        .iter()
        .fold(
            Machine::from_banks(&[(RAM, size, None)]),
            |m, &(base, len)| m.reserve(base, len),
        )
        .memblock();
    (m.ram, m.mb)
}

fn regions(mb: &Memblock) -> Vec<(u64, u64)> {
    mb.reserved()
        .regions()
        .iter()
        .map(|r| (r.base.0, r.size))
        .collect()
}

/// Every byte memblock still calls free is zero.
fn check_free_zeroed(arena: &SimRam, mb: &Memblock) {
    for (s, e, _) in mb.free_mem_ranges(NUMA_NO_NODE, MemblockFlags::NONE) {
        assert!(
            arena.bytes(s, e - s).iter().all(|&b| b == 0),
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
        assert!(arena.bytes(PhysAddr(base), len).iter().all(|&b| b == FILL));
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
    assert!(arena.bytes(PhysAddr(RAM), SZ_4K).iter().all(|&b| b == 0));
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
    assert!(arena.bytes(PhysAddr(RAM), 0x800).iter().all(|&b| b == FILL));
    assert!(arena
        .bytes(PhysAddr(RAM + 0x800), 0x1800)
        .iter()
        .all(|&b| b == 0));
    assert!(arena
        .bytes(PhysAddr(RAM + 2 * SZ_4K), SZ_4K)
        .iter()
        .all(|&b| b == FILL));
    assert!(arena
        .bytes(PhysAddr(RAM + 3 * SZ_4K), 0x100)
        .iter()
        .all(|&b| b == 0));
    assert!(arena
        .bytes(PhysAddr(RAM + 3 * SZ_4K + 0x100), 0xf00)
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
    assert_eq!(arena.bytes(PhysAddr(RAM), 8), [FILL; 8]);
    assert_eq!(arena.bytes(PhysAddr(RAM + 8), 0x10), [0; 0x10]);
    assert_eq!(arena.bytes(PhysAddr(RAM + 0x18), 8), [FILL; 8]);
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
        .bytes(PhysAddr(RAM + 2 * SZ_4K), SZ_4K)
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
