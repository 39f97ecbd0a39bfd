//! Zone sizing and the memory map: from memblock's ranges and the arch's zone limits to each
//! node's zones, and every `struct page` initialised. Mirrors the boot half of Linux 6.1's
//! mm/page_alloc.c (`free_area_init`, `find_zone_movable_pfns_for_nodes`,
//! `free_area_init_node`, `calculate_node_totalpages`, `zone_spanned_pages_in_node`,
//! `zone_absent_pages_in_node`, `calc_memmap_size`, `free_area_init_core`, `memmap_init`,
//! `init_unavailable_range`, `kernelcore=`/`movablecore=`), which Linux 6.4 moved to
//! mm/mm_init.c; plus the arithmetic of arm64's `zone_sizes_init()`/`max_zone_phys()`
//! (arch/arm64/mm/init.c), as a pure function the arch calls.
//!
//! The computations are pure functions over memblock's ranges returning plain data
//! ([`ZoneLayout`], [`NodeSize`]); the `print_*` functions print Linux's lines from that
//! data; [`free_area_init`] runs them in Linux's order and writes the node structures.
//!
//! Boundaries with other files: pfn_valid() is "the 128 MiB section holds memblock memory"
//! (what sparse_init()'s memblocks_present() makes true), computed here from memblock; the
//! pageblock bitmap is per zone, allocated here (Linux's !SPARSEMEM setup_usemap()), not per
//! section. Deferred struct-page init (DEFERRED_STRUCT_PAGE_INIT, [`Memmap::deferred_struct_page_init`])
//! is Linux's defer_init(), answered per range rather than per pfn: each node's highest zone
//! gets its first section's worth, the rest is page_alloc/deferred.rs's; unlike Linux, the
//! deferred part's pageblocks are marked MIGRATE_MOVABLE here (see memmap_init_range()).
//! Each struct page is written once, whole, by `page::init_page_range`, the range checked
//! against the memmap once. `kernelcore=mirror` is parsed and
//! then refused with Linux's message for a machine without mirrored memory; `movable_node`
//! does not exist here.

use super::addr::{Pfn, PhysAddr, PAGE_SHIFT, PAGE_SIZE};
use super::memblock::Memblock;
use super::mmzone::{NodeDataMap, PglistData, Zone};
use super::numa::{get_pfn_range_for_nid, NumaInfo};
use super::page::{init_page_range, page_links, usemap_size, Page, PG_RESERVED, STRUCT_PAGE_SIZE};
use crate::include::cache::SMP_CACHE_BYTES;
use crate::include::mmzone::{
    MAX_NR_ZONES, MAX_ORDER_NR_PAGES, MIGRATE_MOVABLE, ZONE_MOVABLE, ZONE_NAMES,
};
use crate::include::numa::MAX_NUMNODES;
use crate::include::pageblock_flags::{pageblock_aligned, PAGEBLOCK_NR_PAGES};
use crate::kernel::params::{memparse, SetupResult};
use core::sync::atomic::Ordering;

const NN: usize = MAX_NUMNODES as usize;

/// Linux: SECTION_SIZE_BITS (arm64, 4 KiB pages: 128 MiB sections).
pub const SECTION_SIZE_BITS: u32 = 27;
/// Linux: PFN_SECTION_SHIFT.
pub const PFN_SECTION_SHIFT: u32 = SECTION_SIZE_BITS - PAGE_SHIFT;
/// Linux: PAGES_PER_SECTION.
pub const PAGES_PER_SECTION: u64 = 1 << PFN_SECTION_SHIFT;

// ---------------------------------------------------------------------------------------------
// kernelcore= / movablecore=

/// A `kernelcore=`/`movablecore=` value: pages, or a percentage of all memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreParam {
    /// Linux: required_kernelcore / required_movablecore (pages).
    pub pages: u64,
    /// Linux: required_kernelcore_percent / required_movablecore_percent.
    pub percent: u64,
}

/// What sizes ZONE_MOVABLE (Linux: the statics the two early params set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZoneMovableParams {
    pub kernelcore: CoreParam,
    pub movablecore: CoreParam,
    /// Linux: mirrored_kernelcore (`kernelcore=mirror`).
    pub mirrored_kernelcore: bool,
}

/// Linux: cmdline_parse_core() — `nn%` or a size with K/M/G suffix. A percentage keeps the
/// previous page count, as Linux leaves `*core` alone then.
pub fn cmdline_parse_core(p: Option<&str>, old: CoreParam) -> Result<CoreParam, &'static str> {
    let p = p.ok_or("expected a size or a percentage")?;
    let (v, rest) = memparse(p).ok_or("expected a size or a percentage")?;
    if rest.starts_with('%') {
        if v > 100 {
            pr_warn!("WARNING: CPU: 0 PID: 0 at mm/page_alloc.c (coremem > 100)");
        }
        return Ok(CoreParam {
            pages: old.pages,
            percent: v,
        });
    }
    Ok(CoreParam {
        pages: v >> PAGE_SHIFT,
        percent: 0,
    })
}

/// The command line's choice. Lock: early params run on the boot CPU; free_area_init reads.
static ZONE_MOVABLE_PARAMS: spin::Mutex<ZoneMovableParams> = spin::Mutex::new(ZoneMovableParams {
    kernelcore: CoreParam {
        pages: 0,
        percent: 0,
    },
    movablecore: CoreParam {
        pages: 0,
        percent: 0,
    },
    mirrored_kernelcore: false,
});

/// `kernelcore=` and `movablecore=` as given on the command line.
pub fn zone_movable_params() -> ZoneMovableParams {
    *ZONE_MOVABLE_PARAMS.lock()
}

