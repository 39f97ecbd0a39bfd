//! The CPU primitives under SLUB's lockless per-CPU fast paths: the double-word
//! compare-and-exchange (the per-CPU offset is `include::processor::my_cpu_offset`). Mirrors
//! Linux 6.1's `this_cpu_cmpxchg_double()` as arm64 implements it
//! (arch/arm64/include/asm/atomic_ll_sc.h `__ll_sc__cmpxchg_double`, an LDXP/STXP loop; the
//! LSE build uses CASP) and, for the host tests and benchmarks, x86-64's `cmpxchg16b`
//! (arch/x86/include/asm/percpu.h `percpu_cmpxchg16b_double`).
//!
//! Unlike Linux's per-CPU variant this one is a full atomic read-modify-write with acquire and
//! release ordering: another CPU (flush_all) may exchange the same pair at the same time (see
//! slub.rs's module doc, "Locks").

/// Atomically: if `pair[0] == old.0 && pair[1] == old.1`, store `new` and return true;
/// otherwise leave the pair alone and return false. Acquire and release ordering.
///
/// # Safety
/// `pair` is valid for reads and writes of two `u64`, 16-byte aligned, and every concurrent
/// access to it is atomic.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
pub(super) unsafe fn cmpxchg_double(pair: *mut u64, old: (u64, u64), new: (u64, u64)) -> bool {
    let diff: u64;
    // SAFETY: the caller's guarantee; LDAXP/STLXP need the 16-byte alignment it promises.
    unsafe {
        core::arch::asm!(
            "2:",
            "ldaxp {t0}, {t1}, [{p}]",
            "eor {t0}, {t0}, {o0}",
            "eor {t1}, {t1}, {o1}",
            "orr {t1}, {t0}, {t1}",
            "cbnz {t1}, 3f",
            "stlxp {t0:w}, {n0}, {n1}, [{p}]",
            "cbnz {t0:w}, 2b",
            "3:",
            p = in(reg) pair,
            o0 = in(reg) old.0,
            o1 = in(reg) old.1,
            n0 = in(reg) new.0,
            n1 = in(reg) new.1,
            t0 = out(reg) _,
            t1 = out(reg) diff,
            options(nostack),
        );
    }
    diff == 0
}

/// See the aarch64 version.
///
/// # Safety
/// As the aarch64 version.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) unsafe fn cmpxchg_double(pair: *mut u64, old: (u64, u64), new: (u64, u64)) -> bool {
    let ok: u64;
    // SAFETY: the caller's guarantee; cmpxchg16b needs the 16-byte alignment it promises.
    // rbx may not be named as an operand: the new low word travels in rsi and is swapped in
    // around the instruction (xchg and mov leave the flags alone). Every operand has an
    // explicit register, so none can be given rbx (LLVM hands rbx to `reg` operands when it
    // does not need it as a base pointer: a `reg` pointer in rbx was clobbered by the xchg,
    // which made the fuzz build's exchange fail for ever).
    unsafe {
        core::arch::asm!(
            "xchg rsi, rbx",
            "lock cmpxchg16b xmmword ptr [rdi]",
            "mov rbx, rsi",
            "sete al",
            "movzx eax, al",
            in("rdi") pair,
            inout("rsi") new.0 => _,
            inout("rax") old.0 => ok,
            inout("rdx") old.1 => _,
            in("rcx") new.1,
            options(nostack),
        );
    }
    ok != 0
}

#[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
compile_error!("SLUB's fast paths need cmpxchg_double for this architecture");

/// The arch's free-running counter (arm64: CNTVCT_EL0, Linux's arch_timer_read_counter()),
/// read inline for KFENCE's sampling gate (slub/kfence.rs). The host build has none: it
/// returns `u64::MAX`, so that the gate is always due and KFENCE's core decides.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[inline(always)]
pub(super) fn arch_counter() -> u64 {
    let v: u64;
    // SAFETY: reads a system register EL1 may read; no memory, no flags.
    unsafe {
        core::arch::asm!("mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// The host's stand-in (see the aarch64 one).
#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
#[inline(always)]
pub(super) fn arch_counter() -> u64 {
    u64::MAX
}

#[cfg(test)]
mod tests {
    use super::cmpxchg_double;

    #[repr(C, align(16))]
    struct Pair([u64; 2]);

    #[test]
    fn exchanges_only_on_a_full_match() {
        let mut p = Pair([1, 2]);
        // SAFETY: an aligned pair of ours.
        unsafe {
            assert!(!cmpxchg_double(p.0.as_mut_ptr(), (1, 3), (7, 8)));
            assert_eq!(p.0, [1, 2]);
            assert!(!cmpxchg_double(p.0.as_mut_ptr(), (0, 2), (7, 8)));
            assert_eq!(p.0, [1, 2]);
            assert!(cmpxchg_double(p.0.as_mut_ptr(), (1, 2), (7, 8)));
            assert_eq!(p.0, [7, 8]);
        }
    }

    /// Threads increment both words together; no update is lost and the words never part.
    #[test]
    fn concurrent_increments_are_atomic() {
        use std::sync::atomic::{AtomicU64, Ordering};
        #[repr(C, align(16))]
        struct Shared([AtomicU64; 2]);
        let s = Shared([AtomicU64::new(0), AtomicU64::new(1000)]);
        std::thread::scope(|sc| {
            for _ in 0..4 {
                sc.spawn(|| {
                    for _ in 0..10_000 {
                        loop {
                            let a = s.0[0].load(Ordering::Relaxed);
                            let b = s.0[1].load(Ordering::Relaxed);
                            // SAFETY: an aligned pair, accessed only atomically.
                            if unsafe {
                                cmpxchg_double(s.0.as_ptr() as *mut u64, (a, b), (a + 1, b + 1))
                            } {
                                break;
                            }
                        }
                    }
                });
            }
        });
        assert_eq!(s.0[0].load(Ordering::Relaxed), 40_000);
        assert_eq!(s.0[1].load(Ordering::Relaxed), 41_000);
    }
}
