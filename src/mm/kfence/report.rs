//! KFENCE's reports (Linux 6.1: mm/kfence/report.c): `kfence_report_error()` in Linux's
//! format, line for line, and `kfence_print_object()`. Pointers print as their value (as
//! Linux's do with `no_hash_pointers`), and so do the corrupted bytes.

use core::fmt::Write;

use super::metadata::{
    kfence_canary_pattern, KfenceErrorType, KfenceMeta, KfenceObjectState, KfenceTrack,
};
use crate::kernel::kallsyms;

/// PAGE_SIZE as a usize.
const PAGE: usize = crate::mm::PAGE_SIZE as usize;

/// The symbol's path without what the symbol table may leave on it: a ` (.llvm.N)` suffix
/// and the legacy mangling's `::h<16 hex digits>` hash.
fn clean_name(name: &str) -> &str {
    let name = name.split(" (").next().unwrap_or(name);
    match name.rsplit_once("::") {
        Some((path, h))
            if h.len() == 17
                && h.starts_with('h')
                && h[1..].bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            path
        }
        _ => name,
    }
}

/// The function name (the last path segment) of a cleaned symbol path.
fn last_segment(path: &str) -> &str {
    path.rsplit("::").next().unwrap_or(path)
}

/// Linux: get_stack_skipnr() — how many entries of an allocation, free or no-registers
/// stack belong to the allocator's internals: past the last kmalloc/kfree-like frame at
/// the top (Linux's prefixes, and our `do_kmalloc_node`), else past the last internal frame
/// (KFENCE's, SLUB's, the Rust global allocator's, `__slab_free`).
pub fn get_stack_skipnr(stack: &[u64], ty: Option<KfenceErrorType>) -> usize {
    if matches!(
        ty,
        Some(KfenceErrorType::Uaf | KfenceErrorType::Oob | KfenceErrorType::Invalid)
    ) {
        // kfence_handle_page_fault() hands the faulting context's stack: show it all.
        return 0;
    }
    let is_entry = |f: &str| {
        [
            "kfree",
            "kmem_cache_free",
            "__kmalloc",
            "kmalloc",
            "do_kmalloc",
            "kmem_cache_alloc",
            "krealloc",
        ]
        .iter()
        .any(|p| f.starts_with(p))
    };
    let is_internal = |path: &str| {
        let f = last_segment(path);
        f.starts_with("kfence_")
            || f.starts_with("__kfence_")
            || f == "__slab_free"
            || f.starts_with("__rust_")
            || ["mm::kfence", "mm::slub", "mm::slab_common", "mm::heap"]
                .iter()
                .any(|m| path.contains(m))
    };
    let (mut fallback, mut found) = (0, None);
    for (i, &pc) in stack.iter().enumerate() {
        let Some(sym) = kallsyms::lookup(pc) else {
            break;
        };
        let path = clean_name(sym.name);
        if is_entry(last_segment(path)) {
            found = Some(i);
        } else if is_internal(path) {
            // In case of tail calls from any of the below to any of the above.
            fallback = i + 1;
        } else {
            break;
        }
    }
    match found.map(|i| i.max(fallback.saturating_sub(1))) {
        Some(i) if i + 1 < stack.len() => i + 1,
        Some(_) => 0,
        None if fallback < stack.len() => fallback,
        None => 0,
    }
}

/// `%pS` of `pc`.
struct Ps(u64);

impl core::fmt::Display for Ps {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match kallsyms::lookup(self.0) {
            Some(sym) => write!(f, "{}", sym),
            None => write!(f, "0x{:016x}", self.0),
        }
    }
}

/// Linux: kfence_print_stack() — the track's header line and its stack past the
/// allocator's internals.
fn kfence_print_stack(track: &KfenceTrack, show_alloc: bool) {
    let ts_sec = track.ts_nsec / 1_000_000_000;
    let rem_nsec = track.ts_nsec % 1_000_000_000;
    // Timestamp matches printk timestamp format.
    pr_err!(
        "{} by task {} on cpu {} at {}.{:06}s:",
        if show_alloc { "allocated" } else { "freed" },
        track.pid,
        track.cpu,
        ts_sec,
        rem_nsec / 1000
    );
    if track.num_stack_entries != 0 {
        // Skip allocation/free internals stack.
        let stack = track.stack();
        for &pc in &stack[get_stack_skipnr(stack, None)..] {
            pr_err!(" {}", Ps(pc));
        }
    } else {
        pr_err!(
            "  no {} stack",
            if show_alloc {
                "allocation"
            } else {
                "deallocation"
            }
        );
    }
}

/// The name of the object's cache (Linux: `cache->name`, or `<destroyed>`).
fn cache_name(meta: &KfenceMeta) -> &'static str {
    if meta.cache.is_null() {
        return "<destroyed>";
    }
    // SAFETY: a kmem_cache outlives the objects allocated from it.
    unsafe { (*meta.cache).name }
}

