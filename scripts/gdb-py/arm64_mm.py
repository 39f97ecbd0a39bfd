# GDB helpers for arm64-mm, loaded by scripts/gdb with `source` (Linux: scripts/gdb/vmlinux-gdb.py).
#
# The commands read the stopped kernel's statics through their DWARF types and print Linux's
# report formats; `help mm` lists them. The modules live in mm_gdb/ next to this file.
import os
import sys

import gdb

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.insert(0, _here)

import mm_gdb  # noqa: E402

mm_gdb.register()
