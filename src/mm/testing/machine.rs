//! A described machine brought up step by step, as arm64's `setup_arch()`/`mm_init()` do:
//! memblock from the memory banks (`early_init_dt_scan_memory`), the reservations, NUMA and
//! the zones (`bootmem_init()`: `arch_numa_init`, `zone_sizes_init`, `free_area_init`,
//! then `build_all_zonelists`), the buddy (`mem_init()`'s `memblock_free_all`) and SLUB
//! (`kmem_cache_init`). Each step returns the machine up to it, so a test stops where it
//! wants. Mirrors `arch/arm64/mm/init.c` and `init/main.c`'s `mm_init()` for host tests.

use super::ram::{__pa, __pa_virt, __va, SimRam};
use super::SlubMachine;
use crate::drivers::of::libfdt::Fdt;
use crate::drivers::of::test_builder::{of_map_cpus_to_nodes, of_numa_init_fn};
use crate::include::mmzone::MAX_NR_ZONES;
use crate::include::mmzone::MAX_ORDER;
use crate::kernel::printk::take_captured;
use crate::mm::free_area_init::{
    free_area_init, zone_dma_bits, zone_sizes_init, FreeAreaInit, Memmap, ZoneMovableParams,
    PAGES_PER_SECTION,
};
use crate::mm::gfp::GfpT;
use crate::mm::memblock::{Memblock, MemblockFlags};
use crate::mm::mmzone::{NodeDataMap, Zone};
use crate::mm::numa::{arch_numa_init, FwNumaInit, NumaInfo};
use crate::mm::page::Page;
use crate::mm::page_alloc::{free_area_snapshot, PageAlloc, PageAllocEnv, PagePtr};
use crate::mm::slub::SlubParams;
use crate::mm::{Pfn, PhysAddr};
use core::ptr::NonNull;
use core::sync::atomic::Ordering;

/// Which parts of each memory bank host memory backs. Memblock allocates top-down, so a
/// test that only allocates needs the top of the banks; one that hands memory to the
/// buddy and zeroes or poisons pages needs it all.
#[derive(Clone, Copy, Debug)]
pub enum Backing {
    /// Every byte.
    Full,
    /// The top `n` bytes of each bank (all of a smaller bank).
    Top(u64),
    /// `n` bytes at each end of each bank (all of a bank no larger than `2 * n`).
    Ends(u64),
}

/// A machine to bring up: its memory banks (from a device tree, or listed), the ranges
/// reserved before NUMA init (like the kernel image), and the knobs the boot takes.
pub struct Machine {
    dtb: Option<Vec<u8>>,
    banks: Vec<(u64, u64, Option<i32>)>,
    backing: Backing,
    reserve: Vec<(u64, u64)>,
    numa_off: bool,
    zone_limits: Option<[u64; MAX_NR_ZONES]>,
    movable: ZoneMovableParams,
    memmap: bool,
    deferred: bool,
}

impl Machine {
    /// The machine a device tree describes: its memory nodes become memblock's memory
    /// (without node ids: NUMA init assigns them), its CPUs and NUMA properties are read
    /// at the zones step. Backed: the top 8 MiB of each bank.
    pub fn from_dtb(dtb: &[u8]) -> Self {
        let fdt = Fdt::new(dtb).expect("a valid device tree");
        let banks: Vec<_> = fdt
            .memory_ranges()
            .map(|r| (r.base.0, r.size, None))
            .collect();
        Self {
            dtb: Some(dtb.to_vec()),
            backing: Backing::Top(8 << 20),
            ..Self::from_banks(&banks)
        }
    }

    /// A device tree with these memory banks (`nid` Some: with `numa-node-id`), CPUs
    /// (likewise) and `distance-map` entries (`[from, to, distance]` triples), as
    /// [`Machine::from_dtb`] takes it.
    pub fn fdt(mems: &[(u64, u64, Option<u32>)], cpus: &[Option<u32>], dist: &[u32]) -> Self {
        Self::from_dtb(&crate::drivers::of::test_builder::numa_machine_fdt(
            mems, cpus, dist,
        ))
    }

    /// A machine with no device tree: memblock gets these banks (`nid` Some: through
    /// memblock_add_node(), None: memblock_add()). Backed: all of each bank.
    pub fn from_banks(banks: &[(u64, u64, Option<i32>)]) -> Self {
        Self {
            dtb: None,
            banks: banks.to_vec(),
            backing: Backing::Full,
            reserve: Vec::new(),
            numa_off: false,
            zone_limits: None,
            movable: ZoneMovableParams::default(),
            memmap: false,
            deferred: false,
        }
    }

    /// Which parts of the banks host memory backs.
    pub fn backed(self, backing: Backing) -> Self {
        Self { backing, ..self }
    }

    /// Reserves `[base, base + size)` in memblock after adding the memory.
    pub fn reserve(mut self, base: u64, size: u64) -> Self {
        self.reserve.push((base, size));
        self
    }

