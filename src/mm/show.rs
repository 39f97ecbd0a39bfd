//! Reports over the memory-management structures (Linux: mm/vmstat.c's /proc/zoneinfo,
//! /proc/buddyinfo and /proc/pagetypeinfo, fs/proc/meminfo.c's /proc/meminfo, and
//! show_free_areas()/__show_mem() of mm/page_alloc.c and lib/show_mem.c in 6.1). Each report
//! is a function that hands lines to a sink, separate from where they are printed: the
//! console, a test, later a monitor. `mm_reports=` prints the buddy's reports at boot.

use core::fmt::Write;
use core::sync::atomic::Ordering;

use super::mmzone::{
    NodeDataMap, Zone, MAX_NR_ZONES, MAX_ORDER, NR_FREE_CMA_PAGES, NR_FREE_PAGES, WMARK_HIGH,
    WMARK_LOW, WMARK_MIN,
};
use super::numa::Nodemask;
use super::page::{MIGRATETYPE_NAMES, MIGRATE_TYPES, PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER};
use super::page_alloc::{free_area_snapshot, PageAlloc, PAGETYPEINFO_CAP};
use crate::kernel::params::SetupResult;

/// A line of a report (fixed buffer: no allocator is needed to print one; Linux's longest,
/// show_free_areas()'s zone line, is under 400 bytes).
type Line = crate::kernel::printk::LineBuf<512>;

macro_rules! emit {
    ($out:expr, $($arg:tt)*) => {{
        let mut l = Line::new();
        let _ = write!(l, $($arg)*);
        $out(l.as_str());
    }};
}

/// Linux: zoneinfo_show_print() — the sizes part of `/proc/zoneinfo`, for every populated
/// zone of every node (free counts join once the buddy allocator runs).
pub fn zoneinfo(nodes: &NodeDataMap, out: &mut dyn FnMut(&str)) {
    for pgdat in nodes.pgdats() {
        for zone in pgdat
            .node_zones
            .iter()
            .filter(|z| z.present_pages > 0 || z.spanned_pages > 0)
        {
            emit!(out, "Node {}, zone {:>8}", pgdat.node_id, zone.name());
            let wm = |i: usize| zone._watermark[i].load(Ordering::Relaxed);
            // Linux: zone_page_state(NR_FREE_PAGES) — the buddy's free blocks, in pages.
            let free = zone.zone_page_state(NR_FREE_PAGES);
            emit!(out, "  pages free     {}", free);
            emit!(out, "        min      {}", wm(WMARK_MIN));
            emit!(out, "        low      {}", wm(WMARK_LOW));
            emit!(out, "        high     {}", wm(WMARK_HIGH));
            emit!(out, "        spanned  {}", zone.spanned_pages);
            emit!(out, "        present  {}", zone.present_pages);
            emit!(
                out,
                "        managed  {}",
                zone.managed_pages.load(Ordering::Relaxed)
            );
            emit!(out, "  start_pfn:           {}", zone.zone_start_pfn);
        }
    }
}

static MMINIT_LOGLEVEL: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// Linux: mminit_loglevel= — at MMINIT_VERIFY (1) and above, the zone report is printed
/// after the zones are set up.
fn set_mminit_loglevel(val: Option<&str>) -> SetupResult {
    let v = val
        .and_then(crate::kernel::params::parse_u64)
        .ok_or("expected a number")?;
    MMINIT_LOGLEVEL.store(v as u32, Ordering::Relaxed);
    Ok(())
}
crate::early_param!("mminit_loglevel", set_mminit_loglevel);

/// Prints [`zoneinfo`] if `mminit_loglevel=` asks for it.
pub fn mminit_print_zoneinfo(nodes: &NodeDataMap) {
    if MMINIT_LOGLEVEL.load(Ordering::Relaxed) >= 1 {
        pr_info!("mminit::zoneinfo");
        zoneinfo(nodes, &mut |l| pr_info!("{}", l));
    }
}

/// Linux: K() — pages to KiB.
const fn k(pages: u64) -> u64 {
    pages << (super::addr::PAGE_SHIFT - 10)
}

