//! The kernel monitor: an `mm> ` prompt on the serial console once boot is done (without
//! `batch`), for looking at the memory-management structures of the running kernel and
//! poking the allocators. Not a Linux file: Linux shows these through /proc and debugfs
//! once user space runs; the reports keep Linux's formats (`/proc/meminfo`,
//! `/proc/buddyinfo`, `/proc/pagetypeinfo`, `/proc/zoneinfo`, `/proc/slabinfo`,
//! `/proc/vmallocinfo`, `memblock=debug`'s dump, the arm64 ptdump).
//!
//! The line editor handles printable characters, backspace, Ctrl-C (drop the line),
//! Ctrl-U (clear it) and the up/down arrows (a 16-line history). The UART is polled (no
//! receive interrupt); the CPU waits with `wfe` between polls.
//!
//! `alloc`/`kmalloc`/`vmalloc` remember what they handed out (up to [`MAX_HELD`] blocks);
//! `free`/`kfree`/`vfree` accept only those, so a typing mistake gets an error, never a
//! free of memory something else owns. Every bad command or argument gets one line starting
//! `mm: ` and the prompt back.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::arch::aarch64::kernel::smp_call::on_each_cpu;
use crate::arch::aarch64::kernel::time;
use crate::arch::aarch64::memory::{__pa, __va};
use crate::drivers::tty::pl011;
use crate::include::mmzone::MAX_ORDER;
use crate::kernel::printk::LineBuf;
use crate::mm::gfp::*;
use crate::mm::page::PageFlagNames;
use crate::mm::page_alloc::{page_alloc, PageAlloc};
use crate::mm::{Pfn, PhysAddr, VirtAddr, PAGE_SIZE};

/// Blocks the monitor's allocation commands may hold at once.
pub const MAX_HELD: usize = 64;
const LINE_MAX: usize = 200;
const HISTORY: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Pages,
    Kmalloc,
    Vmalloc,
}

/// One block the monitor handed out: its kind, address and order or size.
#[derive(Clone, Copy)]
struct Held {
    kind: Kind,
    addr: u64,
    size: u64,
}

struct Monitor {
    held: [Option<Held>; MAX_HELD],
    history: [LineBuf<LINE_MAX>; HISTORY],
    nr_history: usize,
}

/// Writes a line (with `\r\n`) to the console, not to the log buffer: reports are answers,
/// not kernel messages (Linux's /proc reads do not go to dmesg either).
fn out(s: &str) {
    let con = pl011::console();
    con.write_raw(s.as_bytes());
    con.write_raw(b"\r\n");
}

macro_rules! outf {
    ($($arg:tt)*) => {{
        let mut l = LineBuf::<LINE_MAX>::new();
        let _ = write!(l, $($arg)*);
        out(l.as_str());
    }};
}

/// Reads one byte, waiting for it.
fn getc() -> u8 {
    loop {
        if let Some(c) = pl011::console().getc() {
            return c;
        }
        // SAFETY: a wait hint; no memory is touched.
        unsafe { core::arch::asm!("wfe", options(nomem, nostack, preserves_flags)) };
    }
}

/// A number: decimal, or hex with `0x`.
fn parse_num(s: &str) -> Option<u64> {
    crate::kernel::params::parse_u64(s)
}

/// GFP flags by name, joined with `|` (GFP_KERNEL, GFP_ATOMIC, GFP_DMA, GFP_DMA32,
/// __GFP_ZERO, __GFP_THISNODE, __GFP_NOWARN, __GFP_COMP, __GFP_MOVABLE).
fn parse_gfp(s: &str) -> Option<GfpT> {
    let mut gfp = 0;
    for w in s.split('|') {
        gfp |= match w {
            "GFP_KERNEL" => GFP_KERNEL,
            "GFP_ATOMIC" => GFP_ATOMIC,
            "GFP_DMA" => __GFP_DMA | GFP_KERNEL,
            "GFP_DMA32" => __GFP_DMA32 | GFP_KERNEL,
            "__GFP_ZERO" => __GFP_ZERO,
            "__GFP_THISNODE" => __GFP_THISNODE,
            "__GFP_NOWARN" => __GFP_NOWARN,
            "__GFP_COMP" => __GFP_COMP,
            "__GFP_MOVABLE" => __GFP_MOVABLE,
            _ => return None,
        };
    }
    Some(gfp)
}

