//! Deferred struct-page init: the memory memmap_init() left uninitialised (all but the
//! first section of each node's highest zone) is initialised and freed to the buddy after
//! the secondary CPUs are up, split among each node's CPUs; an allocation that runs out of
//! initialised memory before then grows it on demand. Mirrors Linux 6.1's
//! CONFIG_DEFERRED_STRUCT_PAGE_INIT in mm/page_alloc.c (`deferred_init_memmap()`,
//! `deferred_init_memmap_chunk()`, `deferred_init_maxorder()`, `deferred_init_pages()`,
//! `deferred_free_range()`, `deferred_grow_zone()`, `page_alloc_init_late()`; Linux 6.4
//! moved them to mm/mm_init.c) and the splitting of kernel/padata.c's
//! `padata_do_multithreaded()`.
//!
//! What differs from Linux:
//! - Linux's deferred init walks memblock's free ranges again when it runs;
//!   memblock_free_all() records here the free ranges it skipped (memblock does not change
//!   after it), so the page allocator needs no memblock. If there are more than
//!   [`DEFERRED_RANGES`], the rest is initialised at once (a slower boot, the same end state).
//! - Linux runs one `pgdatinit` kthread per node, which hands chunks to padata workers on
//!   the node's CPUs; here the boot CPU hands every node's job to the node's online CPUs at
//!   once through cross-CPU calls ([`PadataSmp`]), and a CPU-less node's job to one CPU.
//!   The chunks are Linux's: whole sections, about a quarter of a CPU's share each.
//! - Linux frees a MAX_ORDER block's worth in one go and anything smaller page by page (the
//!   buddy merges them); here the smaller parts go in the largest aligned blocks, which the
//!   buddy would have merged them into: the same free lists' counts.
//! - Each page is written once, already unreferenced (what __free_pages_core() would make
//!   of Linux's freshly initialised page), and goes to the buddy without
//!   free_pages_prepare()'s per-page check: the allocation-time check still sees it.
//! - The pageblock migratetypes are set by memmap_init() for the deferred part too (see
//!   free_area_init.rs), so a pageblock whose first page is reserved ends MOVABLE as in a
//!   non-deferred boot (Linux leaves it UNMOVABLE).

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::PageAlloc;
use crate::include::mmzone::{MAX_NR_ZONES, MAX_ORDER, MAX_ORDER_NR_PAGES};
use crate::include::numa::{MAX_NUMNODES, NR_CPUS};
use crate::mm::free_area_init::PAGES_PER_SECTION;
use crate::mm::mmzone::{PglistData, Zone};
use crate::mm::page::{init_page_range, page_links};
use crate::mm::Pfn;

/// How many deferred free ranges memblock_free_all() records.
pub const DEFERRED_RANGES: usize = 128;

/// Linux: HZ (arm64 defconfig) — the printed milliseconds are whole jiffies, as Linux's.
pub const HZ: u64 = 250;

/// The deferred free ranges and Linux's `deferred_pages` static key. Written by
/// memblock_free_all() on the boot CPU before the key is enabled; read-only after (the
/// nodes' `first_deferred_pfn`, under their `node_size_lock`, say which part is still to do).
pub struct DeferredPages {
    /// Linux: the deferred_pages static branch — deferred pages may remain.
    on: AtomicBool,
    nr: AtomicUsize,
    ranges: [(AtomicU64, AtomicU64); DEFERRED_RANGES],
}

impl DeferredPages {
    pub const fn new() -> Self {
        Self {
            on: AtomicBool::new(false),
            nr: AtomicUsize::new(0),
            ranges: [const { (AtomicU64::new(0), AtomicU64::new(0)) }; DEFERRED_RANGES],
        }
    }

    /// Records the free pfns `[start, end)`; false when full.
    pub(super) fn record(&self, start: u64, end: u64) -> bool {
        let n = self.nr.load(Ordering::Relaxed);
        if n == DEFERRED_RANGES {
            return false;
        }
        self.ranges[n].0.store(start, Ordering::Relaxed);
        self.ranges[n].1.store(end, Ordering::Relaxed);
        self.nr.store(n + 1, Ordering::Release);
        true
    }