/// Linux: cmdline_parse_kernelcore().
fn cmdline_parse_kernelcore(p: Option<&str>) -> SetupResult {
    let mut params = ZONE_MOVABLE_PARAMS.lock();
    if p.is_some_and(|p| p.starts_with("mirror")) {
        params.mirrored_kernelcore = true;
        return Ok(());
    }
    params.kernelcore = cmdline_parse_core(p, params.kernelcore)?;
    Ok(())
}
crate::early_param!("kernelcore", cmdline_parse_kernelcore);

/// Linux: cmdline_parse_movablecore().
fn cmdline_parse_movablecore(p: Option<&str>) -> SetupResult {
    let mut params = ZONE_MOVABLE_PARAMS.lock();
    params.movablecore = cmdline_parse_core(p, params.movablecore)?;
    Ok(())
}
crate::early_param!("movablecore", cmdline_parse_movablecore);

// ---------------------------------------------------------------------------------------------
// arm64: zone limits (arch/arm64/mm/init.c).

/// What arm64's zone_sizes_init() hands free_area_init(), and the DMA limit it records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arm64ZoneLimits {
    /// Linux: max_zone_pfns[] (ZONE_MOVABLE's entry is unused: 0).
    pub max_zone_pfns: [Pfn; MAX_NR_ZONES],
    /// Linux: arm64_dma_phys_limit — one past the highest ZONE_DMA address.
    pub arm64_dma_phys_limit: PhysAddr,
    /// Linux: zone_dma_bits.
    pub zone_dma_bits: u32,
}

/// Linux: zone_dma_bits = min3(32, fls64(of_dma_get_max_cpu_address()), ACPI's) — the
/// highest CPU address any device-tree `dma-ranges` reaches (PHYS_ADDR_MAX without any).
pub fn zone_dma_bits(dt_max_cpu_address: u64) -> u32 {
    let fls64 = 64 - dt_max_cpu_address.leading_zeros();
    32.min(fls64)
}

/// Linux: max_zone_phys() — one past the highest address `zone_bits` can reach, capped by
/// DRAM; if DRAM starts above that mask, the zone stretches to 4 GiB (or everything if DRAM
/// starts above 4 GiB).
pub fn max_zone_phys(zone_bits: u32, start_of_dram: PhysAddr, end_of_dram: PhysAddr) -> PhysAddr {
    let mut zone_mask = if zone_bits >= 64 {
        u64::MAX
    } else {
        (1u64 << zone_bits) - 1
    };
    if start_of_dram.0 > u32::MAX as u64 {
        zone_mask = u64::MAX;
    } else if start_of_dram.0 > zone_mask {
        zone_mask = u32::MAX as u64;
    }
    PhysAddr(zone_mask.min(end_of_dram.0 - 1) + 1)
}

/// Linux: zone_sizes_init() (arm64, CONFIG_ZONE_DMA and CONFIG_ZONE_DMA32) up to the
/// free_area_init() call: ZONE_DMA to `zone_dma_bits`, ZONE_DMA32 to 4 GiB, ZONE_NORMAL to
/// `max_pfn`.
pub fn zone_sizes_init(
    start_of_dram: PhysAddr,
    end_of_dram: PhysAddr,
    zone_dma_bits: u32,
    max_pfn: Pfn,
) -> Arm64ZoneLimits {
    let dma32_phys_limit = max_zone_phys(32, start_of_dram, end_of_dram);
    let arm64_dma_phys_limit = max_zone_phys(zone_dma_bits, start_of_dram, end_of_dram);
    let mut max_zone_pfns = [Pfn(0); MAX_NR_ZONES];
    max_zone_pfns[crate::include::mmzone::ZONE_DMA] = arm64_dma_phys_limit.pfn_down();
    max_zone_pfns[crate::include::mmzone::ZONE_DMA32] = dma32_phys_limit.pfn_down();
    max_zone_pfns[crate::include::mmzone::ZONE_NORMAL] = max_pfn;
    Arm64ZoneLimits {
        max_zone_pfns,
        arm64_dma_phys_limit,
        zone_dma_bits,
    }
}

// ---------------------------------------------------------------------------------------------
// Zone boundaries and ZONE_MOVABLE.

/// Where the zones may lie (Linux: arch_zone_lowest/highest_possible_pfn[],
/// zone_movable_pfn[], movable_zone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneLayout {
    pub arch_zone_lowest_possible_pfn: [u64; MAX_NR_ZONES],
    pub arch_zone_highest_possible_pfn: [u64; MAX_NR_ZONES],
    /// Linux: zone_movable_pfn[] — where ZONE_MOVABLE starts on each node (0: none).
    pub zone_movable_pfn: [u64; NN],
    /// Linux: movable_zone — the zone ZONE_MOVABLE's pages are taken from.
    pub movable_zone: usize,
}

/// free_area_init()'s first loop: each zone runs from the previous one's end to its
/// `max_zone_pfn` (or is empty), starting at the first pfn of DRAM; ZONE_MOVABLE has no
/// fixed range (arm64 has ascending zone limits).
pub fn arch_zone_pfn_ranges(
    start_pfn: Pfn,
    max_zone_pfn: &[Pfn; MAX_NR_ZONES],
) -> ([u64; MAX_NR_ZONES], [u64; MAX_NR_ZONES]) {
    let (mut lo, mut hi) = ([0; MAX_NR_ZONES], [0; MAX_NR_ZONES]);
    let mut start_pfn = start_pfn.0;
    for zone in 0..MAX_NR_ZONES {
        if zone == ZONE_MOVABLE {
            continue;
        }
        let end_pfn = max_zone_pfn[zone].0.max(start_pfn);
        lo[zone] = start_pfn;
        hi[zone] = end_pfn;
        start_pfn = end_pfn;
    }
    (lo, hi)
}

