//! The first percpu chunk: one copy of the kernel's static per-CPU data for every possible
//! CPU, and `__per_cpu_offset[]`, which turns the address of a per-CPU variable into the
//! address of one CPU's copy. Mirrors Linux 6.1's mm/percpu.c (`pcpu_build_alloc_info`,
//! `pcpu_embed_first_chunk`, `pcpu_fc_alloc`/`pcpu_fc_free`, `pcpu_dump_alloc_info`, the
//! checks of `pcpu_setup_first_chunk`) and drivers/base/arch_numa.c (`setup_per_cpu_areas`,
//! `pcpu_cpu_distance`), which is what arm64 runs with CONFIG_NUMA.
//!
//! The "embed" first chunk lives in memblock memory, reached through the linear map. CPUs
//! whose nodes are `LOCAL_DISTANCE` apart form a group; each group gets one allocation on its
//! first CPU's node, cut into units of `unit_size`, one per CPU:
//!
//! ```text
//!  area = pcpu_fc_alloc(first CPU of the group, nr_units * unit_size, atom_size)
//!
//!  |<------------------------------ unit_size ------------------------------>|
//!  +-----------------+----------------+---------------------+----------------+
//!  | static          | reserved       | dynamic             | tail:          |  unit 0
//!  | (a copy of the  | (modules'      | (alloc_percpu()     | pcpu_fc_free() |
//!  | image)          | per-CPU data)  | before the slab)    | gives it back  |
//!  +-----------------+----------------+---------------------+----------------+
//!  |<--------------- size_sum (whole pages) --------------->|
//!  +-------------------------------------------------------------------------+
//!  | unit 1 ... (a unit no CPU uses, padding a group to a multiple           |
//!  | of upa, is given back whole)                                            |
//!  +-------------------------------------------------------------------------+
//! ```
//!
//! `__per_cpu_offset[cpu]` = (cpu's unit) - `__per_cpu_start`, so `&var + per_cpu_offset(cpu)`
//! is cpu's copy of `var`. Debian's 6.1 arm64 kernel has 87272 bytes of static per-CPU data;
//! with 8 KiB reserved and 28 KiB dynamic that is 31 pages per CPU, the reference logs'
//! `percpu: Embedded 31 pages/cpu s87272 r8192 d31512 u126976` (the tests reproduce it:
//! `cargo hosttest percpu`).
//!
//! Differences from Linux:
//! - `pcpu_setup_first_chunk()` makes Linux's checks, computes `pcpu_unit_map[]` and
//!   `pcpu_unit_offsets[]` and dumps the layout, but does not build the chunk bookkeeping
//!   (`pcpu_alloc_first_chunk()`, the slot lists, and the memblock allocations they take):
//!   that is the dynamic percpu allocator, which does not exist yet.
//! - A failed `PCPU_SETUP_BUG_ON()` prints Linux's lines and returns an error instead of
//!   `BUG()`; inputs that would fail it are caught before any memory is allocated.
//! - No `pcpu_page_first_chunk()` fallback (it maps units with vmalloc): an embed failure is
//!   returned, and the caller panics as Linux does when both fail. `percpu_alloc=` is not
//!   parsed, so the choice is always Linux's default ("auto", i.e. embed).
//! - `pcpu_alloc_info` and the `areas[]` array live on the stack, not in memblock; their
//!   pages are still reserved and freed around the units, so the units land where Linux's do.
//! - `cpu_possible_mask` is an ascending slice of CPU numbers; `pcpu_fc_alloc()`'s
//!   `node_online(node) && NODE_DATA(node)` test is reduced to "a node number in range".

use core::fmt::{self, Write};
use core::ptr::{self, NonNull};

use super::addr::{align_up, PhysAddr, VirtAddr, PAGE_SHIFT, PAGE_SIZE};
use super::memblock::{Memblock, MEMBLOCK_ALLOC_ACCESSIBLE, PHYS_ADDR_MAX};
use super::numa::LOCAL_DISTANCE;
use crate::include::cache::SMP_CACHE_BYTES;
use crate::include::numa::NR_CPUS;
use crate::include::numa::{MAX_NUMNODES, NUMA_NO_NODE};
use crate::kernel::printk::{LineBuf, KERN_DEBUG, KERN_EMERG};

const PAGE: usize = PAGE_SIZE as usize;

/// Linux: PERCPU_MODULE_RESERVE (CONFIG_MODULES) — room for modules' static per-CPU data.
pub const PERCPU_MODULE_RESERVE: usize = 8 << 10;
/// Linux: PCPU_MIN_UNIT_SIZE — the smallest unit, also the largest dynamic allocation.
pub const PCPU_MIN_UNIT_SIZE: usize = align_up(32 << 10, PAGE_SIZE) as usize;
/// Linux: PCPU_MIN_ALLOC_SHIFT.
pub const PCPU_MIN_ALLOC_SHIFT: u32 = 2;
/// Linux: PCPU_MIN_ALLOC_SIZE — the allocation granule of a chunk.
pub const PCPU_MIN_ALLOC_SIZE: usize = 1 << PCPU_MIN_ALLOC_SHIFT;
/// Linux: PCPU_BITMAP_BLOCK_SIZE.
pub const PCPU_BITMAP_BLOCK_SIZE: usize = PAGE;
/// Linux: PERCPU_DYNAMIC_EARLY_SIZE (6.1: `20 << 10`; 6.6 made the shift configurable) —
/// the dynamic space the first chunk must have for allocations made before the slab.
pub const PERCPU_DYNAMIC_EARLY_SIZE: usize = 20 << 10;
/// Linux: PERCPU_DYNAMIC_RESERVE for BITS_PER_LONG > 32 — the dynamic space arch code asks
/// for in the first chunk.
pub const PERCPU_DYNAMIC_RESERVE: usize = 28 << 10;

