//! The blob header and the validating walk of the structure block (Linux:
//! scripts/dtc/libfdt/fdt.c — fdt_check_header(), fdt_next_tag() — and fdt_check.c's full
//! check): [`fdt_check_header`] needs only the first 40 bytes; [`Fdt::new`](super::Fdt::new)
//! then walks every token once, so the queries only ever see a well-formed blob.

use core::fmt;

use super::{align4, be32, be64, FDT_FIRST_SUPPORTED_VERSION, FDT_LAST_SUPPORTED_VERSION};
use super::{FDT_MAGIC, FDT_MAX_DEPTH, FDT_V17_HEADER_SIZE};

pub(crate) const FDT_BEGIN_NODE: u32 = 0x1;
pub(crate) const FDT_END_NODE: u32 = 0x2;
pub(crate) const FDT_PROP: u32 = 0x3;
pub(crate) const FDT_NOP: u32 = 0x4;
pub(crate) const FDT_END: u32 = 0x9;

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
    pub(super) fn struct_end(&self) -> u64 {
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

/// Turns a mapped blob into the slice [`Fdt::new`](super::Fdt::new) takes, `header.totalsize` bytes long.
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
enum Token {
    BeginNode,
    EndNode,
    Prop,
    Nop,
    End,
}

/// The length of the NUL-terminated name at the start of `bytes`, and whether it is valid
/// UTF-8 — `None` without a NUL. ASCII, the usual case, is told apart while looking for the
/// NUL; only other names go through `from_utf8`.
fn check_name(bytes: &[u8]) -> Option<(usize, bool)> {
    let mut high = 0u8;
    let n = bytes.iter().position(|&b| {
        high |= b;
        b == 0
    })?;
    let name = bytes.get(..n)?;
    Some((n, high < 0x80 || core::str::from_utf8(name).is_ok()))
}

/// [`check_name`] for a node name, which starts word-aligned: a word at a time (the name is
/// padded with NULs to a word), bytewise only where the words run out.
fn check_node_name(structs: &[u8], start: usize) -> Option<(usize, bool)> {
    let mut p = start;
    while let Some(w) = structs.get(p..p + 4) {
        let w = u32::from_le_bytes(w.try_into().ok()?);
        // The lowest flagged byte is the first NUL (the test only errs above a zero byte).
        let zeros = w.wrapping_sub(0x0101_0101) & !w & 0x8080_8080;
        let before = if zeros == 0 {
            w
        } else {
            w & ((1u32 << zeros.trailing_zeros()) - 1)
        };
        if before & 0x8080_8080 != 0 {
            break; // not ASCII: let check_name() decide
        }
        if zeros != 0 {
            return Some((p - start + (zeros.trailing_zeros() / 8) as usize, true));
        }
        p += 4;
    }
    check_name(structs.get(start..).unwrap_or(&[]))
}

/// Property names new() has already checked, by strings-block offset (direct-mapped): most
/// properties share a few dozen names, so most checks become one compare.
struct NameCache([u32; 32]);

impl NameCache {
    const fn new() -> Self {
        // No valid name offset is u32::MAX: the strings block is at most i32::MAX bytes.
        Self([u32::MAX; 32])
    }

    fn slot(&mut self, nameoff: u32) -> &mut u32 {
        &mut self.0[nameoff as usize % 32]
    }
}

/// Checks the token at `off` in the structure block: a known tag, a node name NUL-terminated
/// and UTF-8, a property value inside the block and its name inside the strings block,
/// NUL-terminated and UTF-8. Returns its kind and the next token's offset (always > `off`, so
/// every walk terminates). `base` turns errors into blob offsets.
fn check_token(
    structs: &[u8],
    strings: &[u8],
    off: usize,
    base: usize,
    names: &mut NameCache,
) -> Result<(Token, usize), FdtError> {
    let at = base + off;
    let tag = be32(structs, off).ok_or(FdtError::MissingEnd { offset: at })?;
    match tag {
        FDT_BEGIN_NODE => {
            let (n, utf8) = check_node_name(structs, off + 4)
                .ok_or(FdtError::UnterminatedNodeName { offset: at })?;
            if !utf8 {
                return Err(FdtError::NodeNameNotUtf8 { offset: at });
            }
            Ok((Token::BeginNode, align4(off + 4 + n + 1)))
        }
        FDT_END_NODE => Ok((Token::EndNode, off + 4)),
        FDT_PROP => {
            let len =
                be32(structs, off + 4).ok_or(FdtError::PropertyTruncated { offset: at, len: 0 })?;
            let nameoff =
                be32(structs, off + 8).ok_or(FdtError::PropertyTruncated { offset: at, len: 0 })?;
            let start = off + 12;
            let end = start.checked_add(len as usize);
            end.and_then(|e| structs.get(start..e))
                .ok_or(FdtError::PropertyTruncated { offset: at, len })?;
            let next = align4(start + len as usize);
            if (nameoff as usize) < strings.len() && *names.slot(nameoff) == nameoff {
                return Ok((Token::Prop, next));
            }
            let name_bytes = strings
                .get(nameoff as usize..)
                .filter(|b| !b.is_empty())
                .ok_or(FdtError::BadNameOffset {
                    offset: at,
                    nameoff,
                    strings_size: strings.len(),
                })?;
            let (_, utf8) = check_name(name_bytes).ok_or(FdtError::UnterminatedPropName {
                offset: at,
                nameoff,
            })?;
            if !utf8 {
                return Err(FdtError::PropNameNotUtf8 {
                    offset: at,
                    nameoff,
                });
            }
            *names.slot(nameoff) = nameoff;
            Ok((Token::Prop, next))
        }
        FDT_NOP => Ok((Token::Nop, off + 4)),
        FDT_END => Ok((Token::End, off + 4)),
        token => Err(FdtError::BadToken { offset: at, token }),
    }
}

/// Walks the whole structure block once; returns the root node's offset.
pub(super) fn validate_structure(
    structs: &[u8],
    strings: &[u8],
    base: usize,
) -> Result<usize, FdtError> {
    let mut off = 0;
    let mut depth = 0usize;
    let mut root = None;
    let mut names = NameCache::new();
    loop {
        let (tok, next) = check_token(structs, strings, off, base, &mut names)?;
        let at = base + off;
        match tok {
            Token::BeginNode => {
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
            Token::Prop => {
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
pub(super) fn validate_memrsv(blob: &[u8], off: usize) -> Result<(), FdtError> {
    let mut p = off;
    loop {
        match (be64(blob, p), be64(blob, p + 8)) {
            (Some(_), Some(0)) => return Ok(()),
            (Some(_), Some(_)) => p += 16,
            _ => return Err(FdtError::MemRsvUnterminated { offset: off }),
        }
    }
}
