//! SLUB's data structures: `struct slab` laid over `struct page` (mm/slab.h), and
//! `struct kmem_cache`, `kmem_cache_cpu`, `kmem_cache_order_objects` (include/linux/slub_def.h)
//! with `kmem_cache_node` (mm/slab.h) and the small accessors of mm/slub.c that only read them
//! (`get_info_end`, `fixup_red_left`, `slab_ksize`, ...). The lock rules are on each type and
//! in slub.rs's module doc; the code that changes them is in slub.rs and its siblings.

use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicI32, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use crate::include::numa::{MAX_NUMNODES, NR_CPUS};
use crate::include::processor::{SpinLock, SpinLockGuard};
use crate::mm::gfp::GfpT;
use crate::mm::page::{ListHead, Page, PG_LOCKED, PG_SLAB};
use crate::mm::slab::{
    Ctor, SlabFlags, SLAB_DEBUG_FLAGS, SLAB_KMALLOC, SLAB_POISON, SLAB_RED_ZONE, SLAB_STORE_USER,
    SLAB_TYPESAFE_BY_RCU,
};

use super::{OO_MASK, OO_SHIFT, PAGE_SZ};

// ---------------------------------------------------------------------------------------------
// struct slab: the overlay on struct page.

/// Linux: struct slab (mm/slab.h, 6.1, SLUB, 64-bit) — the head page of a slab seen through
/// SLUB's eyes. Laid over [`Page`]; the asserts below are Linux's `SLAB_MATCH()`.
///
/// Lock: `freelist` and `counters` under `slab_lock` (or, for a frozen slab, by its CPU;
/// for debug caches under the node's `list_lock`); `slab_list` under the node's `list_lock`,
/// or, as `next`/`slabs` while on a per-CPU partial list, under that CPU's lock.
#[repr(C)]
pub struct Slab {
    /// Linux: __page_flags (PG_slab, PG_locked = slab_lock, PG_head, node, zone).
    pub __page_flags: AtomicU64,
    /// Linux: slab_list — or `{ next, slabs }` on a per-CPU partial list.
    slab_list: UnsafeCell<ListHead>,
    /// Linux: slab_cache (overlays page->mapping, which __free_slab() clears).
    pub(super) slab_cache: AtomicPtr<KmemCache>,
    /// Linux: freelist — first free object (not the CPU's lockless list).
    pub(super) freelist: AtomicPtr<u8>,
    /// Linux: counters — inuse:16, objects:15, frozen:1.
    pub(super) counters: AtomicU64,
    /// Linux: __unused (page->_mapcount, left at -1).
    __unused: AtomicI32,
    /// Linux: __page_refcount.
    __page_refcount: AtomicI32,
    /// Linux: memcg_data.
    memcg_data: u64,
}

// Linux: SLAB_MATCH(flags, __page_flags), SLAB_MATCH(compound_head, slab_list),
// SLAB_MATCH(_refcount, __page_refcount), SLAB_MATCH(memcg_data, memcg_data), and the size.
const _: () = assert!(core::mem::size_of::<Slab>() == core::mem::size_of::<Page>());
const _: () =
    assert!(core::mem::offset_of!(Slab, __page_flags) == core::mem::offset_of!(Page, flags));
const _: () = assert!(core::mem::offset_of!(Slab, slab_list) == core::mem::offset_of!(Page, lru));
const _: () =
    assert!(core::mem::offset_of!(Slab, __page_refcount) == core::mem::offset_of!(Page, _refcount));
const _: () =
    assert!(core::mem::offset_of!(Slab, memcg_data) == core::mem::offset_of!(Page, memcg_data));
// Not a Linux assert, but why __free_slab() clears folio->mapping.
const _: () =
    assert!(core::mem::offset_of!(Slab, slab_cache) == core::mem::offset_of!(Page, mapping));
const _: () =
    assert!(core::mem::offset_of!(Slab, __unused) == core::mem::offset_of!(Page, _mapcount));

/// The `counters` word: inuse (bits 0-15), objects (16-30), frozen (31).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Counters(pub(super) u64);

