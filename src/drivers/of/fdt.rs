//! The flattened device tree: header check, a validated view of the blob, and the early scans
//! Linux runs on it before anything is unflattened (Linux: drivers/of/fdt.c,
//! scripts/dtc/libfdt/fdt.c, drivers/of/of_numa.c, drivers/firmware/psci/psci.c).
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
//! the walker keeps the no-panic guarantee in one file. The crate stays useful as an
//! independent oracle: the tests check our walker against it on the QEMU fixtures.
//!
//! Queries that can meet malformed properties return a [`Diagnostic`] (node path, property,
//! problem) rather than guessing; the `early_init_*` functions print them the way the rest of
//! the kernel prints (`pr_warn!`/`pr_err!`), with Linux's text where Linux prints a line.

// Without `alloc` a diagnostic cannot be boxed; it is returned by value on cold paths only.
#![allow(clippy::result_large_err)]

use core::fmt;

use crate::mm::addr::PhysAddr;
use crate::mm::memblock::{MemType, Memblock};

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
/// Linux: MAX_USABLE_RANGES (only the first two `linux,usable-memory-range` entries count).
pub const MAX_USABLE_RANGES: usize = 2;
/// Linux: MPIDR_HWID_BITMASK (arm64): the affinity fields Aff3..Aff0.
pub const MPIDR_HWID_BITMASK: u64 = 0xff_00ff_ffff;
/// Linux: LOCAL_DISTANCE.
pub const LOCAL_DISTANCE: u32 = 10;

const FDT_BEGIN_NODE: u32 = 0x1;
const FDT_END_NODE: u32 = 0x2;
const FDT_PROP: u32 = 0x3;
const FDT_NOP: u32 = 0x4;
const FDT_END: u32 = 0x9;

/// Linux's pr_fmt for drivers/of/fdt.c.
pub(crate) const PR_FDT: &str = "OF: fdt: ";

// ---------------------------------------------------------------------------------------------
// Byte helpers: every read is checked, so nothing here can panic on a short slice.

pub(crate) fn be32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes(s.try_into().ok()?))
}

fn be64(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    Some(u64::from_be_bytes(s.try_into().ok()?))
}

const fn align4(x: usize) -> usize {
    (x + 3) & !3
}

/// The bytes of a string property up to its first NUL (C's strcmp sees no further).
fn c_str(value: &[u8]) -> &[u8] {
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
// Header.

/// The blob header (Linux: struct fdt_header), fields in host order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdtHeader {
    pub magic: u32,
    pub totalsize: u32,
    pub off_dt_struct: u32,
    pub off_dt_strings: u32,
    pub off_mem_rsvmap: u32,
    pub version: u32,
    pub last_comp_version: u32,
    pub boot_cpuid_phys: u32,
    pub size_dt_strings: u32,
    /// Only meaningful from version 17.
    pub size_dt_struct: u32,
}

impl FdtHeader {
    /// Linux: fdt_header_size_().
    pub fn header_size(&self) -> u32 {
        match self.version {
            0..=1 => 28,
            2 => 32,
            3..=16 => 36,
            _ => 40,
        }
    }

    /// End of the structure block: version 16 has no size field, so it runs to `totalsize`.
    fn struct_end(&self) -> u64 {
        if self.version >= 17 {
            u64::from(self.off_dt_struct) + u64::from(self.size_dt_struct)
        } else {
            u64::from(self.totalsize)
        }
    }
}

/// Why a blob was rejected. Offsets are from the start of the blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdtError {
    /// Fewer bytes than the 40-byte header.
    TooShort {
        len: usize,
    },
    BadMagic(u32),
    BadVersion {
        version: u32,
        last_comp_version: u32,
    },
    TotalsizeTooSmall {
        totalsize: u32,
        header_size: u32,
    },
    TotalsizeTooLarge {
        totalsize: u32,
    },
    /// A block starts inside the header or ends past `totalsize`.
    BlockOutOfBounds {
        block: &'static str,
        offset: u32,
        size: u32,
        totalsize: u32,
        header_size: u32,
    },
    Misaligned {
        block: &'static str,
        offset: u32,
        align: u32,
    },
    /// `totalsize` claims more bytes than the caller has.
    Truncated {
        totalsize: u32,
        len: usize,
    },
    BadToken {
        offset: usize,
        token: u32,
    },
    UnterminatedNodeName {
        offset: usize,
    },
    NodeNameNotUtf8 {
        offset: usize,
    },
    PropertyTruncated {
        offset: usize,
        len: u32,
    },
    BadNameOffset {
        offset: usize,
        nameoff: u32,
        strings_size: usize,
    },
    UnterminatedPropName {
        offset: usize,
        nameoff: u32,
    },
    PropNameNotUtf8 {
        offset: usize,
        nameoff: u32,
    },
    PropertyOutsideNode {
        offset: usize,
    },
    UnbalancedEndNode {
        offset: usize,
    },
    UnclosedNode {
        offset: usize,
        depth: usize,
    },
    MissingEnd {
        offset: usize,
    },
    NoRoot {
        offset: usize,
    },
    SecondRoot {
        offset: usize,
    },
    TooDeep {
        offset: usize,
    },
    MemRsvUnterminated {
        offset: usize,
    },
    /// The root's `#address-cells`/`#size-cells` is not one cell long.
    BadRootCells {
        property: &'static str,
        len: usize,
    },
}

