//! Fuzz target `memblock`: operation sequences against mm/memblock.c's port, checked after
//! every step against an interval-set model (fuzz/src/lib.rs): the lists equal the model
//! (sorted, non-overlapping, merged, totals right), failed updates change nothing, and
//! memblock_phys_alloc() returns exactly the highest (top-down) or lowest (bottom-up) free
//! fit, or nothing when none exists.
#![no_main]

use arm64_mm::mm::memblock::{MemType, MemblockFlags};
use arm64_mm::mm::PhysAddr;
use arm64_mm_fuzz::{allocatable, cap_end, Bytes, Checked, Model, Piece, NO_NID};
use libfuzzer_sys::fuzz_target;

const PAGE: u64 = 4096;
const SMP_CACHE_BYTES: u64 = 64;

#[derive(Debug)]
enum Op {
    Add(u64, u64),
    AddNode(u64, u64, i32, u32),
    Remove(u64, u64),
    Reserve(u64, u64),
    Free(u64, u64),
    Flag(u64, u64, u32, bool),
    SetNode(u64, u64, i32),
    Alloc(u64, u64),
    BottomUp(bool),
}

/// An address: mostly small page multiples (so ranges meet), sometimes anything.
fn addr(b: &mut Bytes) -> u64 {
    match b.u8() % 8 {
        0 => b.u64(),
        1 => u64::MAX - u64::from(b.u16()) * PAGE,
        2 => u64::from(b.u16()),
        _ => u64::from(b.u8()) * PAGE,
    }
}

fn size(b: &mut Bytes) -> u64 {
    match b.u8() % 8 {
        0 => b.u64(),
        1 => u64::from(b.u16()),
        _ => u64::from(b.u8() % 32) * PAGE,
    }
}

fn op(b: &mut Bytes) -> Op {
    match b.u8() % 9 {
        0 => Op::Add(addr(b), size(b)),
        1 => Op::AddNode(
            addr(b),
            size(b),
            i32::from(b.u8() % 4),
            u32::from(b.u8() % 16),
        ),
        2 => Op::Remove(addr(b), size(b)),
        3 => Op::Reserve(addr(b), size(b)),
        4 => Op::Free(addr(b), size(b)),
        5 => Op::Flag(addr(b), size(b), 1 << (b.u8() % 2 * 2), b.u8() & 1 == 1),
        6 => Op::SetNode(addr(b), size(b), i32::from(b.u8() % 4)),
        7 => Op::Alloc(u64::from(b.u16()) + 1, {
            let a = b.u8() % 24;
            if a == 23 {
                0
            } else {
                1 << a
            }
        }),
        _ => Op::BottomUp(b.u8() & 1 == 1),
    }
}

/// The fit __memblock_find_range_{top_down,bottom_up}() must find in the model.
fn expected_fit(c: &Checked, size: u64, align: u64, bottom_up: bool) -> Option<u64> {
    let limit = c.mb.current_limit().0;
    // Free ranges never straddle two memory regions (Linux's __next_mem_range() walks
    // them one by one), so each region is cut by the reservations separately.
    let mut free = Vec::new();
    for p in c.memory.pieces.iter().filter(|p| allocatable(p.flags)) {
        let mut m = Model::default();
        m.add(p.start, p.end, 0, 0);
        for r in &c.reserved.pieces {
            m.edit(r.start, r.end, |_| None);
        }
        free.extend(m.pieces);
    }
    let lo = PAGE;
    let fits = free.iter().filter_map(|p: &Piece| {
        let (s, e) = (p.start.max(lo), p.end.min(limit));
        if s >= e || e - s < size {
            return None;
        }
        if bottom_up {
            let cand = s.checked_next_multiple_of(align)?;
            (cand.checked_add(size)? <= e).then_some(cand)
        } else {
            let cand = (e - size) & !(align - 1);
            (cand >= s).then_some(cand)
        }
    });
    if bottom_up {
        fits.min()
    } else {
        fits.max()
    }
}

