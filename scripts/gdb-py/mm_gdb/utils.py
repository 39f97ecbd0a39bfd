"""Reading the kernel's Rust statics from GDB.

Rust names are paths (arm64_mm::mm::memblock::MEMBLOCK); the statics sit behind
spin::Mutex / spin::Once / UnsafeCell / MaybeUninit / atomics, which `peel` and `num` see
through. Enums (Option) are never printed with GDB's Rust printer (GDB 13 asserts on
Option<NonNull<T>>): their niche pointers are read as raw words.
"""
import struct

import gdb

CRATE = "arm64_mm"
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
MAX_NUMNODES = 16  # src/include/numa.rs: 1 << NODES_SHIFT
ZONE_NAMES = ["DMA", "DMA32", "Normal", "Movable"]  # src/include/mmzone.rs
# src/arch/aarch64/memory.rs (VA_BITS 48, 64-byte struct page)
VA_BITS = 48
PAGE_OFFSET = 0xFFFF000000000000
PAGE_END = 0xFFFF800000000000
VMEMMAP_START = (1 << 64) - (1 << (VA_BITS - 6))
STRUCT_PAGE_SIZE = 64


class NotYet(Exception):
    """The structure does not exist at this stage of boot (the message says why)."""


def sym(path):
    """The gdb.Value of the static `arm64_mm::<path>`."""
    name = path if path.startswith(CRATE + "::") else CRATE + "::" + path
    s = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
    if s is None:
        raise gdb.GdbError("no symbol %s in the kernel's debug info" % name)
    return s.value()


_WRAPPERS = (
    ("spin::mutex::Mutex<", "inner"),
    ("spin::mutex::spin::SpinMutex<", "data"),
    ("core::cell::UnsafeCell<", "value"),
    ("core::mem::maybe_uninit::MaybeUninit<", "value"),
    ("core::mem::manually_drop::ManuallyDrop<", "value"),
    ("core::mem::maybe_dangling::MaybeDangling<", "__0"),
    ("core::sync::atomic::Atomic", "v"),
)


def peel(v):
    """Sees through Mutex, UnsafeCell, MaybeUninit, ManuallyDrop and atomics."""
    while True:
        name = v.type.strip_typedefs().name or ""
        for prefix, field in _WRAPPERS:
            if name.startswith(prefix):
                if field == "v" and name.startswith("core::sync::atomic::AtomicPtr<"):
                    field = "p"
                v = v[field]
                break
        else:
            return v


def num(v):
    """An integer from an integer, pointer, bool, atomic or newtype (PhysAddr, Pfn)."""
    while True:
        v = peel(v)
        t = v.type.strip_typedefs()
        if t.code in (gdb.TYPE_CODE_INT, gdb.TYPE_CODE_BOOL, gdb.TYPE_CODE_CHAR):
            return int(v)
        if t.code == gdb.TYPE_CODE_PTR:
            return int(v.cast(gdb.lookup_type("u64")))
        fields = [f.name for f in t.fields()]
        if "__0" in fields:
            v = v["__0"]
        elif len(fields) == 1:
            v = v[fields[0]]
        else:
            raise gdb.GdbError("not a number: %s" % t.name)


def once(path, what):
    """The value inside a spin::Once static, or NotYet if call_once has not completed."""
    o = sym(path)
    status = num(o["status"])
    if status != 2:  # spin::once::Status::Complete
        raise NotYet(what)
    return peel(o["data"])


def addr(v):
    return int(v.address.cast(gdb.lookup_type("u64")))


def read(address, size):
    return bytes(gdb.selected_inferior().read_memory(address, size))


def u64(address):
    return struct.unpack("<Q", read(address, 8))[0]


def field_offset(t, name):
    for f in t.strip_typedefs().fields():
        if f.name == name:
            return f.bitpos // 8
    raise gdb.GdbError("%s has no field %s" % (t, name))


def rust_str(v):
    """A &str's text."""
    ptr, length = num(v["data_ptr"]), num(v["length"])
    return read(ptr, length).decode("utf-8", "replace") if length else ""


def raw_word(v):
    """The first 8 bytes of a value: an Option<NonNull<T>> / Option<&T> (None is 0)."""
    return u64(addr(v))


def typed_at(typename, address):
    """The value of type `typename` (a Rust path) at `address`."""
    t = gdb.lookup_type(typename)
    return gdb.Value(address).cast(t.pointer()).dereference()


def memstart_addr():
    v = num(sym("arch::aarch64::memory::memstart_addr"))
    if v == (1 << 64) - 1:
        raise NotYet("PHYS_OFFSET (memstart_addr) is not set before arm64_memblock_init")
    # Linux's memstart_addr is an s64: KASLR may move it below 0.
    return v - (1 << 64) if v >= 1 << 63 else v


def vmemmap():
    return (VMEMMAP_START - (memstart_addr() >> PAGE_SHIFT) * STRUCT_PAGE_SIZE) % (1 << 64)


def pfn_to_page(pfn):
    return (vmemmap() + pfn * STRUCT_PAGE_SIZE) % (1 << 64)


def lm_va(pa):
    """Linux: __va()."""
    return ((pa - memstart_addr()) | PAGE_OFFSET) % (1 << 64)


class MmCommand(gdb.Command):
    """Base of the mm-* commands: NotYet becomes one line, not a Python traceback."""

    def __init__(self, name, complete=gdb.COMPLETE_NONE):
        super().__init__(name, gdb.COMMAND_USER, complete)
        self.cmd = name

    def invoke(self, arg, from_tty):
        try:
            self.run(arg.strip())
        except NotYet as e:
            gdb.write("%s: %s\n" % (self.cmd, e))
        except gdb.MemoryError as e:
            gdb.write("%s: cannot read kernel memory (%s)\n" % (self.cmd, e))


_SYMTAB = None


def elf_symtab():
    """[(name, st_info, st_value)] of the kernel ELF's .symtab, read once (GDB's Python has no
    minimal-symbol iterator, and linker symbols have no type in DWARF)."""
    global _SYMTAB
    if _SYMTAB is None:
        _SYMTAB = []
        with open(gdb.objfiles()[0].filename, "rb") as f:
            elf = f.read()
        shoff, = struct.unpack_from("<Q", elf, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", elf, 0x3A)
        shdrs = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + k * shentsize) for k in range(shnum)]
        for sh in shdrs:
            if sh[1] != 2:  # SHT_SYMTAB
                continue
            strtab = shdrs[sh[6]]
            for off in range(sh[4], sh[4] + sh[5], 24):
                nm, info, _, _, value, _ = struct.unpack_from("<IBBHQQ", elf, off)
                s0 = strtab[4] + nm
                _SYMTAB.append((elf[s0:elf.index(b"\0", s0)].decode("ascii", "replace"), info, value))
    return _SYMTAB
