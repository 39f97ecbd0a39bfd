"""arm64-mm's GDB helpers (scripts/gdb-py/arm64_mm.py loads this package)."""


def register():
    from . import dmesg, memblock, mmzone, page, pgtable, stages, unwind
    unwind.register()
    dmesg.MmDmesg()
    memblock.MmMemblock()
    mmzone.MmBuddyinfo()
    mmzone.MmZoneinfo()
    page.MmPage()
    pgtable.MmPtdump()
    stages.MmBreakStages()
    try:
        from . import slab, vmalloc
        slab.MmSlabinfo()
        vmalloc.MmVmallocinfo()
    except ImportError:
        pass
