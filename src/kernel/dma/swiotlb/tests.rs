//! Host tests of the swiotlb core: `swiotlb=` parsing, area sizing, swiotlb_init's choices,
//! slot allocation (alignment, segments, boundaries, areas), bouncing, and a random
//! map/unmap run checked against a model of the slots.
use super::*;
use crate::kernel::printk::take_captured;
use std::cell::Cell;
use std::vec::Vec;

std::thread_local! {
    static CPU: Cell<usize> = const { Cell::new(0) };
    static NOW: Cell<u64> = const { Cell::new(0) };
}

fn this_cpu() -> usize {
    CPU.with(|c| c.get())
}

fn now() -> u64 {
    NOW.with(|c| c.get())
}

/// On the host, "physical" addresses are the host's own addresses.
fn hooks() -> SwiotlbHooks {
    SwiotlbHooks {
        phys_to_virt: |p| p.0 as *mut u8,
        virt_to_phys: |v| PhysAddr(v as u64),
        smp_processor_id: this_cpu,
        clock_ns: now,
        memzero: memzero_host,
    }
}

/// # Safety
/// `p` maps `len` writable bytes.
unsafe fn memzero_host(p: *mut u8, len: usize) {
    // SAFETY: the caller's contract.
    unsafe { core::ptr::write_bytes(p, 0, len) }
}

/// Leaked, zeroed, `align`-aligned host memory (the tests' memblock).
fn leak(size: u64, align: u64) -> NonNull<u8> {
    let layout = std::alloc::Layout::from_size_align(size.max(1) as usize, align as usize).unwrap();
    // SAFETY: the layout's size is not zero.
    NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).unwrap()
}

/// A buffer of `nslabs` slots in `nareas` areas, placed on a 1 MiB boundary.
fn mem(nslabs: u64, nareas: u32) -> IoTlbMem {
    let buf = leak(nslabs << IO_TLB_SHIFT, 1 << 20);
    let slots = leak(nslabs * 24, 4096).cast();
    let areas = leak(core::mem::size_of::<IoTlbArea>() as u64 * nareas as u64, 64).cast();
    // SAFETY: three fresh leaked blocks of the sizes init needs, used by nothing else.
    unsafe {
        IoTlbMem::init(
            PhysAddr(buf.as_ptr() as u64),
            buf,
            nslabs,
            0,
            false,
            nareas,
            slots,
            areas,
            hooks(),
        )
    }
}

const DEV: Device = Device::new("virtio-pci", "0000:00:01.0");

fn map(m: &IoTlbMem, orig: &[u8], alloc_align_mask: u64) -> u64 {
    m.tbl_map_single(
        &DEV,
        PhysAddr(orig.as_ptr() as u64),
        orig.len(),
        orig.len(),
        alloc_align_mask,
        DmaDataDirection::ToDevice,
        0,
    )
}

fn slot_of(m: &IoTlbMem, tlb: u64) -> u64 {
    (tlb - m.start.0) >> IO_TLB_SHIFT
}

/// The free-list invariant: a used slot's list is 0; a free slot's list counts the free
/// slots from it to the end of its run inside the segment.
fn check_lists(m: &IoTlbMem) {
    let mut i = m.nslabs;
    let mut run = 0u32;
    while i > 0 {
        i -= 1;
        if io_tlb_offset(i) == IO_TLB_SEGSIZE - 1 {
            run = 0;
        }
        let s = m.slot_snapshot(i);
        if s.list == 0 {
            run = 0;
            assert_ne!(
                s.orig_addr, INVALID_PHYS_ADDR,
                "slot {} used but maps nothing",
                i
            );
        } else {
            run += 1;
            assert_eq!(s.list, run, "slot {}", i);
            assert_eq!(
                s.orig_addr, INVALID_PHYS_ADDR,
                "free slot {} maps something",
                i
            );
        }
    }
}

#[test]
fn init_makes_every_segment_one_free_run() {
    let m = mem(512, 2);
    assert_eq!(m.area_nslabs, 256);
    assert_eq!(m.end.0 - m.start.0, 512 * 2048);
    for i in 0..512 {
        assert_eq!(m.slot_snapshot(i).list as u64, 128 - (i % 128));
    }
    check_lists(&m);
    assert_eq!(m.mem_used(), 0);
}

