//! Host unit tests of `src/mm/free_area_init.rs` (`cargo hosttest`), on the shared scaffold
//! `mm::testing` (simulated RAM and a machine builder).

use super::*;
use crate::include::mmzone::{MIGRATE_UNMOVABLE, ZONE_DMA, ZONE_NORMAL};
use crate::kernel::printk::take_captured;
use crate::mm::mmzone::{Zoneref, ZONELIST_FALLBACK, ZONELIST_NOFALLBACK};
use crate::mm::testing::fixtures::{A_128M, C_4G, F_NUMA2};
use crate::mm::testing::{Backing, Machine};
use core::sync::atomic::Ordering;

const A_LOG: &str = include_str!("../../../tests/fixtures/linux-6.1/a_128M_smp1.log");
const C_LOG: &str = include_str!("../../../tests/fixtures/linux-6.1/c_4G_smp2.log");
const F_LOG: &str = include_str!("../../../tests/fixtures/linux-6.1/f_4G_numa2.log");

/// The lines these stages print, as Linux does (NODE_DATA addresses excepted: our
/// pg_data_t is smaller and memblock holds fewer reservations).
const PREFIXES: &[&str] = &[
    "NUMA: No NUMA",
    "NUMA: NUMA disabled",
    "NUMA: Faking",
    "OF: NUMA",
    "Zone ranges:",
    "  DMA",
    "  Normal",
    "Movable zone start",
    "  Node ",
    "Early memory node ranges",
    "  node ",
    "Initmem setup",
    "On node",
    "Fallback order",
    "Built ",
    "Policy zone",
];

fn pick(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("[    0.000000] "))
        .filter(|l| PREFIXES.iter().any(|p| l.starts_with(p)))
        .map(String::from)
        .collect()
}

fn node_data_lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter_map(|l| l.strip_prefix("[    0.000000] NUMA: NODE_DATA [mem "))
        .collect()
}

#[test]
fn a_128m_matches_linux() {
    let b = Machine::from_dtb(A_128M).zones();
    assert_eq!(pick(A_LOG).len(), 13);
    assert_eq!(pick(&b.out), pick(A_LOG));
    assert_eq!(b.zl.vm_total_pages, 32256);
    // Linux's NODE_DATA also ends below the top of RAM, where other allocations sit;
    // ours is the first allocation, so it ends at the very top.
    let nd = node_data_lines(&b.out);
    assert_eq!(nd.len(), 1);
    assert!(nd[0].ends_with("-0x47ffffff]"), "{}", nd[0]);
    let dma = &b.nodes.get(0).unwrap().node_zones[ZONE_DMA];
    assert_eq!(
        (dma.zone_start_pfn, dma.spanned_pages, dma.present_pages),
        (Pfn(0x40000), 32768, 32768)
    );
    assert_eq!(dma.zone_managed_pages(), 32768 - 512);
    assert_eq!(b.fai.unavailable_pages, 0);
}

#[test]
fn c_4g_matches_linux() {
    let b = Machine::from_dtb(C_4G).zones();
    assert_eq!(pick(C_LOG).len(), 13);
    assert_eq!(pick(&b.out), pick(C_LOG));
    let pg = b.nodes.get(0).unwrap();
    let sizes: Vec<_> = pg
        .node_zones
        .iter()
        .map(|z| (z.spanned_pages, z.present_pages, z.zone_managed_pages()))
        .collect();
    assert_eq!(
        sizes,
        vec![
            (786432, 786432, 774144),
            (0, 0, 0),
            (262144, 262144, 258048),
            (0, 0, 0)
        ]
    );
    assert_eq!(
        (pg.node_start_pfn, pg.node_spanned_pages, pg.nr_zones),
        (Pfn(0x40000), 1 << 20, 3)
    );
    assert_eq!(b.fai.nr_kernel_pages, 1032192);
    assert_eq!(
        pg.node_zonelists[ZONELIST_FALLBACK].zonerefs(),
        &[
            Zoneref {
                nid: 0,
                zone_idx: 2
            },
            Zoneref {
                nid: 0,
                zone_idx: 0
            }
        ]
    );
    // Every zone with pages has its pageblock bitmap, and memmap_init() marked its
    // pageblocks movable even without a memmap to initialise.
    assert_eq!(
        pg.node_zones[ZONE_NORMAL].pageblock_bitmap().len(),
        512 * 4 / 64
    );
    assert_eq!(
        pg.node_zones[ZONE_NORMAL].get_pageblock_migratetype(Pfn(0x100200)),
        MIGRATE_MOVABLE
    );
}

