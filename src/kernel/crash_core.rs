//! crash_core: parsing of `crashkernel=`, the memory set aside for a kdump kernel. Mirrors
//! the command-line half of Linux 6.1's kernel/crash_core.c (`parse_crashkernel` and its
//! helpers); reserving the memory is the arch's job (arm64: `reserve_crashkernel()`).
//!
//! The forms, all with memparse() sizes (`K`, `M`, `G`, ... suffixes; `0x` hex):
//!
//! ```text
//! crashkernel=size[@offset]                              parse_crashkernel_simple
//! crashkernel=start-[end]:size[,start-[end]:size...][@offset]
//!                                                        parse_crashkernel_mem: the size
//!                                                        of the range holding system RAM
//! crashkernel=size,high   crashkernel=size,low           parse_crashkernel_suffix
//! ```
//!
//! As in Linux, the last `crashkernel=` of the wanted kind wins (get_last_crashkernel), a
//! missing option (-ENOENT) is told apart from an invalid one (-EINVAL), and every
//! rejection prints Linux's warning. Also as in Linux, the option is found by substring
//! search, so `xcrashkernel=` counts, and a range list that matches no range is not an
//! error: it yields size 0 ("crashkernel size resulted in zero bytes").
//!
//! One difference: Linux's memparse() wraps around silently on values past 64 bits; here
//! such a value is rejected (-EINVAL) with our own line, `crashkernel: memory value out of
//! range`, rather than turned into a small, wrong size.

use crate::kernel::params::{memparse, SetupResult};

/// Linux: ENOENT.
pub const ENOENT: i32 = 2;
/// Linux: EINVAL.
pub const EINVAL: i32 = 22;

/// What `crashkernel=` asks for: `size` bytes, at `base` if non-zero, else anywhere the
/// arch likes. Linux's `crash_size` / `crash_base` out-parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrashKernel {
    pub size: u64,
    pub base: u64,
}

/// Why there is no [`CrashKernel`]: Linux's negative return values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashError {
    /// -ENOENT: no `crashkernel=` of the wanted kind on the command line.
    NotFound,
    /// -EINVAL: there is one, and it does not parse (the warning is already printed).
    Invalid,
}

impl CrashError {
    /// The value Linux's parse_crashkernel*() would return.
    pub const fn errno(self) -> i32 {
        match self {
            Self::NotFound => -ENOENT,
            Self::Invalid => -EINVAL,
        }
    }
}

/// Linux: suffix_tbl[] — the suffixes the plain form skips.
const SUFFIX_HIGH: &str = ",high";
const SUFFIX_LOW: &str = ",low";
const SUFFIX_TBL: [&str; 2] = [SUFFIX_HIGH, SUFFIX_LOW];

/// The byte at `i`, or 0 past the end: C's view of the string, NUL included.
fn at(s: &str, i: usize) -> u8 {
    s.as_bytes().get(i).copied().unwrap_or(0)
}

/// The character at `i` for `unrecognized char: %c` (empty at the end, as C prints NUL).
fn char_at(s: &str, i: usize) -> &str {
    s.get(i..)
        .and_then(|t| t.chars().next().map(|c| &t[..c.len_utf8()]))
        .unwrap_or("")
}

/// Why memparse() found no value.
enum NoValue {
    /// No digits: Linux's `cur == tmp`.
    Missing,
    /// Digits, but more than 64 bits' worth (where Linux wraps).
    Overflow,
}

/// Linux's `memparse(cur, &tmp)`: the value at `s[i..]` and the index after it.
fn value_at(s: &str, i: usize) -> Result<(u64, usize), NoValue> {
    let rest = &s[i..];
    match memparse(rest) {
        Some((v, tail)) => Ok((v, s.len() - tail.len())),
        None if rest.as_bytes().first().is_some_and(u8::is_ascii_digit) => Err(NoValue::Overflow),
        None => Err(NoValue::Missing),
    }
}

