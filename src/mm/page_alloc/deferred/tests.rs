//! Host tests of deferred struct-page init (`cargo hosttest`): where memmap_init() stops,
//! and that a deferred boot ends, after page_alloc_init_late(), exactly where a
//! non-deferred boot is — per zone (free and managed pages, free blocks per order and
//! migratetype, every pageblock's migratetype) and per struct page — on machine shapes
//! with one node, several zones, holes, reservations and NUMA nodes (one without CPUs);
//! and that allocations before then grow the initialised part.

use super::*;
use crate::include::mmzone::{MIGRATE_TYPES, ZONE_DMA, ZONE_NORMAL};
use crate::kernel::printk::take_captured;
use crate::mm::free_area_init::PAGES_PER_SECTION;
use crate::mm::gfp::GFP_HIGHUSER_MOVABLE;
use crate::mm::mmzone::NR_FREE_PAGES;
use crate::mm::page_alloc::free_area_snapshot;
use crate::mm::testing::{printed, set_cpu, Backing, Machine, UpToBuddy};
use std::sync::Mutex;

const RAM: u64 = 0x4000_0000;
const MB: u64 = 1 << 20;

/// The CPUs of a host test: CPU `c` on node `cpu_nodes[c]`, each a thread when it works.
struct HostSmp {
    cpu_nodes: Vec<i32>,
    /// The CPU lists run_on was given.
    ran: Mutex<Vec<Vec<usize>>>,
}

impl HostSmp {
    fn new(cpu_nodes: &[i32]) -> Self {
        Self {
            cpu_nodes: cpu_nodes.to_vec(),
            ran: Mutex::new(Vec::new()),
        }
    }
}

impl PadataSmp for HostSmp {
    fn node_cpus(&self, nid: i32, out: &mut [usize]) -> usize {
        let mut n = 0;
        for (c, _) in self.cpu_nodes.iter().enumerate().filter(|(_, &m)| m == nid) {
            out[n] = c;
            n += 1;
        }
        n
    }

    fn online_cpus(&self, out: &mut [usize]) -> usize {
        for (c, o) in out.iter_mut().enumerate().take(self.cpu_nodes.len()) {
            *o = c;
        }
        self.cpu_nodes.len()
    }

    fn run_on(&self, cpus: &[usize], work: &(dyn Fn(usize) + Sync)) {
        self.ran.lock().unwrap().push(cpus.to_vec());
        std::thread::scope(|s| {
            for &c in cpus {
                s.spawn(move || {
                    set_cpu(c);
                    work(c)
                });
            }
        });
    }

    fn jiffies(&self) -> u64 {
        0
    }
}

/// A zone's end state: (node, zone, managed, free, free blocks per order and type,
/// every pageblock's migratetype).
type ZoneState = (
    i32,
    usize,
    u64,
    u64,
    [[u64; MAX_ORDER]; MIGRATE_TYPES],
    Vec<u32>,
);

fn zone_states(sim: &UpToBuddy) -> Vec<ZoneState> {
    let mut v = Vec::new();
    for pgdat in sim.pa.nodes().pgdats() {
        for (zid, z) in pgdat.node_zones.iter().enumerate() {
            if z.spanned_pages == 0 {
                continue;
            }
            let blocks = (z.zone_start_pfn.0..z.zone_end_pfn().0)
                .step_by(crate::include::pageblock_flags::PAGEBLOCK_NR_PAGES as usize)
                .map(|pfn| z.get_pageblock_migratetype(Pfn(pfn)))
                .collect();
            v.push((
                pgdat.node_id,
                zid,
                z.zone_managed_pages(),
                z.zone_page_state(NR_FREE_PAGES),
                free_area_snapshot(z).per_type,
                blocks,
            ));
        }
    }
    v
}

/// Every struct page of the machine's zones, but the list links (which free list a page
/// is on, and where, may differ): flags, mapping, index, private, mapcount, refcount.
fn page_states(sim: &UpToBuddy) -> Vec<(u64, u64, u64, u64, u64, i32, i32)> {
    let (mut lo, mut hi) = (u64::MAX, 0);
    for z in sim.pa.populated_zones() {
        lo = lo.min(z.zone_start_pfn.0);
        hi = hi.max(z.zone_end_pfn().0);
    }
    (lo..hi)
        .map(|pfn| {
            let p = sim.page(pfn);
            (
                pfn,
                p.flags.load(Ordering::Relaxed),
                p.mapping,
                p.index,
                p.private,
                p.page_mapcount_raw(),
                p.page_count(),
            )
        })
        .collect()
}