impl fmt::Display for FdtError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        use FdtError::*;
        match *self {
            TooShort { len } => {
                write!(
                    f,
                    "blob is {len} bytes, shorter than the {FDT_V17_HEADER_SIZE}-byte header"
                )
            }
            BadMagic(m) => write!(f, "bad magic {m:#010x} (expected {FDT_MAGIC:#010x})"),
            BadVersion {
                version,
                last_comp_version,
            } => write!(
                f,
                "unsupported version {version} (last_comp_version {last_comp_version}): need \
                 version >= {FDT_FIRST_SUPPORTED_VERSION}, last_comp_version <= \
                 {FDT_LAST_SUPPORTED_VERSION} and last_comp_version <= version"
            ),
            TotalsizeTooSmall {
                totalsize,
                header_size,
            } => write!(
                f,
                "totalsize {totalsize:#x} is smaller than the {header_size}-byte header"
            ),
            TotalsizeTooLarge { totalsize } => {
                write!(f, "totalsize {totalsize:#x} is larger than INT_MAX")
            }
            BlockOutOfBounds {
                block,
                offset,
                size,
                totalsize,
                header_size,
            } => {
                if offset < header_size {
                    write!(
                        f,
                        "{block} block offset {offset:#x} is inside the {header_size}-byte header"
                    )
                } else {
                    write!(
                        f,
                        "{block} block at offset {offset:#x} (size {size:#x}) extends past \
                         totalsize {totalsize:#x}"
                    )
                }
            }
            Misaligned {
                block,
                offset,
                align,
            } => {
                write!(
                    f,
                    "{block} block offset {offset:#x} is not {align}-byte aligned"
                )
            }
            Truncated { totalsize, len } => {
                write!(
                    f,
                    "totalsize {totalsize:#x} is larger than the {len:#x} bytes given"
                )
            }
            BadToken { offset, token } => {
                write!(f, "bad token {token:#010x} at offset {offset:#x}")
            }
            UnterminatedNodeName { offset } => write!(
                f,
                "node name at offset {offset:#x} is not NUL-terminated within the structure block"
            ),
            NodeNameNotUtf8 { offset } => {
                write!(f, "node name at offset {offset:#x} is not valid UTF-8")
            }
            PropertyTruncated { offset, len } => write!(
                f,
                "property at offset {offset:#x}: its {len}-byte value runs past the end of the \
                 structure block"
            ),
            BadNameOffset {
                offset,
                nameoff,
                strings_size,
            } => write!(
                f,
                "property at offset {offset:#x}: name offset {nameoff:#x} is outside the \
                 {strings_size:#x}-byte strings block"
            ),
            UnterminatedPropName { offset, nameoff } => write!(
                f,
                "property at offset {offset:#x}: name at strings offset {nameoff:#x} is not \
                 NUL-terminated within the strings block"
            ),
            PropNameNotUtf8 { offset, nameoff } => write!(
                f,
                "property at offset {offset:#x}: name at strings offset {nameoff:#x} is not \
                 valid UTF-8"
            ),
            PropertyOutsideNode { offset } => {
                write!(f, "property at offset {offset:#x} is outside any node")
            }
            UnbalancedEndNode { offset } => write!(
                f,
                "FDT_END_NODE at offset {offset:#x} has no matching FDT_BEGIN_NODE"
            ),
            UnclosedNode { offset, depth } => {
                write!(
                    f,
                    "FDT_END at offset {offset:#x} with {depth} node(s) still open"
                )
            }
            MissingEnd { offset } => write!(
                f,
                "structure block ends at offset {offset:#x} without an FDT_END token"
            ),
            NoRoot { offset } => write!(f, "FDT_END at offset {offset:#x} before any root node"),
            SecondRoot { offset } => {
                write!(
                    f,
                    "second top-level node at offset {offset:#x} (only one root allowed)"
                )
            }
            TooDeep { offset } => write!(
                f,
                "node at offset {offset:#x} is nested deeper than {FDT_MAX_DEPTH} levels"
            ),
            MemRsvUnterminated { offset } => write!(
                f,
                "/memreserve/ block at offset {offset:#x} has no terminating entry within totalsize"
            ),
            BadRootCells { property, len } => {
                write!(
                    f,
                    "root {property} is {len} bytes long (expected one 4-byte cell)"
                )
            }
        }
    }
}

/// Linux: libfdt check_off_().
fn check_off(hdrsize: u32, totalsize: u32, off: u64) -> bool {
    off >= u64::from(hdrsize) && off <= u64::from(totalsize)
}

/// Linux: fdt_check_header() — needs only the first 40 bytes, so the kernel can check the
/// header before it knows how much to map. Returns the decoded header.
pub fn fdt_check_header(bytes: &[u8]) -> Result<FdtHeader, FdtError> {
    if bytes.len() < FDT_V17_HEADER_SIZE {
        return Err(FdtError::TooShort { len: bytes.len() });
    }
    let w = |i: usize| be32(bytes, i * 4).unwrap_or(0);
    let h = FdtHeader {
        magic: w(0),
        totalsize: w(1),
        off_dt_struct: w(2),
        off_dt_strings: w(3),
        off_mem_rsvmap: w(4),
        version: w(5),
        last_comp_version: w(6),
        boot_cpuid_phys: w(7),
        size_dt_strings: w(8),
        size_dt_struct: w(9),
    };
    if h.magic != FDT_MAGIC {
        return Err(FdtError::BadMagic(h.magic));
    }
    if h.version < FDT_FIRST_SUPPORTED_VERSION
        || h.last_comp_version > FDT_LAST_SUPPORTED_VERSION
        || h.version < h.last_comp_version
    {
        return Err(FdtError::BadVersion {
            version: h.version,
            last_comp_version: h.last_comp_version,
        });
    }
    let hdr = h.header_size();
    let total = h.totalsize;
    if total < hdr {
        return Err(FdtError::TotalsizeTooSmall {
            totalsize: total,
            header_size: hdr,
        });
    }
    if total > i32::MAX as u32 {
        return Err(FdtError::TotalsizeTooLarge { totalsize: total });
    }
    let oob = |block, offset, size| FdtError::BlockOutOfBounds {
        block,
        offset,
        size,
        totalsize: total,
        header_size: hdr,
    };
    if !check_off(hdr, total, h.off_mem_rsvmap.into()) {
        return Err(oob("memory reservation", h.off_mem_rsvmap, 0));
    }
    let struct_size = if h.version >= 17 { h.size_dt_struct } else { 0 };
    if !check_off(hdr, total, h.off_dt_struct.into()) || !check_off(hdr, total, h.struct_end()) {
        return Err(oob("structure", h.off_dt_struct, struct_size));
    }
    let strings_end = u64::from(h.off_dt_strings) + u64::from(h.size_dt_strings);
    if !check_off(hdr, total, h.off_dt_strings.into()) || !check_off(hdr, total, strings_end) {
        return Err(oob("strings", h.off_dt_strings, h.size_dt_strings));
    }
    // The spec's alignment; our reads are bytewise, but a kernel reading the blob with u64
    // loads (memreserve entries) under strict-align would fault on a misaligned block.
    if !h.off_mem_rsvmap.is_multiple_of(8) {
        return Err(FdtError::Misaligned {
            block: "memory reservation",
            offset: h.off_mem_rsvmap,
            align: 8,
        });
    }
    if !h.off_dt_struct.is_multiple_of(4) {
        return Err(FdtError::Misaligned {
            block: "structure",
            offset: h.off_dt_struct,
            align: 4,
        });
    }
    Ok(h)
}