impl Counters {
    pub(super) fn inuse(self) -> u32 {
        (self.0 & 0xffff) as u32
    }
    pub(super) fn objects(self) -> u32 {
        ((self.0 >> 16) & 0x7fff) as u32
    }
    pub(super) fn frozen(self) -> bool {
        (self.0 >> 31) & 1 != 0
    }
    pub(super) fn set_inuse(&mut self, v: u32) {
        self.0 = (self.0 & !0xffff) | (v as u64 & 0xffff);
    }
    pub(super) fn set_objects(&mut self, v: u32) {
        self.0 = (self.0 & !(0x7fff << 16)) | ((v as u64 & 0x7fff) << 16);
    }
    pub(super) fn set_frozen(&mut self, f: bool) {
        self.0 = (self.0 & !(1 << 31)) | ((f as u64) << 31);
    }
}

impl Slab {
    pub(super) fn counters(&self) -> Counters {
        Counters(self.counters.load(Ordering::Acquire))
    }
    pub(super) fn set_counters(&self, c: Counters) {
        self.counters.store(c.0, Ordering::Release);
    }
    /// Linux: slab->inuse.
    pub fn inuse(&self) -> u32 {
        self.counters().inuse()
    }
    /// Linux: slab->objects.
    pub fn objects(&self) -> u32 {
        self.counters().objects()
    }
    /// Linux: slab->frozen.
    pub fn frozen(&self) -> bool {
        self.counters().frozen()
    }
    pub(super) fn set_inuse(&self, v: u32) {
        let mut c = self.counters();
        c.set_inuse(v);
        self.set_counters(c);
    }
    pub(super) fn set_objects(&self, v: u32) {
        let mut c = self.counters();
        c.set_objects(v);
        self.set_counters(c);
    }
    pub(super) fn freelist(&self) -> *mut u8 {
        self.freelist.load(Ordering::Acquire)
    }
    pub(super) fn set_freelist(&self, p: *mut u8) {
        self.freelist.store(p, Ordering::Release);
    }
    /// Linux: slab->slab_cache.
    pub fn slab_cache(&self) -> *const KmemCache {
        self.slab_cache.load(Ordering::Acquire)
    }
    /// slab->slab_cache as kfree() reads it (Linux: a plain load): relaxed. The caller
    /// frees an object of this slab, which it got from an allocation that happened after
    /// allocate_slab() stored the cache; that chain orders the store before this load.
    #[inline(always)]
    pub fn slab_cache_of_object(&self) -> *const KmemCache {
        self.slab_cache.load(Ordering::Relaxed)
    }
    /// Linux: slab_nid().
    pub fn slab_nid(&self) -> i32 {
        self.as_page().page_to_nid()
    }
    fn as_page(&self) -> &Page {
        // SAFETY: Slab is the 64-byte overlay of Page (asserted above); both only use atomics
        // for the words read here.
        unsafe { &*(self as *const Slab).cast::<Page>() }
    }
    /// Linux: folio_test_slab().
    pub fn test_slab(&self) -> bool {
        self.__page_flags.load(Ordering::Acquire) & (1 << PG_SLAB) != 0
    }
    /// Linux: slab_order() (folio_order: the first tail's compound order).
    pub fn slab_order(&self) -> u32 {
        let p = self.as_page();
        if p.page_head() {
            // SAFETY: a head page's first tail is the next struct page of the same block.
            unsafe { (*(p as *const Page).add(1)).first_tail_compound_order() }
        } else {
            0
        }
    }
    /// Linux: slab_lock() — bit spin lock on PG_locked.
    pub(super) fn slab_lock(&self) {
        let bit = 1u64 << PG_LOCKED;
        while self.__page_flags.fetch_or(bit, Ordering::Acquire) & bit != 0 {
            while self.__page_flags.load(Ordering::Relaxed) & bit != 0 {
                core::hint::spin_loop();
            }
        }
    }
    /// Linux: slab_unlock().
    pub(super) fn slab_unlock(&self) {
        self.__page_flags
            .fetch_and(!(1u64 << PG_LOCKED), Ordering::Release);
    }
    pub(super) fn list(&self) -> *mut ListHead {
        self.slab_list.get()
    }
    /// The slab whose `slab_list` this is (Linux: list_entry(…, struct slab, slab_list)).
    fn from_list(l: *mut ListHead) -> *mut Slab {
        l.cast::<u8>()
            .wrapping_sub(core::mem::offset_of!(Slab, slab_list))
            .cast()
    }
    /// Linux: slab->next (per-CPU partial list). Caller holds the CPU lock.
    ///
    /// # Safety
    /// Nobody else reads or writes this slab's `slab_list` meanwhile: the slab is on the per-CPU
    /// partial list of a CPU whose lock the caller holds, or on a chain of slabs the caller has
    /// detached from such a list or built itself.
    pub(super) unsafe fn next(&self) -> *mut Slab {
        // SAFETY: the caller owns the per-CPU partial list this slab is on.
        unsafe { (*self.list()).next.cast() }
    }
    /// Linux: slab->slabs.
    ///
    /// # Safety
    /// As for [`Slab::next`].
    pub(super) unsafe fn slabs(&self) -> u32 {
        // SAFETY: as next().
        unsafe { (*self.list()).prev as usize as u32 }
    }
    /// Linux: slab->next = next; slab->slabs = slabs.
    ///
    /// # Safety
    /// As for [`Slab::next`]; the slab is on no other list (its `slab_list` is reused).
    pub(super) unsafe fn set_next(&self, next: *mut Slab, slabs: u32) {
        // SAFETY: as next().
        unsafe {
            (*self.list()).next = next.cast();
            (*self.list()).prev = slabs as usize as *mut ListHead;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// kmem_cache, kmem_cache_cpu, kmem_cache_node.

/// Linux: struct kmem_cache_order_objects — order << 16 | objects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KmemCacheOrderObjects(pub u32);

/// Linux: order_objects().
pub const fn order_objects(order: u32, size: u32) -> u32 {
    ((PAGE_SZ << order) / size as usize) as u32
}

impl KmemCacheOrderObjects {
    /// Linux: oo_make().
    pub const fn oo_make(order: u32, size: u32) -> Self {
        Self((order << OO_SHIFT) + order_objects(order, size))
    }
    /// Linux: oo_order().
    pub const fn oo_order(self) -> u32 {
        self.0 >> OO_SHIFT
    }
    /// Linux: oo_objects().
    pub const fn oo_objects(self) -> u32 {
        self.0 & OO_MASK
    }
}

/// Linux: TID_STEP — a CPU's transaction ids advance in steps of the CPU count rounded up, so
/// that the ids of two CPUs never meet (`init_tid(cpu)` = `cpu`).
pub(super) const TID_STEP: u64 = (NR_CPUS as u64).next_power_of_two();

/// Linux: next_tid().
#[inline(always)]
pub(super) const fn next_tid(tid: u64) -> u64 {
    tid.wrapping_add(TID_STEP)
}

/// What a CPU slot keeps under its lock (Linux: `kmem_cache_cpu.partial`).
#[derive(Debug)]
pub(super) struct CpuSlab {
    /// Linux: partial — frozen partial slabs, linked through `slab->next`.
    pub(super) partial: *mut Slab,
}

// SAFETY: the pointer names slabs owned by the cache; the mutex serialises use.
unsafe impl Send for CpuSlab {}

/// Linux: struct kmem_cache_cpu — one CPU's slot of a cache.
///
/// Lock (see slub.rs's module doc): `freelist` and `tid` are the pair the lockless fast paths
/// of the slot's own CPU exchange together with [`cmpxchg_double`](super::cmpxchg); every
/// other change of the pair also bumps `tid` and is made under `lock`, by the owning CPU
/// (its slow paths) or by a flusher (flush_all), and a flusher, which races with the owner's
/// fast paths, changes the pair only with cmpxchg_double. `slab` and `partial` change only
/// under `lock`; a flusher clears `slab` *before* it exchanges the pair, and the fast paths
/// read `tid` (acquire) *before* `slab`, so a fast path that saw the old `slab` fails its
/// exchange. Aligned for the double-word exchange (Linux: `__aligned(2 * sizeof(void *))`).
#[repr(C, align(16))]
pub struct KmemCacheCpu {
    /// Linux: tid — the transaction id, bumped with every change of `freelist`. First (Linux
    /// has `freelist` first): the fast paths load it with acquire, and arm64's LDAR takes no
    /// offset, so at offset 0 it costs no address computation.
    pub(super) tid: AtomicU64,
    /// Linux: freelist — the next object only this CPU takes (the lockless list).
    pub(super) freelist: AtomicPtr<u8>,
    /// Linux: slab — the active (frozen) slab.
    pub(super) slab: AtomicPtr<Slab>,
    /// Linux: lock (`local_lock_t`), with what only it guards.
    pub(super) lock: SpinLock<CpuSlab>,
    /// To 64 bytes: the fast paths find CPU `cpu`'s slot with one shifted add (a stride of
    /// 48 takes a constant and a multiply-add).
    _pad: [u64; 2],
}
const _: () = assert!(core::mem::size_of::<KmemCacheCpu>() == 64);
const _: () = assert!(core::mem::offset_of!(KmemCacheCpu, tid) == 0);
const _: () = assert!(core::mem::offset_of!(KmemCacheCpu, freelist) == 8);

impl KmemCacheCpu {
    /// Linux: init_kmem_cache_cpus() for one slot: `tid` = init_tid(cpu).
    pub(super) const fn new(cpu: usize) -> Self {
        Self {
            tid: AtomicU64::new(cpu as u64),
            freelist: AtomicPtr::new(ptr::null_mut()),
            slab: AtomicPtr::new(ptr::null_mut()),
            lock: SpinLock::new(CpuSlab {
                partial: ptr::null_mut(),
            }),
            _pad: [0; 2],
        }
    }

    /// Linux: this_cpu_cmpxchg_double(s->cpu_slab->freelist, s->cpu_slab->tid, ...).
    #[inline(always)]
    pub(super) fn cmpxchg_freelist(
        &self,
        freelist: *mut u8,
        tid: u64,
        new_freelist: *mut u8,
        new_tid: u64,
    ) -> bool {
        // SAFETY: `tid` and `freelist` are adjacent 8-byte atomics at the start of a 16-byte
        // aligned struct, and every access to them is atomic.
        unsafe {
            super::cmpxchg::cmpxchg_double(
                self.tid.as_ptr(),
                (tid, freelist as u64),
                (new_tid, new_freelist as u64),
            )
        }
    }

    /// Takes the slot's lock (Linux: local_lock_irqsave(&s->cpu_slab->lock)).
    pub(super) fn lock(&self) -> CpuSlabGuard<'_> {
        CpuSlabGuard {
            cpu: self,
            g: self.lock.lock(),
        }
    }
}

/// A CPU slot with its lock held: the slow paths' view (Linux: `c` under `local_lock`).
pub(super) struct CpuSlabGuard<'c> {
    cpu: &'c KmemCacheCpu,
    g: SpinLockGuard<'c, CpuSlab>,
}

impl CpuSlabGuard<'_> {
    /// Linux: c->slab.
    pub(super) fn slab(&self) -> *mut Slab {
        self.cpu.slab.load(Ordering::Relaxed)
    }
    /// `c->slab = slab`.
    pub(super) fn set_slab(&mut self, slab: *mut Slab) {
        self.cpu.slab.store(slab, Ordering::Relaxed);
    }
    /// Linux: c->freelist.
    pub(super) fn freelist(&self) -> *mut u8 {
        self.cpu.freelist.load(Ordering::Relaxed)
    }
    /// The owning CPU's `c->freelist = freelist; c->tid = next_tid(c->tid)`: with the lock
    /// held, only this CPU's own fast paths could change the pair, and they are not running.
    pub(super) fn set_freelist(&mut self, freelist: *mut u8) {
        let tid = self.cpu.tid.load(Ordering::Relaxed);
        self.cpu.freelist.store(freelist, Ordering::Relaxed);
        self.cpu.tid.store(next_tid(tid), Ordering::Release);
    }
    /// Linux: c->partial.
    pub(super) fn partial(&self) -> *mut Slab {
        self.g.partial
    }
    /// `c->partial = partial`.
    pub(super) fn set_partial(&mut self, partial: *mut Slab) {
        self.g.partial = partial;
    }
    /// A flusher (any CPU) empties the slot: `slab` first, then the freelist with a bumped
    /// `tid` by cmpxchg_double (the owner's fast paths may run meanwhile), then the partial
    /// list. Returns (slab, freelist, partial).
    pub(super) fn take_all(&mut self) -> (*mut Slab, *mut u8, *mut Slab) {
        let slab = self.cpu.slab.swap(ptr::null_mut(), Ordering::Relaxed);
        let freelist = loop {
            let tid = self.cpu.tid.load(Ordering::Acquire);
            let freelist = self.cpu.freelist.load(Ordering::Relaxed);
            if self
                .cpu
                .cmpxchg_freelist(freelist, tid, ptr::null_mut(), next_tid(tid))
            {
                break freelist;
            }
        };
        let partial = core::mem::replace(&mut self.g.partial, ptr::null_mut());
        (slab, freelist, partial)
    }
}

