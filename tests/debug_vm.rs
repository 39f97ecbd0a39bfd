//! The page allocator's debugging facilities (Linux 6.1's mm/debug_page_alloc.c,
//! mm/page_ext.c, mm/page_owner.c, lib/stackdepot.c), each boot checking that the facility
//! reports what it must:
//! - `debug_pagealloc=on`: the linear map is built from pages (even with `rodata=on`, which
//!   alone would map it with blocks), a freed page is unmapped
//!   there (a probe of it takes a translation fault) and mapped again when it is handed out;
//!   with `debug_vm.uaf` a read of a freed page Oopses and the report dumps the page as free
//!   (and, with page_owner, its last owner and the stack that freed it: this test's).
//! - `page_owner=on`: page_ext and the stack depot come up at boot with Linux's lines, this
//!   test's allocations are attributed to its own function, a stack saved again and again is
//!   stored once, and the report groups the live allocations by stack (`mm_reports=` prints
//!   it at the end of boot, the test again after its allocations).
//! - Off (the default): none of it is set up (with `rodata=on`, the linear map keeps its
//!   blocks).
#![no_std]
#![no_main]

use arm64_mm::arch::aarch64::esr::FaultKind;
use arm64_mm::arch::aarch64::kernel::extable::probe_read_u8;
use arm64_mm::kernel::kallsyms;
use arm64_mm::kernel::ktest;
use arm64_mm::kernel::params::boot_command_line;
use arm64_mm::kernel::stackdepot::stack_depot;
use arm64_mm::mm::gfp::GFP_KERNEL;
use arm64_mm::mm::page_alloc::{page_alloc, PageAlloc, PagePtr};
use arm64_mm::mm::page_owner;
use arm64_mm::mm::slab_common::{kfree, kmalloc};
use arm64_mm::{check, qemu_test};

qemu_test!(
    r#"
run -m 256M --smp 2 --append "rodata=on debug_pagealloc=on"
expect-output linear map in pages (debug_pagealloc)
expect-output ok - a freed page is unmapped from the linear map
expect-output ok - a page handed out again is mapped
expect-output ok - every page of a freed order-3 block is unmapped
expect-output ktest: 
expect-no-output FAIL -
run -m 256M --smp 1 --append "debug_pagealloc=on debug_vm.uaf"
expect-exit 1
expect-output Unable to handle kernel paging request at virtual address ffff
expect-output   FSC = 0x07: level 3 translation fault
expect-output refcount:0 mapcount:0 mapping:0000000000000000
expect-output page dumped because: debug_pagealloc: access to a free page
expect-output Internal error: Oops: 0000000096000007 [#1] SMP
expect-output pc : debug_vm::read_after_free
run -m 256M --smp 1 --append "debug_pagealloc=on page_owner=on debug_vm.uaf"
expect-exit 1
expect-output page dumped because: debug_pagealloc: access to a free page
expect-output page_owner tracks the page as freed
expect-output page last allocated via order 0, migratetype Unmovable, gfp_mask 0xcc0(GFP_KERNEL), pid 0, tgid 0 (swapper/0), ts 
expect-output page last free stack trace:
expect-output  debug_vm::uaf+
expect-output pc : debug_vm::read_after_free
run -m 256M --smp 2 --append "page_owner=on mm_reports=page_owner"
expect-output stackdepot hash table entries: 16384 (order: 4, 65536 bytes, linear)
expect-output bytes of page_ext
expect-output page owner found early allocated
expect-output ok - page_owner attributes the allocations to their caller
expect-output ok - the stack depot stored the repeated stack once
expect-output ok - page_owner's report groups the 64 blocks under their stacks
expect-output ok - freed pages are no longer reported
expect-output mm: page_owner
expect-output page_owner: 
expect-output  arm64_mm::mm::page_owner::register_early_stack+
expect-output Page allocated via order 1, mask 0xcc0(GFP_KERNEL), pid 0, tgid 0 (swapper/0), ts
expect-output  debug_vm::owner_allocs+
expect-no-output FAIL -
run -m 256M --smp 1 --append "debug_pagealloc=x page_owner=x"
expect-output Malformed early option 'debug_pagealloc'
expect-output Malformed early option 'page_owner'
expect-no-output page_ext
expect-output ok - with the facilities off, the allocator has no debugging hooks
run -m 256M --smp 2 --append "rodata=on"
expect-no-output page_ext
expect-no-output stackdepot
expect-no-output linear map in pages
expect-output ok - with page_owner off, page_owner records nothing
expect-output ok - with the facilities off, the allocator has no debugging hooks
"#
);

/// Is `p` on the command line, bare (`debug_vm.uaf`) or as `p=on`?
fn has(p: &str) -> bool {
    boot_command_line().split(' ').any(|a| {
        a.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest == "=on")
    })
}

