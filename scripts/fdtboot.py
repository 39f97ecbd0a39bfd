"""Deliver a device tree blob to the kernel exactly as written (used by `scripts/run --dtb`).

QEMU's own `-dtb FILE` is not a faithful way to hand a blob to a kernel: QEMU deletes every
/memory node of the file and writes its own (from -m and -numa), and replaces
/chosen/bootargs with -append. So `scripts/run --dtb` loads the blob with
`-device loader,file=BLOB,addr=A` and starts CPU 0 in a small boot stub (loaded the same way)
that puts A in x0 and jumps to the Image, as a boot loader would. QEMU still builds and loads
its own tree, which the kernel never sees.

This script:
- checks the blob (readable, FDT magic, a structure block it can walk) - exit 2 otherwise;
- reads the memory the blob describes (`device_type = "memory"` nodes: `reg`, or
  `linux,usable-memory` when present) and the Image header (text_offset, image_size);
- picks a 2 MiB-aligned address for blob + stub inside both QEMU's RAM (-m) and the blob's
  memory, clear of QEMU's boot stub, the kernel image and the window where QEMU puts its own
  initrd and tree (loader_start + min(RAM/2, 128 MiB), hw/arm/boot.c), preferring the top of
  memory as boot loaders do;
- with `--append-bootargs TEXT` writes a copy of the blob whose /chosen/bootargs has TEXT
  appended (a /chosen node or bootargs property is created if missing); everything else -
  nodes, properties, /memreserve/ entries, boot_cpuid_phys - is copied unchanged. Without
  it the user's file is loaded as it is. The user's file is never modified;
- writes the boot stub.

It prints shell assignments for scripts/run: dtb=PATH dtb_addr=0x... stub=PATH stub_addr=0x...
`python3 scripts/fdtboot.py --self-test` checks the rewriter and the placement (scripts/test).

The stub (also used by tests/fixtures/boot/make.py):
    ldr x0, lit0; ldr x4, lit1; br x4; nop; lit0: .quad FDT; lit1: .quad ENTRY
"""
import argparse
import os
import shlex
import struct
import sys

FDT_MAGIC = 0xD00DFEED
FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END = 1, 2, 3, 4, 9
MIB = 1 << 20
ALIGN = 2 * MIB
PAGE = 4096
# QEMU's BOOTLOADER_MAX_SIZE (hw/arm/boot.c): an Image asking for a smaller text_offset is
# loaded 2 MiB higher, above QEMU's own boot stub at the bottom of RAM.
BOOTLOADER_MAX_SIZE = 4096


class FdtError(Exception):
    pass


def boot_stub(x0, entry):
    """The replacement boot stub: x0 = the tree's address, then branch to the Image."""
    return struct.pack("<IIII", 0x58000080, 0x580000A4, 0xD61F0080, 0xD503201F) + struct.pack("<QQ", x0, entry)


class Node:
    def __init__(self, name):
        self.name = name
        self.props = []  # [name, bytes]
        self.children = []

    def prop(self, name):
        for p in self.props:
            if p[0] == name:
                return p
        return None

    def child(self, name):
        for c in self.children:
            if c.name == name:
                return c
        return None


