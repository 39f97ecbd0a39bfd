//! Watermarks, lowmem reserves and per-CPU pagesets: how much each zone keeps back and how
//! many pages each CPU caches. Mirrors Linux 6.1's mm/page_alloc.c init_per_zone_wmark_min()
//! with calculate_min_free_kbytes(), setup_per_zone_wmarks(), setup_per_zone_lowmem_reserve()
//! and calculate_totalreserve_pages(), and setup_per_cpu_pageset() with zone_batchsize(),
//! zone_highsize() and zone_pcp_update().

use core::ptr;
use core::sync::atomic::Ordering;

use super::{get_order, PageAlloc};
use crate::include::mmzone::{MAX_NR_ZONES, ZONE_MOVABLE};
use crate::mm::addr::{PAGE_SHIFT, PAGE_SIZE};
use crate::mm::gfp::{gfp_zone, __GFP_NOWARN, __GFP_THISNODE, GFP_KERNEL, GFP_USER};
use crate::mm::mmzone::{
    PcpLists, PerCpuPages, RawSpinlock, Zone, NR_PCP_LISTS, WMARK_HIGH, WMARK_LOW, WMARK_MIN,
    WMARK_PROMO,
};
use crate::mm::page::ListHead;
use crate::mm::zonelist::nr_free_zone_pages;

/// Linux: sysctl_lowmem_reserve_ratio[] (DMA 256, DMA32 256, Normal 32, Movable 0).
pub const SYSCTL_LOWMEM_RESERVE_RATIO: [u64; MAX_NR_ZONES] = [256, 256, 32, 0];
/// Linux: SWAP_CLUSTER_MAX.
const SWAP_CLUSTER_MAX: u64 = 32;

/// Linux: int_sqrt() — floor(sqrt(x)), by Linux's bit-by-bit method.
pub fn int_sqrt(x: u64) -> u64 {
    if x <= 1 {
        return x;
    }
    let mut m = 1u64 << ((63 - x.leading_zeros()) & !1);
    let (mut x, mut y) = (x, 0u64);
    while m != 0 {
        let b = y + m;
        y >>= 1;
        if x >= b {
            x -= b;
            y += m;
        }
        m >>= 2;
    }
    y
}

/// Linux: mult_frac(x, n, d).
const fn mult_frac(x: u64, n: u64, d: u64) -> u64 {
    (x / d) * n + ((x % d) * n) / d
}