#[test]
fn setup_io_tlb_npages_reads_linux_forms() {
    let mut c = SwiotlbConfig::new();
    assert_eq!(c.default_nslabs, 32768);
    assert!(c.setup_io_tlb_npages(Some("16384")).is_ok());
    assert_eq!(c.default_nslabs, 16384);
    // Aligned up to a whole segment.
    assert!(c.setup_io_tlb_npages(Some("100")).is_ok());
    assert_eq!(c.default_nslabs, 128);
    assert_eq!(c.default_nareas, 0);
    // `0x` is hex, as simple_strtoul(.., 0) reads it.
    assert!(c.setup_io_tlb_npages(Some("0x1000")).is_ok());
    assert_eq!(c.default_nslabs, 4096);
    take_captured();
    // Areas, rounded up to a power of two, and forcing.
    assert!(c.setup_io_tlb_npages(Some("4096,3,force")).is_ok());
    assert_eq!(
        (c.default_nslabs, c.default_nareas, c.force_bounce),
        (4096, 4, true)
    );
    assert!(take_captured().contains("] software IO TLB: area num 4.\n"));
    let mut c = SwiotlbConfig::new();
    assert!(c.setup_io_tlb_npages(Some("noforce")).is_ok());
    assert!(c.force_disable && !c.force_bounce);
    assert!(c.setup_io_tlb_npages(Some("2048,force")).is_ok());
    assert!(c.force_bounce && c.default_nslabs == 2048 && c.default_nareas == 0);
    // What Linux ignores is reported, after what it applied.
    let mut c = SwiotlbConfig::new();
    assert!(c.setup_io_tlb_npages(Some("1024,forced")).is_err());
    assert_eq!(c.default_nslabs, 1024);
    assert!(!c.force_bounce);
    assert!(c.setup_io_tlb_npages(Some("lots")).is_err());
    assert!(c.setup_io_tlb_npages(None).is_err());
}

#[test]
fn adjust_nareas_rounds_and_grows_the_buffer() {
    take_captured();
    let mut c = SwiotlbConfig::new();
    c.adjust_nareas(3);
    assert_eq!((c.default_nareas, c.default_nslabs), (4, 32768));
    assert_eq!(take_captured().lines().count(), 1);
    // swiotlb=100 on four CPUs: 128 slabs grow to a segment per area, as Linux prints.
    let mut c = SwiotlbConfig::new();
    c.setup_io_tlb_npages(Some("100")).unwrap();
    c.adjust_nareas(4);
    assert_eq!(c.default_nslabs, 512);
    let log = take_captured();
    assert!(log.contains("] software IO TLB: area num 4.\n"), "{}", log);
    assert!(log.contains("] software IO TLB: SWIOTLB bounce buffer size roundup to 1MB\n"));
    // Not a power of two: rounded up.
    let mut c = SwiotlbConfig::new();
    c.setup_io_tlb_npages(Some("640")).unwrap();
    c.adjust_nareas(2);
    assert_eq!(c.default_nslabs, 1024);
    c.adjust_nareas(0);
    assert_eq!(c.default_nareas, 1);
}

/// swiotlb_init over counting fake memblock allocators.
fn init_with(
    cfg: &mut SwiotlbConfig,
    limit: bool,
    flags: u32,
    cpus: usize,
) -> (Option<IoTlbMem>, Vec<(bool, u64, u64)>) {
    let calls = std::cell::RefCell::new(Vec::new());
    // The buffer's allocator hands out dirty memory: init zeroes it.
    let mut low = |size, align| {
        calls.borrow_mut().push((true, size, align));
        let p = leak(size, align);
        // SAFETY: `size` fresh bytes.
        unsafe { core::ptr::write_bytes(p.as_ptr(), 0xa5, size as usize) };
        Some(p)
    };
    let mut any = |size, align| {
        calls.borrow_mut().push((false, size, align));
        Some(leak(size, align))
    };
    let m = swiotlb_init_with(
        cfg,
        limit,
        flags,
        SwiotlbEnv {
            memblock_alloc_low: &mut low,
            memblock_alloc: &mut any,
            num_possible_cpus: cpus,
            hooks: hooks(),
        },
    );
    (m, calls.into_inner())
}

