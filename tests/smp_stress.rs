//! The allocators on every CPU at once, under multi-threaded TCG (each vCPU its own host
//! thread): `on_each_cpu()` starts a worker on every online CPU that, for a fixed number of
//! rounds with a per-CPU seeded generator, allocates and frees buddy pages of orders 0..=3
//! (and now and then 4..=6), kmalloc objects of every kmalloc class and of kmalloc_large
//! sizes, vmalloc areas of a few pages, vm_map_ram mappings of 1, 2 and 4 pages (from the
//! per-CPU vmap blocks), and blocks of Rust's global allocator (heap.rs) with alignments up
//! to 4096, grown with realloc, some above KMALLOC_MAX_SIZE (vmalloc). Each is filled with
//! a pattern tagged by its CPU and sequence number and checked before it is freed. A
//! quarter of them go to another CPU's mailbox, and that CPU checks and frees them: frees
//! from a CPU other than the allocating one (the remote frees of SLUB's `__slab_free`,
//! pages going to another CPU's pageset, vmap blocks dirtied
//! from elsewhere). Beside the allocations, CPUs now and then drain every pageset, shrink
//! every cache, purge the lazy vmap areas and read slabinfo, vmallocinfo and the zone
//! counters, as Linux does concurrently.
//!
//! Before and after (one warm-up run, then two measured ones), with every cache shrunk
//! (SLUB's `flush_all` + discard), every pageset drained (`drain_all_pages`) and the lazy
//! vmap areas purged: each zone's NR_FREE_PAGES, each cache's active and total objects and
//! the set of vmap areas must be exactly what they were, save for what is counted and
//! explained in `compare()` (page tables of the vmalloc range, vmap_area slabs, the
//! per-CPU vmap blocks still in use, which must be exactly the ones the CPUs' usage says).
//!
//! Then memory pressure: every CPU allocates until the allocator refuses even a page, so
//! the slow path's `drain_all_pages()` runs on all CPUs at once; when all are refused,
//! held + free + per-CPU pages must be what was free before, and every zone at its min
//! watermark; each CPU frees another's blocks, and everything is back again. Then cache
//! churn: even CPUs create, use and destroy caches while odd ones shrink every cache
//! (found two SLUB races: flush_all() without Linux's flush_lock, kmem_cache_shrink_all()
//! shrinking outside slab_mutex; create/destroy also runs now and then in the workload's
//! maintenance). Last, the workload once more with all but a few MiB taken (allocations
//! fail here and there, the vmalloc family's too, see [`TIGHT_VMALLOC`]): patterns hold
//! and everything comes back.
//!
//! The cross-call API is checked too: `smp_call_function_single` runs on the CPU named,
//! `wait` waits and no-wait does not, a call to a busy CPU runs after what it is busy with,
//! two CPUs calling each other with `wait` do not deadlock, `smp_call_function` skips the
//! caller, and `smp_send_stop(true)` leaves one CPU online.
//!
//! Mirrors Linux's lib/test_vmalloc.c (its per-CPU workers started together, each running
//! random vmalloc/vfree tests), with what mm/page_alloc.c's `drain_all_pages()` and SLUB's
//! `flush_all()` make checkable afterwards: nothing leaked, nothing lost.
//!
//! `smp_stress.scale=N` on the command line makes each run N times longer (for hunting).
//! `smp_stress.soak=S` (the soak, `scripts/stress`) repeats the measured run for S seconds
//! instead of twice, each compared with the state before, and prints one `soak:` line:
//! runs, allocations freed, the peak memory in use (the fewest free pages any CPU saw,
//! against the free pages before) and the runs that did not give everything back.
#![no_std]
#![no_main]

extern crate alloc;

use arm64_mm::arch::aarch64::kernel::setup::nr_cpu_ids;
use arm64_mm::arch::aarch64::kernel::smp::{cpu_online, num_online_cpus, smp_processor_id};
use arm64_mm::arch::aarch64::kernel::smp_call::{
    on_each_cpu, smp_call_function, smp_call_function_single, smp_send_stop,
};
use arm64_mm::arch::aarch64::kernel::time::{counter, frequency};
use arm64_mm::arch::aarch64::mm::mmu::PAGES_FOR_TABLES;
use arm64_mm::include::mmzone::MAX_NR_ZONES;
use arm64_mm::kernel::ktest;
use arm64_mm::kernel::params::boot_command_line;
use arm64_mm::mm::gfp::{__GFP_NOWARN, GFP_KERNEL};
use arm64_mm::mm::mmzone::{NR_FREE_CMA_PAGES, NR_FREE_PAGES};
use arm64_mm::mm::page_alloc::{page_alloc, PagePtr};
use arm64_mm::mm::slab_common::{
    for_each_slabinfo, kfree, kmalloc, kmem_cache_alloc, kmem_cache_create, kmem_cache_destroy,
    kmem_cache_free, kmem_cache_node_pages, kmem_cache_shrink_all, slub,
};
use arm64_mm::mm::vmalloc::api::{
    nr_vmap_blocks, purge_vmap_area_lazy, vfree, vm_map_ram, vm_unmap_ram, vmalloc, vmallocinfo,
    vmap_stats,
};
use arm64_mm::mm::vmalloc::{VMAP_BBMAP_BITS, VMAP_BLOCK_SIZE};
use arm64_mm::{check, qemu_test};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

qemu_test!(
    r#"
run --smp 2 -m 1G -- -accel tcg,thread=multi
expect-output smp_stress: 2 CPUs
expect-output SMP: stopping secondary CPUs
expect-no-output FAIL
expect-no-output BUG
run --smp 4 -m 1G -- -accel tcg,thread=multi
expect-output smp_stress: 4 CPUs
expect-output SMP: stopping secondary CPUs
expect-no-output FAIL
expect-no-output BUG
run --smp 4 -m 1G --numa 2 -- -accel tcg,thread=multi
expect-output smp_stress: 4 CPUs
expect-output SMP: stopping secondary CPUs
expect-no-output FAIL
expect-no-output BUG
"#
);

// ---------------------------------------------------------------------------------------------
// The workload's size and mix.

/// The CPUs this test handles (its static arrays); the runs use 2 and 4.
const MAX_CPUS: usize = 8;
/// Rounds per run, shared out among the CPUs (times `smp_stress.scale=N`, default 1): the
/// same work on 2 and 4 CPUs. (With more vCPUs than host cores, a vCPU preempted while
/// holding a spin lock stalls the others: the 4-CPU runs are the slow ones on a busy host.)
const ROUNDS: usize = 512;
/// Objects each CPU keeps alive at a time, per kind (a new one replaces a random slot).
const SLOTS: usize = 8;
/// Entries a CPU's mailbox holds; when full, the sender frees the object itself.
const MAILBOX: usize = 32;
/// Measured runs after the warm-up run.
const RUNS: usize = 2;
/// Switches for the kinds of work (all on: no known bug makes one unusable).
const DO_PAGES: bool = true;
const DO_KMALLOC: bool = true;
const DO_VMALLOC: bool = true;
const DO_VM_MAP_RAM: bool = true;
const DO_HEAP: bool = true;
/// The vmalloc family (vmalloc, vm_map_ram, heap blocks above KMALLOC_MAX_SIZE) while
/// memory is nearly gone ([`tight_memory`]). This found a panic: when the page allocator
/// refused the page a new page table needs, `SwapperTables::alloc_table()` panicked where
/// Linux's vmap_pages_range() returns -ENOMEM; now the vmalloc fails and unwinds.
const TIGHT_VMALLOC: bool = true;
/// Now and then (one round in `MAINT_EVERY` on average) a CPU also runs what Linux runs
/// concurrently with allocations: drain_all_pages() (its slow path, lru_add_drain_all),
/// kmem_cache_shrink() (sysfs `shrink`), the lazy vmap purge (the drain_vmap work), and the
/// readers of /proc/slabinfo, /proc/vmallocinfo and the zone counters.
const DO_MAINTENANCE: bool = true;
const MAINT_EVERY: usize = 32;

