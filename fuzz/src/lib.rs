//! Shared pieces of the fuzz targets (fuzz/fuzz_targets/*.rs): the byte reader that turns
//! a fuzzer input into operations, memblock's invariant check, and the interval-set model
//! memblock is checked against. Mirrors no Linux file: it plays what
//! `tools/testing/memblock` and the `CONFIG_DEBUG_VM` checks do for Linux.

use arm64_mm::include::numa::MAX_NUMNODES;
use arm64_mm::mm::memblock::{MemType, Memblock, MemblockFlags, MemblockRegion, MemblockType};

/// Reads an input front to back; past the end every read gives zeros, so every input is a
/// complete program.
pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }
}

/// What one memblock list must satisfy after any operation: at least the dummy entry, no
/// more entries than its array holds; an empty list is the one zero-sized dummy; otherwise
/// regions non-empty, ending at or below 2^64 - 1, sorted, disjoint, maximally merged
/// (neighbours that touch differ in flags or node), and `total_size` their sum.
pub fn check_type(t: &MemblockType) -> Result<(), String> {
    let r = t.regions();
    let name = t.name();
    if t.cnt() == 0 || t.cnt() > t.max() {
        return Err(format!("{name}: cnt {} max {}", t.cnt(), t.max()));
    }
    if r.len() == 1 && r[0].size == 0 {
        if r[0].base.0 != 0 || t.total_size() != 0 {
            return Err(format!("{name}: bad empty list {:?}", r[0]));
        }
        return Ok(());
    }
    let mut sum = 0u64;
    for (i, x) in r.iter().enumerate() {
        if x.size == 0 || x.base.0.checked_add(x.size).is_none() {
            return Err(format!("{name}[{i}]: bad region {x:?}"));
        }
        sum = sum
            .checked_add(x.size)
            .ok_or_else(|| format!("{name}: total overflows"))?;
        if let Some(n) = r.get(i + 1) {
            if x.end().0 > n.base.0 {
                return Err(format!("{name}[{i}]: unsorted or overlapping {x:?} {n:?}"));
            }
            if x.end().0 == n.base.0 && x.flags == n.flags && x.nid == n.nid {
                return Err(format!("{name}[{i}]: not merged {x:?} {n:?}"));
            }
        }
    }
    if sum != t.total_size() {
        return Err(format!(
            "{name}: total_size {} != sum {sum}",
            t.total_size()
        ));
    }
    Ok(())
}

/// Both lists of `mb` satisfy [`check_type`].
pub fn check_memblock(mb: &Memblock) -> Result<(), String> {
    check_type(mb.memory())?;
    check_type(mb.reserved())
}

/// One piece of a [`Model`]: `[start, end)` with its flags and node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub start: u64,
    pub end: u64,
    pub flags: u32,
    pub nid: i32,
}

/// An interval set with attributes, kept sorted, disjoint and merged: what memblock's list
/// must equal after the same operations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Model {
    pub pieces: Vec<Piece>,
}

/// memblock_cap_size(): the end of `[base, base + size)`, capped below 2^64.
pub fn cap_end(base: u64, size: u64) -> u64 {
    base + size.min(u64::MAX - base)
}

impl Model {
    fn normalize(&mut self) {
        self.pieces.sort_by_key(|p| p.start);
        let mut out: Vec<Piece> = Vec::new();
        for p in self.pieces.drain(..) {
            if p.start >= p.end {
                continue;
            }
            match out.last_mut() {
                Some(l) if l.end == p.start && l.flags == p.flags && l.nid == p.nid => {
                    l.end = p.end
                }
                _ => out.push(p),
            }
        }
        self.pieces = out;
    }

    /// memblock_add_range(): the parts of `[start, end)` not yet covered, with `flags`/`nid`.
    pub fn add(&mut self, start: u64, end: u64, flags: u32, nid: i32) {
        let mut cur = start;
        let mut new = Vec::new();
        for p in &self.pieces {
            if p.end <= cur || p.start >= end {
                continue;
            }
            if p.start > cur {
                new.push(Piece {
                    start: cur,
                    end: p.start,
                    flags,
                    nid,
                });
            }
            cur = cur.max(p.end);
        }
        if cur < end {
            new.push(Piece {
                start: cur,
                end,
                flags,
                nid,
            });
        }
        self.pieces.extend(new);
        self.normalize();
    }

