//! The flat-tree reader (Linux: scripts/dtc/libfdt — fdt_ro.c, fdt_addresses.c, and the
//! flat-tree helpers of drivers/of/fdt.c): a validated view of a device-tree blob, its nodes,
//! properties, `reg` decoding and /memreserve/ list, and the diagnostics its queries return.
//! The header check and the validating walk are in `libfdt/fdt.rs` (Linux: libfdt/fdt.c).
//!
//! Flow in the kernel: map the first 40 bytes, [`fdt_check_header`] them (or
//! [`fdt_header_from_ptr`]), map `totalsize` bytes, then [`Fdt::new`] walks the whole structure
//! block once and rejects anything malformed with a typed [`FdtError`] naming the offset.
//! Every query afterwards runs over a blob known to be well-formed, and still only uses checked
//! slicing, so a bug in a query degrades to "not found" rather than a panic.
//!
//! Why our own walker instead of the `fdt` crate: we must walk every token ourselves anyway to
//! validate the blob (0.1.5 panics on some malformed input), and once that walk exists the rest
//! is a few lines; meanwhile 0.1.5 stops early at FDT_NOP runs in `find_node`/`all_nodes`
//! (QEMU leaves them where it deletes memory nodes), gives up on more than two cells, reads
//! only the first memory node and panics on a missing `/chosen` or an empty `bootargs`. Owning
//! the walker keeps the no-panic guarantee in one place. The crate stays useful as an
//! independent oracle: the tests check our walker against it on the QEMU fixtures.
//!
//! Queries that can meet malformed properties return a [`Diagnostic`] (node path, property,
//! problem) rather than guessing; the callers (drivers/of/fdt.rs's `early_init_*`, of_numa,
//! the arch's CPU and PSCI probing) print them the way the rest of the kernel prints.
// Without `alloc` a diagnostic cannot be boxed; it is returned by value on cold paths only.
#![allow(clippy::result_large_err)]

use core::fmt;

use crate::mm::addr::PhysAddr;

mod fdt;
pub use fdt::*;
use fdt::{validate_memrsv, validate_structure};
use fdt::{FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_NOP, FDT_PROP};

/// Linux: FDT_MAGIC.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// The version-17 header, the most we read before `totalsize` is known.
pub const FDT_V17_HEADER_SIZE: usize = 40;
/// Oldest version accepted: 16 is the first with a strings-block size, which the
/// bounds checks need (libfdt accepts 2, but nothing since 2008 emits less than 17).
pub const FDT_FIRST_SUPPORTED_VERSION: u32 = 16;
/// Linux: FDT_LAST_SUPPORTED_VERSION.
pub const FDT_LAST_SUPPORTED_VERSION: u32 = 17;
/// Linux: FDT_MAX_DEPTH (unflatten_dt_nodes); deeper nesting is rejected, which also bounds
/// the fixed-size ancestor stacks below.
pub const FDT_MAX_DEPTH: usize = 64;
/// Linux: OF_ROOT_NODE_ADDR_CELLS_DEFAULT.
pub const OF_ROOT_NODE_ADDR_CELLS_DEFAULT: u32 = 1;
/// Linux: OF_ROOT_NODE_SIZE_CELLS_DEFAULT.
pub const OF_ROOT_NODE_SIZE_CELLS_DEFAULT: u32 = 1;

// ---------------------------------------------------------------------------------------------
// Byte helpers: every read is checked, so nothing here can panic on a short slice.

pub(crate) fn be32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes(s.try_into().ok()?))
}

pub(crate) fn be64(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    Some(u64::from_be_bytes(s.try_into().ok()?))
}

pub(crate) const fn align4(x: usize) -> usize {
    (x + 3) & !3
}

/// The bytes of a string property up to its first NUL (C's strcmp sees no further).
pub(crate) fn c_str(value: &[u8]) -> &[u8] {
    match value.iter().position(|&b| b == 0) {
        Some(n) => &value[..n],
        None => value,
    }
}

/// Linux: of_read_number() — but a number wider than 64 bits is refused (`None`) instead of
/// keeping its low 64 bits; callers report that as a problem.
pub fn of_read_number(cells: &[u8], n: u32) -> Option<u64> {
    if n > 2 {
        return None;
    }
    let mut r = 0u64;
    for i in 0..n as usize {
        r = (r << 32) | u64::from(be32(cells, i * 4)?);
    }
    Some(r)
}

// ---------------------------------------------------------------------------------------------
// The validated tree.

/// A validated device-tree blob. Cheap to copy: it is a few slices into the blob.
#[derive(Clone, Copy)]
pub struct Fdt<'a> {
    blob: &'a [u8],
    structs: &'a [u8],
    strings: &'a [u8],
    struct_base: usize,
    root_off: usize,
    root_addr_cells: u32,
    root_size_cells: u32,
}

impl fmt::Debug for Fdt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Fdt({:#x} bytes)", self.blob.len())
    }
}