#[test]
fn f_numa2_matches_linux() {
    let b = Machine::from_dtb(F_NUMA2).zones();
    assert_eq!(pick(F_LOG).len(), 14);
    assert_eq!(pick(&b.out), pick(F_LOG));
    // Node 0's pg_data_t sits at the top of node 0, as Linux's does.
    let nd = node_data_lines(&b.out);
    assert_eq!(nd.len(), 2);
    assert!(nd[0].ends_with("-0xbfffffff]"), "{}", nd[0]);
    assert!(nd[1].ends_with("-0x13fffffff]"), "{}", nd[1]);
    let (n0, n1) = (b.nodes.get(0).unwrap(), b.nodes.get(1).unwrap());
    assert_eq!(n0.node_zones[ZONE_DMA].present_pages, 524288);
    assert_eq!(n1.node_zones[ZONE_DMA].present_pages, 262144);
    assert_eq!(n1.node_zones[ZONE_NORMAL].present_pages, 262144);
    assert_eq!(
        n0.node_zonelists[ZONELIST_FALLBACK].zonerefs(),
        &[
            Zoneref {
                nid: 0,
                zone_idx: 0
            },
            Zoneref {
                nid: 1,
                zone_idx: 2
            },
            Zoneref {
                nid: 1,
                zone_idx: 0
            }
        ]
    );
    assert_eq!(
        n0.node_zonelists[ZONELIST_NOFALLBACK].zonerefs(),
        &[Zoneref {
            nid: 0,
            zone_idx: 0
        }]
    );
    assert_eq!(
        n1.node_zonelists[ZONELIST_FALLBACK].zonerefs()[2],
        Zoneref {
            nid: 0,
            zone_idx: 0
        }
    );
    assert_eq!(b.zl.nr_zonelists, 2);
}

#[test]
fn numa_off_on_the_numa2_machine() {
    let b = Machine::from_dtb(F_NUMA2).numa_off().zones();
    let expected = [
        "NUMA: NUMA disabled",
        "NUMA: Faking a node at [mem 0x0000000040000000-0x000000013fffffff]",
        "Zone ranges:",
        "  DMA      [mem 0x0000000040000000-0x00000000ffffffff]",
        "  DMA32    empty",
        "  Normal   [mem 0x0000000100000000-0x000000013fffffff]",
        "Movable zone start for each node",
        "Early memory node ranges",
        "  node   0: [mem 0x0000000040000000-0x000000013fffffff]",
        "Initmem setup node 0 [mem 0x0000000040000000-0x000000013fffffff]",
        "Fallback order for Node 0: 0 ",
        "Built 1 zonelists, mobility grouping on.  Total pages: 1032192",
        "Policy zone: Normal",
    ];
    assert_eq!(pick(&b.out), expected);
    assert!(b.mb.memory().regions().iter().all(|r| r.nid == 0));
}

fn one_node_fdt(ranges: &[(u64, u64)]) -> Vec<u8> {
    let mems: Vec<(u64, u64, Option<u32>)> = ranges.iter().map(|&(b, s)| (b, s, None)).collect();
    crate::drivers::of::test_builder::numa_machine_fdt(&mems, &[None], &[])
}