#[test]
fn swiotlb_init_only_when_needed_and_as_linux_allocates() {
    take_captured();
    let mut c = SwiotlbConfig::new();
    let (m, calls) = init_with(&mut c, false, SWIOTLB_VERBOSE, 2);
    assert!(m.is_none() && calls.is_empty());
    assert_eq!(take_captured(), "");
    // Memory above the DMA limit: 64 MiB low, then the slot array and the areas.
    let (m, calls) = init_with(&mut c, true, SWIOTLB_VERBOSE, 3);
    let m = m.unwrap();
    assert_eq!(
        calls,
        [
            (true, 64 << 20, 4096),
            (false, 32768 * 24, 4096),
            (false, 4 * core::mem::size_of::<IoTlbArea>() as u64, 64)
        ]
    );
    assert_eq!((m.nslabs, m.nareas, m.area_nslabs), (32768, 4, 8192));
    // SAFETY: the buffer's 64 MiB, which nothing maps yet.
    let buf = unsafe { std::slice::from_raw_parts(m.start.0 as *const u8, 64 << 20) };
    assert!(buf.iter().all(|&b| b == 0), "init zeroes the buffer");
    let log = take_captured();
    let want = format!(
        "software IO TLB: area num 4.\n[    0.000000] software IO TLB: mapped [mem {:#018x}-{:#018x}] (64MB)\n",
        m.start.0,
        m.start.0 + (64 << 20)
    );
    assert!(log.ends_with(&want), "{}", log);
    // swiotlb=noforce wins over the limit; swiotlb=force needs none.
    let mut c = SwiotlbConfig::new();
    c.setup_io_tlb_npages(Some("noforce")).unwrap();
    assert!(init_with(&mut c, true, SWIOTLB_VERBOSE, 2).0.is_none());
    let mut c = SwiotlbConfig::new();
    c.setup_io_tlb_npages(Some("16384,force")).unwrap();
    let (m, calls) = init_with(&mut c, false, 0, 1);
    let m = m.unwrap();
    assert!(m.force_bounce && m.nslabs == 16384 && m.nareas == 1);
    assert_eq!(calls[0], (true, 32 << 20, 4096));
    // SWIOTLB_ANY: the buffer from memblock_alloc().
    let mut c = SwiotlbConfig::new();
    let (_, calls) = init_with(&mut c, true, SWIOTLB_ANY, 1);
    assert!(!calls[0].0);
}

#[test]
fn swiotlb_init_reports_a_failed_allocation() {
    take_captured();
    let mut c = SwiotlbConfig::new();
    let mut none = |_, _| None;
    let mut any = |s, a| Some(leak(s, a));
    let m = swiotlb_init_with(
        &mut c,
        true,
        SWIOTLB_VERBOSE,
        SwiotlbEnv {
            memblock_alloc_low: &mut none,
            memblock_alloc: &mut any,
            num_possible_cpus: 1,
            hooks: hooks(),
        },
    );
    assert!(m.is_none());
    assert!(take_captured()
        .contains("] software IO TLB: swiotlb_init_remap: failed to allocate tlb structure\n"));
}

#[test]
fn map_takes_slots_front_to_back_and_unmap_merges_them_back() {
    let m = mem(256, 1);
    let a = vec![1u8; 100];
    let b = vec![2u8; 3000];
    let c = vec![3u8; 2048];
    let ta = map(&m, &a, 0);
    let tb = map(&m, &b, 0);
    let tc = map(&m, &c, 0);
    assert_eq!(
        [slot_of(&m, ta), slot_of(&m, tb), slot_of(&m, tc)],
        [0, 1, 3]
    );
    assert_eq!(m.mem_used(), 4);
    assert_eq!(m.slot_snapshot(1).alloc_size, 3000);
    assert_eq!(m.slot_snapshot(2).alloc_size, 3000 - 2048);
    assert_eq!(m.slot_snapshot(2).orig_addr, b.as_ptr() as u64 + 2048);
    assert_eq!(m.slot_snapshot(4).list, 124);
    check_lists(&m);
    m.tbl_unmap_single(&DEV, tb, b.len(), DmaDataDirection::ToDevice, 0);
    assert_eq!(m.slot_snapshot(1).list, 2);
    check_lists(&m);
    m.tbl_unmap_single(&DEV, ta, a.len(), DmaDataDirection::ToDevice, 0);
    m.tbl_unmap_single(&DEV, tc, c.len(), DmaDataDirection::ToDevice, 0);
    assert_eq!(m.mem_used(), 0);
    for i in 0..256 {
        assert_eq!(m.slot_snapshot(i).list as u64, 128 - (i % 128));
    }
}

