//! Faults: a deliberate data abort is reported with its decoded cause. In-guest, the
//! exception-table probes return the decoded fault; with `fault.oops` on the command line
//! the kernel takes an unhandled abort and must print Linux's Oops report and exit 1.
#![no_std]
#![no_main]

use arm64_mm::arch::aarch64::esr::FaultKind;
use arm64_mm::arch::aarch64::kernel::extable::{probe_exec, probe_read_u8};
use arm64_mm::kernel::ktest;
use arm64_mm::kernel::params::boot_command_line;
use arm64_mm::{check, qemu_test};

qemu_test!(
    r#"
run
expect-output ok - probe of an unmapped kernel address
run --append "fault.oops"
expect-exit 1
expect-output Unable to handle kernel paging request at virtual address 0000dead00000000
expect-output Mem abort info:
expect-output   ESR = 0x0000000096000004
expect-output   EC = 0x25: DABT (current EL), IL = 32 bits
expect-output   FSC = 0x04: level 0 translation fault
expect-output Data abort info:
expect-output   CM = 0, WnR = 0
expect-output [0000dead00000000] user address but active_mm is swapper
expect-output Internal error: Oops: 0000000096000004 [#1] SMP
expect-output pc : fault::oops
expect-output Call trace:
expect-output  kernel_init+
expect-output Kernel panic - not syncing: Oops: Fatal exception
run --append "fault.between"
expect-exit 1
expect-output [8000dead00000000] address between user and kernel address ranges
run --append "fault.null"
expect-exit 1
expect-output Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008
expect-output level 0 translation fault
"#
);

#[inline(never)]
fn oops(addr: u64) -> u8 {
    // SAFETY: deliberately unsound: this read faults, which is what the test checks.
    unsafe { core::ptr::read_volatile(addr as *const u8) }
}

#[no_mangle]
pub fn kernel_init() -> ! {
    let cmdline = boot_command_line();
    if cmdline.contains("fault.oops") {
        oops(0x0000_dead_0000_0000);
    }
    if cmdline.contains("fault.between") {
        oops(0x8000_dead_0000_0000);
    }
    if cmdline.contains("fault.null") {
        oops(8);
    }
    let r = probe_read_u8(0xffff_7000_0000_0000);
    check!(
        matches!(r, Err(f) if f.kind == FaultKind::Translation && f.far == 0xffff_7000_0000_0000 && !f.write),
        "probe of an unmapped kernel address: {:?}",
        r
    );
    let r = probe_read_u8(kernel_init as *const () as u64);
    check!(r.is_ok(), "probe of kernel text reads");
    // SAFETY: the target is unmapped, so nothing runs; the probe reports the abort.
    let r = unsafe { probe_exec(0xffff_7000_0000_1000) };
    check!(
        matches!(r, Err(f) if f.instruction && f.kind == FaultKind::Translation),
        "executing an unmapped address is an instruction abort: {:?}",
        r
    );
    ktest::finish()
}