const HELP: &[(&str, &str)] = &[
    ("help", "this list"),
    ("meminfo", "/proc/meminfo"),
    ("buddyinfo", "/proc/buddyinfo"),
    ("pagetypeinfo", "/proc/pagetypeinfo"),
    ("zoneinfo", "/proc/zoneinfo"),
    ("slabinfo", "/proc/slabinfo"),
    ("vmallocinfo", "/proc/vmallocinfo"),
    (
        "memblock",
        "memblock's memory and reserved arrays (memblock_dump_all)",
    ),
    (
        "ptdump [VA]",
        "the kernel page tables, or the walk of one address",
    ),
    ("page PFN|VA", "one struct page decoded"),
    (
        "page_owner [full]",
        "live allocations by stack, or block by block (page_owner=on)",
    ),
    (
        "kmemleak scan|show",
        "scan for leaks, or the leaks found (/sys/kernel/debug/kmemleak; kmemleak=on)",
    ),
    (
        "report [FILE]",
        "the memory report as JSON to a host file (default: mm_report=)",
    ),
    (
        "alloc ORDER [GFP]",
        "alloc_pages (GFP: GFP_KERNEL|__GFP_ZERO|GFP_DMA...)",
    ),
    ("free ADDR ORDER", "__free_pages of a block `alloc` gave"),
    ("kmalloc SIZE", "kmalloc(SIZE, GFP_KERNEL)"),
    ("kfree ADDR", "kfree of an object `kmalloc` gave"),
    ("vmalloc SIZE", "vmalloc(SIZE)"),
    ("vfree ADDR", "vfree of an area `vmalloc` gave"),
    ("held", "the blocks the commands above hold"),
    (
        "stress SECONDS",
        "every CPU allocates, checks and frees pages and objects",
    ),
    ("log", "the kernel log again"),
    ("poweroff", "stop the CPUs and power off"),
];

impl Monitor {
    fn new() -> Self {
        Self {
            held: [None; MAX_HELD],
            history: core::array::from_fn(|_| LineBuf::new()),
            nr_history: 0,
        }
    }

    /// Reads a line with editing into `line`.
    fn read_line(&mut self, line: &mut LineBuf<LINE_MAX>) {
        let con = pl011::console();
        line.clear();
        let mut hist = self.nr_history; // one past the newest: the line being typed
        let mut esc = 0u8;
        loop {
            let c = getc();
            match (esc, c) {
                (0, 0x1b) => esc = 1,
                (1, b'[') => esc = 2,
                (2, b'A') | (2, b'B') => {
                    esc = 0;
                    let oldest = self.nr_history.saturating_sub(HISTORY);
                    let next = if c == b'A' {
                        hist.checked_sub(1).filter(|&h| h >= oldest)
                    } else {
                        Some(hist + 1).filter(|&h| h <= self.nr_history)
                    };
                    let Some(h) = next else { continue };
                    hist = h;
                    for _ in 0..line.as_str().len() {
                        con.write_raw(b"\x08 \x08");
                    }
                    line.clear();
                    if h < self.nr_history {
                        let _ = line.write_str(self.history[h % HISTORY].as_str());
                    }
                    con.write_raw(line.as_str().as_bytes());
                }
                (1..=2, _) => {
                    esc = if c.is_ascii_digit() || c == b';' {
                        esc
                    } else {
                        0
                    }
                }
                (_, b'\r') | (_, b'\n') => {
                    con.write_raw(b"\r\n");
                    let t = line.as_str().trim();
                    if !t.is_empty() {
                        let slot = &mut self.history[self.nr_history % HISTORY];
                        slot.clear();
                        let _ = slot.write_str(t);
                        self.nr_history += 1;
                    }
                    return;
                }
                (_, 0x7f) | (_, 0x08) => {
                    let s = line.as_str();
                    if let Some(ch) = s.chars().last() {
                        let keep = s.len() - ch.len_utf8();
                        let mut copy = LineBuf::<LINE_MAX>::new();
                        let _ = copy.write_str(&s[..keep]);
                        *line = copy;
                        con.write_raw(b"\x08 \x08");
                    }
                }
                (_, 0x03) => {
                    con.write_raw(b"^C\r\n");
                    line.clear();
                    return;
                }
                (_, 0x15) => {
                    for _ in 0..line.as_str().len() {
                        con.write_raw(b"\x08 \x08");
                    }
                    line.clear();
                }
                (_, 0x20..=0x7e) if line.as_str().len() < LINE_MAX - 1 => {
                    let _ = line.write_char(c as char);
                    con.write_raw(&[c]);
                }
                _ => {}
            }
        }
    }