/// 8 GiB at 0x4000_0000, no reference log. By Linux's rules: ZONE_DMA is the 32-bit
/// part, [1 GiB, 4 GiB) = 786432 pages; DMA32 is empty because DMA already reaches 4 GiB;
/// Normal is [4 GiB, 9 GiB) = 1310720 pages. Total pages = present minus the memmap
/// estimate, 64 bytes per page: 786432 - 12288 + 1310720 - 20480 = 2064384.
#[test]
fn eight_gib_single_node_by_linuxs_rules() {
    let blob = one_node_fdt(&[(0x4000_0000, 8 << 30)]);
    let b = Machine::from_dtb(&blob).zones();
    let expected = [
        "NUMA: No NUMA configuration found",
        "NUMA: Faking a node at [mem 0x0000000040000000-0x000000023fffffff]",
        "Zone ranges:",
        "  DMA      [mem 0x0000000040000000-0x00000000ffffffff]",
        "  DMA32    empty",
        "  Normal   [mem 0x0000000100000000-0x000000023fffffff]",
        "Movable zone start for each node",
        "Early memory node ranges",
        "  node   0: [mem 0x0000000040000000-0x000000023fffffff]",
        "Initmem setup node 0 [mem 0x0000000040000000-0x000000023fffffff]",
        "Fallback order for Node 0: 0 ",
        "Built 1 zonelists, mobility grouping on.  Total pages: 2064384",
        "Policy zone: Normal",
    ];
    assert_eq!(pick(&b.out), expected);
}

#[test]
fn arm64_zone_limits() {
    let l = zone_sizes_init(
        PhysAddr(0x4000_0000),
        PhysAddr(0x1_4000_0000),
        32,
        Pfn(0x140000),
    );
    assert_eq!(l.max_zone_pfns, [0x100000, 0x100000, 0x140000, 0].map(Pfn));
    assert_eq!(l.arm64_dma_phys_limit, PhysAddr(0x1_0000_0000));
    // dma-ranges reaching only 1 GiB (30 bits): DMA below 1 GiB, DMA32 the rest of 4 GiB.
    assert_eq!(zone_dma_bits(0x3fff_ffff), 30);
    assert_eq!(zone_dma_bits(u64::MAX), 32);
    let l = zone_sizes_init(PhysAddr(0), PhysAddr(0x2_0000_0000), 30, Pfn(0x200000));
    assert_eq!(l.max_zone_pfns, [0x40000, 0x100000, 0x200000, 0].map(Pfn));
    // DRAM starting above the DMA mask: DMA stretches to 4 GiB; above 4 GiB: everything.
    assert_eq!(
        max_zone_phys(30, PhysAddr(0x8000_0000), PhysAddr(0x2_0000_0000)),
        PhysAddr(0x1_0000_0000)
    );
    assert_eq!(
        max_zone_phys(32, PhysAddr(0x8_0000_0000), PhysAddr(0x9_0000_0000)),
        PhysAddr(0x9_0000_0000)
    );
    // 128 MiB: every limit is the end of RAM, so DMA32 and Normal are empty.
    let l = zone_sizes_init(
        PhysAddr(0x4000_0000),
        PhysAddr(0x4800_0000),
        32,
        Pfn(0x48000),
    );
    assert_eq!(l.max_zone_pfns, [0x48000, 0x48000, 0x48000, 0].map(Pfn));
}

