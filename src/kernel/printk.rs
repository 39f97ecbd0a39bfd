//! printk: the kernel log buffer, log levels and consoles. Mirrors kernel/printk/printk.c.
//!
//! Every message goes into `log_buf` first, with Linux's `[    0.000000] ` timestamp prefix.
//! Consoles print what passes the console log level; a console registered late (the PL011
//! needs the device tree to find it) replays the buffer, so the lines printed before it —
//! `Machine model: ...` — are not lost, exactly as Linux's boot consoles behave.
//!
//! The buffer is also the test interface: a QEMU test reads its own log (`for_each_line`), and
//! on the host the lines of the current thread are captured (`take_captured`) so unit tests
//! can check the text of reports such as `memblock_dump_all`.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

pub const KERN_EMERG: u8 = 0;
pub const KERN_ALERT: u8 = 1;
pub const KERN_CRIT: u8 = 2;
pub const KERN_ERR: u8 = 3;
pub const KERN_WARNING: u8 = 4;
pub const KERN_NOTICE: u8 = 5;
pub const KERN_INFO: u8 = 6;
pub const KERN_DEBUG: u8 = 7;

/// Linux: CONSOLE_LOGLEVEL_DEFAULT (7: everything but debug messages reaches the console).
pub const CONSOLE_LOGLEVEL_DEFAULT: u8 = 7;
/// Linux: CONSOLE_LOGLEVEL_QUIET, set by `quiet`.
pub const CONSOLE_LOGLEVEL_QUIET: u8 = 4;
/// Linux: CONSOLE_LOGLEVEL_DEBUG, the highest meaningful `loglevel=`.
pub const CONSOLE_LOGLEVEL_DEBUG: u8 = 10;

/// Linux: LOG_LINE_MAX; longer messages are cut.
const LOG_LINE_MAX: usize = 1024;
/// Linux: __LOG_BUF_LEN (CONFIG_LOG_BUF_SHIFT = 17).
const LOG_BUF_LEN: usize = 1 << 17;

static CONSOLE_LOGLEVEL: AtomicU8 = AtomicU8::new(CONSOLE_LOGLEVEL_DEFAULT);
static IGNORE_LOGLEVEL: AtomicBool = AtomicBool::new(false);

/// A console: something that prints the kernel log (Linux: `struct console`).
pub trait Console: Sync {
    fn name(&self) -> &'static str;
    fn write(&self, s: &str);
}

/// The clock behind the timestamp, in nanoseconds (Linux: `local_clock()`); the arch sets it.
static CLOCK: spin::Once<fn() -> u64> = spin::Once::new();

pub fn set_clock(clock: fn() -> u64) {
    CLOCK.call_once(|| clock);
}

fn local_clock() -> u64 {
    CLOCK.get().map_or(0, |f| f())
}

/// Linux: console_loglevel.
pub fn console_loglevel() -> u8 {
    CONSOLE_LOGLEVEL.load(Ordering::Relaxed)
}

pub fn set_console_loglevel(level: u8) {
    CONSOLE_LOGLEVEL.store(level, Ordering::Relaxed);
}

pub fn set_ignore_loglevel(on: bool) {
    IGNORE_LOGLEVEL.store(on, Ordering::Relaxed);
}

/// Linux: suppress_message_printing() inverted — does a message of `level` reach consoles?
pub fn level_is_printed(level: u8) -> bool {
    IGNORE_LOGLEVEL.load(Ordering::Relaxed) || level < console_loglevel()
}

/// The ring of records: `[len: u16][level: u8][text]`, oldest first, overwritten when full.
struct LogBuf {
    buf: [u8; LOG_BUF_LEN],
    /// Offset of the oldest record.
    tail: usize,
    /// Bytes in use.
    used: usize,
    /// Records dropped to make room since the last console flush.
    dropped: usize,
    console: Option<&'static dyn Console>,
}

impl LogBuf {
    const fn new() -> Self {
        Self {
            buf: [0; LOG_BUF_LEN],
            tail: 0,
            used: 0,
            dropped: 0,
            console: None,
        }
    }

    fn byte(&self, off: usize) -> u8 {
        self.buf[off % LOG_BUF_LEN]
    }

    fn record_len(&self, off: usize) -> usize {
        u16::from_le_bytes([self.byte(off), self.byte(off + 1)]) as usize
    }

    fn drop_oldest(&mut self) {
        let total = 3 + self.record_len(self.tail);
        self.tail = (self.tail + total) % LOG_BUF_LEN;
        self.used -= total;
        self.dropped += 1;
    }

