//! swiotlb_init as arm64's mem_init() calls it, and the bounce buffer at work (Linux 6.1:
//! kernel/dma/swiotlb.c), plus kvmalloc/kvfree (mm/util.c) on the real allocators.
//!
//! Each boot with a Linux capture compares its memory-management lines with
//! `expect-linux-lines`, the `software IO TLB:` lines included. Linux places the buffer right
//! below CMA's 64 MiB area; the captures here are made with `cma=0` (the buffer's own
//! placement) or with swiotlb= variants, and tests/zones compares the default machines'
//! lines, the buffer below the CMA area. Machines whose memory all lies below the DMA limit
//! print no swiotlb line, as Linux; `swiotlb=noforce` neither.
//!
//! `test.bounce` (-m 4G: ZONE_NORMAL lies above 4 GiB) bounces a buffer above 4 GiB through
//! the buffer: copied in on a DMA_TO_DEVICE map, back on a DMA_FROM_DEVICE unmap, partial
//! syncs; a mapping made on CPU 1 comes from CPU 1's area; the buffer filled to the last
//! slot reports `swiotlb buffer is full` as Linux does, and every slot comes back.
//! `test.kvmalloc` runs kvmalloc/kvfree/kvrealloc on SLUB and vmalloc.
#![no_std]
#![no_main]

use arm64_mm::arch::aarch64::kernel::smp::num_online_cpus;
use arm64_mm::arch::aarch64::kernel::smp_call::smp_call_function_single;
use arm64_mm::arch::aarch64::memory::{phys_to_virt, virt_to_phys};
use arm64_mm::arch::aarch64::mm::init::{max_pfn, ARM64_DMA_PHYS_LIMIT};
use arm64_mm::include::numa::NUMA_NO_NODE;
use arm64_mm::kernel::dma::swiotlb::{
    io_tlb_default_mem, is_swiotlb_buffer, swiotlb_config, swiotlb_sync_single_for_cpu,
    swiotlb_sync_single_for_device, swiotlb_tbl_map_single, swiotlb_tbl_unmap_single, Device,
    DmaDataDirection, IoTlbMem, DMA_MAPPING_ERROR, IO_TLB_SEGSIZE, IO_TLB_SHIFT, IO_TLB_SIZE,
};
use arm64_mm::kernel::ktest;
use arm64_mm::kernel::params::boot_command_line;
use arm64_mm::mm::gfp::{GFP_ATOMIC, GFP_KERNEL};
use arm64_mm::mm::memblock::{MemblockFlags, MEMBLOCK};
use arm64_mm::mm::page_alloc::page_alloc;
use arm64_mm::mm::slab_common::ksize;
use arm64_mm::mm::util::{kvcalloc, kvfree, kvmalloc, kvrealloc, kvzalloc};
use arm64_mm::mm::vmalloc::api::is_vmalloc_addr;
use arm64_mm::mm::PhysAddr;
use arm64_mm::{check, qemu_test};
use core::sync::atomic::{AtomicU64, Ordering};

qemu_test!(
    r#"
run -m 4G --smp 2 --append "cma=0 test.bounce test.kvmalloc loglevel=8"
expect-linux-lines tests/fixtures/linux-6.1/sw1_4G_smp2_cma0.log
expect-output ] dma-test swiotlb.0: swiotlb buffer is full (sz: 2048 bytes), total 32768 (slots), used 32768 (slots)
run -m 8G --smp 3 --append "cma=0 swiotlb=16384 loglevel=8"
expect-linux-lines tests/fixtures/linux-6.1/sw2_8G_smp3_cma0_swiotlb16384.log
# tests/fixtures/linux-6.1/sw3_1G_smp2_cma0_kfence0_swiotlbforce.log: Linux maps
# [mem 0x7ac00000-0x7ec00000], 2 MiB below where this kernel can: on 1G all memory is below
# the DMA limit, and Linux's dentry and inode hash tables (1.5 MiB from
# alloc_large_system_hash, before mm_init; this kernel has no VFS) take the top of it first.
# check_setup() checks the placement rule instead.
run -m 1G --smp 2 --append "cma=0 kfence.sample_interval=0 swiotlb=force loglevel=8"
expect-output ] software IO TLB: area num 2.
expect-output (64MB)
run -m 4G --smp 4 --append "cma=0 swiotlb=100 loglevel=8"
expect-linux-lines tests/fixtures/linux-6.1/sw5_4G_smp4_cma0_swiotlb100.log
# Areas given on the command line: `area num 8.` comes from parse_early_param, before the
# zones, as in Linux; eight areas on two CPUs.
run -m 4G --smp 2 --append "cma=0 swiotlb=8192,8 loglevel=8"
expect-linux-lines tests/fixtures/linux-6.1/sw6_4G_smp2_cma0_swiotlb8192_8.log
run -m 4G --smp 2 --append "swiotlb=noforce loglevel=8"
expect-linux-lines tests/fixtures/linux-6.1/sw4_4G_smp2_swiotlbnoforce.log
expect-no-output software IO TLB
run -m 1G --smp 2 --append "test.kvmalloc"
expect-no-output software IO TLB
# Linux ignores a value it cannot read; this kernel says so too (and carries on).
run -m 128M --smp 1 --append "swiotlb=lots"
expect-output Malformed early option 'swiotlb'
expect-no-output software IO TLB
run -m 4G --smp 2 --append "mem=1G"
expect-no-output software IO TLB
"#
);