#[test]
fn holes_and_unavailable_ranges_with_a_memmap() {
    // Section 8 = [0x4000_0000, 0x4800_0000): a 32 MiB hole inside it (8192 pages,
    // counted); sections 9-11 empty (not valid: not counted); the last range ends 1 MiB
    // before its section's end (256 pages, counted, appended to the last zone).
    let blob = one_node_fdt(&[
        (0x4000_0000, 0x400_0000),
        (0x4600_0000, 0x200_0000),
        (0x6000_0000, 0x7f0_0000),
    ]);
    let mut b = Machine::from_dtb(&blob).with_memmap().zones();
    let picked = pick(&b.out);
    let unavailable: Vec<_> = picked.iter().filter(|l| l.starts_with("On node")).collect();
    assert_eq!(
        unavailable,
        [
            "On node 0, zone DMA: 8192 pages in unavailable ranges",
            "On node 0, zone DMA: 256 pages in unavailable ranges"
        ]
    );
    assert_eq!(b.fai.unavailable_pages, 8448);
    let dma = &b.nodes.get(0).unwrap().node_zones[ZONE_DMA];
    // Spanned 0x40000..0x67f00; present = 16384 + 8192 + 32512.
    assert_eq!((dma.spanned_pages, dma.present_pages), (0x27f00, 57088));
    // Holes are large (spanned > present * 17/16), so the memmap estimate uses present.
    assert_eq!(dma.zone_managed_pages(), 57088 - 892);

    let memmap = Memmap::new(b.memmap.as_mut().unwrap(), Pfn(0x40000));
    // A present page: zone, node, one reference, not reserved.
    let p = memmap.pfn_to_page(Pfn(0x40001));
    assert_eq!(
        (p.page_zonenum(), p.page_to_nid(), p.page_count()),
        (ZONE_DMA, 0, 1)
    );
    assert!(!p.page_reserved());
    // A hole page inside a valid section: initialised and reserved.
    let h = memmap.pfn_to_page(Pfn(0x44000));
    assert!(h.page_reserved() && h.page_count() == 1 && h.page_zonenum() == ZONE_DMA);
    // The tail hole too.
    assert!(memmap.pfn_to_page(Pfn(0x67fff)).page_reserved());
    // Pages of the empty sections are never touched.
    assert_eq!(
        memmap
            .pfn_to_page(Pfn(0x48000))
            .flags
            .load(Ordering::Relaxed),
        0xdead
    );
    // Pageblocks of memory are movable; those of holes stay unmovable.
    assert_eq!(dma.get_pageblock_migratetype(Pfn(0x40000)), MIGRATE_MOVABLE);
    assert_eq!(dma.get_pageblock_migratetype(Pfn(0x461ff)), MIGRATE_MOVABLE);
    assert_eq!(
        dma.get_pageblock_migratetype(Pfn(0x44000)),
        MIGRATE_UNMOVABLE
    );

    // memblock_free_all() later marks reserved ranges.
    let mut memmap = Memmap::new(b.memmap.as_mut().unwrap(), Pfn(0x40000));
    reserve_bootmem_region(
        &b.mb,
        &mut memmap,
        PhysAddr(0x4000_0800),
        PhysAddr(0x4000_2001),
    );
    let r: Vec<bool> = (0x40000..0x40004)
        .map(|p| memmap.pfn_to_page(Pfn(p)).page_reserved())
        .collect();
    assert_eq!(r, [true, true, true, false]);
}

#[test]
fn kernelcore_makes_a_movable_zone() {
    let params = ZoneMovableParams {
        kernelcore: cmdline_parse_core(Some("1G"), CoreParam::default()).unwrap(),
        ..Default::default()
    };
    assert_eq!(
        params.kernelcore,
        CoreParam {
            pages: 262144,
            percent: 0
        }
    );
    let b = Machine::from_dtb(C_4G).movable(params).zones();
    let p = pick(&b.out);
    assert_eq!(p[6], "Movable zone start for each node");
    assert_eq!(p[7], "  Node 0: 0x0000000100000000");
    // All of ZONE_NORMAL became movable; ZONE_DMA alone is kernelcore (more than asked,
    // since memory below the movable zone's floor cannot be movable).
    let z = &b.nodes.get(0).unwrap().node_zones;
    assert_eq!(
        (z[ZONE_NORMAL].spanned_pages, z[ZONE_MOVABLE].spanned_pages),
        (0, 262144)
    );
    assert_eq!(z[ZONE_MOVABLE].zone_start_pfn, Pfn(0x100000));
    assert_eq!(b.zl.vm_total_pages, 1032192);
    assert_eq!(p.last().unwrap(), "Policy zone: DMA");
}

