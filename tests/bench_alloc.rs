//! The allocator benchmarks in the guest (`scripts/bench alloc`): the cost of one operation —
//! an allocation and its free — for `alloc_pages`+`__free_pages` of order 0 and 3 (the
//! per-CPU lists) and 9, `kmalloc`+`kfree` of 64 B and 1 KiB on the fast path (steady state:
//! the same object again and again from the CPU slab) and the slow path (batches of
//! [`BATCH`] objects allocated, then all freed: most slabs are new, taken from and given back
//! to the buddy), and `vmalloc`+`vfree` of 64 KiB; on 1 CPU, then on every online CPU at once.
//!
//! The clock is the generic timer; under `-icount shift=0` (as `scripts/bench alloc` runs it)
//! one guest nanosecond is one instruction, so the figures are instructions and repeat. With
//! N CPUs the virtual clock is shared: QEMU runs the vCPUs in turn and the clock advances
//! by one for an instruction on any of them, so the figure printed is the clock's advance
//! from the first CPU's start to the last CPU's end, divided by the operations of all CPUs
//! — the average instructions per operation with N CPUs at work (spinning on a contended
//! lock counts; the vCPUs interleave at QEMU's granularity, not the hardware's).
//!
//! Lines: `bench: NAME cpus=N ops=OPS ns=NS ns/op=X.Y`, then `bench: done`. The QEMU test
//! below runs every benchmark once, briefly, and checks only that each printed its figure.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use arm64_mm::arch::aarch64::kernel::smp_call::on_each_cpu;
use arm64_mm::arch::aarch64::kernel::time::{counter, frequency};
use arm64_mm::arch::aarch64::percpu::smp_processor_id;
use arm64_mm::include::numa::NR_CPUS;
use arm64_mm::kernel::cpu::num_online_cpus;
use arm64_mm::kernel::ktest;
use arm64_mm::kernel::params::{boot_command_line, parse_args, parse_u64};
use arm64_mm::mm::gfp::GFP_KERNEL;
use arm64_mm::mm::page_alloc::page_alloc;
use arm64_mm::mm::slab_common::{kfree, kmalloc};
use arm64_mm::mm::vmalloc::api::{vfree, vmalloc};
use arm64_mm::{check, pr_info, qemu_test};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

qemu_test!(
    r#"
run -m 256M --smp 4 --icount --append "bench.iters=64"
expect-output bench: page-order0 cpus=1 ops=
expect-output bench: page-order3 cpus=1 ops=
expect-output bench: page-order9 cpus=1 ops=
expect-output bench: kmalloc-64-fast cpus=1 ops=
expect-output bench: kmalloc-1k-fast cpus=1 ops=
expect-output bench: kmalloc-64-slow cpus=1 ops=
expect-output bench: kmalloc-1k-slow cpus=1 ops=
expect-output bench: vmalloc-64k cpus=1 ops=
expect-output bench: page-order0 cpus=4 ops=
expect-output bench: kmalloc-1k-slow cpus=4 ops=
expect-output bench: vmalloc-64k cpus=4 ops=
expect-output bench: done
"#
);

/// Objects a slow-path round allocates before freeing them all: 32 slabs of 64 B objects,
/// 64 of 1 KiB ones — far more than SLUB keeps (the CPU slab, the per-CPU partial slabs
/// and min_partial empty ones), so most of each round's slabs come new from the buddy.
const BATCH: usize = 2048;

#[derive(Clone, Copy)]
enum Kind {
    Pages(u32),
    KmallocFast(usize),
    KmallocSlow(usize),
    Vmalloc(u64),
}

struct Bench {
    name: &'static str,
    kind: Kind,
    /// Operations, as a divisor of `bench.iters` (the expensive ones run fewer).
    div: usize,
}

const BENCHES: [Bench; 8] = [
    Bench {
        name: "page-order0",
        kind: Kind::Pages(0),
        div: 1,
    },
    Bench {
        name: "page-order3",
        kind: Kind::Pages(3),
        div: 1,
    },
    Bench {
        name: "page-order9",
        kind: Kind::Pages(9),
        div: 10,
    },
    Bench {
        name: "kmalloc-64-fast",
        kind: Kind::KmallocFast(64),
        div: 1,
    },
    Bench {
        name: "kmalloc-1k-fast",
        kind: Kind::KmallocFast(1024),
        div: 1,
    },
    Bench {
        name: "kmalloc-64-slow",
        kind: Kind::KmallocSlow(64),
        div: 1,
    },
    Bench {
        name: "kmalloc-1k-slow",
        kind: Kind::KmallocSlow(1024),
        div: 1,
    },
    Bench {
        name: "vmalloc-64k",
        kind: Kind::Vmalloc(64 << 10),
        div: 10,
    },
];