/// Linux: /proc/buddyinfo (frag_show_print() over every populated zone) — free blocks per
/// order: `Node 0, zone      DMA      1      0 ...` (each count `%6lu `).
pub fn buddyinfo(nodes: &NodeDataMap, out: &mut dyn FnMut(&str)) {
    for pgdat in nodes.pgdats() {
        for zone in pgdat.node_zones.iter().filter(|z| z.populated_zone()) {
            let snap = free_area_snapshot(zone);
            let mut l = Line::new();
            let _ = write!(l, "Node {}, zone {:>8} ", pgdat.node_id, zone.name());
            for n in snap.nr_free {
                let _ = write!(l, "{:6} ", n);
            }
            out(l.as_str());
        }
    }
}

/// Linux: /proc/pagetypeinfo (pagetypeinfo_show(), per node with memory): the free blocks
/// per migratetype per order, then the pageblocks of each type. `pfn_valid` says which
/// pageblocks exist (Linux: pfn_to_online_page()); no page_owner, so no mixed-block counts.
pub fn pagetypeinfo(
    nodes: &NodeDataMap,
    pfn_valid: &dyn Fn(u64) -> bool,
    out: &mut dyn FnMut(&str),
) {
    for pgdat in nodes.pgdats().filter(|p| p.node_present_pages != 0) {
        emit!(out, "Page block order: {}", PAGEBLOCK_ORDER);
        emit!(out, "Pages per block:  {}", PAGEBLOCK_NR_PAGES);
        out("");
        let mut l = Line::new();
        let _ = write!(l, "{:<43} ", "Free pages count per migrate type at order");
        for order in 0..MAX_ORDER {
            let _ = write!(l, "{:6} ", order);
        }
        out(l.as_str());
        let zones = || pgdat.node_zones.iter().filter(|z| z.populated_zone());
        for zone in zones() {
            let snap = free_area_snapshot(zone);
            for (mt, name) in MIGRATETYPE_NAMES.iter().enumerate() {
                let mut l = Line::new();
                let _ = write!(
                    l,
                    "Node {:4}, zone {:>8}, type {:>12} ",
                    pgdat.node_id,
                    zone.name(),
                    name
                );
                for order in 0..MAX_ORDER {
                    let n = snap.per_type[mt][order];
                    let over = if n >= PAGETYPEINFO_CAP { ">" } else { "" };
                    let _ = write!(l, "{}{:6} ", over, n);
                }
                out(l.as_str());
            }
        }
        out("");
        let mut l = Line::new();
        let _ = write!(l, "{:<23}", "Number of blocks type ");
        for name in MIGRATETYPE_NAMES {
            let _ = write!(l, "{:>12} ", name);
        }
        out(l.as_str());
        for zone in zones() {
            let count = pageblock_counts(zone, pfn_valid);
            let mut l = Line::new();
            let _ = write!(l, "Node {}, zone {:>8} ", pgdat.node_id, zone.name());
            for c in count {
                let _ = write!(l, "{:12} ", c);
            }
            out(l.as_str());
        }
    }
}

/// Linux: pagetypeinfo_showblockcount_print()'s count — pageblocks of each migratetype.
pub fn pageblock_counts(zone: &Zone, pfn_valid: &dyn Fn(u64) -> bool) -> [u64; MIGRATE_TYPES] {
    let mut count = [0u64; MIGRATE_TYPES];
    let mut pfn = zone.zone_start_pfn;
    while pfn < zone.zone_end_pfn() {
        if pfn_valid(pfn) {
            let mt = zone.get_pageblock_migratetype(pfn) as usize;
            if mt < MIGRATE_TYPES {
                count[mt] += 1;
            }
        }
        pfn += PAGEBLOCK_NR_PAGES;
    }
    count
}

/// Linux: si_mem_available() — free pages less the reserves (no page cache or
/// reclaimable slab exists to add here).
pub fn si_mem_available(pa: &PageAlloc) -> u64 {
    let available = pa.nr_free_pages() as i64 - pa.totalreserve_pages() as i64;
    available.max(0) as u64
}

/// Linux: /proc/meminfo's first lines (meminfo_proc_show(), `%8lu kB`): the totals this
/// kernel knows. The rest of Linux's lines describe subsystems that do not exist here.
pub fn meminfo(pa: &PageAlloc, out: &mut dyn FnMut(&str)) {
    emit!(out, "MemTotal:       {:8} kB", k(pa.totalram_pages()));
    emit!(out, "MemFree:        {:8} kB", k(pa.nr_free_pages()));
    emit!(out, "MemAvailable:   {:8} kB", k(si_mem_available(pa)));
}

