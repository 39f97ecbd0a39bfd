//! Early memory: the device tree's memory reaches memblock minus what Linux removes, and
//! the reserved list holds the kernel, the DTB, the initrd, /memreserve/ and
//! /reserved-memory. Bad device trees and boot parameters give Linux's behaviour or a clear
//! message, never a hang.
#![no_std]
#![no_main]

use arm64_mm::arch::aarch64::kernel::setup::{__fdt_pointer, device_tree};
use arm64_mm::arch::aarch64::memory::pa_symbol;
use arm64_mm::arch::aarch64::mm::init::{CRASHK_RES, PHYS_INITRD};
use arm64_mm::kernel::ktest;
use arm64_mm::kernel::params::boot_command_line;
use arm64_mm::mm::memblock::MEMBLOCK;
use arm64_mm::mm::PhysAddr;
use arm64_mm::{check, qemu_test};
use core::sync::atomic::Ordering;

// The crafted trees come in through the replacement boot stub (QEMU rewrites the memory
// nodes of a -dtb file); their bootargs carry `memblock=debug batch`.
qemu_test!(
    r#"
run -m 128M --append "memblock=debug"
expect-output memblock_reserve: [0x
expect-output MEMBLOCK configuration:
expect-output  memory size = 0x0000000008000000
expect-output mm: memblock: memory 0x8000000 (131072 KiB)
run -m 4G --append "test.total=4194304"
expect-output mm: memblock: memory 0x100000000 (4194304 KiB) in 1 regions
run -m 8G --append "test.total=8388608"
expect-output mm: memblock: memory 0x200000000 (8388608 KiB) in 1 regions
run -m 4G --numa 2 --append "test.total=4194304"
expect-output numa-node-id 1
expect-output numa-node-id 0
run -m 3000M --append "test.total=3072000"
run -m 1G --append "mem=256M test.total=262144"
expect-output Memory limited to 256MB
run -m 1G --append "mem=1M"
expect-exit 1
expect-output Memory limited to 1MB
expect-output Kernel panic - not syncing: vmemmap: cannot allocate 2 MiB of memmap on node 0
run -m 1G --append "mem=12Q"
expect-output Malformed early option 'mem'
run -m 1G --append "mem=garbage"
expect-output Malformed early option 'mem'
run -m 1G --append "crashkernel=64M test.total=1048576"
expect-output crashkernel reserved: 0x000000007
expect-output (64 MB)
run -m 4G --append "crashkernel=256M,high"
expect-output crashkernel reserved: 0x00000001
expect-output crashkernel low memory reserved: 0xf4000000 - 0xfc000000 (128 MB)
run -m 1G --append "crashkernel=xyz"
expect-output crashkernel: memory value expected
run -m 256M --append "memtest=1"
expect-output early_memtest: # of tests: 1
expect-output pattern 0000000000000000
run -m 1G -- -initrd tests/fixtures/boot/initrd.img
expect-output OF: fdt: initrd [mem 0x0000000048000000-0x000000004801869f]
run -m 1G -- -device loader,file=tests/fixtures/dtb/bad/zero-size.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-output OF: fdt: /memory@80000000: reg: entry 0 at 0x80000000 has size 0, skipped
expect-output  memory size = 0x0000000040000000
run -m 1G -- -device loader,file=tests/fixtures/dtb/bad/overlap.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-output overlaps memory already added; using the union
expect-output  memory size = 0x0000000040000000
run -m 1G -- -device loader,file=tests/fixtures/dtb/bad/above-pa.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-output memblock_remove: [0x0001000000000000-0x0000fffffffffffe]
expect-output memblock: ignoring memory above the CPU's 44-bit physical address range [mem 0x0000100000000000-0x000010003fffffff]
expect-output  memory size = 0x0000000040000000
run -m 1G -- -device loader,file=tests/fixtures/dtb/bad/usable-memory.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-output  memory size = 0x0000000020000000
run -m 1G -- -device loader,file=tests/fixtures/dtb/bad/three-cells.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-exit 1
expect-output OF: fdt: /memory@40000000: reg: cannot decode with #address-cells = 3: at most 2 cells fit a 64-bit number
expect-output Kernel panic - not syncing: no usable memory
run -m 1G -- -device loader,file=tests/fixtures/dtb/bad/reserved.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-output Reserved memory: failed to reserve memory for node 'over-kernel@40200000': base 0x0000000040200000, size 2 MiB (already reserved)
expect-output Reserved memory: reserved region for node 'secmon@7e000000': base 0x000000007e000000, size 1 MiB
expect-output OF: reserved mem: allocated memory for 'pool' node: base 0x000000005fc00000, size 4 MiB
expect-output flags: 0x4
run -m 2G --smp 1 --dtb tests/fixtures/boot/many-ranges.dtb
expect-output OF: fdt: memblock's memory array is full (128 regions); ignoring [mem 0x0000000058000000-0x00000000580fffff]
expect-output K/262144K available
expect-no-output cannot split
run -m 1G --dtb tests/fixtures/boot/kernel-outside-memory.dtb
expect-exit 1
expect-output Kernel panic - not syncing: the kernel image [mem 0x0000000040200000-
expect-output is not inside the memory the device tree describes
expect-no-output Unable to handle kernel
"#
);

extern "C" {
    static _stext: u8;
    static _end: u8;
}

/// The `test.total=<KiB>` parameter: the memory total Linux reports for the machine.
fn expected_total_kib() -> Option<u64> {
    let v = boot_command_line()
        .split(' ')
        .find_map(|a| a.strip_prefix("test.total="))?;
    v.parse().ok()
}

#[no_mangle]
pub fn kernel_init() -> ! {
    let mb = MEMBLOCK.lock();
    let regions = mb.memory().regions();
    check!(!regions.is_empty(), "memblock has memory");
    check!(
        regions
            .windows(2)
            .all(|w| w[0].base.as_u64() + w[0].size <= w[1].base.as_u64()),
        "memory regions sorted and disjoint"
    );
    // The device tree's memory, minus nothing on a plain QEMU machine.
    let dt_total: u64 = device_tree().memory_ranges().map(|r| r.size).sum();
    if !boot_command_line().contains("mem=")
        && !device_tree().machine_name().unwrap_or("").contains("test:")
    {
        check!(
            mb.phys_mem_size() == dt_total,
            "memblock memory = the FDT's ({:#x})",
            dt_total
        );
    }
    if let Some(kib) = expected_total_kib() {
        check!(
            mb.phys_mem_size() >> 10 == kib,
            "memory total {} KiB = Linux's {} KiB",
            mb.phys_mem_size() >> 10,
            kib
        );
    }
    let stext = pa_symbol(&raw const _stext);
    let end = pa_symbol(&raw const _end);
    // The kernel image is reserved, except init_pg_dir, which paging_init gave back.
    check!(mb.is_reserved(stext), "kernel text reserved");
    check!(mb.is_reserved(end - 1), "kernel end reserved");
    let dtb = PhysAddr(__fdt_pointer.load(Ordering::Relaxed));
    check!(
        mb.is_region_reserved(dtb, device_tree().totalsize() as u64),
        "the DTB is reserved"
    );
    if let Some(&(start, size)) = PHYS_INITRD.get() {
        check!(
            mb.is_reserved(start) && mb.is_reserved(start + size - 1),
            "the initrd is reserved"
        );
    }
    if let Some(&(base, size)) = CRASHK_RES.get() {
        check!(
            mb.is_region_reserved(base, size),
            "the crash kernel region is reserved"
        );
    }
    for r in device_tree().mem_rsv() {
        check!(
            mb.is_region_reserved(r.base, r.size),
            "/memreserve/ {:#x}+{:#x} reserved",
            r.base.as_u64(),
            r.size
        );
    }
    drop(mb);
    ktest::finish()
}