/// Reads and checks the header at `ptr` (Linux: early_init_dt_verify()'s fdt_check_header()).
///
/// # Safety
/// `ptr` must point to at least [`FDT_V17_HEADER_SIZE`] readable bytes that nothing writes
/// during the call.
pub unsafe fn fdt_header_from_ptr(ptr: *const u8) -> Result<FdtHeader, FdtError> {
    // SAFETY: the caller guarantees 40 mapped, readable, unaliased-for-writing bytes at `ptr`.
    let bytes = unsafe { core::slice::from_raw_parts(ptr, FDT_V17_HEADER_SIZE) };
    fdt_check_header(bytes)
}

/// Turns a mapped blob into the slice [`Fdt::new`] takes, `header.totalsize` bytes long.
///
/// # Safety
/// `ptr` must point to `header.totalsize` readable bytes that stay mapped and unmodified for
/// `'a` (the kernel keeps the DTB mapped read-only for its whole life).
pub unsafe fn fdt_blob_from_ptr<'a>(ptr: *const u8, header: &FdtHeader) -> &'a [u8] {
    // SAFETY: the caller guarantees `totalsize` readable bytes that live for 'a.
    unsafe { core::slice::from_raw_parts(ptr, header.totalsize as usize) }
}

// ---------------------------------------------------------------------------------------------
// Tokens and the validating walk.

#[derive(Clone, Copy)]
enum Token<'a> {
    BeginNode(&'a str),
    EndNode,
    Prop { name: &'a str, value: &'a [u8] },
    Nop,
    End,
}

/// Decodes the token at `off` in the structure block; returns it and the next token's offset
/// (always > `off`, so every walk terminates). `base` turns errors into blob offsets.
fn parse_token<'a>(
    structs: &'a [u8],
    strings: &'a [u8],
    off: usize,
    base: usize,
) -> Result<(Token<'a>, usize), FdtError> {
    let at = base + off;
    let tag = be32(structs, off).ok_or(FdtError::MissingEnd { offset: at })?;
    match tag {
        FDT_BEGIN_NODE => {
            let rest = structs.get(off + 4..).unwrap_or(&[]);
            let n = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or(FdtError::UnterminatedNodeName { offset: at })?;
            let name = core::str::from_utf8(&rest[..n])
                .map_err(|_| FdtError::NodeNameNotUtf8 { offset: at })?;
            Ok((Token::BeginNode(name), align4(off + 4 + n + 1)))
        }
        FDT_END_NODE => Ok((Token::EndNode, off + 4)),
        FDT_PROP => {
            let len =
                be32(structs, off + 4).ok_or(FdtError::PropertyTruncated { offset: at, len: 0 })?;
            let nameoff =
                be32(structs, off + 8).ok_or(FdtError::PropertyTruncated { offset: at, len: 0 })?;
            let start = off + 12;
            let end = start.checked_add(len as usize);
            let value = end
                .and_then(|e| structs.get(start..e))
                .ok_or(FdtError::PropertyTruncated { offset: at, len })?;
            let name_bytes = strings
                .get(nameoff as usize..)
                .ok_or(FdtError::BadNameOffset {
                    offset: at,
                    nameoff,
                    strings_size: strings.len(),
                })?;
            if name_bytes.is_empty() {
                return Err(FdtError::BadNameOffset {
                    offset: at,
                    nameoff,
                    strings_size: strings.len(),
                });
            }
            let n =
                name_bytes
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or(FdtError::UnterminatedPropName {
                        offset: at,
                        nameoff,
                    })?;
            let name =
                core::str::from_utf8(&name_bytes[..n]).map_err(|_| FdtError::PropNameNotUtf8 {
                    offset: at,
                    nameoff,
                })?;
            Ok((Token::Prop { name, value }, align4(start + len as usize)))
        }
        FDT_NOP => Ok((Token::Nop, off + 4)),
        FDT_END => Ok((Token::End, off + 4)),
        token => Err(FdtError::BadToken { offset: at, token }),
    }
}

/// Walks the whole structure block once; returns the root node's offset.
fn validate_structure(structs: &[u8], strings: &[u8], base: usize) -> Result<usize, FdtError> {
    let mut off = 0;
    let mut depth = 0usize;
    let mut root = None;
    loop {
        let (tok, next) = parse_token(structs, strings, off, base)?;
        let at = base + off;
        match tok {
            Token::BeginNode(_) => {
                if depth == 0 {
                    if root.is_some() {
                        return Err(FdtError::SecondRoot { offset: at });
                    }
                    root = Some(off);
                }
                depth += 1;
                if depth > FDT_MAX_DEPTH {
                    return Err(FdtError::TooDeep { offset: at });
                }
            }
            Token::EndNode => {
                if depth == 0 {
                    return Err(FdtError::UnbalancedEndNode { offset: at });
                }
                depth -= 1;
            }
            Token::Prop { .. } => {
                if depth == 0 {
                    return Err(FdtError::PropertyOutsideNode { offset: at });
                }
            }
            Token::Nop => {}
            Token::End => {
                if depth != 0 {
                    return Err(FdtError::UnclosedNode { offset: at, depth });
                }
                return root.ok_or(FdtError::NoRoot { offset: at });
            }
        }
        off = next;
    }
}

