"""arm64-mm's GDB helpers (scripts/gdb-py/arm64_mm.py loads this package)."""


def register():
    from . import boot, dmesg, memblock, mmzone, page, pgtable, stages, tour, unwind
    unwind.register()
    dmesg.MmDmesg()
    memblock.MmMemblock()
    memblock.MmMemblockDiff()
    mmzone.MmBuddyinfo()
    mmzone.MmZoneinfo()
    mmzone.MmNodes()
    mmzone.MmZonelists()
    boot.MmImage()
    boot.MmCpus()
    boot.MmPercpu()
    page.MmPage()
    pgtable.MmPtdump()
    stages.MmBreakStages()
    tour.MmTour()
    try:
        from . import slab, vmalloc
        slab.MmSlabinfo()
        vmalloc.MmVmallocinfo()
        vmalloc.MmVmapAreas()
    except ImportError:
        pass