def parse(blob):
    """(root, memreserve [(addr, size)], boot_cpuid_phys) of a flattened tree."""
    if len(blob) < 40:
        raise FdtError("too short for a device tree header (%d bytes)" % len(blob))
    (magic, totalsize, off_struct, off_strings, off_rsv, version, _last, boot_cpuid,
     size_strings, size_struct) = struct.unpack(">10I", blob[:40])
    if magic != FDT_MAGIC:
        raise FdtError("no device tree magic: 0x%08x, expected 0x%08x" % (magic, FDT_MAGIC))
    if totalsize > len(blob):
        raise FdtError("totalsize 0x%x exceeds the file's %d bytes" % (totalsize, len(blob)))
    if version < 16:
        raise FdtError("version %d (16 or 17 needed)" % version)
    rsv = []
    off = off_rsv
    while True:
        if off + 16 > totalsize:
            raise FdtError("memory reservation block runs past the end")
        addr, size = struct.unpack(">QQ", blob[off:off + 16])
        off += 16
        if addr == 0 and size == 0:
            break
        rsv.append((addr, size))
    strings = blob[off_strings:off_strings + size_strings]

    def string_at(o):
        end = strings.find(b"\0", o)
        if o >= len(strings) or end < 0:
            raise FdtError("property name offset 0x%x outside the strings block" % o)
        return strings[o:end].decode("latin-1")

    end_struct = off_struct + size_struct if version >= 17 else totalsize
    off = off_struct
    stack = []
    root = None
    while True:
        if off + 4 > end_struct:
            raise FdtError("structure block ends without FDT_END")
        (tok,) = struct.unpack(">I", blob[off:off + 4])
        off += 4
        if tok == FDT_BEGIN_NODE:
            end = blob.find(b"\0", off, end_struct)
            if end < 0:
                raise FdtError("unterminated node name at 0x%x" % off)
            node = Node(blob[off:end].decode("latin-1"))
            off = (end + 1 + 3) & ~3
            if stack:
                stack[-1].children.append(node)
            elif root is None:
                root = node
            else:
                raise FdtError("a second root node at 0x%x" % off)
            stack.append(node)
        elif tok == FDT_END_NODE:
            if not stack:
                raise FdtError("FDT_END_NODE without a node at 0x%x" % off)
            stack.pop()
        elif tok == FDT_PROP:
            if not stack or off + 8 > end_struct:
                raise FdtError("bad property at 0x%x" % off)
            length, nameoff = struct.unpack(">II", blob[off:off + 8])
            off += 8
            if off + length > end_struct:
                raise FdtError("property value runs past the structure block at 0x%x" % off)
            stack[-1].props.append([string_at(nameoff), blob[off:off + length]])
            off = (off + length + 3) & ~3
        elif tok == FDT_NOP:
            pass
        elif tok == FDT_END:
            break
        else:
            raise FdtError("unknown token 0x%x at 0x%x" % (tok, off - 4))
    if root is None or stack:
        raise FdtError("the structure block is not one closed tree")
    return root, rsv, boot_cpuid


def serialize(root, rsv, boot_cpuid):
    """A version-17 blob: header, reservations, structure, strings."""
    strings = bytearray()
    offsets = {}
    st = bytearray()

    def name_off(name):
        if name not in offsets:
            offsets[name] = len(strings)
            strings.extend(name.encode("latin-1") + b"\0")
        return offsets[name]

    def pad():
        while len(st) % 4:
            st.append(0)

    def emit(node):
        st.extend(struct.pack(">I", FDT_BEGIN_NODE) + node.name.encode("latin-1") + b"\0")
        pad()
        for name, value in node.props:
            st.extend(struct.pack(">III", FDT_PROP, len(value), name_off(name)) + value)
            pad()
        for c in node.children:
            emit(c)
        st.extend(struct.pack(">I", FDT_END_NODE))

    emit(root)
    st.extend(struct.pack(">I", FDT_END))
    rsvblk = b"".join(struct.pack(">QQ", a, s) for a, s in rsv) + struct.pack(">QQ", 0, 0)
    off_rsv = 40
    off_struct = off_rsv + len(rsvblk)
    off_strings = off_struct + len(st)
    total = off_strings + len(strings)
    hdr = struct.pack(">10I", FDT_MAGIC, total, off_struct, off_strings, off_rsv, 17, 16,
                      boot_cpuid, len(strings), len(st))
    return hdr + rsvblk + bytes(st) + bytes(strings)


def cells(node, name, default):
    p = node.prop(name)
    if p is None or len(p[1]) != 4:
        return default
    return struct.unpack(">I", p[1])[0]


def read_cells(data, n):
    v = 0
    for i in range(n):
        v = (v << 32) | struct.unpack(">I", data[4 * i:4 * i + 4])[0]
    return v


