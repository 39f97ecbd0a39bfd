//! Host benchmarks (criterion) of the allocator cores against what a Rust kernel would use
//! instead: `scripts/bench host`, or
//! `cargo bench --target x86_64-unknown-linux-gnu --no-default-features --features testing
//! --bench alloc`.
//!
//! Page frames: our buddy (`PageAlloc` with its per-CPU lists, over `mm::testing`'s
//! simulated 256 MiB machine) against `buddy_system_allocator::FrameAllocator` and, for
//! order 0, a plain array stack of free frames (the floor). Bytes: our kmalloc (SLUB over
//! that buddy, told the machine's one bank is a linear map, as the kernel's is) against `buddy_system_allocator::Heap`, `linked_list_allocator::Heap` and
//! `talc` (each over a 64 MiB arena), with the system allocator and `mimalloc` as the bar.
//!
//! Every implementation runs the same scripted workload (sizes, orders and free orders drawn
//! once from a fixed seed): one benchmark iteration is [`OPS`] operations, an operation
//! being one allocation and one free.
//! - `hot`: allocate and free the same size again and again;
//! - `lifo`, `fifo`, `random`: [`OPS`] allocations, then their frees in reverse, the same,
//!   or a random order;
//! - `mixed-random`: as `random` with mixed sizes (orders 0–3; 8 B to 2 KiB);
//! - `steady-mixed`: [`OPS`] live blocks of mixed sizes; each operation frees a random one
//!   and allocates a new one of a random size in its place.
use arm64_mm::mm::gfp::GFP_KERNEL;
use arm64_mm::mm::page_alloc::PageAlloc;
use arm64_mm::mm::slub::{LinearMap, SlubAllocator, SlubParams};
use arm64_mm::mm::testing::{__va, Machine, Rng, SlubMachine};
use arm64_mm::mm::{Pfn, PhysAddr};
use criterion::{black_box, Criterion};
use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::NonNull;

/// Operations per benchmark iteration (scripts/bench host divides by it).
const OPS: usize = 1024;
const PAGE: usize = 4096;

/// A page-frame allocator: frames of `1 << order` pages, named by an address.
trait Frames {
    fn alloc(&mut self, order: u32) -> usize;
    fn free(&mut self, frame: usize, order: u32);
}

/// A byte allocator.
trait Bytes {
    fn alloc(&mut self, size: usize) -> *mut u8;
    fn free(&mut self, p: *mut u8, size: usize);
}

struct Ours(&'static PageAlloc<'static>);
impl Frames for Ours {
    fn alloc(&mut self, order: u32) -> usize {
        self.0
            .alloc_pages(GFP_KERNEL, order)
            .expect("the simulated machine has room")
            .as_ptr() as usize
    }
    fn free(&mut self, frame: usize, order: u32) {
        self.0
            .__free_pages(NonNull::new(frame as *mut _).unwrap(), order);
    }
}

struct BsaFrames(buddy_system_allocator::FrameAllocator<32>);
impl Frames for BsaFrames {
    fn alloc(&mut self, order: u32) -> usize {
        self.0.alloc(1 << order).expect("room")
    }
    fn free(&mut self, frame: usize, order: u32) {
        self.0.dealloc(frame, 1 << order);
    }
}

/// The floor for order 0: a stack of free frame numbers.
struct ArrayStack(Vec<usize>);
impl Frames for ArrayStack {
    fn alloc(&mut self, order: u32) -> usize {
        debug_assert_eq!(order, 0);
        self.0.pop().expect("room")
    }
    fn free(&mut self, frame: usize, _order: u32) {
        self.0.push(frame);
    }
}

struct Kmalloc(&'static SlubAllocator<'static>);
impl Bytes for Kmalloc {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        self.0.kmalloc(size, GFP_KERNEL)
    }
    fn free(&mut self, p: *mut u8, _size: usize) {
        // SAFETY: `p` came from kmalloc and is freed once.
        unsafe { self.0.kfree(p) }
    }
}

fn layout(size: usize) -> Layout {
    // kmalloc's alignment for these sizes: the size's power of two, at most 8 (ARCH_KMALLOC_MINALIGN).
    Layout::from_size_align(size, 8).unwrap()
}

/// A 64 MiB arena for the arena allocators (leaked: the benchmarks run once a process).
fn arena() -> &'static mut [u8] {
    Vec::leak(vec![0u8; 64 << 20])
}

struct BsaHeap(buddy_system_allocator::Heap<32>);
impl Bytes for BsaHeap {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        self.0.alloc(layout(size)).expect("room").as_ptr()
    }
    fn free(&mut self, p: *mut u8, size: usize) {
        // SAFETY: allocated by this heap with the same layout.
        unsafe { self.0.dealloc(NonNull::new(p).unwrap(), layout(size)) }
    }
}

struct LinkedList(linked_list_allocator::Heap);
impl Bytes for LinkedList {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        self.0
            .allocate_first_fit(layout(size))
            .expect("room")
            .as_ptr()
    }
    fn free(&mut self, p: *mut u8, size: usize) {
        // SAFETY: allocated by this heap with the same layout.
        unsafe { self.0.deallocate(NonNull::new(p).unwrap(), layout(size)) }
    }
}