const _: () = assert!(PERCPU_DYNAMIC_RESERVE >= PERCPU_DYNAMIC_EARLY_SIZE);
// Linux checks this at run time in pcpu_setup_first_chunk(); it is a constant.
const _: () = assert!(
    PCPU_BITMAP_BLOCK_SIZE.is_multiple_of(PAGE) || PAGE.is_multiple_of(PCPU_BITMAP_BLOCK_SIZE)
);

/// A unit no CPU uses (Linux stores NR_CPUS in `cpu_map[]`).
pub const PCPU_NO_CPU: u32 = NR_CPUS as u32;

/// The most groups a [`PcpuAllocInfo`] can describe (Linux sizes its array at run time).
/// With arch_numa's `pcpu_cpu_distance` a group is the possible CPUs of one node: a node is
/// at LOCAL_DISTANCE from itself and further from any other (`numa_set_distance()` rejects
/// anything else), and every possible CPU has a node (`early_map_cpu_to_node()` falls back
/// to 0). So there are at most MAX_NUMNODES groups; the bound keeps the info small enough to
/// live on the boot stack, where NR_CPUS groups would not.
pub const PCPU_MAX_GROUPS: usize = MAX_NUMNODES as usize;

/// The most units a [`PcpuAllocInfo`] can describe (Linux sizes its array at run time).
/// `nr_units` is the possible CPUs plus the units wasted rounding each group up to a
/// multiple of `upa`, and `pcpu_build_alloc_info()` only accepts a `upa` that wastes at most
/// a third of the CPUs (upa 1 wastes none), so this bound always holds.
pub const PCPU_MAX_UNITS: usize = NR_CPUS + NR_CPUS / 3;

/// Linux: VMALLOC_TOTAL on arm64 (48-bit VA, 4 KiB pages): VMALLOC_END (VMEMMAP_START -
/// SZ_256M) minus VMALLOC_START (MODULES_END). The embed first chunk warns when its groups
/// span more than 3/4 of it. mm/ does not reach into arch/, so the value is spelled out
/// here; arch/aarch64/memory.rs checks it against its layout at compile time.
pub const VMALLOC_TOTAL: u64 = 0xffff_fbff_f000_0000 - 0xffff_8000_0800_0000;

/// Linux: `__pa(MAX_DMA_ADDRESS)`, pcpu_fc_alloc()'s lower bound. arm64's MAX_DMA_ADDRESS is
/// `~0UL`, outside the linear map, so `__pa()` of it lies far above any RAM: the bound only
/// makes memblock's first try fail before `memblock_alloc_internal()` retries from 0.
/// PHYS_ADDR_MAX does the same (only `memblock=debug`'s `from=` differs).
pub const PCPU_FC_GOAL: PhysAddr = PHYS_ADDR_MAX;

/// Why the first chunk could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PcpuError {
    /// Linux: -ENOMEM — memblock could not hold a group's area or the bookkeeping pages
    /// (also sizes too large to compute).
    NoMem,
    /// Linux: -EINVAL — the groups would span too much of the vmalloc space, or an
    /// `atom_size` that is not a whole number of pages (Linux would BUG()).
    Inval,
    /// Linux: PCPU_SETUP_BUG_ON(cond) in pcpu_setup_first_chunk(), which BUG()s; the text is
    /// Linux's condition, e.g. `ai->nr_groups <= 0` for no possible CPU.
    SetupBug(&'static str),
    /// The possible-CPU list is not strictly ascending or holds a CPU >= NR_CPUS, which
    /// Linux's cpumask cannot express.
    InvalidCpuMask,
    /// The distance function split the CPUs into more than [`PCPU_MAX_GROUPS`] groups,
    /// which node distances cannot do.
    TooManyGroups,
}

impl PcpuError {
    /// Linux's errno for this failure (what `Failed to initialize percpu areas (err=%d).`
    /// prints); a failed setup check has none in Linux, -EINVAL stands for it.
    pub fn errno(self) -> i32 {
        match self {
            PcpuError::NoMem => -12,
            PcpuError::Inval
            | PcpuError::SetupBug(_)
            | PcpuError::InvalidCpuMask
            | PcpuError::TooManyGroups => -22,
        }
    }
}

impl fmt::Display for PcpuError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            PcpuError::NoMem => write!(f, "out of memory (-ENOMEM)"),
            PcpuError::Inval => write!(f, "invalid layout (-EINVAL)"),
            PcpuError::SetupBug(cond) => write!(f, "failed to initialize, {cond}"),
            PcpuError::InvalidCpuMask => write!(f, "possible CPUs not ascending or >= NR_CPUS"),
            PcpuError::TooManyGroups => write!(f, "more than {PCPU_MAX_GROUPS} CPU groups"),
        }
    }
}

/// One group of units: CPUs at LOCAL_DISTANCE from each other (Linux: `struct
/// pcpu_group_info`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PcpuGroupInfo {
    /// Units in the group, a multiple of `upa`; some may be unused.
    pub nr_units: usize,
    /// Offset of the group's area from the lowest group's (back-to-back until
    /// pcpu_embed_first_chunk() knows where the areas are).
    pub base_offset: usize,
    /// Index of the group's first `cpu_map` entry (Linux: a pointer into the shared array).
    cpu_map: usize,
}