/// Both boots of `machine`: non-deferred, and deferred up to memblock_free_all().
fn boot_both(machine: impl Fn() -> Machine) -> (UpToBuddy, UpToBuddy) {
    let mut plain = machine().buddy();
    plain.free_all();
    let mut deferred = machine().deferred().buddy();
    deferred.free_all();
    take_captured();
    (plain, deferred)
}

/// The lines page_alloc_init_late() printed, sorted.
fn deferred_lines() -> Vec<String> {
    let mut v: Vec<_> = printed()
        .into_iter()
        .filter(|l| l.contains("deferred pages initialised"))
        .collect();
    v.sort();
    v
}

/// Deferred and plain boots of `machine` end identical; returns the deferred boot's lines.
fn check_same_end_state(machine: impl Fn() -> Machine, cpu_nodes: &[i32]) -> Vec<String> {
    let (plain, deferred) = boot_both(machine);
    let managed = |s: &UpToBuddy| s.pa.zones().map(|z| z.zone_managed_pages()).sum::<u64>();
    let free = |s: &UpToBuddy| s.pa.nr_free_pages();
    // Something was deferred, and every page is counted in totalram all the same.
    assert!(deferred.pa.deferred.active());
    assert!(managed(&deferred) < managed(&plain));
    assert!(free(&deferred) < free(&plain));
    assert_eq!(deferred.pa.totalram_pages(), plain.pa.totalram_pages());
    assert_ne!(zone_states(&deferred), zone_states(&plain));

    let before = managed(&deferred);
    let smp = HostSmp::new(cpu_nodes);
    let n = deferred.pa.page_alloc_init_late(&smp);
    let lines = deferred_lines();
    assert!(!deferred.pa.deferred.active());
    assert_eq!(managed(&deferred), managed(&plain));
    assert_eq!(before + n, managed(&plain));
    assert_eq!(free(&deferred), free(&plain));
    assert_eq!(deferred.pa.totalram_pages(), plain.pa.totalram_pages());
    assert_eq!(zone_states(&deferred), zone_states(&plain));
    assert!(page_states(&deferred) == page_states(&plain));
    // Done: nothing is left for a second call or for growing.
    for pgdat in deferred.pa.nodes().pgdats() {
        assert_eq!(pgdat.first_deferred_pfn.load(Ordering::Relaxed), u64::MAX);
    }
    assert_eq!(deferred.pa.page_alloc_init_late(&smp), 0);
    assert!(deferred_lines().is_empty());
    lines
}

/// One bank of 512 MiB (four sections, all ZONE_DMA), reservations past the first
/// section: a whole pageblock, and a range starting mid-pageblock.
fn one_node() -> Machine {
    Machine::from_banks(&[(RAM, 512 * MB, None)])
        .backed(Backing::Top(16 * MB))
        .reserve(RAM + 300 * MB, 2 * MB)
        .reserve(RAM + 400 * MB + 12 * 4096, 100 * 4096)
}

#[test]
fn one_node_ends_as_a_plain_boot() {
    let lines = check_same_end_state(one_node, &[0, 0]);
    assert_eq!(lines, ["node 0 deferred pages initialised in 0ms"]);
}

/// Two banks with a 256 MiB hole (two sections without memory), ZONE_DMA the first
/// 128 MiB and ZONE_NORMAL the rest: only ZONE_NORMAL defers.
fn holes_and_zones() -> Machine {
    Machine::from_banks(&[(RAM, 256 * MB, None), (RAM + 512 * MB, 256 * MB, None)])
        .backed(Backing::Top(16 * MB))
        .zone_limits([0x48000, 0x48000, 0x70000, 0])
        .reserve(RAM + 600 * MB, 64 * 4096)
}

#[test]
fn holes_and_two_zones_end_as_a_plain_boot() {
    let lines = check_same_end_state(holes_and_zones, &[0]);
    assert_eq!(lines, ["node 0 deferred pages initialised in 0ms"]);
}

