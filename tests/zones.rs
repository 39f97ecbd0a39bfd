//! bootmem_init: NUMA, the memmap, the zones and the zonelists print exactly what Linux 6.1
//! prints for the same QEMU machine (`expect-linux-lines` compares the memory-management
//! lines of the reference logs in tests/fixtures/linux-6.1, in order), and every struct
//! page of every zone carries that zone and node. Each boot has `loglevel=8`, as the Linux
//! captures had (capture.sh), so the KERN_DEBUG `pcpu-alloc:` lines are compared too. With
//! `--cma`, also the `cma:` lines (where dma_contiguous_reserve() put the CMA area, or why
//! not) and the `Memory:` line's `cma-reserved`. (Both kernels map the linear map with pages
//! by default, rodata=full, whose page tables paging_init() takes from the top of memory
//! before the memmap and the CMA area: with `rodata=on` our area would sit higher.)
#![no_std]
#![no_main]

use arm64_mm::arch::aarch64::kernel::setup::nr_cpu_ids;
use arm64_mm::arch::aarch64::kernel::smp::cpu_number;
use arm64_mm::arch::aarch64::memory::pfn_to_page;
use arm64_mm::arch::aarch64::memory::virt_to_phys;
use arm64_mm::kernel::ktest;
use arm64_mm::kernel::params::boot_command_line;
use arm64_mm::mm::free_area_init::early_pfn_valid;
use arm64_mm::mm::memblock::MEMBLOCK;
use arm64_mm::mm::mmzone::node_data_map;
use arm64_mm::mm::numa::{cpu_to_node, early_pfn_to_nid};
use arm64_mm::mm::percpu::per_cpu_offset;
use arm64_mm::mm::Pfn;
use arm64_mm::{check, qemu_test};

qemu_test!(
    r#"
run -m 128M --smp 1 --append "test.walk loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/a_128M_smp1.log
run -m 1G --smp 2 --append "test.walk loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/h_1G_smp2.log
run -m 4G --smp 2 --append "loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/c_4G_smp2.log
run -m 4G --smp 2 --numa 2 --append "test.walk loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/f_4G_numa2.log
run -m 4G --smp 2 --append "mem=1G test.walk loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/j_4G_smp2_mem1G.log
run -m 8G --smp 2 --append "loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/i_8G_smp2.log
run -m 16G --smp 2 --append "loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/k_16G_smp2.log
expect-output mm: sparse_init: 128 present sections of 128 MiB, memmap 262144 KiB (64 bytes per page)
run -m 3000M --smp 2 --append "test.walk loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/l_3000M_smp2.log
run -m 2G --smp 2 --numa 2 --append "test.walk loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/m_2G_numa2.log
run -m 4G --smp 2 --append "crashkernel=64M loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/n_4G_smp2_crash64M.log
run -m 4G --smp 4 --numa 4 --append "loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/o_4G_numa4.log
run -m 4G --smp 2 --append "kernelcore=1G test.walk loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/p_4G_smp2_kernelcore1G.log
run -m 4G --smp 2 --numa 2 --append "numa=off loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/q_4G_numa2_numaoff.log
run -m 4G --smp 2 --append "movablecore=512M loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/r_4G_smp2_movablecore512M.log
run -m 1G --smp 4 --append "loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/s_1G_smp4.log
run -m 2G --smp 4 --numa 4 --append "test.walk loglevel=8"
expect-linux-lines --cma tests/fixtures/linux-6.1/x_2G_numa4_smp4.log
run -m 1G --append "mminit_loglevel=1 loglevel=8"
expect-output Node 0, zone      DMA
expect-output         spanned  262144
"#
);

#[no_mangle]
pub fn kernel_init() -> ! {
    let nodes = node_data_map().expect("NODE_DATA published");
    let mut zones = 0;
    let mut managed_total = 0;
    for pgdat in nodes.pgdats() {
        for (idx, zone) in pgdat.node_zones.iter().enumerate() {
            if zone.spanned_pages == 0 {
                continue;
            }
            zones += 1;
            check!(
                zone.present_pages <= zone.spanned_pages,
                "node {} zone {}: present <= spanned",
                pgdat.node_id,
                zone.name()
            );
            let managed = zone
                .managed_pages
                .load(core::sync::atomic::Ordering::Relaxed);
            managed_total += managed;
            // After mem_init, managed pages are what the buddy got: never more than present.
            // (free_area_init's estimate is checked through Linux's "Total pages" line.)
            check!(
                managed <= zone.present_pages && (managed > 0 || zone.present_pages == 0),
                "node {} zone {}: managed {} <= present {}",
                pgdat.node_id,
                zone.name(),
                managed,
                zone.present_pages
            );
            if !boot_command_line().contains("test.walk") {
                continue;
            }
            let mb = MEMBLOCK.lock();
            let (mut bad, mut walked) = (0u64, 0u64);
            for pfn in zone.zone_start_pfn.0..zone.zone_end_pfn().0 {
                let pfn = Pfn(pfn);
                if !early_pfn_valid(&mb, pfn) {
                    continue;
                }
                // SAFETY: the pfn's section holds memory, so sparse_init mapped its page.
                let page = unsafe { &*pfn_to_page(pfn) };
                walked += 1;
                if page.page_zonenum() != idx || page.page_to_nid() != pgdat.node_id {
                    bad += 1;
                }
            }
            check!(
                bad == 0 && walked >= zone.present_pages,
                "node {} zone {}: all {} struct pages carry this zone and node ({} wrong)",
                pgdat.node_id,
                zone.name(),
                walked,
                bad
            );
        }
    }
    check!(
        zones > 0,
        "{} populated zones, {} pages managed",
        zones,
        managed_total
    );

    // setup_per_cpu_areas: each CPU's copy of the static per-CPU image is on its node.
    let mb = MEMBLOCK.lock();
    for cpu in 0..nr_cpu_ids() {
        let va = (&raw const cpu_number as u64).wrapping_add(per_cpu_offset(cpu));
        let pa = virt_to_phys(va as *const u8);
        let nid = early_pfn_to_nid(&mb, pa.pfn_down());
        check!(
            nid == cpu_to_node(cpu) && mb.is_reserved(pa),
            "cpu {}'s per-CPU unit at {:#x} is reserved on node {} (its node: {})",
            cpu,
            pa.as_u64(),
            nid,
            cpu_to_node(cpu)
        );
    }
    drop(mb);
    ktest::finish()
}