impl<'a> Fdt<'a> {
    /// Checks the header and walks every token of the structure block; only a blob that passes
    /// is ever queried. `bytes` may be longer than `totalsize` (the rest is ignored).
    pub fn new(bytes: &'a [u8]) -> Result<Self, FdtError> {
        let h = fdt_check_header(bytes)?;
        let blob = bytes
            .get(..h.totalsize as usize)
            .ok_or(FdtError::Truncated {
                totalsize: h.totalsize,
                len: bytes.len(),
            })?;
        // fdt_check_header() bounded both blocks by totalsize, so these cannot fail; if they
        // did, report the block rather than panic.
        let struct_end = h.struct_end() as usize;
        let structs =
            blob.get(h.off_dt_struct as usize..struct_end)
                .ok_or(FdtError::BlockOutOfBounds {
                    block: "structure",
                    offset: h.off_dt_struct,
                    size: h.size_dt_struct,
                    totalsize: h.totalsize,
                    header_size: h.header_size(),
                })?;
        let strings_end = h.off_dt_strings as usize + h.size_dt_strings as usize;
        let strings =
            blob.get(h.off_dt_strings as usize..strings_end)
                .ok_or(FdtError::BlockOutOfBounds {
                    block: "strings",
                    offset: h.off_dt_strings,
                    size: h.size_dt_strings,
                    totalsize: h.totalsize,
                    header_size: h.header_size(),
                })?;
        let struct_base = h.off_dt_struct as usize;
        let root_off = validate_structure(structs, strings, struct_base)?;
        validate_memrsv(blob, h.off_mem_rsvmap as usize)?;
        let mut fdt = Fdt {
            blob,
            structs,
            strings,
            struct_base,
            root_off,
            root_addr_cells: OF_ROOT_NODE_ADDR_CELLS_DEFAULT,
            root_size_cells: OF_ROOT_NODE_SIZE_CELLS_DEFAULT,
        };
        // Linux: early_init_dt_scan_root(). A malformed root cell count makes every memory
        // range undecodable, so it is a blob error, not a per-node one.
        let root = fdt.root();
        for (prop, slot) in [
            ("#address-cells", &mut fdt.root_addr_cells),
            ("#size-cells", &mut fdt.root_size_cells),
        ] {
            if let Some(v) = root.property(prop) {
                *slot = match v.len() {
                    4 => be32(v, 0).unwrap_or(0),
                    len => {
                        return Err(FdtError::BadRootCells {
                            property: prop,
                            len,
                        })
                    }
                };
            }
        }
        Ok(fdt)
    }

