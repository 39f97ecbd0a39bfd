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

ensure_python() {
    command -v python3 >/dev/null && return 0
    apt_install python3-minimal || { echo "scripts: python3 is required" >&2; return 1; }
}

ensure_rust() {
    if ! command -v cargo >/dev/null; then
        [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
    fi
    command -v cargo >/dev/null && return 0
    echo "scripts: cargo is required: install rustup (https://rustup.rs); rust-toolchain.toml picks the toolchain" >&2
    return 1
}

# The LLVM tools of the pinned toolchain (component llvm-tools).
llvm_tool() {
    local name=$1 sysroot host
    sysroot=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && rustc --print sysroot)
    host=$(rustc -vV | sed -n 's/^host: //p')
    echo "$sysroot/lib/rustlib/$host/bin/$name"
}