/// Reads a byte of a page this function has just freed: the misuse under test.
#[inline(never)]
fn read_after_free(addr: u64) -> u8 {
    // SAFETY: deliberately unsound: the page was freed; debug_pagealloc unmapped it.
    unsafe { core::ptr::read_volatile(addr as *const u8) }
}

#[inline(never)]
fn uaf(pa: &PageAlloc) -> u8 {
    let page = pa.alloc_pages(GFP_KERNEL, 0).expect("a page");
    let addr = pa.page_address(page).0;
    // SAFETY: the page is ours and mapped.
    unsafe { core::ptr::write_volatile(addr as *mut u8, 0x5a) };
    pa.__free_pages(page, 0);
    read_after_free(addr)
}

fn debug_pagealloc_checks(pa: &PageAlloc) {
    let page = pa.alloc_pages(GFP_KERNEL, 0).expect("a page");
    let addr = pa.page_address(page).0;
    check!(probe_read_u8(addr).is_ok(), "an allocated page is mapped");
    pa.__free_pages(page, 0);
    let r = probe_read_u8(addr);
    check!(
        matches!(r, Err(f) if f.kind == FaultKind::Translation && f.far == addr),
        "a freed page is unmapped from the linear map: {:?}",
        r
    );
    // The per-CPU list hands the same page out next.
    let again = pa.alloc_pages(GFP_KERNEL, 0).expect("a page");
    let a2 = pa.page_address(again).0;
    check!(
        a2 == addr && probe_read_u8(a2).is_ok(),
        "a page handed out again is mapped ({:#x}, was {:#x})",
        a2,
        addr
    );
    pa.__free_pages(again, 0);
    let block = pa.alloc_pages(GFP_KERNEL, 3).expect("8 pages");
    let base = pa.page_address(block).0;
    // SAFETY: the block is ours and mapped: write its last byte.
    unsafe { core::ptr::write_volatile((base + 8 * 4096 - 1) as *mut u8, 1) };
    pa.__free_pages(block, 3);
    let unmapped = (0..8).all(|i| probe_read_u8(base + i * 4096).is_err());
    check!(unmapped, "every page of a freed order-3 block is unmapped");
    // kmalloc and its slabs carry on as usual.
    let p = kmalloc(4000, GFP_KERNEL);
    check!(!p.is_null(), "kmalloc works under debug_pagealloc");
    // SAFETY: `p` is a live 4000-byte object.
    unsafe {
        core::ptr::write_bytes(p, 1, 4000);
        kfree(p);
    }
}

/// Allocates `n` order-1 blocks, each from the same call site (one stack).
#[inline(never)]
fn owner_allocs(pa: &PageAlloc, out: &mut [Option<PagePtr>]) {
    for slot in out.iter_mut() {
        *slot = pa.alloc_pages(GFP_KERNEL, 1);
    }
}

/// Does the stack of `handle` hold a frame in the function named `name`?
fn stack_names(handle: u32, name: &str) -> bool {
    let depot = stack_depot().expect("the stack depot is up");
    depot
        .fetch(handle)
        .iter()
        .any(|&pc| kallsyms::lookup(pc).is_some_and(|s| s.name == name))
}