/// kmalloc sizes: every class (arm64 6.1's smallest is 128, so 8..128 share it) and three
/// kmalloc_large sizes (above KMALLOC_MAX_CACHE_SIZE, straight from the buddy).
const KMALLOC_SIZES: [usize; 16] = [
    8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192, 8200, 12288, 16384,
];
/// vm_map_ram sizes in pages. vb_alloc() takes a CPU's block front to back, rounding to a
/// power of two, and starts a new block when the request does not fit: a CPU asks only
/// for an `n` that divides what it has used of its blocks so far (`vb_used`), so a request
/// always fits and no block is left with room behind. So, once everything is unmapped,
/// exactly the CPUs whose `vb_used` is not a multiple of VMAP_BBMAP_BITS have a live block
/// (their current one); every other block, all dirty, went back (`compare()` checks it).
const VM_SIZES: [usize; 4] = [1, 2, 4, 8];

// ---------------------------------------------------------------------------------------------
// Objects, their patterns, the mailboxes.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    None,
    /// A buddy block: `addr` its linear-map address, `n` its order.
    Pages,
    /// A kmalloc object of `n` bytes.
    Kmalloc,
    /// A vmalloc area of `n` pages.
    Vmalloc,
    /// A vm_map_ram mapping of `n` pages, `pages` the order-0 pages behind it.
    VmMapRam,
    /// Rust's global allocator (heap.rs: kmalloc, or vmalloc above KMALLOC_MAX_SIZE): `n`
    /// bytes aligned to `pages[0]`.
    Heap,
}

#[derive(Clone, Copy)]
struct Obj {
    kind: Kind,
    addr: usize,
    n: usize,
    tag: u64,
    pages: [usize; 8],
}

impl Obj {
    const NONE: Obj = Obj {
        kind: Kind::None,
        addr: 0,
        n: 0,
        tag: 0,
        pages: [0; 8],
    };

    /// Bytes of the object that carry the pattern.
    fn bytes(&self) -> usize {
        match self.kind {
            Kind::None => 0,
            Kind::Pages => 4096 << self.n,
            Kind::Kmalloc | Kind::Heap => self.n,
            Kind::Vmalloc | Kind::VmMapRam => self.n * 4096,
        }
    }
}

/// The pattern: word `i` (of every 16th, and the last) holds `tag ^ i`.
fn fill(addr: usize, bytes: usize, tag: u64) {
    let words = bytes / 8;
    let p = addr as *mut u64;
    let mut i = 0;
    while i < words {
        // SAFETY: the object is ours and `bytes` long.
        unsafe { p.add(i).write_volatile(tag ^ i as u64) };
        i += if words > 64 { 16 } else { 1 };
    }
    // SAFETY: as above; the last word.
    unsafe { p.add(words - 1).write_volatile(tag ^ (words - 1) as u64) };
}

fn pattern_ok(addr: usize, bytes: usize, tag: u64) -> bool {
    let words = bytes / 8;
    let p = addr as *const u64;
    let mut i = 0;
    while i < words {
        // SAFETY: the object is still allocated and `bytes` long.
        if unsafe { p.add(i).read_volatile() } != tag ^ i as u64 {
            return false;
        }
        i += if words > 64 { 16 } else { 1 };
    }
    // SAFETY: as above.
    unsafe { p.add(words - 1).read_volatile() == tag ^ (words - 1) as u64 }
}

fn tag_of(cpu: usize, seq: u64) -> u64 {
    0x5a5a_0000_0000_0000 | (cpu as u64) << 40 | seq
}

/// The CPU a tag names.
fn tag_cpu(tag: u64) -> usize {
    ((tag >> 40) & 0xff) as usize
}

struct Mailbox {
    items: [Obj; MAILBOX],
    n: usize,
}

/// What every CPU's worker shares (its address is `on_each_cpu`'s `info`).
struct Shared {
    /// Per destination CPU (Linux would use a per-CPU llist; a locked array is enough).
    mailbox: [spin::Mutex<Mailbox>; MAX_CPUS],
    /// Workers that finished their rounds: a worker drains its mailbox until all have.
    finished: AtomicUsize,
    /// Which run (seeds the generators).
    run: AtomicU64,
    /// Rounds per CPU.
    rounds: AtomicUsize,
    /// Pages each CPU has taken from its vmap blocks, ever (see VM_SIZES).
    vb_used: [AtomicU64; MAX_CPUS],
    /// Memory is nearly gone on purpose: failed allocations are expected (counted, not
    /// reported).
    tight: AtomicBool,
    /// Memory pressure: each CPU's chain of blocks, its pages, and the CPUs done taking.
    chain: [AtomicUsize; MAX_CPUS],
    held: [AtomicU64; MAX_CPUS],
    exhausted: AtomicUsize,
    /// Pages free and in per-CPU lists when every CPU was refused (taken by the last).
    free_at_exhaustion: AtomicU64,
    pcp_at_exhaustion: AtomicU64,
    /// Zones whose free pages were above their min watermark (plus reserves) then.
    zones_not_low: AtomicUsize,
    /// Per CPU: operations done, objects freed that another CPU allocated, pattern or tag
    /// errors, failed allocations.
    ops: [AtomicU64; MAX_CPUS],
    remote_frees: [AtomicU64; MAX_CPUS],
    errors: [AtomicU64; MAX_CPUS],
    alloc_failures: [AtomicU64; MAX_CPUS],
    /// The fewest free pages any CPU saw (sampled every 16 rounds): the soak's peak use.
    min_free: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const MBOX: spin::Mutex<Mailbox> = spin::Mutex::new(Mailbox {
    items: [Obj::NONE; MAILBOX],
    n: 0,
});
#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);

static SHARED: Shared = Shared {
    mailbox: [MBOX; MAX_CPUS],
    finished: AtomicUsize::new(0),
    run: AtomicU64::new(0),
    rounds: AtomicUsize::new(ROUNDS),
    vb_used: [ZERO; MAX_CPUS],
    tight: AtomicBool::new(false),
    chain: [const { AtomicUsize::new(0) }; MAX_CPUS],
    held: [ZERO; MAX_CPUS],
    exhausted: AtomicUsize::new(0),
    free_at_exhaustion: AtomicU64::new(0),
    pcp_at_exhaustion: AtomicU64::new(0),
    zones_not_low: AtomicUsize::new(0),
    ops: [ZERO; MAX_CPUS],
    remote_frees: [ZERO; MAX_CPUS],
    errors: [ZERO; MAX_CPUS],
    alloc_failures: [ZERO; MAX_CPUS],
    min_free: AtomicU64::new(u64::MAX),
};

/// xorshift64* (the same as the host tests' `mm::testing::Rng`, which the kernel does not
/// build).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn page_ptr(p: usize) -> PagePtr {
    NonNull::new(p as *mut _).expect("a page")
}