/// The shape of the first chunk (Linux: `struct pcpu_alloc_info`), with fixed-size arrays:
/// at most [`PCPU_MAX_GROUPS`] groups and [`PCPU_MAX_UNITS`] units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcpuAllocInfo {
    pub static_size: usize,
    pub reserved_size: usize,
    pub dyn_size: usize,
    pub unit_size: usize,
    pub atom_size: usize,
    pub alloc_size: usize,
    pub nr_groups: usize,
    groups: [PcpuGroupInfo; PCPU_MAX_GROUPS],
    /// Every group's unit-to-CPU map, one after the other; [`PCPU_NO_CPU`] marks an unused
    /// unit.
    cpu_map: [u32; PCPU_MAX_UNITS],
}

impl PcpuAllocInfo {
    /// Linux: pcpu_alloc_alloc_info() — no groups, every unit unused.
    fn new() -> Self {
        Self {
            static_size: 0,
            reserved_size: 0,
            dyn_size: 0,
            unit_size: 0,
            atom_size: 0,
            alloc_size: 0,
            nr_groups: 0,
            groups: [PcpuGroupInfo::default(); PCPU_MAX_GROUPS],
            cpu_map: [PCPU_NO_CPU; PCPU_MAX_UNITS],
        }
    }

    /// Linux: `ai->groups[0 .. ai->nr_groups]`.
    pub fn groups(&self) -> &[PcpuGroupInfo] {
        &self.groups[..self.nr_groups]
    }

    /// Linux: `ai->groups[group].cpu_map[0 .. nr_units]`.
    pub fn cpu_map(&self, group: usize) -> &[u32] {
        let gi = &self.groups[group];
        &self.cpu_map[gi.cpu_map..gi.cpu_map + gi.nr_units]
    }

    /// All units of all groups.
    pub fn nr_units(&self) -> usize {
        self.groups().iter().map(|g| g.nr_units).sum()
    }

    /// Units per allocation: how many units share one `alloc_size` block.
    pub fn upa(&self) -> usize {
        self.alloc_size / self.unit_size.max(1)
    }

    /// Linux: `ai->__ai_size` — the memblock bytes pcpu_alloc_alloc_info() takes for this
    /// info: the struct with `nr_groups` 24-byte group entries (64-bit layout), then one
    /// `unsigned int` per unit, page aligned.
    fn linux_ai_size(&self) -> usize {
        const BASE: usize = 64; // offsetof(struct pcpu_alloc_info, groups)
        const GROUP: usize = 24; // sizeof(struct pcpu_group_info)
        let base_size = BASE + GROUP * self.nr_groups; // already 4-byte aligned
        pfn_align(base_size + 4 * self.nr_units()).unwrap_or(usize::MAX)
    }
}

/// Linux: PFN_ALIGN(), or None when it overflows.
fn pfn_align(x: usize) -> Option<usize> {
    Some(x.checked_add(PAGE - 1)? & !(PAGE - 1))
}

/// Linux: rounddown_pow_of_two() (`n` >= 1).
fn rounddown_pow_of_two(n: usize) -> usize {
    1 << (usize::BITS - 1 - n.leading_zeros())
}

/// Linux's `cpu_possible_mask` as this file takes it: strictly ascending, below NR_CPUS.
fn check_possible_cpus(possible_cpus: &[usize]) -> Result<(), PcpuError> {
    let ascending = possible_cpus.windows(2).all(|w| w[0] < w[1]);
    if !ascending || possible_cpus.last().is_some_and(|&c| c >= NR_CPUS) {
        return Err(PcpuError::InvalidCpuMask);
    }
    Ok(())
}