/// Linux: find_usable_zone_for_movable() — the highest zone with a range.
fn find_usable_zone_for_movable(lo: &[u64; MAX_NR_ZONES], hi: &[u64; MAX_NR_ZONES]) -> usize {
    (0..MAX_NR_ZONES)
        .rev()
        .filter(|&z| z != ZONE_MOVABLE)
        .find(|&z| hi[z] > lo[z])
        .unwrap_or(0)
}

/// Linux: find_zone_movable_pfns_for_nodes() — where ZONE_MOVABLE starts on each node so
/// that `kernelcore` pages (spread evenly over the nodes with memory) stay outside it, or
/// `movablecore` pages are inside. Returns (zone_movable_pfn[], movable_zone).
pub fn find_zone_movable_pfns_for_nodes(
    mb: &Memblock,
    lo: &[u64; MAX_NR_ZONES],
    hi: &[u64; MAX_NR_ZONES],
    params: &ZoneMovableParams,
) -> ([u64; NN], usize) {
    let mut zone_movable_pfn = [0u64; NN];
    // Linux: early_calculate_totalpages(), which also fills N_MEMORY.
    let mut n_memory = super::numa::Nodemask::NONE;
    let mut totalpages = 0;
    for (s, e, nid) in mb.mem_pfn_ranges(MAX_NUMNODES) {
        totalpages += e.0 - s.0;
        if e.0 > s.0 && (0..MAX_NUMNODES).contains(&nid) {
            n_memory.set(nid);
        }
    }
    let mut usable_nodes = n_memory.weight() as u64;
    let movable_zone = find_usable_zone_for_movable(lo, hi);

    if params.mirrored_kernelcore {
        if !mb.memory().regions().iter().any(|r| r.is_mirror()) {
            pr_warn!("The system has no mirror memory, ignore kernelcore=mirror.");
        } else {
            pr_warn!("mm: kernelcore=mirror is not supported by this kernel, ignored");
        }
        return (zone_movable_pfn, movable_zone);
    }

    let mut required_kernelcore = params.kernelcore.pages;
    let mut required_movablecore = params.movablecore.pages;
    if params.kernelcore.percent != 0 {
        required_kernelcore = (totalpages * 100 * params.kernelcore.percent) / 10000;
    }
    if params.movablecore.percent != 0 {
        required_movablecore = (totalpages * 100 * params.movablecore.percent) / 10000;
    }

    // movablecore= is turned into the kernelcore that leaves that much movable; the larger
    // of the two kernelcores wins.
    if required_movablecore != 0 {
        required_movablecore = required_movablecore.next_multiple_of(MAX_ORDER_NR_PAGES);
        required_movablecore = required_movablecore.min(totalpages);
        let corepages = totalpages - required_movablecore;
        required_kernelcore = required_kernelcore.max(corepages);
    }

    // No kernelcore, or more than all memory: no ZONE_MOVABLE.
    if required_kernelcore == 0 || required_kernelcore >= totalpages {
        return (zone_movable_pfn, movable_zone);
    }

    // The lowest pfn ZONE_MOVABLE may start at.
    let usable_startpfn = lo[movable_zone];

    loop {
        // Spread kernelcore as evenly as possible over the nodes.
        let mut kernelcore_node = required_kernelcore / usable_nodes;
        for nid in n_memory.iter() {
            if required_kernelcore < kernelcore_node {
                kernelcore_node = required_kernelcore / usable_nodes;
            }
            let mut kernelcore_remaining = kernelcore_node;
            for (s, e, _) in mb.mem_pfn_ranges(nid) {
                let (mut start_pfn, end_pfn) = (s.0.max(zone_movable_pfn[nid as usize]), e.0);
                if start_pfn >= end_pfn {
                    continue;
                }
                // Memory below the movable zone's floor only counts as kernelcore.
                if start_pfn < usable_startpfn {
                    let kernel_pages = end_pfn.min(usable_startpfn) - start_pfn;
                    kernelcore_remaining -= kernel_pages.min(kernelcore_remaining);
                    required_kernelcore -= kernel_pages.min(required_kernelcore);
                    if end_pfn <= usable_startpfn {
                        // Accounted: push the start past it so a rebalancing pass does
                        // not count it twice.
                        zone_movable_pfn[nid as usize] = end_pfn;
                        continue;
                    }
                    start_pfn = usable_startpfn;
                }
                let size_pages = (end_pfn - start_pfn).min(kernelcore_remaining);
                zone_movable_pfn[nid as usize] = start_pfn + size_pages;
                required_kernelcore -= required_kernelcore.min(size_pages);
                kernelcore_remaining -= size_pages;
                if kernelcore_remaining == 0 {
                    break;
                }
            }
        }
        // Nodes too small for their share: go again with one node fewer.
        usable_nodes -= 1;
        if !(usable_nodes != 0 && required_kernelcore > usable_nodes) {
            break;
        }
    }

    // out2: ZONE_MOVABLE starts MAX_ORDER-aligned; at or past the node's end means none.
    for nid in n_memory.iter() {
        let z = &mut zone_movable_pfn[nid as usize];
        *z = z.next_multiple_of(MAX_ORDER_NR_PAGES);
        let (_, end_pfn) = get_pfn_range_for_nid(mb, nid);
        if *z >= end_pfn.0 {
            *z = 0;
        }
    }
    (zone_movable_pfn, movable_zone)
}