    /// Checked before allocating, so no block is handed out without a record.
    fn has_room(&self) -> Result<(), &'static str> {
        if self.held.iter().all(|h| h.is_some()) {
            return Err("holding too many blocks; free some first");
        }
        Ok(())
    }

    /// Records a block; has_room() was checked before it was allocated.
    fn remember(&mut self, h: Held) {
        if let Some(slot) = self.held.iter_mut().find(|s| s.is_none()) {
            *slot = Some(h);
        }
    }

    /// Takes back a block the monitor handed out, if `addr` (and for pages, the order) is
    /// one.
    fn forget(&mut self, kind: Kind, addr: u64, size: Option<u64>) -> Result<Held, &'static str> {
        let slot = self
            .held
            .iter_mut()
            .find(|s| s.is_some_and(|h| h.kind == kind && h.addr == addr))
            .ok_or("not a block this monitor allocated (see `held`)")?;
        let h = slot.expect("found");
        if size.is_some_and(|s| s != h.size) {
            return Err("that block was allocated with another order");
        }
        *slot = None;
        Ok(h)
    }

    fn run(&mut self, line: &str) -> Result<(), &'static str> {
        let mut words = line.split_whitespace();
        let Some(cmd) = words.next() else {
            return Ok(());
        };
        let args: [Option<&str>; 3] = core::array::from_fn(|_| words.next());
        if words.next().is_some() {
            return Err("too many arguments");
        }
        let pa = page_alloc().ok_or("no page allocator")?;
        match cmd {
            "help" => {
                for (c, what) in HELP {
                    outf!("  {:<20} {}", c, what);
                }
                Ok(())
            }
            "meminfo" => {
                crate::mm::show::meminfo(pa, &mut |l| out(l));
                Ok(())
            }
            "buddyinfo" => {
                crate::mm::show::buddyinfo(nodes()?, &mut |l| out(l));
                Ok(())
            }
            "zoneinfo" => {
                crate::mm::show::zoneinfo(nodes()?, &mut |l| out(l));
                Ok(())
            }
            "pagetypeinfo" => {
                let valid = |pfn: Pfn| pfn_valid(pfn);
                crate::mm::show::pagetypeinfo(nodes()?, &valid, &mut |l| out(l));
                Ok(())
            }
            "slabinfo" => {
                let mut w = LineWriter::default();
                crate::mm::slab_common::slabinfo(&mut w).map_err(|_| "slabinfo failed")?;
                w.flush();
                Ok(())
            }
            "vmallocinfo" => {
                crate::mm::vmalloc::api::vmallocinfo(&mut |l| out(l));
                Ok(())
            }
            "memblock" => {
                crate::mm::memblock::MEMBLOCK
                    .lock()
                    .dump_all_to(&mut |l| out(l));
                Ok(())
            }
            "ptdump" => match args[0] {
                None => {
                    crate::arch::aarch64::mm::ptdump::ptdump(&mut |l| out(l));
                    Ok(())
                }
                Some(a) => {
                    let va = parse_num(a).ok_or("VA: not a number")?;
                    crate::arch::aarch64::mm::ptdump::ptdump_walk_one(va, &mut |l| out(l));
                    Ok(())
                }
            },
            "page" => self.page(pa, args[0].ok_or("usage: page PFN|VA")?),
            "page_owner" => {
                if !crate::mm::page_owner::page_owner_enabled() {
                    return Err("page_owner is off (boot with page_owner=on)");
                }
                match args[0] {
                    None => {
                        crate::mm::page_owner::print_page_owner_grouped(pa, &mut |a| outf!("{}", a))
                    }
                    Some("full") => {
                        crate::mm::page_owner::print_page_owner_all(pa, &mut |a| outf!("{}", a))
                    }
                    Some(_) => return Err("usage: page_owner [full]"),
                }
                Ok(())
            }
            "kmemleak" => {
                if !crate::mm::kmemleak::kmemleak_enabled() {
                    return Err("kmemleak is off (boot with kmemleak=on)");
                }
                match args[0] {
                    // Linux: `echo scan > /sys/kernel/debug/kmemleak`.
                    Some("scan") => {
                        if let Some(r) = crate::mm::kmemleak::kmemleak_scan() {
                            outf!(
                                "kmemleak: scanned {} objects, {} referenced, {} unreferenced, {} new",
                                r.scanned,
                                r.referenced,
                                r.unreferenced,
                                r.new_leaks
                            );
                        }
                    }
                    // Linux: `cat /sys/kernel/debug/kmemleak`.
                    Some("show") => crate::mm::kmemleak::kmemleak_show(&mut |a| outf!("{}", a)),
                    _ => return Err("usage: kmemleak scan|show"),
                }
                Ok(())
            }
            "report" => {
                let mut res = Err("usage: report FILE (no mm_report= path to default to)");
                let mut write = |path: &str| {
                    res = match crate::init::report::write_report_to(path, "monitor") {
                        Ok(()) => {
                            outf!("report written to {}", path);
                            Ok(())
                        }
                        Err(e) => Err(e.reason()),
                    };
                };
                match args[0] {
                    Some(p) => write(p),
                    None => {
                        crate::init::report::default_path(&mut write);
                    }
                }
                res
            }
            "alloc" => {
                let order = args[0]
                    .and_then(parse_num)
                    .ok_or("usage: alloc ORDER [GFP]")?;
                if order >= MAX_ORDER as u64 {
                    return Err("order above MAX_ORDER - 1");
                }
                let gfp = match args[1] {
                    Some(g) => parse_gfp(g).ok_or("unknown GFP flag")?,
                    None => GFP_KERNEL,
                };
                self.has_room()?;
                let page = pa
                    .alloc_pages(gfp | __GFP_NOWARN, order as u32)
                    .ok_or("allocation failed")?;
                let va = pa.page_address(page);
                let pfn = pa.page_to_pfn(page.as_ptr());
                self.remember(Held {
                    kind: Kind::Pages,
                    addr: va.0,
                    size: order,
                });
                outf!(
                    "order {} block: pfn {:#x} phys {:#x} va {:#x}",
                    order,
                    pfn.0,
                    pfn.phys().as_u64(),
                    va.0
                );
                Ok(())
            }
            "free" => {
                let addr = args[0]
                    .and_then(parse_num)
                    .ok_or("usage: free ADDR ORDER")?;
                let order = args[1]
                    .and_then(parse_num)
                    .ok_or("usage: free ADDR ORDER")?;
                let h = self.forget(Kind::Pages, addr, Some(order))?;
                pa.free_pages(VirtAddr(h.addr), h.size as u32);
                outf!("freed order {} block at {:#x}", h.size, h.addr);
                Ok(())
            }
            "kmalloc" => {
                let size = args[0].and_then(parse_num).ok_or("usage: kmalloc SIZE")?;
                if size == 0 || size > crate::mm::slab::KMALLOC_MAX_SIZE as u64 {
                    return Err("size must be 1..=KMALLOC_MAX_SIZE (4 MiB)");
                }
                self.has_room()?;
                let p = crate::mm::slab_common::kmalloc(size as usize, GFP_KERNEL | __GFP_NOWARN);
                if p.is_null() {
                    return Err("kmalloc failed");
                }
                self.remember(Held {
                    kind: Kind::Kmalloc,
                    addr: p as u64,
                    size,
                });
                outf!(
                    "kmalloc({}) = {:#x} (ksize {})",
                    size,
                    p as u64,
                    crate::mm::slab_common::ksize(p)
                );
                Ok(())
            }
            "kfree" => {
                let addr = args[0].and_then(parse_num).ok_or("usage: kfree ADDR")?;
                let h = self.forget(Kind::Kmalloc, addr, None)?;
                // SAFETY: `kmalloc` above returned this object and nothing else holds it
                // (forget() removed the only record).
                unsafe { crate::mm::slab_common::kfree(h.addr as *mut u8) };
                outf!("kfree({:#x})", h.addr);
                Ok(())
            }
            "vmalloc" => {
                let size = args[0].and_then(parse_num).ok_or("usage: vmalloc SIZE")?;
                if size == 0 || size > pa.nr_free_pages() * PAGE_SIZE {
                    return Err("size must be 1 up to the free memory");
                }
                self.has_room()?;
                let a = crate::mm::vmalloc::api::vmalloc(size).ok_or("vmalloc failed")?;
                self.remember(Held {
                    kind: Kind::Vmalloc,
                    addr: a.0,
                    size,
                });
                outf!("vmalloc({}) = {:#x}", size, a.0);
                Ok(())
            }
            "vfree" => {
                let addr = args[0].and_then(parse_num).ok_or("usage: vfree ADDR")?;
                let h = self.forget(Kind::Vmalloc, addr, None)?;
                crate::mm::vmalloc::api::vfree(h.addr);
                outf!("vfree({:#x})", h.addr);
                Ok(())
            }
            "held" => {
                for h in self.held.iter().flatten() {
                    outf!("{:?} {:#x} {}", h.kind, h.addr, h.size);
                }
                Ok(())
            }
            "stress" => {
                let secs = args[0].and_then(parse_num).ok_or("usage: stress SECONDS")?;
                if secs == 0 || secs > 600 {
                    return Err("SECONDS must be 1..=600");
                }
                stress(pa, secs);
                Ok(())
            }
            "log" => {
                crate::kernel::printk::for_each_line(out);
                Ok(())
            }
            "poweroff" => {
                out("reboot: Power down");
                crate::arch::aarch64::kernel::process::machine_power_off();
                crate::kernel::panic::machine_exit(0)
            }
            _ => Err("unknown command (try `help`)"),
        }
    }

    /// `page PFN|VA`: an address at or above the linear map's start is a VA, else a PFN.
    fn page(&self, pa: &PageAlloc, arg: &str) -> Result<(), &'static str> {
        let n = parse_num(arg).ok_or("not a number")?;
        let pfn = if n >= crate::arch::aarch64::memory::PAGE_OFFSET {
            if crate::mm::vmalloc::api::is_vmalloc_addr(n) {
                let p = crate::mm::vmalloc::api::vmalloc_to_page(n).ok_or("VA not mapped")?;
                pa.page_to_pfn(p.as_ptr())
            } else {
                __pa(VirtAddr(n)).pfn_down()
            }
        } else {
            Pfn(n)
        };
        if !pfn_valid(pfn) {
            return Err("no struct page for that PFN");
        }
        let page = pa.pfn_to_page(pfn);
        // SAFETY: the PFN has a memmap entry (pfn_valid); the monitor only reads it.
        let p = unsafe { &*page };
        outf!(
            "page:{:016x} pfn:{:#x} phys:{:#x} va:{:#x}",
            page as u64,
            pfn.0,
            pfn.phys().as_u64(),
            __va(pfn.phys()).0
        );
        outf!(
            "node:{} zone:{} refcount:{} mapcount:{}",
            p.page_to_nid(),
            crate::include::mmzone::ZONE_NAMES[p.page_zonenum()],
            p.page_count(),
            p.page_mapcount_raw().wrapping_add(1)
        );
        outf!("flags: {}", PageFlagNames(p.flags.load(Ordering::Relaxed)));
        if p.page_buddy() {
            outf!(
                "in the buddy: head of a free order-{} block",
                p.buddy_order()
            );
        } else if p.page_tail() {
            outf!(
                "tail page of compound head {:016x}",
                p.compound_head() as u64
            );
        } else if p.page_reserved() {
            out("reserved (not managed by the buddy)");
        } else if p.page_count() > 0 {
            out("allocated");
        } else {
            out("free: inside a buddy block, or on a per-CPU list");
        }
        Ok(())
    }
}

