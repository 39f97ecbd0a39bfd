"""mm-dmesg: the kernel log buffer (src/kernel/printk.rs LOG_BUF), oldest record first."""
import gdb

from .utils import MmCommand, addr, num, peel, read, sym


def records():
    """(level, text) of each record: `[len: u16][level: u8][text]` in a ring."""
    lb = peel(sym("kernel::printk::LOG_BUF"))
    buf = lb["buf"]
    size = buf.type.strip_typedefs().sizeof
    data = read(addr(buf), size)
    off, seen, used = num(lb["tail"]), 0, num(lb["used"])
    out = []
    while seen < used:
        b = lambda i: data[(off + i) % size]  # noqa: E731
        length = b(0) | b(1) << 8
        text = bytes(b(3 + i) for i in range(length))
        out.append((b(2), text.decode("utf-8", "replace")))
        off = (off + 3 + length) % size
        seen += 3 + length
    return out, num(lb["dropped"])


class MmDmesg(MmCommand):
    """Print the kernel log buffer (Linux: lx-dmesg)."""

    def __init__(self):
        super().__init__("mm-dmesg")

    def run(self, arg):
        recs, _ = records()
        for _, text in recs:
            gdb.write(text + "\n")
