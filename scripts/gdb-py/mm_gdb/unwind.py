"""Backtraces through the exception vectors: a frame stopped in __vector_N after its
`bl el1_exception` (or any handler it calls) sits on a saved struct pt_regs (entry.S's
kernel_entry). Its caller is the interrupted code: pc, sp and x0..x30 come from pt_regs,
not from the lr GDB's prologue analysis would use (Linux's unwinder does the same with
the pt_regs frame record)."""
import struct

import gdb
from gdb.unwinder import Unwinder

PTREGS = "arm64_mm::arch::aarch64::ptrace::PtRegs"


def vector_symbol(pc):
    """The start of the __vector_N handler `pc` is in, or None."""
    try:
        out = gdb.execute("info symbol %#x" % pc, to_string=True).split()
    except gdb.error:
        return None
    if not out or not out[0].startswith("__vector_"):
        return None
    return pc - int(out[2]) if len(out) > 2 and out[1] == "+" else pc


class FrameId:
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class PtRegsUnwinder(Unwinder):
    def __init__(self):
        super().__init__("arm64-mm pt_regs")
        self.layout = None

    def offsets(self):
        if self.layout is None:
            t = gdb.lookup_type(PTREGS)
            self.layout = (t.sizeof, {f.name: f.bitpos // 8 for f in t.fields()})
        return self.layout

    def __call__(self, pending_frame):
        pc = int(pending_frame.read_register("pc"))
        start = vector_symbol(pc)
        if start is None:
            return None
        inf = gdb.selected_inferior()
        try:
            # Only past kernel_entry: the return address of `bl el1_exception`.
            insn = struct.unpack("<I", bytes(inf.read_memory(pc - 4, 4)))[0]
            if insn & 0xFC000000 != 0x94000000:
                return None
            size, off = self.offsets()
            regs = int(pending_frame.read_register("sp"))
            raw = bytes(inf.read_memory(regs, size))
        except (gdb.MemoryError, gdb.error):
            return None
        word = lambda o: struct.unpack_from("<Q", raw, o)[0]  # noqa: E731
        u64 = gdb.lookup_type("u64")
        info = pending_frame.create_unwind_info(FrameId(gdb.Value(regs + size).cast(u64),
                                                        gdb.Value(start).cast(u64)))
        for i in range(31):
            info.add_saved_register("x%d" % i, gdb.Value(word(off["regs"] + 8 * i)).cast(u64))
        info.add_saved_register("sp", gdb.Value(word(off["sp"])).cast(u64))
        info.add_saved_register("pc", gdb.Value(word(off["pc"])).cast(u64))
        return info



class FinalFrameFilter:
    """Ends a backtrace at the final frame record (head.S's zeroed fp/lr pair under
    __primary_switched and __secondary_switched): GDB's prologue unwinder turns its lr of 0
    into one more frame at pc 0 and then reports a corrupt stack; the walk ends before it, as
    Linux's unwinder does at the final frame record."""

    def __init__(self):
        self.name = "arm64-mm final frame record"
        self.priority = 100
        self.enabled = True

    def filter(self, frames):
        for fd in frames:
            f = fd.inferior_frame()
            if f.pc() == 0 and f.newer() is not None:
                return
            yield fd


def register():
    gdb.unwinder.register_unwinder(None, PtRegsUnwinder(), replace=True)
    f = FinalFrameFilter()
    gdb.frame_filters[f.name] = f