fn step(c: &mut Checked, op: &Op) {
    let before = c.snapshot();
    let res = match *op {
        Op::Add(base, size) => {
            let r = c.mb.add(PhysAddr(base), size);
            if r.is_ok() {
                c.memory.add(base, cap_end(base, size), 0, NO_NID);
            }
            Some((r, MemType::Memory, true, base, size))
        }
        Op::AddNode(base, size, nid, flags) => {
            let r =
                c.mb.add_node(PhysAddr(base), size, nid, MemblockFlags(flags));
            if r.is_ok() {
                c.memory.add(base, cap_end(base, size), flags, nid);
            }
            Some((r, MemType::Memory, true, base, size))
        }
        Op::Remove(base, size) => {
            let r = c.mb.remove(PhysAddr(base), size);
            if r.is_ok() {
                c.memory.edit(base, cap_end(base, size), |_| None);
            }
            Some((r, MemType::Memory, false, base, size))
        }
        Op::Reserve(base, size) => {
            let r = c.mb.reserve(PhysAddr(base), size);
            if r.is_ok() {
                c.reserved.add(base, cap_end(base, size), 0, NO_NID);
            }
            Some((r, MemType::Reserved, true, base, size))
        }
        Op::Free(base, size) => {
            let r = c.mb.phys_free(PhysAddr(base), size);
            if r.is_ok() {
                c.reserved.edit(base, cap_end(base, size), |_| None);
            }
            Some((r, MemType::Reserved, false, base, size))
        }
        Op::Flag(base, size, flag, set) => {
            let (b, s) = (PhysAddr(base), size);
            let f = MemblockFlags(flag);
            let r = match (flag, set) {
                (1, true) => c.mb.mark_hotplug(b, s),
                (1, false) => c.mb.clear_hotplug(b, s),
                (_, true) => c.mb.mark_nomap(b, s),
                (_, false) => c.mb.clear_nomap(b, s),
            };
            if r.is_ok() {
                c.memory.edit(base, cap_end(base, size), |p| {
                    let flags = if set {
                        p.flags | f.bits()
                    } else {
                        p.flags & !f.bits()
                    };
                    Some(Piece { flags, ..p })
                });
            }
            Some((r, MemType::Memory, false, base, size))
        }
        Op::SetNode(base, size, nid) => {
            let r = c.mb.set_node(PhysAddr(base), size, MemType::Memory, nid);
            if r.is_ok() {
                c.memory
                    .edit(base, cap_end(base, size), |p| Some(Piece { nid, ..p }));
            }
            Some((r, MemType::Memory, false, base, size))
        }
        Op::Alloc(size, align) => {
            let a = if align == 0 { SMP_CACHE_BYTES } else { align };
            let want = expected_fit(c, size, a, c.mb.bottom_up());
            let got = c.mb.phys_alloc(size, align).map(|p| p.0);
            match (got, want) {
                (Some(g), Some(w)) => {
                    assert_eq!(
                        g, w,
                        "{op:?}: memblock chose another fit; memory {:x?} reserved {:x?}",
                        c.memory, c.reserved
                    );
                    c.reserved.add(g, g + size, 0, NO_NID);
                }
                (None, Some(w)) if c.full(MemType::Reserved, true, w, size) => {}
                _ => assert_eq!(got, want, "{op:?}"),
            }
            None
        }
        Op::BottomUp(on) => {
            c.mb.set_bottom_up(on);
            None
        }
    };
    if let Some((Err(_), t, add, base, size)) = res {
        // Only a full array makes an update fail, and then nothing changes.
        assert!(
            c.full(t, add, base, size),
            "{op:?} failed with room in {t:?}"
        );
        assert_eq!(c.snapshot(), before, "{op:?} failed but changed memblock");
    }
    c.check(op);
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let mut c = Checked::new();
    let mut n = 0;
    while !b.is_empty() && n < 512 {
        let op = op(&mut b);
        step(&mut c, &op);
        n += 1;
    }
    arm64_mm::kernel::printk::take_captured();
});