/// The lists of a kmem_cache_node, under its `list_lock`.
pub(super) struct NodeLists {
    /// Linux: partial.
    pub(super) partial: ListHead,
    /// Linux: full (only kept for SLAB_STORE_USER caches).
    pub(super) full: ListHead,
}

// SAFETY: the lists link slabs of the cache; the mutex serialises use.
unsafe impl Send for NodeLists {}

/// Linux: struct kmem_cache_node (SLUB). Lock: `list_lock` for the lists and for changes to
/// `nr_partial` (which Linux, and we, read without it as a hint); the counters are atomics.
#[repr(C)]
pub struct KmemCacheNode {
    pub(super) list_lock: SpinLock<NodeLists>,
    /// Linux: nr_partial.
    pub(super) nr_partial: AtomicU64,
    /// Linux: nr_slabs.
    pub(super) nr_slabs: AtomicI64,
    /// Linux: total_objects.
    pub(super) total_objects: AtomicI64,
}

pub(super) type NodeGuard<'a> = SpinLockGuard<'a, NodeLists>;

impl KmemCacheNode {
    /// Linux: init_kmem_cache_node() — in place: the list heads point at themselves.
    ///
    /// # Safety
    /// `n` is writable memory for a KmemCacheNode that will not move.
    pub(super) unsafe fn init(n: *mut KmemCacheNode) {
        // SAFETY: the caller's guarantee.
        unsafe {
            ptr::write(
                n,
                KmemCacheNode {
                    list_lock: SpinLock::new(NodeLists {
                        partial: ListHead::new(),
                        full: ListHead::new(),
                    }),
                    nr_partial: AtomicU64::new(0),
                    nr_slabs: AtomicI64::new(0),
                    total_objects: AtomicI64::new(0),
                },
            );
            let mut l = (*n).list_lock.lock();
            l.partial.init_list_head();
            l.full.init_list_head();
        }
    }