/// Checks that the /memreserve/ list ends (with a zero size, which is where Linux's loop stops)
/// inside the blob.
fn validate_memrsv(blob: &[u8], off: usize) -> Result<(), FdtError> {
    let mut p = off;
    loop {
        match (be64(blob, p), be64(blob, p + 8)) {
            (Some(_), Some(0)) => return Ok(()),
            (Some(_), Some(_)) => p += 16,
            _ => return Err(FdtError::MemRsvUnterminated { offset: off }),
        }
    }
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

    fn token(&self, off: usize) -> Option<(Token<'a>, usize)> {
        parse_token(self.structs, self.strings, off, self.struct_base).ok()
    }

    fn node_at(&self, off: usize) -> Option<Node<'a>> {
        match self.token(off)? {
            (Token::BeginNode(name), body) => Some(Node {
                fdt: *self,
                off,
                body,
                name,
            }),
            _ => None,
        }
    }

    /// Linux: of_get_flat_dt_root().
    pub fn root(&self) -> Node<'a> {
        self.node_at(self.root_off).unwrap_or(Node {
            fdt: *self,
            off: self.root_off,
            body: self.root_off,
            name: "",
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
    fn root_reg(&self, data: &'a [u8]) -> Result<RegIter<'a>, Problem<'a>> {
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
            let (tok, next) = self.token(off)?;
            match tok {
                Token::BeginNode(_) => {
                    *a.offs.get_mut(a.len)? = off;
                    a.len += 1;
                    if off == target {
                        return Some(a);
                    }
                }
                Token::EndNode => {
                    a.len = a.len.checked_sub(1)?;
                    if a.len == 0 {
                        return None;
                    }
                }
                Token::End => return None,
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

/// Linux: fdt_nodename_eq_() — `comp` matches `name` exactly, or `name` is `comp@unit` when
/// `comp` has no unit address itself.
fn nodename_eq(name: &str, comp: &str) -> bool {
    match name.strip_prefix(comp) {
        Some("") => true,
        Some(rest) => rest.starts_with('@') && !comp.contains('@'),
        None => false,
    }
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
    name: &'a str,
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
        self.name
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
        self.properties().find(|p| p.name == name).map(|p| p.value)
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

    /// Linux: of_flat_dt_is_compatible() (of_compat_cmp is case-insensitive).
    pub fn is_compatible(&self, compat: &str) -> bool {
        self.compatible().any(|c| c.eq_ignore_ascii_case(compat))
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

    /// Linux: fdt_subnode_offset() — name matching as in [`Fdt::find_node`].
    pub fn child(&self, name: &str) -> Option<Node<'a>> {
        let exact = self.children().find(|c| c.name == name);
        exact.or_else(|| self.children().find(|c| nodename_eq(c.name, name)))
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
        let Some(a) = self.fdt.ancestry(self.off) else {
            return default;
        };
        for &off in a.get().iter().rev() {
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
            return write!(f, "/{}", n.name);
        };
        if a.len <= 1 {
            return f.write_str("/");
        }
        for &off in a.get().iter().skip(1) {
            write!(f, "/{}", n.fdt.node_at(off).map_or("?", |x| x.name))?;
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
            let Some((tok, next)) = self.fdt.token(self.off) else {
                break;
            };
            self.off = next;
            match tok {
                Token::Prop { name, value } => return Some(Property { name, value }),
                Token::Nop => {}
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

impl<'a> Iterator for Children<'a> {
    type Item = Node<'a>;
    fn next(&mut self) -> Option<Node<'a>> {
        while !self.done {
            let Some((tok, next)) = self.fdt.token(self.off) else {
                break;
            };
            let here = self.off;
            self.off = next;
            match tok {
                Token::BeginNode(name) => {
                    self.depth += 1;
                    if self.depth == 1 {
                        return Some(Node {
                            fdt: self.fdt,
                            off: here,
                            body: next,
                            name,
                        });
                    }
                }
                Token::EndNode => match self.depth.checked_sub(1) {
                    Some(d) => self.depth = d,
                    None => break,
                },
                Token::End => break,
                _ => {}
            }
        }
        self.done = true;
        None
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
            let Some((tok, next)) = self.fdt.token(self.off) else {
                break;
            };
            let here = self.off;
            self.off = next;
            match tok {
                Token::BeginNode(name) => {
                    self.depth += 1;
                    return Some((
                        Node {
                            fdt: self.fdt,
                            off: here,
                            body: next,
                            name,
                        },
                        self.depth - 1,
                    ));
                }
                Token::EndNode => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        break;
                    }
                }
                Token::End => break,
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
/// its ranges).
#[derive(Clone, Copy)]
pub(crate) struct DiagQueue<'a> {
    items: [Option<Diagnostic<'a>>; 4],
    head: usize,
}

impl<'a> DiagQueue<'a> {
    pub(crate) const fn new() -> Self {
        Self {
            items: [None; 4],
            head: 0,
        }
    }

    pub(crate) fn push(&mut self, d: Diagnostic<'a>) {
        if let Some(slot) = self.items.iter_mut().find(|s| s.is_none()) {
            *slot = Some(d);
        }
    }

    pub(crate) fn pop(&mut self) -> Option<Diagnostic<'a>> {
        while self.head < self.items.len() {
            let d = self.items.get_mut(self.head).and_then(Option::take);
            self.head += 1;
            if d.is_some() {
                return d;
            }
        }
        *self = Self::new();
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Memory nodes.

/// One usable range of a memory node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRange<'a> {
    /// The memory node (`.name()`, `.path()`).
    pub node: Node<'a>,
    pub base: PhysAddr,
    pub size: u64,
    /// Linux: the `hotpluggable` flag (memblock_mark_hotplug()).
    pub hotpluggable: bool,
    /// `numa-node-id`, if present and well-formed.
    pub nid: Option<u32>,
}

impl MemoryRange<'_> {
    /// Exclusive end (saturating at 2^64 - 1 for a range that ends exactly at 2^64).
    pub fn end(&self) -> PhysAddr {
        PhysAddr(self.base.0.saturating_add(self.size))
    }
}

/// What the memory scan yields: a range, or a problem with a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryScanItem<'a> {
    Range(MemoryRange<'a>),
    Diag(Diagnostic<'a>),
}

struct MemCursor<'a> {
    node: Node<'a>,
    prop: &'static str,
    regs: RegIter<'a>,
    entry: usize,
    hotpluggable: bool,
    nid: Option<u32>,
}

/// Iterator behind [`Fdt::memory_scan`].
pub struct MemoryScan<'a> {
    fdt: Fdt<'a>,
    children: Children<'a>,
    pending: DiagQueue<'a>,
    cur: Option<MemCursor<'a>>,
}

impl<'a> Fdt<'a> {
    /// Linux: early_init_dt_scan_memory()'s walk, as an iterator: every child of the root
    /// (any name) with `device_type = "memory"` and an available `status`; its
    /// `linux,usable-memory`, else `reg`, decoded with the root's cells; zero-size entries are
    /// skipped with a warning, undecodable ones reported.
    pub fn memory_scan(&self) -> MemoryScan<'a> {
        MemoryScan {
            fdt: *self,
            children: self.root().children(),
            pending: DiagQueue::new(),
            cur: None,
        }
    }

    /// Just the ranges of [`Fdt::memory_scan`], diagnostics dropped.
    pub fn memory_ranges(&self) -> impl Iterator<Item = MemoryRange<'a>> {
        self.memory_scan().filter_map(|i| match i {
            MemoryScanItem::Range(r) => Some(r),
            MemoryScanItem::Diag(_) => None,
        })
    }
}

impl<'a> MemoryScan<'a> {
    fn start_node(&mut self, node: Node<'a>) {
        // strcmp() semantics: the value up to its NUL must be exactly "memory".
        if node.property("device_type").map(c_str) != Some(b"memory".as_slice()) {
            return;
        }
        if !node.is_available() {
            return;
        }
        let (prop, data) = match node.property("linux,usable-memory") {
            Some(d) => ("linux,usable-memory", d),
            None => match node.property("reg") {
                Some(d) => ("reg", d),
                None => {
                    self.pending
                        .push(node.diag(Severity::Warning, "reg", Problem::NoReg));
                    return;
                }
            },
        };
        let regs = match self.fdt.root_reg(data) {
            Ok(r) => r,
            Err(p) => {
                self.pending.push(node.diag(Severity::Error, prop, p));
                return;
            }
        };
        if regs.trailing_bytes() != 0 {
            let p = Problem::TrailingBytes {
                len: data.len(),
                entry_size: regs.entry_size(),
            };
            self.pending.push(node.diag(Severity::Warning, prop, p));
        }
        let nid = node.prop_u32("numa-node-id").unwrap_or_else(|d| {
            self.pending.push(Diagnostic {
                severity: Severity::Warning,
                ..d
            });
            None
        });
        let hotpluggable = node.has_property("hotpluggable");
        self.cur = Some(MemCursor {
            node,
            prop,
            regs,
            entry: 0,
            hotpluggable,
            nid,
        });
    }
}

impl<'a> Iterator for MemoryScan<'a> {
    type Item = MemoryScanItem<'a>;
    fn next(&mut self) -> Option<MemoryScanItem<'a>> {
        loop {
            if let Some(d) = self.pending.pop() {
                return Some(MemoryScanItem::Diag(d));
            }
            if let Some(cur) = &mut self.cur {
                if let Some(e) = cur.regs.next() {
                    let entry = cur.entry;
                    cur.entry += 1;
                    let n = cur.node;
                    if e.size == 0 {
                        let p = Problem::ZeroSize {
                            entry,
                            base: e.base,
                        };
                        return Some(MemoryScanItem::Diag(n.diag(Severity::Warning, cur.prop, p)));
                    }
                    if e.base.checked_add(e.size - 1).is_none() {
                        let p = Problem::RangeOverflow {
                            entry,
                            base: e.base,
                            size: e.size,
                        };
                        return Some(MemoryScanItem::Diag(n.diag(Severity::Error, cur.prop, p)));
                    }
                    return Some(MemoryScanItem::Range(MemoryRange {
                        node: n,
                        base: PhysAddr(e.base),
                        size: e.size,
                        hotpluggable: cur.hotpluggable,
                        nid: cur.nid,
                    }));
                }
                self.cur = None;
            }
            let node = self.children.next()?;
            self.start_node(node);
        }
    }
}

/// Linux: early_init_dt_scan_memory() — calls `add` for every range (where Linux calls
/// early_init_dt_add_memory_arch() and, for `hotpluggable`, memblock_mark_hotplug()) and
/// prints every diagnostic. Returns whether any memory was found.
pub fn early_init_dt_scan_memory(fdt: &Fdt, mut add: impl FnMut(&MemoryRange)) -> bool {
    let mut found = false;
    for item in fdt.memory_scan() {
        match item {
            MemoryScanItem::Range(r) => {
                add(&r);
                found = true;
            }
            MemoryScanItem::Diag(d) => d.print(PR_FDT),
        }
    }
    found
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
    /// the first of size 0. (The blob itself is not listed: see [`early_init_fdt_reserve_self`].)
    pub fn mem_rsv(&self) -> MemRsvIter<'a> {
        MemRsvIter {
            blob: self.blob,
            off: self.header().off_mem_rsvmap as usize,
        }
    }
}

/// Linux: early_init_fdt_reserve_self() — the range the blob itself occupies, given the
/// physical address the kernel found it at (Linux reserves `__pa(initial_boot_params)`,
/// `fdt_totalsize()` bytes).
pub fn early_init_fdt_reserve_self(fdt: &Fdt, dtb_phys: PhysAddr) -> MemReserve {
    MemReserve {
        base: dtb_phys,
        size: fdt.totalsize() as u64,
    }
}

// ---------------------------------------------------------------------------------------------
// /chosen.

/// The `/chosen` node.
#[derive(Clone, Copy, Debug)]
pub struct Chosen<'a> {
    pub node: Node<'a>,
}

/// The initrd the bootloader loaded (Linux: phys_initrd_start, phys_initrd_size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Initrd {
    pub start: PhysAddr,
    pub end: PhysAddr,
}