const DEV: Device = Device::new("dma-test", "swiotlb.0");

/// The bytes at a physical address, through the linear map.
fn bytes(pa: u64, len: usize) -> &'static mut [u8] {
    // SAFETY: the callers pass memory they own for the test's duration (pages they
    // allocated, or bounce slots of a live mapping of theirs), mapped by the linear map.
    unsafe { core::slice::from_raw_parts_mut(phys_to_virt(PhysAddr(pa)), len) }
}

/// The state swiotlb_init must have left: a buffer iff memory lies above the DMA limit or
/// `swiotlb=force` asked, and not with `swiotlb=noforce`; below the DMA limit, reserved.
fn check_setup() -> Option<&'static IoTlbMem> {
    let cfg = swiotlb_config();
    let dma_limit = ARM64_DMA_PHYS_LIMIT.load(Ordering::Relaxed);
    let above = max_pfn() > PhysAddr(dma_limit).pfn_down();
    let want = (above || cfg.force_bounce) && !cfg.force_disable;
    let mem = io_tlb_default_mem();
    check!(
        mem.is_some() == want,
        "a bounce buffer iff memory reaches above the DMA limit ({:#x}) or swiotlb=force, and not with noforce",
        dma_limit
    );
    let mem = mem?;
    let size = mem.nslabs << IO_TLB_SHIFT;
    check!(
        mem.end.as_u64() <= dma_limit && mem.end.as_u64() - mem.start.as_u64() == size,
        "the buffer [{:#x}-{:#x}) lies below the DMA limit",
        mem.start.as_u64(),
        mem.end.as_u64()
    );
    let mb = MEMBLOCK.lock();
    check!(
        mb.is_region_reserved(mem.start, size),
        "memblock keeps the buffer reserved"
    );
    // memblock_alloc_low() is top-down below ARCH_LOW_ADDRESS_LIMIT (dma_limit - 1): no
    // free range between the buffer and that limit could have held it.
    let higher = mb
        .free_mem_ranges(NUMA_NO_NODE, MemblockFlags::NONE)
        .find(|&(s, e, _)| {
            let lo = s.as_u64().max(mem.end.as_u64());
            let hi = e.as_u64().min(dma_limit - 1);
            hi >= lo + size && ((hi - size) & !4095) >= lo
        });
    drop(mb);
    check!(
        higher.is_none(),
        "the buffer is as high below the DMA limit as memblock could place it (free above: {:?})",
        higher.map(|(s, e, _)| (s.as_u64(), e.as_u64()))
    );
    check!(
        mem.nareas as usize >= num_online_cpus() && mem.nareas.is_power_of_two(),
        "{} areas: a power of two, one or more per CPU",
        mem.nareas
    );
    check!(
        mem.force_bounce == cfg.force_bounce,
        "swiotlb=force makes it force bouncing"
    );
    Some(mem)
}

static CPU1_TLB: AtomicU64 = AtomicU64::new(0);
static CPU1_ORIG: AtomicU64 = AtomicU64::new(0);

fn map_on_this_cpu(_: usize) {
    let t = swiotlb_tbl_map_single(
        &DEV,
        PhysAddr(CPU1_ORIG.load(Ordering::Relaxed)),
        100,
        100,
        0,
        DmaDataDirection::ToDevice,
        0,
    );
    CPU1_TLB.store(t, Ordering::Relaxed);
}