/// Linux: pcpu_build_alloc_info() — group the possible CPUs by distance and size the units.
///
/// `static_size` is Linux's `__per_cpu_end - __per_cpu_start`. `dyn_size` is a minimum: it
/// grows so that static + reserved + dynamic fill whole pages (and to at least
/// PERCPU_DYNAMIC_EARLY_SIZE). CPUs at LOCAL_DISTANCE both ways share a group (all CPUs do
/// without `cpu_distance_fn`). Then `upa`, the units per `alloc_size` block: counting down
/// from the most that fit, the last that splits the block into whole pages and wastes at
/// most a third of the CPUs in padding units before the number of blocks would grow.
pub fn pcpu_build_alloc_info(
    static_size: usize,
    reserved_size: usize,
    dyn_size: usize,
    atom_size: usize,
    cpu_distance_fn: Option<&dyn Fn(usize, usize) -> u32>,
    possible_cpus: &[usize],
) -> Result<PcpuAllocInfo, PcpuError> {
    check_possible_cpus(possible_cpus)?;
    // Linux's callers pass PAGE_SIZE or PMD_SIZE; anything else leaves no valid `upa`.
    if atom_size == 0 || !atom_size.is_multiple_of(PAGE) {
        return Err(PcpuError::Inval);
    }

    // Calculate size_sum and ensure dyn_size is enough for early allocations.
    let size_sum = static_size
        .checked_add(reserved_size)
        .and_then(|s| s.checked_add(dyn_size.max(PERCPU_DYNAMIC_EARLY_SIZE)))
        .and_then(pfn_align)
        .ok_or(PcpuError::NoMem)?;
    let dyn_size = size_sum - static_size - reserved_size;

    // The smallest alloc_size, a multiple of atom_size, that holds page-aligned units of at
    // least min_unit_size, and the most units that fit in it.
    let min_unit_size = size_sum.max(PCPU_MIN_UNIT_SIZE);
    let alloc_size = min_unit_size
        .checked_next_multiple_of(atom_size)
        .ok_or(PcpuError::NoMem)?;
    let upa_fits =
        |upa: usize| alloc_size.is_multiple_of(upa) && (alloc_size / upa).is_multiple_of(PAGE);
    let mut max_upa = alloc_size / min_unit_size;
    // Stops at 1 at the latest: alloc_size is a multiple of atom_size, so of PAGE_SIZE.
    while !upa_fits(max_upa) {
        max_upa -= 1;
    }

    // Group CPUs according to their proximity. The list is ascending, so the next CPU not
    // yet grouped is Linux's cpumask_first(&mask), and the ones after it are the rest of
    // the mask.
    let mut ungrouped = [false; NR_CPUS];
    for &cpu in possible_cpus {
        ungrouped[cpu] = true;
    }
    let mut group_map = [0u8; NR_CPUS];
    let mut group_cnt = [0usize; PCPU_MAX_GROUPS];
    let mut nr_groups = 0;
    for (i, &cpu) in possible_cpus.iter().enumerate() {
        if !ungrouped[cpu] {
            continue;
        }
        if nr_groups == PCPU_MAX_GROUPS {
            return Err(PcpuError::TooManyGroups);
        }
        ungrouped[cpu] = false;
        group_map[cpu] = nr_groups as u8;
        group_cnt[nr_groups] += 1;
        for &tcpu in &possible_cpus[i + 1..] {
            let local = |d: &dyn Fn(usize, usize) -> u32| {
                d(cpu, tcpu) == LOCAL_DISTANCE && d(tcpu, cpu) == LOCAL_DISTANCE
            };
            if ungrouped[tcpu] && cpu_distance_fn.is_none_or(local) {
                ungrouped[tcpu] = false;
                group_map[tcpu] = nr_groups as u8;
                group_cnt[nr_groups] += 1;
            }
        }
        nr_groups += 1;
    }

    // Wasted space is caused by a ratio imbalance of upa to group_cnt: padding units fill
    // each group up to a multiple of upa. Take the largest upa that wastes at most a third
    // of the CPUs (upa 1 wastes nothing, so there always is one), and stop once a smaller
    // upa would need more blocks.
    let num_possible_cpus = possible_cpus.len();
    let mut last_allocs = usize::MAX;
    let mut best_upa = 0;
    for upa in (1..=max_upa).rev() {
        if !upa_fits(upa) {
            continue;
        }
        let (mut allocs, mut wasted) = (0, 0);
        for &cnt in &group_cnt[..nr_groups] {
            let this_allocs = cnt.div_ceil(upa);
            allocs += this_allocs;
            wasted += this_allocs * upa - cnt;
        }
        if wasted > num_possible_cpus / 3 {
            continue;
        }
        // And then don't consume more memory.
        if allocs > last_allocs {
            break;
        }
        last_allocs = allocs;
        best_upa = upa;
    }
    let upa = best_upa;

    let mut ai = PcpuAllocInfo::new();
    ai.static_size = static_size;
    ai.reserved_size = reserved_size;
    ai.dyn_size = dyn_size;
    ai.unit_size = alloc_size / upa;
    ai.atom_size = atom_size;
    ai.alloc_size = alloc_size;
    ai.nr_groups = nr_groups;

    let mut unit = 0;
    for group in 0..nr_groups {
        // Base offsets as if the groups were back to back; the caller updates them.
        let mut nr = 0;
        for &cpu in possible_cpus {
            if group_map[cpu] as usize == group {
                ai.cpu_map[unit + nr] = cpu as u32;
                nr += 1;
            }
        }
        ai.groups[group] = PcpuGroupInfo {
            nr_units: nr.next_multiple_of(upa),
            base_offset: unit * ai.unit_size,
            cpu_map: unit,
        };
        unit += ai.groups[group].nr_units;
    }
    debug_assert!(unit <= PCPU_MAX_UNITS);
    Ok(ai)
}

/// Linux: pcpu_dump_alloc_info() — the `pcpu-alloc:` lines at log level `lvl`: the sizes,
/// then `[group] cpu cpu ... ` for each `alloc_size` block, as many blocks per line as fit
/// in about 60 columns. Group and CPU numbers are zero-padded to the width of the largest
/// count, an unused unit prints as dashes of the CPU width.
pub fn pcpu_dump_alloc_info(lvl: u8, ai: &PcpuAllocInfo, num_possible_cpus: usize) {
    let digits = |mut v: usize| {
        let mut width = 1;
        while {
            v /= 10;
            v != 0
        } {
            width += 1;
        }
        width
    };
    let group_width = digits(ai.nr_groups);
    let cpu_width = digits(num_possible_cpus);
    let empty_str = &"--------"[..cpu_width.min(8)];

    let upa = ai.upa().max(1);
    let width = upa * (cpu_width + 1) + group_width + 3;
    let apl = rounddown_pow_of_two((60 / width).max(1));

    printk!(
        lvl,
        "pcpu-alloc: s{} r{} d{} u{} alloc={}*{}",
        ai.static_size,
        ai.reserved_size,
        ai.dyn_size,
        ai.unit_size,
        ai.alloc_size / ai.atom_size.max(1),
        ai.atom_size
    );

    let mut line = LineBuf::<1024>::new();
    let mut open = false;
    let (mut alloc, mut alloc_end) = (0, 0);
    for (group, gi) in ai.groups().iter().enumerate() {
        let cpu_map = ai.cpu_map(group);
        let (mut unit, mut unit_end) = (0, 0);
        alloc_end += gi.nr_units / upa;
        while alloc < alloc_end {
            if alloc % apl == 0 {
                if open {
                    printk!(lvl, "{}", line.as_str());
                }
                line.clear();
                let _ = line.write_str("pcpu-alloc: ");
                open = true;
            }
            let _ = write!(line, "[{group:0group_width$}] ");
            unit_end += upa;
            while unit < unit_end {
                match cpu_map.get(unit) {
                    Some(&cpu) if cpu != PCPU_NO_CPU => {
                        let _ = write!(line, "{cpu:0cpu_width$} ");
                    }
                    _ => {
                        let _ = write!(line, "{empty_str} ");
                    }
                }
                unit += 1;
            }
            alloc += 1;
        }
    }
    if open {
        printk!(lvl, "{}", line.as_str());
    }
}