fn page_owner_checks(pa: &PageAlloc) {
    let depot = stack_depot().expect("page_owner=on brings the stack depot up");
    let mut blocks = [None; 64];
    let stacks = depot.nr_stacks();
    // One call site, 64 allocations: the stacks differ only by the allocator's path (the
    // per-CPU fast path, or a refill through get_page_from_freelist()).
    owner_allocs(pa, &mut blocks);
    check!(
        blocks.iter().all(|b| b.is_some()),
        "64 order-1 blocks allocated"
    );
    let pfns: [u64; 64] = core::array::from_fn(|i| pa.page_to_pfn(blocks[i].unwrap().as_ptr()).0);
    let mut found = 0;
    let mut handles = [0u32; 64];
    page_owner::for_each_owned_block(pa, &mut |b| {
        if let Some(i) = pfns.iter().position(|&p| p == b.pfn.0) {
            handles[i] = b.handle;
            if b.order == 1 && b.gfp == GFP_KERNEL {
                found += 1;
            }
        }
    });
    check!(
        found == 64
            && handles
                .iter()
                .all(|&h| stack_names(h, "debug_vm::owner_allocs")),
        "page_owner attributes the allocations to their caller ({} of 64 found)",
        found
    );
    let mut distinct = [0u32; 64];
    let mut nd = 0;
    for &h in &handles {
        if !distinct[..nd].contains(&h) {
            distinct[nd] = h;
            nd += 1;
        }
    }
    let added = depot.nr_stacks() - stacks;
    check!(
        nd <= 2 && added as usize == nd,
        "the stack depot stored the repeated stack once (64 saves, {} distinct stacks, {} records added)",
        nd,
        added
    );
    let groups = page_owner::page_owner_groups(pa);
    let (mut times, mut pages, mut orders) = (0, 0, 0);
    for g in groups.iter().filter(|g| distinct[..nd].contains(&g.0)) {
        times += g.1;
        pages += g.2;
        orders |= g.3;
    }
    check!(
        (times, pages, orders) == (64, 128, 2),
        "page_owner's report groups the 64 blocks under their stacks ({} times, {} pages, orders {:#x})",
        times,
        pages,
        orders
    );
    // The reports, as the monitor's `page_owner` and `page_owner full` print them.
    page_owner::print_page_owner_grouped(pa, &mut |a| arm64_mm::pr_info!("{}", a));
    page_owner::for_each_owned_block(pa, &mut |b| {
        if b.pfn.0 == pfns[0] {
            page_owner::print_page_owner(pa, b, &mut |a| arm64_mm::pr_info!("{}", a));
        }
    });
    // A freed block leaves the report.
    let extra = pa.alloc_pages(GFP_KERNEL, 2).expect("a block");
    let pfn = pa.page_to_pfn(extra.as_ptr()).0;
    pa.__free_pages(extra, 2);
    let mut seen = false;
    page_owner::for_each_owned_block(pa, &mut |b| seen |= b.pfn.0 == pfn);
    check!(!seen, "freed pages are no longer reported");
}

#[no_mangle]
pub fn kernel_init() -> ! {
    let pa = page_alloc().expect("buddy");
    if has("debug_vm.uaf") {
        let v = uaf(pa);
        check!(false, "the read after free did not fault (read {:#x})", v);
    }
    if has("debug_pagealloc") {
        debug_pagealloc_checks(pa);
    }
    if has("page_owner") {
        page_owner_checks(pa);
    } else {
        let mut n = 0;
        page_owner::for_each_owned_block(pa, &mut |_| n += 1);
        check!(
            n == 0 && stack_depot().is_none(),
            "with page_owner off, page_owner records nothing"
        );
    }
    if !has("debug_pagealloc") && !has("page_owner") {
        check!(
            !pa.debug_pagealloc_enabled() && pa.page_debug_hooks().set_page_owner.is_none(),
            "with the facilities off, the allocator has no debugging hooks"
        );
    }
    ktest::finish()
}
