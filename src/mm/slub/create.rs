//! Creating a SLUB cache (mm/slub.c): the object layout and slab order (`calculate_sizes`,
//! `calculate_order`), the per-node and per-CPU structures, `kmem_cache_open` and its release,
//! the random freelist sequences, the boot caches and `bootstrap()` of `kmem_cache_init`, and
//! the `slab_caches` list. Cache creation with merging on top of this is slab_common.rs's.

use core::ptr;
use core::sync::atomic::Ordering;

use crate::include::mmzone::MAX_ORDER;
use crate::include::numa::MAX_NUMNODES;
use crate::mm::gfp::{__GFP_COMP, __GFP_RECLAIMABLE, GFP_DMA, GFP_DMA32, GFP_KERNEL, GFP_NOWAIT};
use crate::mm::page::{list_add, list_del, ListHead};
use crate::mm::slab::{
    calculate_alignment, get_order, SlabFlags, SLAB_CACHE_DMA, SLAB_CACHE_DMA32,
    SLAB_HWCACHE_ALIGN, SLAB_KMALLOC, SLAB_NO_USER_FLAGS, SLAB_POISON, SLAB_RECLAIM_ACCOUNT,
    SLAB_RED_ZONE, SLAB_STORE_USER, SLAB_TYPESAFE_BY_RCU,
};

use super::debug::TRACK_SIZE;
use super::params::kmem_cache_flags;
use super::params::SlubParams;
use super::report::SlubInfoLine;
use super::slub_def::{
    for_each_slab_safe, kmem_cache_size, order_objects, slub_debug_orig_size, BootCache, KmemCache,
    KmemCacheCpu, KmemCacheNode, KmemCacheOrderObjects,
};
use super::{
    get_freepointer, SlabState, SlubAllocator, __OBJECT_POISON, DEBUG_METADATA_FLAGS,
    MAX_OBJS_PER_PAGE, MAX_PARTIAL, MIN_PARTIAL, PAGE_SZ, SLUB_RED_ACTIVE,
};

/// Linux: calc_slab_order().
fn calc_slab_order(
    size: u32,
    min_objects: u32,
    max_order: u32,
    fract_leftover: u32,
    min_order: u32,
) -> u32 {
    if order_objects(min_order, size) > MAX_OBJS_PER_PAGE {
        return get_order(size as usize * MAX_OBJS_PER_PAGE as usize) - 1;
    }
    let mut order = min_order.max(get_order(min_objects as usize * size as usize));
    while order <= max_order {
        let slab_size = (PAGE_SZ << order) as u32;
        let rem = slab_size % size;
        if rem <= slab_size / fract_leftover {
            break;
        }
        order += 1;
    }
    order
}

/// Linux: calculate_order() — the slab order for objects of `size` bytes: as many objects as
/// the CPU count suggests, with little waste, within `slub_max_order`. `None` when even
/// MAX_ORDER - 1 cannot hold one object (Linux: -ENOSYS).
pub fn calculate_order(size: u32, p: &SlubParams) -> Option<u32> {
    let mut min_objects = p.slub_min_objects;
    if min_objects == 0 {
        // Some architectures will only update present cpus when onlining them, so don't trust
        // the number if it's just 1.
        let mut nr_cpus = p.num_present_cpus;
        if nr_cpus <= 1 {
            nr_cpus = p.nr_cpu_ids;
        }
        min_objects = 4 * (crate::mm::slab::fls(nr_cpus as u64) + 1);
    }
    let max_objects = order_objects(p.slub_max_order, size);
    min_objects = min_objects.min(max_objects);
    while min_objects > 1 {
        let mut fraction = 16;
        while fraction >= 4 {
            let order = calc_slab_order(
                size,
                min_objects,
                p.slub_max_order,
                fraction,
                p.slub_min_order,
            );
            if order <= p.slub_max_order {
                return Some(order);
            }
            fraction /= 2;
        }
        min_objects -= 1;
    }
    // We were unable to place multiple objects in a slab. Now lets see if we can place a
    // single object there.
    let order = calc_slab_order(size, 1, p.slub_max_order, 1, p.slub_min_order);
    if order <= p.slub_max_order {
        return Some(order);
    }
    // Doh this slab cannot be placed using slub_max_order.
    let order = calc_slab_order(size, 1, MAX_ORDER as u32, 1, p.slub_min_order);
    (order < MAX_ORDER as u32).then_some(order)
}