    /// Boots with `numa=off`.
    pub fn numa_off(self) -> Self {
        Self {
            numa_off: true,
            ..self
        }
    }

    /// Replaces arm64's zone limits (zone_sizes_init()'s max_zone_pfns).
    pub fn zone_limits(self, limits: [u64; MAX_NR_ZONES]) -> Self {
        Self {
            zone_limits: Some(limits),
            ..self
        }
    }

    /// kernelcore= / movablecore= as parsed.
    pub fn movable(self, movable: ZoneMovableParams) -> Self {
        Self { movable, ..self }
    }

    /// Gives free_area_init() a memmap (struct pages of every section from the first to
    /// the last pfn of RAM, their flags poisoned with 0xdead so untouched pages show).
    pub fn with_memmap(self) -> Self {
        Self {
            memmap: true,
            ..self
        }
    }

    /// Defers struct-page init as the kernel does (CONFIG_DEFERRED_STRUCT_PAGE_INIT):
    /// memmap_init() leaves all but the first section of each node's highest zone, for
    /// memblock_free_all() to record and `page_alloc_init_late()` to finish.
    pub fn deferred(self) -> Self {
        Self {
            deferred: true,
            ..self
        }
    }

    /// Up to memblock: the banks added, backed as asked, the reservations taken.
    pub fn memblock(self) -> UpToMemblock {
        let mut ram = SimRam::new();
        let mut mb = Memblock::new();
        // SAFETY: __va maps only the windows backed below and panics elsewhere; the tests
        // back every range memblock allocates from (the tops of the banks, or all of them),
        // and nothing else uses that host memory.
        unsafe { mb.set_phys_to_virt(__va) };
        mb.set_virt_to_phys(__pa);
        for &(base, size, nid) in &self.banks {
            match nid {
                Some(n) => mb
                    .add_node(PhysAddr(base), size, n, MemblockFlags::NONE)
                    .unwrap(),
                None => mb.add(PhysAddr(base), size).unwrap(),
            }
            match self.backing {
                Backing::Full => ram.back(base, size),
                Backing::Top(n) => {
                    let w = n.min(size);
                    ram.back(base + size - w, w);
                }
                Backing::Ends(n) if size <= 2 * n => ram.back(base, size),
                Backing::Ends(n) => {
                    ram.back(base, n);
                    ram.back(base + size - n, n);
                }
            }
        }
        for &(base, size) in &self.reserve {
            mb.reserve(PhysAddr(base), size).unwrap();
        }
        UpToMemblock {
            ram,
            mb,
            machine: self,
        }
    }

    /// Up to the zones (see [`UpToMemblock::zones`]).
    pub fn zones(self) -> UpToZones {
        self.memblock().zones()
    }

    /// Up to the buddy, memory not yet handed over (see [`UpToZones::buddy`]).
    pub fn buddy(self) -> UpToBuddy {
        self.with_memmap().memblock().zones().buddy()
    }

    /// As [`buddy`](Self::buddy), with `f` adjusting the allocator's hooks first.
    pub fn buddy_with(self, f: impl FnOnce(&mut PageAllocEnv)) -> UpToBuddy {
        self.with_memmap().memblock().zones().buddy_with(f)
    }
}

/// A machine up to memblock.
pub struct UpToMemblock {
    pub mb: Memblock,
    machine: Machine,
    /// Last, so that it outlives what points into it when dropped.
    pub ram: SimRam,
}

impl UpToMemblock {
    /// bootmem_init()'s generic part and build_all_zonelists(): NUMA from the device tree
    /// (or a faked node), arm64's zone limits, free_area_init(), the CPUs' nodes, the
    /// zonelists. What they print is in [`UpToZones::out`].
    pub fn zones(self) -> UpToZones {
        let Self {
            ram,
            mut mb,
            machine,
        } = self;
        let fdt = machine.dtb.as_deref().map(|b| Fdt::new(b).unwrap());
        let mut numa = NumaInfo::new();
        numa.numa_off = machine.numa_off;
        let mut nodes = NodeDataMap::new();
        take_captured();
        let mut of_numa_init = fdt.as_ref().map(of_numa_init_fn);
        let init = of_numa_init.as_mut().map(|f| f as &mut FwNumaInit);
        arch_numa_init(&mut numa, init, &mut mb, &mut nodes, __va);
        let (start, end) = (mb.start_of_dram(), mb.end_of_dram());
        let limits = machine.zone_limits.map_or_else(
            || zone_sizes_init(start, end, zone_dma_bits(u64::MAX), end.pfn_down()).max_zone_pfns,
            |l| l.map(Pfn),
        );
        let first_pfn = start.pfn_down().0 & !(PAGES_PER_SECTION - 1);
        let mut memmap = machine.memmap.then(|| {
            let last = end.pfn_up().0.next_multiple_of(PAGES_PER_SECTION);
            (first_pfn..last)
                .map(|_| {
                    let p = Page::zeroed();
                    p.flags.store(0xdead, Ordering::Relaxed);
                    p
                })
                .collect::<Vec<_>>()
        });
        let mut mm = memmap
            .as_mut()
            .map(|v| Memmap::new(v, Pfn(first_pfn)).deferred_struct_page_init(machine.deferred));
        let fai = free_area_init(
            &mut mb,
            &mut nodes,
            &numa,
            &limits,
            &machine.movable,
            0,
            mm.as_mut(),
        );
        if let Some(fdt) = &fdt {
            of_map_cpus_to_nodes(&mut numa, fdt);
        }
        let zl = crate::mm::zonelist::build_all_zonelists(&mut nodes, &numa);
        UpToZones {
            out: take_captured(),
            ram,
            mb,
            nodes,
            fai,
            zl,
            memmap,
            first_pfn,
        }
    }
}