#[test]
fn movablecore_makes_a_movable_zone() {
    let params = ZoneMovableParams {
        movablecore: cmdline_parse_core(Some("512M"), CoreParam::default()).unwrap(),
        ..Default::default()
    };
    let b = Machine::from_dtb(C_4G).movable(params).zones();
    assert!(
        b.out.contains("  Node 0: 0x0000000120000000\n"),
        "{}",
        b.out
    );
    let z = &b.nodes.get(0).unwrap().node_zones;
    assert_eq!(
        (z[ZONE_NORMAL].spanned_pages, z[ZONE_MOVABLE].spanned_pages),
        (131072, 131072)
    );
    assert!(b.out.contains("Policy zone: Normal"));
    // The movable zone heads the fallback list.
    assert_eq!(
        b.nodes.get(0).unwrap().node_zonelists[ZONELIST_FALLBACK].zonerefs()[0],
        Zoneref {
            nid: 0,
            zone_idx: ZONE_MOVABLE as u16
        }
    );
}

#[test]
fn kernelcore_percent_spreads_over_nodes() {
    // 50% of 4 GiB over two 2 GiB nodes: node 0 lies wholly below ZONE_NORMAL, so it is
    // all kernelcore; node 1 already has its share in ZONE_DMA, so its Normal part moves.
    let params = ZoneMovableParams {
        kernelcore: cmdline_parse_core(Some("50%"), CoreParam::default()).unwrap(),
        ..Default::default()
    };
    let b = Machine::from_dtb(F_NUMA2).movable(params).zones();
    let movable: Vec<_> = pick(&b.out)
        .into_iter()
        .filter(|l| l.starts_with("  Node "))
        .collect();
    assert_eq!(movable, ["  Node 1: 0x0000000100000000"]);
    assert_eq!(b.fai.layout.zone_movable_pfn[..2], [0, 0x100000]);
}

#[test]
fn kernelcore_mirror_is_refused_like_linux_without_mirror() {
    let mb = Machine::from_banks(&[(0x4000_0000, 1 << 30, Some(0))])
        .backed(Backing::Top(0))
        .memblock()
        .mb;
    let params = ZoneMovableParams {
        mirrored_kernelcore: true,
        kernelcore: CoreParam {
            pages: 1000,
            percent: 0,
        },
        ..Default::default()
    };
    take_captured();
    let l = zone_layout(&mb, &[0x80000, 0x80000, 0x80000, 0].map(Pfn), &params);
    assert_eq!(l.zone_movable_pfn, [0; NN]);
    assert!(take_captured().contains("The system has no mirror memory, ignore kernelcore=mirror."));
}

#[test]
fn core_params_parse_like_linux() {
    let old = CoreParam {
        pages: 7,
        percent: 0,
    };
    assert_eq!(
        cmdline_parse_core(Some("25%"), old),
        Ok(CoreParam {
            pages: 7,
            percent: 25
        })
    );
    assert_eq!(
        cmdline_parse_core(Some("0x100000"), old),
        Ok(CoreParam {
            pages: 256,
            percent: 0
        })
    );
    assert!(cmdline_parse_core(Some("lots"), old).is_err());
    assert!(cmdline_parse_core(None, old).is_err());
}

#[test]
fn tiny_machine_turns_mobility_grouping_off() {
    // 8 MiB: 2048 pages - 32 of memmap = 2016 < pageblock_nr_pages * MIGRATE_TYPES (3072).
    let blob = one_node_fdt(&[(0x4000_0000, 8 << 20)]);
    let b = Machine::from_dtb(&blob).zones();
    assert!(
        b.out
            .contains("Built 1 zonelists, mobility grouping off.  Total pages: 2016\n"),
        "{}",
        b.out
    );
    assert!(b.zl.mobility_disabled);
}

#[test]
fn memmap_size_estimate() {
    assert_eq!(calc_memmap_size(32768, 32768), 512);
    // Small holes: the span counts; big holes: the present pages do.
    assert_eq!(calc_memmap_size(1000, 990), 16);
    assert_eq!(calc_memmap_size(4096, 1024), 16);
    assert_eq!(
        absent_pages_in_range(&Memblock::new(), MAX_NUMNODES, Pfn(10), Pfn(20)),
        10
    );
}