    /// The blob, `totalsize` bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.blob
    }

    /// Linux: fdt_totalsize().
    pub fn totalsize(&self) -> usize {
        self.blob.len()
    }

    pub fn header(&self) -> FdtHeader {
        // Validated in new(); re-reading keeps `Fdt` small (it is copied into every `Node`).
        fdt_check_header(self.blob).unwrap_or(FdtHeader {
            magic: 0,
            totalsize: 0,
            off_dt_struct: 0,
            off_dt_strings: 0,
            off_mem_rsvmap: 0,
            version: 0,
            last_comp_version: 0,
            boot_cpuid_phys: 0,
            size_dt_strings: 0,
            size_dt_struct: 0,
        })
    }

    // -----------------------------------------------------------------------------------------
    // Walking. new() decoded and checked every token, so the queries step over tokens without
    // decoding them again: a property is passed by its length, a node name by finding the word
    // that holds its NUL, and names are compared as bytes, only where a query asks for one.
    // Reads stay checked: a walk that met anything new() would have rejected just ends.

    /// The tag at `off` and the offset of the next token (always > `off`, so every walk
    /// terminates); `None` past the end or at a tag new() would have rejected.
    #[inline]
    fn step(&self, off: usize) -> Option<(u32, usize)> {
        let tag = be32(self.structs, off)?;
        let next = match tag {
            FDT_BEGIN_NODE => self.name_end(off)?,
            FDT_PROP => {
                let len = be32(self.structs, off + 4)? as usize;
                align4(off.checked_add(12)?.checked_add(len)?)
            }
            FDT_END_NODE | FDT_NOP | FDT_END => off + 4,
            _ => return None,
        };
        Some((tag, next))
    }

    /// The offset of the token after the name of the FDT_BEGIN_NODE at `off`. The name starts
    /// word-aligned and is padded to a word, so that token follows the first word that holds
    /// a NUL.
    #[inline]
    fn name_end(&self, off: usize) -> Option<usize> {
        let mut p = off + 4;
        loop {
            let w = be32(self.structs, p)?;
            p += 4;
            if has_zero_byte(w) {
                return Some(p);
            }
        }
    }

    /// Is the name of the node at `off` `comp` (`Some(true)`), `comp@unit` (`Some(false)`), or
    /// neither (`None`)? `comp` holds no NUL (the caller checks).
    #[inline]
    fn name_cmp(&self, off: usize, comp: &[u8]) -> Option<bool> {
        let start = off + 4;
        let name = self.structs.get(start..start.checked_add(comp.len())?)?;
        let exact = match *self.structs.get(start + comp.len())? {
            0 => true,
            b'@' => false,
            _ => return None,
        };
        (name == comp).then_some(exact)
    }

    /// Is the name of the property whose name is at `nameoff` in the strings block `want`?
    #[inline]
    fn prop_name_is(&self, nameoff: usize, want: &[u8]) -> bool {
        let Some(end) = nameoff.checked_add(want.len()) else {
            return false;
        };
        // The NUL test first: it turns most names of another length away without a compare.
        // A `want` holding a NUL can match bytes, but never a name (names end at their NUL).
        self.strings.get(end) == Some(&0)
            && self.strings.get(nameoff..end) == Some(want)
            && !want.contains(&0)
    }

    /// The property name at `nameoff` in the strings block (checked UTF-8 by new()).
    fn prop_name(&self, nameoff: usize) -> &'a str {
        let s = c_str(self.strings.get(nameoff..).unwrap_or(&[]));
        core::str::from_utf8(s).unwrap_or("")
    }

    fn node_at(&self, off: usize) -> Option<Node<'a>> {
        if be32(self.structs, off)? != FDT_BEGIN_NODE {
            return None;
        }
        Some(Node {
            fdt: *self,
            off,
            body: self.name_end(off)?,
        })
    }

    /// Linux: of_get_flat_dt_root().
    pub fn root(&self) -> Node<'a> {
        self.node_at(self.root_off).unwrap_or(Node {
            fdt: *self,
            off: self.root_off,
            body: self.root_off,
        })
    }

    /// Linux: dt_root_addr_cells (set by early_init_dt_scan_root()).
    pub fn root_addr_cells(&self) -> u32 {
        self.root_addr_cells
    }

    /// Linux: dt_root_size_cells (set by early_init_dt_scan_root()).
    pub fn root_size_cells(&self) -> u32 {
        self.root_size_cells
    }

    /// Every node, depth first, in blob order, with its depth (root = 0). FDT_NOP runs are
    /// skipped wherever they are.
    pub fn nodes(&self) -> AllNodes<'a> {
        AllNodes {
            fdt: *self,
            off: self.root_off,
            depth: 0,
            done: false,
        }
    }

    /// Linux: fdt_path_offset() — `/a/b` by path (a component without `@` also matches
    /// `name@unit`), or `alias/rest` through `/aliases`.
    pub fn find_node(&self, path: &str) -> Option<Node<'a>> {
        let (mut node, rest) = if let Some(rest) = path.strip_prefix('/') {
            (self.root(), rest)
        } else {
            let (alias, rest) = path.split_once('/').unwrap_or((path, ""));
            let target = self.alias(alias)?;
            // An alias must name an absolute path: that rules out alias loops.
            if !target.starts_with('/') {
                return None;
            }
            (self.find_node(target)?, rest)
        };
        for comp in rest.split('/').filter(|c| !c.is_empty()) {
            node = node.child(comp)?;
        }
        Some(node)
    }

    /// Linux: fdt_get_alias().
    pub fn alias(&self, name: &str) -> Option<&'a str> {
        let aliases = self.root().child("aliases")?;
        core::str::from_utf8(c_str(aliases.property(name)?)).ok()
    }

    /// Linux: of_find_compatible_node(NULL, NULL, compat) — the first node in blob order.
    pub fn find_compatible(&self, compat: &str) -> Option<Node<'a>> {
        self.nodes()
            .map(|(n, _)| n)
            .find(|n| n.is_compatible(compat))
    }

    /// Linux: of_flat_dt_get_machine_name() — `model`, else the first `compatible` string.
    pub fn machine_name(&self) -> Option<&'a str> {
        let root = self.root();
        root.prop_str("model").or_else(|| root.compatible().next())
    }

    /// The root's `compatible` list.
    pub fn compatible(&self) -> StrList<'a> {
        self.root().compatible()
    }

    /// Decodes `data` as (address, size) pairs with the root's cells, or says why it cannot.
    pub(crate) fn root_reg(&self, data: &'a [u8]) -> Result<RegIter<'a>, Problem<'a>> {
        RegIter::new(data, self.root_addr_cells, self.root_size_cells)
    }

    /// Ancestor chain of the node at `target`: `offs[0]` is the root, `offs[len-1]` the node.
    fn ancestry(&self, target: usize) -> Option<Ancestry> {
        let mut a = Ancestry {
            offs: [0; FDT_MAX_DEPTH],
            len: 0,
        };
        let mut off = self.root_off;
        loop {
            let (tag, next) = self.step(off)?;
            match tag {
                FDT_BEGIN_NODE => {
                    *a.offs.get_mut(a.len)? = off;
                    a.len += 1;
                    if off == target {
                        return Some(a);
                    }
                }
                FDT_END_NODE => {
                    a.len = a.len.checked_sub(1)?;
                    if a.len == 0 {
                        return None;
                    }
                }
                FDT_END => return None,
                _ => {}
            }
            off = next;
        }
    }
}

struct Ancestry {
    offs: [usize; FDT_MAX_DEPTH],
    len: usize,
}

impl Ancestry {
    fn get(&self) -> &[usize] {
        self.offs.get(..self.len).unwrap_or(&[])
    }
}

/// Does `w` hold a zero byte? (The word-at-a-time test: exact as to whether there is one.)
const fn has_zero_byte(w: u32) -> bool {
    w.wrapping_sub(0x0101_0101) & !w & 0x8080_8080 != 0
}

/// Linux: of_fdt_device_is_available() — `status` absent, `"okay"` or `"ok"`.
fn status_available(status: Option<&[u8]>) -> bool {
    match status {
        None => true,
        Some(v) => matches!(c_str(v), b"okay" | b"ok"),
    }
}

// ---------------------------------------------------------------------------------------------
// Nodes and properties.

/// A node of a validated tree (Linux: a flat-tree node offset).
#[derive(Clone, Copy)]
pub struct Node<'a> {
    fdt: Fdt<'a>,
    /// Offset of the FDT_BEGIN_NODE token in the structure block.
    off: usize,
    /// Offset of the first token after the name.
    body: usize,
}