impl Initrd {
    pub fn size(&self) -> u64 {
        self.end - self.start
    }
}

/// The console `/chosen/stdout-path` names (Linux: early_init_dt_scan_chosen_stdout()).
#[derive(Clone, Copy, Debug)]
pub struct Stdout<'a> {
    /// The path or alias, options stripped.
    pub path: &'a str,
    /// What followed `:` (`115200n8`).
    pub options: Option<&'a str>,
    pub node: Node<'a>,
}

impl<'a> Stdout<'a> {
    /// The console's first `reg` address as a CPU physical address.
    pub fn base(&self) -> Result<Option<PhysAddr>, Diagnostic<'a>> {
        self.node.translated_reg_base()
    }
}

impl<'a> Fdt<'a> {
    /// `/chosen`, else `/chosen@0` (Linux: early_init_dt_scan_chosen()).
    pub fn chosen(&self) -> Option<Chosen<'a>> {
        // fdt_path_offset("/chosen") also matches `chosen@<unit>`, which covers `/chosen@0`.
        let node = self.root().child("chosen")?;
        Some(Chosen { node })
    }

    /// Linux: early_init_dt_scan_chosen_stdout()'s lookup: `stdout-path` (else
    /// `linux,stdout-path`) up to `:`, resolved as a path or an alias. `Ok(None)` without
    /// /chosen or the property; an error if it names no node.
    pub fn stdout(&self) -> Result<Option<Stdout<'a>>, Diagnostic<'a>> {
        let Some(chosen) = self.chosen() else {
            return Ok(None);
        };
        let (prop, value) = match chosen.node.property("stdout-path") {
            Some(v) => ("stdout-path", v),
            None => match chosen.node.property("linux,stdout-path") {
                Some(v) => ("linux,stdout-path", v),
                None => return Ok(None),
            },
        };
        let s = core::str::from_utf8(c_str(value))
            .map_err(|_| chosen.node.diag(Severity::Error, prop, Problem::NotString))?;
        if s.is_empty() {
            return Ok(None);
        }
        let (path, options) = match s.split_once(':') {
            Some((p, o)) => (p, Some(o)),
            None => (s, None),
        };
        match self.find_node(path) {
            Some(node) => Ok(Some(Stdout {
                path,
                options,
                node,
            })),
            None => Err(chosen
                .node
                .diag(Severity::Warning, prop, Problem::PathNotFound(path))),
        }
    }
}