    fn push(&mut self, level: u8, text: &[u8]) {
        let total = 3 + text.len();
        while LOG_BUF_LEN - self.used < total {
            self.drop_oldest();
        }
        let mut off = (self.tail + self.used) % LOG_BUF_LEN;
        let len = (text.len() as u16).to_le_bytes();
        for &b in len.iter().chain(core::iter::once(&level)).chain(text) {
            self.buf[off] = b;
            off = (off + 1) % LOG_BUF_LEN;
        }
        self.used += total;
    }

    /// Calls `f(level, text)` for every stored record, oldest first.
    fn for_each(&self, mut f: impl FnMut(u8, &str)) {
        let mut off = self.tail;
        let mut seen = 0;
        let mut line = [0u8; LOG_LINE_MAX + 32];
        while seen < self.used {
            let len = self.record_len(off);
            let level = self.byte(off + 2);
            for (i, slot) in line.iter_mut().take(len).enumerate() {
                *slot = self.byte(off + 3 + i);
            }
            f(
                level,
                core::str::from_utf8(&line[..len]).unwrap_or("<bad utf-8>"),
            );
            off = (off + 3 + len) % LOG_BUF_LEN;
            seen += 3 + len;
        }
    }
}

static LOG_BUF: spin::Mutex<LogBuf> = spin::Mutex::new(LogBuf::new());

/// A line composed on the stack (no allocator is needed to print): `fmt::Write` fills it,
/// cutting at `N` bytes on a character boundary, as printk cuts at LOG_LINE_MAX.
pub struct LineBuf<const N: usize = LOG_LINE_MAX> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> LineBuf<N> {
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    /// Empties the line for reuse.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

impl<const N: usize> Default for LineBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Write for LineBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Linux: `%*pbl` — the set bits of a bitmap of `len` bits as ranges (`0-1,3`); bit `i`
/// is `isset(i)`.
pub struct BitmapList<F: Fn(usize) -> bool>(pub F, pub usize);

impl<F: Fn(usize) -> bool> fmt::Display for BitmapList<F> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let (isset, len) = (&self.0, self.1);
        let mut sep = "";
        let mut n = 0;
        while n < len {
            if !isset(n) {
                n += 1;
                continue;
            }
            let start = n;
            while n + 1 < len && isset(n + 1) {
                n += 1;
            }
            if start == n {
                write!(f, "{}{}", sep, n)?;
            } else {
                write!(f, "{}{}-{}", sep, start, n)?;
            }
            sep = ",";
            n += 1;
        }
        Ok(())
    }
}

/// Formats Linux's timestamp prefix, `[%5lu.%06lu] `.
pub fn format_timestamp(ns: u64, out: &mut impl Write) -> fmt::Result {
    write!(
        out,
        "[{:5}.{:06}] ",
        ns / 1_000_000_000,
        (ns % 1_000_000_000) / 1000
    )
}

/// Linux: vprintk_emit() — store the message (one record per line) and print it on the console.
pub fn vprintk(level: u8, args: fmt::Arguments) {
    let mut msg = LineBuf::<LOG_LINE_MAX>::new();
    let _ = msg.write_fmt(args);
    let text = msg.as_str().trim_end_matches('\n');
    let ts = local_clock();
    // Nearly every message is one line: `contains` finds that with an inlined memchr, where
    // str::split's iterator, compiled out of line once other code uses it too, cost every
    // line ~35 instructions more (the boot stage figures count them).
    if !text.as_bytes().contains(&b'\n') {
        emit_line(level, ts, text);
    } else {
        for line in text.split('\n') {
            emit_line(level, ts, line);
        }
    }
}

/// One record: the timestamp, then `line`.
#[inline(always)]
fn emit_line(level: u8, ts: u64, line: &str) {
    let mut rec = LineBuf::<LOG_LINE_MAX>::new();
    let _ = format_timestamp(ts, &mut rec);
    let _ = rec.write_str(line);
    emit(level, rec.as_str());
}

fn emit(level: u8, rec: &str) {
    #[cfg(not(target_os = "none"))]
    host::capture(rec);
    let mut log = LOG_BUF.lock();
    log.push(level, rec.as_bytes());
    if let Some(con) = log.console {
        if level_is_printed(level) {
            con.write(rec);
            con.write("\n");
        }
    }
}

/// Linux: register_console() for a boot console — print the whole buffer, then every new line.
pub fn register_console(con: &'static dyn Console) {
    let mut log = LOG_BUF.lock();
    if log.dropped > 0 {
        let mut note = LineBuf::<LOG_LINE_MAX>::new();
        let _ = writeln!(note, "** {} printk messages dropped **", log.dropped);
        con.write(note.as_str());
        log.dropped = 0;
    }
    log.for_each(|level, text| {
        if level_is_printed(level) {
            con.write(text);
            con.write("\n");
        }
    });
    log.console = Some(con);
}