#[test]
fn only_the_highest_zone_defers_from_its_second_section() {
    let sim = holes_and_zones().deferred().buddy();
    let pgdat = sim.pa.nodes().get(0).unwrap();
    // ZONE_NORMAL starts at 0x48000: the 0x8000 pages up to the hole are initialised,
    // fewer than a section, so the next bank's first pfn, a section boundary, is where
    // deferral starts (Linux's defer_init() counts initialised pages, not pfns).
    assert_eq!(pgdat.first_deferred_pfn.load(Ordering::Relaxed), 0x60000);
    let normal = &pgdat.node_zones[ZONE_NORMAL];
    assert_eq!(normal.zone_start_pfn.0, 0x48000);
    assert_eq!(sim.page(0x4ffff).page_zonenum(), ZONE_NORMAL);
    assert_eq!(sim.page(0x4ffff).page_count(), 1);
    // Past it: untouched (the scaffold's poison), but its pageblocks are MOVABLE already.
    assert_eq!(sim.page(0x60000).flags.load(Ordering::Relaxed), 0xdead);
    assert_eq!(sim.page(0x6ffff).flags.load(Ordering::Relaxed), 0xdead);
    // The hole's struct pages (of the section the first bank ends in: none here) and the
    // invalid sections are not touched either way.
    assert_eq!(sim.page(0x50000).flags.load(Ordering::Relaxed), 0xdead);
    assert_eq!(
        normal.get_pageblock_migratetype(Pfn(0x60000)),
        crate::include::mmzone::MIGRATE_MOVABLE
    );
    // ZONE_DMA, below, is whole.
    assert_eq!(sim.page(0x47fff).page_zonenum(), ZONE_DMA);
}

#[test]
fn a_range_starting_mid_section_defers_at_the_next_boundary_past_a_section() {
    // 64 MiB into a section: 32768 pages later is mid-section, so deferral waits for the
    // next boundary (Linux's defer_init()).
    let sim = Machine::from_banks(&[(RAM + 64 * MB, 448 * MB, None)])
        .backed(Backing::Top(16 * MB))
        .deferred()
        .buddy();
    let pgdat = sim.pa.nodes().get(0).unwrap();
    assert_eq!(pgdat.first_deferred_pfn.load(Ordering::Relaxed), 0x50000);
    assert_eq!(sim.page(0x4ffff).page_count(), 1);
    assert_eq!(sim.page(0x50000).flags.load(Ordering::Relaxed), 0xdead);
}

#[test]
fn a_one_section_node_defers_nothing_and_prints_nothing() {
    // 128 MiB: the first section is all of it (as Linux's 128M boot, which has no line).
    let mut sim = Machine::from_banks(&[(RAM, 128 * MB, None)])
        .backed(Backing::Top(16 * MB))
        .deferred()
        .buddy();
    sim.free_all();
    let pgdat = sim.pa.nodes().get(0).unwrap();
    assert_eq!(pgdat.first_deferred_pfn.load(Ordering::Relaxed), u64::MAX);
    assert!(!sim.pa.deferred.active());
    take_captured();
    let smp = HostSmp::new(&[0]);
    assert_eq!(sim.pa.page_alloc_init_late(&smp), 0);
    assert!(deferred_lines().is_empty());
    assert!(smp.ran.lock().unwrap().is_empty());
}

/// Three nodes: 512 MiB with CPUs 0 and 1, 256 MiB with CPU 2, 256 MiB without CPUs.
fn three_nodes() -> Machine {
    Machine::fdt(
        &[
            (RAM, 512 * MB, Some(0)),
            (RAM + 512 * MB, 256 * MB, Some(1)),
            (RAM + 768 * MB, 256 * MB, Some(2)),
        ],
        &[Some(0), Some(0), Some(1)],
        &[],
    )
    .backed(Backing::Top(16 * MB))
    .reserve(RAM + 900 * MB, 3 * MB)
}

#[test]
fn numa_nodes_with_and_without_cpus_end_as_a_plain_boot() {
    let (_, deferred) = boot_both(three_nodes);
    for nid in 0..3 {
        let pgdat = deferred.pa.nodes().get(nid).unwrap();
        let start = pgdat.node_start_pfn.0;
        assert_eq!(
            pgdat.first_deferred_pfn.load(Ordering::Relaxed),
            start + PAGES_PER_SECTION,
            "node {nid}"
        );
    }
    let smp = HostSmp::new(&[0, 0, 1]);
    deferred.pa.page_alloc_init_late(&smp);
    // Node 0's job (three sections) on CPUs 0 and 1, node 1's (one section: one worker,
    // as padata's nworks) on CPU 2, CPU-less node 2's on one CPU (0).
    assert_eq!(*smp.ran.lock().unwrap(), [vec![0, 1, 2]]);
    let lines = check_same_end_state(three_nodes, &[0, 0, 1]);
    assert_eq!(
        lines,
        [
            "node 0 deferred pages initialised in 0ms",
            "node 1 deferred pages initialised in 0ms",
            "node 2 deferred pages initialised in 0ms",
        ]
    );
}

