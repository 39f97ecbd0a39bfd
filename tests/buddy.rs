//! mem_init and the buddy allocator on the real machine: the `Memory:` total equals Linux's;
//! every free page can be allocated (order 0, then mixed orders) with no page handed out
//! twice and zeroed when asked; freeing everything restores buddyinfo exactly; GFP_DMA stays
//! below the DMA limit; __GFP_THISNODE lands on the asked node; an order-10 request on a
//! fragmented zone fails cleanly with Linux's warning; `init_on_alloc=` / `init_on_free=` zero
//! what the buddy hands out / takes back, and `mem auto-init:` says so as Linux does.
#![no_std]
#![no_main]

use arm64_mm::arch::aarch64::mm::init::{max_pfn, ARM64_DMA_PHYS_LIMIT};
use arm64_mm::kernel::ktest;
use arm64_mm::kernel::params::boot_command_line;
use arm64_mm::kernel::printk::LineBuf;
use arm64_mm::mm::gfp::{GfpT, __GFP_NOWARN, __GFP_THISNODE, __GFP_ZERO, GFP_DMA, GFP_KERNEL};
use arm64_mm::mm::page_alloc::{page_alloc, PageAlloc, PagePtr};
use arm64_mm::mm::show::buddyinfo;
use arm64_mm::mm::Pfn;
use arm64_mm::{check, qemu_test};
use core::fmt::Write;
use core::sync::atomic::Ordering;

qemu_test!(
    r#"
run -m 128M --smp 1 --append "test.all"
expect-output K/131072K available (
expect-output Freeing unused kernel memory: 64K
expect-output ] mem auto-init: stack:all(zero), heap alloc:on, heap free:off
expect-no-output mem auto-init: clearing system memory
run -m 1G --append "test.all"
expect-output K/1048576K available (
run -m 4G --append "test.dma"
expect-output K/4194304K available (
run -m 4G --numa 2 --append "test.thisnode"
expect-output K/4194304K available (
run -m 8G --append "test.dma"
expect-output K/8388608K available (
run -m 512M --append "test.frag"
expect-output page allocation failure: order:10, mode:0xcc0(GFP_KERNEL)
run -m 512M --append "init_on_alloc=0 test.meminit"
expect-output ] mem auto-init: stack:all(zero), heap alloc:off, heap free:off
run -m 512M --append "init_on_free=1 test.meminit"
expect-output ] mem auto-init: stack:all(zero), heap alloc:on, heap free:on
expect-output ] mem auto-init: clearing system memory may take some time...
run -m 512M --smp 1 --append "init_on_alloc=0 init_on_free=1 test.meminit"
expect-output ] mem auto-init: stack:all(zero), heap alloc:off, heap free:on
"#
);

/// buddyinfo as one string, to compare states.
fn buddy_state(pa: &PageAlloc) -> LineBuf<4096> {
    pa.drain_all_pages(None);
    let mut s = LineBuf::<4096>::new();
    buddyinfo(pa.nodes(), &mut |l| {
        let _ = writeln!(s, "{}", l);
    });
    s
}

/// A bitmap over every pfn of the machine, in pages from the buddy.
struct Bitmap {
    words: *mut u64,
    base: u64,
    len: u64,
    page: PagePtr,
    order: u32,
}

impl Bitmap {
    fn new(pa: &PageAlloc, base: u64, end: u64) -> Self {
        let bytes = (end - base).div_ceil(8);
        let order = (bytes.div_ceil(4096)).next_power_of_two().trailing_zeros();
        let page = pa
            .alloc_pages(GFP_KERNEL | __GFP_ZERO, order)
            .expect("bitmap pages");
        Self {
            words: pa.page_address(page).as_mut_ptr(),
            base,
            len: end - base,
            page,
            order,
        }
    }
    /// Sets the bit; returns whether it was already set.
    fn test_and_set(&mut self, pfn: u64) -> bool {
        let i = pfn - self.base;
        assert!(i < self.len);
        // SAFETY: the bitmap pages are ours and hold `len` bits.
        unsafe {
            let w = self.words.add((i / 64) as usize);
            let old = *w & (1 << (i % 64)) != 0;
            *w |= 1 << (i % 64);
            old
        }
    }
    fn clear(&mut self) {
        // SAFETY: as above.
        unsafe { core::ptr::write_bytes(self.words, 0, self.len.div_ceil(64) as usize) };
    }
}

