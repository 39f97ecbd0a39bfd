//! A device tree the kernel cannot use stops the boot with Linux's message, the reason,
//! and exit status 1 — never a hang. QEMU rewrites any `-dtb` it is given, so the corrupt
//! blobs are loaded with `-device loader` and entered through a replacement boot stub
//! (tests/fixtures/boot/make.py) that passes their address in x0.
#![no_std]
#![no_main]

use arm64_mm::kernel::ktest;
use arm64_mm::{check, qemu_test};

qemu_test!(
    r#"
run -- -device loader,file=tests/fixtures/boot/bad-magic.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-exit 1
expect-output Error: invalid device tree blob at physical address 0x000000004c000000
expect-output Kernel panic - not syncing: invalid device tree: bad magic 0x12345678 (expected 0xd00dfeed)
run -- -device loader,file=tests/fixtures/boot/too-big.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-exit 1
expect-output Kernel panic - not syncing: invalid device tree: totalsize 0x400000 exceeds 0x200000
run -- -device loader,file=tests/fixtures/boot/stub-0.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-exit 1
expect-output Kernel panic - not syncing: invalid device tree: no device tree pointer (x0 = 0 at entry)
"#
);

/// Reached only if a bad tree was accepted: fail loudly.
#[no_mangle]
pub fn kernel_init() -> ! {
    check!(false, "the kernel booted with a corrupt device tree");
    ktest::finish()
}
