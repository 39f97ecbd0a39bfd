//! Host unit tests of `src/mm/percpu.rs` (`cargo hosttest`), on the shared scaffold
//! `mm::testing` (simulated RAM and a machine builder).

use super::*;
use crate::kernel::printk::take_captured;
use crate::mm::testing::{__pa, __va, Backing, Machine};

const A_LOG: &str = include_str!("../../../tests/fixtures/linux-6.1/a_128M_smp1.log");
const C_LOG: &str = include_str!("../../../tests/fixtures/linux-6.1/c_4G_smp2.log");
const F_LOG: &str = include_str!("../../../tests/fixtures/linux-6.1/f_4G_numa2.log");

/// Debian 6.1 arm64's `__per_cpu_end - __per_cpu_start`, from the reference logs.
const LINUX_STATIC_SIZE: usize = 87272;
const SZ_1M: u64 = 1 << 20;
const SZ_2M: usize = 2 << 20;
const SZ_1G: u64 = 1 << 30;
const RAM: u64 = 0x4000_0000;

/// A page-aligned static image of `len` bytes with a recognisable pattern.
struct Image {
    mem: Vec<u8>,
    off: usize,
    len: usize,
}

impl Image {
    fn new(len: usize) -> Self {
        let mut mem = vec![0u8; len + PAGE];
        let off = (mem.as_ptr() as usize).next_multiple_of(PAGE) - mem.as_ptr() as usize;
        for (i, b) in mem[off..off + len].iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        Self { mem, off, len }
    }

    fn bytes(&self) -> &[u8] {
        &self.mem[self.off..self.off + self.len]
    }
}

/// The percpu lines of a reference log, as printk captures them.
fn linux_lines(log: &str) -> String {
    log.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| l.contains("] percpu: ") || l.contains("] pcpu-alloc: "))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn distance(a: i32, b: i32) -> u32 {
    if a == b {
        LOCAL_DISTANCE
    } else {
        20
    }
}

fn reserved(mb: &Memblock) -> Vec<(u64, u64)> {
    mb.reserved()
        .regions()
        .iter()
        .filter(|r| r.size != 0)
        .map(|r| (r.base.0, r.size))
        .collect()
}

/// The unit of `cpu`, as a physical address.
fn unit_pa(img: &Image, offsets: &PerCpuOffsets, cpu: usize) -> u64 {
    __pa((img.bytes().as_ptr() as u64).wrapping_add(offsets.get(cpu)) as *const u8).0
}

/// `len` bytes of simulated RAM at `pa`.
fn ram(pa: u64, len: usize) -> &'static [u8] {
    // SAFETY: the window is alive for the test's thread and holds `len` bytes at `pa`
    // (__va panics outside the windows; the tests stay inside a unit).
    unsafe { core::slice::from_raw_parts(__va(PhysAddr(pa)), len) }
}

fn node_of(mb: &Memblock, pa: u64) -> i32 {
    mb.memory()
        .regions()
        .iter()
        .find(|r| r.base.0 <= pa && pa < r.end().0)
        .map(|r| r.nid)
        .unwrap()
}

/// Each unit holds the image, then zeroes up to `size_sum`.
fn assert_unit_contents(img: &Image, pa: u64, size_sum: usize) {
    let unit = ram(pa, size_sum);
    assert_eq!(&unit[..img.len], img.bytes());
    assert!(unit[img.len..].iter().all(|&b| b == 0));
}

#[test]
fn one_cpu_matches_linux_log_and_layout() {
    // QEMU -m 128M -smp 1: one node, RAM at 0x4000_0000.
    let m = Machine::from_banks(&[(RAM, 128 * SZ_1M, Some(0))])
        .backed(Backing::Top(2 * SZ_1M))
        .memblock();
    let mut mb = m.mb;
    let img = Image::new(LINUX_STATIC_SIZE);
    take_captured();
    let offsets = setup_per_cpu_areas(img.bytes(), &[0], &|_| 0, &distance, &mut mb).unwrap();
    assert_eq!(take_captured(), linux_lines(A_LOG));

    // The ai and areas pages took the top two pages, the unit sits right below them, and
    // both pages are free again: only the unit stays reserved.
    let unit = unit_pa(&img, &offsets, 0);
    assert_eq!(unit, 0x4800_0000 - 2 * PAGE as u64 - 126976);
    assert_eq!(reserved(&mb), [(unit, 126976)]);
    assert_unit_contents(&img, unit, 126976);
}