/// Check `o`'s pattern and free it, on whatever CPU this is.
fn check_and_free(sh: &Shared, o: &Obj) {
    let me = smp_processor_id();
    let pa = page_alloc().expect("buddy");
    if !pattern_ok(o.addr, o.bytes(), o.tag) {
        sh.errors[me].fetch_add(1, Ordering::Relaxed);
        arm64_mm::pr_err!(
            "smp_stress: CPU{}: {:?} {:#x} ({}) from CPU{} lost its pattern",
            me,
            o.kind,
            o.addr,
            o.n,
            tag_cpu(o.tag)
        );
    }
    if tag_cpu(o.tag) != me {
        sh.remote_frees[me].fetch_add(1, Ordering::Relaxed);
    }
    match o.kind {
        Kind::None => {}
        Kind::Pages => pa.free_pages(arm64_mm::mm::VirtAddr(o.addr as u64), o.n as u32),
        // SAFETY: a live kmalloc object, freed once (it left its slot or mailbox).
        Kind::Kmalloc => unsafe { kfree(o.addr as *const u8) },
        Kind::Vmalloc => vfree(o.addr as u64),
        // SAFETY: allocated by heap_alloc() with this layout, freed once.
        Kind::Heap => unsafe { alloc::alloc::dealloc(o.addr as *mut u8, heap_layout(o)) },
        Kind::VmMapRam => {
            // The pages behind the mapping still hold what was written through it.
            for (i, &p) in o.pages[..o.n].iter().enumerate() {
                let va = pa.page_address(page_ptr(p)).as_u64() as usize;
                // SAFETY: the page is ours; word 0 of page i is word 512*i of the mapping.
                let w = unsafe { (va as *const u64).read_volatile() };
                if w != o.tag ^ (512 * i) as u64 {
                    sh.errors[me].fetch_add(1, Ordering::Relaxed);
                }
            }
            vm_unmap_ram(o.addr as u64, o.n);
            for &p in &o.pages[..o.n] {
                pa.__free_pages(page_ptr(p), 0);
            }
        }
    }
    sh.ops[me].fetch_add(1, Ordering::Relaxed);
}

fn heap_layout(o: &Obj) -> core::alloc::Layout {
    core::alloc::Layout::from_size_align(o.n, o.pages[0]).expect("a valid layout")
}

/// A block from Rust's global allocator: `size` bytes (a multiple of 8) aligned to `align`;
/// half the time allocated smaller first and grown with realloc (krealloc, or a copy when
/// the alignment or size leaves kmalloc), the first part's pattern checked across it.
fn heap_alloc(sh: &Shared, rng: &mut Rng, size: usize, align: usize, tag: u64) -> Option<Obj> {
    let me = smp_processor_id();
    let mut o = Obj {
        kind: Kind::Heap,
        addr: 0,
        n: size,
        tag,
        pages: [align, 0, 0, 0, 0, 0, 0, 0],
    };
    if size > 64 && rng.below(2) == 0 {
        let small = Obj {
            n: (size / 2) & !7,
            ..o
        };
        // SAFETY: a non-zero size.
        let p = unsafe { alloc::alloc::alloc(heap_layout(&small)) };
        if p.is_null() {
            return None;
        }
        fill(p as usize, small.n, tag);
        // SAFETY: `p` has `small`'s layout; the new size is non-zero.
        let q = unsafe { alloc::alloc::realloc(p, heap_layout(&small), size) };
        if q.is_null() {
            // SAFETY: realloc failed, so `p` is still ours.
            unsafe { alloc::alloc::dealloc(p, heap_layout(&small)) };
            return None;
        }
        if !pattern_ok(q as usize, small.n, tag) || !(q as usize).is_multiple_of(align) {
            sh.errors[me].fetch_add(1, Ordering::Relaxed);
            arm64_mm::pr_err!(
                "smp_stress: CPU{}: realloc to {} lost the first {}",
                me,
                size,
                small.n
            );
        }
        o.addr = q as usize;
    } else {
        // SAFETY: a non-zero size.
        let p = unsafe { alloc::alloc::alloc(heap_layout(&o)) };
        if p.is_null() {
            return None;
        }
        if !(p as usize).is_multiple_of(align) {
            sh.errors[me].fetch_add(1, Ordering::Relaxed);
        }
        o.addr = p as usize;
    }
    fill(o.addr, o.n, tag);
    Some(o)
}

/// Free what this CPU's mailbox holds.
fn drain_mailbox(sh: &Shared, cpu: usize) {
    loop {
        let o = {
            let mut m = sh.mailbox[cpu].lock();
            if m.n == 0 {
                return;
            }
            m.n -= 1;
            let n = m.n;
            m.items[n]
        };
        check_and_free(sh, &o);
    }
}

/// Keep `o` in a random slot (freeing the one there), or, one time in four, post it to
/// another online CPU.
fn keep_or_post(sh: &Shared, rng: &mut Rng, slots: &mut [Obj; SLOTS], o: Obj) {
    let me = smp_processor_id();
    let n = nr_cpu_ids().min(MAX_CPUS);
    if rng.below(4) == 0 {
        let dest = (me + 1 + rng.below(n - 1)) % n;
        if dest != me && cpu_online(dest) {
            let mut m = sh.mailbox[dest].lock();
            if m.n < MAILBOX {
                let i = m.n;
                m.items[i] = o;
                m.n += 1;
                return;
            }
        }
    }
    let s = rng.below(SLOTS);
    let old = core::mem::replace(&mut slots[s], o);
    if old.kind != Kind::None {
        check_and_free(sh, &old);
    }
}

/// A constructor that marks each new object (and so makes its cache unmergeable).
fn cache_ctor(p: *mut u8) {
    // SAFETY: SLUB calls the constructor on a fresh object of the cache's size (200).
    unsafe { core::ptr::write_bytes(p, 0xc7, 200) };
}

/// A module's life, as Linux sees it while the rest runs: kmem_cache_create() of a cache of
/// its own, objects from it, kmem_cache_destroy() — beside other CPUs' allocations and
/// kmem_cache_shrink_all().
fn cache_lifetime(sh: &Shared, me: usize) {
    let Some(c) = kmem_cache_create("smp_stress", 200, 8, 0, Some(cache_ctor)) else {
        sh.errors[me].fetch_add(1, Ordering::Relaxed);
        arm64_mm::pr_err!("smp_stress: CPU{}: kmem_cache_create failed", me);
        return;
    };
    let mut objs = [core::ptr::null_mut::<u8>(); 24];
    for o in objs.iter_mut() {
        *o = kmem_cache_alloc(c, GFP_KERNEL | __GFP_NOWARN);
        // SAFETY: a fresh object of 200 bytes (when not null).
        if !o.is_null()
            && unsafe { core::slice::from_raw_parts(*o, 200) }
                .iter()
                .any(|&b| b != 0xc7)
        {
            sh.errors[me].fetch_add(1, Ordering::Relaxed);
        }
    }
    for &o in objs.iter().filter(|o| !o.is_null()) {
        // SAFETY: allocated from `c` above, freed once.
        unsafe { kmem_cache_free(c, o) };
    }
    // SAFETY: the one reference, taken above; every object went back.
    unsafe { kmem_cache_destroy(c) };
}

/// Cache churn (on_each_cpu's function): even CPUs create, use and destroy caches while odd
/// ones run kmem_cache_shrink_all() over the cache list, `CHURN` times each.
fn churn(info: usize) {
    // SAFETY: `info` is the address of the static SHARED (kernel_init passes it).
    let sh = unsafe { &*(info as *const Shared) };
    let me = smp_processor_id();
    for _ in 0..CHURN {
        if me.is_multiple_of(2) {
            cache_lifetime(sh, me);
        } else {
            kmem_cache_shrink_all();
        }
        sh.ops[me].fetch_add(1, Ordering::Relaxed);
    }
}

/// Rounds of [`churn`] per CPU.
const CHURN: usize = 64;