/// `cpu_possible_mask` printed as Linux's `%*pb` with `nr_cpu_ids` bits: hex, in 32-bit
/// chunks separated by commas, the most significant (partial) chunk first.
struct CpumaskPb<'a>(&'a [usize]);

impl fmt::Display for CpumaskPb<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let nr_bits = self.0.last().map_or(0, |&c| c + 1);
        let mut chunksz = match nr_bits % 32 {
            0 => 32,
            n => n,
        };
        let mut first = true;
        let mut i = nr_bits.next_multiple_of(32);
        while i >= 32 {
            i -= 32;
            let val = (0..chunksz)
                .filter(|b| self.0.binary_search(&(i + b)).is_ok())
                .fold(0u32, |v, b| v | 1 << b);
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{:0w$x}", val, w = chunksz.div_ceil(4))?;
            chunksz = 32;
        }
        Ok(())
    }
}

/// What pcpu_setup_first_chunk() records for the rest of the kernel (Linux: the
/// `pcpu_base_addr`, `pcpu_unit_map`, `pcpu_unit_offsets`, ... statics).
#[derive(Clone, Debug)]
pub struct PcpuFirstChunk {
    /// Linux: pcpu_base_addr — the lowest group's area.
    pub base_addr: VirtAddr,
    /// Linux: pcpu_nr_groups.
    pub nr_groups: usize,
    /// Linux: pcpu_unit_size.
    pub unit_size: usize,
    /// Linux: pcpu_atom_size.
    pub atom_size: usize,
    /// Linux: pcpu_unit_map[] — each CPU's unit number (u32::MAX for impossible CPUs).
    pub unit_map: [u32; NR_CPUS],
    /// Linux: pcpu_unit_offsets[] — each CPU's unit, from `base_addr`.
    pub unit_offsets: [usize; NR_CPUS],
    /// Linux: pcpu_nr_units.
    pub nr_units: usize,
    /// Linux: pcpu_unit_pages.
    pub unit_pages: usize,
    /// Linux: pcpu_low_unit_cpu / pcpu_high_unit_cpu — the CPUs with the lowest and highest
    /// unit offsets.
    pub low_unit_cpu: usize,
    pub high_unit_cpu: usize,
}

/// PCPU_SETUP_BUG_ON()'s report: Linux prints this and BUG()s; here the caller gets an error.
fn pcpu_setup_bug(cond: &'static str, ai: &PcpuAllocInfo, possible_cpus: &[usize]) -> PcpuError {
    pr_emerg!("percpu: failed to initialize, {}", cond);
    pr_emerg!("percpu: cpu_possible_mask={}", CpumaskPb(possible_cpus));
    pcpu_dump_alloc_info(KERN_EMERG, ai, possible_cpus.len());
    PcpuError::SetupBug(cond)
}

/// Unit maps built by pcpu_setup_first_chunk()'s checks.
struct UnitMaps {
    unit_map: [u32; NR_CPUS],
    unit_off: [usize; NR_CPUS],
    nr_units: usize,
    low_unit_cpu: usize,
    high_unit_cpu: usize,
}

