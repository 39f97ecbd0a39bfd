//! What SLUB reports about its caches (mm/slub.c): the `SLUB: HWalign=...` line of
//! `kmem_cache_init`, `get_slabinfo()` for /proc/slabinfo (printed by slab_common.rs), and the
//! `slab_out_of_memory()` warning.

use core::fmt;

use crate::mm::gfp::{GfpNames, GfpT, __GFP_NOWARN};
use crate::mm::page::ListHead;
use crate::mm::slab::get_order;

use super::params::SlubParams;
use super::slub_def::{for_each_slab_safe, KmemCache, KmemCacheNode};
use super::SlubAllocator;

/// Linux: the `SLUB: HWalign=...` line of kmem_cache_init().
pub struct SlubInfoLine<'p>(pub &'p SlubParams);

impl fmt::Display for SlubInfoLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let p = self.0;
        write!(
            f,
            "SLUB: HWalign={}, Order={}-{}, MinObjects={}, CPUs={}, Nodes={}",
            p.cache_line_size,
            p.slub_min_order,
            p.slub_max_order,
            p.slub_min_objects,
            p.nr_cpu_ids,
            p.nr_node_ids
        )
    }
}

impl SlubAllocator<'_> {
    /// Linux: count_partial(n, count_free).
    fn count_partial_free(n: &KmemCacheNode) -> u64 {
        let mut l = n.list_lock.lock();
        let head: *mut ListHead = &mut l.partial;
        let mut x = 0;
        for_each_slab_safe(head, |slab| {
            // SAFETY: a slab on the list, under its lock.
            let slab = unsafe { &*slab };
            x += (slab.objects() - slab.inuse()) as u64;
        });
        x
    }

    /// Linux: get_slabinfo().
    pub fn get_slabinfo(&self, s: &KmemCache) -> crate::mm::slab::Slabinfo {
        let (mut nr_slabs, mut nr_objs, mut nr_free) = (0u64, 0u64, 0u64);
        for (_, n) in s.nodes() {
            nr_slabs += n.node_nr_slabs() as u64;
            nr_objs += n.node_nr_objs() as u64;
            nr_free += Self::count_partial_free(n);
        }
        crate::mm::slab::Slabinfo {
            active_objs: nr_objs - nr_free,
            num_objs: nr_objs,
            active_slabs: nr_slabs,
            num_slabs: nr_slabs,
            objects_per_slab: s.oo.oo_objects(),
            cache_order: s.oo.oo_order(),
            ..Default::default()
        }
    }

    /// Linux: slab_out_of_memory().
    pub(super) fn slab_out_of_memory(&self, s: &KmemCache, gfp: GfpT, nid: i32) {
        if gfp & __GFP_NOWARN != 0 {
            return;
        }
        pr_warn!(
            "SLUB: Unable to allocate memory on node {}, gfp={:#x}({})",
            nid,
            gfp,
            GfpNames(gfp)
        );
        pr_warn!(
            "  cache: {}, object size: {}, buffer size: {}, default order: {}, min order: {}",
            s.name,
            s.object_size(),
            s.size,
            s.oo.oo_order(),
            s.min.oo_order()
        );
        if s.min.oo_order() > get_order(s.object_size() as usize) {
            pr_warn!(
                "  {} debugging increased min order, use slub_debug=O to disable.",
                s.name
            );
        }
        for (node, n) in s.nodes() {
            pr_warn!(
                "  node {}: slabs: {}, objs: {}, free: {}",
                node,
                n.node_nr_slabs(),
                n.node_nr_objs(),
                Self::count_partial_free(n)
            );
        }
    }
}

#[cfg(test)]
mod tests;