/// One of the operations Linux runs beside the allocations, on this CPU.
fn maintenance(sh: &Shared, which: usize) {
    let me = smp_processor_id();
    let pa = page_alloc().expect("buddy");
    match which {
        0 => pa.drain_all_pages(None),
        1 => pa.drain_local_pages(None),
        2 => {
            kmem_cache_shrink_all();
        }
        3 => purge_vmap_area_lazy(),
        6 => cache_lifetime(sh, me),
        4 => {
            let mut objs = 0u64;
            for_each_slabinfo(|_, i| objs += i.num_objs);
            let (all, _) = pa
                .zones()
                .filter(|z| z.populated_zone())
                .fold((0, 0), |(a, l), z| {
                    let (za, zl) = pa.zone_pcp_counts(z);
                    (a + za, l + zl)
                });
            if objs == 0 || pa.nr_free_pages() == 0 || all > pa.nr_free_pages() + (1 << 30) {
                sh.errors[me].fetch_add(1, Ordering::Relaxed);
            }
        }
        _ => {
            let mut lines = 0;
            vmallocinfo(&mut |_| lines += 1);
            if vmap_stats().is_err() || lines == 0 {
                sh.errors[me].fetch_add(1, Ordering::Relaxed);
                arm64_mm::pr_err!("smp_stress: CPU{}: vmap trees inconsistent", me);
            }
        }
    }
}

/// NUMA_NO_NODE three times in four, else a random online node.
fn pick_node(rng: &mut Rng) -> i32 {
    let nodes = page_alloc().expect("buddy").nr_online_nodes() as usize;
    if rng.below(4) == 0 {
        rng.below(nodes) as i32
    } else {
        -1
    }
}

/// The worker every CPU runs (on_each_cpu's function; `info` is `&SHARED`).
fn worker(info: usize) {
    // SAFETY: `info` is the address of the static SHARED (kernel_init passes it).
    let sh = unsafe { &*(info as *const Shared) };
    let me = smp_processor_id();
    let pa = page_alloc().expect("buddy");
    let run = sh.run.load(Ordering::Relaxed);
    let mut rng =
        Rng(0x9e37_79b9_7f4a_7c15 ^ (me as u64 + 1) << 32 ^ run.wrapping_mul(0x1234_5679));
    let mut seq = 0u64;
    let mut slots = [[Obj::NONE; SLOTS]; 5];
    let tight = sh.tight.load(Ordering::Relaxed);
    let fail = |what: &str, n: usize| {
        sh.alloc_failures[me].fetch_add(1, Ordering::Relaxed);
        if !tight {
            arm64_mm::pr_err!("smp_stress: CPU{}: {}({}) failed", me, what, n);
        }
    };
    // Failures are counted (and must not happen unless memory is tight): no warnings.
    let gfp = GFP_KERNEL | __GFP_NOWARN;
    for round in 0..sh.rounds.load(Ordering::Relaxed) {
        if DO_PAGES {
            let order = if rng.below(16) == 0 {
                4 + rng.below(3)
            } else {
                rng.below(4)
            };
            seq += 1;
            // One in four on a node named (this one or another: __alloc_pages' remote
            // zonelist), the rest on this CPU's node.
            let nid = pick_node(&mut rng);
            match pa
                .alloc_pages_node(nid, gfp, order as u32)
                .map(|p| pa.page_address(p))
            {
                Some(va) => {
                    let o = Obj {
                        kind: Kind::Pages,
                        addr: va.as_u64() as usize,
                        n: order,
                        tag: tag_of(me, seq),
                        pages: [0; 8],
                    };
                    fill(o.addr, o.bytes(), o.tag);
                    keep_or_post(sh, &mut rng, &mut slots[0], o);
                }
                None => fail("__get_free_pages", order),
            }
        }
        if DO_KMALLOC {
            for _ in 0..2 {
                let size = KMALLOC_SIZES[rng.below(KMALLOC_SIZES.len())];
                seq += 1;
                // kmalloc_node for a named node: SLUB's node_match/deactivate path.
                let nid = pick_node(&mut rng);
                let p = if nid < 0 {
                    kmalloc(size, gfp)
                } else {
                    slub().expect("slab").kmalloc_node(size, gfp, nid)
                };
                if p.is_null() {
                    fail("kmalloc", size);
                    continue;
                }
                let o = Obj {
                    kind: Kind::Kmalloc,
                    addr: p as usize,
                    n: size,
                    tag: tag_of(me, seq),
                    pages: [0; 8],
                };
                fill(o.addr, o.bytes(), o.tag);
                keep_or_post(sh, &mut rng, &mut slots[1], o);
            }
        }
        let vmalloc_ok = !tight || TIGHT_VMALLOC;
        if DO_VMALLOC && vmalloc_ok && round % 4 == me % 4 {
            let n = 1 + rng.below(4);
            seq += 1;
            match vmalloc(n as u64 * 4096) {
                Some(va) => {
                    let o = Obj {
                        kind: Kind::Vmalloc,
                        addr: va.as_u64() as usize,
                        n,
                        tag: tag_of(me, seq),
                        pages: [0; 8],
                    };
                    fill(o.addr, o.bytes(), o.tag);
                    keep_or_post(sh, &mut rng, &mut slots[2], o);
                }
                None => fail("vmalloc", n),
            }
        }
        // Every page mapped or unmapped costs two broadcast TLB invalidations today (arch's
        // SwapperTables borrows the FIX_PGD fixmap slot for each walk and gives it back),
        // and under multi-threaded TCG each stops every vCPU: the vmalloc family runs in a
        // share of the rounds only, or the 4-CPU runs would take tens of seconds.
        if DO_VM_MAP_RAM && vmalloc_ok && round % 2 == 1 {
            let used = sh.vb_used[me].load(Ordering::Relaxed) as usize;
            let fits = VM_SIZES.iter().filter(|&&n| used.is_multiple_of(n)).count();
            let n = VM_SIZES[rng.below(fits)];
            seq += 1;
            let mut pages = [0usize; 8];
            let mut ptrs = [NonNull::dangling(); 8];
            let mut got = 0;
            for i in 0..n {
                match pa.alloc_pages(gfp, 0) {
                    Some(p) => {
                        pages[i] = p.as_ptr() as usize;
                        ptrs[i] = p;
                        got += 1;
                    }
                    None => break,
                }
            }
            let va = if got == n {
                vm_map_ram(&ptrs[..n], -1)
            } else {
                None
            };
            if let Some(va) = va {
                sh.vb_used[me].fetch_add(n as u64, Ordering::Relaxed);
                let o = Obj {
                    kind: Kind::VmMapRam,
                    addr: va.as_u64() as usize,
                    n,
                    tag: tag_of(me, seq),
                    pages,
                };
                fill(o.addr, o.bytes(), o.tag);
                keep_or_post(sh, &mut rng, &mut slots[3], o);
            } else {
                fail("vm_map_ram", n);
                for &p in &ptrs[..got] {
                    pa.__free_pages(p, 0);
                }
            }
        }
        if DO_HEAP {
            // Mostly kmalloc sizes with alignments 8..4096; once a run (on one CPU, half way)
            // a block above KMALLOC_MAX_SIZE (4 MiB), which goes to vmalloc.
            let rounds = sh.rounds.load(Ordering::Relaxed);
            let size =
                if vmalloc_ok && round == rounds / 2 && me as u64 == run % num_online_cpus() as u64
                {
                    (4 << 20) + 8 * rng.below(1 << 16)
                } else {
                    8 * (1 + rng.below(2048))
                };
            let align = 8 << rng.below(10);
            seq += 1;
            match heap_alloc(sh, &mut rng, size, align, tag_of(me, seq)) {
                Some(o) => keep_or_post(sh, &mut rng, &mut slots[4], o),
                None => fail("alloc", size),
            }
        }
        if DO_MAINTENANCE && rng.below(MAINT_EVERY) == 0 {
            maintenance(sh, rng.below(7));
        }
        if round % 16 == 0 {
            sh.min_free.fetch_min(pa.nr_free_pages(), Ordering::Relaxed);
        }
        drain_mailbox(sh, me);
    }
    for o in slots.iter().flatten() {
        if o.kind != Kind::None {
            check_and_free(sh, o);
        }
    }
    // Others may still post to this CPU until they all finished their rounds.
    sh.finished.fetch_add(1, Ordering::AcqRel);
    while sh.finished.load(Ordering::Acquire) < num_online_cpus() {
        drain_mailbox(sh, me);
        core::hint::spin_loop();
    }
    drain_mailbox(sh, me);
}