impl PartialEq for Node<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.off == other.off && core::ptr::eq(self.fdt.blob, other.fdt.blob)
    }
}
impl Eq for Node<'_> {}

impl fmt::Debug for Node<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Node({})", self.path())
    }
}

/// A property: name and raw value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Property<'a> {
    pub name: &'a str,
    pub value: &'a [u8],
}

impl<'a> Node<'a> {
    /// Linux: fdt_get_name() — the unit name, `memory@40000000` (`""` for the root).
    pub fn name(&self) -> &'a str {
        // The name ends in the last word before the body (see Fdt::name_end()).
        let words = self.fdt.structs.get(self.off + 4..self.body).unwrap_or(&[]);
        let last = words.len().saturating_sub(4);
        let tail = words.get(last..).unwrap_or(&[]);
        let n = last + tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        core::str::from_utf8(words.get(..n).unwrap_or(&[])).unwrap_or("")
    }

    /// Linux: fdt_nodename_eq_() / of_node_name_eq() — the name is `comp`, or `comp@unit` when
    /// `comp` has no unit address itself. Compares bytes; nothing is decoded.
    pub fn name_eq(&self, comp: &str) -> bool {
        let c = comp.as_bytes();
        match self.fdt.name_cmp(self.off, c) {
            Some(exact) => (exact || !c.contains(&b'@')) && !c.contains(&0),
            None => false,
        }
    }

    /// The full path, formatted on demand (no allocation): `/reserved-memory/buf@0`.
    pub fn path(&self) -> NodePath<'a> {
        NodePath(*self)
    }

    /// Offset of the node in the blob (for messages).
    pub fn offset(&self) -> usize {
        self.fdt.struct_base + self.off
    }

    /// The tree this node belongs to.
    pub fn fdt(&self) -> Fdt<'a> {
        self.fdt
    }

    pub fn is_root(&self) -> bool {
        self.off == self.fdt.root_off
    }

    /// Properties in blob order. Like libfdt, they end at the first child node.
    pub fn properties(&self) -> Properties<'a> {
        Properties {
            fdt: self.fdt,
            off: self.body,
            done: false,
        }
    }

    /// Linux: of_get_flat_dt_prop() / fdt_getprop().
    pub fn property(&self, name: &str) -> Option<&'a [u8]> {
        let (want, structs) = (name.as_bytes(), self.fdt.structs);
        let mut off = self.body;
        loop {
            match be32(structs, off)? {
                FDT_PROP => {
                    let len = be32(structs, off + 4)? as usize;
                    let nameoff = be32(structs, off + 8)? as usize;
                    let start = off + 12;
                    if self.fdt.prop_name_is(nameoff, want) {
                        return structs.get(start..start.checked_add(len)?);
                    }
                    off = align4(start.checked_add(len)?);
                }
                FDT_NOP => off += 4,
                _ => return None,
            }
        }
    }

    pub fn has_property(&self, name: &str) -> bool {
        self.property(name).is_some()
    }

    /// A string property up to its first NUL; `None` if absent or not UTF-8.
    pub fn prop_str(&self, name: &str) -> Option<&'a str> {
        core::str::from_utf8(c_str(self.property(name)?)).ok()
    }

    /// A one-cell property; a value that is not exactly one cell is a problem, not a guess.
    pub fn prop_u32(&self, name: &'static str) -> Result<Option<u32>, Diagnostic<'a>> {
        match self.property(name) {
            None => Ok(None),
            Some(v) if v.len() == 4 => Ok(be32(v, 0)),
            Some(v) => Err(self.diag(
                Severity::Error,
                name,
                Problem::BadLength {
                    len: v.len(),
                    expected: "4 (one cell)",
                },
            )),
        }
    }

    /// The NUL-separated strings of `compatible`.
    pub fn compatible(&self) -> StrList<'a> {
        StrList {
            rest: self.property("compatible").unwrap_or(&[]),
        }
    }

    /// Linux: of_flat_dt_is_compatible() (of_compat_cmp is case-insensitive). Compares bytes:
    /// a string that equals `compat` but for ASCII case is UTF-8 as `compat` is.
    pub fn is_compatible(&self, compat: &str) -> bool {
        let Some(list) = self.property("compatible") else {
            return false;
        };
        let want = compat.as_bytes();
        let mut rest = list;
        while !rest.is_empty() {
            let s = c_str(rest);
            if s.eq_ignore_ascii_case(want) {
                return true;
            }
            rest = rest.get(s.len() + 1..).unwrap_or(&[]);
        }
        false
    }

    /// Linux: of_fdt_device_is_available().
    pub fn is_available(&self) -> bool {
        status_available(self.property("status"))
    }

    /// `device_type`, up to its NUL.
    pub fn device_type(&self) -> Option<&'a str> {
        self.prop_str("device_type")
    }

    /// Direct children in blob order, skipping NOPs.
    pub fn children(&self) -> Children<'a> {
        Children {
            fdt: self.fdt,
            off: self.body,
            depth: 0,
            done: false,
        }
    }

    /// Linux: fdt_subnode_offset() — name matching as in [`Fdt::find_node`]: the first child
    /// named `name`, else the first named `name@unit` (when `name` has no unit address).
    /// One walk over the children, comparing bytes.
    pub fn child(&self, name: &str) -> Option<Node<'a>> {
        let c = name.as_bytes();
        if c.contains(&0) {
            return None;
        }
        let unit_ok = !c.contains(&b'@');
        let mut first_unit = None;
        let mut children = self.children();
        while let Some((off, body)) = children.next_offsets() {
            match self.fdt.name_cmp(off, c) {
                Some(true) => {
                    return Some(Node {
                        fdt: self.fdt,
                        off,
                        body,
                    })
                }
                Some(false) if unit_ok && first_unit.is_none() => first_unit = Some((off, body)),
                _ => {}
            }
        }
        first_unit.map(|(off, body)| Node {
            fdt: self.fdt,
            off,
            body,
        })
    }

    /// Linux: fdt_parent_offset() (a walk from the root: the blob has no back links).
    pub fn parent(&self) -> Option<Node<'a>> {
        let a = self.fdt.ancestry(self.off)?;
        let offs = a.get();
        self.fdt.node_at(*offs.get(offs.len().checked_sub(2)?)?)
    }

    /// Linux: of_bus_n_addr_cells() — this node's `#address-cells`, else the nearest
    /// ancestor's, else the root default.
    pub fn address_cells(&self) -> u32 {
        self.bus_cells("#address-cells", OF_ROOT_NODE_ADDR_CELLS_DEFAULT)
    }

    /// Linux: of_bus_n_size_cells().
    pub fn size_cells(&self) -> u32 {
        self.bus_cells("#size-cells", OF_ROOT_NODE_SIZE_CELLS_DEFAULT)
    }

    fn bus_cells(&self, prop: &str, default: u32) -> u32 {
        // The node itself first: a bus usually says, and then the walk from the root to find
        // its ancestors is not needed.
        if let Some(v) = self.property(prop) {
            return be32(v, 0).unwrap_or(default);
        }
        let Some(a) = self.fdt.ancestry(self.off) else {
            return default;
        };
        for &off in a.get().iter().rev().skip(1) {
            if let Some(v) = self.fdt.node_at(off).and_then(|n| n.property(prop)) {
                return be32(v, 0).unwrap_or(default);
            }
        }
        default
    }

    /// `reg` decoded with the parent bus's cells (Linux: of_n_addr_cells()/of_n_size_cells()).
    pub fn reg(&self) -> Result<Option<RegIter<'a>>, Diagnostic<'a>> {
        let Some(v) = self.property("reg") else {
            return Ok(None);
        };
        let parent = self.parent().unwrap_or(*self);
        RegIter::new(v, parent.address_cells(), parent.size_cells())
            .map(Some)
            .map_err(|p| self.diag(Severity::Error, "reg", p))
    }

    /// The first `reg` address translated to a CPU physical address through every ancestor
    /// bus's `ranges` (Linux: of_translate_address() for the default bus; an empty `ranges`
    /// maps 1:1, a missing one makes the address untranslatable).
    pub fn translated_reg_base(&self) -> Result<Option<PhysAddr>, Diagnostic<'a>> {
        let Some(mut regs) = self.reg()? else {
            return Ok(None);
        };
        let Some(first) = regs.next() else {
            return Ok(None);
        };
        let mut addr = first.base;
        let Some(anc) = self.fdt.ancestry(self.off) else {
            return Ok(Some(PhysAddr(addr)));
        };
        let chain = anc.get();
        // Walk from the node's parent up to (not including) the root: each is a bus whose
        // `ranges` maps its children's addresses into its own parent's space.
        let buses = chain.get(..chain.len().saturating_sub(1)).unwrap_or(&[]);
        for (i, &bus_off) in buses.iter().enumerate().skip(1).rev() {
            let Some(bus) = self.fdt.node_at(bus_off) else {
                break;
            };
            let Some(ranges) = bus.property("ranges") else {
                return Err(bus.diag(Severity::Error, "ranges", Problem::Untranslatable { addr }));
            };
            if ranges.is_empty() {
                continue;
            }
            let up = buses
                .get(i - 1)
                .and_then(|&o| self.fdt.node_at(o))
                .unwrap_or(bus);
            let (ca, pa, cs) = (bus.address_cells(), up.address_cells(), bus.size_cells());
            if ca > 2 || pa > 2 || cs > 2 {
                let (which, cells) = if ca > 2 {
                    ("#address-cells", ca)
                } else if pa > 2 {
                    ("parent #address-cells", pa)
                } else {
                    ("#size-cells", cs)
                };
                return Err(bus.diag(
                    Severity::Error,
                    "ranges",
                    Problem::CellsUnsupported { which, cells },
                ));
            }
            let entry = ((ca + pa + cs) * 4) as usize;
            let mut hit = None;
            for e in ranges.chunks_exact(entry.max(1)) {
                let (Some(child), Some(parent), Some(size)) = (
                    of_read_number(e, ca),
                    e.get(ca as usize * 4..).and_then(|r| of_read_number(r, pa)),
                    e.get((ca + pa) as usize * 4..)
                        .and_then(|r| of_read_number(r, cs)),
                ) else {
                    continue;
                };
                if addr >= child && addr - child < size {
                    hit = Some(parent.wrapping_add(addr - child));
                    break;
                }
            }
            match hit {
                Some(a) => addr = a,
                None => {
                    return Err(bus.diag(
                        Severity::Error,
                        "ranges",
                        Problem::Untranslatable { addr },
                    ))
                }
            }
        }
        Ok(Some(PhysAddr(addr)))
    }

    /// A diagnostic about `property` of this node.
    pub fn diag(
        &self,
        severity: Severity,
        property: &'static str,
        problem: Problem<'a>,
    ) -> Diagnostic<'a> {
        Diagnostic {
            severity,
            node: *self,
            property,
            problem,
        }
    }
}