/// The zone boundaries free_area_init() prints and sizes nodes with.
pub fn zone_layout(
    mb: &Memblock,
    max_zone_pfn: &[Pfn; MAX_NR_ZONES],
    params: &ZoneMovableParams,
) -> ZoneLayout {
    let (lo, hi) = arch_zone_pfn_ranges(mb.start_of_dram().pfn_down(), max_zone_pfn);
    let (zone_movable_pfn, movable_zone) = find_zone_movable_pfns_for_nodes(mb, &lo, &hi, params);
    ZoneLayout {
        arch_zone_lowest_possible_pfn: lo,
        arch_zone_highest_possible_pfn: hi,
        zone_movable_pfn,
        movable_zone,
    }
}

/// free_area_init()'s `Zone ranges:` and `Movable zone start for each node` lines.
pub fn print_zone_ranges(layout: &ZoneLayout) {
    pr_info!("Zone ranges:");
    let ranges = layout
        .arch_zone_lowest_possible_pfn
        .iter()
        .zip(&layout.arch_zone_highest_possible_pfn);
    for (i, (&lo, &hi)) in ranges.enumerate() {
        if i == ZONE_MOVABLE {
            continue;
        }
        if lo == hi {
            pr_info!("  {:<8} empty", ZONE_NAMES[i]);
        } else {
            pr_info!(
                "  {:<8} [mem {:#018x}-{:#018x}]",
                ZONE_NAMES[i],
                lo << PAGE_SHIFT,
                (hi << PAGE_SHIFT) - 1
            );
        }
    }
    pr_info!("Movable zone start for each node");
    for (i, &pfn) in layout.zone_movable_pfn.iter().enumerate() {
        if pfn != 0 {
            pr_info!("  Node {}: {:#018x}", i, pfn << PAGE_SHIFT);
        }
    }
}

