"""Print the memory-management lines of a Linux boot log that this kernel must reproduce
byte for byte (timestamps stripped), in order. Used by scripts/qemu-runner's
`expect-linux-lines FILE`.

Compared: the NUMA fake-node lines, Zone ranges and its zone lines, Movable zone start,
Early memory node ranges and its node lines, Initmem setup node, On node N ... unavailable
ranges, psci: (the firmware probe psci_dt_init prints), smp_init_cpus' clipping warning
(`Number of cores (N) exceeds configured maximum of M - clipping`, for nr_cpus=), the
pcpu-alloc: group lines (KERN_DEBUG: tests/zones boots with loglevel=8, as capture.sh
does), Fallback order for Node, Built N zonelists ... Total pages, Policy zone, and smp_init's
smp:, CPUn: Booted secondary processor, SMP: Total of, CPU: All CPU(s) started, and
swiotlb_init's `software IO TLB:` lines (see SWIOTLB_BELOW_CMA).
Not compared: values that honestly differ (NODE_DATA addresses, Memory: available)."""
import re
import sys

PREFIXES = (
    "NUMA: No NUMA configuration found",
    "NUMA: Faking a node at ",
    "Zone ranges:",
    "  DMA      ",
    "  DMA32    ",
    "  Normal   ",
    "Movable zone start for each node",
    "Early memory node ranges",
    "  node ",
    "  Node ",
    "Initmem setup node ",
    "On node ",
    "psci: ",
    "Number of cores (",
    "pcpu-alloc: [",
    "Fallback order for Node ",
    "Built ",
    "Policy zone: ",
    "smp: ",
    "SMP: Total of ",
    "CPU: All CPU(s) started",
    "software IO TLB: ",
)

# Linux places the swiotlb buffer directly below CMA's area (arm64's mem_init runs after
# bootmem_init's dma_contiguous_reserve), so until this kernel reserves CMA too (issue 18
# item 1) its buffer lies 64 MiB higher than in a log with a `cma: Reserved` line: such a
# log's `software IO TLB:` lines are left out (logs captured with `cma=0`, or without
# swiotlb lines, are compared in full). Set to True once CMA is merged: then every
# machine's swiotlb lines are compared. scripts/vs-linux compares them always.
SWIOTLB_BELOW_CMA = False

def mm_lines(text, all_swiotlb=SWIOTLB_BELOW_CMA):
    """The compared lines of a boot log's text, timestamps stripped, in order."""
    out = []
    skip_swiotlb = not all_swiotlb and re.search(r"\] cma: Reserved ", text) is not None
    for line in text.splitlines():
        line = line.rstrip("\r\n")
        m = re.match(r"^\[\s*\d+\.\d+\] (.*)$", line)
        if not m:
            continue
        text = m.group(1)
        if text.startswith(PREFIXES) and not text.startswith("On node ") or re.match(r"On node \d+, zone \w+: \d+ pages in unavailable ranges", text) or re.match(r"CPU\d+: Booted secondary processor ", text):
            if text.startswith("Built ") and "zonelists" not in text:
                continue
            if skip_swiotlb and text.startswith("software IO TLB: "):
                continue
            out.append(text)
    return out


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
        for l in mm_lines(f.read()):
            print(l)
