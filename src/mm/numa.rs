//! NUMA bring-up: which node each memory range and CPU belongs to, how far apart nodes are,
//! and one `pg_data_t` per node. Mirrors Linux 6.1's drivers/base/arch_numa.c (`numa_init`,
//! `dummy_numa_init`, `numa_add_memblk`, `numa_register_nodes`, `setup_node_data`, the
//! distance table, `numa=`). The device tree's description is read by drivers/of/of_numa.rs
//! (Linux: drivers/of/of_numa.c), which the arch hands to [`arch_numa_init`] as a function,
//! as Linux's numa_init() takes `init_func`: nothing here reads the tree.
//!
//! Linux keeps this state in file statics; here it is a [`NumaInfo`] value so host tests can
//! make as many as they like. The kernel keeps its own in [`NUMA_EARLY`] while booting and
//! publishes it read-only with [`numa_publish`]; [`node_distance`] and [`cpu_to_node`] read
//! the published one.
//!
//! Differences from Linux: the distance table is a fixed `MAX_NUMNODES`² array in the value
//! rather than a page from memblock (so memblock's layout lacks that one page), ACPI (SRAT)
//! is not supported, and the memory nodes of_numa reads are the ones the early memory scan
//! yields (root children of device_type "memory", `linux,usable-memory` preferred) where
//! Linux's of_numa walks every memory node's `reg`.

use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use super::addr::{Pfn, PhysAddr};
use super::memblock::{MemType, Memblock};
use super::mmzone::{NodeDataMap, PglistData};
use crate::include::cache::SMP_CACHE_BYTES;
use crate::include::numa::{MAX_NUMNODES, NUMA_NO_NODE};
use crate::kernel::params::SetupResult;

// Temporary re-export: NR_CPUS moved to `crate::include::numa`; modules that still import it
// from here keep compiling until they import the leaf directly. (Also this file's own import.)
use crate::include::numa::NR_CPUS;

/// Linux: LOCAL_DISTANCE.
pub const LOCAL_DISTANCE: u32 = 10;
/// Linux: REMOTE_DISTANCE.
pub const REMOTE_DISTANCE: u32 = 20;

const NN: usize = MAX_NUMNODES as usize;

/// Linux: nodemask_t.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Nodemask(pub u64);

const _: () = assert!(MAX_NUMNODES <= 64);

impl Nodemask {
    /// Linux: NODE_MASK_NONE.
    pub const NONE: Self = Self(0);

    /// Linux: node_set().
    pub fn set(&mut self, nid: i32) {
        self.0 |= 1 << nid;
    }

    /// Linux: node_clear().
    pub fn clear(&mut self, nid: i32) {
        self.0 &= !(1 << nid);
    }

    /// Linux: node_isset().
    pub fn isset(&self, nid: i32) -> bool {
        (0..MAX_NUMNODES).contains(&nid) && self.0 & (1 << nid) != 0
    }

    /// Linux: nodes_weight().
    pub fn weight(&self) -> u32 {
        self.0.count_ones()
    }

    /// Linux: nodes_empty().
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// Linux: first_node().
    pub fn first(&self) -> Option<i32> {
        self.iter().next()
    }

    /// Linux: for_each_node_mask().
    pub fn iter(&self) -> impl Iterator<Item = i32> {
        let m = self.0;
        (0..MAX_NUMNODES).filter(move |&n| m & (1 << n) != 0)
    }
}

/// Why a NUMA init function gave up (Linux returns -EINVAL/-ENOMEM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumaError {
    /// Linux: -EINVAL.
    Invalid,
    /// Linux: -ENOMEM.
    NoMemory,
}

/// A firmware NUMA description's init function (Linux: of_numa_init): it reports the nodes
/// of memory ranges and CPUs and the distances through numa_add_memblk(),
/// [`NumaInfo::numa_set_distance`] and `numa_nodes_parsed`.
pub type FwNumaInit<'a> = dyn FnMut(&mut NumaInfo, &mut Memblock) -> Result<(), NumaError> + 'a;