struct Talc(talc::Talc<talc::ErrOnOom>);
impl Bytes for Talc {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        // SAFETY: a non-zero layout.
        unsafe { self.0.malloc(layout(size)) }
            .expect("room")
            .as_ptr()
    }
    fn free(&mut self, p: *mut u8, size: usize) {
        // SAFETY: allocated by this Talc with the same layout.
        unsafe { self.0.free(NonNull::new(p).unwrap(), layout(size)) }
    }
}

struct Global<A: GlobalAlloc>(A);
impl<A: GlobalAlloc> Bytes for Global<A> {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        // SAFETY: a non-zero layout.
        unsafe { self.0.alloc(layout(size)) }
    }
    fn free(&mut self, p: *mut u8, size: usize) {
        // SAFETY: allocated by this allocator with the same layout.
        unsafe { self.0.dealloc(p, layout(size)) }
    }
}

/// One scripted workload: what to allocate, and in which order to free.
struct Script {
    /// Sizes (bytes) or orders (pages), one per allocation.
    sizes: Vec<usize>,
    /// The order of the frees: indices into the live blocks.
    frees: Vec<usize>,
    /// steady-mixed: the sizes of the blocks live before the first operation.
    pool: Vec<usize>,
}

#[derive(Clone, Copy, PartialEq)]
enum Pattern {
    Hot,
    Lifo,
    Fifo,
    Random,
    MixedRandom,
    SteadyMixed,
}

const PATTERNS: [(Pattern, &str); 6] = [
    (Pattern::Hot, "hot"),
    (Pattern::Lifo, "lifo"),
    (Pattern::Fifo, "fifo"),
    (Pattern::Random, "random"),
    (Pattern::MixedRandom, "mixed-random"),
    (Pattern::SteadyMixed, "steady-mixed"),
];

fn shuffled(rng: &mut Rng, n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        v.swap(i, rng.below(i + 1));
    }
    v
}

fn script(p: Pattern, one: usize, mixed: &[usize], seed: u64) -> Script {
    let mut rng = Rng(seed);
    let pick = |rng: &mut Rng| mixed[rng.below(mixed.len())];
    let (sizes, frees, pool) = match p {
        Pattern::Hot => (vec![one; OPS], (0..OPS).collect(), vec![]),
        Pattern::Lifo => (vec![one; OPS], (0..OPS).rev().collect(), vec![]),
        Pattern::Fifo => (vec![one; OPS], (0..OPS).collect(), vec![]),
        Pattern::Random => (vec![one; OPS], shuffled(&mut rng, OPS), vec![]),
        Pattern::MixedRandom => (
            (0..OPS).map(|_| pick(&mut rng)).collect(),
            shuffled(&mut rng, OPS),
            vec![],
        ),
        Pattern::SteadyMixed => (
            (0..OPS).map(|_| pick(&mut rng)).collect(),
            (0..OPS).map(|_| rng.below(OPS)).collect(),
            (0..OPS).map(|_| pick(&mut rng)).collect(),
        ),
    };
    Script { sizes, frees, pool }
}

/// Runs one iteration of `s` (pattern `p`) with alloc/free closures over `live`.
fn run(
    p: Pattern,
    s: &Script,
    live: &mut Vec<(usize, usize)>,
    alloc: &mut impl FnMut(usize) -> usize,
    free: &mut impl FnMut(usize, usize),
) {
    match p {
        Pattern::Hot => {
            for &sz in &s.sizes {
                let a = alloc(sz);
                free(black_box(a), sz);
            }
        }
        Pattern::SteadyMixed => {
            for (i, &sz) in s.sizes.iter().enumerate() {
                let slot = s.frees[i];
                let (a, old) = live[slot];
                free(a, old);
                live[slot] = (alloc(sz), sz);
            }
        }
        _ => {
            live.clear();
            for &sz in &s.sizes {
                live.push((alloc(sz), sz));
            }
            for &i in &s.frees {
                let (a, sz) = live[i];
                free(a, sz);
            }
        }
    }
}

fn bench_frames(c: &mut Criterion, pa: &'static PageAlloc<'static>) {
    let mut impls: Vec<(&str, Box<dyn Frames>)> = vec![("ours-buddy", Box::new(Ours(pa)))];
    let mut bsa = buddy_system_allocator::FrameAllocator::<32>::new();
    bsa.add_frame(0x40000, 0x40000 + (256 << 20) / PAGE);
    impls.push(("buddy_system_allocator", Box::new(BsaFrames(bsa))));
    impls.push((
        "array-stack",
        Box::new(ArrayStack((0x40000..0x40000 + 65536).rev().collect())),
    ));
    let mixed = [0usize, 0, 0, 0, 1, 1, 2, 3];
    for (p, pname) in PATTERNS {
        let s = script(p, 0, &mixed, 0x5eed_0001);
        let mut g = c.benchmark_group(format!("pages/{pname}"));
        for (name, a) in impls.iter_mut() {
            if *name == "array-stack" && matches!(p, Pattern::MixedRandom | Pattern::SteadyMixed) {
                continue;
            }
            let mut live: Vec<(usize, usize)> = Vec::with_capacity(OPS);
            if p == Pattern::SteadyMixed {
                live = s.pool.iter().map(|&o| (a.alloc(o as u32), o)).collect();
            }
            g.bench_function(*name, |b| {
                b.iter(|| {
                    let cell = std::cell::RefCell::new(&mut *a);
                    run(
                        p,
                        &s,
                        &mut live,
                        &mut |o| cell.borrow_mut().alloc(o as u32),
                        &mut |f, o| cell.borrow_mut().free(f, o as u32),
                    )
                })
            });
            if p == Pattern::SteadyMixed {
                for &(f, o) in &live {
                    a.free(f, o as u32);
                }
            }
        }
        g.finish();
    }
}

