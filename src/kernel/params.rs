//! Boot parameters: the kernel command line, `early_param()` / `__setup()` and their parsing.
//! Mirrors kernel/params.c (`parse_args`, `next_arg`) and init/main.c (`parse_early_param`,
//! `do_early_param`, `unknown_bootoption`, `print_unknown_bootoptions`).
//!
//! Handlers register where they live, with `early_param!("loglevel", fn)` or
//! `setup_param!("console=", fn)`; like Linux's `.init.setup` section, the macros put an
//! `ObsKernelParam` in the `.init.setup` linker section and the parser walks it.

/// What a parameter handler returns: `Err(why)` makes the kernel report the option as malformed.
pub type SetupResult = Result<(), &'static str>;

/// One registered parameter (Linux: `struct obs_kernel_param`).
#[repr(C)]
pub struct ObsKernelParam {
    /// The parameter name, without `=`.
    pub name: &'static str,
    pub setup: fn(Option<&str>) -> SetupResult,
    /// Early parameters run in `parse_early_param()`, from `setup_arch()`.
    pub early: bool,
}

/// Registers an early parameter (Linux: `early_param()`).
#[macro_export]
macro_rules! early_param {
    ($name:literal, $func:path) => {
        $crate::__register_param!($name, $func, true);
    };
}

/// Registers a normal boot parameter (Linux: `__setup()`).
#[macro_export]
macro_rules! setup_param {
    ($name:literal, $func:path) => {
        $crate::__register_param!($name, $func, false);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __register_param {
    ($name:literal, $func:path, $early:expr) => {
        const _: () = {
            #[cfg(target_os = "none")]
            #[used]
            #[link_section = ".init.setup"]
            static PARAM: $crate::kernel::params::ObsKernelParam =
                $crate::kernel::params::ObsKernelParam {
                    name: $name,
                    setup: $func,
                    early: $early,
                };
            // The host builds for the fuzz targets and benchmarks (`--features testing`)
            // collect the table the same way, in a section the host linker bounds with
            // `__start_`/`__stop_` symbols (see registered_params()).
            #[cfg(all(not(target_os = "none"), feature = "testing"))]
            #[used]
            #[link_section = "host_setup_params"]
            static PARAM: $crate::kernel::params::ObsKernelParam =
                $crate::kernel::params::ObsKernelParam {
                    name: $name,
                    setup: $func,
                    early: $early,
                };
            // Keeps the handler referenced on the other host builds, which walk no table.
            #[cfg(all(not(target_os = "none"), not(feature = "testing")))]
            const _: fn(Option<&str>) -> $crate::kernel::params::SetupResult = $func;
        };
    };
}

/// The table the linker collected from every `early_param!`/`setup_param!`.
#[cfg(target_os = "none")]
pub fn registered_params() -> &'static [ObsKernelParam] {
    use crate::kernel::sections::{__setup_end, __setup_start};
    // SAFETY: the linker script places every `.init.setup` entry, each a properly aligned
    // `ObsKernelParam` written by `__register_param!`, between the two symbols.
    unsafe {
        let start = __setup_start() as *const ObsKernelParam;
        let end = __setup_end() as *const ObsKernelParam;
        let n = (end as usize - start as usize) / core::mem::size_of::<ObsKernelParam>();
        core::slice::from_raw_parts(start, n)
    }
}

/// The host's table under `--features testing` (the fuzz targets): every handler the host
/// builds (those in `arch/` are not), collected from the `host_setup_params` section, whose
/// bounds GNU ld and lld define for a section named like a C identifier.
#[cfg(all(not(target_os = "none"), feature = "testing"))]
pub fn registered_params() -> &'static [ObsKernelParam] {
    extern "C" {
        static __start_host_setup_params: u8;
        static __stop_host_setup_params: u8;
    }
    let start = &raw const __start_host_setup_params;
    let end = &raw const __stop_host_setup_params;
    let n = (end as usize - start as usize) / core::mem::size_of::<ObsKernelParam>();
    // SAFETY: the section holds only the `ObsKernelParam` statics `__register_param!` put
    // there, each aligned and initialised, between the two symbols.
    unsafe { core::slice::from_raw_parts(start.cast::<ObsKernelParam>(), n) }
}

/// The other host builds (unit tests) walk no table: their tests pass their own.
#[cfg(all(not(target_os = "none"), not(feature = "testing")))]
pub fn registered_params() -> &'static [ObsKernelParam] {
    &[]
}