/// Which NUMA description `numa_init()` reads (Linux passes a function pointer).
pub enum NumaInitFn<'a, 'b> {
    /// Linux: of_numa_init — the device tree's `numa-node-id`s and distance map.
    Of(&'a mut FwNumaInit<'b>),
    /// Linux: dummy_numa_init — one node with all memory.
    Dummy,
}

/// arch_numa.c's state: the parsed nodes, the online map, distances and CPU-to-node map.
#[derive(Clone, Debug)]
pub struct NumaInfo {
    /// Linux: numa_off (`numa=off`, and set by dummy_numa_init()).
    pub numa_off: bool,
    /// Linux: numa_nodes_parsed.
    pub numa_nodes_parsed: Nodemask,
    /// Linux: node_possible_map.
    pub node_possible_map: Nodemask,
    /// Linux: node_online_map (node_states[N_ONLINE]).
    pub node_online_map: Nodemask,
    /// Linux: numa_distance[] (row-major, `numa_distance_cnt` used).
    numa_distance: [[u8; NN]; NN],
    /// Linux: numa_distance_cnt — 0 when the table is not allocated.
    numa_distance_cnt: usize,
    /// Linux: cpu_to_node_map[].
    cpu_to_node_map: [i32; NR_CPUS],
    /// One past the highest CPU given a node (Linux: nr_cpu_ids, for this map's purposes).
    nr_cpus: usize,
}

impl Default for NumaInfo {
    fn default() -> Self {
        Self::new()
    }
}

impl NumaInfo {
    /// Before numa_init(): node 0 online (as Linux's static node_states[]), no distances.
    pub const fn new() -> Self {
        Self {
            numa_off: false,
            numa_nodes_parsed: Nodemask::NONE,
            node_possible_map: Nodemask(1),
            node_online_map: Nodemask(1),
            numa_distance: [[0; NN]; NN],
            numa_distance_cnt: 0,
            cpu_to_node_map: [NUMA_NO_NODE; NR_CPUS],
            nr_cpus: 0,
        }
    }

    /// A fresh state with `numa=` from the command line applied.
    pub fn from_cmdline() -> Self {
        let mut n = Self::new();
        n.numa_off = NUMA_OFF_PARAM.load(Ordering::Relaxed);
        n
    }

    /// Linux: numa_alloc_distance() — default LOCAL_DISTANCE on the diagonal, else
    /// REMOTE_DISTANCE.
    pub fn numa_alloc_distance(&mut self) {
        self.numa_distance_cnt = NN;
        for (i, row) in self.numa_distance.iter_mut().enumerate() {
            for (j, d) in row.iter_mut().enumerate() {
                *d = if i == j {
                    LOCAL_DISTANCE
                } else {
                    REMOTE_DISTANCE
                } as u8;
            }
        }
        // Linux: pr_debug("Initialized distance table, cnt=%d") — compiled out by default.
    }

    /// Linux: numa_free_distance().
    pub fn numa_free_distance(&mut self) {
        self.numa_distance_cnt = 0;
    }

    /// Linux: numa_set_distance() — with its three warnings (Linux prints each once).
    pub fn numa_set_distance(&mut self, from: i32, to: i32, distance: u32) {
        if self.numa_distance_cnt == 0 {
            pr_warn!("NUMA: Warning: distance table not allocated yet");
            return;
        }
        let cnt = self.numa_distance_cnt as i32;
        if from >= cnt || to >= cnt || from < 0 || to < 0 {
            pr_warn!(
                "NUMA: Warning: node ids are out of bound, from={} to={} distance={}",
                from,
                to,
                distance
            );
            return;
        }
        if distance > u8::MAX as u32 || (from == to && distance != LOCAL_DISTANCE) {
            pr_warn!(
                "NUMA: Warning: invalid distance parameter, from={} to={} distance={}",
                from,
                to,
                distance
            );
            return;
        }
        self.numa_distance[from as usize][to as usize] = distance as u8;
    }

    /// Linux: __node_distance() / node_distance().
    pub fn node_distance(&self, from: i32, to: i32) -> u32 {
        let cnt = self.numa_distance_cnt as i32;
        if from < 0 || to < 0 || from >= cnt || to >= cnt {
            return if from == to {
                LOCAL_DISTANCE
            } else {
                REMOTE_DISTANCE
            };
        }
        self.numa_distance[from as usize][to as usize] as u32
    }