    /// Linux: node_nr_slabs().
    pub fn node_nr_slabs(&self) -> i64 {
        self.nr_slabs.load(Ordering::Relaxed)
    }

    /// Linux: node_nr_objs().
    pub fn node_nr_objs(&self) -> i64 {
        self.total_objects.load(Ordering::Relaxed)
    }

    /// Linux: n->nr_partial.
    pub fn nr_partial(&self) -> u64 {
        self.nr_partial.load(Ordering::Relaxed)
    }
}

/// Iterates a list of slabs, tolerant of the current entry being moved (list_for_each_entry_safe).
pub(super) fn for_each_slab_safe(head: *mut ListHead, mut f: impl FnMut(*mut Slab)) {
    // SAFETY (for the whole walk): the caller holds the lock of the list.
    unsafe {
        let mut cur = (*head).next;
        while !ptr::eq(cur, head) {
            let next = (*cur).next;
            f(Slab::from_list(cur));
            cur = next;
        }
    }
}

/// Linux: struct kmem_cache (SLUB). Followed in memory by `nr_cpu_slots` [`KmemCacheCpu`]s
/// (Linux: the `cpu_slab` per-CPU pointer) — a kmem_cache object is
/// `kmem_cache_size(nr_cpu_ids)` bytes.
///
/// Lock: set up under `slab_mutex` before the cache is published and read-only afterwards,
/// except `refcount`, `object_size` and `inuse` (changed by merging, under `slab_mutex`, read
/// without it: atomics), `random_seq` (set once at bring-up) and `node[]` (set at creation,
/// cleared at release). Aligned (and so sized) for the CPU slots that trail it.
#[repr(C, align(16))]
pub struct KmemCache {
    /// How many KmemCacheCpu follow (nr_cpu_ids; 1 for the boot caches, used only by the
    /// boot CPU).
    pub(super) nr_cpu_slots: u32,
    /// Linux: flags.
    pub flags: SlabFlags,
    /// Linux: min_partial.
    pub min_partial: u64,
    /// Linux: size — the object with its metadata.
    pub size: u32,
    /// Linux: object_size — what the user asked for.
    pub(super) object_size: AtomicU32,
    /// Linux: offset — where the free pointer is.
    pub offset: u32,
    /// Linux: cpu_partial (objects).
    pub cpu_partial: u32,
    /// Linux: cpu_partial_slabs.
    pub cpu_partial_slabs: u32,
    /// Linux: oo — preferred order and objects.
    pub oo: KmemCacheOrderObjects,
    /// Linux: min — the smallest order one object fits in.
    pub min: KmemCacheOrderObjects,
    /// Linux: allocflags — gfp flags every slab allocation gets.
    pub allocflags: GfpT,
    /// Linux: refcount (-1: never merge).
    pub refcount: AtomicI32,
    /// Linux: ctor.
    pub ctor: Option<Ctor>,
    /// Linux: inuse — offset to the metadata.
    pub(super) inuse: AtomicU32,
    /// Linux: align.
    pub align: u32,
    /// Linux: red_left_pad.
    pub red_left_pad: u32,
    /// Linux: name.
    pub name: &'static str,
    /// Linux: list — on slab_caches.
    pub(super) list: UnsafeCell<ListHead>,
    /// Linux: random (CONFIG_SLAB_FREELIST_HARDENED).
    pub random: u64,
    /// Linux: random_seq (CONFIG_SLAB_FREELIST_RANDOM) — byte offsets, kcalloc'ed.
    pub(super) random_seq: AtomicPtr<u32>,
    /// Linux: useroffset.
    pub useroffset: u32,
    /// Linux: usersize.
    pub usersize: u32,
    /// Linux: node[].
    pub(super) node: [AtomicPtr<KmemCacheNode>; MAX_NUMNODES as usize],
}

