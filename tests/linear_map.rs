//! paging_init: every byte of memblock memory is reachable through the linear map, no
//! kernel mapping is both writable and executable, and the protections hold when broken
//! on purpose: writing rodata, writing kernel text through its linear alias, executing
//! from the linear map and touching the stack guard page all fault with the right cause.
#![no_std]
#![no_main]

use arm64_mm::arch::aarch64::esr::FaultKind;
use arm64_mm::arch::aarch64::kernel::extable::{probe_exec, probe_read_u8, probe_write_u8};
use arm64_mm::arch::aarch64::memory::{__pa, __va, lm_alias, pa_symbol, PAGE_END, PAGE_OFFSET};
use arm64_mm::arch::aarch64::mm::mmu::PAGES_FOR_TABLES;
use arm64_mm::arch::aarch64::mm::ptdump::{ptdump, walk_kernel_tables};
use arm64_mm::kernel::ktest;
use arm64_mm::kernel::params::boot_command_line;
use arm64_mm::mm::memblock::{MemblockFlags, MEMBLOCK};
use arm64_mm::mm::{VirtAddr, PAGE_SIZE};
use arm64_mm::{check, qemu_test};
use core::sync::atomic::Ordering;

qemu_test!(
    r#"
run -m 128M
run -m 4G --append "rodata=on test.pud"
expect-output page-table pages
run -m 8G --append "rodata=on test.pud"
run -m 4G --numa 2 --append "rodata=on test.pud"
run -m 2G --append "test.pages"
expect-output ok - no block mappings in the linear map
run -m 1G --append "rodata=on ptdump"
expect-output ---[ Linear Mapping start ]---
expect-output PTE       ro NX SHD AF            UXN MEM/NORMAL
expect-output PTE       ro x  SHD AF    CON     UXN MEM/NORMAL
expect-output ---[ Fixmap start ]---
expect-output DEVICE/nGnRE
"#
);

/// Something in .rodata.
static RODATA_WORD: u64 = 0x5a5a_5a5a_5a5a_5a5a;

extern "C" fn returns() {}

extern "C" {
    static init_stack_guard: u8;
    static init_pg_dir: u8;
}

#[no_mangle]
pub fn kernel_init() -> ! {
    let cmdline = boot_command_line();

    // Every memory region: first and last byte of its first and last page.
    let mut mapped = 0;
    let mb = MEMBLOCK.lock();
    for r in mb.memory().regions() {
        let (start, end) = (r.base, r.base + r.size);
        let addrs = [start, start + (PAGE_SIZE - 1), end - PAGE_SIZE, end - 1];
        let ok = addrs
            .iter()
            .all(|&pa| probe_read_u8(__va(pa).as_u64()).is_ok());
        if r.flags.0 & MemblockFlags::NOMAP.0 != 0 {
            check!(
                !ok,
                "NOMAP region {:#x}-{:#x} is not in the linear map",
                start.as_u64(),
                end.as_u64()
            );
        } else {
            check!(
                ok,
                "region {:#x}-{:#x} readable through the linear map",
                start.as_u64(),
                end.as_u64() - 1
            );
            mapped += r.size;
        }
    }
    check!(
        !mb.is_reserved(pa_symbol(&raw const init_pg_dir)),
        "init_pg_dir was given back to memblock"
    );
    drop(mb);
    check!(mapped > 0, "the linear map covers {} MiB", mapped >> 20);

    // W^X over every kernel mapping, and what the linear map is made of.
    let (mut wx, mut leaves, mut pud_blocks, mut blocks_in_lm, mut lm_exec) = (0, 0, 0, 0, 0);
    // Each linear-map leaf maps its own physical address: __pa(start).
    let mut misplaced = 0;
    walk_kernel_tables(&mut |l| {
        if !l.desc.is_valid() {
            return;
        }
        leaves += 1;
        if l.writable() && l.executable() {
            wx += 1;
        }
        let in_lm = l.start >= PAGE_OFFSET && l.start < PAGE_END;
        if in_lm && l.level < 3 {
            blocks_in_lm += 1;
            if l.level == 1 {
                pud_blocks += 1;
            }
        }
        if in_lm && l.executable() {
            lm_exec += 1;
        }
        if in_lm && l.desc.output_address() != __pa(VirtAddr(l.start)) {
            misplaced += 1;
        }
    });
    check!(
        misplaced == 0,
        "every linear-map entry maps its own physical address ({} do not)",
        misplaced
    );
    check!(lm_exec == 0, "nothing in the linear map is executable");
    check!(
        wx == 0,
        "no mapping is both writable and executable ({} leaves walked)",
        leaves
    );
    if cmdline.contains("test.pud") {
        check!(
            pud_blocks > 0,
            "1 GiB blocks in the linear map ({})",
            pud_blocks
        );
    }
    if cmdline.contains("test.pages") {
        check!(blocks_in_lm == 0, "no block mappings in the linear map");
    }
    check!(
        PAGES_FOR_TABLES.load(Ordering::Relaxed) > 0,
        "page tables came from memblock"
    );

    // Break things on purpose.
    let ro = &RODATA_WORD as *const u64 as u64;
    // SAFETY: rodata is read-only after mark_rodata_ro, so the write faults and changes nothing.
    let r = unsafe { probe_write_u8(ro, 0) };
    check!(
        matches!(r, Err(f) if f.kind == FaultKind::Permission && f.write),
        "writing rodata is a permission fault: {:?}",
        r
    );
    let text_alias = lm_alias(returns as *const u8).as_u64();
    check!(
        probe_read_u8(text_alias).is_ok(),
        "kernel text is readable through its linear alias"
    );
    // SAFETY: the alias is read-only, so the write faults and changes nothing.
    let r = unsafe { probe_write_u8(text_alias, 0) };
    check!(
        matches!(r, Err(f) if f.kind == FaultKind::Permission && f.write),
        "writing kernel text through the linear map is a permission fault: {:?}",
        r
    );
    // SAFETY: `returns` is a function that returns.
    let r = unsafe { probe_exec(returns as *const () as u64) };
    check!(r.is_ok(), "kernel text executes: {:?}", r);
    let page = MEMBLOCK
        .lock()
        .alloc(PAGE_SIZE, PAGE_SIZE)
        .expect("a page from memblock");
    // SAFETY: memblock gave us this page; `ret` is a whole function.
    unsafe { (page.as_ptr() as *mut u32).write_volatile(0xd65f_03c0) };
    // SAFETY: the linear map is never executable, so nothing runs.
    let r = unsafe { probe_exec(page.as_ptr() as u64) };
    check!(
        matches!(r, Err(f) if f.instruction && f.kind == FaultKind::Permission),
        "executing from the linear map is a permission fault: {:?}",
        r
    );
    let r = probe_read_u8(&raw const init_stack_guard as u64);
    check!(
        matches!(r, Err(f) if f.kind == FaultKind::Translation),
        "the page below the boot stack is unmapped: {:?}",
        r
    );

    // ptdump as a function: markers and at least the linear map and the kernel.
    let (mut lines, mut markers) = (0, 0);
    ptdump(&mut |l| {
        lines += 1;
        if l.starts_with("---[") {
            markers += 1;
        }
    });
    check!(
        markers == 12 && lines > 12,
        "ptdump: {} lines, {} markers",
        lines,
        markers
    );
    ktest::finish()
}