#[test]
fn two_cpus_one_node_match_linux_log() {
    // QEMU -m 4G -smp 2: one node, both units in one area.
    let m = Machine::from_banks(&[(RAM, 4 * SZ_1G, Some(0))])
        .backed(Backing::Top(2 * SZ_1M))
        .memblock();
    let mut mb = m.mb;
    let img = Image::new(LINUX_STATIC_SIZE);
    take_captured();
    let offsets = setup_per_cpu_areas(img.bytes(), &[0, 1], &|_| 0, &distance, &mut mb).unwrap();
    assert_eq!(take_captured(), linux_lines(C_LOG));

    let (u0, u1) = (unit_pa(&img, &offsets, 0), unit_pa(&img, &offsets, 1));
    assert_eq!(u0, 0x1_4000_0000 - 2 * PAGE as u64 - 2 * 126976);
    assert_eq!(u1, u0 + 126976);
    assert_eq!(reserved(&mb), [(u0, 2 * 126976)]);
    assert_unit_contents(&img, u0, 126976);
    assert_unit_contents(&img, u1, 126976);
}

#[test]
fn two_nodes_match_linux_log_and_units_land_on_their_nodes() {
    // QEMU -m 4G -smp 2 with two 2 GiB nodes, CPU n on node n.
    let m = Machine::from_banks(&[
        (RAM, 2 * SZ_1G, Some(0)),
        (RAM + 2 * SZ_1G, 2 * SZ_1G, Some(1)),
    ])
    .backed(Backing::Top(2 * SZ_1M))
    .memblock();
    let mut mb = m.mb;
    let img = Image::new(LINUX_STATIC_SIZE);
    let cpu_to_node = |cpu: usize| cpu as i32;
    take_captured();
    let offsets =
        setup_per_cpu_areas(img.bytes(), &[0, 1], &cpu_to_node, &distance, &mut mb).unwrap();
    assert_eq!(take_captured(), linux_lines(F_LOG));

    let (u0, u1) = (unit_pa(&img, &offsets, 0), unit_pa(&img, &offsets, 1));
    // CPU 0's area is at the top of node 0; the NUMA_NO_NODE bookkeeping pages went to
    // the top of memory (node 1), so CPU 1's area is just below them.
    assert_eq!(u0, 0xc000_0000 - 126976);
    assert_eq!(u1, 0x1_4000_0000 - 2 * PAGE as u64 - 126976);
    assert_eq!(node_of(&mb, u0), 0);
    assert_eq!(node_of(&mb, u1), 1);
    assert_eq!(reserved(&mb), [(u0, 126976), (u1, 126976)]);
    assert_unit_contents(&img, u0, 126976);
    assert_unit_contents(&img, u1, 126976);
}

#[test]
fn unit_tails_return_to_memblock() {
    // 4 KiB static, nothing reserved, the minimum dynamic size: size_sum is 6 pages but a
    // unit is PCPU_MIN_UNIT_SIZE (8 pages), so 2 pages of each unit go back.
    let m = Machine::from_banks(&[(RAM, 64 * SZ_1M, Some(0))])
        .backed(Backing::Top(2 * SZ_1M))
        .memblock();
    let mut mb = m.mb;
    let img = Image::new(4096);
    take_captured();
    let chunk = pcpu_embed_first_chunk(
        0,
        0,
        PAGE,
        None,
        |mb, cpu, size, align| pcpu_fc_alloc(mb, cpu, size, align, Some(&|_| 0)),
        img.bytes(),
        &[0, 1],
        &mut mb,
    )
    .unwrap();
    assert_eq!(
        take_captured(),
        "[    0.000000] percpu: Embedded 6 pages/cpu s4096 r0 d20480 u32768\n\
         [    0.000000] pcpu-alloc: s4096 r0 d20480 u32768 alloc=8*4096\n\
         [    0.000000] pcpu-alloc: [0] 0 [0] 1 \n"
    );
    let base = __pa(chunk.base_addr.as_ptr()).0;
    assert_eq!(chunk.unit_offsets[1], 32768);
    assert_eq!(
        reserved(&mb),
        [(base, 24576), (base + 32768, 24576)],
        "each unit keeps size_sum, its tail is free"
    );
    assert!(!mb.is_reserved(PhysAddr(base + 24576)));
    assert_unit_contents(&img, base, 24576);
    assert_unit_contents(&img, base + 32768, 24576);
}

