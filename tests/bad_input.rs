//! The bad-input matrix (issue 17): firmware tables and command lines a kernel must survive.
//! Each boot ends in what Linux 6.1 does with the same input, or in a clear message naming
//! the node, property or parameter, with exit status 1 when fatal — never a hang, an Oops, an
//! arithmetic overflow or a silently wrong layout. The crafted device trees come from
//! tests/fixtures/boot/bad_input.py; they are loaded with `-device loader` and entered through
//! a replacement boot stub that passes their address in x0 (QEMU rewrites a `-dtb` file's
//! memory and /chosen). Earlier cases live beside the code they covered: tests/bad_dtb.rs
//! (bad magic, totalsize over 2 MiB, no tree), tests/memblock.rs (zero-sized, overlapping,
//! above-PA and three-cell memory nodes, /reserved-memory over the kernel, hundreds of
//! separate ranges, the kernel outside memory, mem=/crashkernel= garbage), tests/slub.rs
//! (slub_min_order out of range), tests/boot.rs (a command line longer than the buffer).
#![no_std]
#![no_main]

use arm64_mm::arch::aarch64::mm::init::PHYS_INITRD;
use arm64_mm::kernel::ktest;
use arm64_mm::kernel::params::boot_command_line;
use arm64_mm::mm::memblock::MEMBLOCK;
use arm64_mm::mm::PhysAddr;
use arm64_mm::{check, qemu_test};

