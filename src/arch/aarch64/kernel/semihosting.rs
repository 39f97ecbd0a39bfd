//! Arm semihosting (the "Semihosting for AArch32 and AArch64" spec): how a test kernel ends
//! QEMU with an exit status. Needs QEMU's `-semihosting-config enable=on,target=native`;
//! without it the `hlt` is an undefined instruction, which an exception-table entry turns
//! into an error return instead of a crash.

/// SYS_EXIT_EXTENDED: exit with a status code.
pub const SYS_EXIT_EXTENDED: u64 = 0x20;
/// SYS_WRITE0: print a NUL-terminated string on the host's stdout.
const SYS_WRITE0: u64 = 0x04;
/// ADP_Stopped_ApplicationExit.
pub const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x20026;

core::arch::global_asm!(
    r#"
    .section .text.semihosting, "ax"
    .global __semihosting_call
__semihosting_call:
1:  hlt     #0xf000
    mov     x1, #0
    ret
2:  mov     x0, #-1
    mov     x1, #1
    ret
    .pushsection __ex_table, "a"
    .quad   1b, 2b
    .popsection
"#
);

#[repr(C)]
struct CallResult {
    value: u64,
    trapped: u64,
}

extern "C" {
    fn __semihosting_call(op: u64, param: u64) -> CallResult;
}

/// Ends QEMU with `code`. Returns only if semihosting is not enabled.
pub fn exit(code: u32) {
    let block = [ADP_STOPPED_APPLICATION_EXIT, code as u64];
    // SAFETY: the parameter block lives on this stack for the duration of the call, and a
    // trap (semihosting disabled) is fixed up by the exception table.
    unsafe { __semihosting_call(SYS_EXIT_EXTENDED, block.as_ptr() as u64) };
}

/// Writes `s` to the host through semihosting; for output before any console exists.
/// Returns false if semihosting is unavailable.
pub fn write0(s: &str) -> bool {
    let mut buf = [0u8; 256];
    let n = s.len().min(buf.len() - 1);
    buf[..n].copy_from_slice(&s.as_bytes()[..n]);
    // SAFETY: `buf` is NUL-terminated and outlives the call; traps are fixed up.
    let r = unsafe { __semihosting_call(SYS_WRITE0, buf.as_ptr() as u64) };
    r.trapped == 0
}