/// A buffer above 4 GiB bounced through the swiotlb.
fn bounce(mem: &IoTlbMem) {
    let pa = page_alloc().expect("buddy up");
    // 16 KiB of ZONE_NORMAL, above 4 GiB on this machine.
    let page = pa.alloc_pages(GFP_KERNEL, 2).expect("an order-2 block");
    let orig = virt_to_phys(pa.page_address(page).as_u64() as *const u8).as_u64();
    check!(
        orig >= 1 << 32,
        "the original buffer lies above 4 GiB ({:#x})",
        orig
    );
    let len = 10_000usize;
    for (i, b) in bytes(orig, len).iter_mut().enumerate() {
        *b = (i * 13 + 1) as u8;
    }
    let used0 = mem.mem_used();
    let t = swiotlb_tbl_map_single(
        &DEV,
        PhysAddr(orig),
        len,
        len,
        0,
        DmaDataDirection::ToDevice,
        0,
    );
    check!(
        t != DMA_MAPPING_ERROR && is_swiotlb_buffer(PhysAddr(t)) && t + len as u64 <= 1 << 32,
        "DMA_TO_DEVICE map: a bounce address below 4 GiB ({:#x})",
        t
    );
    check!(
        t.is_multiple_of(4096),
        "a mapping of a page or more is page aligned"
    );
    check!(
        mem.mem_used() == used0 + (len as u64).div_ceil(IO_TLB_SIZE),
        "it takes {} slots",
        (len as u64).div_ceil(IO_TLB_SIZE)
    );
    check!(
        bytes(t, len) == bytes(orig, len),
        "the device sees the original's bytes"
    );
    swiotlb_tbl_unmap_single(&DEV, t, len, DmaDataDirection::ToDevice, 0);
    check!(mem.mem_used() == used0, "unmap gives the slots back");

    // DMA_FROM_DEVICE: the device writes into the bounce slots; unmap copies it back.
    let t = swiotlb_tbl_map_single(
        &DEV,
        PhysAddr(orig),
        len,
        len,
        0,
        DmaDataDirection::FromDevice,
        0,
    );
    for (i, b) in bytes(t, len).iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    // A partial sync for the CPU: only those bytes come back.
    swiotlb_sync_single_for_cpu(&DEV, t + 5000, 100, DmaDataDirection::FromDevice);
    let o = bytes(orig, len);
    check!(
        o[5000..5100]
            .iter()
            .enumerate()
            .all(|(i, &b)| b == ((i + 5000) * 7 + 3) as u8)
            && o[4999] == (4999 * 13 + 1) as u8
            && o[5100] == (5100 * 13 + 1) as u8,
        "sync_single_for_cpu copies back just the bytes asked for"
    );
    swiotlb_tbl_unmap_single(&DEV, t, len, DmaDataDirection::FromDevice, 0);
    check!(
        bytes(orig, len)
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i * 7 + 3) as u8),
        "DMA_FROM_DEVICE unmap copies what the device wrote back above 4 GiB"
    );

    // Bidirectional: the CPU writes again, syncs for the device.
    let t = swiotlb_tbl_map_single(
        &DEV,
        PhysAddr(orig),
        len,
        len,
        0,
        DmaDataDirection::Bidirectional,
        0,
    );
    bytes(orig, 16).fill(0xee);
    swiotlb_sync_single_for_device(&DEV, t, 16, DmaDataDirection::Bidirectional);
    check!(
        bytes(t, 17)[..16].iter().all(|&b| b == 0xee) && bytes(t, 17)[16] == (16 * 7 + 3) as u8,
        "sync_single_for_device copies the CPU's new bytes in"
    );
    swiotlb_tbl_unmap_single(&DEV, t, len, DmaDataDirection::Bidirectional, 0);

    // CPU 1 maps from its own area.
    if num_online_cpus() > 1 && mem.nareas > 1 {
        CPU1_ORIG.store(orig, Ordering::Relaxed);
        smp_call_function_single(1, map_on_this_cpu, 0, true).expect("CPU 1 online");
        let t = CPU1_TLB.load(Ordering::Relaxed);
        let slot = (t - mem.start.as_u64()) >> IO_TLB_SHIFT;
        check!(
            t != DMA_MAPPING_ERROR && slot / mem.area_nslabs == 1,
            "a mapping made on CPU 1 comes from area 1 (slot {})",
            slot
        );
        swiotlb_tbl_unmap_single(&DEV, t, 100, DmaDataDirection::ToDevice, 0);
    }

    // Fill every slot with whole-segment mappings, then one slot more.
    let seg = (IO_TLB_SEGSIZE * IO_TLB_SIZE) as usize;
    let n = mem.nslabs / IO_TLB_SEGSIZE;
    let mut first = 0;
    let mut ok = true;
    for i in 0..n {
        let t =
            swiotlb_tbl_map_single(&DEV, PhysAddr(orig), seg, seg, 0, DmaDataDirection::None, 0);
        ok &= t != DMA_MAPPING_ERROR && (t - mem.start.as_u64()).is_multiple_of(seg as u64);
        if i == 0 {
            first = t;
        }
    }
    check!(
        ok && mem.mem_used() == mem.nslabs,
        "{} whole-segment mappings fill all {} slots",
        n,
        mem.nslabs
    );
    let t = swiotlb_tbl_map_single(
        &DEV,
        PhysAddr(orig),
        2048,
        2048,
        0,
        DmaDataDirection::ToDevice,
        0,
    );
    check!(t == DMA_MAPPING_ERROR, "one slot more: DMA_MAPPING_ERROR");
    // Give them back: the segments are consecutive in each area, so walk them all.
    for s in 0..n {
        let t = mem.start.as_u64() + s * seg as u64;
        swiotlb_tbl_unmap_single(&DEV, t, seg, DmaDataDirection::ToDevice, 0);
    }
    check!(mem.mem_used() == 0 && first != 0, "every slot comes back");
    check!(
        (0..mem.nslabs)
            .all(|i| mem.slot_snapshot(i).list as u64 == IO_TLB_SEGSIZE - i % IO_TLB_SEGSIZE),
        "each segment is one free run again"
    );
    pa.__free_pages(page, 2);
}

