//! The memory report of an allocation failure, and the free-list snapshot it and the other
//! reports read. Mirrors Linux 6.1's warn_alloc() and show_free_areas() (mm/page_alloc.c)
//! and __show_mem() (lib/show_mem.c) — the split Linux 6.2 made into mm/show_mem.c. It is
//! part of the page allocator (the failure path of `__alloc_pages` prints it), so the other
//! reports in `mm::show` build on the allocator without the allocator building on them.

use core::fmt::{self, Write};
use core::ptr;
use core::sync::atomic::Ordering;

use super::{PageAlloc, COMM};
use crate::include::mmzone::MAX_ORDER;
use crate::include::mmzone::{MAX_NR_ZONES, MIGRATE_TYPES, ZONE_DMA};
use crate::include::numa::MAX_NUMNODES;
use crate::kernel::printk::LineBuf;
use crate::mm::addr::PAGE_SHIFT;
use crate::mm::gfp::{gfp_zone, GfpNames, GfpT, __GFP_DIRECT_RECLAIM, __GFP_DMA, __GFP_NOWARN};
use crate::mm::mmzone::{Zone, NR_FREE_CMA_PAGES, NR_FREE_PAGES};
use crate::mm::numa::Nodemask;
use crate::mm::page::ListHead;

/// One report line, formatted into a stack buffer and handed to the sink.
macro_rules! emit {
    ($out:expr, $($arg:tt)*) => {{
        let mut l = LineBuf::<512>::new();
        let _ = write!(l, $($arg)*);
        $out(l.as_str());
    }};
}

/// Linux: K() — pages to KiB.
const fn k(pages: u64) -> u64 {
    pages << (PAGE_SHIFT - 10)
}

/// Free blocks of one zone, per order and per migratetype (for buddyinfo, pagetypeinfo,
/// show_free_areas). Per-type counts stop at 100000, as Linux's pagetypeinfo does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FreeAreaSnapshot {
    pub nr_free: [u64; MAX_ORDER],
    pub per_type: [[u64; MAX_ORDER]; MIGRATE_TYPES],
}

/// Linux's cap on a pagetypeinfo list walk.
pub const PAGETYPEINFO_CAP: u64 = 100000;

/// Reads a zone's free areas under its lock (Linux: the loops of frag_show_print(),
/// pagetypeinfo_showfree_print() and show_free_areas()).
pub fn free_area_snapshot(zone: &Zone) -> FreeAreaSnapshot {
    let mut s = FreeAreaSnapshot::default();
    if !zone.zone_is_initialized() {
        return s;
    }
    let _g = zone.lock.lock();
    for order in 0..MAX_ORDER {
        // SAFETY: the zone lock is held; the lists were initialised by free_area_init.
        unsafe {
            let fa = zone.free_area.get().add(order);
            s.nr_free[order] = (*fa).nr_free;
            for mt in 0..MIGRATE_TYPES {
                let head: *mut ListHead = ptr::addr_of_mut!((*fa).free_list[mt]);
                let mut n = 0;
                let mut cur = (*head).next;
                while !ptr::eq(cur, head) && n < PAGETYPEINFO_CAP {
                    n += 1;
                    cur = (*cur).next;
                }
                s.per_type[mt][order] = n;
            }
        }
    }
    s
}

impl PageAlloc<'_> {
    /// Linux: warn_alloc() with warn_alloc_show_mem() — unless __GFP_NOWARN, the failure
    /// line and the memory report (Linux also prints the cpuset and a stack trace).
    pub fn warn_alloc(&self, gfp: GfpT, nodemask: Option<Nodemask>, order: u32) {
        if gfp & __GFP_NOWARN != 0 {
            return;
        }
        if gfp & __GFP_DMA != 0 && !self.has_managed_dma() {
            return;
        }
        let mut out = |l: &str| pr_warn!("{}", l);
        warn_alloc_lines(gfp, nodemask, order, &mut out);
        // Linux: only an allocation that may reclaim filters by its nodemask.
        let filter = nodemask.filter(|_| gfp & __GFP_DIRECT_RECLAIM != 0);
        show_mem(self, filter, gfp_zone(gfp), &mut out);
    }

    /// Linux: has_managed_dma().
    fn has_managed_dma(&self) -> bool {
        self.nodes
            .pgdats()
            .any(|p| p.node_zones[ZONE_DMA].zone_managed_pages() != 0)
    }
}

/// warn_alloc()'s first line: `swapper/0: page allocation failure: order:N, mode:0x..(...),
/// nodemask=(null)`.
pub fn warn_alloc_lines(
    gfp: GfpT,
    nodemask: Option<Nodemask>,
    order: u32,
    out: &mut dyn FnMut(&str),
) {
    let mut l = LineBuf::<512>::new();
    let _ = fmt::write(
        &mut l,
        format_args!(
            "{}: page allocation failure: order:{}, mode:{:#x}({}), nodemask=",
            COMM,
            order,
            gfp,
            GfpNames(gfp)
        ),
    );
    match nodemask {
        None => {
            let _ = fmt::write(&mut l, format_args!("(null)"));
        }
        Some(m) => {
            let _ = fmt::write(&mut l, format_args!("{}", NodeList(m)));
        }
    }
    out(l.as_str());
}

/// Linux: `%*pbl` of a nodemask — ranges, `0-1,3`.
pub struct NodeList(pub Nodemask);

impl fmt::Display for NodeList {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let nodes = &self.0;
        let list =
            crate::kernel::printk::BitmapList(|n| nodes.isset(n as i32), MAX_NUMNODES as usize);
        fmt::Display::fmt(&list, f)
    }
}

/// Linux: show_mem_node_skip() with SHOW_MEM_FILTER_NODES: `filter` is the nodemask to keep.
fn node_skip(filter: Option<Nodemask>, nid: i32) -> bool {
    filter.is_some_and(|m| !m.isset(nid))
}

/// Linux: show_migration_types() — `(UME) `.
fn migration_types(types: u32, l: &mut LineBuf<512>) {
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
        let mut l = LineBuf::<512>::new();
        let _ = l.write_str("lowmem_reserve[]:");
        for i in 0..MAX_NR_ZONES {
            let _ = write!(l, " {}", zone.lowmem_reserve(i));
        }
        out(l.as_str());
    }
    for zone in pa.zones().filter(shown) {
        let snap = free_area_snapshot(zone);
        let mut l = LineBuf::<512>::new();
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
    emit!(out, "{} pages cma reserved", pa.totalcma_pages());
    out("0 pages hwpoisoned");
}

#[cfg(test)]
mod tests;