    /// Linux: static_branch_enable(&deferred_pages), if anything was deferred.
    pub(super) fn enable(&self) {
        if self.nr.load(Ordering::Relaxed) != 0 {
            self.on.store(true, Ordering::Release);
        }
    }

    /// Are there deferred pages (page_alloc_init_late() has not finished)?
    pub fn active(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    /// The recorded free ranges clipped to `[start, end)`, in address order.
    fn ranges_in(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let n = self.nr.load(Ordering::Acquire);
        self.ranges[..n].iter().filter_map(move |(s, e)| {
            let s = s.load(Ordering::Relaxed).max(start);
            let e = e.load(Ordering::Relaxed).min(end);
            (s < e).then_some((s, e))
        })
    }
}

impl Default for DeferredPages {
    fn default() -> Self {
        Self::new()
    }
}

/// What deferred init needs from the CPUs: which are online where, running work on several
/// at once, and the time (Linux: cpumask_of_node(), padata's workqueue, jiffies).
pub trait PadataSmp: Sync {
    /// Linux: cpumask_of_node() — the online CPUs of `nid`, into `out`; how many.
    fn node_cpus(&self, nid: i32, out: &mut [usize]) -> usize;
    /// Linux: cpu_online_mask — every online CPU, into `out`; how many.
    fn online_cpus(&self, out: &mut [usize]) -> usize;
    /// Runs `work(cpu)` on each CPU of `cpus` at once (this CPU's part here, if listed)
    /// and returns when all are done.
    fn run_on(&self, cpus: &[usize], work: &(dyn Fn(usize) + Sync));
    /// Linux: jiffies, at [`HZ`].
    fn jiffies(&self) -> u64;
}

/// One node's deferred pages as a job for several CPUs (Linux: struct padata_mt_job with
/// padata_mt_job_state).
struct NodeJob<'p> {
    pgdat: &'p PglistData,
    /// The next pfn to hand out, and the end.
    next: AtomicU64,
    end: u64,
    chunk_size: u64,
    /// The CPUs that work on it.
    helpers: [u64; NR_CPUS.div_ceil(64)],
    /// Helpers not yet finished; the last one stamps `end_jiffies`.
    left: AtomicUsize,
    end_jiffies: AtomicU64,
}

impl NodeJob<'_> {
    fn has_helper(&self, cpu: usize) -> bool {
        self.helpers[cpu / 64] & (1 << (cpu % 64)) != 0
    }

    /// Linux: padata_mt_helper()'s step — the next chunk, ending on a chunk boundary if
    /// enough work remains.
    fn claim(&self) -> Option<(u64, u64)> {
        let mut start = self.next.load(Ordering::Relaxed);
        loop {
            if start >= self.end {
                return None;
            }
            let end = (start + 1).next_multiple_of(self.chunk_size).min(self.end);
            match self
                .next
                .compare_exchange_weak(start, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some((start, end)),
                Err(now) => start = now,
            }
        }
    }
}