/// `n` operations of `kind` on this CPU; false if an allocation failed.
fn work(kind: Kind, n: usize, scratch: &mut Vec<*mut u8>) -> bool {
    match kind {
        Kind::Pages(order) => {
            let pa = page_alloc().expect("buddy");
            for _ in 0..n {
                let Some(p) = pa.alloc_pages(GFP_KERNEL, order) else {
                    return false;
                };
                pa.__free_pages(p, order);
            }
        }
        Kind::KmallocFast(size) => {
            for _ in 0..n {
                let p = kmalloc(size, GFP_KERNEL);
                if p.is_null() {
                    return false;
                }
                // SAFETY: just allocated, freed once.
                unsafe { kfree(p) };
            }
        }
        Kind::KmallocSlow(size) => {
            for _ in 0..n.div_ceil(BATCH) {
                scratch.clear();
                for _ in 0..BATCH {
                    let p = kmalloc(size, GFP_KERNEL);
                    if p.is_null() {
                        return false;
                    }
                    scratch.push(p);
                }
                for &p in scratch.iter() {
                    // SAFETY: allocated above, freed once.
                    unsafe { kfree(p) };
                }
            }
        }
        Kind::Vmalloc(size) => {
            for _ in 0..n {
                let Some(v) = vmalloc(size) else { return false };
                vfree(v.0);
            }
        }
    }
    true
}

/// Operations `work(kind, n)` performs.
fn ops(kind: Kind, n: usize) -> usize {
    match kind {
        Kind::KmallocSlow(_) => n.div_ceil(BATCH) * BATCH,
        _ => n,
    }
}

// The run handed to every CPU (on_each_cpu passes one usize: the bench's index).
static ITERS: AtomicUsize = AtomicUsize::new(0);
static ARRIVED: AtomicUsize = AtomicUsize::new(0);
static NCPUS: AtomicUsize = AtomicUsize::new(1);
static FAILED: AtomicBool = AtomicBool::new(false);
static START: [AtomicU64; NR_CPUS] = [const { AtomicU64::new(0) }; NR_CPUS];
static END: [AtomicU64; NR_CPUS] = [const { AtomicU64::new(0) }; NR_CPUS];

fn spin() {
    // SAFETY: a hint: lets single-threaded TCG switch to another vCPU.
    unsafe { core::arch::asm!("yield", options(nomem, nostack, preserves_flags)) };
}

/// One CPU's part: warm up (caches, per-CPU lists, vmap areas), wait for the others, run.
fn on_cpu(idx: usize) {
    let b = &BENCHES[idx];
    let n = (ITERS.load(Ordering::Relaxed) / b.div).max(1);
    let mut scratch: Vec<*mut u8> = Vec::with_capacity(BATCH);
    let ok = work(b.kind, n.min(BATCH), &mut scratch);
    ARRIVED.fetch_add(1, Ordering::AcqRel);
    while ARRIVED.load(Ordering::Acquire) < NCPUS.load(Ordering::Relaxed) {
        spin();
    }
    let cpu = smp_processor_id();
    let t0 = counter();
    let ok = ok && work(b.kind, n, &mut scratch);
    let t1 = counter();
    START[cpu].store(t0, Ordering::Relaxed);
    END[cpu].store(t1, Ordering::Relaxed);
    if !ok {
        FAILED.store(true, Ordering::Relaxed);
    }
}

/// Runs bench `idx` on `ncpus` CPUs (1: this one only); prints and returns (ops, ns).
fn run(idx: usize, ncpus: usize) -> (usize, u64) {
    for c in 0..NR_CPUS {
        START[c].store(u64::MAX, Ordering::Relaxed);
        END[c].store(0, Ordering::Relaxed);
    }
    ARRIVED.store(0, Ordering::Relaxed);
    NCPUS.store(ncpus, Ordering::Relaxed);
    if ncpus == 1 {
        on_cpu(idx);
    } else {
        on_each_cpu(on_cpu, idx);
    }
    let t0 = START
        .iter()
        .map(|s| s.load(Ordering::Relaxed))
        .min()
        .unwrap();
    let t1 = END.iter().map(|e| e.load(Ordering::Relaxed)).max().unwrap();
    let b = &BENCHES[idx];
    let n = (ITERS.load(Ordering::Relaxed) / b.div).max(1);
    let total_ops = ops(b.kind, n) * ncpus;
    let ns = ((t1 - t0) as u128 * 1_000_000_000 / frequency() as u128) as u64;
    let tenths = ns as u128 * 10 / total_ops as u128;
    pr_info!(
        "bench: {} cpus={} ops={} ns={} ns/op={}.{}",
        b.name,
        ncpus,
        total_ops,
        ns,
        tenths / 10,
        tenths % 10
    );
    (total_ops, ns)
}

#[no_mangle]
pub fn kernel_init() -> ! {
    let mut iters = 20_000;
    parse_args(boot_command_line(), |k, v| {
        if k == "bench.iters" {
            if let Some(n) = v.and_then(parse_u64) {
                iters = n as usize;
            }
        }
    });
    ITERS.store(iters.max(1), Ordering::Relaxed);
    let cpus = num_online_cpus();
    pr_info!(
        "bench: iters={} cpus online={} counter {} Hz",
        iters,
        cpus,
        frequency()
    );
    let mut all = true;
    let passes: &[usize] = if cpus > 1 { &[1, cpus] } else { &[1] };
    for &ncpus in passes {
        for idx in 0..BENCHES.len() {
            let (ops, ns) = run(idx, ncpus);
            all &= ops > 0 && ns > 0;
        }
    }
    check!(
        !FAILED.load(Ordering::Relaxed),
        "every allocation of the benchmarks succeeded"
    );
    check!(all, "every benchmark ran and produced a figure");
    pr_info!("bench: done");
    ktest::finish()
}