/// Memory pressure (on_each_cpu's function; `info` is `&SHARED`): every CPU takes blocks
/// of orders 0..=3 until the allocator refuses even a page (a refused order lowers the
/// largest it asks for), so the slow path — `drain_all_pages()` of every CPU's lists, then
/// one more try — runs on all CPUs at once, each draining the others' lists while they
/// use them. Each block carries the link to the next, its order and a tag. When every CPU
/// is refused, the last one to get there counts what is free; then each CPU checks and
/// frees the chain of the next CPU (cross-CPU frees into its own pageset).
fn pressure(info: usize) {
    // SAFETY: `info` is the address of the static SHARED (kernel_init passes it).
    let sh = unsafe { &*(info as *const Shared) };
    let me = smp_processor_id();
    let pa = page_alloc().expect("buddy");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (me as u64 + 1) << 24);
    let (mut head, mut held, mut max_order, mut seq) = (0usize, 0u64, 3usize, 0u64);
    loop {
        let order = rng.below(max_order + 1);
        seq += 1;
        let Some(va) = pa.__get_free_pages(GFP_KERNEL | __GFP_NOWARN, order as u32) else {
            if order == 0 {
                break;
            }
            max_order = order - 1;
            continue;
        };
        let p = va.as_u64() as *mut u64;
        // SAFETY: a fresh block of at least a page, ours.
        unsafe {
            p.write_volatile(head as u64);
            p.add(1).write_volatile(order as u64);
            p.add(2).write_volatile(tag_of(me, seq));
            p.add(511).write_volatile(!tag_of(me, seq));
        }
        head = p as usize;
        held += 1 << order;
    }
    sh.chain[me].store(head, Ordering::Relaxed);
    sh.held[me].store(held, Ordering::Relaxed);
    sh.ops[me].store(seq, Ordering::Relaxed);
    // The last CPU refused counts what is free: nobody allocates or frees meanwhile.
    if sh.exhausted.fetch_add(1, Ordering::AcqRel) + 1 == num_online_cpus() {
        let (mut free, mut pcp, mut not_low) = (0, 0, 0);
        for z in pa.zones().filter(|z| z.populated_zone()) {
            let f = z.zone_page_state(NR_FREE_PAGES);
            free += f;
            // Free CMA pages are no use to GFP_KERNEL (__zone_watermark_unusable_free()).
            let usable = f - z.zone_page_state(NR_FREE_CMA_PAGES);
            pcp += pa.zone_pcp_counts(z).0;
            // Refused means below min + the high-atomic reserve + the largest lowmem
            // reserve (__zone_watermark_ok with ALLOC_WMARK_MIN for an order-0 page).
            let reserve = (0..MAX_NR_ZONES)
                .map(|i| z.lowmem_reserve(i))
                .max()
                .unwrap_or(0);
            let limit = z.min_wmark_pages()
                + z.nr_reserved_highatomic.load(Ordering::Relaxed)
                + reserve.max(0) as u64;
            if usable > limit {
                not_low += 1;
                arm64_mm::pr_err!(
                    "smp_stress: node {} zone {}: {} pages free when every CPU was refused (min {}, \
                     limit {})",
                    z.node,
                    z.name(),
                    f,
                    z.min_wmark_pages(),
                    limit
                );
            }
        }
        sh.free_at_exhaustion.store(free, Ordering::Relaxed);
        sh.pcp_at_exhaustion.store(pcp, Ordering::Relaxed);
        sh.zones_not_low.store(not_low, Ordering::Relaxed);
        sh.exhausted.fetch_add(1, Ordering::AcqRel);
    }
    while sh.exhausted.load(Ordering::Acquire) <= num_online_cpus() {
        core::hint::spin_loop();
    }
    // Free the next online CPU's chain.
    let n = nr_cpu_ids().min(MAX_CPUS);
    let other = (1..=n)
        .map(|i| (me + i) % n)
        .find(|&c| cpu_online(c))
        .unwrap_or(me);
    let mut p = sh.chain[other].swap(0, Ordering::AcqRel) as *mut u64;
    while !p.is_null() {
        // SAFETY: a block of `other`'s chain, which it no longer touches.
        let (next, order, tag, last) = unsafe {
            (
                p.read_volatile() as usize,
                p.add(1).read_volatile() as usize,
                p.add(2).read_volatile(),
                p.add(511).read_volatile(),
            )
        };
        if order > 3 || tag_cpu(tag) != other || last != !tag {
            sh.errors[me].fetch_add(1, Ordering::Relaxed);
            arm64_mm::pr_err!(
                "smp_stress: CPU{}: block {:p} of CPU{} lost its tag",
                me,
                p,
                other
            );
            break;
        }
        pa.free_pages(arm64_mm::mm::VirtAddr(p as u64), order as u32);
        sh.remote_frees[me].fetch_add(1, Ordering::Relaxed);
        p = next as *mut u64;
    }
}

// ---------------------------------------------------------------------------------------------
// The state that must come back.

const MAX_ZONES: usize = 32;
const MAX_CACHES: usize = 128;
const MAX_NODES: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq)]
struct CacheCount {
    name: &'static str,
    active: u64,
    total: u64,
}

struct State {
    zones: [i64; MAX_ZONES],
    nr_zones: usize,
    caches: [CacheCount; MAX_CACHES],
    nr_caches: usize,
    /// The vmap area set: busy/free/purge counts and bytes, the largest free block; an
    /// FNV-1a hash over vmallocinfo's lines but the vmap blocks' (`vm_map_ram`), with their
    /// number; the vmap blocks (vmallocinfo's and nr_vmap_blocks()'s count), and how many
    /// there must be (CPUs whose last block has room, by `vb_used`).
    vmap: [u64; 7],
    vmap_hash: u64,
    vmap_lines: usize,
    block_lines: usize,
    blocks: usize,
    blocks_expected: usize,
    tables: u64,
    /// Each zone's node.
    zone_node: [i32; MAX_ZONES],
    /// Pages in the vmap_area cache's slabs, per node.
    vmap_area_pages: [u64; MAX_NODES],
}

fn quiesce() {
    kmem_cache_shrink_all();
    purge_vmap_area_lazy();
    // The purge freed vmap_area objects: shrink again, then give back every cached page.
    kmem_cache_shrink_all();
    page_alloc().expect("buddy").drain_all_pages(None);
}