/// Linux: show_mem_node_skip() with SHOW_MEM_FILTER_NODES: `filter` is the nodemask to keep.
fn node_skip(filter: Option<Nodemask>, nid: i32) -> bool {
    filter.is_some_and(|m| !m.isset(nid))
}

/// Linux: show_migration_types() — `(UME) `.
fn migration_types(types: u32, l: &mut Line) {
    const LETTERS: [char; MIGRATE_TYPES] = ['U', 'M', 'E', 'H', 'C', 'I'];
    let _ = l.write_str("(");
    for (i, c) in LETTERS.iter().enumerate() {
        if types & (1 << i) != 0 {
            let _ = l.write_char(*c);
        }
    }
    let _ = l.write_str(") ");
}

/// Linux 6.1: show_free_areas(filter, nodemask, max_zone_idx) — the counters (those this
/// kernel has no subsystem for are 0), each zone's free memory and watermarks, and its free
/// blocks per order with their migratetypes. `filter`: only these nodes.
pub fn show_free_areas(
    pa: &PageAlloc,
    filter: Option<Nodemask>,
    max_zone_idx: usize,
    out: &mut dyn FnMut(&str),
) {
    let nodes = pa.nodes();
    let shown = |z: &&Zone| {
        z.populated_zone() && z.zone_idx() <= max_zone_idx && !node_skip(filter, z.node)
    };
    let free_pcp: u64 = pa
        .zones()
        .filter(shown)
        .map(|z| pa.zone_pcp_counts(z).0)
        .sum();
    let free: u64 = pa.zones().map(|z| z.zone_page_state(NR_FREE_PAGES)).sum();
    let free_cma: u64 = pa
        .zones()
        .map(|z| z.zone_page_state(NR_FREE_CMA_PAGES))
        .sum();
    out("active_anon:0 inactive_anon:0 isolated_anon:0");
    out(" active_file:0 inactive_file:0 isolated_file:0");
    out(" unevictable:0 dirty:0 writeback:0");
    out(" slab_reclaimable:0 slab_unreclaimable:0");
    out(" mapped:0 shmem:0 pagetables:0");
    out(" sec_pagetables:0 bounce:0");
    out(" kernel_misc_reclaimable:0");
    emit!(
        out,
        " free:{} free_pcp:{} free_cma:{}",
        free,
        free_pcp,
        free_cma
    );
    for pgdat in nodes.pgdats() {
        if node_skip(filter, pgdat.node_id)
            || !pgdat.node_zones[..=max_zone_idx.min(MAX_NR_ZONES - 1)]
                .iter()
                .any(|z| z.zone_managed_pages() != 0)
        {
            continue;
        }
        emit!(
            out,
            "Node {} active_anon:0kB inactive_anon:0kB active_file:0kB inactive_file:0kB unevictable:0kB isolated(anon):0kB isolated(file):0kB mapped:0kB dirty:0kB writeback:0kB shmem:0kB shmem_thp: 0kB shmem_pmdmapped: 0kB anon_thp: 0kB writeback_tmp:0kB kernel_stack:0kB pagetables:0kB sec_pagetables:0kB all_unreclaimable? no",
            pgdat.node_id
        );
    }
    for zone in pa.zones().filter(shown) {
        let (all_pcp, local_pcp) = pa.zone_pcp_counts(zone);
        emit!(
            out,
            "Node {} {} free:{}kB boost:{}kB min:{}kB low:{}kB high:{}kB reserved_highatomic:{}KB active_anon:0kB inactive_anon:0kB active_file:0kB inactive_file:0kB unevictable:0kB writepending:0kB present:{}kB managed:{}kB mlocked:0kB bounce:0kB free_pcp:{}kB local_pcp:{}kB free_cma:{}kB",
            zone.node,
            zone.name(),
            k(zone.zone_page_state(NR_FREE_PAGES)),
            k(zone.watermark_boost.load(Ordering::Relaxed)),
            k(zone.min_wmark_pages()),
            k(zone.low_wmark_pages()),
            k(zone.high_wmark_pages()),
            k(zone.nr_reserved_highatomic.load(Ordering::Relaxed)),
            k(zone.present_pages),
            k(zone.zone_managed_pages()),
            k(all_pcp),
            k(local_pcp),
            k(zone.zone_page_state(NR_FREE_CMA_PAGES))
        );
        let mut l = Line::new();
        let _ = l.write_str("lowmem_reserve[]:");
        for i in 0..MAX_NR_ZONES {
            let _ = write!(l, " {}", zone.lowmem_reserve(i));
        }
        out(l.as_str());
    }
    for zone in pa.zones().filter(shown) {
        let snap = free_area_snapshot(zone);
        let mut l = Line::new();
        let _ = write!(l, "Node {} {}: ", zone.node, zone.name());
        let mut total = 0;
        for order in 0..MAX_ORDER {
            let nr = snap.nr_free[order];
            total += nr << order;
            let _ = write!(l, "{}*{}kB ", nr, k(1) << order);
            if nr != 0 {
                let types = (0..MIGRATE_TYPES)
                    .filter(|&t| snap.per_type[t][order] != 0)
                    .fold(0, |a, t| a | 1 << t);
                migration_types(types, &mut l);
            }
        }
        let _ = write!(l, "= {}kB", k(total));
        out(l.as_str());
    }
    out("0 total pagecache pages");
}