impl SlubAllocator<'_> {
    /// Linux: calculate_sizes() — the object layout, order and objects per slab.
    fn calculate_sizes(&self, s: &mut KmemCache) -> bool {
        let flags = s.flags;
        let object_size = s.object_size();
        // Round up object size to the next word boundary. We can only place the free pointer
        // at word boundaries and this determines the possible location of the free pointer.
        let mut size = object_size.next_multiple_of(8);
        // Determine if we can poison the object itself. If the user of the slab may touch the
        // object after free or before allocation then we should never poison the object.
        if flags & SLAB_POISON != 0 && flags & SLAB_TYPESAFE_BY_RCU == 0 && s.ctor.is_none() {
            s.flags |= __OBJECT_POISON;
        } else {
            s.flags &= !__OBJECT_POISON;
        }
        // If we are Redzoning then check if there is some space between the end of the object
        // and the free pointer. If not then add an additional word for Redzone information.
        if flags & SLAB_RED_ZONE != 0 && size == object_size {
            size += 8;
        }
        // With that we have determined the number of bytes in actual use by the object and
        // redzoning.
        s.inuse.store(size, Ordering::Relaxed);
        if slub_debug_orig_size(s)
            || flags & (SLAB_TYPESAFE_BY_RCU | SLAB_POISON) != 0
            || (flags & SLAB_RED_ZONE != 0 && object_size < 8)
            || s.ctor.is_some()
        {
            // Relocate free pointer after the object if it is not permitted to overwrite the
            // first word of the object on kmem_cache_free.
            s.offset = size;
            size += 8;
        } else {
            // Store freelist pointer near middle of object to keep it away from the edges of
            // the object to avoid small sized over/underflows from neighboring allocations.
            s.offset = (object_size / 2) & !7;
        }
        if flags & SLAB_STORE_USER != 0 {
            // Need to store information about allocs and frees after the object.
            size += 2 * TRACK_SIZE as u32;
            // Save the original kmalloc request size.
            if flags & SLAB_KMALLOC != 0 {
                size += 4;
            }
        }
        if flags & SLAB_RED_ZONE != 0 {
            // Add some empty padding so that we can catch overwrites from earlier objects
            // rather than let tracking information or the free pointer be corrupted if a user
            // writes before the start of the object.
            size += 8;
            s.red_left_pad = 8u32.next_multiple_of(s.align);
            size += s.red_left_pad;
        } else {
            s.red_left_pad = 0;
        }
        // SLUB stores one object immediately after another beginning from offset 0. In order
        // to align the objects we have to simply size each object to conform to the alignment.
        size = size.next_multiple_of(s.align);
        s.size = size;
        let Some(order) = calculate_order(size, &self.params) else {
            return false;
        };
        s.allocflags = 0;
        if order != 0 {
            s.allocflags |= __GFP_COMP;
        }
        if s.flags & SLAB_CACHE_DMA != 0 {
            s.allocflags |= GFP_DMA;
        }
        if s.flags & SLAB_CACHE_DMA32 != 0 {
            s.allocflags |= GFP_DMA32;
        }
        if s.flags & SLAB_RECLAIM_ACCOUNT != 0 {
            s.allocflags |= __GFP_RECLAIMABLE;
        }
        // Determine the number of objects per slab.
        s.oo = KmemCacheOrderObjects::oo_make(order, size);
        s.min = KmemCacheOrderObjects::oo_make(get_order(size as usize), size);
        s.oo.oo_objects() != 0
    }

    /// Linux: set_cpu_partial() with slub_set_cpu_partial().
    fn set_cpu_partial(s: &mut KmemCache) {
        let nr_objects = if !s.has_cpu_partial() {
            0
        } else if s.size as usize >= PAGE_SZ {
            6
        } else if s.size >= 1024 {
            24
        } else if s.size >= 256 {
            52
        } else {
            120
        };
        s.cpu_partial = nr_objects;
        // We take the number of objects but actually limit the number of slabs on the per cpu
        // partial list, in order to limit excessive growth of the list. For simplicity we
        // assume that the slabs will be half-full.
        s.cpu_partial_slabs = (nr_objects * 2).div_ceil(s.oo.oo_objects());
    }

    /// Linux: init_cache_random_seq() — the shuffled object offsets of a slab.
    pub(in crate::mm) fn init_cache_random_seq(&self, s: &KmemCache) -> bool {
        let count = s.oo.oo_objects() as usize;
        if !self.params.freelist_random
            || count < 2
            || !s.random_seq.load(Ordering::Acquire).is_null()
        {
            return true;
        }
        let seq = self.kmalloc(count * 4, GFP_KERNEL).cast::<u32>();
        if seq.is_null() {
            pr_err!("SLUB: Unable to initialize free list for {}", s.name);
            return false;
        }
        // SAFETY: `count` u32s just allocated.
        let list = unsafe { core::slice::from_raw_parts_mut(seq, count) };
        // Linux: freelist_randomize() — Fisher-Yates.
        for (i, e) in list.iter_mut().enumerate() {
            *e = i as u32;
        }
        for i in (1..count).rev() {
            let r = (self.get_random_long() % (i as u64 + 1)) as usize;
            list.swap(i, r);
        }
        // Transform to an offset on the set of pages.
        for e in list.iter_mut() {
            *e *= s.size;
        }
        s.random_seq.store(seq, Ordering::Release);
        true
    }

    /// Linux: init_freelist_randomization() — for the caches made before kmalloc was up.
    fn init_freelist_randomization(&self) {
        let _g = self.slab_mutex.lock();
        self.for_each_cache(|s| {
            self.init_cache_random_seq(s);
        });
    }

    /// Linux: early_kmem_cache_node_alloc() — the first kmem_cache_node of a node, taken
    /// straight from a new slab of the kmem_cache_node cache itself.
    fn early_kmem_cache_node_alloc(&self, kcn: &KmemCache, node: i32) {
        assert!(kcn.size as usize >= core::mem::size_of::<KmemCacheNode>());
        let slab = self
            .new_slab(kcn, GFP_NOWAIT, node)
            .expect("SLUB: no memory for the first kmem_cache_node");
        self.inc_slabs_node(kcn, slab.slab_nid(), slab.objects());
        if slab.slab_nid() != node {
            pr_err!("SLUB: Unable to allocate memory from node {}", node);
            pr_err!(
                "SLUB: Allocating a useless per node structure in order to be able to continue"
            );
        }
        let n = slab.freelist();
        assert!(!n.is_null());
        self.init_object(kcn, n, SLUB_RED_ACTIVE);
        self.init_tracking(kcn, n);
        // SAFETY: the first object of the fresh slab.
        slab.set_freelist(unsafe { get_freepointer(kcn, n) });
        slab.set_inuse(1);
        let n = n.cast::<KmemCacheNode>();
        // SAFETY: an object of kmem_cache_node size, ours, never moving.
        unsafe { KmemCacheNode::init(n) };
        kcn.node[node as usize].store(n, Ordering::Release);
        self.inc_slabs_node(kcn, node, slab.objects());
        // SAFETY: just published; nobody else uses it yet.
        let nref = unsafe { &*n };
        let mut l = nref.list_lock.lock();
        Self::add_partial(nref, &mut l, slab, false);
    }

    /// Linux: free_kmem_cache_nodes().
    fn free_kmem_cache_nodes(&self, s: &KmemCache) {
        let kcn = self.kmem_cache_node().expect("kmem_cache_node");
        for node in 0..MAX_NUMNODES as usize {
            let n = s.node[node].swap(ptr::null_mut(), Ordering::AcqRel);
            if !n.is_null() {
                // SAFETY: a kmem_cache_node object of this cache, unreachable now.
                unsafe { self.kmem_cache_free(kcn, n.cast()) };
            }
        }
    }

    /// Linux: init_kmem_cache_nodes().
    fn init_kmem_cache_nodes(&self, s: &KmemCache) -> bool {
        for node in 0..self.params.nr_node_ids as i32 {
            if !self.params.node_in_slab_nodes(node) {
                continue;
            }
            if self.slab_state() == SlabState::Down {
                self.early_kmem_cache_node_alloc(s, node);
                continue;
            }
            let kcn = self.kmem_cache_node().expect("kmem_cache_node");
            let n = self
                .kmem_cache_alloc_node(kcn, GFP_KERNEL, node)
                .cast::<KmemCacheNode>();
            if n.is_null() {
                self.free_kmem_cache_nodes(s);
                return false;
            }
            // SAFETY: a kmem_cache_node object, ours, never moving.
            unsafe { KmemCacheNode::init(n) };
            s.node[node as usize].store(n, Ordering::Release);
        }
        true
    }

    /// Linux: alloc_kmem_cache_cpus() / init_kmem_cache_cpus().
    ///
    /// # Safety
    /// `s` is followed by room for `s.nr_cpu_slots` KmemCacheCpu.
    unsafe fn alloc_kmem_cache_cpus(s: *mut KmemCache) {
        // The kmem_cache cache is SLAB_HWCACHE_ALIGN; cmpxchg_double needs the slots aligned.
        assert!(
            (s as usize).is_multiple_of(core::mem::align_of::<KmemCacheCpu>()),
            "SLUB: kmem_cache object misaligned for its CPU slots"
        );
        // SAFETY: the caller's guarantee.
        unsafe {
            let base = s
                .cast::<u8>()
                .add(core::mem::size_of::<KmemCache>())
                .cast::<KmemCacheCpu>();
            for i in 0..(*s).nr_cpu_slots as usize {
                ptr::write(base.add(i), KmemCacheCpu::new(i));
            }
        }
    }

    /// Linux: kmem_cache_open() — layout, per-node and per-CPU structures.
    ///
    /// # Safety
    /// `s` is an initialised KmemCache (`KmemCache::new`) at its final address, followed by
    /// room for its CPU slots, not yet visible to anyone else.
    pub(in crate::mm) unsafe fn kmem_cache_open(
        &self,
        s: *mut KmemCache,
        flags: SlabFlags,
    ) -> bool {
        // SAFETY: the caller's guarantee: nobody else sees `s` yet.
        let sm = unsafe { &mut *s };
        sm.flags = kmem_cache_flags(&self.params, flags, sm.name);
        sm.random = self.get_random_long();
        if !self.calculate_sizes(sm) {
            return false;
        }
        if self.params.disable_higher_order_debug {
            // Disable debugging flags that store metadata if the min slab order increased.
            if get_order(sm.size as usize) > get_order(sm.object_size() as usize) {
                sm.flags &= !DEBUG_METADATA_FLAGS;
                sm.offset = 0;
                if !self.calculate_sizes(sm) {
                    return false;
                }
            }
        }
        // The larger the object size is, the more slabs we want on the partial list to avoid
        // pounding the page allocator excessively.
        let ilog2 = 31 - sm.size.leading_zeros();
        sm.min_partial = ((ilog2 / 2) as u64).clamp(MIN_PARTIAL, MAX_PARTIAL);
        Self::set_cpu_partial(sm);
        // SAFETY: the caller's guarantee on the trailing room.
        unsafe { Self::alloc_kmem_cache_cpus(s) };
        // SAFETY: from here on the cache is only read (and its atomics written).
        let s = unsafe { &*s };
        // Initialize the pre-computed randomized freelist if slab is up.
        if self.slab_state() >= SlabState::Up && !self.init_cache_random_seq(s) {
            return false;
        }
        self.init_kmem_cache_nodes(s)
    }

    /// Linux: __kmem_cache_release() — the per-node structures and the random sequence.
    pub(in crate::mm) fn __kmem_cache_release(&self, s: &KmemCache) {
        let seq = s.random_seq.swap(ptr::null_mut(), Ordering::AcqRel);
        if !seq.is_null() {
            // SAFETY: kmalloc'ed by init_cache_random_seq(), unreachable now.
            unsafe { self.kfree(seq.cast()) };
        }
        self.free_kmem_cache_nodes(s);
    }

    /// Linux: create_boot_cache() (mm/slab_common.c).
    ///
    /// # Safety
    /// As kmem_cache_open(); `s` already has its name, size and CPU slot count.
    pub(in crate::mm) unsafe fn create_boot_cache(
        &self,
        s: *mut KmemCache,
        name: &'static str,
        size: u32,
        flags: SlabFlags,
    ) {
        // SAFETY: the caller's guarantee.
        let sm = unsafe { &mut *s };
        sm.name = name;
        sm.size = size;
        sm.object_size.store(size, Ordering::Relaxed);
        // For power of two sizes, guarantee natural alignment for kmalloc caches, regardless
        // of SL*B debugging options.
        let mut align = self.params.kmalloc_min_size as u32;
        if size.is_power_of_two() {
            align = align.max(size);
        }
        sm.align = calculate_alignment(flags, align, size, self.params.cache_line_size);
        sm.useroffset = 0;
        sm.usersize = if flags & SLAB_KMALLOC != 0 { size } else { 0 };
        // SAFETY: forwarded.
        if !unsafe { self.kmem_cache_open(s, flags) } {
            panic!(
                "Creation of kmalloc slab {} size={} failed. Reason -22",
                name, size
            );
        }
        sm.refcount.store(-1, Ordering::Relaxed); // Exempt from merging for now
    }

    /// Linux: bootstrap() — move a static boot cache into an object of the kmem_cache cache.
    fn bootstrap(&self, static_cache: *mut BootCache) -> *mut KmemCache {
        let kc = self.kmem_cache().expect("kmem_cache");
        let s = self.kmem_cache_zalloc(kc, GFP_NOWAIT).cast::<KmemCache>();
        assert!(!s.is_null(), "SLUB: bootstrap out of memory");
        // This runs very early, and only the boot processor is supposed to be up.
        // SAFETY: the boot cache is ours during bring-up.
        let sc = unsafe { &(*static_cache).cache };
        self.flush_cpu_slab(sc, 0);
        // SAFETY: `s` is a fresh kmem_cache object with room for nr_cpu_ids CPU slots; the
        // static cache's words are copied as Linux's memcpy does (its CPU slot, now empty,
        // is replaced by fresh ones).
        unsafe {
            ptr::copy_nonoverlapping(static_cache.cast::<KmemCache>(), s, 1);
            (*s).nr_cpu_slots = self.params.nr_cpu_ids;
            Self::alloc_kmem_cache_cpus(s);
        }
        // SAFETY: initialised above.
        let sr = unsafe { &*s };
        for (_, n) in sr.nodes() {
            let mut l = n.list_lock.lock();
            for head in [
                &mut l.partial as *mut ListHead,
                &mut l.full as *mut ListHead,
            ] {
                for_each_slab_safe(head, |p| {
                    // SAFETY: a slab on the list, under its lock.
                    unsafe { (*p).slab_cache.store(s, Ordering::Release) };
                });
            }
        }
        let _g = self.slab_mutex.lock();
        // SAFETY: slab_mutex held.
        unsafe { list_add(sr.list.get(), self.slab_caches.get()) };
        s
    }

    /// Linux: kmem_cache_init() — bring SLUB up: the boot caches, bootstrap(), the kmalloc
    /// caches, the random freelists, and the `SLUB:` line.
    pub fn kmem_cache_init(&self) {
        assert_eq!(
            self.slab_state(),
            SlabState::Down,
            "kmem_cache_init called twice"
        );
        // SAFETY: bring-up is single-threaded; nothing else references the list head yet.
        unsafe { (*self.slab_caches.get()).init_list_head() };
        let bkc = self.boot_kmem_cache.get();
        let bkcn = self.boot_kmem_cache_node.get();
        self.kmem_cache_node.store(bkcn.cast(), Ordering::Release);
        self.kmem_cache.store(bkc.cast(), Ordering::Release);
        // SAFETY: the boot caches are ours during bring-up, with one CPU slot each.
        unsafe {
            self.create_boot_cache(
                bkcn.cast(),
                "kmem_cache_node",
                core::mem::size_of::<KmemCacheNode>() as u32,
                SLAB_HWCACHE_ALIGN | SLAB_NO_USER_FLAGS,
            );
        }
        // Able to allocate the per node structures.
        self.set_slab_state(SlabState::Partial);
        // SAFETY: as above.
        unsafe {
            self.create_boot_cache(
                bkc.cast(),
                "kmem_cache",
                kmem_cache_size(self.params.nr_cpu_ids) as u32,
                SLAB_HWCACHE_ALIGN | SLAB_NO_USER_FLAGS,
            );
        }
        let kc = self.bootstrap(bkc);
        self.kmem_cache.store(kc, Ordering::Release);
        let kcn = self.bootstrap(bkcn);
        self.kmem_cache_node.store(kcn, Ordering::Release);
        // Now we can use the kmem_cache to allocate kmalloc slabs.
        {
            let mut idx = [0u8; 24];
            for (d, s) in idx.iter_mut().zip(self.size_index.iter()) {
                *d = s.load(Ordering::Relaxed);
            }
            crate::mm::slab::setup_kmalloc_cache_index_table(
                &mut idx,
                self.params.kmalloc_min_size,
            );
            for (d, s) in self.size_index.iter().zip(idx) {
                d.store(s, Ordering::Relaxed);
            }
        }
        self.create_kmalloc_caches(0);
        // Setup random freelists for each cache.
        self.init_freelist_randomization();
        pr_info!("{}", SlubInfoLine(&self.params));
    }

    /// Linux: kmem_cache_init_late() (and slab_sysfs_init()'s `slab_state = FULL`).
    pub fn kmem_cache_init_late(&self) {
        self.set_slab_state(SlabState::Full);
    }

    /// Calls `f` for every cache on slab_caches, newest first (caller holds slab_mutex).
    pub(in crate::mm) fn for_each_cache(&self, f: impl FnMut(&KmemCache)) {
        self.walk_caches(false, f);
    }

    /// Calls `f` for every cache, oldest first (Linux: list_for_each_entry_reverse).
    pub(in crate::mm) fn for_each_cache_rev(&self, f: impl FnMut(&KmemCache)) {
        self.walk_caches(true, f);
    }

    /// Linux: list_for_each_entry[_reverse] over slab_caches; `f` may not unlink the entry
    /// after the one it is given (the next link is read before the call).
    fn walk_caches(&self, reverse: bool, mut f: impl FnMut(&KmemCache)) {
        let head = self.slab_caches.get();
        // SAFETY: only called below on the list head and live entries (slab_mutex held).
        let step = |p: *mut ListHead| unsafe {
            if reverse {
                (*p).prev
            } else {
                (*p).next
            }
        };
        // SAFETY: slab_mutex is held by the caller; entries are live caches.
        unsafe {
            let mut cur = step(head);
            if cur.is_null() {
                return;
            }
            while !ptr::eq(cur, head) {
                let next = step(cur);
                let s = cur
                    .cast::<u8>()
                    .sub(core::mem::offset_of!(KmemCache, list))
                    .cast::<KmemCache>();
                f(&*s);
                cur = next;
            }
        }
    }

    /// Links a new cache on slab_caches (caller holds slab_mutex).
    pub(in crate::mm) fn slab_caches_add(&self, s: &KmemCache) {
        // SAFETY: slab_mutex is held by the caller.
        unsafe { list_add(s.list.get(), self.slab_caches.get()) };
    }

    /// Unlinks a cache from slab_caches (caller holds slab_mutex).
    pub(in crate::mm) fn slab_caches_del(&self, s: &KmemCache) {
        // SAFETY: slab_mutex is held by the caller; the cache is on the list.
        unsafe { list_del(s.list.get()) };
    }

    /// Finds a cache by name (for tests and the monitor).
    pub fn find_cache(&self, name: &str) -> Option<&KmemCache> {
        let _g = self.slab_mutex.lock();
        let mut found: Option<*const KmemCache> = None;
        self.for_each_cache(|s| {
            if found.is_none() && s.name == name {
                found = Some(s);
            }
        });
        // SAFETY: caches live until destroyed; the caller must not race a destroy.
        found.map(|s| unsafe { &*s })
    }
}

#[cfg(test)]
mod tests;
