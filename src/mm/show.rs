//! Reports over the memory-management structures (Linux: mm/vmstat.c's /proc/zoneinfo,
//! /proc/buddyinfo and /proc/pagetypeinfo, fs/proc/meminfo.c's /proc/meminfo). show_mem()
//! itself belongs to the page allocator (`page_alloc/show_mem.rs`), whose failure path prints
//! it; this module only calls it. Each report is a function that hands lines to a sink,
//! separate from where they are printed: the console, a test, later a monitor.
//! `mm_reports=` prints the buddy's reports at boot.

use core::fmt::Write;
use core::sync::atomic::Ordering;

use super::addr::Pfn;
use super::mmzone::{
    NodeDataMap, Zone, NR_FREE_CMA_PAGES, NR_FREE_PAGES, WMARK_HIGH, WMARK_LOW, WMARK_MIN,
};
use super::page_alloc::{free_area_snapshot, show_mem, PageAlloc, PAGETYPEINFO_CAP};
use crate::include::mmzone::MAX_ORDER;
use crate::include::mmzone::{MAX_NR_ZONES, MIGRATETYPE_NAMES, MIGRATE_TYPES};
use crate::include::pageblock_flags::{PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER};
use crate::kernel::params::SetupResult;
use crate::kernel::printk::LineBuf;

/// One report line, formatted into a stack buffer (no allocator is needed to print one;
/// Linux's longest lines are under 400 bytes) and handed to the sink.
macro_rules! emit {
    ($out:expr, $($arg:tt)*) => {{
        let mut l = LineBuf::<512>::new();
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
            // Linux: zone_cma_pages() (CONFIG_CMA).
            emit!(
                out,
                "        cma      {}",
                zone.cma_pages.load(Ordering::Relaxed)
            );
            emit!(out, "  start_pfn:           {}", zone.zone_start_pfn.0);
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
            let mut l = LineBuf::<512>::new();
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
    pfn_valid: &dyn Fn(Pfn) -> bool,
    out: &mut dyn FnMut(&str),
) {
    for pgdat in nodes.pgdats().filter(|p| p.node_present_pages != 0) {
        emit!(out, "Page block order: {}", PAGEBLOCK_ORDER);
        emit!(out, "Pages per block:  {}", PAGEBLOCK_NR_PAGES);
        out("");
        let mut l = LineBuf::<512>::new();
        let _ = write!(l, "{:<43} ", "Free pages count per migrate type at order");
        for order in 0..MAX_ORDER {
            let _ = write!(l, "{:6} ", order);
        }
        out(l.as_str());
        let zones = || pgdat.node_zones.iter().filter(|z| z.populated_zone());
        for zone in zones() {
            let snap = free_area_snapshot(zone);
            for (mt, name) in MIGRATETYPE_NAMES.iter().enumerate() {
                let mut l = LineBuf::<512>::new();
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
        let mut l = LineBuf::<512>::new();
        let _ = write!(l, "{:<23}", "Number of blocks type ");
        for name in MIGRATETYPE_NAMES {
            let _ = write!(l, "{:>12} ", name);
        }
        out(l.as_str());
        for zone in zones() {
            let count = pageblock_counts(zone, pfn_valid);
            let mut l = LineBuf::<512>::new();
            let _ = write!(l, "Node {}, zone {:>8} ", pgdat.node_id, zone.name());
            for c in count {
                let _ = write!(l, "{:12} ", c);
            }
            out(l.as_str());
        }
    }
}

/// Linux: pagetypeinfo_showblockcount_print()'s count — pageblocks of each migratetype.
pub fn pageblock_counts(zone: &Zone, pfn_valid: &dyn Fn(Pfn) -> bool) -> [u64; MIGRATE_TYPES] {
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
    emit!(out, "CmaTotal:       {:8} kB", k(pa.totalcma_pages()));
    let cma_free: u64 = pa
        .zones()
        .map(|z| z.zone_page_state(NR_FREE_CMA_PAGES))
        .sum();
    emit!(out, "CmaFree:        {:8} kB", k(cma_free));
}

/// Which reports `mm_reports=` asked for (bits: 1 buddyinfo, 2 pagetypeinfo, 4 meminfo,
/// 8 show_mem, 16 page_owner grouped by stack, 32 page_owner block by block, 64 kmemleak).
static MM_REPORTS: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// Parses `mm_reports=` — a comma list of `buddyinfo`, `pagetypeinfo`, `meminfo`,
/// `show_mem`, `page_owner`, `page_owner_full`, `kmemleak`, or `all` (the first four) — into the bits of
/// [`MM_REPORTS`].
pub fn parse_mm_reports(val: &str) -> Result<u32, &'static str> {
    let mut bits = 0;
    for w in val.split(',') {
        bits |= match w {
            "buddyinfo" => 1,
            "pagetypeinfo" => 2,
            "meminfo" => 4,
            "show_mem" => 8,
            "page_owner" => 16,
            "page_owner_full" => 32,
            "kmemleak" => 64,
            "all" => 15,
            _ => return Err(
                "expected buddyinfo, pagetypeinfo, meminfo, show_mem, page_owner, page_owner_full, kmemleak or all",
            ),
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
pub fn print_mm_reports(pa: &PageAlloc, pfn_valid: &dyn Fn(Pfn) -> bool) {
    print_mm_reports_bits(pa, pfn_valid, MM_REPORTS.load(Ordering::Relaxed));
}

/// [`print_mm_reports`] for an explicit set of reports.
pub fn print_mm_reports_bits(pa: &PageAlloc, pfn_valid: &dyn Fn(Pfn) -> bool, bits: u32) {
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
    // page_owner's reports (empty unless `page_owner=on`).
    if bits & 16 != 0 {
        pr_info!("mm: page_owner");
        super::page_owner::print_page_owner_grouped(pa, &mut |a| pr_info!("{}", a));
    }
    if bits & 32 != 0 {
        pr_info!("mm: page_owner_full");
        super::page_owner::print_page_owner_all(pa, &mut |a| pr_info!("{}", a));
    }
    // kmemleak: a scan, then /sys/kernel/debug/kmemleak (with kmemleak=on).
    if bits & 64 != 0 {
        pr_info!("mm: kmemleak");
        super::kmemleak::print_kmemleak_report();
    }
}

#[cfg(test)]
mod tests;