/// Splits the next argument off `args`. Linux: next_arg() — a value may be quoted
/// (`foo="a b"`), and so may a whole argument; the quotes are not part of the value.
/// Returns `(param, value, rest)`, or `None` at the end.
pub fn next_arg(args: &str) -> Option<(&str, Option<&str>, &str)> {
    let args = args.trim_start();
    if args.is_empty() {
        return None;
    }
    let bytes = args.as_bytes();
    let (mut start, mut in_quote, quoted) = (0, false, bytes[0] == b'"');
    if quoted {
        start = 1;
        in_quote = true;
    }
    let mut i = start;
    let mut equals = None;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() && !in_quote {
            break;
        }
        if equals.is_none() && c == b'=' {
            equals = Some(i);
        }
        if c == b'"' {
            in_quote = !in_quote;
        }
        i += 1;
    }
    let rest = &args[i..];
    let mut end = i;
    if (quoted || equals.is_some_and(|e| bytes.get(e + 1) == Some(&b'"')))
        && end > start
        && bytes[end - 1] == b'"'
    {
        end -= 1;
    }
    let (param, val) = match equals {
        None => (&args[start..end], None),
        Some(e) => {
            let mut v = e + 1;
            if bytes.get(v) == Some(&b'"') {
                v += 1;
            }
            (&args[start..e], Some(&args[v.min(end)..end]))
        }
    };
    Some((param, val, rest))
}

/// Linux: parameq() — parameter names compare with `-` and `_` as equals.
pub fn parameq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).all(|(x, y)| {
            let norm = |c: u8| if c == b'-' { b'_' } else { c };
            norm(x) == norm(y)
        })
}

/// Calls `f(param, value)` for every argument before a lone `--`. Linux: parse_args().
pub fn parse_args<'a>(cmdline: &'a str, mut f: impl FnMut(&'a str, Option<&'a str>)) {
    let mut rest = cmdline;
    while let Some((param, val, next)) = next_arg(rest) {
        if param == "--" && val.is_none() {
            break;
        }
        f(param, val);
        rest = next;
    }
}

/// Linux: do_early_param() over an explicit table, for the host tests.
pub fn parse_early_param_with(cmdline: &str, table: &[ObsKernelParam]) {
    parse_args(cmdline, |param, val| {
        for p in table.iter().filter(|p| p.early) {
            // Linux lets `console=` also reach the `earlycon` handler.
            let matches = parameq(param, p.name) || (param == "console" && p.name == "earlycon");
            if matches && (p.setup)(val).is_err() {
                pr_warn!("Malformed early option '{}'", param);
            }
        }
    });
}

/// Linux: parse_early_param() — run every early handler on the command line.
pub fn parse_early_param(cmdline: &str) {
    parse_early_param_with(cmdline, registered_params());
}

/// Linux: the `unknown_bootoption` pass of start_kernel's parse_args() plus
/// print_unknown_bootoptions(): run the normal handlers and report what nobody knows.
/// Dotted names are module parameters and, as in Linux, not reported.
pub fn parse_late_params_with(cmdline: &str, table: &[ObsKernelParam]) -> usize {
    let mut unknown = UnknownList::default();
    parse_args(cmdline, |param, val| {
        let mut known = false;
        for p in table.iter().filter(|p| parameq(param, p.name)) {
            known = true;
            if !p.early && (p.setup)(val).is_err() {
                if param.contains('.') {
                    // A module parameter of built-in code: kernel/params.c's parse_args().
                    pr_err!(
                        "Booting kernel: `{}' invalid for parameter `{}'",
                        val.unwrap_or(""),
                        param
                    );
                } else {
                    pr_warn!("Malformed option '{}'", param);
                }
            }
        }
        if !known && !param.contains('.') {
            unknown.push(param, val);
        }
    });
    if unknown.count > 0 {
        pr_notice!(
            "Unknown kernel command line parameters \"{}\", will be passed to user space.",
            unknown.as_str()
        );
    }
    unknown.count
}

pub fn parse_late_params(cmdline: &str) -> usize {
    parse_late_params_with(cmdline, registered_params())
}

/// The unknown parameters, joined by spaces as Linux prints them.
struct UnknownList {
    buf: [u8; 512],
    len: usize,
    count: usize,
}

impl Default for UnknownList {
    fn default() -> Self {
        Self {
            buf: [0; 512],
            len: 0,
            count: 0,
        }
    }
}

impl UnknownList {
    fn push(&mut self, param: &str, val: Option<&str>) {
        let sep = if self.count > 0 { " " } else { "" };
        let eq = if val.is_some() { "=" } else { "" };
        for part in [sep, param, eq, val.unwrap_or("")] {
            let n = part.len().min(self.buf.len() - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&part.as_bytes()[..n]);
            self.len += n;
        }
        self.count += 1;
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

/// Parses a decimal or `0x` number the way Linux's kstrtoull(s, 0) does.
pub fn parse_u64(s: &str) -> Option<u64> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

/// Linux: simple_strtoull(s, &end, 0) — the longest prefix of `s` that is a number in the
/// base its prefix names (`0x` and a hex digit: 16, `0`: 8, else 10); 0 and nothing
/// consumed if there is none. Overflow wraps, as Linux's does. Returns the value and the
/// number of bytes consumed.
pub fn simple_strtoull(s: &str) -> (u64, usize) {
    let b = s.as_bytes();
    let (base, start) = match b {
        [b'0', x, h, ..] if (*x | 0x20) == b'x' && h.is_ascii_hexdigit() => (16, 2),
        [b'0', ..] => (8, 0),
        _ => (10, 0),
    };
    let mut v: u64 = 0;
    let mut i = start;
    while let Some(d) = b.get(i).and_then(|c| (*c as char).to_digit(base)) {
        v = v.wrapping_mul(base as u64).wrapping_add(d as u64);
        i += 1;
    }
    (v, if i == start { 0 } else { i })
}

/// Linux: get_option() (lib/cmdline.c) — an int from the start of `*s`, moving `*s` past
/// it. Returns 0 if there was no number (or no string: `*pint` is then left alone, but
/// a string that does not start with a number writes 0, as Linux's does), 1 if the number
/// ends the option, 2 if a `,` follows (skipped), 3 if a `-` follows (a range).
pub fn get_option(s: &mut Option<&str>, pint: &mut i32) -> i32 {
    let Some(cur) = s.filter(|c| !c.is_empty()) else {
        return 0;
    };
    let (neg, digits) = match cur.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, cur),
    };
    let (v, used) = simple_strtoull(digits);
    *pint = if neg {
        (v as i32).wrapping_neg()
    } else {
        v as i32
    };
    if used == 0 {
        // Linux leaves *str at the minus sign's successor or the start: nothing parsed.
        return 0;
    }
    let rest = &digits[used..];
    *s = Some(rest);
    match rest.as_bytes().first() {
        Some(b',') => {
            *s = Some(&rest[1..]);
            2
        }
        Some(b'-') => 3,
        _ => 1,
    }
}