/// Allocates until the machine is out of memory, each block chained through its first
/// page (next pfn, order); returns (blocks, pages, duplicates, not-zeroed, head pfn).
/// `gfp`: GFP_KERNEL with or without __GFP_ZERO (not-zeroed counts either way).
fn allocate_all(
    pa: &PageAlloc,
    bm: &mut Bitmap,
    mixed: bool,
    gfp: GfpT,
) -> (u64, u64, u64, u64, u64) {
    let (mut blocks, mut pages, mut dups, mut dirty) = (0, 0, 0, 0);
    let mut head = u64::MAX;
    let mut seed = 0x1234_5678u64;
    let mut order = 0;
    loop {
        if mixed {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            order = ((seed >> 33) % 11) as u32;
        }
        let mut got = None;
        for o in (0..=order).rev() {
            if let Some(p) = pa.alloc_pages(gfp | __GFP_NOWARN, o) {
                got = Some((p, o));
                break;
            }
        }
        let Some((page, o)) = got else { break };
        let pfn = pa.page_to_pfn(page.as_ptr()).0;
        let va = pa.page_address(page).as_mut_ptr::<u64>();
        let words = (4096u64 << o) / 8;
        // SAFETY: the block is ours; check a few words for zeroing, then chain it.
        unsafe {
            for w in [0, 1, words / 2, words - 1] {
                if va.add(w as usize).read() != 0 {
                    dirty += 1;
                }
            }
            va.write(head);
            va.add(1).write(o as u64);
        }
        for p in pfn..pfn + (1 << o) {
            if bm.test_and_set(p) {
                dups += 1;
            }
        }
        head = pfn;
        blocks += 1;
        pages += 1 << o;
    }
    (blocks, pages, dups, dirty, head)
}

fn free_chain(pa: &PageAlloc, mut pfn: u64) {
    while pfn != u64::MAX {
        let page = core::ptr::NonNull::new(pa.pfn_to_page(Pfn(pfn))).expect("a struct page");
        let va = pa.page_address(page).as_ptr::<u64>();
        // SAFETY: every block of the chain is ours until freed here.
        let (next, order) = unsafe { (va.read(), va.add(1).read() as u32) };
        pa.__free_pages(page, order);
        pfn = next;
    }
}

#[no_mangle]
pub fn kernel_init() -> ! {
    let pa = page_alloc().expect("the buddy allocator runs");
    let cmd = boot_command_line();
    let max_pfn = max_pfn().0;
    let free_at_boot = pa.nr_free_pages();
    check!(
        free_at_boot > 0,
        "{} pages free after mem_init",
        free_at_boot
    );

    if cmd.contains("test.all") {
        let mut bm = Bitmap::new(pa, 0x40000, max_pfn);
        let before = buddy_state(pa);
        for mixed in [false, true] {
            bm.clear();
            let (blocks, pages, dups, dirty, head) =
                allocate_all(pa, &mut bm, mixed, GFP_KERNEL | __GFP_ZERO);
            check!(
                dups == 0,
                "{}: {} blocks, {} pages, no page handed out twice",
                if mixed { "mixed orders" } else { "order 0" },
                blocks,
                pages
            );
            check!(dirty == 0, "__GFP_ZERO blocks are zeroed");
            check!(
                pa.alloc_pages(GFP_KERNEL | __GFP_NOWARN, 0).is_none(),
                "the machine is out of pages"
            );
            free_chain(pa, head);
            let after = buddy_state(pa);
            check!(
                after.as_str() == before.as_str(),
                "freeing everything restores buddyinfo:\n{}",
                after.as_str()
            );
        }
        pa.__free_pages(bm.page, bm.order);
    }

    if cmd.contains("test.dma") {
        let limit = ARM64_DMA_PHYS_LIMIT.load(Ordering::Relaxed);
        let (mut low, mut high) = (0, 0);
        for _ in 0..64 {
            let p = pa.alloc_pages(GFP_DMA, 0).expect("a DMA page");
            let phys = pa.page_to_pfn(p.as_ptr()).phys().0;
            if phys < limit {
                low += 1;
            }
            pa.__free_pages(p, 0);
            let p = pa.alloc_pages(GFP_KERNEL, 0).expect("a page");
            if pa.page_to_pfn(p.as_ptr()).phys().0 >= limit {
                high += 1;
            }
            pa.__free_pages(p, 0);
        }
        check!(
            low == 64,
            "GFP_DMA pages lie below the DMA limit {:#x}",
            limit
        );
        check!(
            high == 64,
            "GFP_KERNEL takes ZONE_NORMAL first while it has pages"
        );
    }

    if cmd.contains("test.thisnode") {
        for nid in [0, 1] {
            let mut ok = 0;
            for _ in 0..32 {
                let p = pa
                    .alloc_pages_node(nid, GFP_KERNEL | __GFP_THISNODE, 0)
                    .expect("a page on the node");
                // SAFETY: a page from the allocator has an initialised struct page.
                if unsafe { p.as_ref() }.page_to_nid() == nid {
                    ok += 1;
                }
                pa.__free_pages(p, 0);
            }
            check!(ok == 32, "__GFP_THISNODE pages come from node {}", nid);
        }
    }

    if cmd.contains("test.frag") {
        let before = buddy_state(pa);
        let mut bm = Bitmap::new(pa, 0x40000, max_pfn);
        let (_, pages, dups, _, head) = allocate_all(pa, &mut bm, false, GFP_KERNEL | __GFP_ZERO);
        check!(dups == 0 && pages > 0, "{} pages taken", pages);
        // Free every other block of the chain: no two free pages are buddies.
        let (mut pfn, mut keep, mut kept) = (head, false, u64::MAX);
        while pfn != u64::MAX {
            let page = core::ptr::NonNull::new(pa.pfn_to_page(Pfn(pfn))).expect("a struct page");
            let va = pa.page_address(page).as_mut_ptr::<u64>();
            // SAFETY: our blocks; the kept ones are re-chained through their first word.
            let next = unsafe { va.read() };
            if keep {
                unsafe { va.write(kept) };
                kept = pfn;
            } else {
                pa.__free_pages(page, 0);
            }
            keep = !keep;
            pfn = next;
        }
        check!(
            pa.alloc_pages(GFP_KERNEL | __GFP_NOWARN, 10).is_none(),
            "order 10 on a fragmented zone fails cleanly"
        );
        check!(
            pa.alloc_pages(GFP_KERNEL, 10).is_none(),
            "and, without __GFP_NOWARN, warns as Linux does"
        );
        check!(
            pa.alloc_pages(GFP_KERNEL, 0).is_some_and(|p| {
                pa.__free_pages(p, 0);
                true
            }),
            "order 0 still works"
        );
        free_chain(pa, kept);
        pa.__free_pages(bm.page, bm.order);
        let after = buddy_state(pa);
        check!(
            after.as_str() == before.as_str(),
            "after the fragmentation test buddyinfo is as before"
        );
    }
    if cmd.contains("test.meminit") {
        meminit(pa, cmd, max_pfn);
    }
    ktest::finish()
}