/// fmt::Write that sends each finished line to the console.
#[derive(Default)]
struct LineWriter {
    line: LineBuf<LINE_MAX>,
}

impl LineWriter {
    fn flush(&mut self) {
        if !self.line.as_str().is_empty() {
            out(self.line.as_str());
            self.line.clear();
        }
    }
}

impl Write for LineWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let mut rest = s;
        while let Some(i) = rest.find('\n') {
            let _ = self.line.write_str(&rest[..i]);
            out(self.line.as_str());
            self.line.clear();
            rest = &rest[i + 1..];
        }
        self.line.write_str(rest)
    }
}

fn nodes() -> Result<&'static crate::mm::mmzone::NodeDataMap, &'static str> {
    crate::mm::mmzone::node_data_map().ok_or("no NODE_DATA")
}

fn pfn_valid(pfn: Pfn) -> bool {
    crate::mm::free_area_init::early_pfn_valid(&crate::mm::memblock::MEMBLOCK.lock(), pfn)
}

// `stress SECONDS`: every online CPU at once, until the deadline.
static STRESS_DEADLINE: AtomicU64 = AtomicU64::new(0);
static STRESS_OPS: AtomicU64 = AtomicU64::new(0);
static STRESS_ERRORS: AtomicU64 = AtomicU64::new(0);
static STRESS_FAILED_ALLOCS: AtomicU64 = AtomicU64::new(0);
static STRESS_RUNNING: AtomicBool = AtomicBool::new(false);