/// The console messages go to, if one is registered.
pub fn console() -> Option<&'static dyn Console> {
    LOG_BUF.lock().console
}

/// Calls `f` with every line in the log buffer (timestamp included), oldest first.
/// This is `dmesg` for in-kernel tests.
pub fn for_each_line(mut f: impl FnMut(&str)) {
    LOG_BUF.lock().for_each(|_, text| f(text));
}

/// Does any line of the log contain `needle`?
pub fn log_contains(needle: &str) -> bool {
    let mut found = false;
    for_each_line(|l| found |= l.contains(needle));
    found
}

/// Linux: bust_spinlocks(1) — the oops and panic paths print even if the fault hit while
/// the log lock was held. Only called on the way down, with other CPUs stopped.
///
/// # Safety
/// The caller must be on the fatal-error path: the interrupted holder never resumes.
pub unsafe fn bust_spinlocks() {
    if LOG_BUF.is_locked() {
        // SAFETY: the caller guarantees the holder will never run again.
        unsafe { LOG_BUF.force_unlock() };
    }
}

/// Linux: loglevel= (early) — the console log level.
fn loglevel(val: Option<&str>) -> crate::kernel::params::SetupResult {
    let v = val
        .and_then(crate::kernel::params::parse_u64)
        .ok_or("expected a number")?;
    set_console_loglevel(v.min(CONSOLE_LOGLEVEL_DEBUG as u64) as u8);
    Ok(())
}
crate::early_param!("loglevel", loglevel);

/// Linux: quiet_kernel() — only warnings and worse reach the console.
fn quiet_kernel(_val: Option<&str>) -> crate::kernel::params::SetupResult {
    set_console_loglevel(CONSOLE_LOGLEVEL_QUIET);
    Ok(())
}
crate::early_param!("quiet", quiet_kernel);

/// Linux: debug_kernel() — everything reaches the console.
fn debug_kernel(_val: Option<&str>) -> crate::kernel::params::SetupResult {
    set_console_loglevel(CONSOLE_LOGLEVEL_DEBUG);
    Ok(())
}
crate::early_param!("debug", debug_kernel);

/// Linux: ignore_loglevel_setup().
fn ignore_loglevel_setup(_val: Option<&str>) -> crate::kernel::params::SetupResult {
    set_ignore_loglevel(true);
    crate::pr_info!("printk: debug: ignoring loglevel setting.");
    Ok(())
}
crate::early_param!("ignore_loglevel", ignore_loglevel_setup);

#[cfg(not(target_os = "none"))]
mod host {
    use std::cell::RefCell;
    std::thread_local! {
        static CAPTURED: RefCell<String> = const { RefCell::new(String::new()) };
    }

    pub fn capture(rec: &str) {
        CAPTURED.with(|c| {
            let mut c = c.borrow_mut();
            c.push_str(rec);
            c.push('\n');
        });
    }

    /// Everything this thread printed since the last call (host unit tests only).
    pub fn take_captured() -> String {
        CAPTURED.with(|c| core::mem::take(&mut *c.borrow_mut()))
    }
}
#[cfg(not(target_os = "none"))]
pub use host::take_captured;

#[macro_export]
macro_rules! printk {
    ($level:expr, $($arg:tt)*) => {
        $crate::kernel::printk::vprintk($level, format_args!($($arg)*))
    };
}
#[macro_export]
macro_rules! pr_emerg { ($($arg:tt)*) => { $crate::printk!($crate::kernel::printk::KERN_EMERG, $($arg)*) }; }
#[macro_export]
macro_rules! pr_alert { ($($arg:tt)*) => { $crate::printk!($crate::kernel::printk::KERN_ALERT, $($arg)*) }; }
#[macro_export]
macro_rules! pr_crit { ($($arg:tt)*) => { $crate::printk!($crate::kernel::printk::KERN_CRIT, $($arg)*) }; }
#[macro_export]
macro_rules! pr_err { ($($arg:tt)*) => { $crate::printk!($crate::kernel::printk::KERN_ERR, $($arg)*) }; }
#[macro_export]
macro_rules! pr_warn { ($($arg:tt)*) => { $crate::printk!($crate::kernel::printk::KERN_WARNING, $($arg)*) }; }
#[macro_export]
macro_rules! pr_notice { ($($arg:tt)*) => { $crate::printk!($crate::kernel::printk::KERN_NOTICE, $($arg)*) }; }
#[macro_export]
macro_rules! pr_info { ($($arg:tt)*) => { $crate::printk!($crate::kernel::printk::KERN_INFO, $($arg)*) }; }
#[macro_export]
macro_rules! pr_debug { ($($arg:tt)*) => { $crate::printk!($crate::kernel::printk::KERN_DEBUG, $($arg)*) }; }

#[cfg(test)]
mod tests;