/// init_on_alloc= / init_on_free=: the switches follow the command line; a freed block reads
/// zero through the linear map exactly when init_on_free is on; after the whole machine was
/// allocated, chained (dirtying two words of every block) and freed, allocating it all again
/// without __GFP_ZERO finds every block zeroed when either switch is on, and dirt otherwise.
fn meminit(pa: &PageAlloc, cmd: &str, max_pfn: u64) {
    let m = pa.meminit();
    check!(
        m.init_on_alloc != cmd.contains("init_on_alloc=0")
            && m.init_on_free == cmd.contains("init_on_free=1"),
        "the switches follow the command line: {:?}",
        m
    );
    for order in 0..=10u32 {
        let p = pa.alloc_pages(GFP_KERNEL, order).expect("a block");
        let va = pa.page_address(p).as_mut_ptr::<u8>();
        let len = 4096usize << order;
        // SAFETY: the block is ours until freed; after the free it stays mapped in the
        // linear map, and nothing else runs to reuse it before it is read.
        let zeroed = unsafe {
            core::ptr::write_bytes(va, 0xa5, len);
            pa.__free_pages(p, order);
            core::slice::from_raw_parts(va, len).iter().all(|&b| b == 0)
        };
        check!(
            zeroed == m.init_on_free,
            "order {}: a freed block reads {} through the linear map",
            order,
            if zeroed { "zero" } else { "as written" }
        );
    }
    let mut bm = Bitmap::new(pa, 0x40000, max_pfn);
    let (_, _, dups, _, head) = allocate_all(pa, &mut bm, true, GFP_KERNEL | __GFP_ZERO);
    check!(dups == 0, "the whole machine allocated");
    free_chain(pa, head);
    bm.clear();
    let (blocks, _, _, dirty, head) = allocate_all(pa, &mut bm, true, GFP_KERNEL);
    let init = m.init_on_alloc || m.init_on_free;
    check!(
        (dirty == 0) == init,
        "without __GFP_ZERO: {} of {} blocks not zeroed (init_on_alloc or init_on_free: {})",
        dirty,
        blocks,
        init
    );
    free_chain(pa, head);
    pa.__free_pages(bm.page, bm.order);
}