#[test]
fn large_atoms_pad_groups_and_free_unused_units() {
    // Three CPUs, two on node 0 and one on node 1, with 2 MiB atoms (x86's choice): the
    // best upa is 2, so node 1's group has an unused unit, freed whole.
    let m = Machine::from_banks(&[
        (RAM, 128 * SZ_1M, Some(0)),
        (RAM + 128 * SZ_1M, 128 * SZ_1M, Some(1)),
    ])
    .backed(Backing::Top(8 * SZ_1M))
    .memblock();
    let mut mb = m.mb;
    let img = Image::new(4096);
    let nodes = [0, 0, 1];
    let cpu_to_node = |cpu: usize| nodes[cpu];
    let dist = |a: usize, b: usize| distance(nodes[a], nodes[b]);
    take_captured();
    let chunk = pcpu_embed_first_chunk(
        PERCPU_MODULE_RESERVE,
        PERCPU_DYNAMIC_RESERVE,
        SZ_2M,
        Some(&dist),
        |mb, cpu, size, align| pcpu_fc_alloc(mb, cpu, size, align, Some(&cpu_to_node)),
        img.bytes(),
        &[0, 1, 2],
        &mut mb,
    )
    .unwrap();
    assert_eq!(
        take_captured(),
        "[    0.000000] percpu: Embedded 10 pages/cpu s4096 r8192 d28672 u1048576\n\
         [    0.000000] pcpu-alloc: s4096 r8192 d28672 u1048576 alloc=1*2097152\n\
         [    0.000000] pcpu-alloc: [0] 0 1 [1] 2 - \n"
    );
    // Units 0, 1 | 2, 3: CPU 2 has its group's first unit, the fourth is unused.
    assert_eq!((chunk.nr_groups, chunk.nr_units), (2, 4));
    assert_eq!(chunk.unit_map[..3], [0, 1, 2]);
    // (Which group is the base depends on where the host put the windows.)
    let unit = |cpu: usize| {
        let off = chunk.base_addr.0 + chunk.unit_offsets[cpu] as u64;
        __pa(off as *const u8).0
    };
    assert_eq!(
        unit(0),
        0x4800_0000 - SZ_2M as u64,
        "2 MiB aligned, top of node 0"
    );
    assert_eq!(unit(1), unit(0) + 1048576);
    assert_eq!(node_of(&mb, unit(2)), 1);
    assert_eq!(unit(2) % SZ_2M as u64, 0);
    assert_eq!(
        reserved(&mb),
        [(unit(0), 40960), (unit(1), 40960), (unit(2), 40960)],
        "tails and the unused unit are free"
    );
    for cpu in 0..3 {
        assert_unit_contents(&img, unit(cpu), 40960);
    }
}