// SAFETY: see the lock rules on the type; the raw pointers name memory the cache owns.
unsafe impl Sync for KmemCache {}
// SAFETY: as above.
unsafe impl Send for KmemCache {}

/// The size of a kmem_cache object for `nr_cpu_ids` CPUs (Linux: the `kmem_cache` cache's
/// object size, `offsetof(struct kmem_cache, node) + nr_node_ids * sizeof(void *)`; here the
/// node array is fixed and the per-CPU slots trail).
pub const fn kmem_cache_size(nr_cpu_ids: u32) -> usize {
    core::mem::size_of::<KmemCache>() + nr_cpu_ids as usize * core::mem::size_of::<KmemCacheCpu>()
}

/// A boot cache: the cache and its one per-CPU slot (Linux: `boot_kmem_cache` and
/// `boot_kmem_cache_node`, static __initdata).
#[repr(C)]
pub(super) struct BootCache {
    pub(super) cache: KmemCache,
    pub(super) cpu: KmemCacheCpu,
}
const _: () = assert!(core::mem::offset_of!(BootCache, cpu) == core::mem::size_of::<KmemCache>());

impl KmemCache {
    /// A zeroed cache description (Linux: kmem_cache_zalloc + the fields create_cache sets).
    pub(in crate::mm) fn new(
        name: &'static str,
        size: u32,
        align: u32,
        ctor: Option<Ctor>,
        nr_cpu_slots: u32,
    ) -> Self {
        Self {
            nr_cpu_slots,
            flags: 0,
            min_partial: 0,
            size,
            object_size: AtomicU32::new(size),
            offset: 0,
            cpu_partial: 0,
            cpu_partial_slabs: 0,
            oo: KmemCacheOrderObjects(0),
            min: KmemCacheOrderObjects(0),
            allocflags: 0,
            refcount: AtomicI32::new(1),
            ctor,
            inuse: AtomicU32::new(0),
            align,
            red_left_pad: 0,
            name,
            list: UnsafeCell::new(ListHead::new()),
            random: 0,
            random_seq: AtomicPtr::new(ptr::null_mut()),
            useroffset: 0,
            usersize: 0,
            node: [const { AtomicPtr::new(ptr::null_mut()) }; MAX_NUMNODES as usize],
        }
    }