#[test]
fn alignment_rules() {
    let m = mem(1024, 1);
    let small = vec![0u8; 10];
    let t0 = map(&m, &small, 0);
    assert_eq!(slot_of(&m, t0), 0);
    // A page or more, with no alignment asked: page aligned (stride of two slots).
    let page = vec![0u8; 4096];
    let t1 = map(&m, &page, 0);
    assert_eq!(t1 % 4096, 0);
    assert_eq!(slot_of(&m, t1), 2);
    // An explicit 16 KiB alignment.
    let t2 = map(&m, &small, 0x3fff);
    assert_eq!(t2 % 0x4000, 0);
    // A device's min_align_mask keeps the original's low bits, inside a slot and above.
    let dev = Device {
        min_align_mask: 0xfff,
        ..DEV
    };
    let buf = vec![0u8; 8192];
    let orig = PhysAddr(((buf.as_ptr() as u64 + 4095) & !4095) + 0x9a4);
    let t3 = m.tbl_map_single(&dev, orig, 100, 100, 0, DmaDataDirection::ToDevice, 0);
    assert_eq!(t3 & 0xfff, 0x9a4);
    assert_eq!(m.slot_snapshot(slot_of(&m, t3)).orig_addr, orig.0);
    check_lists(&m);
    m.tbl_unmap_single(&dev, t3, 100, DmaDataDirection::ToDevice, 0);
    check_lists(&m);
    assert_eq!(m.mem_used(), 1 + 2 + 1);
    // More than the mapping holds: refused, as Linux's "Invalid sizes".
    take_captured();
    let e = m.tbl_map_single(
        &DEV,
        PhysAddr(small.as_ptr() as u64),
        20,
        10,
        0,
        DmaDataDirection::ToDevice,
        0,
    );
    assert_eq!(e, DMA_MAPPING_ERROR);
}

#[test]
fn no_mapping_crosses_a_segment_or_the_device_boundary() {
    let m = mem(512, 1);
    let big = vec![0u8; 100 * 2048];
    let t0 = map(&m, &big, 0);
    // 100 slots at 0; 50 more do not fit in segment 0's remaining 28: next segment.
    let t1 = map(&m, &vec![0u8; 50 * 2048], 0);
    assert_eq!((slot_of(&m, t0), slot_of(&m, t1)), (0, 128));
    // A whole segment fits only at a segment's start; more than a segment never.
    let seg = vec![0u8; 128 * 2048];
    let t2 = map(&m, &seg, 0);
    assert_eq!(slot_of(&m, t2), 256);
    take_captured();
    let too_big = vec![0u8; 129 * 2048];
    assert_eq!(map(&m, &too_big, 0), DMA_MAPPING_ERROR);
    assert!(take_captured().contains(
        "virtio-pci 0000:00:01.0: swiotlb buffer is full (sz: 264192 bytes), total 512 (slots), used 278 (slots)"
    ));
    // A device that may not cross 64 KiB (32 slots): the buffer starts 1 MiB aligned.
    let m = mem(256, 1);
    let dev = Device {
        seg_boundary_mask: 0xffff,
        ..DEV
    };
    let a = vec![0u8; 20 * 2048];
    let ta = m.tbl_map_single(
        &dev,
        PhysAddr(a.as_ptr() as u64),
        a.len(),
        a.len(),
        0,
        DmaDataDirection::ToDevice,
        0,
    );
    let tb = m.tbl_map_single(
        &dev,
        PhysAddr(a.as_ptr() as u64),
        a.len(),
        a.len(),
        0,
        DmaDataDirection::ToDevice,
        0,
    );
    // The second would cross 64 KiB at slot 32 if it followed the first at slot 20
    // (page aligned: 20 is even): it starts at 32.
    assert_eq!((slot_of(&m, ta), slot_of(&m, tb)), (0, 32));
    check_lists(&m);
}