#[test]
fn build_alloc_info_picks_linuxs_upa() {
    // x86-64 with 8 CPUs and 2 MiB atoms: 8 units of 256 KiB share one atom.
    let cpus: Vec<usize> = (0..8).collect();
    let ai = pcpu_build_alloc_info(173568, 8192, 28672, SZ_2M, None, &cpus).unwrap();
    assert_eq!(
        (ai.dyn_size, ai.unit_size, ai.alloc_size, ai.upa()),
        (31232, 262144, SZ_2M, 8)
    );
    assert_eq!(ai.nr_groups, 1);
    assert_eq!(ai.cpu_map(0), [0, 1, 2, 3, 4, 5, 6, 7]);

    // Without a distance function every CPU shares one group, nodes or not.
    let ai = pcpu_build_alloc_info(4096, 0, 0, PAGE, None, &[0, 1, 2]).unwrap();
    assert_eq!(ai.nr_groups, 1);

    // Grouping by distance, sparse CPU numbers: 1 and 5 are local, 3 is not.
    let node = |c: usize| if c == 3 { 1 } else { 0 };
    let dist = |a: usize, b: usize| distance(node(a), node(b));
    let ai = pcpu_build_alloc_info(4096, 0, 0, PAGE, Some(&dist), &[1, 3, 5]).unwrap();
    assert_eq!(ai.nr_groups, 2);
    assert_eq!(ai.cpu_map(0), [1, 5]);
    assert_eq!(ai.cpu_map(1), [3]);
    assert_eq!(ai.groups()[1].base_offset, 2 * ai.unit_size);
}

#[test]
fn dump_wraps_lines_and_pads_numbers_like_linux() {
    // 12 CPUs: two-digit CPU numbers, 8 blocks per line.
    let cpus: Vec<usize> = (0..12).collect();
    let ai = pcpu_build_alloc_info(LINUX_STATIC_SIZE, 8192, 28672, PAGE, None, &cpus).unwrap();
    take_captured();
    pcpu_dump_alloc_info(KERN_DEBUG, &ai, cpus.len());
    assert_eq!(
        take_captured(),
        "[    0.000000] pcpu-alloc: s87272 r8192 d31512 u126976 alloc=31*4096\n\
         [    0.000000] pcpu-alloc: [0] 00 [0] 01 [0] 02 [0] 03 [0] 04 [0] 05 [0] 06 [0] 07 \n\
         [    0.000000] pcpu-alloc: [0] 08 [0] 09 [0] 10 [0] 11 \n"
    );
}

#[test]
fn cpumask_prints_as_linux_pb() {
    assert_eq!(CpumaskPb(&[0, 1]).to_string(), "3");
    assert_eq!(CpumaskPb(&[0, 4]).to_string(), "11");
    assert_eq!(CpumaskPb(&[]).to_string(), "");
    assert_eq!(CpumaskPb(&[0, 32, 35]).to_string(), "9,00000001");
    let all: Vec<usize> = (0..32).collect();
    assert_eq!(CpumaskPb(&all).to_string(), "ffffffff");
}

#[test]
fn no_cpus_is_an_error_and_leaves_memblock_alone() {
    let m = Machine::from_banks(&[(RAM, 64 * SZ_1M, Some(0))])
        .backed(Backing::Top(2 * SZ_1M))
        .memblock();
    let mut mb = m.mb;
    let img = Image::new(LINUX_STATIC_SIZE);
    take_captured();
    let err = setup_per_cpu_areas(img.bytes(), &[], &|_| 0, &distance, &mut mb).unwrap_err();
    assert_eq!(err, PcpuError::SetupBug("ai->nr_groups <= 0"));
    assert_eq!(err.errno(), -22);
    let out = take_captured();
    assert!(out.contains("] percpu: failed to initialize, ai->nr_groups <= 0\n"));
    assert!(out.contains("] percpu: cpu_possible_mask=\n"));
    assert!(reserved(&mb).is_empty());
}

#[test]
fn zero_static_size_is_an_error() {
    let m = Machine::from_banks(&[(RAM, 64 * SZ_1M, Some(0))])
        .backed(Backing::Top(2 * SZ_1M))
        .memblock();
    let mut mb = m.mb;
    take_captured();
    let err = setup_per_cpu_areas(&[], &[0, 1], &|_| 0, &distance, &mut mb).unwrap_err();
    assert_eq!(err, PcpuError::SetupBug("!ai->static_size"));
    let out = take_captured();
    assert!(out.contains("] percpu: failed to initialize, !ai->static_size\n"));
    assert!(out.contains("] percpu: cpu_possible_mask=3\n"));
    assert!(
        out.contains("] pcpu-alloc: [0] 0 [0] 1 \n"),
        "the dump at KERN_EMERG"
    );
    assert!(reserved(&mb).is_empty());
}

