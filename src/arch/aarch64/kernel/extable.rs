//! Exception tables (Linux: arch/arm64/mm/extable.c): instructions allowed to fault, and
//! where to continue when they do. The kernel uses them for the probe accessors below
//! (Linux: copy_from_kernel_nofault) and for the semihosting trap; the tests use the
//! probes to break things on purpose and check the decoded fault.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::aarch64::esr::FaultInfo;
use crate::arch::aarch64::ptrace::PtRegs;
use crate::kernel::sections;

/// One `__ex_table` entry: absolute addresses of the faulting instruction and the fixup.
#[repr(C)]
struct ExceptionTableEntry {
    insn: u64,
    fixup: u64,
}

core::arch::global_asm!(
    r#"
    .section .text.probe, "ax"
    .global __probe_read_u8
__probe_read_u8:
1:  ldrb    w2, [x0]
    mov     x0, x2
    mov     x1, #0
    ret
2:  mov     x0, #0
    mov     x1, #1
    ret
    .pushsection __ex_table, "a"
    .quad   1b, 2b
    .popsection

    .global __probe_write_u8
__probe_write_u8:
1:  strb    w1, [x0]
    mov     x0, #0
    mov     x1, #0
    ret
2:  mov     x0, #0
    mov     x1, #1
    ret
    .pushsection __ex_table, "a"
    .quad   1b, 2b
    .popsection

    .global __probe_exec
__probe_exec:
    stp     x29, x30, [sp, #-16]!
    mov     x29, sp
    blr     x0
    ldp     x29, x30, [sp], #16
    mov     x0, #0
    mov     x1, #0
    ret
    .global __probe_exec_fixup
__probe_exec_fixup:
    ldp     x29, x30, [sp], #16
    mov     x0, #0
    mov     x1, #1
    ret
"#
);

#[repr(C)]
struct ProbeResult {
    value: u64,
    faulted: u64,
}

extern "C" {
    fn __probe_read_u8(addr: u64) -> ProbeResult;
    fn __probe_write_u8(addr: u64, val: u8) -> ProbeResult;
    fn __probe_exec(addr: u64) -> ProbeResult;
    fn __probe_exec_fixup();
}

/// The last fault a fixup absorbed, for the caller of a probe to inspect.
static LAST_ESR: AtomicU64 = AtomicU64::new(0);
static LAST_FAR: AtomicU64 = AtomicU64::new(0);
/// The address `probe_exec` branches to: an instruction abort there is expected.
static EXEC_TARGET: AtomicU64 = AtomicU64::new(u64::MAX);

fn table() -> &'static [ExceptionTableEntry] {
    let start = sections::__ex_table_start() as *const ExceptionTableEntry;
    let n = (sections::__ex_table_end() - sections::__ex_table_start()) as usize
        / core::mem::size_of::<ExceptionTableEntry>();
    // SAFETY: the linker script collects every `__ex_table` entry (pairs of .quad written
    // by the assembly above, 16-byte aligned) between these symbols, in rodata.
    unsafe { core::slice::from_raw_parts(start, n) }
}

fn search(pc: u64) -> Option<u64> {
    table().iter().find(|e| e.insn == pc).map(|e| e.fixup)
}

fn take_fault() -> FaultInfo {
    FaultInfo::decode(
        LAST_ESR.load(Ordering::Relaxed),
        LAST_FAR.load(Ordering::Relaxed),
    )
}

/// Linux: fixup_exception() — resume at the fixup if the faulting instruction has one.
pub fn fixup_exception(regs: &mut PtRegs, info: FaultInfo) -> bool {
    let fixup = if info.instruction && regs.pc == EXEC_TARGET.load(Ordering::Relaxed) {
        Some(__probe_exec_fixup as *const () as u64)
    } else {
        search(regs.pc)
    };
    match fixup {
        Some(f) => {
            LAST_ESR.store(info.esr, Ordering::Relaxed);
            LAST_FAR.store(info.far, Ordering::Relaxed);
            regs.pc = f;
            true
        }
        None => false,
    }
}

/// An undefined-instruction trap at an instruction with a fixup (the semihosting `hlt`
/// when QEMU runs without semihosting) resumes at the fixup too.
pub fn fixup_undef(regs: &mut PtRegs) -> bool {
    match search(regs.pc) {
        Some(f) => {
            regs.pc = f;
            true
        }
        None => false,
    }
}

/// Reads a byte, returning the decoded fault instead of dying if the access faults.
/// Linux: copy_from_kernel_nofault().
pub fn probe_read_u8(addr: u64) -> Result<u8, FaultInfo> {
    // SAFETY: the load is covered by an exception-table entry, so any fault resumes at the
    // fixup; a successful load reads a byte of mapped memory, which is always initialised.
    let r = unsafe { __probe_read_u8(addr) };
    if r.faulted != 0 {
        Err(take_fault())
    } else {
        Ok(r.value as u8)
    }
}

/// Writes a byte, returning the decoded fault instead of dying if the access faults.
/// Linux: copy_to_kernel_nofault().
///
/// # Safety
/// If the write succeeds it changes memory: the caller must own the byte at `addr`.
pub unsafe fn probe_write_u8(addr: u64, val: u8) -> Result<(), FaultInfo> {
    // SAFETY: faults are fixed up; the caller owns the byte if it is writable.
    let r = unsafe { __probe_write_u8(addr, val) };
    if r.faulted != 0 {
        Err(take_fault())
    } else {
        Ok(())
    }
}

/// Branches to `addr`; an instruction abort there comes back as `Err` with the decoded
/// fault, so tests can prove that memory is not executable.
///
/// # Safety
/// If `addr` is executable, the code there runs: it must be a function that returns.
pub unsafe fn probe_exec(addr: u64) -> Result<(), FaultInfo> {
    EXEC_TARGET.store(addr, Ordering::Relaxed);
    // SAFETY: an instruction abort at `addr` is fixed up; otherwise the caller vouches
    // for the code.
    let r = unsafe { __probe_exec(addr) };
    EXEC_TARGET.store(u64::MAX, Ordering::Relaxed);
    if r.faulted != 0 {
        Err(take_fault())
    } else {
        Ok(())
    }
}
