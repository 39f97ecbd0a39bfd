//! Boot: the kernel reaches start_kernel at its high virtual address with the MMU on, at
//! EL1 from EL1 or EL2 entry; the console prints; the command line is parsed (known early
//! parameters applied, malformed and unknown ones reported, not fatal).
#![no_std]
#![no_main]

use aarch64_cpu::registers::{CurrentEL, SCTLR_EL1};
use arm64_mm::arch::aarch64::memory::KIMAGE_VADDR;
use arm64_mm::kernel::params::boot_command_line;
use arm64_mm::kernel::{ktest, printk};
use arm64_mm::{check, qemu_test};
use tock_registers::interfaces::Readable;

qemu_test!(
    r#"
run --append "loglevel=7 foo=bar loglevel=x"
expect-output Booting Linux on physical CPU 0x0000000000
expect-output CPU: booted at EL1, running at EL1
expect-output Machine model: linux,dummy-virt
expect-output printk: bootconsole [pl11] enabled
expect-output Kernel command line: loglevel=7 foo=bar loglevel=x batch
expect-output Malformed early option 'loglevel'
expect-output Unknown kernel command line parameters "foo=bar", will be passed to user space.
expect-output ktest:
run --append "quiet" -- -machine virtualization=on
expect-no-output Machine model
expect-no-output ok -
run --append "ignore_loglevel" -- -machine virtualization=on
expect-output CPU: booted at EL2, running at EL1
expect-output printk: debug: ignoring loglevel setting.
"#
);

#[no_mangle]
pub fn kernel_init() -> ! {
    let pc = kernel_init as *const () as u64;
    check!(
        pc >= KIMAGE_VADDR,
        "running at the kernel's virtual address ({:#x})",
        pc
    );
    check!(SCTLR_EL1.is_set(SCTLR_EL1::M), "MMU on");
    check!(
        SCTLR_EL1.is_set(SCTLR_EL1::C) && SCTLR_EL1.is_set(SCTLR_EL1::I),
        "caches on"
    );
    check!(CurrentEL.read(CurrentEL::EL) == 1, "running at EL1");
    check!(
        printk::log_contains("Booting Linux on physical CPU"),
        "start_kernel printed its banner"
    );
    check!(printk::console().is_some(), "a console is registered");
    let cmdline = boot_command_line();
    check!(
        cmdline.ends_with("batch"),
        "command line read from /chosen/bootargs: {}",
        cmdline
    );
    check!(
        printk::log_contains("Kernel command line: ") && printk::log_contains(cmdline),
        "command line printed"
    );
    if cmdline.contains("loglevel=7") {
        // `loglevel=7` was applied before the malformed `loglevel=x` was reported.
        check!(printk::console_loglevel() == 7, "loglevel=7 applied");
    }
    ktest::finish()
}