#[test]
fn bad_inputs_are_errors() {
    let m = Machine::from_banks(&[(RAM, 64 * SZ_1M, Some(0))])
        .backed(Backing::Top(2 * SZ_1M))
        .memblock();
    let mut mb = m.mb;
    let img = Image::new(LINUX_STATIC_SIZE + 1);
    let unaligned = &img.mem[img.off + 1..img.off + 1 + LINUX_STATIC_SIZE];
    assert_eq!(
        setup_per_cpu_areas(unaligned, &[0], &|_| 0, &distance, &mut mb),
        Err(PcpuError::SetupBug("offset_in_page(__per_cpu_start)"))
    );
    let img = Image::new(LINUX_STATIC_SIZE);
    for cpus in [&[1, 0][..], &[0, 0], &[NR_CPUS]] {
        assert_eq!(
            setup_per_cpu_areas(img.bytes(), cpus, &|_| 0, &distance, &mut mb),
            Err(PcpuError::InvalidCpuMask)
        );
    }
    for atom in [0, PAGE + 1] {
        assert_eq!(
            pcpu_build_alloc_info(4096, 0, 0, atom, None, &[0]),
            Err(PcpuError::Inval)
        );
    }
    assert_eq!(
        pcpu_build_alloc_info(usize::MAX - 100, 0, 0, PAGE, None, &[0]),
        Err(PcpuError::NoMem)
    );
    // Every CPU its own "node": more groups than nodes can make.
    let cpus: Vec<usize> = (0..=PCPU_MAX_GROUPS).collect();
    let apart = |a: usize, b: usize| distance(a as i32, b as i32);
    assert_eq!(
        pcpu_build_alloc_info(4096, 0, 0, PAGE, Some(&apart), &cpus),
        Err(PcpuError::TooManyGroups)
    );
    assert!(pcpu_build_alloc_info(4096, 0, 0, PAGE, Some(&apart), &cpus[1..]).is_ok());
    assert!(reserved(&mb).is_empty());
    take_captured();
}

#[test]
fn out_of_memory_gives_everything_back() {
    // 128 KiB of RAM: the bookkeeping pages fit, a 31-page unit does not.
    let m = Machine::from_banks(&[(RAM, 128 << 10, Some(0))])
        .backed(Backing::Top(128 << 10))
        .memblock();
    let mut mb = m.mb;
    let img = Image::new(LINUX_STATIC_SIZE);
    let err = setup_per_cpu_areas(img.bytes(), &[0], &|_| 0, &distance, &mut mb).unwrap_err();
    assert_eq!((err, err.errno()), (PcpuError::NoMem, -12));
    assert!(reserved(&mb).is_empty());

    // An allocator that fails for the second group: the first group's area is freed.
    let m = Machine::from_banks(&[(RAM, SZ_1G, Some(0)), (RAM + SZ_1G, SZ_1G, Some(1))])
        .backed(Backing::Top(2 * SZ_1M))
        .memblock();
    let mut mb = m.mb;
    let dist = |a: usize, b: usize| distance(a as i32, b as i32);
    let err = pcpu_embed_first_chunk(
        PERCPU_MODULE_RESERVE,
        PERCPU_DYNAMIC_RESERVE,
        PAGE,
        Some(&dist),
        |mb, cpu, size, align| {
            (cpu == 0)
                .then(|| pcpu_fc_alloc(mb, cpu, size, align, Some(&|c| c as i32)))
                .flatten()
        },
        img.bytes(),
        &[0, 1],
        &mut mb,
    )
    .unwrap_err();
    assert_eq!(err, PcpuError::NoMem);
    assert!(reserved(&mb).is_empty());
    take_captured();
}