    /// Linux: early_map_cpu_to_node() — called by the arch's smp_init_cpus() for each CPU
    /// with its node from the device tree (NUMA_NO_NODE if none); falls back to node 0.
    pub fn early_map_cpu_to_node(&mut self, cpu: usize, nid: i32) {
        let nid = if !(0..MAX_NUMNODES).contains(&nid) || self.numa_off {
            0
        } else {
            nid
        };
        if cpu < NR_CPUS {
            self.cpu_to_node_map[cpu] = nid;
            self.nr_cpus = self.nr_cpus.max(cpu + 1);
        }
    }

    /// Linux: cpu_to_node() (node 0 for a CPU nobody mapped).
    pub fn cpu_to_node(&self, cpu: usize) -> i32 {
        match self.cpu_to_node_map.get(cpu) {
            Some(&n) if n >= 0 => n,
            _ => 0,
        }
    }

    /// Linux: !cpumask_empty(cpumask_of_node(nid)) — does any mapped CPU live on `nid`?
    pub fn node_has_cpus(&self, nid: i32) -> bool {
        self.cpu_to_node_map[..self.nr_cpus].contains(&nid)
    }

    /// Linux: node_online().
    pub fn node_online(&self, nid: i32) -> bool {
        self.node_online_map.isset(nid)
    }

    /// Linux: nr_online_nodes.
    pub fn nr_online_nodes(&self) -> u32 {
        self.node_online_map.weight()
    }

    /// Linux: for_each_online_node().
    pub fn online_nodes(&self) -> impl Iterator<Item = i32> {
        self.node_online_map.iter()
    }
}

/// Linux: numa_off as set by `numa=off` (copied into a NumaInfo by `from_cmdline`).
static NUMA_OFF_PARAM: AtomicBool = AtomicBool::new(false);

/// Linux: numa_parse_early_param() — `numa=off` turns NUMA off.
fn numa_parse_early_param(opt: Option<&str>) -> SetupResult {
    let opt = opt.ok_or("expected a value")?;
    if opt.starts_with("off") {
        NUMA_OFF_PARAM.store(true, Ordering::Relaxed);
    }
    Ok(())
}
crate::early_param!("numa", numa_parse_early_param);

/// Linux: numa_add_memblk() — memory `[start, end)` belongs to node `nid`.
pub fn numa_add_memblk(
    numa: &mut NumaInfo,
    mb: &mut Memblock,
    nid: i32,
    start: u64,
    end: u64,
) -> Result<(), NumaError> {
    if mb
        .set_node(PhysAddr(start), end - start, MemType::Memory, nid)
        .is_err()
    {
        pr_err!(
            "NUMA: memblock [{:#x} - {:#x}] failed to add on node {}",
            start,
            end - 1,
            nid
        );
        return Err(NumaError::Invalid);
    }
    numa.numa_nodes_parsed.set(nid);
    Ok(())
}

/// Linux: dummy_numa_init() — all of memory is node 0.
pub fn dummy_numa_init(numa: &mut NumaInfo, mb: &mut Memblock) -> Result<(), NumaError> {
    let start = mb.start_of_dram().0;
    let end = mb.end_of_dram().0 - 1;
    if numa.numa_off {
        // Forced off on the command line.
        pr_info!("NUMA: NUMA disabled");
    }
    pr_info!("NUMA: Faking a node at [mem {:#018x}-{:#018x}]", start, end);
    if numa_add_memblk(numa, mb, 0, start, end + 1).is_err() {
        pr_err!("NUMA: NUMA init failed");
        return Err(NumaError::Invalid);
    }
    numa.numa_off = true;
    Ok(())
}

/// Linux: early_pfn_to_nid() — the node of the memory region holding `pfn` (the first online
/// node if none does).
pub fn early_pfn_to_nid(mb: &Memblock, pfn: Pfn) -> i32 {
    mb.mem_pfn_ranges(MAX_NUMNODES)
        .find(|&(s, e, _)| s <= pfn && pfn < e)
        .map_or(0, |(_, _, nid)| nid)
}