    /// Applies `f` to the parts of the pieces inside `[start, end)` (None: remove them).
    pub fn edit(&mut self, start: u64, end: u64, f: impl Fn(Piece) -> Option<Piece>) {
        let mut out = Vec::new();
        for &p in &self.pieces {
            if p.end <= start || p.start >= end {
                out.push(p);
                continue;
            }
            if p.start < start {
                out.push(Piece { end: start, ..p });
            }
            if p.end > end {
                out.push(Piece { start: end, ..p });
            }
            let mid = Piece {
                start: p.start.max(start),
                end: p.end.min(end),
                ..p
            };
            out.extend(f(mid));
        }
        self.pieces = out;
        self.normalize();
    }

    /// The pieces a memblock list holds, in the same form.
    pub fn of(t: &MemblockType) -> Self {
        let pieces = t
            .regions()
            .iter()
            .filter(|r| r.size > 0)
            .map(|r: &MemblockRegion| Piece {
                start: r.base.0,
                end: r.end().0,
                flags: r.flags.bits(),
                nid: r.nid,
            })
            .collect();
        Self { pieces }
    }

    /// How many uncovered pieces of `[start, end)` an add would insert (memblock_add_range()'s
    /// first pass).
    pub fn gaps(&self, start: u64, end: u64) -> usize {
        let mut cur = start;
        let mut n = 0;
        for p in &self.pieces {
            if p.end <= cur || p.start >= end {
                continue;
            }
            n += usize::from(p.start > cur);
            cur = cur.max(p.end);
        }
        n + usize::from(cur < end)
    }

    /// Whether `[start, end)` meets any piece.
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.pieces.iter().any(|p| p.start < end && start < p.end)
    }
}

/// The node memblock_add() and memblock_reserve() give (Linux: MAX_NUMNODES).
pub const NO_NID: i32 = MAX_NUMNODES as i32;

/// memblock's `memory` and `reserved` side by side with their models.
pub struct Checked {
    pub mb: Memblock,
    pub memory: Model,
    pub reserved: Model,
}

impl Default for Checked {
    fn default() -> Self {
        Self::new()
    }
}

impl Checked {
    pub fn new() -> Self {
        Self {
            mb: Memblock::new(),
            memory: Model::default(),
            reserved: Model::default(),
        }
    }

    /// Compares memblock with the models after an operation; `what` names it.
    pub fn check(&self, what: &dyn core::fmt::Debug) {
        if let Err(e) = check_memblock(&self.mb) {
            panic!("after {what:?}: {e}");
        }
        let mem = Model::of(self.mb.memory());
        assert_eq!(mem, self.memory, "memory after {what:?}");
        let rsv = Model::of(self.mb.reserved());
        let strip =
            |m: &Model| -> Vec<(u64, u64)> { m.pieces.iter().map(|p| (p.start, p.end)).collect() };
        assert_eq!(
            strip(&rsv),
            strip(&self.reserved),
            "reserved after {what:?}"
        );
    }

    /// The lists as they are, when an update failed: memblock must have left them alone.
    pub fn snapshot(&self) -> (Model, Model) {
        (Model::of(self.mb.memory()), Model::of(self.mb.reserved()))
    }

    /// Whether an update of `[base, base + size)` may fail for room (no array doubling
    /// without allow_resize): an add needs a slot per uncovered piece, memblock_isolate_range()
    /// two spare slots (Linux checks `cnt + 2 > max` before splitting).
    pub fn full(&self, t: MemType, add: bool, base: u64, size: u64) -> bool {
        let (ty, model) = match t {
            MemType::Memory => (self.mb.memory(), &self.memory),
            MemType::Reserved => (self.mb.reserved(), &self.reserved),
        };
        let used = if ty.regions()[0].size == 0 {
            0
        } else {
            ty.cnt()
        };
        if add {
            used + model.gaps(base, cap_end(base, size)) > ty.max()
        } else {
            ty.cnt() + 2 > ty.max()
        }
    }
}

/// The flags memblock checks on `memory` when it allocates: NOMAP and DRIVER_MANAGED
/// regions are skipped.
pub fn allocatable(flags: u32) -> bool {
    flags & (MemblockFlags::NOMAP.bits() | MemblockFlags::DRIVER_MANAGED.bits()) == 0
}