    /// Linux: object_size.
    pub fn object_size(&self) -> u32 {
        self.object_size.load(Ordering::Relaxed)
    }

    /// Linux: inuse.
    pub fn inuse(&self) -> u32 {
        self.inuse.load(Ordering::Relaxed)
    }

    /// Merging grows these (Linux: __kmem_cache_alias()).
    pub(in crate::mm) fn grow_for_alias(&self, size: u32) {
        self.object_size.fetch_max(size, Ordering::Relaxed);
        self.inuse
            .fetch_max(size.next_multiple_of(8), Ordering::Relaxed);
    }

    /// Linux: this_cpu_ptr(s->cpu_slab) / per_cpu_ptr(s->cpu_slab, cpu).
    #[inline(always)]
    pub(super) fn cpu_slab(&self, cpu: usize) -> &KmemCacheCpu {
        let idx = if cpu < self.nr_cpu_slots as usize {
            cpu
        } else {
            assert!(
                self.nr_cpu_slots == 1,
                "SLUB: cpu {} >= nr_cpu_ids {}",
                cpu,
                self.nr_cpu_slots
            );
            0
        };
        // SAFETY: nr_cpu_slots KmemCacheCpu follow the struct (kmem_cache_size, BootCache),
        // initialised by alloc_kmem_cache_cpus().
        unsafe {
            &*(self as *const KmemCache)
                .cast::<u8>()
                .add(core::mem::size_of::<KmemCache>())
                .cast::<KmemCacheCpu>()
                .add(idx)
        }
    }