impl<'a> Chosen<'a> {
    /// Linux: the `bootargs` part of early_init_dt_scan_chosen(): text up to the first NUL;
    /// absent or empty is `Ok(None)`.
    pub fn bootargs(&self) -> Result<Option<&'a str>, Diagnostic<'a>> {
        let Some(v) = self.node.property("bootargs") else {
            return Ok(None);
        };
        let s = core::str::from_utf8(c_str(v)).map_err(|_| {
            self.node
                .diag(Severity::Error, "bootargs", Problem::NotString)
        })?;
        Ok(if s.is_empty() { None } else { Some(s) })
    }

    /// `stdout-path` as written, options included.
    pub fn stdout_path(&self) -> Option<&'a str> {
        self.node
            .prop_str("stdout-path")
            .or_else(|| self.node.prop_str("linux,stdout-path"))
    }

    fn initrd_bound(&self, prop: &'static str) -> Result<Option<u64>, Diagnostic<'a>> {
        let Some(v) = self.node.property(prop) else {
            return Ok(None);
        };
        // Linux reads of_read_number(prop, len/4): 1 or 2 cells make sense, anything else
        // would be silently truncated or read as 0.
        match v.len() {
            4 | 8 => Ok(of_read_number(v, (v.len() / 4) as u32)),
            len => Err(self.node.diag(
                Severity::Error,
                prop,
                Problem::BadLength {
                    len,
                    expected: "4 or 8 (1 or 2 cells)",
                },
            )),
        }
    }

    /// Linux: early_init_dt_check_for_initrd() — `linux,initrd-start`/`-end`, 1 or 2 cells
    /// each. `Ok(None)` when there is no initrd; a lone start or start > end is reported.
    pub fn initrd(&self) -> Result<Option<Initrd>, Diagnostic<'a>> {
        let Some(start) = self.initrd_bound("linux,initrd-start")? else {
            return Ok(None);
        };
        let Some(end) = self.initrd_bound("linux,initrd-end")? else {
            return Err(self.node.diag(
                Severity::Warning,
                "linux,initrd-end",
                Problem::InitrdEndMissing,
            ));
        };
        if start > end {
            return Err(self.node.diag(
                Severity::Warning,
                "linux,initrd-start",
                Problem::InitrdReversed { start, end },
            ));
        }
        Ok(Some(Initrd {
            start: PhysAddr(start),
            end: PhysAddr(end),
        }))
    }

    /// Linux: early_init_dt_check_for_elfcorehdr() — `linux,elfcorehdr` (address, size) with
    /// the root's cells.
    pub fn elfcorehdr(&self) -> Result<Option<MemReserve>, Diagnostic<'a>> {
        const P: &str = "linux,elfcorehdr";
        let Some(v) = self.node.property(P) else {
            return Ok(None);
        };
        let mut regs = self
            .node
            .fdt
            .root_reg(v)
            .map_err(|p| self.node.diag(Severity::Error, P, p))?;
        match regs.next() {
            Some(e) => Ok(Some(MemReserve {
                base: PhysAddr(e.base),
                size: e.size,
            })),
            None => Err(self.node.diag(
                Severity::Error,
                P,
                Problem::BadLength {
                    len: v.len(),
                    expected: "one (address, size) entry in root cells",
                },
            )),
        }
    }

    /// Linux: early_init_dt_check_for_usable_mem_range() — `linux,usable-memory-range` entries
    /// (Linux uses the first [`MAX_USABLE_RANGES`]: it caps memory to the first and adds the
    /// second). A length that is not whole entries is an error (Linux ignores the property).
    pub fn usable_memory_range(&self) -> Result<Option<RegIter<'a>>, Diagnostic<'a>> {
        const P: &str = "linux,usable-memory-range";
        let Some(v) = self.node.property(P) else {
            return Ok(None);
        };
        let regs = self
            .node
            .fdt
            .root_reg(v)
            .map_err(|p| self.node.diag(Severity::Error, P, p))?;
        if regs.trailing_bytes() != 0 {
            let p = Problem::TrailingBytes {
                len: v.len(),
                entry_size: regs.entry_size(),
            };
            return Err(self.node.diag(Severity::Error, P, p));
        }
        Ok(Some(regs))
    }

    /// `kaslr-seed` (arm64 KASLR), raw.
    pub fn kaslr_seed(&self) -> Option<&'a [u8]> {
        self.node.property("kaslr-seed")
    }

    /// `rng-seed` (Linux: add_bootloader_randomness()), raw; an empty one counts as absent.
    pub fn rng_seed(&self) -> Option<&'a [u8]> {
        self.node.property("rng-seed").filter(|v| !v.is_empty())
    }
}