/// Formats a node's full path by walking from the root (the blob has no parent links).
#[derive(Clone, Copy)]
pub struct NodePath<'a>(Node<'a>);

impl fmt::Display for NodePath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let n = &self.0;
        let Some(a) = n.fdt.ancestry(n.off) else {
            return write!(f, "/{}", n.name());
        };
        if a.len <= 1 {
            return f.write_str("/");
        }
        for &off in a.get().iter().skip(1) {
            write!(f, "/{}", n.fdt.node_at(off).map_or("?", |x| x.name()))?;
        }
        Ok(())
    }
}

impl fmt::Debug for NodePath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Iterator over a node's properties.
#[derive(Clone)]
pub struct Properties<'a> {
    fdt: Fdt<'a>,
    off: usize,
    done: bool,
}

impl<'a> Iterator for Properties<'a> {
    type Item = Property<'a>;
    fn next(&mut self) -> Option<Property<'a>> {
        while !self.done {
            let Some((tag, next)) = self.fdt.step(self.off) else {
                break;
            };
            let here = self.off;
            self.off = next;
            match tag {
                FDT_PROP => {
                    let structs = self.fdt.structs;
                    let (Some(len), Some(nameoff)) =
                        (be32(structs, here + 4), be32(structs, here + 8))
                    else {
                        break;
                    };
                    let Some(value) = structs.get(here + 12..here + 12 + len as usize) else {
                        break;
                    };
                    let name = self.fdt.prop_name(nameoff as usize);
                    return Some(Property { name, value });
                }
                FDT_NOP => {}
                _ => break,
            }
        }
        self.done = true;
        None
    }
}