qemu_test!(
    r#"
# A header whose totalsize ends inside the structure block: refused, exit 1.
run -m 1G -- -device loader,file=tests/fixtures/boot/bad-input/truncated.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-exit 1
expect-output Error: invalid device tree blob at physical address 0x000000004c000000
expect-output Kernel panic - not syncing: invalid device tree: structure block at offset 0x38 (size 0x
expect-output extends past totalsize 0x100
# totalsize runs 1 MiB past the blob and past the end of RAM: as Linux, the header is good,
# the blob's blocks are read, the rest is only reserved.
run -m 1G -- -device loader,file=tests/fixtures/boot/bad-input/past-end.dtb,addr=0x7fff0000 -device loader,file=tests/fixtures/boot/stub-7fff0000.bin,addr=0x7ff00000 -device loader,addr=0x7ff00000,cpu-num=0
expect-output Machine model: arm64-mm test: past-end
expect-output ktest: 4 passed, 0 failed
# A property name outside the strings block: refused, naming the property.
run -m 1G -- -device loader,file=tests/fixtures/boot/bad-input/bad-string.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-exit 1
expect-output Kernel panic - not syncing: invalid device tree: property at offset 0x
expect-output name offset 0xfffff0 is outside the 0x
# 300 touching memory nodes: one merged region of 428 MiB.
run -m 1G -- -device loader,file=tests/fixtures/boot/bad-input/touching.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-output mm: memblock: memory 0x1ac00000 (438272 KiB) in 1 regions
expect-output ktest: 4 passed, 0 failed
# /memreserve/ over all RAM: Linux's panic when the first page table cannot be allocated.
run -m 1G -- -device loader,file=tests/fixtures/boot/bad-input/reserve-all.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-exit 1
expect-output Kernel panic - not syncing: Failed to allocate page table page
expect-no-output Unable to handle kernel
# A /reserved-memory region over all RAM: the same.
run -m 1G -- -device loader,file=tests/fixtures/boot/bad-input/resmem-all.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-exit 1
expect-output Reserved memory: reserved region for node 'all@40000000': base 0x0000000040000000, size 1024 MiB
expect-output Kernel panic - not syncing: Failed to allocate page table page
expect-no-output Unable to handle kernel
# A no-map /reserved-memory region over all RAM (the kernel included): refused, as Linux.
run -m 1G -- -device loader,file=tests/fixtures/boot/bad-input/nomap-all.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-output Reserved memory: failed to reserve memory for node 'all@40000000': base 0x0000000040000000, size 1024 MiB
expect-output ktest: 4 passed, 0 failed
# An initrd where there is no memory: dropped, memory unchanged.
run -m 1G -- -device loader,file=tests/fixtures/boot/bad-input/initrd-hole.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-output INITRD: 0x100000000+0x00100000 is not a memory region - disabling initrd
expect-output ktest: 5 passed, 0 failed
# An initrd below DRAM: Linux's warning, dropped.
run -m 1G -- -device loader,file=tests/fixtures/boot/bad-input/initrd-below.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-output initrd not fully accessible via the linear mapping -- please check your bootloader ...
expect-output ktest: 5 passed, 0 failed
# An initrd that ends before it starts: ignored, naming the property.
run -m 1G -- -device loader,file=tests/fixtures/boot/bad-input/initrd-reversed.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-output OF: fdt: /chosen: linux,initrd-start: linux,initrd-start 0x48000000 is above linux,initrd-end 0x47000000: initrd ignored
expect-output ktest: 5 passed, 0 failed
# A memory entry whose end wraps past 2^64: skipped, naming the node.
run -m 1G -- -device loader,file=tests/fixtures/boot/bad-input/reg-wrap.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-output OF: fdt: /memory@0: reg: entry 0: base 0xfffffffffffff000 + size 0x2000 wraps past 2^64, skipped
expect-output ktest: 4 passed, 0 failed
# The only memory entry wraps: no memory at all, a clear panic.
run -m 1G -- -device loader,file=tests/fixtures/boot/bad-input/reg-huge.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-exit 1
expect-output OF: fdt: /memory@0: reg: entry 0: base 0x40000000 + size 0xffffffffffffffff wraps past 2^64, skipped
expect-output Kernel panic - not syncing: no usable memory
# A reg of 12 bytes: the partial entry is ignored, naming the node.
run -m 1G -- -device loader,file=tests/fixtures/boot/bad-input/reg-odd.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-output OF: fdt: /memory@0: reg: length 12 is not a multiple of the 16-byte entry; the trailing 12 bytes are ignored
expect-output ktest: 4 passed, 0 failed
# A /memreserve/ entry wrapping past 2^64: capped at 2^64 as memblock_cap_size() does.
run -m 1G -- -device loader,file=tests/fixtures/boot/bad-input/memreserve-wrap.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-output ktest: 5 passed, 0 failed
# A dynamic reservation larger than memory: Linux's failure message, boot goes on.
run -m 1G -- -device loader,file=tests/fixtures/boot/bad-input/dynamic-huge.dtb,addr=0x4c000000 -device loader,file=tests/fixtures/boot/stub-4c000000.bin,addr=0x4c100000 -device loader,addr=0x4c100000,cpu-num=0
expect-output OF: reserved mem: failed to allocate memory for node 'pool'
expect-output ktest: 4 passed, 0 failed
# Nearly the least RAM this test kernel boots with (4M: QEMU says "Not enough space for DTB";
# 5M: the debug build's image leaves too little for the per-CPU areas, a panic that names it).
run -m 6M --smp 4
expect-output K/6144K available
expect-output smp: Brought up 1 node, 4 CPUs
expect-output ktest: 3 passed, 0 failed
# Garbage in every parameter the kernel registers: each as Linux treats it, memory unchanged.
run -m 1G --smp 2 --append "test.total=1048576 mem=x nr_cpus=x slub_debug=~~ slub_min_order=x slub_max_order=x slub_min_objects=x loglevel=x crashkernel=x memtest=x numa=x kernelcore=x movablecore=x memblock=x rodata=x ptdump=x vmallocinfo=x slabinfo=x earlycon=x console=x panic=x mminit_loglevel=x mm_reports=x slab_merge=x slab_nomerge=x slub_nomerge=x quiet=x debug=x ignore_loglevel=x"
expect-output Malformed early option 'mem'
expect-output Malformed early option 'loglevel'
expect-output Malformed early option 'memtest'
expect-output Malformed early option 'kernelcore'
expect-output Malformed early option 'movablecore'
expect-output Malformed early option 'rodata'
expect-output Malformed early option 'earlycon'
expect-output Malformed early option 'mminit_loglevel'
expect-output Malformed early option 'mm_reports'
expect-output crashkernel: memory value expected
expect-output slub_debug option '~' unknown. skipped
expect-output Malformed option 'slub_min_order'
expect-output Malformed option 'slub_max_order'
expect-output Malformed option 'slub_min_objects'
expect-output SLUB: HWalign=64, Order=0-3, MinObjects=0, CPUs=2, Nodes=1
expect-output smp: Brought up 1 node, 2 CPUs
expect-output ktest: 4 passed, 0 failed
# Values past every type's range: no overflow, each clamped or refused.
run -m 1G --smp 2 --append "test.total=1048576 mem=99999999999999999999G nr_cpus=-1 maxcpus=99999999999 slub_min_order=-1 slub_max_order=4294967295 slub_min_objects=4294967296 loglevel=99999999999 crashkernel=99999999999G memtest=4294967297 kernelcore=200% movablecore=99999999999999G mminit_loglevel=-1 panic=99999999999 numa=fake=99999"
expect-output Malformed early option 'mem'
expect-output Malformed early option 'memtest'
expect-output WARNING: CPU: 0 PID: 0 at mm/page_alloc.c (coremem > 100)
expect-output crashkernel: memory value out of range
expect-output SLUB: HWalign=64, Order=0-10, MinObjects=0, CPUs=2, Nodes=1
expect-output smp: Brought up 1 node, 2 CPUs
expect-output ktest: 4 passed, 0 failed
# Empty values and missing values.
run -m 1G --smp 2 --append "test.total=1048576 mem= nr_cpus= maxcpus= slub_debug= slub_min_order= slub_max_order= slub_min_objects= loglevel= crashkernel= memtest= numa= mm_report= kernelcore= movablecore= memblock= rodata= earlycon= console= mminit_loglevel= mm_reports= mem nr_cpus slub_min_order loglevel crashkernel numa kernelcore"
expect-output Malformed early option 'mm_report'
expect-output Malformed early option 'numa'
expect-output crashkernel: memory value expected
expect-output smp: Brought up 1 node, 2 CPUs
expect-output ktest: 4 passed, 0 failed
# The parameters of CMA, swiotlb, heap init and the debugging facilities: garbage (cma=x is
# size 0 to Linux's memparse: no area, and swiotlb's buffer takes the top below 4 GiB)...
run -m 4G --smp 2 --append "test.total=4194304 cma=x swiotlb=x kfence.sample_interval=x kfence.num_objects=x kfence.burst=x kmemleak=x kmemleak_min_age=x debug_pagealloc=x page_owner=x init_on_alloc=x init_on_free=x page_alloc.shuffle=x"
expect-output Malformed early option 'swiotlb'
expect-output Malformed early option 'kfence.sample_interval'
expect-output kfence: num_objects=x is not in 1..65535; keeping 255
expect-output Malformed early option 'kfence.burst'
expect-output Malformed early option 'kmemleak'
expect-output Malformed early option 'kmemleak_min_age'
expect-output Malformed early option 'debug_pagealloc'
expect-output Malformed early option 'page_owner'
expect-output Malformed early option 'init_on_alloc'
expect-output Malformed early option 'init_on_free'
expect-output Booting kernel: `x' invalid for parameter `page_alloc.shuffle'
expect-output K reserved, 0K cma-reserved)
expect-output software IO TLB: mapped [mem 0x00000000fbfff000-0x00000000fffff000] (64MB)
expect-no-output kfence: initialized
expect-output ktest: 4 passed, 0 failed
# ... values past their range (Linux's messages: the area does not fit, the buffer cannot be
# allocated, and the boot goes on without them) ...
run -m 4G --smp 2 --append "test.total=4194304 cma=99999999999G swiotlb=99999999999 kfence.sample_interval=99999999999999999999 kfence.num_objects=99999999 kmemleak_min_age=-1"
expect-output cma: Failed to reserve
expect-output software IO TLB: swiotlb_init_remap: failed to allocate tlb structure
expect-output Malformed early option 'kfence.sample_interval'
expect-output kfence: num_objects=99999999 is not in 1..65535; keeping 255
expect-output Malformed early option 'kmemleak_min_age'
expect-output ktest: 4 passed, 0 failed
# ... and empty or missing values.
run -m 4G --smp 2 --append "test.total=4194304 cma= swiotlb= kfence.num_objects= kfence.sample_interval= kmemleak= debug_pagealloc= page_owner= cma swiotlb kmemleak"
expect-output cma: Config string not provided
expect-output Malformed early option 'cma'
expect-output Malformed early option 'swiotlb'
expect-output Malformed early option 'kfence.num_objects'
expect-output Malformed early option 'debug_pagealloc'
expect-output Malformed early option 'page_owner'
expect-output software IO TLB: mapped [mem 0x00000000fbfff000-0x00000000fffff000] (64MB)
expect-output ktest: 4 passed, 0 failed
"#
);