// ---------------------------------------------------------------------------------------------
// /psci, /cpus, distance map.

/// The PSCI conduit (Linux: enum arm_smccc_conduit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciMethod {
    Hvc,
    Smc,
}

/// The PSCI firmware node.
#[derive(Clone, Copy, Debug)]
pub struct Psci<'a> {
    pub node: Node<'a>,
}

impl<'a> Psci<'a> {
    /// Linux: get_set_conduit_method().
    pub fn method(&self) -> Result<PsciMethod, Diagnostic<'a>> {
        match self.node.prop_str("method") {
            Some("hvc") => Ok(PsciMethod::Hvc),
            Some("smc") => Ok(PsciMethod::Smc),
            Some(m) => Err(self
                .node
                .diag(Severity::Error, "method", Problem::UnknownMethod(m))),
            None => Err(self.node.diag(Severity::Error, "method", Problem::Missing)),
        }
    }

    pub fn compatible(&self) -> StrList<'a> {
        self.node.compatible()
    }
}

/// A CPU node under /cpus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpu<'a> {
    pub node: Node<'a>,
    /// `reg`: the MPIDR affinity bits (Linux: of_get_cpu_mpidr()).
    pub mpidr: u64,
    pub numa_node_id: Option<u32>,
    pub enable_method: Option<&'a str>,
}

/// Iterator behind [`Fdt::cpus`].
pub struct CpuIter<'a> {
    children: Option<Children<'a>>,
    addr_cells: u32,
}

impl<'a> Iterator for CpuIter<'a> {
    type Item = Result<Cpu<'a>, Diagnostic<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        let children = self.children.as_mut()?;
        loop {
            let node = children.next()?;
            // Linux: of_get_next_cpu_node() — named `cpu` or of device_type "cpu", available.
            let base = node.name.split('@').next().unwrap_or("");
            if !(base == "cpu" || node.device_type() == Some("cpu")) || !node.is_available() {
                continue;
            }
            return Some(self.cpu(node));
        }
    }
}

impl<'a> CpuIter<'a> {
    fn cpu(&self, node: Node<'a>) -> Result<Cpu<'a>, Diagnostic<'a>> {
        let reg = node
            .property("reg")
            .ok_or_else(|| node.diag(Severity::Error, "reg", Problem::Missing))?;
        if self.addr_cells > 2 {
            let p = Problem::CellsUnsupported {
                which: "#address-cells",
                cells: self.addr_cells,
            };
            return Err(node.diag(Severity::Error, "reg", p));
        }
        let mpidr = of_read_number(reg, self.addr_cells).ok_or_else(|| {
            node.diag(
                Severity::Error,
                "reg",
                Problem::BadLength {
                    len: reg.len(),
                    expected: "at least #address-cells cells",
                },
            )
        })?;
        if mpidr & !MPIDR_HWID_BITMASK != 0 {
            return Err(node.diag(Severity::Error, "reg", Problem::InvalidMpidr(mpidr)));
        }
        Ok(Cpu {
            node,
            mpidr,
            numa_node_id: node.prop_u32("numa-node-id")?,
            enable_method: node.prop_str("enable-method"),
        })
    }
}

/// One `distance-matrix` triple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Distance {
    pub from: u32,
    pub to: u32,
    pub distance: u32,
}

/// A `numa-distance-map-v1` node.
#[derive(Clone, Copy, Debug)]
pub struct DistanceMap<'a> {
    pub node: Node<'a>,
    matrix: &'a [u8],
}

impl<'a> DistanceMap<'a> {
    /// The triples; a trailing partial triple is ignored (Linux: `i + 2 < entry_count`).
    pub fn entries(&self) -> impl Iterator<Item = Distance> + 'a {
        self.matrix.chunks_exact(12).map(|t| Distance {
            from: be32(t, 0).unwrap_or(0),
            to: be32(t, 4).unwrap_or(0),
            distance: be32(t, 8).unwrap_or(0),
        })
    }

    /// Linux: of_numa_parse_distance_map_v1()'s checks: local distance exactly
    /// LOCAL_DISTANCE, remote ones above it.
    pub fn validate(&self) -> Result<(), Diagnostic<'a>> {
        for d in self.entries() {
            if (d.from == d.to && d.distance != LOCAL_DISTANCE)
                || (d.from != d.to && d.distance <= LOCAL_DISTANCE)
            {
                let p = Problem::InvalidDistance {
                    from: d.from,
                    to: d.to,
                    distance: d.distance,
                };
                return Err(self.node.diag(Severity::Error, "distance-matrix", p));
            }
        }
        Ok(())
    }
}