/// Iterator over a node's direct children.
#[derive(Clone)]
pub struct Children<'a> {
    fdt: Fdt<'a>,
    off: usize,
    depth: usize,
    done: bool,
}

impl Children<'_> {
    /// The next child's (offset, body offset), without making a [`Node`] of it.
    #[inline]
    fn next_offsets(&mut self) -> Option<(usize, usize)> {
        while !self.done {
            let Some((tag, next)) = self.fdt.step(self.off) else {
                break;
            };
            let here = self.off;
            self.off = next;
            match tag {
                FDT_BEGIN_NODE => {
                    self.depth += 1;
                    if self.depth == 1 {
                        return Some((here, next));
                    }
                }
                FDT_END_NODE => match self.depth.checked_sub(1) {
                    Some(d) => self.depth = d,
                    None => break,
                },
                FDT_END => break,
                _ => {}
            }
        }
        self.done = true;
        None
    }
}

impl<'a> Iterator for Children<'a> {
    type Item = Node<'a>;
    fn next(&mut self) -> Option<Node<'a>> {
        let (off, body) = self.next_offsets()?;
        Some(Node {
            fdt: self.fdt,
            off,
            body,
        })
    }
}

/// Iterator over every node with its depth.
#[derive(Clone)]
pub struct AllNodes<'a> {
    fdt: Fdt<'a>,
    off: usize,
    depth: usize,
    done: bool,
}

impl<'a> Iterator for AllNodes<'a> {
    type Item = (Node<'a>, usize);
    fn next(&mut self) -> Option<(Node<'a>, usize)> {
        while !self.done {
            let Some((tag, next)) = self.fdt.step(self.off) else {
                break;
            };
            let here = self.off;
            self.off = next;
            match tag {
                FDT_BEGIN_NODE => {
                    self.depth += 1;
                    return Some((
                        Node {
                            fdt: self.fdt,
                            off: here,
                            body: next,
                        },
                        self.depth - 1,
                    ));
                }
                FDT_END_NODE => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        break;
                    }
                }
                FDT_END => break,
                _ => {}
            }
        }
        self.done = true;
        None
    }
}

/// The strings of a NUL-separated string list (`compatible`); a string that is not UTF-8
/// cannot equal any name we look for, so it is skipped.
#[derive(Clone, Debug)]
pub struct StrList<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for StrList<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        while !self.rest.is_empty() {
            let s = c_str(self.rest);
            self.rest = self.rest.get(s.len() + 1..).unwrap_or(&[]);
            if let Ok(s) = core::str::from_utf8(s) {
                return Some(s);
            }
        }
        None
    }
}

// ---------------------------------------------------------------------------------------------
// (address, size) decoding.

/// One (address, size) entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegEntry {
    pub base: u64,
    pub size: u64,
}

/// (address, size) pairs of a `reg`-like property. A trailing partial entry is not yielded
/// (Linux's loops stop there too); [`RegIter::trailing_bytes`] tells whether there was one.
#[derive(Clone, Copy, Debug)]
pub struct RegIter<'a> {
    data: &'a [u8],
    addr_cells: u32,
    size_cells: u32,
}