/// Linux: __show_mem() — `Mem-Info:`, show_free_areas(), and the page totals.
pub fn show_mem(
    pa: &PageAlloc,
    filter: Option<Nodemask>,
    max_zone_idx: usize,
    out: &mut dyn FnMut(&str),
) {
    out("Mem-Info:");
    show_free_areas(pa, filter, max_zone_idx, out);
    let (mut total, mut reserved) = (0, 0);
    for zone in pa.populated_zones() {
        total += zone.present_pages;
        reserved += zone.present_pages - zone.zone_managed_pages().min(zone.present_pages);
    }
    emit!(out, "{} pages RAM", total);
    out("0 pages HighMem/MovableOnly");
    emit!(out, "{} pages reserved", reserved);
    out("0 pages cma reserved");
    out("0 pages hwpoisoned");
}

/// Which reports `mm_reports=` asked for (bits: 1 buddyinfo, 2 pagetypeinfo, 4 meminfo,
/// 8 show_mem).
static MM_REPORTS: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// Parses `mm_reports=` — a comma list of `buddyinfo`, `pagetypeinfo`, `meminfo`,
/// `show_mem`, or `all` — into the bits of [`MM_REPORTS`].
pub fn parse_mm_reports(val: &str) -> Result<u32, &'static str> {
    let mut bits = 0;
    for w in val.split(',') {
        bits |= match w {
            "buddyinfo" => 1,
            "pagetypeinfo" => 2,
            "meminfo" => 4,
            "show_mem" => 8,
            "all" => 15,
            _ => return Err("expected buddyinfo, pagetypeinfo, meminfo, show_mem or all"),
        };
    }
    Ok(bits)
}

/// `mm_reports=` (our own parameter): print the buddy allocator's reports once the kernel
/// reaches [`print_mm_reports`] (after mem_init()).
fn set_mm_reports(val: Option<&str>) -> SetupResult {
    let bits = parse_mm_reports(val.ok_or("expected a list of reports")?)?;
    MM_REPORTS.store(bits, Ordering::Relaxed);
    Ok(())
}
crate::early_param!("mm_reports", set_mm_reports);

/// Prints the reports `mm_reports=` asked for, each under an `mm: <name>` heading.
pub fn print_mm_reports(pa: &PageAlloc, pfn_valid: &dyn Fn(u64) -> bool) {
    print_mm_reports_bits(pa, pfn_valid, MM_REPORTS.load(Ordering::Relaxed));
}

/// [`print_mm_reports`] for an explicit set of reports.
pub fn print_mm_reports_bits(pa: &PageAlloc, pfn_valid: &dyn Fn(u64) -> bool, bits: u32) {
    let mut out = |l: &str| pr_info!("{}", l);
    if bits & 1 != 0 {
        pr_info!("mm: buddyinfo");
        buddyinfo(pa.nodes(), &mut out);
    }
    if bits & 2 != 0 {
        pr_info!("mm: pagetypeinfo");
        pagetypeinfo(pa.nodes(), pfn_valid, &mut out);
    }
    if bits & 4 != 0 {
        pr_info!("mm: meminfo");
        meminfo(pa, &mut out);
    }
    if bits & 8 != 0 {
        pr_info!("mm: show_mem");
        show_mem(pa, None, MAX_NR_ZONES - 1, &mut out);
    }
}