/// The sanity checks at the top of pcpu_setup_first_chunk(), in Linux's order, and the unit
/// maps they validate. `base_addr` None skips the two checks on it, so that
/// pcpu_embed_first_chunk() can fail before it allocates anything.
fn pcpu_setup_check(
    ai: &PcpuAllocInfo,
    base_addr: Option<VirtAddr>,
    per_cpu_start: VirtAddr,
    possible_cpus: &[usize],
) -> Result<UnitMaps, PcpuError> {
    let size_sum = ai
        .static_size
        .saturating_add(ai.reserved_size)
        .saturating_add(ai.dyn_size);
    let bug = |cond| Err(pcpu_setup_bug(cond, ai, possible_cpus));
    let page_offset = |x: u64| !x.is_multiple_of(PAGE_SIZE);

    if ai.nr_groups == 0 {
        return bug("ai->nr_groups <= 0");
    }
    if ai.static_size == 0 {
        return bug("!ai->static_size");
    }
    if page_offset(per_cpu_start.0) {
        return bug("offset_in_page(__per_cpu_start)");
    }
    if let Some(base) = base_addr {
        if base.0 == 0 {
            return bug("!base_addr");
        }
        if page_offset(base.0) {
            return bug("offset_in_page(base_addr)");
        }
    }
    if ai.unit_size < size_sum {
        return bug("ai->unit_size < size_sum");
    }
    if !ai.unit_size.is_multiple_of(PAGE) {
        return bug("offset_in_page(ai->unit_size)");
    }
    if ai.unit_size < PCPU_MIN_UNIT_SIZE {
        return bug("ai->unit_size < PCPU_MIN_UNIT_SIZE");
    }
    if !ai.unit_size.is_multiple_of(PCPU_BITMAP_BLOCK_SIZE) {
        return bug("!IS_ALIGNED(ai->unit_size, PCPU_BITMAP_BLOCK_SIZE)");
    }
    if ai.dyn_size < PERCPU_DYNAMIC_EARLY_SIZE {
        return bug("ai->dyn_size < PERCPU_DYNAMIC_EARLY_SIZE");
    }
    if !ai.reserved_size.is_multiple_of(PCPU_MIN_ALLOC_SIZE) {
        return bug("!IS_ALIGNED(ai->reserved_size, PCPU_MIN_ALLOC_SIZE)");
    }
    if check_possible_cpus(possible_cpus).is_err() {
        return Err(PcpuError::InvalidCpuMask);
    }
    // (pcpu_verify_alloc_info() only checks something for the percpu-km backend.)

    // Linux: nr_cpu_ids, one past the highest possible CPU.
    let nr_cpu_ids = possible_cpus.last().map_or(0, |&c| c + 1);
    let mut m = UnitMaps {
        unit_map: [u32::MAX; NR_CPUS],
        unit_off: [0; NR_CPUS],
        nr_units: 0,
        low_unit_cpu: NR_CPUS,
        high_unit_cpu: NR_CPUS,
    };
    let mut unit = 0;
    for (group, gi) in ai.groups().iter().enumerate() {
        for (i, &cpu) in ai.cpu_map(group).iter().enumerate() {
            if cpu == PCPU_NO_CPU {
                continue;
            }
            let cpu = cpu as usize;
            if cpu >= nr_cpu_ids {
                return bug("cpu >= nr_cpu_ids");
            }
            if possible_cpus.binary_search(&cpu).is_err() {
                return bug("!cpu_possible(cpu)");
            }
            if m.unit_map[cpu] != u32::MAX {
                return bug("unit_map[cpu] != UINT_MAX");
            }
            m.unit_map[cpu] = (unit + i) as u32;
            m.unit_off[cpu] = gi.base_offset + i * ai.unit_size;
            if m.low_unit_cpu == NR_CPUS || m.unit_off[cpu] < m.unit_off[m.low_unit_cpu] {
                m.low_unit_cpu = cpu;
            }
            if m.high_unit_cpu == NR_CPUS || m.unit_off[cpu] > m.unit_off[m.high_unit_cpu] {
                m.high_unit_cpu = cpu;
            }
        }
        unit += gi.nr_units;
    }
    m.nr_units = unit;
    if possible_cpus.iter().any(|&cpu| m.unit_map[cpu] == u32::MAX) {
        return bug("unit_map[cpu] == UINT_MAX");
    }
    Ok(m)
}

/// Linux: pcpu_setup_first_chunk() — check the layout of the first chunk, whose units the
/// caller has placed at `base_addr` (+ each group's `base_offset`) and filled from the
/// static image at `per_cpu_start`, dump it (`pcpu-alloc:` lines at KERN_DEBUG, which the
/// reference logs show thanks to `ignore_loglevel`) and record the unit maps.
pub fn pcpu_setup_first_chunk(
    ai: &PcpuAllocInfo,
    base_addr: VirtAddr,
    per_cpu_start: VirtAddr,
    possible_cpus: &[usize],
) -> Result<PcpuFirstChunk, PcpuError> {
    let m = pcpu_setup_check(ai, Some(base_addr), per_cpu_start, possible_cpus)?;
    pcpu_dump_alloc_info(KERN_DEBUG, ai, possible_cpus.len());
    Ok(PcpuFirstChunk {
        base_addr,
        nr_groups: ai.nr_groups,
        unit_size: ai.unit_size,
        atom_size: ai.atom_size,
        unit_map: m.unit_map,
        unit_offsets: m.unit_off,
        nr_units: m.nr_units,
        unit_pages: ai.unit_size >> PAGE_SHIFT,
        low_unit_cpu: m.low_unit_cpu,
        high_unit_cpu: m.high_unit_cpu,
    })
}

/// Linux: pcpu_fc_alloc() — `size` zeroed bytes aligned to `align` for the group whose first
/// CPU is `cpu`, on that CPU's node if it has one (memblock falls back to any node), above
/// `__pa(MAX_DMA_ADDRESS)` if possible.
pub fn pcpu_fc_alloc(
    mb: &mut Memblock,
    cpu: usize,
    size: usize,
    align: usize,
    cpu_to_nd_fn: Option<&dyn Fn(usize) -> i32>,
) -> Option<NonNull<u8>> {
    let node = cpu_to_nd_fn.map_or(NUMA_NO_NODE, |f| f(cpu));
    if node == NUMA_NO_NODE || !(0..MAX_NUMNODES).contains(&node) {
        let ptr = mb.alloc_from(size as u64, align as u64, PCPU_FC_GOAL);
        pr_info!(
            "percpu: cpu {} has no node {} or node-local memory",
            cpu,
            node
        );
        ptr
    } else {
        // Linux's pr_debug() of the address here is compiled out (dynamic debug, off).
        mb.alloc_try_nid(
            size as u64,
            align as u64,
            PCPU_FC_GOAL,
            MEMBLOCK_ALLOC_ACCESSIBLE,
            node,
        )
    }
}

/// Linux: pcpu_fc_free() — give part of an area back to memblock.
pub fn pcpu_fc_free(mb: &mut Memblock, ptr: *const u8, size: usize) {
    mb.free(ptr, size as u64);
}