impl<'a> RegIter<'a> {
    /// Refuses cell counts a u64 cannot hold, and 0 + 0 (Linux would loop forever on it).
    pub fn new(data: &'a [u8], addr_cells: u32, size_cells: u32) -> Result<Self, Problem<'a>> {
        if addr_cells > 2 {
            return Err(Problem::CellsUnsupported {
                which: "#address-cells",
                cells: addr_cells,
            });
        }
        if size_cells > 2 {
            return Err(Problem::CellsUnsupported {
                which: "#size-cells",
                cells: size_cells,
            });
        }
        if addr_cells + size_cells == 0 {
            return Err(Problem::NoCells);
        }
        Ok(Self {
            data,
            addr_cells,
            size_cells,
        })
    }

    /// Bytes per entry.
    pub fn entry_size(&self) -> usize {
        ((self.addr_cells + self.size_cells) * 4) as usize
    }

    /// Whole entries left.
    pub fn len(&self) -> usize {
        self.data.len() / self.entry_size()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes after the last whole entry (of the remaining data).
    pub fn trailing_bytes(&self) -> usize {
        self.data.len() % self.entry_size()
    }
}

impl Iterator for RegIter<'_> {
    type Item = RegEntry;
    fn next(&mut self) -> Option<RegEntry> {
        let es = self.entry_size();
        let e = self.data.get(..es)?;
        self.data = self.data.get(es..).unwrap_or(&[]);
        // Linux: dt_mem_next_cell() twice.
        let base = of_read_number(e, self.addr_cells)?;
        let size = of_read_number(e.get(self.addr_cells as usize * 4..)?, self.size_cells)?;
        Some(RegEntry { base, size })
    }
}

// ---------------------------------------------------------------------------------------------
// Diagnostics.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Linux carries on (often silently); so do we, but we say so.
    Warning,
    /// The item is ignored: it cannot be decoded without guessing.
    Error,
}

/// What is wrong with a property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem<'a> {
    Missing,
    BadLength {
        len: usize,
        expected: &'static str,
    },
    NotString,
    /// A number wider than 64 bits (Linux's of_read_number() would keep the low 64).
    CellsUnsupported {
        which: &'static str,
        cells: u32,
    },
    /// `#address-cells` and `#size-cells` both 0: entries of no bytes.
    NoCells,
    /// A length that is not a whole number of entries; the partial entry is ignored.
    TrailingBytes {
        len: usize,
        entry_size: usize,
    },
    /// Memory entry of size 0 (Linux: skipped silently).
    ZeroSize {
        entry: usize,
        base: u64,
    },
    /// base + size - 1 does not fit in 64 bits.
    RangeOverflow {
        entry: usize,
        base: u64,
        size: u64,
    },
    /// A memory node with neither `linux,usable-memory` nor `reg`.
    NoReg,
    InitrdReversed {
        start: u64,
        end: u64,
    },
    InitrdEndMissing,
    /// `/psci` `method` other than `hvc`/`smc`.
    UnknownMethod(&'a str),
    /// A CPU `reg` with bits outside MPIDR_HWID_BITMASK.
    InvalidMpidr(u64),
    /// A path (`stdout-path`) that names no node.
    PathNotFound(&'a str),
    /// An address no `ranges` entry of this bus covers (or the bus has no `ranges`).
    Untranslatable {
        addr: u64,
    },
    /// Linux: __reserved_mem_check_root() failed on a cell count.
    RsvCellsMismatch {
        which: &'static str,
        value: Option<u32>,
        root: u32,
    },
    /// Linux: __reserved_mem_check_root() failed: no `ranges`.
    RsvNoRanges,
    /// Linux: "invalid reg property" in a /reserved-memory child.
    RsvInvalidReg {
        len: usize,
        entry_size: usize,
    },
    /// A static region entry of size 0 (Linux: "failed to reserve memory").
    RsvZeroSize {
        entry: usize,
        base: u64,
    },
    /// Linux: "invalid size property".
    RsvInvalidSize {
        len: usize,
        expected: usize,
    },
    /// Linux: "invalid alignment property".
    RsvInvalidAlignment {
        len: usize,
        expected: usize,
    },
    /// Linux: "invalid alloc-ranges property".
    RsvInvalidAllocRanges {
        len: usize,
        entry_size: usize,
    },
    /// A /reserved-memory child with neither `reg` nor `size` (Linux ignores it silently).
    RsvNoRegNoSize,
    /// Linux: "No distance-matrix property in distance-map".
    NoDistanceMatrix,
    /// Linux: "Invalid distance[node%d -> node%d] = %d".
    InvalidDistance {
        from: u32,
        to: u32,
        distance: u32,
    },
}

impl fmt::Display for Problem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        use Problem::*;
        match *self {
            Missing => f.write_str("missing"),
            BadLength { len, expected } => write!(f, "length {len}, expected {expected}"),
            NotString => f.write_str("not a UTF-8 string"),
            CellsUnsupported { which, cells } => write!(
                f,
                "cannot decode with {which} = {cells}: at most 2 cells fit a 64-bit number"
            ),
            NoCells => f.write_str("cannot decode with #address-cells = 0 and #size-cells = 0"),
            TrailingBytes { len, entry_size } => write!(
                f,
                "length {len} is not a multiple of the {entry_size}-byte entry; the trailing {} \
                 bytes are ignored",
                len % entry_size.max(1)
            ),
            ZeroSize { entry, base } => {
                write!(f, "entry {entry} at {base:#x} has size 0, skipped")
            }
            RangeOverflow { entry, base, size } => write!(
                f,
                "entry {entry}: base {base:#x} + size {size:#x} wraps past 2^64, skipped"
            ),
            NoReg => f.write_str("neither linux,usable-memory nor reg: node ignored"),
            InitrdReversed { start, end } => write!(
                f,
                "linux,initrd-start {start:#x} is above linux,initrd-end {end:#x}: initrd ignored"
            ),
            InitrdEndMissing => {
                f.write_str("linux,initrd-start without linux,initrd-end: initrd ignored")
            }
            UnknownMethod(m) => write!(f, "invalid \"method\" property: {m}"),
            InvalidMpidr(v) => write!(f, "invalid reg property {v:#x} (bits outside MPIDR affinity)"),
            PathNotFound(p) => write!(f, "{p} not found"),
            Untranslatable { addr } => write!(f, "address {addr:#x} is not translatable"),
            RsvCellsMismatch { which, value: Some(v), root } => write!(
                f,
                "Reserved memory: unsupported node format, ignoring ({which} = {v}, the root has {root})"
            ),
            RsvCellsMismatch { which, value: None, root } => write!(
                f,
                "Reserved memory: unsupported node format, ignoring (no {which}, the root has {root})"
            ),
            RsvNoRanges => {
                f.write_str("Reserved memory: unsupported node format, ignoring (no ranges)")
            }
            RsvInvalidReg { len, entry_size } => write!(
                f,
                "Reserved memory: invalid reg property (length {len} is not a multiple of \
                 {entry_size}), skipping node"
            ),
            RsvZeroSize { entry, base } => write!(
                f,
                "Reserved memory: failed to reserve memory: entry {entry} at {base:#x} has size 0"
            ),
            RsvInvalidSize { len, expected } => {
                write!(f, "invalid size property (length {len}, expected {expected})")
            }
            RsvInvalidAlignment { len, expected } => {
                write!(f, "invalid alignment property (length {len}, expected {expected})")
            }
            RsvInvalidAllocRanges { len, entry_size } => write!(
                f,
                "invalid alloc-ranges property (length {len} is not a multiple of {entry_size}), \
                 skipping node"
            ),
            RsvNoRegNoSize => f.write_str("neither reg nor size: node ignored"),
            NoDistanceMatrix => f.write_str("No distance-matrix property in distance-map"),
            InvalidDistance { from, to, distance } => {
                write!(f, "Invalid distance[node{from} -> node{to}] = {distance}")
            }
        }
    }
}