/// Linux: get_pfn_range_for_nid() — the lowest and highest pfn of node `nid`'s memory
/// (`MAX_NUMNODES` for all); `(0, 0)` for a node without memory.
pub fn get_pfn_range_for_nid(mb: &Memblock, nid: i32) -> (Pfn, Pfn) {
    let (mut start, mut end) = (u64::MAX, 0);
    for (s, e, _) in mb.mem_pfn_ranges(nid) {
        start = start.min(s.0);
        end = end.max(e.0);
    }
    if start == u64::MAX {
        start = 0;
    }
    (Pfn(start), Pfn(end))
}

/// Linux: setup_node_data() — allocate node `nid`'s pg_data_t, preferably on that node, and
/// report where. `phys_to_virt` is the arch's __va() (the linear map is up by bootmem_init()).
pub fn setup_node_data(
    mb: &mut Memblock,
    nodes: &mut NodeDataMap,
    nid: i32,
    start_pfn: Pfn,
    end_pfn: Pfn,
    phys_to_virt: fn(PhysAddr) -> *mut u8,
) {
    let nd_size =
        core::mem::size_of::<PglistData>().next_multiple_of(SMP_CACHE_BYTES as usize) as u64;
    if start_pfn >= end_pfn {
        pr_info!("NUMA: Initmem setup node {} [<memory-less node>]", nid);
    }
    let Some(nd_pa) = mb.phys_alloc_try_nid(nd_size, SMP_CACHE_BYTES, nid) else {
        panic!("Cannot allocate {} bytes for node {} data", nd_size, nid);
    };
    pr_info!(
        "NUMA: NODE_DATA [mem {:#010x}-{:#010x}]",
        nd_pa.0,
        nd_pa.0 + nd_size - 1
    );
    let tnid = early_pfn_to_nid(mb, nd_pa.pfn_down());
    if tnid != nid {
        pr_info!("NUMA: NODE_DATA({}) on node {}", nid, tnid);
    }
    let nd = phys_to_virt(nd_pa).cast::<PglistData>();
    assert!(
        nd.is_aligned(),
        "NODE_DATA({nid}): __va({:#x}) is misaligned",
        nd_pa.0
    );
    // SAFETY: memblock just reserved `nd_size` >= size_of::<PglistData>() bytes at `nd_pa`
    // (SMP_CACHE_BYTES-aligned), which __va() maps writable; nothing else uses them.
    unsafe {
        PglistData::init_zeroed(nd, nid);
        (*nd).node_start_pfn = start_pfn;
        (*nd).node_spanned_pages = end_pfn - start_pfn;
    }
    // SAFETY: initialised above; memblock memory is never freed and only the map holds it.
    unsafe { nodes.set(nid, core::ptr::NonNull::new(nd).expect("__va() gave NULL")) };
}

/// Linux: numa_register_nodes() — every memory region must have a node; then each parsed
/// node gets its pg_data_t and goes online.
fn numa_register_nodes(
    numa: &mut NumaInfo,
    mb: &mut Memblock,
    nodes: &mut NodeDataMap,
    phys_to_virt: fn(PhysAddr) -> *mut u8,
) -> Result<(), NumaError> {
    for r in mb.memory().regions() {
        if r.nid == NUMA_NO_NODE || r.nid >= MAX_NUMNODES {
            pr_warn!(
                "NUMA: Warning: invalid memblk node {} [mem {:#018x}-{:#018x}]",
                r.nid,
                r.base.0,
                r.base.0 + r.size - 1
            );
            return Err(NumaError::Invalid);
        }
    }
    for nid in numa.numa_nodes_parsed.iter() {
        let (start_pfn, end_pfn) = get_pfn_range_for_nid(mb, nid);
        setup_node_data(mb, nodes, nid, start_pfn, end_pfn, phys_to_virt);
        numa.node_online_map.set(nid);
    }
    numa.node_possible_map = numa.numa_nodes_parsed;
    Ok(())
}