/// free_area_init()'s `Early memory node ranges` block.
pub fn print_early_node_ranges(mb: &Memblock) {
    pr_info!("Early memory node ranges");
    for (s, e, nid) in mb.mem_pfn_ranges(MAX_NUMNODES) {
        pr_info!(
            "  node {:3}: [mem {:#018x}-{:#018x}]",
            nid,
            s.0 << PAGE_SHIFT,
            (e.0 << PAGE_SHIFT) - 1
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Node and zone sizes.

/// One zone's size on one node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZoneSize {
    /// Linux: zone->zone_start_pfn (0 for an empty zone).
    pub zone_start_pfn: Pfn,
    /// Linux: zone->spanned_pages.
    pub spanned_pages: u64,
    /// Linux: zone->present_pages.
    pub present_pages: u64,
    /// free_area_init_core()'s calc_memmap_size() for the zone.
    pub memmap_pages: u64,
    /// free_area_init_core()'s `freesize`: the managed_pages estimate before memblock frees
    /// its memory to the buddy.
    pub managed_pages: u64,
}

/// One node's size (Linux: the pg_data_t fields calculate_node_totalpages() fills).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeSize {
    pub nid: i32,
    pub node_start_pfn: Pfn,
    pub node_end_pfn: Pfn,
    pub node_spanned_pages: u64,
    pub node_present_pages: u64,
    pub zones: [ZoneSize; MAX_NR_ZONES],
}

/// Linux: adjust_zone_range_for_zone_movable().
fn adjust_zone_range_for_zone_movable(
    layout: &ZoneLayout,
    nid: i32,
    zone_type: usize,
    node_end_pfn: u64,
    zone_start_pfn: &mut u64,
    zone_end_pfn: &mut u64,
) {
    let zm = layout.zone_movable_pfn[nid as usize];
    if zm == 0 {
        return;
    }
    if zone_type == ZONE_MOVABLE {
        *zone_start_pfn = zm;
        *zone_end_pfn =
            node_end_pfn.min(layout.arch_zone_highest_possible_pfn[layout.movable_zone]);
    } else if *zone_start_pfn < zm && *zone_end_pfn > zm {
        // ZONE_MOVABLE starts inside this zone: the zone ends there.
        *zone_end_pfn = zm;
    } else if *zone_start_pfn >= zm {
        // The whole zone is ZONE_MOVABLE's.
        *zone_start_pfn = *zone_end_pfn;
    }
}

fn clamp(v: u64, lo: u64, hi: u64) -> u64 {
    v.max(lo).min(hi)
}

/// Linux: zone_spanned_pages_in_node() — returns (spanned, zone_start_pfn, zone_end_pfn).
pub fn zone_spanned_pages_in_node(
    layout: &ZoneLayout,
    nid: i32,
    zone_type: usize,
    node_start_pfn: Pfn,
    node_end_pfn: Pfn,
) -> (u64, Pfn, Pfn) {
    let (node_start_pfn, node_end_pfn) = (node_start_pfn.0, node_end_pfn.0);
    let zone_low = layout.arch_zone_lowest_possible_pfn[zone_type];
    let zone_high = layout.arch_zone_highest_possible_pfn[zone_type];
    // A node hot-added empty.
    if node_start_pfn == 0 && node_end_pfn == 0 {
        return (0, Pfn(0), Pfn(0));
    }
    let mut zs = clamp(node_start_pfn, zone_low, zone_high);
    let mut ze = clamp(node_end_pfn, zone_low, zone_high);
    adjust_zone_range_for_zone_movable(layout, nid, zone_type, node_end_pfn, &mut zs, &mut ze);
    // Does the node have pages in the zone's range at all?
    if ze < node_start_pfn || zs > node_end_pfn {
        return (0, Pfn(zs), Pfn(ze));
    }
    let ze = ze.min(node_end_pfn);
    let zs = zs.max(node_start_pfn);
    (ze - zs, Pfn(zs), Pfn(ze))
}

/// Linux: __absent_pages_in_range() — pfns of `[start, end)` not in node `nid`'s memory
/// (`MAX_NUMNODES`: anyone's).
pub fn absent_pages_in_range(mb: &Memblock, nid: i32, range_start: Pfn, range_end: Pfn) -> u64 {
    let (range_start, range_end) = (range_start.0, range_end.0);
    let mut nr_absent = range_end - range_start;
    for (s, e, _) in mb.mem_pfn_ranges(nid) {
        let s = clamp(s.0, range_start, range_end);
        let e = clamp(e.0, range_start, range_end);
        nr_absent -= e - s;
    }
    nr_absent
}

/// Linux 6.1: zone_absent_pages_in_node() — the holes in the zone's part of the node (the
/// zone range recomputed from the node's, as 6.1 does).
pub fn zone_absent_pages_in_node(
    mb: &Memblock,
    layout: &ZoneLayout,
    nid: i32,
    zone_type: usize,
    node_start_pfn: Pfn,
    node_end_pfn: Pfn,
) -> u64 {
    let (node_start_pfn, node_end_pfn) = (node_start_pfn.0, node_end_pfn.0);
    if node_start_pfn == 0 && node_end_pfn == 0 {
        return 0;
    }
    let zone_low = layout.arch_zone_lowest_possible_pfn[zone_type];
    let zone_high = layout.arch_zone_highest_possible_pfn[zone_type];
    let mut zs = clamp(node_start_pfn, zone_low, zone_high);
    let mut ze = clamp(node_end_pfn, zone_low, zone_high);
    adjust_zone_range_for_zone_movable(layout, nid, zone_type, node_end_pfn, &mut zs, &mut ze);
    // (kernelcore=mirror's extra accounting is not needed: mirror is refused.)
    absent_pages_in_range(mb, nid, Pfn(zs), Pfn(ze.max(zs)))
}

/// Linux: calc_memmap_size() — pages of `struct page` for a zone: by spanned pages, or by
/// present pages when holes are large (SPARSEMEM only backs the memory's sections).
pub fn calc_memmap_size(spanned_pages: u64, present_pages: u64) -> u64 {
    let pages = if spanned_pages > present_pages + (present_pages >> 4) {
        present_pages
    } else {
        spanned_pages
    };
    (pages * STRUCT_PAGE_SIZE).next_multiple_of(PAGE_SIZE) >> PAGE_SHIFT
}

/// Linux: calculate_node_totalpages() plus free_area_init_core()'s managed-pages estimate:
/// every zone's span, present pages, memmap pages and `freesize` for node `nid` over
/// `[node_start_pfn, node_end_pfn)`. `dma_reserve` is Linux's set_dma_reserve() (0 on arm64).
pub fn calculate_node_totalpages(
    mb: &Memblock,
    layout: &ZoneLayout,
    nid: i32,
    node_start_pfn: Pfn,
    node_end_pfn: Pfn,
    dma_reserve: u64,
) -> NodeSize {
    let mut ns = NodeSize {
        nid,
        node_start_pfn,
        node_end_pfn,
        ..NodeSize::default()
    };
    for (i, z) in ns.zones.iter_mut().enumerate() {
        let (spanned, zs, _) =
            zone_spanned_pages_in_node(layout, nid, i, node_start_pfn, node_end_pfn);
        let absent = zone_absent_pages_in_node(mb, layout, nid, i, node_start_pfn, node_end_pfn);
        z.zone_start_pfn = if spanned != 0 { zs } else { Pfn(0) };
        z.spanned_pages = spanned;
        z.present_pages = spanned - absent;
        ns.node_spanned_pages += spanned;
        ns.node_present_pages += z.present_pages;
    }
    // free_area_init_core(): "freesize" = present - memmap (no highmem on arm64) - dma_reserve.
    for (j, z) in ns.zones.iter_mut().enumerate() {
        let mut freesize = z.present_pages;
        z.memmap_pages = calc_memmap_size(z.spanned_pages, z.present_pages);
        if freesize >= z.memmap_pages {
            freesize -= z.memmap_pages;
            // Linux: pr_debug("  %s zone: %lu pages used for memmap") — off by default.
        } else {
            pr_warn!(
                "  {} zone: {} memmap pages exceeds freesize {}",
                ZONE_NAMES[j],
                z.memmap_pages,
                freesize
            );
        }
        if j == 0 && freesize > dma_reserve {
            freesize -= dma_reserve;
        }
        z.managed_pages = freesize;
    }
    ns
}

// ---------------------------------------------------------------------------------------------
// free_area_init() itself.

/// What free_area_init() leaves behind besides the node structures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreeAreaInit {
    pub layout: ZoneLayout,
    /// Linux: nr_kernel_pages (for alloc_large_system_hash()).
    pub nr_kernel_pages: u64,
    /// Linux: nr_all_pages.
    pub nr_all_pages: u64,
    /// Pages memmap_init() found in unavailable ranges (all nodes and zones).
    pub unavailable_pages: u64,
}