impl<'a> Fdt<'a> {
    /// The PSCI node: `/psci`, else the first node compatible with a PSCI binding.
    pub fn psci(&self) -> Option<Psci<'a>> {
        let node = self.root().child("psci").or_else(|| {
            ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]
                .iter()
                .find_map(|c| self.find_compatible(c))
        })?;
        Some(Psci { node })
    }

    /// CPU nodes under `/cpus` (Linux: for_each_of_cpu_node()), `reg` read with the `/cpus`
    /// bus's `#address-cells`.
    pub fn cpus(&self) -> CpuIter<'a> {
        match self.root().child("cpus") {
            Some(cpus) => CpuIter {
                children: Some(cpus.children()),
                addr_cells: cpus.address_cells(),
            },
            None => CpuIter {
                children: None,
                addr_cells: 0,
            },
        }
    }

    /// Linux: of_numa_parse_distance_map() — the node compatible with
    /// `numa-distance-map-v1`, if any; an error if it has no `distance-matrix`.
    pub fn distance_map(&self) -> Result<Option<DistanceMap<'a>>, Diagnostic<'a>> {
        let Some(node) = self.find_compatible("numa-distance-map-v1") else {
            return Ok(None);
        };
        match node.property("distance-matrix") {
            Some(m) if m.len() >= 4 => Ok(Some(DistanceMap { node, matrix: m })),
            _ => Err(node.diag(
                Severity::Error,
                "distance-matrix",
                Problem::NoDistanceMatrix,
            )),
        }
    }
}

#[cfg(test)]
mod tests;

// ---------------------------------------------------------------------------------------------
// The memblock side of the early scan (Linux: the rest of early_init_dt_scan_nodes()).

/// What the early scan found besides memory: the initrd, for arm64_memblock_init.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EarlyScan {
    /// Linux: phys_initrd_start / phys_initrd_size.
    pub initrd: Option<Initrd>,
    /// Did any memory node give memory?
    pub found_memory: bool,
}

/// Linux: early_init_dt_add_memory_arch() — page-align the range, clip it to what a
/// physical address can hold, and add it to memblock (MIN_MEMBLOCK_ADDR is 0 on arm64).
pub fn early_init_dt_add_memory_arch(mb: &mut Memblock, base: u64, size: u64) {
    const PAGE: u64 = crate::mm::PAGE_SIZE;
    let (mut base, mut size) = (base, size);
    if size < PAGE - (base & (PAGE - 1)) {
        pr_warn!(
            "{}Ignoring memory block {:#x} - {:#x}",
            PR_FDT,
            base,
            base.wrapping_add(size)
        );
        return;
    }
    if base & (PAGE - 1) != 0 {
        size -= PAGE - (base & (PAGE - 1));
        base = crate::mm::addr::align_up(base, PAGE);
    }
    size &= !(PAGE - 1);
    // MAX_MEMBLOCK_ADDR is ~0: a range running past 2^64 keeps what fits.
    if base.checked_add(size).is_none() {
        let kept = u64::MAX - base + 1;
        pr_warn!(
            "{}Ignoring memory range {:#x} - {:#x}",
            PR_FDT,
            base.wrapping_add(kept),
            base.wrapping_add(size)
        );
        size = kept & !(PAGE - 1);
    }
    if size == 0 {
        return;
    }
    // Linux merges overlapping memory nodes silently; overlaps usually mean a broken tree,
    // so say so (memblock still takes the union, as Linux does).
    if mb.overlaps_region(MemType::Memory, PhysAddr(base), size) {
        pr_warn!(
            "{}memory range [mem {:#018x}-{:#018x}] overlaps memory already added; using the union",
            PR_FDT,
            base,
            base + size - 1
        );
    }
    let _ = mb.add(PhysAddr(base), size);
}

/// Linux: early_init_dt_scan_nodes() minus the root cells (kept by [`Fdt`]) and the
/// command line (copied by setup_arch): memory nodes into memblock (hotpluggable ones
/// marked), `/chosen`'s initrd, and `linux,usable-memory-range` capping memory.
pub fn early_init_dt_scan_nodes(fdt: &Fdt, mb: &mut Memblock) -> EarlyScan {
    let mut scan = EarlyScan::default();
    let chosen = fdt.chosen();
    if chosen.is_none() {
        pr_warn!("{}No chosen node found, continuing without", PR_FDT);
    }
    if let Some(c) = chosen {
        match c.initrd() {
            Ok(i) => scan.initrd = i.filter(|i| i.size() > 0),
            Err(d) => d.print(PR_FDT),
        }
    }
    scan.found_memory = early_init_dt_scan_memory(fdt, |r| {
        early_init_dt_add_memory_arch(mb, r.base.as_u64(), r.size);
        if r.hotpluggable && mb.mark_hotplug(r.base, r.size).is_err() {
            pr_warn!(
                "{}failed to mark hotplug range {:#x} - {:#x}",
                PR_FDT,
                r.base.as_u64(),
                r.end()
            );
        }
    });
    // Linux: early_init_dt_check_for_usable_mem_range().
    if let Some(c) = chosen {
        match c.usable_memory_range() {
            Ok(Some(ranges)) => {
                for (i, r) in ranges.take(MAX_USABLE_RANGES).enumerate() {
                    if r.size == 0 {
                        break;
                    }
                    if i == 0 {
                        mb.cap_memory_range(PhysAddr(r.base), r.size);
                    } else {
                        let _ = mb.add(PhysAddr(r.base), r.size);
                    }
                }
            }
            Ok(None) => {}
            Err(d) => d.print(PR_FDT),
        }
    }
    scan
}

/// Linux: early_init_fdt_scan_reserved_mem() — `/reserved-memory` (static regions, then
/// the dynamic ones allocated), `linux,elfcorehdr`, and the `/memreserve/` block.
pub fn early_init_fdt_scan_reserved_mem(fdt: &Fdt, mb: &mut Memblock) {
    super::reserved_mem::fdt_scan_and_reserve(fdt, mb);
    // Linux: fdt_reserve_elfcorehdr().
    if let Some(c) = fdt.chosen() {
        match c.elfcorehdr() {
            Ok(Some(r)) if r.size > 0 => {
                if mb.is_region_reserved(r.base, r.size) {
                    pr_warn!("{}elfcorehdr is overlapped", PR_FDT);
                } else {
                    let _ = mb.reserve(r.base, r.size);
                    pr_info!(
                        "{}Reserving {} KiB of memory at {:#x} for elfcorehdr",
                        PR_FDT,
                        r.size / 1024,
                        r.base.as_u64()
                    );
                }
            }
            Ok(_) => {}
            Err(d) => d.print(PR_FDT),
        }
    }
    for r in fdt.mem_rsv() {
        if r.size == 0 {
            break;
        }
        let _ = mb.reserve(r.base, r.size);
    }
}
