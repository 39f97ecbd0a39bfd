//! This CPU's per-CPU data (Linux: arch/arm64/include/asm/percpu.h and the generic
//! include/asm-generic/percpu.h accessors): the CPU's per-CPU offset lives in TPIDR_EL1
//! (`__my_cpu_offset`), so `this_cpu_ptr(&var)` is `&var` plus one register read, with no
//! CPU number and no table lookup. arm64's `cpu_number` (arch/arm64/kernel/smp.c) and
//! `raw_smp_processor_id()` (asm/smp.h) are here too, beside the accessor they use.
//!
//! # Who may touch what
//! A per-CPU static (in `.data..percpu`, copied into each CPU's unit by
//! setup_per_cpu_areas) is reached as this CPU's copy through [`this_cpu_ptr`], or as another
//! CPU's through `mm::percpu::per_cpu_ptr(&var, cpu)`. Linux makes `this_cpu` access safe by
//! disabling preemption (or interrupts, for data an interrupt handler also uses); this kernel
//! has no preemption, no task migration and no interrupt handlers (every CPU runs with DAIF
//! masked), so a CPU's own copy stays its own for as long as it runs. Data that other CPUs
//! also reach (a CPU's call slot, its vmap block queue, its page and slab per-CPU lists when
//! drained or flushed) is made of atomics or sits behind its own lock.

/// Linux: __my_cpu_offset — TPIDR_EL1: 0 on the boot CPU until smp_prepare_boot_cpu (so the
/// static image is reached), then the CPU's `__per_cpu_offset[cpu]`.
#[inline(always)]
pub fn my_cpu_offset() -> u64 {
    crate::include::processor::my_cpu_offset() as u64
}

/// Linux: set_my_cpu_offset() — TPIDR_EL1 = this CPU's per-CPU offset.
pub fn set_my_cpu_offset(off: u64) {
    // SAFETY: TPIDR_EL1 is the per-CPU offset register; `off` is this CPU's offset (or 0).
    unsafe {
        core::arch::asm!("msr tpidr_el1, {0}", in(reg) off, options(nomem, nostack, preserves_flags))
    };
}

/// Linux: this_cpu_ptr(&var) — this CPU's copy of a per-CPU static.
///
/// # Safety
/// `var` must be a static placed in `.data..percpu` (DEFINE_PER_CPU), and `T` safe to share
/// with the other CPUs that may reach this copy through per_cpu_ptr (atomics, locks).
#[inline(always)]
pub unsafe fn this_cpu_ptr<T: Sync>(var: &'static T) -> &'static T {
    let p = (var as *const T as u64).wrapping_add(my_cpu_offset()) as *const T;
    // SAFETY: TPIDR_EL1 holds this CPU's offset (or 0, the static image, before the units
    // exist), so `p` is this CPU's initialised copy, which lives as long as the kernel.
    unsafe { &*p }
}

/// Linux: raw_smp_processor_id() — this CPU's `cpu_number`, read through TPIDR_EL1's
/// per-CPU offset (0 on the boot CPU until setup_per_cpu_areas, so the static image's 0
/// is read). smp_prepare_cpus writes each possible CPU's copy.
#[inline(always)]
pub fn smp_processor_id() -> usize {
    // SAFETY: `cpu_number` is a `.data..percpu` static (an atomic).
    unsafe { this_cpu_ptr(&cpu_number) }.load(core::sync::atomic::Ordering::Relaxed) as usize
}

/// Linux: cpu_number — arm64's per-CPU id (DEFINE_PER_CPU_READ_MOSTLY); the first static
/// per-CPU variable, so the per-CPU image is never empty.
#[no_mangle]
#[link_section = ".data..percpu"]
#[allow(non_upper_case_globals)]
pub static cpu_number: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The lowest address of this CPU's stack (Linux: `current->stack`), which entry.S compares
/// SP against; the page below it is unmapped. head.S sets the boot CPU's, __cpu_up a
/// secondary's; 0 turns the check off.
#[no_mangle]
#[link_section = ".data..percpu"]
#[allow(non_upper_case_globals)]
pub static kernel_stack_lo: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// This CPU's stack `[lo, hi)`: the boot CPU's `[init_stack, init_stack_top)` from the
/// linker script, a secondary's THREAD_SIZE vmalloc area.
pub fn this_cpu_stack() -> (u64, u64) {
    // SAFETY: a `.data..percpu` static (an atomic).
    let lo = unsafe { this_cpu_ptr(&kernel_stack_lo) }.load(core::sync::atomic::Ordering::Relaxed);
    if lo == 0 || lo == crate::kernel::sections::init_stack() {
        (
            crate::kernel::sections::init_stack(),
            crate::kernel::sections::init_stack_top(),
        )
    } else {
        (lo, lo + crate::arch::aarch64::memory::THREAD_SIZE)
    }
}