/// kvmalloc on the kernel's own SLUB and vmalloc.
fn kvmalloc_checks() {
    let small = kvmalloc(3000, GFP_KERNEL);
    check!(
        !small.is_null() && !is_vmalloc_addr(small as u64) && ksize(small) == 4096,
        "kvmalloc(3000): a kmalloc-4k object"
    );
    let mid = kvzalloc(64 << 10, GFP_KERNEL);
    check!(
        !mid.is_null() && !is_vmalloc_addr(mid as u64),
        "kvzalloc(64 KiB): physically contiguous (kmalloc_large)"
    );
    // SAFETY: 64 KiB live bytes.
    check!(
        unsafe { core::slice::from_raw_parts(mid, 64 << 10) }
            .iter()
            .all(|&b| b == 0),
        "kvzalloc zeroes"
    );
    let big = kvcalloc(1 << 20, 8, GFP_KERNEL);
    check!(
        is_vmalloc_addr(big as u64),
        "kvcalloc of 8 MiB (above KMALLOC_MAX_SIZE): from vmalloc"
    );
    // SAFETY: 8 MiB live bytes.
    let b = unsafe { core::slice::from_raw_parts_mut(big, 8 << 20) };
    check!(
        b.iter().all(|&x| x == 0),
        "kvcalloc zeroes the vmalloc area"
    );
    b[(8 << 20) - 1] = 1;
    check!(
        kvmalloc(8 << 20, GFP_ATOMIC).is_null(),
        "an atomic kvmalloc gets no vmalloc fallback"
    );
    // SAFETY: `small` is live with 3000 bytes; written before the move.
    let moved = unsafe {
        core::ptr::write_bytes(small, 0x5c, 3000);
        kvrealloc(small, 3000, 5 << 20, GFP_KERNEL)
    };
    // SAFETY: the first 3000 bytes were copied.
    check!(
        is_vmalloc_addr(moved as u64)
            && unsafe { core::slice::from_raw_parts(moved, 3000) }
                .iter()
                .all(|&x| x == 0x5c),
        "kvrealloc to 5 MiB moves the bytes into a vmalloc area"
    );
    let free_before = page_alloc().map_or(0, |p| p.nr_free_pages());
    // SAFETY: each is live and freed once.
    unsafe {
        kvfree(mid);
        kvfree(big);
        kvfree(moved);
    }
    arm64_mm::mm::vmalloc::api::purge_vmap_area_lazy();
    let free_after = page_alloc().map_or(0, |p| p.nr_free_pages());
    check!(
        free_after >= free_before + (8 << 20) / 4096,
        "kvfree gives the vmalloc pages back ({} -> {} free pages)",
        free_before,
        free_after
    );
}

#[no_mangle]
pub fn kernel_init() -> ! {
    let mem = check_setup();
    let cmdline = boot_command_line();
    if cmdline.contains("test.bounce") {
        match mem {
            Some(mem) => bounce(mem),
            None => check!(false, "test.bounce needs the bounce buffer"),
        }
    }
    if cmdline.contains("test.kvmalloc") {
        kvmalloc_checks();
    }
    ktest::finish()
}