/// Linux: pcpu_embed_first_chunk() — build the layout, allocate each group's area with
/// `fc_alloc(mb, first cpu of the group, size, atom_size)` (Linux: pcpu_fc_alloc(); pass
/// [`pcpu_fc_alloc`] with the CPU-to-node map), copy `static_image` (Linux:
/// `__per_cpu_start..__per_cpu_end`, page aligned) into every used unit, give each unit's
/// tail past `size_sum` and every unused unit back to memblock, print `percpu: Embedded ...`
/// and set up the first chunk.
///
/// On failure everything allocated is given back and memblock is as it was.
#[allow(clippy::too_many_arguments)] // Linux's five, plus the globals Linux reads.
pub fn pcpu_embed_first_chunk(
    reserved_size: usize,
    dyn_size: usize,
    atom_size: usize,
    cpu_distance_fn: Option<&dyn Fn(usize, usize) -> u32>,
    mut fc_alloc: impl FnMut(&mut Memblock, usize, usize, usize) -> Option<NonNull<u8>>,
    static_image: &[u8],
    possible_cpus: &[usize],
    mb: &mut Memblock,
) -> Result<PcpuFirstChunk, PcpuError> {
    let mut ai = pcpu_build_alloc_info(
        static_image.len(),
        reserved_size,
        dyn_size,
        atom_size,
        cpu_distance_fn,
        possible_cpus,
    )?;
    let per_cpu_start = VirtAddr::from(static_image.as_ptr());
    // Linux would allocate, print "Embedded" and only then BUG() in
    // pcpu_setup_first_chunk(); checking first leaves memblock untouched.
    pcpu_setup_check(&ai, None, per_cpu_start, possible_cpus)?;

    // Linux keeps `ai` and `areas[]` in memblock pages, taken before the units and freed
    // after them. Ours are on the stack, but the pages are taken all the same: top-down they
    // sit above the units, so without them every unit would land two pages higher than in
    // Linux.
    let ai_size = ai.linux_ai_size();
    let ai_mem = mb
        .alloc(ai_size as u64, PAGE_SIZE)
        .ok_or(PcpuError::NoMem)?;
    let areas_size = pfn_align(ai.nr_groups * core::mem::size_of::<usize>()).unwrap_or(PAGE);
    let Some(areas_mem) = mb.alloc(areas_size as u64, SMP_CACHE_BYTES) else {
        mb.free(ai_mem.as_ptr(), ai_size as u64);
        return Err(PcpuError::NoMem);
    };

    let rc = embed_units(&mut ai, &mut fc_alloc, static_image, possible_cpus, mb);

    // Linux: pcpu_free_alloc_info(ai), then memblock_free(areas, areas_size).
    mb.free(ai_mem.as_ptr(), ai_size as u64);
    mb.free(areas_mem.as_ptr(), areas_size as u64);
    rc
}

/// The middle of pcpu_embed_first_chunk(): allocate, copy, free the unused parts, print and
/// set up. On error every group's area is freed (Linux: `out_free_areas`).
fn embed_units(
    ai: &mut PcpuAllocInfo,
    fc_alloc: &mut impl FnMut(&mut Memblock, usize, usize, usize) -> Option<NonNull<u8>>,
    static_image: &[u8],
    possible_cpus: &[usize],
    mb: &mut Memblock,
) -> Result<PcpuFirstChunk, PcpuError> {
    let size_sum = ai.static_size + ai.reserved_size + ai.dyn_size;
    let nr_groups = ai.nr_groups;
    let mut areas = [ptr::null_mut::<u8>(); PCPU_MAX_GROUPS];
    let group_bytes = |ai: &PcpuAllocInfo, g: usize| ai.groups[g].nr_units * ai.unit_size;
    let free_areas = |mb: &mut Memblock, ai: &PcpuAllocInfo, areas: &[*mut u8]| {
        for (g, &area) in areas.iter().enumerate() {
            if !area.is_null() {
                // Tails already given back are simply not reserved any more.
                pcpu_fc_free(mb, area, group_bytes(ai, g));
            }
        }
    };

    // Allocate, and determine the base address and max_distance.
    let mut base = usize::MAX;
    let mut highest_group = 0;
    for group in 0..nr_groups {
        // Every group has a CPU: groups are made from CPUs.
        let cpu = ai
            .cpu_map(group)
            .iter()
            .find(|&&c| c != PCPU_NO_CPU)
            .map(|&c| c as usize);
        let area = cpu
            .and_then(|cpu| {
                ai.groups[group]
                    .nr_units
                    .checked_mul(ai.unit_size)
                    .map(|s| (cpu, s))
            })
            .and_then(|(cpu, size)| fc_alloc(mb, cpu, size, ai.atom_size));
        let Some(area) = area else {
            free_areas(mb, ai, &areas[..group]);
            return Err(PcpuError::NoMem);
        };
        areas[group] = area.as_ptr();
        base = base.min(area.as_ptr() as usize);
        if area.as_ptr() > areas[highest_group] {
            highest_group = group;
        }
    }
    let max_distance = (areas[highest_group] as usize - base)
        .saturating_add(group_bytes(ai, highest_group)) as u64;

    // Warn if the maximum distance is further than 75% of the vmalloc space; arm64 has the
    // page first chunk to fall back to, so Linux fails here.
    if max_distance > VMALLOC_TOTAL / 4 * 3 {
        pr_warn!(
            "percpu: max_distance={:#x} too large for vmalloc space {:#x}",
            max_distance,
            VMALLOC_TOTAL
        );
        free_areas(mb, ai, &areas[..nr_groups]);
        return Err(PcpuError::Inval);
    }

    // Copy the data and free the unused parts, after all allocations are done: freeing
    // earlier could let one group's area overlap another's.
    for (group, &area) in areas[..nr_groups].iter().enumerate() {
        for (i, &cpu) in ai.cpu_map(group).iter().enumerate() {
            let unit = area.wrapping_add(i * ai.unit_size);
            if cpu == PCPU_NO_CPU {
                // Unused unit: free it whole.
                pcpu_fc_free(mb, unit, ai.unit_size);
                continue;
            }
            // SAFETY: `unit` is inside the group's area, which fc_alloc() handed out with
            // `nr_units * unit_size` writable bytes; the unit has room for `static_size` (<=
            // size_sum <= unit_size, checked) bytes. The image is the caller's data, not
            // memory memblock just handed out, so the two do not overlap.
            unsafe { ptr::copy_nonoverlapping(static_image.as_ptr(), unit, ai.static_size) };
            pcpu_fc_free(mb, unit.wrapping_add(size_sum), ai.unit_size - size_sum);
        }
    }

    // The base address is now known: determine the groups' base offsets.
    for (gi, &area) in ai.groups[..nr_groups].iter_mut().zip(&areas) {
        gi.base_offset = area as usize - base;
    }

    pr_info!(
        "percpu: Embedded {} pages/cpu s{} r{} d{} u{}",
        size_sum >> PAGE_SHIFT,
        ai.static_size,
        ai.reserved_size,
        ai.dyn_size,
        ai.unit_size
    );

    let per_cpu_start = VirtAddr::from(static_image.as_ptr());
    pcpu_setup_first_chunk(ai, VirtAddr(base as u64), per_cpu_start, possible_cpus)
        .inspect_err(|_| free_areas(mb, ai, &areas[..nr_groups]))
}