    /// Linux: get_node().
    pub fn get_node(&self, node: i32) -> Option<&KmemCacheNode> {
        if !(0..MAX_NUMNODES).contains(&node) {
            return None;
        }
        let n = self.node[node as usize].load(Ordering::Acquire);
        // SAFETY: node structures live until free_kmem_cache_nodes() at cache release.
        unsafe { n.as_ref() }
    }

    /// Linux: for_each_kmem_cache_node().
    pub fn nodes(&self) -> impl Iterator<Item = (i32, &KmemCacheNode)> + '_ {
        (0..MAX_NUMNODES).filter_map(move |n| self.get_node(n).map(|x| (n, x)))
    }

    /// Linux: kmem_cache_debug().
    pub fn kmem_cache_debug(&self) -> bool {
        self.flags & SLAB_DEBUG_FLAGS != 0
    }

    /// Linux: kmem_cache_has_cpu_partial().
    pub(super) fn has_cpu_partial(&self) -> bool {
        !self.kmem_cache_debug()
    }

    /// Linux: freeptr_outside_object().
    pub(super) fn freeptr_outside_object(&self) -> bool {
        self.offset >= self.inuse()
    }

    /// Linux: get_info_end() — where the tracking data begins.
    pub(super) fn get_info_end(&self) -> usize {
        if self.freeptr_outside_object() {
            self.inuse() as usize + 8
        } else {
            self.inuse() as usize
        }
    }

    /// Linux: size_from_object().
    pub(super) fn size_from_object(&self) -> usize {
        if self.flags & SLAB_RED_ZONE != 0 {
            (self.size - self.red_left_pad) as usize
        } else {
            self.size as usize
        }
    }

    /// Linux: fixup_red_left().
    pub(super) fn fixup_red_left(&self, p: *mut u8) -> *mut u8 {
        if self.flags & SLAB_RED_ZONE != 0 {
            p.wrapping_add(self.red_left_pad as usize)
        } else {
            p
        }
    }

    /// Linux: restore_red_left().
    pub(super) fn restore_red_left(&self, p: *mut u8) -> *mut u8 {
        if self.flags & SLAB_RED_ZONE != 0 {
            p.wrapping_sub(self.red_left_pad as usize)
        } else {
            p
        }
    }
}

/// Linux: slub_debug_orig_size() — a kmalloc cache that stores each request's size.
pub fn slub_debug_orig_size(s: &KmemCache) -> bool {
    s.flags & SLAB_STORE_USER != 0 && s.flags & SLAB_KMALLOC != 0
}

/// Linux: slab_ksize() — what ksize() reports for an object of `s`.
pub fn slab_ksize(s: &KmemCache) -> usize {
    if s.flags & (SLAB_RED_ZONE | SLAB_POISON) != 0 {
        return s.object_size() as usize;
    }
    if s.flags & (SLAB_TYPESAFE_BY_RCU | SLAB_STORE_USER) != 0 {
        return s.inuse() as usize;
    }
    s.size as usize
}
