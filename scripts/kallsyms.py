"""Write the kallsyms table (see src/kernel/kallsyms.rs) into an Image.

stdin: `llvm-nm --defined-only --print-size --numeric-sort -C` of the kernel ELF.
argv[1]: the Image made from that ELF by `llvm-objcopy -O binary`.
"""
import re
import struct
import sys

image_path = sys.argv[1]
syms = {}
funcs = []
for line in sys.stdin:
    parts = line.rstrip("\n").split(" ", 3)
    if len(parts) == 4:
        addr, size, kind, name = parts
    elif len(parts) == 3:
        addr, kind, name = parts
        size = "0"
    else:
        continue
    addr, size = int(addr, 16), int(size, 16)
    syms[name] = addr
    if kind in "tT":
        # Rust's legacy mangling leaves a ::h<hash> suffix; it only adds noise to a trace.
        name = re.sub(r"::h[0-9a-f]{16}$", "", name)
        funcs.append((addr, size, name))

text, start, end = syms["_text"], syms["__kallsyms_start"], syms["__kallsyms_end"]
room = end - start
funcs.sort()
names = b""
entries = []
for addr, size, name in funcs:
    entries.append((addr, min(size, 0xFFFFFFFF), len(names)))
    names += name.encode()

def build(n):
    blob = b"KSYM" + struct.pack("<I", n)
    for addr, size, off in entries[:n]:
        blob += struct.pack("<QII", addr, size, off)
    end_off = entries[n][2] if n < len(entries) else len(names)
    return blob + names[:end_off]

n = len(entries)
blob = build(n)
while len(blob) > room and n > 0:
    n = n * 9 // 10
    blob = build(n)
if n < len(entries):
    print(f"kallsyms: only {n} of {len(entries)} symbols fit in {room} bytes", file=sys.stderr)

with open(image_path, "r+b") as f:
    f.seek(start - text)
    f.write(blob + b"\0" * (room - len(blob)))
