//! BUG() (Linux: include/asm-generic/bug.h, lib/bug.c's report_bug(), and arm64's
//! asm/bug.h, which makes BUG() a `brk #BUG_BRK_IMM` that the BRK handler turns into an
//! Oops: `kernel BUG at FILE:LINE!`, then `Internal error: Oops - BUG: 00000000f2000800`).
//! FILE:LINE is the Rust source of the caller.

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