/// Linux: setup_usemap() (the !SPARSEMEM form): the zone's pageblock bitmap, on its node.
fn setup_usemap(mb: &mut Memblock, zone: &mut Zone) {
    let bytes = usemap_size(zone.zone_start_pfn, zone.spanned_pages);
    zone.pageblock_flags = core::ptr::null();
    zone.pageblock_words = 0;
    if bytes == 0 {
        return;
    }
    let Some(p) = mb.alloc_node(bytes, SMP_CACHE_BYTES, zone.node) else {
        panic!(
            "Failed to allocate {} bytes for zone {} pageblock flags on node {}",
            bytes,
            zone.name(),
            zone.node
        );
    };
    // memblock_alloc_node() zeroes, and zero is MIGRATE_UNMOVABLE with no skip bit.
    zone.pageblock_flags = p.as_ptr().cast();
    zone.pageblock_words = bytes / 8;
}

/// Linux: free_area_init_node() with free_area_init_core(): print the node's range, size its
/// zones and fill in its pg_data_t. Returns the sizes it wrote.
pub fn free_area_init_node(
    mb: &mut Memblock,
    nodes: &mut NodeDataMap,
    layout: &ZoneLayout,
    nid: i32,
    dma_reserve: u64,
) -> NodeSize {
    let (start_pfn, end_pfn) = get_pfn_range_for_nid(mb, nid);
    if start_pfn != end_pfn {
        pr_info!(
            "Initmem setup node {} [mem {:#018x}-{:#018x}]",
            nid,
            start_pfn.phys().0,
            if end_pfn != Pfn(0) {
                end_pfn.phys().0 - 1
            } else {
                0
            }
        );
    } else {
        pr_info!("Initmem setup node {} as memoryless", nid);
    }
    let ns = calculate_node_totalpages(mb, layout, nid, start_pfn, end_pfn, dma_reserve);
    let pgdat = nodes
        .get_mut(nid)
        .unwrap_or_else(|| panic!("free_area_init_node: node {nid} has no pg_data_t"));
    pgdat.node_id = nid;
    pgdat.node_start_pfn = start_pfn;
    pgdat.node_spanned_pages = ns.node_spanned_pages;
    pgdat.node_present_pages = ns.node_present_pages;
    // Linux: pgdat_set_deferred_range() — nothing deferred until memmap_init() says so.
    *pgdat.first_deferred_pfn.get_mut() = u64::MAX;
    pgdat.nr_zones = 0;
    for (j, zs) in ns.zones.iter().enumerate() {
        let zone = &mut pgdat.node_zones[j];
        zone.zone_start_pfn = zs.zone_start_pfn;
        zone.spanned_pages = zs.spanned_pages;
        zone.present_pages = zs.present_pages;
        zone.present_early_pages = zs.present_pages;
        // Linux: zone_init_internals().
        *zone.managed_pages.get_mut() = zs.managed_pages;
        zone.node = nid;
        zone.zone_idx = j as u32;
        zone.zone_pgdat = nid;
        if zs.spanned_pages == 0 {
            continue;
        }
        setup_usemap(mb, zone);
        // Linux: init_currently_empty_zone() with zone_init_free_lists().
        for area in zone.free_area.iter_mut() {
            for l in area.free_list.iter_mut() {
                l.init_list_head();
            }
            area.nr_free = 0;
        }
        zone.initialized = 1;
        pgdat.nr_zones = pgdat.nr_zones.max(j as u32 + 1);
    }
    ns
}

/// Linux: free_area_init() — print the zone layout and the early node map, size every
/// online node (whose pg_data_t numa_init() allocated), then initialise the memory map
/// (`memmap`, or just count its unavailable ranges if the caller has none).
pub fn free_area_init(
    mb: &mut Memblock,
    nodes: &mut NodeDataMap,
    numa: &NumaInfo,
    max_zone_pfn: &[Pfn; MAX_NR_ZONES],
    params: &ZoneMovableParams,
    dma_reserve: u64,
    memmap: Option<&mut Memmap>,
) -> FreeAreaInit {
    let layout = zone_layout(mb, max_zone_pfn, params);
    print_zone_ranges(&layout);
    print_early_node_ranges(mb);
    let (mut nr_kernel_pages, mut nr_all_pages) = (0, 0);
    for nid in numa.online_nodes() {
        let ns = free_area_init_node(mb, nodes, &layout, nid, dma_reserve);
        for z in &ns.zones {
            nr_kernel_pages += z.managed_pages;
            nr_all_pages += z.managed_pages;
        }
    }
    let unavailable_pages = memmap_init(mb, nodes, memmap);
    FreeAreaInit {
        layout,
        nr_kernel_pages,
        nr_all_pages,
        unavailable_pages,
    }
}

// ---------------------------------------------------------------------------------------------
// The memory map.

/// The `struct page` array for pfns `[start_pfn, start_pfn + nr_pages)` (Linux: the part of
/// `vmemmap` covering memory, where `pfn_to_page(pfn)` is `vmemmap + pfn`).
pub struct Memmap<'a> {
    base: *mut Page,
    start_pfn: u64,
    nr_pages: u64,
    /// Linux: CONFIG_DEFERRED_STRUCT_PAGE_INIT — memmap_init() leaves all but the first
    /// section of each node's highest zone to page_alloc_init_late().
    deferred: bool,
    _pages: core::marker::PhantomData<&'a mut [Page]>,
}

impl<'a> Memmap<'a> {
    /// A memmap over a slice whose first entry is `start_pfn`'s page.
    pub fn new(pages: &'a mut [Page], start_pfn: Pfn) -> Self {
        Self {
            base: pages.as_mut_ptr(),
            start_pfn: start_pfn.0,
            nr_pages: pages.len() as u64,
            deferred: false,
            _pages: core::marker::PhantomData,
        }
    }

