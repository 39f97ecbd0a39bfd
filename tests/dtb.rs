//! `scripts/run --dtb FILE` hands the kernel the blob exactly as written: a crafted tree
//! with two memory banks and a `/memreserve/` entry (tests/fixtures/boot/two-banks.dts)
//! reaches memblock unchanged, and `--append`/`--batch` only add to its bootargs. QEMU's own
//! `-dtb` would replace the memory nodes with one node sized by `-m` and the bootargs with
//! `-append`, so scripts/run loads the blob with `-device loader` and enters the kernel
//! through a boot stub (scripts/fdtboot.py). The runs use more QEMU RAM (`-m 2G`) than the
//! tree describes: the kernel must see the tree's memory, not QEMU's.
//! (Linux: arch/arm64/kernel/setup.c setup_machine_fdt, drivers/of/fdt.c
//! early_init_dt_scan_memory and early_init_fdt_scan_reserved_mem.)
#![no_std]
#![no_main]

use arm64_mm::arch::aarch64::kernel::setup::{__fdt_pointer, device_tree};
use arm64_mm::kernel::ktest;
use arm64_mm::kernel::params::boot_command_line;
use arm64_mm::mm::memblock::MEMBLOCK;
use arm64_mm::mm::PhysAddr;
use arm64_mm::{check, qemu_test};
use core::sync::atomic::Ordering;

qemu_test!(
    r#"
run --smp 1 -m 1G --dtb tests/fixtures/boot/two-banks.dtb --append "dtbtest.appended=1"
expect-output Machine model: arm64-mm test: two-banks
expect-output OF: fdt: memory node /memory@40000000: [mem 0x0000000040000000-0x000000004fffffff] (256 MiB)
expect-output OF: fdt: memory node /memory@60000000: [mem 0x0000000060000000-0x000000007fffffff] (512 MiB)
expect-output   node   0: [mem 0x0000000040000000-0x000000004fffffff]
expect-output   node   0: [mem 0x0000000060000000-0x000000007fffffff]
expect-output  memory size = 0x0000000030000000
expect-output  memory.cnt  = 0x2
expect-output [0x0000000070000000-0x00000000700fffff], 0x0000000000100000 bytes flags: 0x0
expect-output Kernel command line: memblock=debug dtbtest.bootargs=as-written batch dtbtest.appended=1
expect-output mm: memblock: memory 0x30000000 (786432 KiB) in 2 regions
run --smp 2 -m 2G --dtb tests/fixtures/boot/two-banks.dtb
expect-output Kernel command line: memblock=debug dtbtest.bootargs=as-written batch
expect-output mm: memblock: memory 0x30000000 (786432 KiB) in 2 regions
expect-no-output [mem 0x0000000040000000-0x00000000bfffffff]
"#
);

/// The banks and the reservation two-banks.dts describes.
const BANKS: [(u64, u64); 2] = [(0x4000_0000, 0x1000_0000), (0x6000_0000, 0x2000_0000)];
const MEMRESERVE: (u64, u64) = (0x7000_0000, 0x10_0000);

#[no_mangle]
pub fn kernel_init() -> ! {
    let mb = MEMBLOCK.lock();
    let regions = mb.memory().regions();
    check!(
        regions.len() == BANKS.len(),
        "memblock has {} memory regions, the tree 2",
        regions.len()
    );
    for (r, &(base, size)) in regions.iter().zip(BANKS.iter()) {
        check!(
            r.base.as_u64() == base && r.size == size,
            "memory region {:#x}+{:#x} = the tree's bank {:#x}+{:#x}",
            r.base.as_u64(),
            r.size,
            base,
            size
        );
    }
    check!(
        !mb.is_memory(PhysAddr(0x5000_0000)),
        "the hole between the banks is not memory"
    );
    let first = device_tree()
        .mem_rsv()
        .next()
        .map(|r| (r.base.as_u64(), r.size));
    let rsv = (device_tree().mem_rsv().count(), first);
    check!(
        rsv == (1, Some(MEMRESERVE)),
        "the tree the kernel reads has exactly the one /memreserve/ entry"
    );
    check!(
        mb.is_region_reserved(PhysAddr(MEMRESERVE.0), MEMRESERVE.1),
        "/memreserve/ {:#x}+{:#x} reserved",
        MEMRESERVE.0,
        MEMRESERVE.1
    );
    let fdt = __fdt_pointer.load(Ordering::Relaxed);
    check!(
        BANKS
            .iter()
            .any(|&(b, s)| fdt >= b && fdt + device_tree().totalsize() as u64 <= b + s),
        "the blob ({:#x}) lies in the tree's own memory",
        fdt
    );
    check!(
        mb.is_region_reserved(PhysAddr(fdt), device_tree().totalsize() as u64),
        "the blob is reserved"
    );
    check!(
        boot_command_line().starts_with("memblock=debug dtbtest.bootargs=as-written"),
        "the tree's bootargs come first, unchanged"
    );
    drop(mb);
    ktest::finish()
}