/// memparse()'s suffix: the shift a leading K/M/G/T/P/E (either case) of `rest` stands for.
pub fn memparse_suffix(rest: &str) -> Option<u32> {
    match rest.as_bytes().first()? {
        b'K' | b'k' => Some(10),
        b'M' | b'm' => Some(20),
        b'G' | b'g' => Some(30),
        b'T' | b't' => Some(40),
        b'P' | b'p' => Some(50),
        b'E' | b'e' => Some(60),
        _ => None,
    }
}

/// Linux: memparse() — a number with an optional K/M/G/T/P/E suffix. Returns the value and
/// what follows it, so callers can parse `size@start` forms.
pub fn memparse(s: &str) -> Option<(u64, &str)> {
    let digits_end = if s.starts_with("0x") || s.starts_with("0X") {
        2 + s[2..]
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(s.len() - 2)
    } else {
        s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len())
    };
    let v = parse_u64(&s[..digits_end])?;
    let rest = &s[digits_end..];
    let Some(shift) = memparse_suffix(rest) else {
        return Some((v, rest));
    };
    Some((
        v.checked_shl(shift).filter(|r| r >> shift == v)?,
        &rest[1..],
    ))
}

/// Linux: COMMAND_LINE_SIZE (asm/setup.h: 2048 on arm64).
pub const COMMAND_LINE_SIZE: usize = 2048;

/// Linux: boot_command_line (init/main.c) — copied out of the device tree by
/// setup_machine_fdt(), as early_init_dt_scan_chosen() does, because the tree is remapped
/// later. Written once during single-CPU early boot, read-only after.
static BOOT_COMMAND_LINE: spin::Once<CommandLine> = spin::Once::new();

struct CommandLine {
    buf: [u8; COMMAND_LINE_SIZE],
    len: usize,
}

/// The kernel command line (empty before setup_machine_fdt).
pub fn boot_command_line() -> &'static str {
    BOOT_COMMAND_LINE
        .get()
        .map_or("", |c| core::str::from_utf8(&c.buf[..c.len]).unwrap_or(""))
}

/// Linux: the strscpy() of /chosen/bootargs into boot_command_line. Only the first call
/// counts. A command line longer than COMMAND_LINE_SIZE - 1 bytes is cut there, as in
/// Linux, but not silently: `Kernel command line truncated to 2047 of N bytes`.
pub fn set_boot_command_line(s: &str) {
    if s.len() > COMMAND_LINE_SIZE - 1 && BOOT_COMMAND_LINE.get().is_none() {
        pr_warn!(
            "Kernel command line truncated to {} of {} bytes (COMMAND_LINE_SIZE)",
            COMMAND_LINE_SIZE - 1,
            s.len()
        );
    }
    BOOT_COMMAND_LINE.call_once(|| {
        let mut c = CommandLine {
            buf: [0; COMMAND_LINE_SIZE],
            len: 0,
        };
        let mut n = s.len().min(COMMAND_LINE_SIZE - 1);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        c.buf[..n].copy_from_slice(&s.as_bytes()[..n]);
        c.len = n;
        c
    });
}

/// Linux: kstrtobool() — `y`/`Y`/`1`/`on` (any case) is true, `n`/`N`/`0`/`off` false; only
/// the first characters count (`yes`, `no`, `onward`), as in Linux.
pub fn kstrtobool(s: &str) -> Option<bool> {
    let b = s.as_bytes();
    match (
        b.first().map(u8::to_ascii_lowercase),
        b.get(1).map(u8::to_ascii_lowercase),
    ) {
        (Some(b'y' | b'1'), _) => Some(true),
        (Some(b'n' | b'0'), _) => Some(false),
        (Some(b'o'), Some(b'n')) => Some(true),
        (Some(b'o'), Some(b'f')) => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