/// A problem found in a node: where (node path, property) and what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Diagnostic<'a> {
    pub severity: Severity,
    pub node: Node<'a>,
    /// The property at fault (`""` for the node as a whole).
    pub property: &'static str,
    pub problem: Problem<'a>,
}

impl fmt::Display for Diagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.property.is_empty() {
            write!(f, "{}: {}", self.node.path(), self.problem)
        } else {
            write!(
                f,
                "{}: {}: {}",
                self.node.path(),
                self.property,
                self.problem
            )
        }
    }
}

impl Diagnostic<'_> {
    /// Prints the diagnostic at its severity with the given `pr_fmt` prefix.
    pub fn print(&self, prefix: &str) {
        match self.severity {
            Severity::Warning => pr_warn!("{}{}\n", prefix, self),
            Severity::Error => pr_err!("{}{}\n", prefix, self),
        }
    }
}

/// A small FIFO of diagnostics for the scanning iterators (a node yields at most a few before
/// its ranges; more are dropped). Popping an empty queue touches no slot: the scans ask once
/// per node.
#[derive(Clone, Copy)]
pub(crate) struct DiagQueue<'a> {
    items: [Option<Diagnostic<'a>>; 4],
    head: usize,
    len: usize,
}

impl<'a> DiagQueue<'a> {
    pub(crate) const fn new() -> Self {
        Self {
            items: [None; 4],
            head: 0,
            len: 0,
        }
    }

    pub(crate) fn push(&mut self, d: Diagnostic<'a>) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = Some(d);
            self.len += 1;
        }
    }

    pub(crate) fn pop(&mut self) -> Option<Diagnostic<'a>> {
        if self.head >= self.len {
            (self.head, self.len) = (0, 0);
            return None;
        }
        let d = self.items.get_mut(self.head).and_then(Option::take);
        self.head += 1;
        d
    }
}

// ---------------------------------------------------------------------------------------------
// /memreserve/.

/// One /memreserve/ entry (Linux: struct fdt_reserve_entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemReserve {
    pub base: PhysAddr,
    pub size: u64,
}

/// Iterator behind [`Fdt::mem_rsv`].
#[derive(Clone)]
pub struct MemRsvIter<'a> {
    blob: &'a [u8],
    off: usize,
}

impl Iterator for MemRsvIter<'_> {
    type Item = MemReserve;
    fn next(&mut self) -> Option<MemReserve> {
        let base = be64(self.blob, self.off)?;
        let size = be64(self.blob, self.off + 8)?;
        if size == 0 {
            return None;
        }
        self.off += 16;
        Some(MemReserve {
            base: PhysAddr(base),
            size,
        })
    }
}

impl<'a> Fdt<'a> {
    /// Linux: the fdt_get_mem_rsv() loop of early_init_fdt_scan_reserved_mem() — entries up to
    /// the first of size 0. (The blob itself is not listed: see drivers/of/fdt.rs's
    /// `early_init_fdt_reserve_self`.)
    pub fn mem_rsv(&self) -> MemRsvIter<'a> {
        MemRsvIter {
            blob: self.blob,
            off: self.header().off_mem_rsvmap as usize,
        }
    }
}

#[cfg(test)]
mod tests;