/// Linux: kfence_print_object().
pub fn kfence_print_object(index: usize, meta: &KfenceMeta) {
    if meta.state == KfenceObjectState::Unused {
        pr_err!("kfence-#{} unused", index);
        return;
    }
    pr_err!(
        "kfence-#{}: 0x{:016x}-0x{:016x}, size={}, cache={}",
        index,
        meta.addr,
        meta.addr + meta.size - 1,
        meta.size,
        cache_name(meta)
    );
    pr_err!("");
    kfence_print_stack(&meta.alloc_track, true);
    if meta.state == KfenceObjectState::Freed {
        pr_err!("");
        kfence_print_stack(&meta.free_track, false);
    }
}

/// A line buffer (Linux's `pr_cont()` pieces of one line), cut at its size.
struct LineBuf {
    buf: [u8; 160],
    len: usize,
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl LineBuf {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

/// Linux: print_diff_canary() — up to `bytes_to_show` bytes from `address` that differ
/// from the canary, neither into the object nor past the page.
fn print_diff_canary(out: &mut LineBuf, address: usize, bytes_to_show: usize, meta: &KfenceMeta) {
    let show_until_addr = address + bytes_to_show;
    // Do not show contents of object nor read into following guard page.
    let end = if address < meta.addr {
        show_until_addr.min(meta.addr)
    } else {
        show_until_addr.min((address + PAGE - 1) & !(PAGE - 1))
    };
    let _ = out.write_str("[");
    for cur in address..end {
        // SAFETY: a canary byte of a KFENCE object's page, mapped while it is checked.
        let b = unsafe { *(cur as *const u8) };
        if b == kfence_canary_pattern(cur) {
            let _ = out.write_str(" .");
        } else {
            let _ = write!(out, " 0x{:02x}", b);
        }
    }
    let _ = out.write_str(" ]");
}

/// Linux: get_access_type().
fn get_access_type(is_write: bool) -> &'static str {
    if is_write {
        "write"
    } else {
        "read"
    }
}

/// Linux: kfence_report_error() — the report of an error at `address` of object `meta`
/// (`(index, fields)`, None for an invalid access), with the stack of the faulting context
/// (kfence_handle_page_fault()'s, shown whole) or of the free; `print_info` prints the
/// `CPU: …` footer (Linux: dump_stack_print_info()).
pub fn kfence_report_error(
    print_info: fn(),
    address: usize,
    is_write: bool,
    stack: &[u64],
    meta: Option<(usize, &KfenceMeta)>,
    ty: KfenceErrorType,
) {
    let skipnr = get_stack_skipnr(stack, Some(ty));
    let object_index = meta.map_or(-1, |(i, _)| i as isize);
    let at = Ps(stack.get(skipnr).copied().unwrap_or(0));
    // Require non-NULL meta, except if KFENCE_ERROR_INVALID.
    let m = match meta {
        Some((_, m)) => Some(m),
        None if ty == KfenceErrorType::Invalid => None,
        None => return,
    };
    pr_err!("==================================================================");
    // Print report header.
    match (ty, m) {
        (KfenceErrorType::Oob, Some(m)) => {
            let left_of_object = address < m.addr;
            pr_err!(
                "BUG: KFENCE: out-of-bounds {} in {}",
                get_access_type(is_write),
                at
            );
            pr_err!("");
            pr_err!(
                "Out-of-bounds {} at 0x{:016x} ({}B {} of kfence-#{}):",
                get_access_type(is_write),
                address,
                if left_of_object {
                    m.addr - address
                } else {
                    address - m.addr
                },
                if left_of_object { "left" } else { "right" },
                object_index
            );
        }
        (KfenceErrorType::Uaf, _) => {
            pr_err!(
                "BUG: KFENCE: use-after-free {} in {}",
                get_access_type(is_write),
                at
            );
            pr_err!("");
            pr_err!(
                "Use-after-free {} at 0x{:016x} (in kfence-#{}):",
                get_access_type(is_write),
                address,
                object_index
            );
        }
        (KfenceErrorType::Corruption, Some(m)) => {
            pr_err!("BUG: KFENCE: memory corruption in {}", at);
            pr_err!("");
            let mut line = LineBuf {
                buf: [0; 160],
                len: 0,
            };
            let _ = write!(line, "Corrupted memory at 0x{:016x} ", address);
            print_diff_canary(&mut line, address, 16, m);
            let _ = write!(line, " (in kfence-#{}):", object_index);
            pr_err!("{}", line.as_str());
        }
        (KfenceErrorType::InvalidFree, _) => {
            pr_err!("BUG: KFENCE: invalid free in {}", at);
            pr_err!("");
            pr_err!(
                "Invalid free of 0x{:016x} (in kfence-#{}):",
                address,
                object_index
            );
        }
        _ => {
            pr_err!(
                "BUG: KFENCE: invalid {} in {}",
                get_access_type(is_write),
                at
            );
            pr_err!("");
            pr_err!(
                "Invalid {} at 0x{:016x}:",
                get_access_type(is_write),
                address
            );
        }
    }
    // Print stack trace and object info.
    for &pc in &stack[skipnr.min(stack.len())..] {
        pr_err!(" {}", Ps(pc));
    }
    if let Some((i, m)) = meta {
        pr_err!("");
        kfence_print_object(i, m);
    }
    // Print report footer.
    pr_err!("");
    print_info();
    pr_err!("==================================================================");
}