#[test]
fn each_cpu_starts_in_its_area_and_spills_into_the_others() {
    let m = mem(1024, 4);
    let buf = vec![0u8; 128 * 2048];
    CPU.with(|c| c.set(2));
    let t = map(&m, &buf, 0);
    assert_eq!(slot_of(&m, t), 512);
    assert_eq!(m.area_used(2), 128);
    // CPU 6 on four areas: area 2 as well (cpu & (nareas - 1)).
    CPU.with(|c| c.set(6));
    let t2 = map(&m, &buf, 0);
    assert_eq!(slot_of(&m, t2), 640);
    // Area 2 is full: area 3, then 0 and 1.
    let t3 = map(&m, &buf, 0);
    assert_eq!(slot_of(&m, t3), 768);
    let t4 = map(&m, &buf, 0);
    let t5 = map(&m, &buf, 0);
    assert_eq!((slot_of(&m, t4), slot_of(&m, t5)), (896, 0));
    CPU.with(|c| c.set(0));
    for t in [t, t2, t3, t4, t5] {
        m.tbl_unmap_single(&DEV, t, buf.len(), DmaDataDirection::ToDevice, 0);
    }
    assert_eq!(m.mem_used(), 0);
    check_lists(&m);
}

#[test]
fn bounce_copies_in_on_map_and_back_on_unmap() {
    let m = mem(128, 1);
    let mut orig: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    let p = PhysAddr(orig.as_mut_ptr() as u64);
    let t = m.tbl_map_single(&DEV, p, 5000, 5000, 0, DmaDataDirection::FromDevice, 0);
    // Copied in whatever the direction (Linux bounces unconditionally on map).
    // SAFETY: `t` is a live mapping of at least `n` bytes in the leaked buffer, which on
    // the host is addressed by its host address; each slice is dropped before the next.
    let tlb = |t: u64, n: usize| unsafe { std::slice::from_raw_parts_mut(t as *mut u8, n) };
    assert_eq!(tlb(t, 5000), &orig[..]);
    // The "device" writes; sync for the CPU copies part of it back, unmap the rest.
    tlb(t, 5000).fill(0xd5);
    m.sync_single_for_cpu(&DEV, t + 4096, 100, DmaDataDirection::FromDevice);
    assert!(orig[4096..4196].iter().all(|&b| b == 0xd5));
    assert_eq!(orig[4095], (4095u32 * 7) as u8);
    // ToDevice syncs for the CPU copy nothing.
    m.sync_single_for_cpu(&DEV, t, 5000, DmaDataDirection::ToDevice);
    assert_eq!(orig[1], 7);
    m.tbl_unmap_single(&DEV, t, 5000, DmaDataDirection::FromDevice, 0);
    assert!(orig.iter().all(|&b| b == 0xd5));
    // DMA_ATTR_SKIP_CPU_SYNC and DMA_TO_DEVICE unmaps leave the original alone.
    orig.fill(1);
    let t = m.tbl_map_single(&DEV, p, 5000, 5000, 0, DmaDataDirection::Bidirectional, 0);
    tlb(t, 5000).fill(2);
    m.tbl_unmap_single(
        &DEV,
        t,
        5000,
        DmaDataDirection::Bidirectional,
        DMA_ATTR_SKIP_CPU_SYNC,
    );
    assert!(orig.iter().all(|&b| b == 1));
    let t = m.tbl_map_single(&DEV, p, 5000, 5000, 0, DmaDataDirection::ToDevice, 0);
    tlb(t, 5000).fill(3);
    // The CPU writes again and syncs for the device.
    orig[..10].fill(9);
    m.sync_single_for_device(&DEV, t, 10, DmaDataDirection::ToDevice);
    assert_eq!(tlb(t, 11), &[9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 3]);
    m.tbl_unmap_single(&DEV, t, 5000, DmaDataDirection::ToDevice, 0);
    assert!(orig[10..].iter().all(|&b| b == 1));
}

