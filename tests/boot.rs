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
expect-output Kernel command line: batch loglevel=7 foo=bar loglevel=x
expect-output Malformed early option 'loglevel'
expect-output Unknown kernel command line parameters "foo=bar", will be passed to user space.
expect-output ktest:
run --append "quiet" -- -machine virtualization=on
expect-no-output Machine model
expect-no-output ok -
run --append "x.p0=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p1=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p2=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p3=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p4=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p5=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p6=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p7=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p8=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p9=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p10=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p11=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p12=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p13=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p14=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p15=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p16=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p17=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p18=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p19=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p20=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p21=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p22=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p23=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p24=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p25=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p26=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p27=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p28=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p29=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p30=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p31=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p32=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p33=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p34=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p35=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p36=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p37=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p38=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p39=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p40=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p41=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p42=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p43=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p44=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p45=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p46=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p47=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p48=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy x.p49=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
expect-output Kernel command line truncated to 2047 of
expect-output Kernel command line: batch x.p0=
expect-output ok - a 2339-byte command line is cut
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
        cmdline.starts_with("batch"),
        "command line read from /chosen/bootargs, scripts/run's `batch` first: {}",
        &cmdline[..cmdline.len().min(80)]
    );
    // A printk record holds at most ~1000 bytes, so a long line is matched by its start.
    let head = &cmdline[..cmdline.len().min(200)];
    check!(
        printk::log_contains("Kernel command line: ") && printk::log_contains(head),
        "command line printed"
    );
    if cmdline.contains("x.p0=") {
        check!(
            cmdline.len() == arm64_mm::kernel::params::COMMAND_LINE_SIZE - 1,
            "a 2339-byte command line is cut to COMMAND_LINE_SIZE - 1 = 2047 bytes ({})",
            cmdline.len()
        );
    }
    if cmdline.contains("loglevel=7") {
        // `loglevel=7` was applied before the malformed `loglevel=x` was reported.
        check!(printk::console_loglevel() == 7, "loglevel=7 applied");
    }
    ktest::finish()
}