fn snapshot() -> State {
    quiesce();
    let pa = page_alloc().expect("buddy");
    let mut s = State {
        zones: [0; MAX_ZONES],
        nr_zones: 0,
        caches: [CacheCount {
            name: "",
            active: 0,
            total: 0,
        }; MAX_CACHES],
        nr_caches: 0,
        vmap: [0; 7],
        vmap_hash: 0xcbf2_9ce4_8422_2325,
        vmap_lines: 0,
        block_lines: 0,
        blocks: nr_vmap_blocks(),
        blocks_expected: (0..MAX_CPUS)
            .filter(|&c| {
                !SHARED.vb_used[c]
                    .load(Ordering::Relaxed)
                    .is_multiple_of(VMAP_BBMAP_BITS)
            })
            .count(),
        tables: PAGES_FOR_TABLES.load(Ordering::Relaxed),
        zone_node: [0; MAX_ZONES],
        vmap_area_pages: [0; MAX_NODES],
    };
    kmem_cache_node_pages("vmap_area", &mut s.vmap_area_pages);
    for z in pa.zones() {
        s.zones[s.nr_zones] = z.vm_stat[NR_FREE_PAGES].load(Ordering::Relaxed);
        s.zone_node[s.nr_zones] = z.node;
        s.nr_zones += 1;
    }
    for_each_slabinfo(|name, info| {
        if s.nr_caches < MAX_CACHES {
            // The names are the caches' own 'static names; compare by content.
            // SAFETY: KmemCache::name is &'static str; the callback only lends it.
            let name: &'static str = unsafe { &*(name as *const str) };
            s.caches[s.nr_caches] = CacheCount {
                name,
                active: info.active_objs,
                total: info.num_objs,
            };
            s.nr_caches += 1;
        }
    });
    let st = vmap_stats().expect("vmap trees consistent");
    s.vmap = [
        st.nr_busy as u64,
        st.nr_free as u64,
        st.nr_purge as u64,
        st.busy_bytes,
        st.free_bytes,
        st.purge_bytes,
        st.largest_free,
    ];
    let (mut h, mut n, mut blocks) = (s.vmap_hash, 0, 0);
    vmallocinfo(&mut |line: &str| {
        if line.ends_with(" vm_map_ram") {
            blocks += 1;
            return;
        }
        for b in line.bytes().chain(core::iter::once(b'\n')) {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        n += 1;
    });
    s.vmap_hash = h;
    s.vmap_lines = n;
    s.block_lines = blocks;
    s
}

fn compare(before: &State, after: &State, what: &str) {
    let pa = page_alloc().expect("buddy");
    // Two kinds of pages may legitimately differ, and are counted: page-table pages made
    // for the vmalloc range (they stay, as in Linux; how far up the range a run reaches
    // depends on how the CPUs interleave), and the vmap_area cache's slabs (the vmap_area
    // nodes that outlive a run, the free tree's, are re-made as areas split and merge, and
    // may sit in other slabs, on other nodes, than before). Node by node, the free pages
    // plus the vmap_area slab pages may only have lost page-table pages, and all of those
    // together are the page-table pages added: every other page is back on its node.
    let tables = after.tables as i64 - before.tables as i64;
    let mut missing = [0i64; MAX_NODES];
    for (i, z) in pa
        .zones()
        .enumerate()
        .take(before.nr_zones.min(after.nr_zones))
    {
        let d = after.zones[i] - before.zones[i];
        missing[(z.node as usize).min(MAX_NODES - 1)] -= d;
        if d != 0 {
            arm64_mm::pr_info!(
                "smp_stress: node {} zone {}: {} free pages before, {} after",
                z.node,
                z.name(),
                before.zones[i],
                after.zones[i]
            );
        }
    }
    let mut slabs = 0i64;
    for (n, m) in missing.iter_mut().enumerate() {
        let d = after.vmap_area_pages[n] as i64 - before.vmap_area_pages[n] as i64;
        *m -= d;
        slabs += d;
    }
    let zones_same = before.nr_zones == after.nr_zones
        && before.zone_node == after.zone_node
        && missing.iter().all(|&m| m >= 0)
        && missing.iter().sum::<i64>() == tables;
    check!(
        zones_same,
        "{}: every zone's free pages are what they were ({} zones, {} free pages; {:+} \
         page-table pages, {:+} vmap_area slab pages)",
        what,
        before.nr_zones,
        pa.nr_free_pages(),
        tables,
        slabs
    );
    let mut caches_same = before.nr_caches == after.nr_caches;
    for (b, a) in before.caches[..before.nr_caches]
        .iter()
        .zip(&after.caches[..after.nr_caches])
    {
        // Active objects everywhere, and total objects except the vmap_area cache's (above).
        let same = b.name == a.name
            && (b.name == "vmap_area" || (b.active == a.active && b.total == a.total));
        if !same {
            caches_same = false;
            arm64_mm::pr_err!(
                "smp_stress: {} {}/{} objects before, {} {}/{} after",
                b.name,
                b.active,
                b.total,
                a.name,
                a.active,
                a.total
            );
        }
    }
    check!(
        caches_same,
        "{}: every cache's active and total objects (vmap_area's below) are what they were \
         ({} caches)",
        what,
        before.nr_caches
    );
    // The vmap space. Live vmap blocks may differ (a CPU's current block, with room, stays
    // as in Linux), but exactly as `vb_used` says; each is one busy area of
    // VMAP_BLOCK_SIZE taken from the free space (which they may split: the free areas'
    // number and the largest may differ). Every other area must be what it was, nothing
    // waits to be purged, and the vmap_area objects in use are the areas' nodes plus what
    // there was besides before.
    let blocks_ok = |s: &State| s.blocks == s.blocks_expected && s.block_lines == s.blocks;
    let db = after.blocks as i64 - before.blocks as i64;
    let [busy0, _, purge0, busy_bytes0, free_bytes0, purge_bytes0, _] =
        before.vmap.map(|x| x as i64);
    let [busy1, _, purge1, busy_bytes1, free_bytes1, purge_bytes1, _] =
        after.vmap.map(|x| x as i64);
    let nodes = |s: &State| (s.vmap[0] + s.vmap[1] + s.vmap[2]) as i64;
    let va_active = |s: &State| {
        s.caches[..s.nr_caches]
            .iter()
            .find(|c| c.name == "vmap_area")
            .map_or(-1, |c| c.active as i64)
    };
    let vmap_same = blocks_ok(before)
        && blocks_ok(after)
        && before.vmap_hash == after.vmap_hash
        && before.vmap_lines == after.vmap_lines
        && busy1 == busy0 + db
        && busy_bytes1 == busy_bytes0 + db * VMAP_BLOCK_SIZE as i64
        && free_bytes1 == free_bytes0 - db * VMAP_BLOCK_SIZE as i64
        && purge0 == 0
        && purge1 == 0
        && purge_bytes0 == 0
        && purge_bytes1 == 0
        && va_active(after) - nodes(after) == va_active(before) - nodes(before);
    if !vmap_same {
        arm64_mm::pr_err!(
            "smp_stress: vmap busy/free/purge/busy_bytes/free_bytes/purge_bytes/largest {:?} \
             before, {:?} after; vmap blocks {} ({} expected) before, {} ({} expected) after; \
             vmap_area objects in use {} before, {} after; vmallocinfo now:",
            before.vmap,
            after.vmap,
            before.blocks,
            before.blocks_expected,
            after.blocks,
            after.blocks_expected,
            va_active(before),
            va_active(after)
        );
        vmallocinfo(&mut |l: &str| arm64_mm::pr_err!("  {}", l));
    }
    check!(
        vmap_same,
        "{}: the vmap area set is what it was ({} busy areas, {} of them vmap blocks as \
         expected, {:+})",
        what,
        after.vmap[0],
        after.blocks,
        db
    );
}

/// One run of the workload on every CPU, then its mailboxes checked empty.
fn stress(run: u64) {
    let sh = &SHARED;
    sh.run.store(run, Ordering::Relaxed);
    sh.finished.store(0, Ordering::Relaxed);
    for c in 0..MAX_CPUS {
        sh.ops[c].store(0, Ordering::Relaxed);
        sh.remote_frees[c].store(0, Ordering::Relaxed);
    }
    let t0 = counter();
    on_each_cpu(worker, sh as *const Shared as usize);
    arm64_mm::pr_info!(
        "smp_stress: run {}: {} ms, {} frees",
        run,
        (counter() - t0) * 1000 / frequency(),
        (0..MAX_CPUS)
            .map(|c| sh.ops[c].load(Ordering::Relaxed))
            .sum::<u64>()
    );
    let mut left = 0;
    for c in 0..MAX_CPUS {
        left += sh.mailbox[c].lock().n;
        drain_mailbox(sh, c);
    }
    check!(
        left == 0,
        "run {}: every mailbox was drained by its CPU ({} left)",
        run,
        left
    );
}

// ---------------------------------------------------------------------------------------------
// The cross-call API.

static RAN_ON: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(usize::MAX) }; MAX_CPUS];
static SEQ: AtomicU64 = AtomicU64::new(0);
static ORDER: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
static RELEASE: AtomicBool = AtomicBool::new(false);
static BUSY: AtomicBool = AtomicBool::new(false);