/// Linux: numa_init() — run one NUMA description; on failure leave no trace but the
/// memblock node ids it set (which the next attempt overwrites).
pub fn numa_init(
    numa: &mut NumaInfo,
    init: NumaInitFn,
    mb: &mut Memblock,
    nodes: &mut NodeDataMap,
    phys_to_virt: fn(PhysAddr) -> *mut u8,
) -> Result<(), NumaError> {
    numa.numa_nodes_parsed = Nodemask::NONE;
    numa.node_possible_map = Nodemask::NONE;
    numa.node_online_map = Nodemask::NONE;
    numa.numa_alloc_distance();
    let r = match init {
        NumaInitFn::Of(of_numa_init) => of_numa_init(numa, mb),
        NumaInitFn::Dummy => dummy_numa_init(numa, mb),
    };
    let r = r.and_then(|()| {
        if numa.numa_nodes_parsed.is_empty() {
            pr_info!("NUMA: No NUMA configuration found");
            return Err(NumaError::Invalid);
        }
        numa_register_nodes(numa, mb, nodes, phys_to_virt)
    });
    if r.is_err() {
        numa.numa_free_distance();
    }
    // Linux's setup_node_to_cpumask_map() only sizes nr_node_ids here; the node masks are
    // read from the CPU map on demand.
    r
}

/// Linux: arch_numa_init() — the device tree's description (`of_numa_init`, given by the
/// arch) unless `numa=off` (ACPI is not supported), else one fake node. Called from arm64's
/// bootmem_init().
pub fn arch_numa_init(
    numa: &mut NumaInfo,
    of_numa_init: Option<&mut FwNumaInit>,
    mb: &mut Memblock,
    nodes: &mut NodeDataMap,
    phys_to_virt: fn(PhysAddr) -> *mut u8,
) {
    if !numa.numa_off {
        if let Some(init) = of_numa_init {
            if numa_init(numa, NumaInitFn::Of(init), mb, nodes, phys_to_virt).is_ok() {
                return;
            }
        }
    }
    // Linux ignores this result too: with memory present, the fake node cannot fail.
    let _ = numa_init(numa, NumaInitFn::Dummy, mb, nodes, phys_to_virt);
}

/// The kernel's NUMA state while booting. Lock: held by the boot CPU for each stage.
pub static NUMA_EARLY: spin::Mutex<NumaInfo> = spin::Mutex::new(NumaInfo::new());

static NUMA_INFO: spin::Once<NumaInfo> = spin::Once::new();

/// Ends the early phase: moves [`NUMA_EARLY`] into the read-only state that
/// [`node_distance`] and [`cpu_to_node`] read. Later calls return the first.
pub fn numa_publish() -> &'static NumaInfo {
    NUMA_INFO.call_once(|| {
        let info = core::mem::take(&mut *NUMA_EARLY.lock());
        for (cpu, node) in CPU_NODE.iter().enumerate() {
            node.store(info.cpu_to_node(cpu), Ordering::Relaxed);
        }
        info
    })
}

/// Linux: the per-CPU `numa_node` (USE_PERCPU_NUMA_NODE_ID) — [`NumaInfo::cpu_to_node`]
/// of each CPU, copied out at [`numa_publish`] so that the allocators' hot paths read one
/// word (0 before).
static CPU_NODE: [AtomicI32; NR_CPUS] = [const { AtomicI32::new(0) }; NR_CPUS];

/// Linux: node_distance() (defaults before numa_publish()).
pub fn node_distance(from: i32, to: i32) -> u32 {
    match NUMA_INFO.get() {
        Some(n) => n.node_distance(from, to),
        None => NumaInfo::new().node_distance(from, to),
    }
}

/// [`CPU_NODE`], for allocators that read a CPU's node inline (index: CPU number).
pub fn cpu_node_map() -> &'static [AtomicI32] {
    &CPU_NODE
}

/// Linux: cpu_to_node() (node 0 before numa_publish()).
#[inline]
pub fn cpu_to_node(cpu: usize) -> i32 {
    CPU_NODE.get(cpu).map_or(0, |n| n.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests;
