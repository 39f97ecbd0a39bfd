//! The kernel image's section boundaries, as the linker script (`linker.ld`) defines them
//! (Linux: include/asm-generic/sections.h and arch/arm64/include/asm/sections.h).
//!
//! Every linker symbol the kernel reads is declared here, once; the rest of the kernel asks
//! for addresses through the safe accessors below, named as the symbols are (`_text()`,
//! `__init_begin()`, ...). A symbol's address is all there is to it: none of them is an
//! object the kernel reads through its declared type.

/// Declares the linker symbols and one accessor per symbol returning its address.
macro_rules! linker_symbols {
    ($($(#[$m:meta])* $name:ident;)*) => {
        mod sym {
            extern "C" {
                $(pub static $name: u8;)*
            }
        }
        $(
            $(#[$m])*
            #[inline(always)]
            pub fn $name() -> u64 {
                (&raw const sym::$name) as u64
            }
        )*
    };
}

linker_symbols! {
    /// Start of the image (the Image header): KIMAGE_VADDR.
    _text;
    /// Start of the text segment, after the header.
    _stext;
    /// The identity-mapped text (head.S's MMU switch, idmap_cpu_replace_ttbr1).
    __idmap_text_start;
    __idmap_text_end;
    /// End of the text segment (SEGMENT_ALIGN aligned).
    _etext;
    /// The read-only data segment.
    __start_rodata;
    __end_rodata;
    /// The exception table (`__ex_table` entries of the probes and semihosting).
    __ex_table_start;
    __ex_table_end;
    /// The kallsyms table scripts/mkimage writes after linking.
    __kallsyms_start;
    __kallsyms_end;
    /// Linux: swapper_pg_dir — the kernel's PGD, in rodata.
    swapper_pg_dir;
    /// The init segment: text, then data (which holds the parameter table and the
    /// static per-CPU image), freed by free_initmem.
    __init_begin;
    __init_end;
    /// Linux: _sinittext / _einittext.
    __inittext_begin;
    __inittext_end;
    __initdata_begin;
    __initdata_end;
    /// The `early_param!`/`setup_param!` table.
    __setup_start;
    __setup_end;
    /// The static per-CPU image (Linux: __per_cpu_start / __per_cpu_end).
    __per_cpu_start;
    __per_cpu_end;
    /// Linux: init_idmap_pg_dir — the identity map head.S turns the MMU on with.
    init_idmap_pg_dir;
    /// The data segment.
    _data;
    _sdata;
    _edata;
    __bss_start;
    __bss_stop;
    /// Linux: init_pg_dir — head.S's kernel mapping, freed by paging_init.
    init_pg_dir;
    init_pg_end;
    /// The boot stack `[init_stack, init_stack_top)`, with an unmapped guard page below.
    init_stack_guard;
    init_stack;
    init_stack_top;
    /// End of the image (SEGMENT_ALIGN aligned).
    _end;
}

/// `[_text, _end)` as virtual addresses.
pub fn kernel_image_range() -> (u64, u64) {
    (_text(), _end())
}

/// Is `va` inside the kernel image `[_text, _end)`?
pub fn is_kernel_image(va: u64) -> bool {
    (_text().._end()).contains(&va)
}

/// The bytes `[start, end)` of a section the linker script places in the image.
///
/// # Safety
/// `[start, end)` must be the bounds of a section that stays mapped and unwritten for as
/// long as the returned slice is used.
pub unsafe fn section_bytes(start: u64, end: u64) -> &'static [u8] {
    // SAFETY: guaranteed by the caller.
    unsafe { core::slice::from_raw_parts(start as *const u8, (end - start) as usize) }
}

/// The static per-CPU image `[__per_cpu_start, __per_cpu_end)` (Linux: the per-cpu section).
pub fn percpu_static_image() -> &'static [u8] {
    // SAFETY: the linker script places the per-CPU image between the two symbols, in the
    // init data segment, mapped until free_initmem (after setup_per_cpu_areas copied it).
    unsafe { section_bytes(__per_cpu_start(), __per_cpu_end()) }
}
