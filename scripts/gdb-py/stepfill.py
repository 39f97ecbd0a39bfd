"""What gdb's `stepi` ran without stopping, put back (for itrace.py and linux_itrace.py).

Linux counterpart: none; a tool of ours.

gdb's stepi on AArch64 is not always one instruction: where it sees the start of an atomic
sequence (a load-exclusive, and a load-acquire such as `ldar` too) it reads ahead to the
store-exclusive or store-release, puts breakpoints after it and on the branches out of it,
and lets the target run there. Those instructions ran once (the traces run on one CPU, so
no store-exclusive fails and retries), straight on from where the step began. `fill()` puts
them back, so that a trace counts what `-icount` counts.
"""
import gdb

MASK = 2**64 - 1
_insns = {}


def insn(addr):
    """The instruction word at addr (guest memory, cached)."""
    if addr not in _insns:
        mem = gdb.selected_inferior().read_memory(addr, 4).tobytes()
        _insns[addr] = int.from_bytes(mem, "little")
    return _insns[addr]


def _sext(v, bits):
    return v - (1 << bits) if v & (1 << (bits - 1)) else v


def successors(addr):
    """Where the instruction at addr may go next; None for an indirect branch (br, blr,
    ret, eret and their authenticated forms): anywhere."""
    i = insn(addr)
    if i & 0xFE1F0000 == 0xD61F0000:
        return None
    if i & 0x7C000000 == 0x14000000:  # b, bl
        return {(addr + 4 * _sext(i & 0x3FFFFFF, 26)) & MASK}
    if i & 0xFF000010 == 0x54000000 or i & 0x7E000000 == 0x34000000:  # b.cond, cbz, cbnz
        return {addr + 4, (addr + 4 * _sext((i >> 5) & 0x7FFFF, 19)) & MASK}
    if i & 0x7E000000 == 0x36000000:  # tbz, tbnz
        return {addr + 4, (addr + 4 * _sext((i >> 5) & 0x3FFF, 14)) & MASK}
    return {addr + 4}


def _skipped(pc, nxt):
    """The instructions gdb ran between its steps at pc and at nxt."""
    succ = successors(pc)
    if succ is None or nxt in succ:
        return []
    run, a = [], pc + 4
    for _ in range(32):
        run.append(a)
        s = successors(a)
        if s is not None and nxt in s:
            return run
        a += 4
    raise gdb.GdbError("stepfill: gdb went from %#x to %#x, not a straight run" % (pc, nxt))


def fill(pcs, after):
    """pcs (one per gdb step, in order) with what gdb ran through put back; `after` is where
    the step from the last one arrived."""
    out = []
    for k, pc in enumerate(pcs):
        out.append(pc)
        out.extend(_skipped(pc, pcs[k + 1] if k + 1 < len(pcs) else after))
    return out