/// [`value_at`] with the warning for each failure: `missing` is the caller's Linux text.
fn memparse_at(s: &str, i: usize, missing: &str) -> Result<(u64, usize), CrashError> {
    value_at(s, i).map_err(|why| {
        match why {
            NoValue::Missing => pr_warn!("{}", missing),
            NoValue::Overflow => pr_warn!("crashkernel: memory value out of range"),
        }
        CrashError::Invalid
    })
}

/// Linux: parse_crashkernel_mem() — `start-[end]:size[,...][@offset]`: the size of the
/// first range that holds `system_ram`, and the offset if a range matched.
fn parse_crashkernel_mem(cmdline: &str, system_ram: u64) -> Result<CrashKernel, CrashError> {
    let mut ck = CrashKernel::default();
    let mut cur = 0;

    // For each entry of the comma-separated list.
    loop {
        let (start, tmp) = memparse_at(cmdline, cur, "crashkernel: Memory value expected")?;
        cur = tmp;
        if at(cmdline, cur) != b'-' {
            pr_warn!("crashkernel: '-' expected");
            return Err(CrashError::Invalid);
        }
        cur += 1;

        // No end before the ':' means the range is open.
        let mut end = u64::MAX;
        if at(cmdline, cur) != b':' {
            (end, cur) = memparse_at(cmdline, cur, "crashkernel: Memory value expected")?;
            if end <= start {
                pr_warn!("crashkernel: end <= start");
                return Err(CrashError::Invalid);
            }
        }

        if at(cmdline, cur) != b':' {
            pr_warn!("crashkernel: ':' expected");
            return Err(CrashError::Invalid);
        }
        cur += 1;

        // Linux 6.1 prints this one without the prefix.
        let (size, tmp) = memparse_at(cmdline, cur, "Memory value expected")?;
        cur = tmp;
        // Checked for every entry up to the match, matching or not.
        if size >= system_ram {
            pr_warn!("crashkernel: invalid size");
            return Err(CrashError::Invalid);
        }

        if system_ram >= start && system_ram < end {
            ck.size = size;
            break;
        }
        // Linux's `while (*cur++ == ',')`.
        let sep = at(cmdline, cur);
        cur += 1;
        if sep != b',' {
            break;
        }
    }

    if ck.size > 0 {
        // The offset follows the whole list.
        while !matches!(at(cmdline, cur), 0 | b' ' | b'@') {
            cur += 1;
        }
        if at(cmdline, cur) == b'@' {
            cur += 1;
            (ck.base, _) = memparse_at(cmdline, cur, "Memory value expected after '@'")?;
        }
    } else {
        pr_info!("crashkernel size resulted in zero bytes");
    }
    Ok(ck)
}

/// Linux: parse_crashkernel_simple() — `size[@offset]`.
fn parse_crashkernel_simple(cmdline: &str) -> Result<CrashKernel, CrashError> {
    let (size, cur) = memparse_at(cmdline, 0, "crashkernel: memory value expected")?;
    let mut ck = CrashKernel { size, base: 0 };
    match at(cmdline, cur) {
        // Linux checks nothing after '@': no value means base 0, and what follows the
        // value is ignored. Only an out-of-range value is rejected (see the module doc).
        b'@' => match value_at(cmdline, cur + 1) {
            Ok((base, _)) => ck.base = base,
            Err(NoValue::Missing) => {}
            Err(NoValue::Overflow) => {
                pr_warn!("crashkernel: memory value out of range");
                return Err(CrashError::Invalid);
            }
        },
        b' ' | 0 => {}
        _ => {
            pr_warn!("crashkernel: unrecognized char: {}", char_at(cmdline, cur));
            return Err(CrashError::Invalid);
        }
    }
    Ok(ck)
}

