//! kallsyms: function names for backtraces. Mirrors kernel/kallsyms.c in purpose.
//!
//! Linux links vmlinux several times to embed its own symbol table. We reserve a fixed
//! `.kallsyms` area in rodata instead (so addresses never move) and `scripts/mkimage` writes
//! the table into the Image after the link, from `llvm-nm` of the ELF. Without a table (an
//! Image made by hand) backtraces print bare addresses.
//!
//! Table format, little-endian: `"KSYM"`, `count: u32`, then `count` entries of
//! `(addr: u64, size: u32, name_off: u32)` sorted by address, then the NUL-free names,
//! each entry's name running to the next entry's `name_off` (or the table's end).

const MAGIC: &[u8; 4] = b"KSYM";
const HDR: usize = 8;
const ENTRY: usize = 16;

/// A symbol table over a byte blob.
pub struct SymbolTable<'a> {
    blob: &'a [u8],
    count: usize,
    names: usize,
}

/// The symbol containing an address: Linux's `name+0xoff/0xsize`.
#[derive(Debug, PartialEq, Eq)]
pub struct Symbol<'a> {
    pub name: &'a str,
    pub offset: u64,
    pub size: u64,
}

impl core::fmt::Display for Symbol<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        write!(f, "{}+{:#x}/{:#x}", self.name, self.offset, self.size)
    }
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

impl<'a> SymbolTable<'a> {
    /// Validates the header; `None` if the area holds no table.
    pub fn new(blob: &'a [u8]) -> Option<Self> {
        if blob.get(..4)? != MAGIC {
            return None;
        }
        let count = u32_at(blob, 4)? as usize;
        let names = HDR.checked_add(count.checked_mul(ENTRY)?)?;
        (names <= blob.len()).then_some(Self { blob, count, names })
    }

    fn addr(&self, i: usize) -> u64 {
        u64_at(self.blob, HDR + i * ENTRY).unwrap_or(0)
    }

    fn name(&self, i: usize) -> &'a str {
        let off = |j: usize| u32_at(self.blob, HDR + j * ENTRY + 12).unwrap_or(0) as usize;
        let start = self.names + off(i);
        let end = if i + 1 < self.count {
            self.names + off(i + 1)
        } else {
            self.blob.len()
        };
        let bytes = self.blob.get(start..end.max(start)).unwrap_or(&[]);
        let bytes = bytes.split(|&b| b == 0).next().unwrap_or(&[]);
        core::str::from_utf8(bytes).unwrap_or("?")
    }

    /// Linux: kallsyms_lookup() — the symbol whose `[addr, addr + size)` holds `addr`.
    pub fn lookup(&self, addr: u64) -> Option<Symbol<'a>> {
        // The last entry whose start is <= addr.
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.addr(mid) <= addr {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let i = lo.checked_sub(1)?;
        let start = self.addr(i);
        let size = u32_at(self.blob, HDR + i * ENTRY + 8).unwrap_or(0) as u64;
        let size = if size == 0 && i + 1 < self.count {
            self.addr(i + 1) - start
        } else {
            size
        };
        (addr - start < size.max(1)).then(|| Symbol {
            name: self.name(i),
            offset: addr - start,
            size,
        })
    }

    /// The address of a symbol by exact name (for tests and GDB-free debugging).
    pub fn find(&self, name: &str) -> Option<u64> {
        (0..self.count)
            .find(|&i| self.name(i) == name)
            .map(|i| self.addr(i))
    }
}

/// The kernel's own table, in the `.kallsyms` area the linker script reserves.
#[cfg(target_os = "none")]
pub fn kernel_symbols() -> Option<SymbolTable<'static>> {
    use crate::kernel::sections::{__kallsyms_end, __kallsyms_start, section_bytes};
    // SAFETY: the linker script reserves `[__kallsyms_start, __kallsyms_end)` in rodata;
    // it is mapped for the kernel's lifetime and never written after boot.
    let blob = unsafe { section_bytes(__kallsyms_start(), __kallsyms_end()) };
    SymbolTable::new(blob)
}

/// Linux: sprint_symbol() into a printk argument: `name+0x10/0x40`, or the bare address.
pub fn lookup(addr: u64) -> Option<Symbol<'static>> {
    #[cfg(target_os = "none")]
    {
        kernel_symbols()?.lookup(addr)
    }
    #[cfg(not(target_os = "none"))]
    {
        let _ = addr;
        None
    }
}

#[cfg(test)]
mod tests;
