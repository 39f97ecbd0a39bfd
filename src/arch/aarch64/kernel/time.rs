//! The generic timer as printk's clock (Linux: drivers/clocksource/arm_arch_timer.c,
//! kernel/time/sched_clock.c).

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTVCT_EL0};
use tock_registers::interfaces::Readable;

/// Nanoseconds since the counter started (QEMU starts it at machine reset).
pub fn sched_clock() -> u64 {
    let freq = CNTFRQ_EL0.get().max(1);
    let ticks = CNTVCT_EL0.get();
    ((ticks as u128 * 1_000_000_000) / freq as u128) as u64
}

/// Linux: the clocksource's raw counter, for stage costs in cycles of the 62.5 MHz counter.
#[inline]
pub fn counter() -> u64 {
    CNTVCT_EL0.get()
}

/// The counter's frequency in Hz (CNTFRQ_EL0; 62.5 MHz on QEMU virt).
pub fn frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// Runs one boot stage and records its cost (kernel::stages::timed) in counter ticks; the
/// counter is read inline, so only the stage runs between the two reads.
pub fn timed<R>(name: &'static str, f: impl FnOnce() -> R) -> R {
    crate::kernel::stages::timed(counter, name, f)
}