/// Linux: parse_crashkernel_suffix() — `size,high` or `size,low`, nothing after.
fn parse_crashkernel_suffix(cmdline: &str, suffix: &str) -> Result<CrashKernel, CrashError> {
    let (size, mut cur) = memparse_at(cmdline, 0, "crashkernel: memory value expected")?;
    if !cmdline[cur..].starts_with(suffix) {
        pr_warn!("crashkernel: unrecognized char: {}", char_at(cmdline, cur));
        return Err(CrashError::Invalid);
    }
    cur += suffix.len();
    if !matches!(at(cmdline, cur), b' ' | 0) {
        pr_warn!("crashkernel: unrecognized char: {}", char_at(cmdline, cur));
        return Err(CrashError::Invalid);
    }
    Ok(CrashKernel { size, base: 0 })
}

/// Linux: get_last_crashkernel() — where the last `name` whose word (up to the next
/// space) ends in `suffix` starts; with no suffix, the last one ending in none of
/// SUFFIX_TBL. Substring search, as Linux's strstr().
fn get_last_crashkernel(cmdline: &str, name: &str, suffix: Option<&str>) -> Option<usize> {
    let mut ck_cmdline = None;
    let mut from = 0;
    while let Some(off) = cmdline[from..].find(name) {
        let p = from + off;
        let end_p = cmdline[p..].find(' ').map_or(cmdline.len(), |e| p + e);
        let word = &cmdline[p..end_p];
        let wanted = match suffix {
            None => !SUFFIX_TBL.iter().any(|s| word.ends_with(s)),
            Some(s) => word.ends_with(s),
        };
        if wanted {
            ck_cmdline = Some(p);
        }
        // `name` starts with an ASCII byte, so p + 1 is a character boundary.
        from = p + 1;
    }
    ck_cmdline
}

/// Linux: __parse_crashkernel() — find the last option of the kind and parse its form.
fn __parse_crashkernel(
    cmdline: &str,
    system_ram: u64,
    name: &str,
    suffix: Option<&str>,
) -> Result<CrashKernel, CrashError> {
    let p = get_last_crashkernel(cmdline, name, suffix).ok_or(CrashError::NotFound)?;
    // The parsers see the rest of the command line, as in Linux, and stop at a space.
    let ck_cmdline = &cmdline[p + name.len()..];

    if let Some(suffix) = suffix {
        return parse_crashkernel_suffix(ck_cmdline, suffix);
    }
    // A ':' before the first space means the range syntax, anything else the classic one.
    match (ck_cmdline.find(':'), ck_cmdline.find(' ')) {
        (Some(colon), space) if space.is_none_or(|s| colon < s) => {
            parse_crashkernel_mem(ck_cmdline, system_ram)
        }
        _ => parse_crashkernel_simple(ck_cmdline),
    }
}

/// Linux: parse_crashkernel() — `crashkernel=size[@offset]` or the range form, sized
/// against `system_ram` (arm64 passes memblock_phys_mem_size()). `,high` and `,low`
/// options are not this function's: with only those, it returns `NotFound`.
pub fn parse_crashkernel(cmdline: &str, system_ram: u64) -> Result<CrashKernel, CrashError> {
    __parse_crashkernel(cmdline, system_ram, "crashkernel=", None)
}

/// Linux: parse_crashkernel_high() — `crashkernel=size,high` (base is always 0).
pub fn parse_crashkernel_high(cmdline: &str, system_ram: u64) -> Result<CrashKernel, CrashError> {
    __parse_crashkernel(cmdline, system_ram, "crashkernel=", Some(SUFFIX_HIGH))
}

/// Linux: parse_crashkernel_low() — `crashkernel=size,low` (base is always 0).
pub fn parse_crashkernel_low(cmdline: &str, system_ram: u64) -> Result<CrashKernel, CrashError> {
    __parse_crashkernel(cmdline, system_ram, "crashkernel=", Some(SUFFIX_LOW))
}

/// Linux: parse_crashkernel_dummy() — marks `crashkernel=` as known, so it is not listed
/// among the unknown parameters; the arch parses it itself, from the whole command line.
fn parse_crashkernel_dummy(_arg: Option<&str>) -> SetupResult {
    Ok(())
}
crate::early_param!("crashkernel", parse_crashkernel_dummy);

#[cfg(test)]
mod tests;
