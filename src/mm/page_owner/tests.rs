//! Host unit test of `src/mm/page_owner.rs` with `src/mm/page_ext.rs` and the kernel's stack
//! depot: one test, since page_ext, page_owner and the depot are the kernel's globals. The
//! stacks come from a fake `stack_trace_save` that returns what the test sets, so each
//! allocation's owner is known.

use std::cell::RefCell;

use super::*;
use crate::kernel::stackdepot::{stack_depot, stack_depot_early_init};
use crate::mm::free_area_init::early_pfn_valid;
use crate::mm::gfp::{__GFP_ZERO, GFP_KERNEL};
use crate::mm::page_alloc::tests::{two_banks, DMA_MOVABLE};
use crate::mm::page_ext::page_ext_init;
use crate::mm::testing::{Backing, Machine};

thread_local! {
    static STACK: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

fn fake_stack_trace_save(entries: &mut [u64], _skip: usize) -> usize {
    STACK.with(|s| {
        let s = s.borrow();
        let n = s.len().min(entries.len());
        entries[..n].copy_from_slice(&s[..n]);
        n
    })
}

fn set_stack(s: &[u64]) {
    STACK.with(|st| *st.borrow_mut() = s.to_vec());
}

fn clock() -> u64 {
    1234
}

fn cpu() -> usize {
    0
}

const A: [u64; 3] = [0x1000, 0x2000, 0x3000];
const B: [u64; 2] = [0x1000, 0x2004];
const F: [u64; 1] = [0x9000];

#[test]
fn owners_stacks_groups_and_the_free_stack() {
    early_page_owner_param(Some("on")).unwrap();
    let mut sim = Machine::from_dtb(&two_banks())
        .backed(Backing::Full)
        .zone_limits([0x40400, 0x40400, 0x50200, 0])
        .buddy();
    let mut leaked: Vec<Vec<u128>> = Vec::new();
    stack_depot_early_init(4096, &mut |size, _align| {
        let mut v = vec![0u128; (size as usize).div_ceil(16)];
        let p = v.as_mut_ptr() as *mut u8;
        leaked.push(v);
        p
    });
    std::mem::forget(leaked);
    let depot = stack_depot().expect("page_owner asked for the depot");
    let env = PageOwnerEnv {
        stack_trace_save: fake_stack_trace_save,
        clock,
        cpu,
    };
    sim.pa.set_page_debug(page_debug_hooks(env));
    sim.free_all();
    // Two pages in use before page_ext exists: found as early allocations.
    set_stack(&A);
    let early = [
        sim.pa.alloc_pages(DMA_MOVABLE, 0).unwrap(),
        sim.pa.alloc_pages(DMA_MOVABLE, 0).unwrap(),
    ];
    // init_page_owner() registers its stacks with what stack_trace_save gives.
    set_stack(&[0xe0]);
    {
        let mb = &sim.mb;
        page_ext_init(sim.pa, &[&PAGE_OWNER_OPS], &|pfn| early_pfn_valid(mb, pfn));
    }
    let early_handle = EARLY_HANDLE.load(Ordering::Relaxed);
    assert_eq!(depot.fetch(early_handle), &[0xe0]);
    let mut owners = std::collections::BTreeMap::new();
    for_each_owned_block(sim.pa, &mut |b| {
        owners.insert(b.pfn.0, b.handle);
    });
    for p in &early {
        assert_eq!(
            owners.get(&sim.pa.page_to_pfn(p.as_ptr()).0),
            Some(&early_handle)
        );
    }
    // 20 order-1 blocks from stack A, 5 order-0 from B: two records however many saves.
    let before = depot.nr_stacks();
    set_stack(&A);
    let a: Vec<_> = (0..20)
        .map(|_| sim.pa.alloc_pages(GFP_KERNEL, 1).unwrap())
        .collect();
    set_stack(&B);
    let b: Vec<_> = (0..5)
        .map(|_| sim.pa.alloc_pages(GFP_KERNEL | __GFP_ZERO, 0).unwrap())
        .collect();
    assert_eq!(depot.nr_stacks(), before + 2);
    let groups = page_owner_groups(sim.pa);
    let ha = depot.save(&A);
    let hb = depot.save(&B);
    assert_eq!(depot.fetch(ha), &A);
    assert!(groups.contains(&(ha, 20, 40, 1 << 1)), "{groups:?}");
    assert!(groups.contains(&(hb, 5, 5, 1 << 0)), "{groups:?}");
    // Linux's per-block format.
    let pfn = sim.pa.page_to_pfn(b[0].as_ptr());
    let mut lines = Vec::new();
    for_each_owned_block(sim.pa, &mut |blk| {
        if blk.pfn == pfn {
            print_page_owner(sim.pa, blk, &mut |a| lines.push(a.to_string()));
        }
    });
    assert_eq!(
        lines[0],
        "Page allocated via order 0, mask 0xdc0(GFP_KERNEL|__GFP_ZERO), pid 0, tgid 0 (swapper/0), ts 1234 ns, free_ts 0 ns"
    );
    assert!(
        lines[1].starts_with(&format!(
            "PFN {} type Unmovable Block {} type ",
            pfn.0,
            pfn.0 >> 9
        )),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2..4], [" 0x0000000000001000", " 0x0000000000002004"]);
    // Freed from stack F: out of the report; the free stack is kept for dump_page().
    set_stack(&F);
    for p in a {
        sim.pa.__free_pages(p, 1);
    }
    let groups = page_owner_groups(sim.pa);
    assert!(groups.iter().all(|g| g.0 != ha), "{groups:?}");
    let ext = lookup_page_ext(pfn).unwrap();
    assert!(ext.test(PAGE_EXT_OWNER_ALLOCATED));
    sim.pa.__free_pages(b[0], 0);
    assert!(ext.test(PAGE_EXT_OWNER) && !ext.test(PAGE_EXT_OWNER_ALLOCATED));
    // SAFETY: the page's page_owner data, read by the test.
    let o = unsafe { &*get_page_owner(ext) };
    assert_eq!(depot.fetch(o.free_handle), &F);
    assert_eq!(o.handle, hb, "the allocation stack is kept after the free");
    crate::kernel::printk::take_captured();
    __dump_page_owner(pfn);
    let log = crate::kernel::printk::take_captured();
    assert!(log.contains("page_owner tracks the page as freed"), "{log}");
    let lines: Vec<&str> = log.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.ends_with("page last free stack trace:"))
        .expect("the free stack's heading");
    assert!(lines[i + 1].ends_with("]  0x0000000000009000"), "{log}");
}