/// The `test.total=<KiB>` parameter: the memory total the boot must end with.
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
    check!(
        regions
            .windows(2)
            .all(|w| w[0].base.as_u64() + w[0].size < w[1].base.as_u64()),
        "memory regions sorted, disjoint and merged"
    );
    if let Some(kib) = expected_total_kib() {
        check!(
            mb.phys_mem_size() >> 10 == kib,
            "memory total {} KiB, expected {} KiB",
            mb.phys_mem_size() >> 10,
            kib
        );
    }
    check!(regions.iter().all(|r| r.size > 0), "no empty memory region");
    let reserved = mb.reserved().regions();
    check!(
        reserved
            .iter()
            .all(|r| r.size > 0 && r.base.as_u64().checked_add(r.size - 1).is_some())
            && reserved
                .windows(2)
                .all(|w| w[0].base.as_u64() + w[0].size <= w[1].base.as_u64()),
        "reserved regions non-empty, sorted, disjoint, none past 2^64"
    );
    if boot_command_line().contains("test.top_reserved") {
        check!(
            mb.is_reserved(PhysAddr(0xffff_ffff_ffff_f000)),
            "the wrapping /memreserve/ entry reserved up to 2^64"
        );
    }
    drop(mb);
    if boot_command_line().contains("test.noinitrd") {
        check!(PHYS_INITRD.get().is_none(), "the initrd was dropped");
    }
    ktest::finish()
}