/// A machine up to the zones and zonelists.
pub struct UpToZones {
    /// What NUMA init, free_area_init() and build_all_zonelists() printed.
    pub out: String,
    pub mb: Memblock,
    pub nodes: NodeDataMap,
    pub fai: FreeAreaInit,
    pub zl: crate::mm::zonelist::ZonelistsSummary,
    /// The struct pages [`Machine::with_memmap`] asked for, from pfn `first_pfn` on.
    pub memmap: Option<Vec<Page>>,
    pub first_pfn: u64,
    /// Last, so that it outlives what points into it (NODE_DATA) when dropped.
    pub ram: SimRam,
}

impl UpToZones {
    /// mm_init()'s page allocator over the zones: PageAlloc with the simulated __va/__pa
    /// (memory still in memblock: [`UpToBuddy::free_all`] hands it over). The machine
    /// lives for the rest of the process.
    pub fn buddy(self) -> UpToBuddy {
        self.buddy_with(|_| {})
    }

    /// As [`buddy`](Self::buddy), with `f` adjusting the allocator's hooks first.
    pub fn buddy_with(self, f: impl FnOnce(&mut PageAllocEnv)) -> UpToBuddy {
        let pages = Vec::leak(self.memmap.expect("the buddy needs a memmap"));
        let nodes: &'static NodeDataMap = Box::leak(Box::new(self.nodes));
        self.ram.leak();
        let mut env = PageAllocEnv::new(pages.as_mut_ptr().wrapping_sub(self.first_pfn as usize));
        env.phys_to_virt = Some(__va);
        env.virt_to_phys = Some(__pa_virt);
        env.smp_processor_id = super::smp_processor_id;
        f(&mut env);
        // SAFETY: the memmap covers every section from the first to the last pfn of RAM and
        // is leaked, as are the nodes and the RAM; the windows back what the tests zero or
        // poison.
        let pa = Box::leak(Box::new(unsafe { PageAlloc::new(nodes, env) }));
        take_captured();
        UpToBuddy { mb: self.mb, pa }
    }
}

/// A machine up to the buddy allocator.
pub struct UpToBuddy {
    pub mb: Memblock,
    pub pa: &'static PageAlloc<'static>,
}

impl UpToBuddy {
    /// mem_init()'s memblock_free_all(): the pages freed.
    pub fn free_all(&mut self) -> u64 {
        self.pa.memblock_free_all(&mut self.mb)
    }
    pub fn zone(&self, nid: i32, idx: usize) -> &'static Zone {
        &self.pa.nodes().get(nid).unwrap().node_zones[idx]
    }
    pub fn pfn(&self, p: PagePtr) -> u64 {
        self.pa.page_to_pfn(p.as_ptr()).0
    }
    pub fn page(&self, pfn: u64) -> &'static Page {
        // SAFETY: a pfn of the simulated memmap (leaked, lives forever).
        unsafe { &*self.pa.pfn_to_page(Pfn(pfn)) }
    }
    /// Free block heads of `[start, end)`: (pfn, order), found by walking the memmap.
    pub fn buddy_heads(&self, start: u64, end: u64) -> Vec<(u64, u32)> {
        (start..end)
            .filter(|&p| self.page(p).page_buddy())
            .map(|p| (p, self.page(p).buddy_order()))
            .collect()
    }
    /// alloc_pages(), as a pfn.
    pub fn alloc(&self, gfp: GfpT, order: u32) -> Option<u64> {
        self.pa.alloc_pages(gfp, order).map(|p| self.pfn(p))
    }
    /// __free_pages() of a pfn.
    pub fn free(&self, pfn: u64, order: u32) {
        self.pa
            .__free_pages(NonNull::new(self.pa.pfn_to_page(Pfn(pfn))).unwrap(), order)
    }
    /// mm_init()'s kmem_cache_init() over the buddy, after memblock_free_all().
    pub fn slub(mut self, params: SlubParams) -> SlubMachine<PageAlloc<'static>> {
        self.free_all();
        SlubMachine::over(self.pa, params)
    }

    /// A zone's free block counts per order.
    pub fn counts(&self, nid: i32, idx: usize) -> [u64; MAX_ORDER] {
        free_area_snapshot(self.zone(nid, idx)).nr_free
    }
}