impl PageAlloc<'_> {
    /// Linux: static_branch_unlikely(&deferred_pages) — may deferred pages remain?
    pub fn deferred_pages_active(&self) -> bool {
        self.deferred.active()
    }

    /// The zone of `pgdat` whose pages deferred init handles: the one spanning `pfn`
    /// (Linux: "only the highest zone is deferred so find it").
    fn deferred_zone(pgdat: &PglistData, pfn: u64) -> (usize, &Zone) {
        (0..MAX_NR_ZONES)
            .map(|z| (z, &pgdat.node_zones[z]))
            .find(|(_, z)| z.spanned_pages != 0 && pfn < z.zone_end_pfn().0)
            .unwrap_or_else(|| panic!("deferred pfn {pfn:#x} past node {}", pgdat.node_id))
    }

    /// Linux: deferred_init_maxorder() over the free pfns `[start, end)` of `pgdat`'s
    /// deferred zone — initialise (deferred_init_pages()) and free (deferred_free_range())
    /// one MAX_ORDER block's part at a time. Returns the pages.
    pub(super) fn deferred_init_range(&self, pgdat: &PglistData, start: u64, end: u64) -> u64 {
        let (zid, _) = Self::deferred_zone(pgdat, start);
        let links = page_links(zid, pgdat.node_id);
        let mut pfn = start;
        while pfn < end {
            let mo_pfn = (pfn + 1).next_multiple_of(MAX_ORDER_NR_PAGES).min(end);
            let n = mo_pfn - pfn;
            // SAFETY: free memory pfns of a valid section past first_deferred_pfn: nobody
            // has seen these struct pages, and the caller claimed them (node_size_lock, or
            // a job's chunk).
            unsafe { init_page_range(self.pfn_to_page(Pfn(pfn)), n as usize, links, 0) };
            if n == MAX_ORDER_NR_PAGES {
                self.free_boot_block(self.pfn_to_page(Pfn(pfn)), MAX_ORDER as u32 - 1);
            } else {
                self.free_boot_pages(pfn, mo_pfn);
            }
            pfn = mo_pfn;
        }
        end - start
    }

    /// deferred_free_range() for less than a MAX_ORDER block: the initialised, unreferenced
    /// pages `[start, end)` in the largest aligned blocks.
    fn free_boot_pages(&self, mut start: u64, end: u64) {
        while start < end {
            let mut order = (MAX_ORDER as u32 - 1).min(start.trailing_zeros());
            while start + (1 << order) > end {
                order -= 1;
            }
            self.free_boot_block(self.pfn_to_page(Pfn(start)), order);
            start += 1 << order;
        }
    }

    /// Linux: deferred_init_memmap_chunk() — the deferred free pages of `[start, end)`.
    fn deferred_init_chunk(&self, pgdat: &PglistData, start: u64, end: u64) -> u64 {
        self.deferred
            .ranges_in(start, end)
            .map(|(s, e)| self.deferred_init_range(pgdat, s, e))
            .sum()
    }

    /// Linux: _deferred_grow_zone() behind the deferred_pages static key — the hook
    /// get_page_from_freelist() calls when `zone` fails the watermark or has no block.
    pub(super) fn _deferred_grow_zone(&self, zone: &Zone, order: u32) -> bool {
        self.deferred.active() && self.deferred_grow_zone(zone, order)
    }

    /// Linux: deferred_grow_zone() — initialise and free at least `1 << order` more pages
    /// (a section's worth at least, stopping on a section boundary) of the zone's deferred
    /// part. True if the caller should try the zone again.
    fn deferred_grow_zone(&self, zone: &Zone, order: u32) -> bool {
        let nr_pages_needed = (1u64 << order).next_multiple_of(PAGES_PER_SECTION);
        let Some(pgdat) = self.nodes.get(zone.node) else {
            return false;
        };
        let first_deferred_pfn = pgdat.first_deferred_pfn.load(Ordering::Relaxed);
        // Only the last zone may have deferred pages.
        if zone.zone_end_pfn() != pgdat.pgdat_end_pfn() {
            return false;
        }
        let _g = pgdat.node_size_lock.lock();
        // Someone grew it meanwhile: there may be enough now.
        if first_deferred_pfn != pgdat.first_deferred_pfn.load(Ordering::Relaxed) {
            return true;
        }
        if first_deferred_pfn == u64::MAX {
            return false;
        }
        let zone_end = zone.zone_end_pfn().0;
        let (mut pfn, mut nr_pages) = (first_deferred_pfn, 0);
        while pfn < zone_end && nr_pages < nr_pages_needed {
            let sec_end = (pfn + 1).next_multiple_of(PAGES_PER_SECTION).min(zone_end);
            nr_pages += self.deferred_init_chunk(pgdat, pfn, sec_end);
            pfn = sec_end;
        }
        let next = if pfn < zone_end { pfn } else { u64::MAX };
        pgdat.first_deferred_pfn.store(next, Ordering::Relaxed);
        nr_pages > 0 || next != u64::MAX
    }

    /// Linux: page_alloc_init_late()'s deferred part — every node's deferred pages,
    /// initialised and freed by its CPUs at once (deferred_init_memmap() per node, split as
    /// padata_do_multithreaded() splits it), `node N deferred pages initialised in Mms` for
    /// each node that had some, in the order they finish; then on-demand growing stops.
    /// Returns the pages initialised.
    pub fn page_alloc_init_late(&self, smp: &dyn PadataSmp) -> u64 {
        if !self.deferred.active() {
            return 0;
        }
        let start_jiffies = smp.jiffies();
        let mut online = [0usize; NR_CPUS];
        let nr_online = smp.online_cpus(&mut online);
        // The boot CPU at least: with none, nobody would do the work.
        assert!(nr_online > 0, "page_alloc_init_late: no online CPU");
        let mut jobs: [Option<NodeJob>; MAX_NUMNODES as usize] = [const { None }; _];
        let mut cpuless = 0;
        for pgdat in self.nodes.pgdats() {
            let first = {
                let _g = pgdat.node_size_lock.lock();
                let f = pgdat.first_deferred_pfn.load(Ordering::Relaxed);
                pgdat.first_deferred_pfn.store(u64::MAX, Ordering::Relaxed);
                f
            };
            if first == u64::MAX {
                continue;
            }
            let end = Self::deferred_zone(pgdat, first).1.zone_end_pfn().0;
            let size = end.next_multiple_of(PAGES_PER_SECTION) - first;
            let mut cpus = [0usize; NR_CPUS];
            let mut n = smp.node_cpus(pgdat.node_id, &mut cpus);
            if n == 0 {
                // Linux: the node's kthread runs unbound, alone (max_threads 1).
                cpus[0] = online[cpuless % nr_online];
                cpuless += 1;
                n = 1;
            }
            // Linux: padata_do_multithreaded()'s nworks and chunk_size (load balance 4).
            let nworks = (size / PAGES_PER_SECTION).clamp(1, n.max(1) as u64) as usize;
            let chunk_size = (size / (nworks as u64 * 4))
                .max(PAGES_PER_SECTION)
                .next_multiple_of(PAGES_PER_SECTION);
            let mut helpers = [0u64; NR_CPUS.div_ceil(64)];
            for &c in &cpus[..nworks] {
                helpers[c / 64] |= 1 << (c % 64);
            }
            jobs[pgdat.node_id as usize] = Some(NodeJob {
                pgdat,
                next: AtomicU64::new(first),
                end,
                chunk_size,
                helpers,
                left: AtomicUsize::new(nworks),
                end_jiffies: AtomicU64::new(0),
            });
        }
        let pages = AtomicU64::new(0);
        let work = |cpu: usize| {
            for job in jobs.iter().flatten().filter(|j| j.has_helper(cpu)) {
                while let Some((s, e)) = job.claim() {
                    let n = self.deferred_init_chunk(job.pgdat, s, e);
                    pages.fetch_add(n, Ordering::Relaxed);
                }
                if job.left.fetch_sub(1, Ordering::AcqRel) == 1 {
                    job.end_jiffies.store(smp.jiffies(), Ordering::Release);
                }
            }
        };
        let mut workers = [0usize; NR_CPUS];
        let mut nw = 0;
        for &c in &online[..nr_online] {
            if jobs.iter().flatten().any(|j| j.has_helper(c)) {
                workers[nw] = c;
                nw += 1;
            }
        }
        smp.run_on(&workers[..nw], &work);
        // Each node's line, as its kthread would print it on finishing.
        let mut done: [Option<&NodeJob>; MAX_NUMNODES as usize] = [None; _];
        let mut nd = 0;
        for j in jobs.iter().flatten() {
            done[nd] = Some(j);
            nd += 1;
        }
        done[..nd].sort_by_key(|j| j.map(|j| j.end_jiffies.load(Ordering::Acquire)));
        for j in done[..nd].iter().flatten() {
            let ticks = j.end_jiffies.load(Ordering::Acquire) - start_jiffies;
            pr_info!(
                "node {} deferred pages initialised in {}ms",
                j.pgdat.node_id,
                ticks * (1000 / HZ)
            );
        }
        // Linux: static_branch_disable(&deferred_pages).
        self.deferred.on.store(false, Ordering::Release);
        pages.into_inner()
    }
}

#[cfg(test)]
mod tests;