fn record_cpu(slot: usize) {
    RAN_ON[slot].store(smp_processor_id(), Ordering::Release);
}

/// Spin for about `n` loop turns (no call is run meanwhile: the CPU is busy).
fn spin(n: u64) {
    for _ in 0..n {
        core::hint::spin_loop();
    }
}

/// Busy until RELEASE, recording when it ends.
fn busy_call(i: usize) {
    BUSY.store(true, Ordering::Release);
    while !RELEASE.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
    ORDER[i].store(SEQ.fetch_add(1, Ordering::AcqRel) + 1, Ordering::Release);
}

/// A short call that records its turn.
fn ordered_call(i: usize) {
    spin(100_000);
    ORDER[i].store(SEQ.fetch_add(1, Ordering::AcqRel) + 1, Ordering::Release);
}

fn wait_until(f: impl Fn() -> bool) -> bool {
    for _ in 0..200_000_000u64 {
        if f() {
            return true;
        }
        core::hint::spin_loop();
    }
    false
}

fn cross_call_tests() {
    let n = nr_cpu_ids().min(MAX_CPUS);
    // smp_call_function_single runs on the CPU named (this one too), and with wait it has
    // run when it returns.
    let mut all_there = true;
    for cpu in (0..n).filter(|&c| cpu_online(c)) {
        RAN_ON[cpu].store(usize::MAX, Ordering::Relaxed);
        let r = smp_call_function_single(cpu, record_cpu, cpu, true);
        let seen = RAN_ON[cpu].load(Ordering::Acquire);
        all_there &= r.is_ok() && seen == cpu;
        if seen != cpu {
            arm64_mm::pr_err!("smp_stress: a call to CPU{} ran on CPU{}", cpu, seen);
        }
    }
    check!(
        all_there,
        "smp_call_function_single(cpu, wait) ran on each of the {} CPUs before returning",
        num_online_cpus()
    );
    // smp_call_function: every other CPU, not this one.
    for r in RAN_ON.iter() {
        r.store(usize::MAX, Ordering::Relaxed);
    }
    fn record_self(_: usize) {
        let me = smp_processor_id();
        RAN_ON[me].store(me, Ordering::Release);
    }
    smp_call_function(record_self, 0, true);
    let others = (0..n).all(|c| {
        let seen = RAN_ON[c].load(Ordering::Acquire);
        if c == smp_processor_id() || !cpu_online(c) {
            seen == usize::MAX
        } else {
            seen == c
        }
    });
    check!(
        others,
        "smp_call_function(wait) ran on every other online CPU and not on the caller"
    );
    check!(
        smp_call_function_single(n, record_cpu, 0, true).is_err(),
        "a call to CPU{} (not possible) is refused",
        n
    );

    // Without wait the call returns first; a busy CPU runs the next call after.
    RELEASE.store(false, Ordering::Relaxed);
    BUSY.store(false, Ordering::Relaxed);
    for o in ORDER.iter() {
        o.store(0, Ordering::Relaxed);
    }
    SEQ.store(0, Ordering::Relaxed);
    let _ = smp_call_function_single(1, busy_call, 0, false);
    let started = wait_until(|| BUSY.load(Ordering::Acquire));
    check!(
        started && ORDER[0].load(Ordering::Acquire) == 0,
        "smp_call_function_single(1, no wait) returned while CPU1 is still running it"
    );
    let _ = smp_call_function_single(1, ordered_call, 1, false);
    spin(2_000_000);
    check!(
        ORDER[1].load(Ordering::Acquire) == 0,
        "a call to CPU1 while it is busy waits for what it is busy with"
    );
    RELEASE.store(true, Ordering::Release);
    let _ = smp_call_function_single(1, ordered_call, 2, true);
    let (a, b, c) = (
        ORDER[0].load(Ordering::Acquire),
        ORDER[1].load(Ordering::Acquire),
        ORDER[2].load(Ordering::Acquire),
    );
    check!(
        a == 1 && b == 2 && c == 3,
        "CPU1 ran its calls in order: busy {}, queued {}, then the waited-for {}",
        a,
        b,
        c
    );
    // Two CPUs calling each other with wait (each runs its own slot while it waits).
    if n >= 3 && cpu_online(2) {
        fn call_back(to: usize) {
            let _ = smp_call_function_single(to, record_cpu, to, true);
        }
        RAN_ON[0].store(usize::MAX, Ordering::Relaxed);
        RAN_ON[2].store(usize::MAX, Ordering::Relaxed);
        // CPU2 calls CPU0 back (with wait) while CPU0 waits for CPU2.
        let r = smp_call_function_single(2, call_back, 0, true);
        check!(
            r.is_ok() && RAN_ON[0].load(Ordering::Acquire) == 0,
            "CPU0 waiting for CPU2 ran CPU2's call back to CPU0 meanwhile"
        );
    }
}

/// Pages the hog leaves free above the zones' min watermarks in [`tight_memory`].
const TIGHT_SLACK: u64 = 1024;

/// The workload again with memory nearly gone: CPU 0 takes all but [`TIGHT_SLACK`] pages
/// above the min watermarks, then every CPU runs the worker, so allocations fail here and
/// there — SLUB's new_slab failing under a CPU's lock, the slow path draining the other
/// CPUs' lists (and, with [`TIGHT_VMALLOC`], partial vmalloc failures unwinding) — while
/// the others go on. What failed is counted; patterns must hold, and once the hog lets go
/// everything must be back.
fn tight_memory(before: &State) {
    let sh = &SHARED;
    let pa = page_alloc().expect("buddy");
    pa.drain_all_pages(None);
    let min: u64 = pa.zones().map(|z| z.min_wmark_pages()).sum();
    // What GFP_KERNEL can have: free CMA pages are for movable allocations only.
    let usable = || {
        pa.nr_free_pages()
            - pa.zones()
                .map(|z| z.zone_page_state(NR_FREE_CMA_PAGES))
                .sum::<u64>()
    };
    let (mut head, mut hog, mut order) = (0usize, 0u64, 9u32);
    while usable() > min + TIGHT_SLACK {
        let room = usable() - min - TIGHT_SLACK;
        while order > 0 && (1u64 << order) > room {
            order -= 1;
        }
        let Some(va) = pa.__get_free_pages(GFP_KERNEL | __GFP_NOWARN, order) else {
            if order == 0 {
                break;
            }
            order -= 1;
            continue;
        };
        let p = va.as_u64() as *mut u64;
        // SAFETY: a fresh block, ours: its first words link the chain.
        unsafe {
            p.write_volatile(head as u64);
            p.add(1).write_volatile(order as u64);
        }
        head = p as usize;
        hog += 1 << order;
    }
    arm64_mm::pr_info!(
        "smp_stress: tight: {} pages taken, {} free (min watermarks {})",
        hog,
        pa.nr_free_pages(),
        min
    );
    for c in 0..MAX_CPUS {
        sh.alloc_failures[c].store(0, Ordering::Relaxed);
        sh.errors[c].store(0, Ordering::Relaxed);
    }
    sh.tight.store(true, Ordering::Relaxed);
    stress(10);
    sh.tight.store(false, Ordering::Relaxed);
    let failures: u64 = (0..MAX_CPUS)
        .map(|c| sh.alloc_failures[c].load(Ordering::Relaxed))
        .sum();
    let errors: u64 = (0..MAX_CPUS)
        .map(|c| sh.errors[c].load(Ordering::Relaxed))
        .sum();
    let ops: u64 = (0..MAX_CPUS)
        .map(|c| sh.ops[c].load(Ordering::Relaxed))
        .sum();
    while head != 0 {
        let p = head as *mut u64;
        // SAFETY: a block of the chain built above.
        let (next, order) = unsafe { (p.read_volatile() as usize, p.add(1).read_volatile()) };
        pa.free_pages(arm64_mm::mm::VirtAddr(p as u64), order as u32);
        head = next;
    }
    check!(
        errors == 0 && ops > 0,
        "tight: every pattern held ({} errors, {} frees, {} allocations refused)",
        errors,
        ops,
        failures
    );
    let after = snapshot();
    compare(before, &after, "tight");
}