#[test]
fn cpu_without_node_falls_back_with_linuxs_message() {
    let m = Machine::from_banks(&[(RAM, 64 * SZ_1M, Some(0))])
        .backed(Backing::Top(2 * SZ_1M))
        .memblock();
    let mut mb = m.mb;
    take_captured();
    let p = pcpu_fc_alloc(&mut mb, 3, 8192, PAGE, Some(&|_| NUMA_NO_NODE)).unwrap();
    assert_eq!(
        take_captured(),
        "[    0.000000] percpu: cpu 3 has no node -1 or node-local memory\n"
    );
    assert!(ram(__pa(p.as_ptr()).0, 8192).iter().all(|&b| b == 0));
    pcpu_fc_free(&mut mb, p.as_ptr(), 8192);
    assert!(reserved(&mb).is_empty());
}

#[test]
fn setup_first_chunk_checks_base_addr() {
    let ai = pcpu_build_alloc_info(4096, 0, 0, PAGE, None, &[0]).unwrap();
    let start = VirtAddr(0x1000);
    take_captured();
    assert_eq!(
        pcpu_setup_first_chunk(&ai, VirtAddr(0), start, &[0]).unwrap_err(),
        PcpuError::SetupBug("!base_addr")
    );
    assert_eq!(
        pcpu_setup_first_chunk(&ai, VirtAddr(0x2010), start, &[0]).unwrap_err(),
        PcpuError::SetupBug("offset_in_page(base_addr)")
    );
    // A layout that leaves out a possible CPU.
    assert_eq!(
        pcpu_setup_first_chunk(&ai, VirtAddr(0x2000), start, &[0, 1]).unwrap_err(),
        PcpuError::SetupBug("unit_map[cpu] == UINT_MAX")
    );
    let chunk = pcpu_setup_first_chunk(&ai, VirtAddr(0x2000), start, &[0]).unwrap();
    assert_eq!((chunk.nr_units, chunk.unit_pages), (1, 8));
    assert_eq!((chunk.low_unit_cpu, chunk.high_unit_cpu), (0, 0));
    take_captured();
}

#[test]
fn per_cpu_offset_is_published_once() {
    let m = Machine::from_banks(&[(RAM, 64 * SZ_1M, Some(0))])
        .backed(Backing::Top(2 * SZ_1M))
        .memblock();
    let mut mb = m.mb;
    let img = Image::new(LINUX_STATIC_SIZE);
    let offsets = setup_per_cpu_areas(img.bytes(), &[0, 1], &|_| 0, &distance, &mut mb).unwrap();
    take_captured();
    let published = set_per_cpu_offsets(offsets.clone());
    assert_eq!(published, &offsets);
    assert_eq!(per_cpu_offset(1), offsets.get(1));
    assert_eq!(per_cpu_offset(1).wrapping_sub(per_cpu_offset(0)), 126976);
    assert_eq!(per_cpu_offset(2), 0, "not a possible CPU");
    set_per_cpu_offsets(PerCpuOffsets {
        offsets: [1; NR_CPUS],
    });
    assert_eq!(
        per_cpu_offset(0),
        offsets.get(0),
        "the first publication stays"
    );
}

#[test]
fn fits_the_boot_stack() {
    // The kernel runs this on start_kernel()'s 64 KiB stack, after setup_arch() has
    // returned. It takes about 28 KiB on the host (opt-level 1, memblock and printk
    // included); 40 KiB leaves room for the target's codegen.
    let img = Image::new(LINUX_STATIC_SIZE);
    let bytes = img.bytes();
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(40 << 10)
            .spawn_scoped(s, || {
                let m =
                    Machine::from_banks(&[(RAM, SZ_1G, Some(0)), (RAM + SZ_1G, SZ_1G, Some(1))])
                        .backed(Backing::Top(2 * SZ_1M))
                        .memblock();
                let mut mb = Box::new(m.mb);
                let cpu_to_node = |cpu: usize| cpu as i32;
                let r = setup_per_cpu_areas(bytes, &[0, 1], &cpu_to_node, &distance, &mut mb);
                assert!(r.is_ok());
            })
            .unwrap()
            .join()
            .unwrap();
    });
    take_captured();
}