    /// A memmap over vmemmap, where only the sections with memory are backed.
    ///
    /// # Safety
    /// For every pfn in `[start_pfn, start_pfn + nr_pages)` whose section holds memblock
    /// memory ([`early_pfn_valid`]), `base + (pfn - start_pfn)` must be a writable,
    /// aligned `Page` that nothing else accesses for `'a`. Pages of other sections are never
    /// touched through this value.
    pub unsafe fn from_raw(base: *mut Page, start_pfn: Pfn, nr_pages: u64) -> Self {
        Self {
            base,
            start_pfn: start_pfn.0,
            nr_pages,
            deferred: false,
            _pages: core::marker::PhantomData,
        }
    }

    /// Defer the struct pages of each node's highest zone past its first section, as
    /// Linux's CONFIG_DEFERRED_STRUCT_PAGE_INIT does (`deferred` false: initialise all).
    pub fn deferred_struct_page_init(self, deferred: bool) -> Self {
        Self { deferred, ..self }
    }

    /// Is struct-page init deferred?
    pub fn is_deferred(&self) -> bool {
        self.deferred
    }

    /// The struct pages of pfns `[start, end)`, bounds-checked once for the whole range
    /// (the inner loops then write through the pointer). Only for valid pfns.
    #[inline]
    fn range_mut(&mut self, start: u64, end: u64) -> *mut Page {
        assert!(
            self.start_pfn <= start && start <= end && end <= self.start_pfn + self.nr_pages,
            "pfns [{:#x}, {:#x}) are outside the memmap [{:#x}, {:#x})",
            start,
            end,
            self.start_pfn,
            self.start_pfn + self.nr_pages
        );
        self.base.wrapping_add((start - self.start_pfn) as usize)
    }

    #[inline]
    pub fn start_pfn(&self) -> Pfn {
        Pfn(self.start_pfn)
    }

    #[inline]
    pub fn end_pfn(&self) -> Pfn {
        Pfn(self.start_pfn + self.nr_pages)
    }

    #[inline]
    fn check(&self, pfn: u64) {
        assert!(
            (self.start_pfn..self.start_pfn + self.nr_pages).contains(&pfn),
            "pfn {:#x} is outside the memmap [{:#x}, {:#x})",
            pfn,
            self.start_pfn,
            self.start_pfn + self.nr_pages
        );
    }

    /// Linux: pfn_to_page(). Only for a valid pfn (see [`Memmap::from_raw`]).
    #[inline]
    pub fn pfn_to_page(&self, pfn: Pfn) -> &Page {
        let pfn = pfn.0;
        self.check(pfn);
        // SAFETY: in range (checked); valid pfns are backed, per the constructor's contract.
        unsafe { &*self.base.add((pfn - self.start_pfn) as usize) }
    }

    /// pfn_to_page() for writing.
    #[inline]
    pub fn pfn_to_page_mut(&mut self, pfn: Pfn) -> &mut Page {
        let pfn = pfn.0;
        self.check(pfn);
        // SAFETY: as above, and `&mut self` makes the access exclusive.
        unsafe { &mut *self.base.add((pfn - self.start_pfn) as usize) }
    }
}

/// Does memblock memory lie in section `nr`? (sparse_init() marks exactly those present.)
fn section_has_memory(mb: &Memblock, nr: u64) -> bool {
    let (s, e) = (nr << PFN_SECTION_SHIFT, (nr + 1) << PFN_SECTION_SHIFT);
    mb.mem_pfn_ranges(MAX_NUMNODES)
        .any(|(rs, re, _)| rs.0 < e && s < re.0)
}

/// Linux: pfn_valid() for SPARSEMEM with only early sections: the pfn's section holds
/// memory, so its struct pages exist.
pub fn early_pfn_valid(mb: &Memblock, pfn: Pfn) -> bool {
    section_has_memory(mb, pfn.0 >> PFN_SECTION_SHIFT)
}

/// Linux: init_unavailable_range() — struct pages in holes (of valid sections) get zone and
/// node links and PG_reserved, and are counted. Returns the count.
fn init_unavailable_range(
    mb: &Memblock,
    memmap: &mut Option<&mut Memmap>,
    spfn: u64,
    epfn: u64,
    zone: usize,
    node: i32,
) -> u64 {
    let mut pgcnt = 0;
    let mut pfn = spfn;
    // Linux steps pfn by pfn and skips invalid pageblocks; validity is per section, so go a
    // section at a time.
    while pfn < epfn {
        let sec_end = ((pfn >> PFN_SECTION_SHIFT) + 1) << PFN_SECTION_SHIFT;
        let end = sec_end.min(epfn);
        if early_pfn_valid(mb, Pfn(pfn)) {
            pgcnt += end - pfn;
            if let Some(m) = memmap.as_deref_mut() {
                let first = m.range_mut(pfn, end);
                // SAFETY: a valid section's pages, in the memmap (checked), ours (&mut).
                unsafe {
                    init_page_range(
                        first,
                        (end - pfn) as usize,
                        page_links(zone, node) | 1 << PG_RESERVED,
                        1,
                    )
                };
            }
        }
        pfn = end;
    }
    if pgcnt != 0 {
        pr_info!(
            "On node {}, zone {}: {} pages in unavailable ranges",
            node,
            ZONE_NAMES[zone],
            pgcnt
        );
    }
    pgcnt
}

/// Linux: defer_init()'s state — the zone being counted (its end pfn) and how many of its
/// pages were initialised so far (Linux keeps both in statics).
#[derive(Default)]
struct DeferInit {
    prev_end_pfn: u64,
    nr_initialised: u64,
}