#[test]
fn a_full_buffer_is_reported_as_linux_reports_it_and_ratelimited() {
    let m = mem(256, 2);
    let seg = vec![0u8; 128 * 2048];
    let ts: Vec<u64> = (0..2).map(|_| map(&m, &seg, 0)).collect();
    assert!(ts.iter().all(|&t| t != DMA_MAPPING_ERROR));
    take_captured();
    NOW.with(|c| c.set(1_000_000_000));
    assert_eq!(map(&m, &seg[..4096], 0), DMA_MAPPING_ERROR);
    assert!(take_captured().contains(
        "] virtio-pci 0000:00:01.0: swiotlb buffer is full (sz: 4096 bytes), total 256 (slots), used 256 (slots)\n"
    ));
    // DMA_ATTR_NO_WARN: silent.
    let e = m.tbl_map_single(
        &DEV,
        PhysAddr(seg.as_ptr() as u64),
        10,
        10,
        0,
        DmaDataDirection::ToDevice,
        DMA_ATTR_NO_WARN,
    );
    assert_eq!(e, DMA_MAPPING_ERROR);
    assert_eq!(take_captured(), "");
    // Ten messages per five seconds; then the suppressed ones are counted.
    for _ in 0..15 {
        map(&m, &seg[..10], 0);
    }
    assert_eq!(take_captured().lines().count(), 9);
    NOW.with(|c| c.set(7_000_000_000));
    map(&m, &seg[..10], 0);
    let log = take_captured();
    assert!(
        log.contains("] swiotlb_tbl_map_single: 6 callbacks suppressed\n"),
        "{}",
        log
    );
    assert!(log.contains("swiotlb buffer is full (sz: 10 bytes)"));
    NOW.with(|c| c.set(0));
}

/// Random maps and unmaps of random sizes and alignments on several CPUs, checked against
/// a model that holds which slots each live mapping owns: no two mappings share a slot,
/// none crosses a segment, the free lists stay consistent, and the used count is right.
#[test]
fn random_map_unmap_against_a_model() {
    let m = mem(2048, 4);
    let src = vec![0x5au8; 256 * 1024 + 64];
    let mut owner = vec![usize::MAX; 2048];
    let mut live: Vec<(u64, u64, usize, usize)> = Vec::new(); // (tlb, first slot, slots, len)
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    for step in 0..20_000 {
        CPU.with(|c| c.set(rnd(8) as usize));
        if live.is_empty() || rnd(100) < 55 {
            let len = match rnd(4) {
                0 => 1 + rnd(2048),
                1 => 1 + rnd(16384),
                2 => 4096,
                _ => 1 + rnd(128 * 2048),
            } as usize;
            let align = [0, 0, 0x7ff, 0xfff, 0x3fff][rnd(5) as usize];
            let off = rnd(64) as usize;
            let t = map(&m, &src[off..off + len], align);
            if t == DMA_MAPPING_ERROR {
                continue;
            }
            let first = slot_of(&m, t);
            let n = nr_slots(len as u64);
            assert_eq!(t & align, 0, "step {}: alignment {:#x}", step, align);
            if len >= 4096 && align == 0 {
                assert_eq!(t % 4096, 0, "step {}: a page or more is page aligned", step);
            }
            assert_eq!(
                first / 128,
                (first + n - 1) / 128,
                "step {}: crosses a segment",
                step
            );
            for s in first..first + n {
                assert_eq!(
                    owner[s as usize],
                    usize::MAX,
                    "step {}: slot {} taken twice",
                    step,
                    s
                );
                owner[s as usize] = step;
            }
            live.push((t, first, n as usize, len));
        } else {
            let (t, first, n, len) = live.swap_remove(rnd(live.len() as u64) as usize);
            m.tbl_unmap_single(&DEV, t, len, DmaDataDirection::ToDevice, 0);
            for s in first..first + n as u64 {
                owner[s as usize] = usize::MAX;
            }
        }
        if step % 500 == 0 {
            check_lists(&m);
        }
        let used = owner.iter().filter(|&&o| o != usize::MAX).count() as u64;
        assert_eq!(m.mem_used(), used, "step {}", step);
    }
    take_captured();
    for (t, _, _, len) in live.drain(..) {
        m.tbl_unmap_single(&DEV, t, len, DmaDataDirection::ToDevice, 0);
    }
    assert_eq!(m.mem_used(), 0);
    for i in 0..2048 {
        assert_eq!(m.slot_snapshot(i).list as u64, 128 - (i % 128));
    }
}

#[test]
fn max_mapping_size_is_a_segment_less_the_device_alignment() {
    assert_eq!(IoTlbMem::max_mapping_size(&DEV), 256 * 1024);
    let dev = Device {
        min_align_mask: 0xfff,
        ..DEV
    };
    assert_eq!(IoTlbMem::max_mapping_size(&dev), 256 * 1024 - 4096);
}