/// Every CPU's `__per_cpu_offset[]` entry, as setup_per_cpu_areas() computes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerCpuOffsets {
    offsets: [u64; NR_CPUS],
}

impl PerCpuOffsets {
    /// Linux: per_cpu_offset(cpu) — 0 for a CPU that is not possible.
    pub fn get(&self, cpu: usize) -> u64 {
        self.offsets.get(cpu).copied().unwrap_or(0)
    }
}

/// Linux: setup_per_cpu_areas() in drivers/base/arch_numa.c (arm64 with NUMA) — embed the
/// first chunk with room for modules (PERCPU_MODULE_RESERVE) and early dynamic allocations
/// (PERCPU_DYNAMIC_RESERVE) in page-sized atoms, grouping CPUs by node distance
/// (`pcpu_cpu_distance`) and placing each group on its node (`early_cpu_to_node`), then
/// compute each CPU's offset from `static_image` (`__per_cpu_start`) to its unit.
///
/// The kernel calls it from start_kernel() right after setup_arch(), and panics on error as
/// Linux does (`Failed to initialize percpu areas (err=%d).`, with [`PcpuError::errno`]);
/// then it hands the result to [`set_per_cpu_offsets`].
pub fn setup_per_cpu_areas(
    static_image: &[u8],
    possible_cpus: &[usize],
    early_cpu_to_node: &dyn Fn(usize) -> i32,
    node_distance: &dyn Fn(i32, i32) -> u32,
    mb: &mut Memblock,
) -> Result<PerCpuOffsets, PcpuError> {
    let pcpu_cpu_distance =
        |from: usize, to: usize| node_distance(early_cpu_to_node(from), early_cpu_to_node(to));
    let chunk = pcpu_embed_first_chunk(
        PERCPU_MODULE_RESERVE,
        PERCPU_DYNAMIC_RESERVE,
        PAGE,
        Some(&pcpu_cpu_distance),
        |mb, cpu, size, align| pcpu_fc_alloc(mb, cpu, size, align, Some(early_cpu_to_node)),
        static_image,
        possible_cpus,
        mb,
    )?;

    // Unsigned arithmetic as in Linux: the units may lie below the image.
    let delta = chunk.base_addr.0.wrapping_sub(static_image.as_ptr() as u64);
    let mut offsets = PerCpuOffsets {
        offsets: [0; NR_CPUS],
    };
    for &cpu in possible_cpus {
        offsets.offsets[cpu] = delta.wrapping_add(chunk.unit_offsets[cpu] as u64);
    }
    Ok(offsets)
}

/// Linux: __per_cpu_offset[] — written once at boot, read-only after.
static PER_CPU_OFFSET: spin::Once<PerCpuOffsets> = spin::Once::new();

/// Publishes setup_per_cpu_areas()'s result as the kernel's `__per_cpu_offset[]`. Later
/// calls keep the first.
pub fn set_per_cpu_offsets(offsets: PerCpuOffsets) -> &'static PerCpuOffsets {
    PER_CPU_OFFSET.call_once(|| offsets)
}

/// Linux: per_cpu_offset(cpu) — 0 before [`set_per_cpu_offsets`], as Linux's array is, so
/// early per-CPU accesses reach the static image itself.
pub fn per_cpu_offset(cpu: usize) -> u64 {
    PER_CPU_OFFSET.get().map_or(0, |o| o.get(cpu))
}

/// Linux: per_cpu_ptr(&var, cpu) — CPU `cpu`'s copy of a per-CPU static (DEFINE_PER_CPU:
/// a static in the `.data..percpu` section, copied into every CPU's unit by
/// setup_per_cpu_areas). Before the offsets are published every CPU reaches the static
/// image itself, as Linux's zero `__per_cpu_offset[]` does; on the host too.
///
/// # Safety
/// `var` must be a static placed in `.data..percpu` (so each possible CPU's unit holds a
/// copy at the same offset), `cpu` must be a possible CPU (below nr_cpu_ids), and `T` must
/// be safe to share between CPUs (atomics, locks).
pub unsafe fn per_cpu_ptr<T: Sync>(var: &'static T, cpu: usize) -> &'static T {
    let p = (var as *const T as u64).wrapping_add(per_cpu_offset(cpu)) as *const T;
    // SAFETY: by the caller's contract `p` is `cpu`'s initialised copy of `var`, which lives
    // as long as the kernel (the units are never freed) and is `Sync`.
    unsafe { &*p }
}

#[cfg(test)]
mod tests;