impl DeferInit {
    /// Linux: defer_init() asked for each pfn of `[start_pfn, end_pfn)` in turn, answered
    /// for the whole range at once: the first pfn to defer, or `end_pfn` if none. Only the
    /// zone ending at its node's end defers (lower zones serve address-limited allocations);
    /// it starts deferring at the first section boundary after PAGES_PER_SECTION pages were
    /// initialised, recording that pfn as the node's `first_deferred_pfn`.
    fn defer_from(
        &mut self,
        pgdat: &PglistData,
        start_pfn: u64,
        end_pfn: u64,
        zone_end_pfn: u64,
    ) -> u64 {
        if self.prev_end_pfn != zone_end_pfn {
            self.prev_end_pfn = zone_end_pfn;
            self.nr_initialised = 0;
        }
        if zone_end_pfn < pgdat.pgdat_end_pfn().0 {
            return end_pfn;
        }
        if pgdat.first_deferred_pfn.load(Ordering::Relaxed) != u64::MAX {
            return start_pfn;
        }
        // The k-th pfn of the range (from 0) is the (nr_initialised + k + 1)-th of the zone.
        let kmin = PAGES_PER_SECTION.saturating_sub(self.nr_initialised);
        let pfn = (start_pfn + kmin).next_multiple_of(PAGES_PER_SECTION);
        if pfn < end_pfn {
            pgdat.first_deferred_pfn.store(pfn, Ordering::Relaxed);
            self.nr_initialised += pfn - start_pfn + 1;
            return pfn;
        }
        self.nr_initialised += end_pfn - start_pfn;
        end_pfn
    }
}

/// Linux: memmap_init_range() for MEMINIT_EARLY — initialise each page (not reserved: that
/// is memblock_free_all()'s reserve_bootmem_region()) up to where defer_init() stops, and
/// mark each pageblock it starts MIGRATE_MOVABLE. Unlike Linux, the pageblocks past the
/// deferred point are marked here too: Linux marks them as it frees their first page later,
/// so that a pageblock starting with a reserved page stays MIGRATE_UNMOVABLE; here the end
/// state is the non-deferred boot's.
fn memmap_init_range(
    memmap: &mut Option<&mut Memmap>,
    defer: &mut DeferInit,
    pgdat: &PglistData,
    zone: &Zone,
    start_pfn: u64,
    end_pfn: u64,
) {
    if let Some(m) = memmap.as_deref_mut() {
        let init_end = if m.is_deferred() {
            defer.defer_from(pgdat, start_pfn, end_pfn, zone.zone_end_pfn().0)
        } else {
            end_pfn
        };
        let first = m.range_mut(start_pfn, init_end);
        let links = page_links(zone.zone_idx(), pgdat.node_id);
        // SAFETY: memory pfns (their sections are valid), in the memmap (checked), ours.
        unsafe { init_page_range(first, (init_end - start_pfn) as usize, links, 1) };
    }
    let mut pfn = start_pfn.next_multiple_of(PAGEBLOCK_NR_PAGES);
    while pfn < end_pfn {
        debug_assert!(pageblock_aligned(pfn));
        zone.set_pageblock_migratetype(Pfn(pfn), MIGRATE_MOVABLE);
        pfn += PAGEBLOCK_NR_PAGES;
    }
}

/// Linux: memmap_init() — every memory range's pages, zone by zone, and the holes between
/// them and up to the last section's end. Returns the pages found in unavailable ranges.
pub fn memmap_init(mb: &Memblock, nodes: &NodeDataMap, mut memmap: Option<&mut Memmap>) -> u64 {
    let mut hole_pfn = 0;
    let (mut zone_id, mut last_nid, mut end_pfn) = (0, 0, 0);
    let mut unavailable = 0;
    let mut defer = DeferInit::default();
    for (s, e, nid) in mb.mem_pfn_ranges(MAX_NUMNODES) {
        let Some(node) = nodes.get(nid) else {
            continue;
        };
        (last_nid, end_pfn) = (nid, e.0);
        for (j, zone) in node.node_zones.iter().enumerate() {
            if !zone.populated_zone() {
                continue;
            }
            // Linux: memmap_init_zone_range().
            let (zs, ze) = (zone.zone_start_pfn.0, zone.zone_end_pfn().0);
            let (start_pfn, zend) = (clamp(s.0, zs, ze), clamp(e.0, zs, ze));
            if start_pfn < zend {
                memmap_init_range(&mut memmap, &mut defer, node, zone, start_pfn, zend);
                if hole_pfn < start_pfn {
                    unavailable +=
                        init_unavailable_range(mb, &mut memmap, hole_pfn, start_pfn, j, nid);
                }
                hole_pfn = zend;
            }
            zone_id = j;
        }
    }
    // The hole from the end of memory to the end of its section joins the last zone.
    let end_pfn = end_pfn.next_multiple_of(PAGES_PER_SECTION);
    if hole_pfn < end_pfn {
        unavailable +=
            init_unavailable_range(mb, &mut memmap, hole_pfn, end_pfn, zone_id, last_nid);
    }
    unavailable
}

/// Linux: reserve_bootmem_region() — memblock_free_all() marks every reserved range's valid
/// pages PG_reserved before freeing the rest to the buddy.
pub fn reserve_bootmem_region(mb: &Memblock, memmap: &mut Memmap, start: PhysAddr, end: PhysAddr) {
    for pfn in start.pfn_down().0..end.pfn_up().0 {
        let pfn = Pfn(pfn);
        if early_pfn_valid(mb, pfn) {
            let page = memmap.pfn_to_page_mut(pfn);
            page.lru.init_list_head();
            page.__set_page_reserved();
        }
    }
}

#[cfg(test)]
mod tests;