fn stress_worker(_: usize) {
    let Some(pa) = page_alloc() else { return };
    let cpu = crate::arch::aarch64::percpu::smp_processor_id() as u64;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ (cpu << 32) ^ time::counter();
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let deadline = STRESS_DEADLINE.load(Ordering::Relaxed);
    const HOLD: usize = 32;
    let mut pages: [Option<(crate::mm::page_alloc::PagePtr, u32, u64)>; HOLD] = [None; HOLD];
    let mut objs: [Option<(*mut u8, usize, u8)>; HOLD] = [None; HOLD];
    let (mut ops, mut errors, mut failed) = (0u64, 0u64, 0u64);
    while time::counter() < deadline {
        let r = next();
        let i = (r >> 8) as usize % HOLD;
        if r & 1 == 0 {
            if let Some((page, order, tag)) = pages[i].take() {
                let p = pa.page_address(page).as_mut_ptr::<u64>();
                // SAFETY: our block; its first and last words were tagged.
                let ok = unsafe {
                    p.read_volatile() == tag
                        && p.add(((PAGE_SIZE << order) / 8 - 1) as usize)
                            .read_volatile()
                            == tag
                };
                errors += u64::from(!ok);
                pa.__free_pages(page, order);
            } else {
                let order = ((r >> 16) % 4) as u32;
                match pa.alloc_pages(GFP_KERNEL | __GFP_NOWARN, order) {
                    Some(page) => {
                        let tag = (cpu << 56) | (r >> 8);
                        let p = pa.page_address(page).as_mut_ptr::<u64>();
                        // SAFETY: our fresh block of 2^order pages.
                        unsafe {
                            p.write_volatile(tag);
                            p.add(((PAGE_SIZE << order) / 8 - 1) as usize)
                                .write_volatile(tag);
                        }
                        pages[i] = Some((page, order, tag));
                    }
                    None => failed += 1,
                }
            }
        } else if let Some((p, size, tag)) = objs[i].take() {
            // SAFETY: our object of `size` bytes, filled with `tag`.
            let ok = unsafe { core::slice::from_raw_parts(p, size) }
                .iter()
                .all(|&b| b == tag);
            errors += u64::from(!ok);
            // SAFETY: this worker's own object from kmalloc, freed once.
            unsafe { crate::mm::slab_common::kfree(p) };
        } else {
            let size = 8usize << ((r >> 16) % 11);
            let p = crate::mm::slab_common::kmalloc(size, GFP_KERNEL | __GFP_NOWARN);
            if p.is_null() {
                failed += 1;
            } else {
                let tag = (cpu as u8) ^ (r >> 24) as u8;
                // SAFETY: kmalloc gave `size` bytes.
                unsafe { core::ptr::write_bytes(p, tag, size) };
                objs[i] = Some((p, size, tag));
            }
        }
        ops += 1;
    }
    for (page, order, _) in pages.iter().flatten() {
        pa.__free_pages(*page, *order);
    }
    for (p, _, _) in objs.iter().flatten() {
        // SAFETY: this worker's own object from kmalloc, freed once.
        unsafe { crate::mm::slab_common::kfree(*p) };
    }
    STRESS_OPS.fetch_add(ops, Ordering::Relaxed);
    STRESS_ERRORS.fetch_add(errors, Ordering::Relaxed);
    STRESS_FAILED_ALLOCS.fetch_add(failed, Ordering::Relaxed);
}

