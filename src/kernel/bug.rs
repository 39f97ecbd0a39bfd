//! BUG() (Linux: include/asm-generic/bug.h, lib/bug.c's report_bug(), and arm64's
//! asm/bug.h, which makes BUG() a `brk #BUG_BRK_IMM` that the BRK handler turns into an
//! Oops: `kernel BUG at FILE:LINE!`, then `Internal error: Oops - BUG: 00000000f2000800`).
//! WARN() prints its message and `WARNING: CPU: n PID: 0 at FILE:LINE` with a stack and
//! carries on (kernel/panic.c's __warn()). FILE:LINE is the Rust source of the caller.

/// Linux: BUG_BRK_IMM (asm/brk-imm.h) — the immediate of the `brk` that BUG() executes.
pub const BUG_BRK_IMM: u64 = 0x800;

/// Linux: BUG() — report the caller's file and line, then trap into an Oops (on the host, a
/// Rust panic with the same words).
#[cold]
#[inline(never)]
#[track_caller]
pub fn bug() -> ! {
    let loc = core::panic::Location::caller();
    // Linux: report_bug() — CUT_HERE, then the location.
    pr_warn!("------------[ cut here ]------------");
    pr_crit!("kernel BUG at {}:{}!", loc.file(), loc.line());
    #[cfg(target_os = "none")]
    // SAFETY: `brk` traps to the EL1 synchronous vector, whose BRK handler dies with the
    // registers of this frame; it does not return here.
    unsafe {
        core::arch::asm!("brk #{imm}", imm = const BUG_BRK_IMM, options(nomem, nostack))
    };
    panic!("kernel BUG at {}:{}!", loc.file(), loc.line())
}

/// Linux: WARN(1, fmt, ...) — arm64's __warn_printk() (CUT_HERE and the message), then
/// __warn() for the caller. The kernel carries on.
#[cold]
#[inline(never)]
#[track_caller]
pub fn warn(msg: core::fmt::Arguments) {
    pr_warn!("------------[ cut here ]------------");
    pr_warn!("{}", msg);
    __warn(core::panic::Location::caller());
}

/// Linux: WARN_ON(1) — CUT_HERE, then __warn() for the caller. The kernel carries on.
#[cold]
#[inline(never)]
#[track_caller]
pub fn warn_on() {
    pr_warn!("------------[ cut here ]------------");
    __warn(core::panic::Location::caller());
}

/// Linux: __warn() — the `WARNING:` line, the modules, a stack, the end marker.
fn __warn(loc: &core::panic::Location) {
    #[cfg(target_os = "none")]
    let cpu = crate::kernel::panic::smp_processor_id();
    #[cfg(not(target_os = "none"))]
    let cpu = 0;
    pr_warn!(
        "WARNING: CPU: {} PID: 0 at {}:{}",
        cpu,
        loc.file(),
        loc.line()
    );
    pr_warn!("Modules linked in:");
    #[cfg(target_os = "none")]
    crate::kernel::panic::dump_stack();
    pr_warn!("---[ end trace 0000000000000000 ]---");
}