def memory_banks(root):
    """[(base, size)] of the memory nodes, as early_init_dt_scan_memory reads them."""
    ac = cells(root, "#address-cells", 1)
    sc = cells(root, "#size-cells", 1)
    banks = []
    if ac == 0 or ac > 2 or sc > 2:
        return banks
    entry = 4 * (ac + sc)
    for node in root.children:
        dt = node.prop("device_type")
        if dt is None or dt[1].rstrip(b"\0") != b"memory":
            continue
        reg = node.prop("linux,usable-memory") or node.prop("reg")
        if reg is None:
            continue
        data = reg[1]
        for i in range(len(data) // entry):
            e = data[i * entry:(i + 1) * entry]
            base, size = read_cells(e, ac), read_cells(e[4 * ac:], sc)
            if size:
                banks.append((base, size))
    return banks


def append_bootargs(root, text):
    chosen = root.child("chosen")
    if chosen is None:
        chosen = Node("chosen")
        root.children.append(chosen)
    p = chosen.prop("bootargs")
    if p is None:
        chosen.props.append(["bootargs", text.encode() + b"\0"])
        return
    old = p[1].split(b"\0")[0].decode("latin-1")
    p[1] = ((old + " " + text) if old else text).encode("latin-1") + b"\0"


def place(banks, ram, exclude, need):
    """The highest 2 MiB-aligned start of `need` bytes inside a bank and RAM, clear of `exclude`."""
    best = None
    for base, size in banks:
        lo = max(base, ram[0])
        hi = min(base + size, ram[1])
        a = (hi - need) // ALIGN * ALIGN
        while a >= lo and (best is None or a > best):
            clash = [e for e in exclude if a < e[1] and e[0] < a + need]
            if not clash:
                best = a
                break
            a = (min(e[0] for e in clash) - need) // ALIGN * ALIGN
    return best


def self_test(root_dir):
    """Checks run by scripts/test: the rewriter and the placement, without QEMU."""
    import glob
    blobs = sorted(glob.glob(os.path.join(root_dir, "tests", "fixtures", "**", "*.dtb"), recursive=True))
    n = 0
    for path in blobs:
        blob = open(path, "rb").read()
        try:
            tree = parse(blob)
        except FdtError:
            continue  # the deliberately corrupt ones
        again = parse(serialize(*tree))
        assert dump(again[0]) == dump(tree[0]) and again[1:] == tree[1:], path
        n += 1
    assert n >= 10, "only %d fixture blobs parsed" % n
    root, rsv, cpu = parse(open(os.path.join(root_dir, "tests", "fixtures", "boot", "two-banks.dtb"), "rb").read())
    assert memory_banks(root) == [(0x40000000, 0x10000000), (0x60000000, 0x20000000)]
    assert rsv == [(0x70000000, 0x100000)]
    append_bootargs(root, "a=1 batch")
    root2, rsv2, _ = parse(serialize(root, rsv, cpu))
    assert root2.child("chosen").prop("bootargs")[1] == b"memblock=debug dtbtest.bootargs=as-written a=1 batch\0"
    assert rsv2 == rsv
    # No /chosen at all: one is made.
    bare = Node("")
    bare.props.append(["#address-cells", struct.pack(">I", 2)])
    append_bootargs(bare, "batch")
    assert parse(serialize(bare, [], 0))[0].child("chosen").prop("bootargs")[1] == b"batch\0"
    # Placement: the top of the highest bank inside RAM, 2 MiB aligned; clear of exclusions.
    ram = (0x40000000, 0x80000000)
    assert place([(0x40000000, 0x10000000), (0x60000000, 0x20000000)], ram, [], 0x2000) == 0x7FE00000
    assert place([(0x40000000, 0x40000000)], (0x40000000, 0x48000000), [(0x47000000, 0x48000000)], 0x2000) == 0x46E00000
    assert place([(0x100000000, 0x10000000)], ram, [], 0x2000) is None
    assert place([(0x40000000, 0x400000)], ram, [(0x40000000, 0x40350000)], 0x2000) is None
    print("scripts/fdtboot.py: self-test ok (%d fixture blobs round-tripped)" % n)


def dump(node, depth=0):
    return [(depth, node.name, [tuple(p) for p in node.props])] + [x for c in node.children for x in dump(c, depth + 1)]


def main():
    if sys.argv[1:] == ["--self-test"]:
        self_test(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dtb", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--ram-base", type=lambda s: int(s, 0), default=0x40000000)
    ap.add_argument("--ram-mib", type=int, required=True)
    ap.add_argument("--initrd-size", type=int, default=0)
    ap.add_argument("--append-bootargs", default="")
    ap.add_argument("--out-dir", required=True)
    a = ap.parse_args()

    def fail(msg):
        print("scripts/run: --dtb %s: %s" % (a.dtb, msg), file=sys.stderr)
        sys.exit(2)

    try:
        blob = open(a.dtb, "rb").read()
    except OSError as e:
        fail("cannot read it (%s)" % e.strerror)
    try:
        root, rsv, boot_cpuid = parse(blob)
    except FdtError as e:
        fail("not a usable flattened device tree: %s" % e)
    banks = memory_banks(root)

    hdr = open(a.image, "rb").read(64)
    text_offset, image_size = struct.unpack("<QQ", hdr[8:24])
    load_offset = text_offset + (2 * MIB if text_offset < BOOTLOADER_MAX_SIZE else 0)
    entry = a.ram_base + load_offset
    ram = (a.ram_base, a.ram_base + a.ram_mib * MIB)
    kernel_end = entry + image_size
    if not banks:
        # Still boot it: the kernel says what is wrong with the tree's memory.
        print("scripts/run: warning: --dtb %s: no memory node this script can read; the blob goes "
              "anywhere in QEMU's RAM" % a.dtb, file=sys.stderr)
        banks = [(ram[0], ram[1] - ram[0])]
    initrd_start = max(a.ram_base + min(a.ram_mib * MIB // 2, 128 * MIB), kernel_end)
    initrd_start = (initrd_start + PAGE - 1) // PAGE * PAGE
    qemu_end = (initrd_start + a.initrd_size + ALIGN - 1) // ALIGN * ALIGN + 2 * ALIGN
    exclude = [(a.ram_base, kernel_end), (initrd_start, qemu_end)]

    if a.append_bootargs:
        append_bootargs(root, a.append_bootargs)
        out = serialize(root, rsv, boot_cpuid)
        dtb_path = os.path.join(a.out_dir, "dtb")
        open(dtb_path, "wb").write(out)
    else:
        out = blob[:struct.unpack(">I", blob[4:8])[0]]
        dtb_path = a.dtb
    blob_span = (len(out) + PAGE - 1) // PAGE * PAGE
    need = blob_span + PAGE
    addr = place(banks, ram, exclude, need)
    if addr is None:
        fail("no room for the blob (%d bytes) and the boot stub in memory that is both in the tree's "
             "memory nodes (%s) and in QEMU's RAM [mem 0x%x-0x%x], clear of the kernel "
             "[mem 0x%x-0x%x] and of QEMU's own tree and initrd"
             % (len(out), ", ".join("[mem 0x%x-0x%x]" % (b, b + s - 1) for b, s in banks),
                ram[0], ram[1] - 1, entry, kernel_end - 1))
    outside = [(b, s) for b, s in banks if b < ram[0] or b + s > ram[1]]
    for b, s in outside:
        print("scripts/run: warning: --dtb %s: memory [mem 0x%x-0x%x] is not (all) in QEMU's RAM "
              "[mem 0x%x-0x%x] (-m %dM); the kernel is told it exists"
              % (a.dtb, b, b + s - 1, ram[0], ram[1] - 1, a.ram_mib), file=sys.stderr)
    stub_path = os.path.join(a.out_dir, "stub.bin")
    open(stub_path, "wb").write(boot_stub(addr, entry))
    for k, v in (("dtb", dtb_path), ("dtb_addr", "0x%x" % addr), ("stub", stub_path),
                 ("stub_addr", "0x%x" % (addr + blob_span))):
        print("%s=%s" % (k, shlex.quote(v)))


if __name__ == "__main__":
    main()
