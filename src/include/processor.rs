//! Linux: arch/arm64/include/asm/processor.h's `cpu_relax()` — what a CPU does while it
//! waits for another (`yield`) — and the spin lock type whose waiters do it; and
//! asm/percpu.h's `__my_cpu_offset`, which the allocators' fast paths read inline.
//!
//! Under QEMU's TCG a `yield` (like the `wfe` Linux's qspinlock waits with) ends the vCPU's
//! turn, so a waiter hands the host CPU to the vCPU that holds the lock instead of spinning
//! out its whole time slice; with `-icount` that is the difference between a contended lock
//! costing a few instructions and costing a slice. On hardware it is a hint and nothing
//! more. (`core::hint::spin_loop` is `isb` on aarch64, which TCG does not treat as a yield.)

/// Linux: cpu_relax().
#[inline(always)]
pub fn cpu_relax() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: a hint instruction: no memory, no registers, no flags.
    unsafe {
        core::arch::asm!("yield", options(nomem, nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "aarch64"))]
    core::hint::spin_loop();
}

/// The [`spin::RelaxStrategy`] of [`SpinLock`]: [`cpu_relax`].
pub struct CpuRelax;

impl spin::RelaxStrategy for CpuRelax {
    #[inline(always)]
    fn relax() {
        cpu_relax();
    }
}

/// Linux: spinlock_t around the data it protects — a `spin` mutex whose waiters
/// [`cpu_relax`].
pub type SpinLock<T> = spin::mutex::Mutex<T, CpuRelax>;
/// A held [`SpinLock`].
pub type SpinLockGuard<'a, T> = spin::mutex::MutexGuard<'a, T>;

/// Linux: __my_cpu_offset (arm64 at EL1: TPIDR_EL1) — `&var + offset` is this CPU's copy
/// of the per-CPU variable `var`. Only the bare-metal arm64 build has it.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[inline(always)]
pub fn my_cpu_offset() -> usize {
    let off: usize;
    // SAFETY: reads a system register the kernel owns; no memory is touched.
    unsafe {
        core::arch::asm!("mrs {}, tpidr_el1", out(reg) off, options(nomem, nostack, preserves_flags))
    };
    off
}

/// Linux: raw_cpu_read(var) of a per-CPU `u64` — this CPU's copy, at `var`'s address plus
/// [`my_cpu_offset`]. The allocators read `cpu_number` (raw_smp_processor_id()) this way.
///
/// # Safety
/// `var` is the address of a `.data..percpu` `AtomicU64` static, and TPIDR_EL1 holds this
/// CPU's per-CPU offset (or 0, the static image, before the per-CPU areas exist).
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[inline(always)]
pub unsafe fn this_cpu_read_u64(var: usize) -> u64 {
    let p = var.wrapping_add(my_cpu_offset()) as *const core::sync::atomic::AtomicU64;
    // SAFETY: the caller's guarantee: this CPU's initialised copy, which lives for ever.
    unsafe { (*p).load(core::sync::atomic::Ordering::Relaxed) }
}
