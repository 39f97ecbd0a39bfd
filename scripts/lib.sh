# Shared helpers of the scripts (sourced, not run).

# size_to_mib 128M -> 128; 4G -> 4096; a bare number is MiB, as for QEMU's -m.
size_to_mib() {
    local s=$1 n unit
    [[ "$s" =~ ^([0-9]+)([KkMmGgTt]?)[Bb]?$ ]] || return 1
    n=${BASH_REMATCH[1]}; unit=${BASH_REMATCH[2]}
    case "$unit" in
        K|k) n=$((n / 1024)) ;;
        ""|M|m) ;;
        G|g) n=$((n * 1024)) ;;
        T|t) n=$((n * 1024 * 1024)) ;;
    esac
    [ "$n" -gt 0 ] || return 1
    echo "$n"
}

# apt_install PKG...: install Debian packages when root, else say what is missing.
apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "scripts: installing $* (apt-get)" >&2
        if [ -z "${ARM64MM_APT_UPDATED:-}" ]; then
            DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
            export ARM64MM_APT_UPDATED=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
    else
        echo "scripts: missing $*; install them (Debian: sudo apt-get install $*)" >&2
        return 1
    fi
}

ensure_qemu() {
    command -v qemu-system-aarch64 >/dev/null && return 0
    apt_install qemu-system-arm || { echo "scripts: QEMU (qemu-system-aarch64) is required" >&2; return 1; }
}

ensure_gdb() {
    command -v gdb-multiarch >/dev/null && return 0
    apt_install gdb-multiarch || { echo "scripts: gdb-multiarch is required" >&2; return 1; }
}

# rsvg-convert (librsvg2-bin): renders the memory picture to PNG in tests/memmap.py.
ensure_rsvg() {
    command -v rsvg-convert >/dev/null && return 0
    apt_install librsvg2-bin || { echo "scripts: rsvg-convert (librsvg2-bin) is required" >&2; return 1; }
}

ensure_python() {
    command -v python3 >/dev/null && return 0
    apt_install python3-minimal || { echo "scripts: python3 is required" >&2; return 1; }
}

# toolchain_list KEY: the quoted names of `KEY = [...]` in rust-toolchain.toml, one a line.
toolchain_list() {
    local toml
    toml="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/rust-toolchain.toml"
    sed -n "s/^$1 *= *\[\(.*\)\]/\1/p" "$toml" | tr ',' '\n' | tr -d ' "' | sed '/^$/d'
}

# ensure_rust: cargo on PATH, and the toolchain rust-toolchain.toml pins installed with
# its targets (aarch64-unknown-none) and components (llvm-tools, rust-src, clippy,
# rustfmt). The check is cheap (two `rustup ... list --installed`); when something is
# missing it says what and runs `rustup toolchain install`, which with no arguments
# installs exactly what rust-toolchain.toml names.
ensure_rust() {
    local root missing=() t c installed_t installed_c
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    if ! command -v cargo >/dev/null || ! command -v rustup >/dev/null; then
        [ -x "$HOME/.cargo/bin/rustup" ] && export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! command -v rustup >/dev/null; then
        if command -v cargo >/dev/null; then
            echo "scripts: rustup not found: cannot check that the toolchain has the target and components rust-toolchain.toml names ($(toolchain_list targets | tr '\n' ' ')$(toolchain_list components | tr '\n' ' ' | sed 's/ $//')); going on with $(command -v cargo)" >&2
            return 0
        fi
        echo "scripts: Rust is not installed: install rustup (https://rustup.rs: curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh), then run this again; rust-toolchain.toml picks the toolchain, target and components" >&2
        return 1
    fi
    if installed_t=$(cd "$root" && RUSTUP_AUTO_INSTALL=0 rustup target list --installed 2>/dev/null) &&
        installed_c=$(cd "$root" && RUSTUP_AUTO_INSTALL=0 rustup component list --installed 2>/dev/null); then
        for t in $(toolchain_list targets); do
            grep -qx -- "$t" <<<"$installed_t" || missing+=("target $t")
        done
        for c in $(toolchain_list components); do
            grep -qE -- "^$c(-preview)?(-[a-z0-9_]+-[a-z0-9_]+-[a-z0-9_-]+)?\$" <<<"$installed_c" || missing+=("component $c")
        done
    else
        missing+=("toolchain $(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$root/rust-toolchain.toml")")
    fi
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "scripts: the pinned Rust toolchain (rust-toolchain.toml) lacks: $(printf '%s, ' "${missing[@]}" | sed 's/, $//')" >&2
    echo "scripts: installing them: rustup toolchain install (in $root)" >&2
    if ! (cd "$root" && rustup toolchain install >&2); then
        echo "scripts: 'rustup toolchain install' failed; run it by hand in $root" >&2
        return 1
    fi
}

# The LLVM tools of the pinned toolchain (component llvm-tools).
llvm_tool() {
    local name=$1 sysroot host
    sysroot=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && rustc --print sysroot)
    host=$(rustc -vV | sed -n 's/^host: //p')
    echo "$sysroot/lib/rustlib/$host/bin/$name"
}