fn stress(pa: &PageAlloc, secs: u64) {
    if STRESS_RUNNING.swap(true, Ordering::Acquire) {
        out("mm: stress is already running");
        return;
    }
    crate::mm::slab_common::kmem_cache_shrink_all();
    pa.drain_all_pages(None);
    let free0 = pa.nr_free_pages();
    STRESS_OPS.store(0, Ordering::Relaxed);
    STRESS_ERRORS.store(0, Ordering::Relaxed);
    STRESS_FAILED_ALLOCS.store(0, Ordering::Relaxed);
    STRESS_DEADLINE.store(
        time::counter() + secs * time::frequency(),
        Ordering::Relaxed,
    );
    on_each_cpu(stress_worker, 0);
    crate::mm::slab_common::kmem_cache_shrink_all();
    pa.drain_all_pages(None);
    let free1 = pa.nr_free_pages();
    outf!(
        "stress: {} ops on {} CPUs in {} s, {} pattern errors, {} refused allocations; free pages {} before, {} after",
        STRESS_OPS.load(Ordering::Relaxed),
        crate::kernel::cpu::num_online_cpus(),
        secs,
        STRESS_ERRORS.load(Ordering::Relaxed),
        STRESS_FAILED_ALLOCS.load(Ordering::Relaxed),
        free0,
        free1
    );
    STRESS_RUNNING.store(false, Ordering::Release);
}

/// The monitor's loop: never returns (`poweroff` ends the machine).
pub fn run() -> ! {
    let mut m = Monitor::new();
    out("mm: monitor ready; `help` lists the commands");
    let mut line = LineBuf::<LINE_MAX>::new();
    loop {
        pl011::console().write_raw(b"mm> ");
        m.read_line(&mut line);
        if let Err(e) = m.run(line.as_str()) {
            outf!("mm: {}", e);
        }
    }
}

/// The physical address of a VA in the linear map (for tests of `page`).
pub fn linear_pa(va: u64) -> PhysAddr {
    __pa(VirtAddr(va))
}