#[test]
fn allocations_grow_the_initialised_part_on_demand() {
    let one_gib = || {
        Machine::from_banks(&[(RAM, 1024 * MB, None)])
            .backed(Backing::Top(16 * MB))
            .reserve(RAM + 300 * MB, 2 * MB)
    };
    let (plain, deferred) = boot_both(one_gib);
    let pgdat = deferred.pa.nodes().get(0).unwrap();
    let first = pgdat.first_deferred_pfn.load(Ordering::Relaxed);
    let initialised_free = deferred.pa.nr_free_pages();
    // Movable order-9 blocks (no pageblock changes type) until well past what was
    // initialised: each allocation that finds nothing grows the zone by a section.
    let want = initialised_free + PAGES_PER_SECTION;
    let mut got = Vec::new();
    while (got.len() as u64) << 9 < want {
        let pfn = deferred
            .alloc(GFP_HIGHUSER_MOVABLE, 9)
            .expect("growing the zone finds more pages");
        got.push(pfn);
    }
    let now = pgdat.first_deferred_pfn.load(Ordering::Relaxed);
    assert!(
        now > first && now != u64::MAX,
        "grown to {now:#x} from {first:#x}"
    );
    assert_eq!(now % PAGES_PER_SECTION, 0);
    assert!(got.iter().any(|&p| p >= first));
    // The rest, then everything back: the plain boot's state.
    deferred.pa.page_alloc_init_late(&HostSmp::new(&[0]));
    assert_eq!(
        deferred_lines(),
        ["node 0 deferred pages initialised in 0ms"]
    );
    for pfn in got {
        deferred.free(pfn, 9);
    }
    assert_eq!(zone_states(&deferred), zone_states(&plain));
    assert_eq!(deferred.pa.nr_free_pages(), plain.pa.nr_free_pages());
}

#[test]
fn a_grow_after_deferred_init_does_nothing() {
    let (_, deferred) = boot_both(one_node);
    deferred.pa.page_alloc_init_late(&HostSmp::new(&[0]));
    let z = deferred.zone(0, ZONE_DMA);
    assert!(!deferred.pa._deferred_grow_zone(z, 0));
    assert!(!deferred.pa.deferred_grow_zone(z, 0));
}

#[test]
fn a_hole_inside_a_deferred_section_ends_as_a_plain_boot() {
    // The second bank starts 32 MiB into its section: that hole's struct pages are
    // initialised reserved by memmap_init() even though the section is past the deferral.
    let machine = || {
        Machine::from_banks(&[(RAM, 256 * MB, None), (RAM + 288 * MB, 224 * MB, None)])
            .backed(Backing::Top(16 * MB))
            .reserve(RAM + 500 * MB, 5 * 4096)
    };
    let lines = check_same_end_state(machine, &[0, 0]);
    assert_eq!(lines, ["node 0 deferred pages initialised in 0ms"]);
    let sim = machine().deferred().buddy();
    assert_eq!(
        sim.pa
            .nodes()
            .get(0)
            .unwrap()
            .first_deferred_pfn
            .load(Ordering::Relaxed),
        0x48000
    );
    assert!(sim.page(0x51fff).page_reserved());
    assert_eq!(sim.page(0x52000).flags.load(Ordering::Relaxed), 0xdead);
}

#[test]
fn kernelcore_defers_zone_movable_and_ends_as_a_plain_boot() {
    use crate::include::mmzone::ZONE_MOVABLE;
    use crate::mm::free_area_init::{CoreParam, ZoneMovableParams};
    // kernelcore=256M of 1 GiB: ZONE_MOVABLE (from ZONE_DMA's pages) is the node's highest
    // zone and defers; ZONE_DMA, below it, is initialised whole.
    let machine = || {
        Machine::from_banks(&[(RAM, 1024 * MB, None)])
            .backed(Backing::Top(16 * MB))
            .movable(ZoneMovableParams {
                kernelcore: CoreParam {
                    pages: (256 * MB) >> 12,
                    percent: 0,
                },
                ..ZoneMovableParams::default()
            })
    };
    let sim = machine().deferred().buddy();
    let pgdat = sim.pa.nodes().get(0).unwrap();
    let movable = &pgdat.node_zones[ZONE_MOVABLE];
    assert!(movable.spanned_pages != 0);
    let start = movable.zone_start_pfn.0;
    assert_eq!(
        pgdat.first_deferred_pfn.load(Ordering::Relaxed),
        start + PAGES_PER_SECTION
    );
    assert_eq!(sim.page(start - 1).page_zonenum(), ZONE_DMA);
    assert_eq!(sim.page(start).page_zonenum(), ZONE_MOVABLE);
    let lines = check_same_end_state(machine, &[0, 0]);
    assert_eq!(lines, ["node 0 deferred pages initialised in 0ms"]);
}
