//! Arm semihosting (the "Semihosting for AArch32 and AArch64" spec): how a test kernel ends
//! QEMU with an exit status, and how the kernel writes a file on the host (the memory
//! report, `mm_report=`). Linux has no equivalent (its semihosting is a console only). Needs QEMU's `-semihosting-config enable=on,target=native`;
//! without it the `hlt` is an undefined instruction, which an exception-table entry turns
//! into an error return instead of a crash.

/// SYS_EXIT_EXTENDED: exit with a status code.
pub const SYS_EXIT_EXTENDED: u64 = 0x20;
/// SYS_WRITE0: print a NUL-terminated string on the host's stdout.
const SYS_WRITE0: u64 = 0x04;
/// SYS_OPEN: open a host file; returns a handle or -1.
const SYS_OPEN: u64 = 0x01;
/// SYS_CLOSE: close a handle; returns 0 or -1.
const SYS_CLOSE: u64 = 0x02;
/// SYS_WRITE: write a buffer; returns the number of bytes NOT written.
const SYS_WRITE: u64 = 0x05;
/// SYS_OPEN mode 4: "w" (create or truncate, write).
const OPEN_MODE_W: u64 = 4;
/// ADP_Stopped_ApplicationExit.
pub const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x20026;

core::arch::global_asm!(
    r#"
    .section .text.semihosting, "ax"
    .global __semihosting_call
__semihosting_call:
1:  hlt     #0xf000
    mov     x1, #0
    ret
2:  mov     x0, #-1
    mov     x1, #1
    ret
    .pushsection __ex_table, "a"
    .quad   1b, 2b
    .popsection
"#
);

#[repr(C)]
struct CallResult {
    value: u64,
    trapped: u64,
}

extern "C" {
    fn __semihosting_call(op: u64, param: u64) -> CallResult;
}

/// Ends QEMU with `code`. Returns only if semihosting is not enabled.
pub fn exit(code: u32) {
    let block = [ADP_STOPPED_APPLICATION_EXIT, code as u64];
    // SAFETY: the parameter block lives on this stack for the duration of the call, and a
    // trap (semihosting disabled) is fixed up by the exception table.
    unsafe { __semihosting_call(SYS_EXIT_EXTENDED, block.as_ptr() as u64) };
}

/// Writes `s` to the host through semihosting; for output before any console exists.
/// Returns false if semihosting is unavailable.
pub fn write0(s: &str) -> bool {
    let mut buf = [0u8; 256];
    let n = s.len().min(buf.len() - 1);
    buf[..n].copy_from_slice(&s.as_bytes()[..n]);
    // SAFETY: `buf` is NUL-terminated and outlives the call; traps are fixed up.
    let r = unsafe { __semihosting_call(SYS_WRITE0, buf.as_ptr() as u64) };
    r.trapped == 0
}

/// Why a host file operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostFileError {
    /// Semihosting is not enabled (the `hlt` trapped).
    Unavailable,
    /// The path is too long for the buffer or holds a NUL.
    BadPath,
    /// The host refused to open the file.
    Open,
    /// The host wrote fewer bytes than asked.
    Write,
    /// The host failed to close the file.
    Close,
}

impl core::fmt::Display for HostFileError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Unavailable => "semihosting is not enabled",
            Self::BadPath => "bad path",
            Self::Open => "the host could not open the file",
            Self::Write => "the host could not write the file",
            Self::Close => "the host could not close the file",
        })
    }
}

/// A host file opened for writing through SYS_OPEN, written through a buffer with
/// SYS_WRITE, closed with SYS_CLOSE. A relative path is relative to QEMU's working
/// directory. Implements `fmt::Write`; the first failure sticks and is returned by
/// [`HostFile::close`].
pub struct HostFile {
    handle: u64,
    buf: [u8; 4096],
    len: usize,
    error: Option<HostFileError>,
}

impl HostFile {
    /// SYS_OPEN `path` in mode "w" (created or truncated).
    pub fn create(path: &str) -> Result<Self, HostFileError> {
        let mut name = [0u8; 512];
        if path.is_empty() || path.len() >= name.len() || path.as_bytes().contains(&0) {
            return Err(HostFileError::BadPath);
        }
        name[..path.len()].copy_from_slice(path.as_bytes());
        let block = [name.as_ptr() as u64, OPEN_MODE_W, path.len() as u64];
        // SAFETY: the NUL-terminated name and the parameter block live on this stack for
        // the duration of the call; a trap (semihosting disabled) is fixed up.
        let r = unsafe { __semihosting_call(SYS_OPEN, block.as_ptr() as u64) };
        if r.trapped != 0 {
            return Err(HostFileError::Unavailable);
        }
        if r.value as i64 == -1 {
            return Err(HostFileError::Open);
        }
        Ok(Self {
            handle: r.value,
            buf: [0; 4096],
            len: 0,
            error: None,
        })
    }

    fn write_raw(&mut self, data: &[u8]) -> Result<(), HostFileError> {
        if data.is_empty() {
            return Ok(());
        }
        let block = [self.handle, data.as_ptr() as u64, data.len() as u64];
        // SAFETY: `data` and the parameter block outlive the call; the host only reads them.
        let r = unsafe { __semihosting_call(SYS_WRITE, block.as_ptr() as u64) };
        if r.trapped != 0 || r.value != 0 {
            return Err(HostFileError::Write);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), HostFileError> {
        let (buf, len) = (self.buf, self.len);
        self.len = 0;
        self.write_raw(&buf[..len])
    }

    /// Appends `data` (buffered).
    pub fn write_bytes(&mut self, mut data: &[u8]) -> Result<(), HostFileError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        while !data.is_empty() {
            if self.len == self.buf.len() {
                if let Err(e) = self.flush() {
                    self.error = Some(e);
                    return Err(e);
                }
            }
            let n = data.len().min(self.buf.len() - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
            self.len += n;
            data = &data[n..];
        }
        Ok(())
    }

    /// Flushes and SYS_CLOSEs; returns the first error of any write, flush or the close.
    pub fn close(mut self) -> Result<(), HostFileError> {
        let flushed = match self.error {
            Some(e) => Err(e),
            None => self.flush(),
        };
        let block = [self.handle];
        // SAFETY: the parameter block outlives the call.
        let r = unsafe { __semihosting_call(SYS_CLOSE, block.as_ptr() as u64) };
        flushed?;
        if r.trapped != 0 || r.value != 0 {
            return Err(HostFileError::Close);
        }
        Ok(())
    }
}

impl core::fmt::Write for HostFile {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.write_bytes(s.as_bytes()).map_err(|_| core::fmt::Error)
    }
}