fn bench_bytes(c: &mut Criterion, slub: &'static SlubAllocator<'static>) {
    let mut impls: Vec<(&str, Box<dyn Bytes>)> = vec![("ours-kmalloc", Box::new(Kmalloc(slub)))];
    let mut h = buddy_system_allocator::Heap::<32>::empty();
    let a = arena();
    // SAFETY: the arena is leaked and given to this heap only.
    unsafe { h.init(a.as_mut_ptr() as usize, a.len()) };
    impls.push(("buddy_system_allocator", Box::new(BsaHeap(h))));
    let a = arena();
    // SAFETY: as above.
    let ll = unsafe { linked_list_allocator::Heap::new(a.as_mut_ptr(), a.len()) };
    impls.push(("linked_list_allocator", Box::new(LinkedList(ll))));
    let mut t = talc::Talc::new(talc::ErrOnOom);
    // SAFETY: as above.
    unsafe { t.claim(talc::Span::from(arena())) }.expect("talc takes the arena");
    impls.push(("talc", Box::new(Talc(t))));
    impls.push(("system", Box::new(Global(System))));
    impls.push(("mimalloc", Box::new(Global(mimalloc::MiMalloc))));
    let mixed = [8usize, 16, 32, 64, 64, 96, 128, 192, 256, 512, 1024, 2048];
    for (p, pname) in PATTERNS {
        let sizes: &[usize] = if matches!(p, Pattern::MixedRandom | Pattern::SteadyMixed) {
            &[0]
        } else {
            &[64, 1024]
        };
        for &one in sizes {
            let s = script(p, one, &mixed, 0x5eed_0002);
            let group = if one == 0 {
                format!("kmalloc/{pname}")
            } else {
                format!("kmalloc/{pname}-{one}")
            };
            let mut g = c.benchmark_group(group);
            for (name, a) in impls.iter_mut() {
                let mut live: Vec<(usize, usize)> = Vec::with_capacity(OPS);
                if p == Pattern::SteadyMixed {
                    live = s.pool.iter().map(|&z| (a.alloc(z) as usize, z)).collect();
                }
                g.bench_function(*name, |b| {
                    b.iter(|| {
                        let cell = std::cell::RefCell::new(&mut *a);
                        run(
                            p,
                            &s,
                            &mut live,
                            &mut |z| cell.borrow_mut().alloc(z) as usize,
                            &mut |q, z| cell.borrow_mut().free(q as *mut u8, z),
                        )
                    })
                });
                if p == Pattern::SteadyMixed {
                    for &(q, z) in &live {
                        a.free(q as *mut u8, z);
                    }
                }
            }
            g.finish();
        }
    }
}

fn main() {
    // One simulated machine per thread (mm::testing): 256 MiB at 0x4000_0000 on node 0, its
    // memory in the buddy, per-CPU lists set up as mm_init leaves them; SLUB over it.
    let mut sim = Machine::from_banks(&[(0x4000_0000, 256 << 20, Some(0))]).buddy();
    sim.free_all();
    sim.pa.setup_per_cpu_pageset(1);
    sim.pa.init_per_zone_wmark_min();
    let pa = sim.pa;
    // The kernel's SLUB finds struct pages by linear-map arithmetic (arm64's virt_to_page);
    // the simulated __va is a per-thread window lookup, so say what the kernel's source says
    // itself: the one bank is one host allocation, its memmap one array.
    let lm = LinearMap {
        start: __va(PhysAddr(0x4000_0000)) as usize,
        size: 256 << 20,
        pages: pa.pfn_to_page(Pfn(0x4000_0000 / PAGE as u64)) as usize,
    };
    // SAFETY: one bank backed by one window (SimRam::back), so __va is affine over it, and
    // the buddy's memmap is one leaked array covering it.
    let params = unsafe { SlubParams::new(1, 1, 0x1234_5678).with_linear_map(lm) };
    let slub: &'static SlubMachine<PageAlloc<'static>> =
        Box::leak(Box::new(SlubMachine::over(pa, params)));
    println!("bench-ops-per-iter={OPS}");
    let mut c = Criterion::default().configure_from_args();
    bench_frames(&mut c, pa);
    bench_bytes(&mut c, &slub.slub);
    c.final_summary();
}