/// `NAME=N` from the command line (`NAME` given with its `=`).
fn param(name: &str) -> Option<usize> {
    boot_command_line()
        .split_whitespace()
        .find_map(|a| a.strip_prefix(name))
        .and_then(|v| v.parse::<usize>().ok())
}

#[no_mangle]
pub fn kernel_init() -> ! {
    let cpus = num_online_cpus();
    arm64_mm::pr_info!("smp_stress: {} CPUs", cpus);
    check!(
        cpus >= 2 && nr_cpu_ids() <= MAX_CPUS,
        "{} CPUs online ({} possible, the test handles {})",
        cpus,
        nr_cpu_ids(),
        MAX_CPUS
    );
    let scale = param("smp_stress.scale=").unwrap_or(1).max(1);
    SHARED
        .rounds
        .store(scale * ROUNDS / cpus.max(1), Ordering::Relaxed);
    cross_call_tests();

    // Warm-up: the per-CPU structures, slabs and vmalloc page tables the workload needs
    // come into being here, so the measured runs must give back exactly what they took.
    stress(0);
    let before = snapshot();
    let soak = param("smp_stress.soak=").unwrap_or(0);
    let runs = if soak > 0 { u64::MAX } else { RUNS as u64 };
    let (t_soak, free_soak) = (counter(), page_alloc().expect("buddy").nr_free_pages());
    let (mut soak_ops, mut soak_runs, mut leaks) = (0u64, 0u64, 0u64);
    for run in 1..=runs {
        if soak > 0 && (counter() - t_soak) / frequency() >= soak as u64 {
            break;
        }
        stress(run);
        let after = snapshot();
        let sh = &SHARED;
        let online = (0..MAX_CPUS).filter(|&c| cpu_online(c));
        let idle = online
            .clone()
            .filter(|&c| sh.ops[c].load(Ordering::Relaxed) == 0)
            .count();
        let ops: u64 = online
            .clone()
            .map(|c| sh.ops[c].load(Ordering::Relaxed))
            .sum();
        let remote: u64 = online
            .clone()
            .map(|c| sh.remote_frees[c].load(Ordering::Relaxed))
            .sum();
        let errors: u64 = (0..MAX_CPUS)
            .map(|c| sh.errors[c].load(Ordering::Relaxed))
            .sum();
        let failures: u64 = (0..MAX_CPUS)
            .map(|c| sh.alloc_failures[c].load(Ordering::Relaxed))
            .sum();
        check!(
            idle == 0 && ops > 0,
            "run {}: every CPU did work ({} frees in all)",
            run,
            ops
        );
        check!(
            remote > 0
                && online
                    .clone()
                    .all(|c| sh.remote_frees[c].load(Ordering::Relaxed) > 0),
            "run {}: every CPU freed what another allocated ({} cross-CPU frees)",
            run,
            remote
        );
        check!(
            errors == 0 && failures == 0,
            "run {}: every pattern held ({} errors) and every allocation succeeded ({} failed)",
            run,
            errors,
            failures
        );
        let failed = ktest::failed();
        compare(&before, &after, if run == 1 { "run 1" } else { "run 2" });
        leaks += u64::from(ktest::failed() != failed);
        soak_ops += ops;
        soak_runs += 1;
    }
    if soak > 0 {
        let in_use = free_soak.saturating_sub(SHARED.min_free.load(Ordering::Relaxed));
        arm64_mm::pr_info!(
            "smp_stress: soak: {} runs in {} s on {} CPUs, {} allocations freed, peak {} KiB \
             in use, {} runs leaked",
            soak_runs,
            (counter() - t_soak) / frequency(),
            cpus,
            soak_ops,
            in_use * 4,
            leaks
        );
        check!(
            soak_runs > 0 && leaks == 0,
            "soak: {} runs, nothing leaked (every zone, cache and vmap area back after each)",
            soak_runs
        );
    }

    // Memory pressure: every CPU allocates until refused, all at once.
    let sh = &SHARED;
    for c in 0..MAX_CPUS {
        sh.ops[c].store(0, Ordering::Relaxed);
        sh.remote_frees[c].store(0, Ordering::Relaxed);
        sh.held[c].store(0, Ordering::Relaxed);
    }
    page_alloc().expect("buddy").drain_all_pages(None);
    let free0 = page_alloc().expect("buddy").nr_free_pages();
    let t0 = counter();
    on_each_cpu(pressure, sh as *const Shared as usize);
    let ms = (counter() - t0) * 1000 / frequency();
    let online = || (0..MAX_CPUS).filter(|&c| cpu_online(c));
    let held: u64 = online().map(|c| sh.held[c].load(Ordering::Relaxed)).sum();
    let (free, pcp) = (
        sh.free_at_exhaustion.load(Ordering::Relaxed),
        sh.pcp_at_exhaustion.load(Ordering::Relaxed),
    );
    arm64_mm::pr_info!(
        "smp_stress: pressure: {} ms, {} pages held, {} free and {} in per-CPU lists at the end",
        ms,
        held,
        free,
        pcp
    );
    check!(
        online().all(|c| sh.held[c].load(Ordering::Relaxed) > 0),
        "pressure: every CPU got pages until refused ({} pages in all)",
        held
    );
    check!(
        held + free + pcp == free0,
        "pressure: when every CPU was refused, held + free + per-CPU lists = {} + {} + {} = the \
         {} free before",
        held,
        free,
        pcp,
        free0
    );
    check!(
        sh.zones_not_low.load(Ordering::Relaxed) == 0,
        "pressure: no zone was above its min watermark (and reserves) when every CPU was refused"
    );
    check!(
        online().all(|c| sh.remote_frees[c].load(Ordering::Relaxed) > 0)
            && (0..MAX_CPUS).all(|c| sh.chain[c].load(Ordering::Relaxed) == 0)
            && (0..MAX_CPUS)
                .map(|c| sh.errors[c].load(Ordering::Relaxed))
                .sum::<u64>()
                == 0,
        "pressure: each CPU freed another's chain, every block with its tag"
    );
    let after = snapshot();
    compare(&before, &after, "pressure");

    // Caches created and destroyed while others shrink every cache.
    for c in 0..MAX_CPUS {
        sh.ops[c].store(0, Ordering::Relaxed);
        sh.errors[c].store(0, Ordering::Relaxed);
    }
    let t0 = counter();
    on_each_cpu(churn, sh as *const Shared as usize);
    arm64_mm::pr_info!(
        "smp_stress: churn: {} ms",
        (counter() - t0) * 1000 / frequency()
    );
    check!(
        online().all(|c| sh.ops[c].load(Ordering::Relaxed) == CHURN as u64)
            && (0..MAX_CPUS)
                .map(|c| sh.errors[c].load(Ordering::Relaxed))
                .sum::<u64>()
                == 0,
        "churn: {} caches created, used and destroyed per even CPU while the odd ones shrank \
         every cache as often",
        CHURN
    );
    let after = snapshot();
    compare(&before, &after, "churn");

    tight_memory(&before);

    let left = smp_send_stop(true);
    check!(
        left == 0 && num_online_cpus() == 1,
        "smp_send_stop(true) stopped every other CPU ({} left, {} online)",
        left,
        num_online_cpus()
    );
    ktest::finish()
}