impl PageAlloc<'_> {
    /// Linux: calculate_min_free_kbytes() — sqrt(lowmem_kbytes * 16), clamped to
    /// [128, 262144] (6.1), unless the user set a larger value.
    pub fn calculate_min_free_kbytes(&self) {
        let lowmem_kbytes = nr_free_zone_pages(self.nodes, self.numa_node_id(), gfp_zone(GFP_USER))
            * (PAGE_SIZE >> 10);
        let new_min_free_kbytes = int_sqrt(lowmem_kbytes * 16);
        let user = self.user_min_free_kbytes.load(Ordering::Relaxed);
        if new_min_free_kbytes as i64 > user {
            self.min_free_kbytes
                .store(new_min_free_kbytes.clamp(128, 262144), Ordering::Relaxed);
        } else {
            pr_warn!(
                "min_free_kbytes is not updated to {} because user defined value {} is preferred",
                new_min_free_kbytes,
                user
            );
        }
    }

    /// Linux: __setup_per_zone_wmarks() and setup_per_zone_wmarks() — min_free_kbytes
    /// shared among the lowmem zones by size (ZONE_MOVABLE gets a small fixed min), low and
    /// high a quarter of min (or watermark_scale_factor of the zone) above it; then the pcp
    /// sizes that depend on them.
    pub fn setup_per_zone_wmarks(&self) {
        {
            let _g = self.wmark_lock.lock();
            let pages_min = self.min_free_kbytes() >> (PAGE_SHIFT - 10);
            let lowmem_pages: u64 = self
                .zones()
                .filter(|z| z.zone_idx() != ZONE_MOVABLE)
                .map(|z| z.zone_managed_pages())
                .sum();
            let scale = self.watermark_scale_factor.load(Ordering::Relaxed);
            for zone in self.zones() {
                let _zl = zone.lock.lock();
                let managed = zone.zone_managed_pages();
                let tmp = (pages_min * managed).checked_div(lowmem_pages).unwrap_or(0);
                if zone.zone_idx() == ZONE_MOVABLE {
                    let min_pages = (managed / 1024).clamp(SWAP_CLUSTER_MAX, 128);
                    zone._watermark[WMARK_MIN].store(min_pages, Ordering::Relaxed);
                } else {
                    zone._watermark[WMARK_MIN].store(tmp, Ordering::Relaxed);
                }
                let tmp = (tmp >> 2).max(mult_frac(managed, scale, 10000));
                zone.watermark_boost.store(0, Ordering::Relaxed);
                let min = zone._watermark[WMARK_MIN].load(Ordering::Relaxed);
                zone._watermark[WMARK_LOW].store(min + tmp, Ordering::Relaxed);
                zone._watermark[WMARK_HIGH].store(min + 2 * tmp, Ordering::Relaxed);
                zone._watermark[WMARK_PROMO].store(min + 3 * tmp, Ordering::Relaxed);
            }
            self.calculate_totalreserve_pages();
        }
        for zone in self.zones() {
            self.zone_pcp_update(zone, 0);
        }
    }

    /// Linux: calculate_totalreserve_pages() — per zone, its largest lowmem reserve plus
    /// its high watermark (at most its managed pages).
    pub fn calculate_totalreserve_pages(&self) {
        let mut reserve_pages = 0;
        for pgdat in self.nodes.pgdats() {
            let mut node_total = 0;
            for (i, zone) in pgdat.node_zones.iter().enumerate() {
                let managed = zone.zone_managed_pages();
                let mut max = (i..MAX_NR_ZONES)
                    .map(|j| zone.lowmem_reserve(j))
                    .max()
                    .unwrap_or(0)
                    .max(0) as u64;
                max += zone.high_wmark_pages();
                max = max.min(managed);
                node_total += max;
            }
            pgdat
                .totalreserve_pages
                .store(node_total, Ordering::Relaxed);
            reserve_pages += node_total;
        }
        self.totalreserve_pages
            .store(reserve_pages, Ordering::Relaxed);
    }

    /// Linux: setup_per_zone_lowmem_reserve() — each zone keeps back, from allocations
    /// that could have used a higher zone j, the managed pages of the zones up to j divided
    /// by its sysctl_lowmem_reserve_ratio.
    pub fn setup_per_zone_lowmem_reserve(&self) {
        for pgdat in self.nodes.pgdats() {
            for (i, &ratio) in SYSCTL_LOWMEM_RESERVE_RATIO[..MAX_NR_ZONES - 1]
                .iter()
                .enumerate()
            {
                let zone = &pgdat.node_zones[i];
                let clear = ratio == 0 || zone.zone_managed_pages() == 0;
                let mut managed_pages = 0;
                for j in i + 1..MAX_NR_ZONES {
                    managed_pages += pgdat.node_zones[j].zone_managed_pages();
                    let v = if clear { 0 } else { managed_pages / ratio };
                    zone.lowmem_reserve[j].store(v as i64, Ordering::Relaxed);
                }
            }
        }
        self.calculate_totalreserve_pages();
    }

    /// Linux: init_per_zone_wmark_min() (a postcore initcall): min_free_kbytes, the
    /// watermarks, the lowmem reserves.
    pub fn init_per_zone_wmark_min(&self) {
        self.calculate_min_free_kbytes();
        self.setup_per_zone_wmarks();
        self.setup_per_zone_lowmem_reserve();
    }

    /// Linux: zone_batchsize() — ~0.1% of the zone or 1 MiB, whichever is smaller, a
    /// quarter of that, clamped to 2^n - 1.
    pub fn zone_batchsize(zone: &Zone) -> i32 {
        let mut batch = (zone.zone_managed_pages() >> 10).min((1 << 20) / PAGE_SIZE);
        batch /= 4;
        if batch < 1 {
            batch = 1;
        }
        let b = batch + batch / 2;
        (1i64 << (63 - b.leading_zeros())) as i32 - 1
    }

    /// Linux: zone_highsize() — the zone's low watermark split among the node's CPUs, at
    /// least four batches.
    pub fn zone_highsize(&self, zone: &Zone, batch: i32, cpu_online: u32) -> i32 {
        let total_pages = zone.low_wmark_pages();
        let mut nr_split_cpus = (self.env.nr_cpus_node)(zone.node) + cpu_online;
        if nr_split_cpus == 0 {
            nr_split_cpus = (self.env.num_online_cpus)().max(1);
        }
        let high = (total_pages / nr_split_cpus as u64) as i32;
        high.max(batch << 2)
    }

    /// Linux: zone_set_pageset_high_and_batch() / zone_pcp_update().
    pub fn zone_pcp_update(&self, zone: &Zone, cpu_online: u32) {
        let new_batch = Self::zone_batchsize(zone).max(1);
        let new_high = self.zone_highsize(zone, new_batch, cpu_online);
        if zone.pageset_high.load(Ordering::Relaxed) == new_high
            && zone.pageset_batch.load(Ordering::Relaxed) == new_batch
        {
            return;
        }
        zone.pageset_high.store(new_high, Ordering::Relaxed);
        zone.pageset_batch.store(new_batch, Ordering::Relaxed);
        for cpu in 0..zone.pcp_nr_cpus.load(Ordering::Relaxed) as usize {
            if let Some(pcp) = self.pcp_of(zone, cpu) {
                let _g = pcp.lock.lock();
                // SAFETY: the pcp lock is held.
                unsafe {
                    (*pcp.inner.get()).high = new_high;
                    (*pcp.inner.get()).batch = new_batch;
                }
            }
        }
    }

    /// Linux: setup_zone_pageset() — the zone's per-CPU pagesets, one per possible CPU,
    /// from the buddy on the zone's node (Linux: alloc_percpu()).
    pub fn setup_zone_pageset(&self, zone: &Zone, nr_cpu_ids: usize) {
        if !zone.per_cpu_pageset.load(Ordering::Acquire).is_null() || nr_cpu_ids == 0 {
            return;
        }
        let size = (nr_cpu_ids * core::mem::size_of::<PerCpuPages>()) as u64;
        let Some(page) = self
            .__alloc_pages(
                GFP_KERNEL | __GFP_THISNODE | __GFP_NOWARN,
                get_order(size),
                zone.node,
                None,
            )
            .or_else(|| self.__alloc_pages(GFP_KERNEL, get_order(size), zone.node, None))
        else {
            pr_warn!(
                "mm: no memory for the per-cpu pagesets of zone {}",
                zone.name()
            );
            return;
        };
        let base = self.page_address(page).as_mut_ptr::<PerCpuPages>();
        for cpu in 0..nr_cpu_ids {
            // SAFETY: the block is ours, large enough and page-aligned; each entry is written
            // once, then its lists are made empty in place (they must not move).
            unsafe {
                let p = base.add(cpu);
                ptr::write(
                    p,
                    PerCpuPages {
                        lock: RawSpinlock::new(),
                        inner: core::cell::UnsafeCell::new(PcpLists {
                            count: 0,
                            high: 0,
                            batch: 1,
                            free_factor: 0,
                            lists: [const { ListHead::new() }; NR_PCP_LISTS],
                        }),
                    },
                );
                for l in (*(*p).inner.get()).lists.iter_mut() {
                    l.init_list_head();
                }
            }
        }
        zone.pcp_nr_cpus.store(nr_cpu_ids as u32, Ordering::Relaxed);
        zone.per_cpu_pageset.store(base, Ordering::Release);
        // Force the update: new pagesets start at Linux's boot values.
        zone.pageset_high.store(-1, Ordering::Relaxed);
        self.zone_pcp_update(zone, 0);
    }

    /// Linux: setup_per_cpu_pageset() — pagesets for every populated zone.
    pub fn setup_per_cpu_pageset(&self, nr_cpu_ids: usize) {
        for zone in self.populated_zones() {
            self.setup_zone_pageset(zone, nr_cpu_ids);
        }
    }
}

#[cfg(test)]
mod tests;
