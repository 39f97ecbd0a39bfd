//! The trees under `vmap_area_root`, `free_vmap_area_root` and `purge_vmap_area_root`: an
//! intrusive, augmented, balanced binary search tree of [`VmapArea`] nodes sorted by address,
//! paired — as in Linux — with an address-sorted doubly linked list through the same nodes
//! (Linux's `va->list`), which gives O(1) access to a node's neighbours for coalescing.
//!
//! ## Why AVL and not red-black
//! Linux uses an augmented red-black tree (`RB_DECLARE_CALLBACKS_MAX`). This is an augmented
//! AVL tree instead: the same O(log n) lookups, insertions and deletions, a tighter height
//! bound (1.44 log2 n against 2 log2 n), and a much shorter deletion — after any structural
//! change the path to the root is walked once, rebalancing and recomputing `height` and
//! `subtree_max_size` on the way, so the augmentation cannot go stale through a rotation.
//! Everything Linux does *on top of* the tree is kept: `find_va_links()`,
//! `get_va_next_sibling()`, `__link_va()`/`__unlink_va()`, `augment_tree_propagate_from()`
//! with its early stop, and `find_vmap_lowest_match()` with its roll-back through the parents.
//!
//! ## The augmentation
//! In the free tree every node keeps `subtree_max_size = max(va_size(node),
//! subtree_max_size(left), subtree_max_size(right))`, the largest free block below it, so the
//! search for the lowest-addressed block that fits skips whole subtrees (Linux's "4--8"
//! picture in `augment_tree_propagate_from()`). The busy and purge trees are not augmented.
//!
//! ## Ownership and safety
//! The tree owns the link fields (`parent`, `left`, `right`, `height`, `prev`, `next`, and in
//! an augmented tree `subtree_max_size`) of the nodes linked into it. Every pointer reachable
//! from a `VaTree` points to a live node that is linked into exactly that tree; the owner
//! ([`super::VmapAreas`]) reaches a tree only through `&mut self`/`&self`, so no other
//! reference to a linked node exists while these functions run. The private accessors below
//! rely on that invariant; they are the only places that dereference node pointers.

use core::cell::Cell;
use core::ptr::NonNull;

use super::VmapArea;

pub(super) type P = NonNull<VmapArea>;
pub(super) type Link = Option<P>;

/// Which side of its parent a new node is linked on (Linux: the `rb_node **link`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Dir {
    Left,
    Right,
}

/// Where `find_va_links()` says a node goes: under `parent` on side `dir`, or at the root of
/// an empty tree (`parent == None`).
#[derive(Clone, Copy, Debug)]
pub(super) struct VaLink {
    pub parent: Link,
    pub dir: Dir,
}

// The node accessors. SAFETY (for all of them): `p` is reachable from a `VaTree` or is a node
// the owner is about to link or has just unlinked, so it points to a live `VmapArea` no other
// reference aliases (module doc); each access is a short read or write of one field.
#[inline]
fn rd(p: P) -> &'static VmapArea {
    // SAFETY: see the comment above; the reference is used for one field read and dropped.
    unsafe { &*p.as_ptr() }
}
#[inline]
fn wr(p: P) -> &'static mut VmapArea {
    // SAFETY: see the comment above; the reference is used for one field write and dropped.
    unsafe { &mut *p.as_ptr() }
}

#[inline]
fn height(l: Link) -> u32 {
    l.map_or(0, |p| rd(p).height)
}

/// Linux: get_subtree_max_size().
#[inline]
fn get_subtree_max_size(l: Link) -> u64 {
    l.map_or(0, |p| rd(p).subtree_max_size)
}

/// Linux: va_size().
#[inline]
pub(super) fn va_size(p: P) -> u64 {
    let va = rd(p);
    va.va_end - va.va_start
}

/// Linux: compute_subtree_max_size().
#[inline]
fn compute_subtree_max_size(p: P) -> u64 {
    let va = rd(p);
    va_size(p)
        .max(get_subtree_max_size(va.left))
        .max(get_subtree_max_size(va.right))
}

/// Linux: is_within_this_va() — can `size` bytes aligned to `align`, at or above `vstart`,
/// be carved from `va`? The address arithmetic wraps on purpose and is checked, as Linux's.
#[inline]
pub(super) fn is_within_this_va(p: P, size: u64, align: u64, vstart: u64) -> bool {
    let va = rd(p);
    let base = if va.va_start > vstart {
        va.va_start
    } else {
        vstart
    };
    let nva_start_addr = base.wrapping_add(align - 1) & !(align - 1);
    // Can be overflowed due to big size or alignment.
    if nva_start_addr.wrapping_add(size) < nva_start_addr || nva_start_addr < vstart {
        return false;
    }
    nva_start_addr + size <= va.va_end
}

/// One root with its address-sorted list (Linux: an `rb_root` plus a `list_head`).
pub(super) struct VaTree {
    root: Link,
    /// First and last node of the address-sorted list (Linux: the `list_head`).
    head: Link,
    tail: Link,
    nr: usize,
    /// Keep `subtree_max_size` (the free tree) or not (busy and purge trees).
    augment: bool,
    /// Nodes visited by lookups and link searches: the complexity test reads it.
    steps: Cell<u64>,
}

impl VaTree {
    pub const fn new(augment: bool) -> Self {
        Self {
            root: None,
            head: None,
            tail: None,
            nr: 0,
            augment,
            steps: Cell::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.nr
    }

    pub fn is_empty(&self) -> bool {
        self.nr == 0
    }

    pub fn first(&self) -> Link {
        self.head
    }

    pub fn last(&self) -> Link {
        self.tail
    }

    pub fn steps(&self) -> u64 {
        self.steps.get()
    }

    #[inline]
    fn step(&self) {
        self.steps.set(self.steps.get() + 1);
    }

    /// The next node in address order (Linux: `list_next_entry()`).
    pub fn next(p: P) -> Link {
        rd(p).next
    }

    /// The previous node in address order (Linux: `list_prev_entry()`).
    pub fn prev(p: P) -> Link {
        rd(p).prev
    }

    /// Walks the address-sorted list.
    pub fn iter(&self) -> impl Iterator<Item = P> + '_ {
        core::iter::successors(self.head, |&p| rd(p).next)
    }

    /// The largest free block in the tree (the root's `subtree_max_size`).
    pub fn max_size(&self) -> u64 {
        get_subtree_max_size(self.root)
    }

    /// Linux: __find_vmap_area() — the node whose `[va_start, va_end)` holds `addr`.
    pub fn find(&self, addr: u64) -> Link {
        let mut n = self.root;
        while let Some(p) = n {
            self.step();
            let va = rd(p);
            if addr < va.va_start {
                n = va.left;
            } else if addr >= va.va_end {
                n = va.right;
            } else {
                return Some(p);
            }
        }
        None
    }

    /// Linux: find_va_links() — where a node for `[start, end)` would be linked, or the node
    /// it overlaps (Linux WARNs "vmalloc bug: ... overlaps with ..." and refuses).
    pub fn find_va_links(&self, start: u64, end: u64) -> Result<VaLink, P> {
        let mut link = VaLink {
            parent: None,
            dir: Dir::Left,
        };
        let mut n = self.root;
        while let Some(p) = n {
            self.step();
            let tmp = rd(p);
            link.parent = Some(p);
            if end <= tmp.va_start {
                link.dir = Dir::Left;
                n = tmp.left;
            } else if start >= tmp.va_end {
                link.dir = Dir::Right;
                n = tmp.right;
            } else {
                return Err(p);
            }
        }
        Ok(link)
    }

    /// Linux: get_va_next_sibling() — the node that will follow one linked at `link`, or
    /// `None` at the end of the list (and in an empty tree, where Linux returns NULL too).
    pub fn next_sibling(&self, link: &VaLink) -> Link {
        let parent = link.parent?;
        match link.dir {
            Dir::Right => rd(parent).next,
            Dir::Left => Some(parent),
        }
    }

    /// Linux: __link_va() — link `va` at `link` into the tree and the sorted list, then
    /// rebalance (and, in the free tree, recompute `subtree_max_size`) up to the root.
    pub fn link_va(&mut self, va: P, link: VaLink) {
        let smax = if self.augment { va_size(va) } else { 0 };
        {
            let n = wr(va);
            n.parent = link.parent;
            n.left = None;
            n.right = None;
            n.height = 1;
            n.subtree_max_size = smax;
        }
        let (prev, next) = match link.parent {
            None => {
                debug_assert!(self.root.is_none());
                self.root = Some(va);
                (None, None)
            }
            Some(p) => match link.dir {
                Dir::Left => {
                    debug_assert!(rd(p).left.is_none());
                    wr(p).left = Some(va);
                    (rd(p).prev, Some(p))
                }
                Dir::Right => {
                    debug_assert!(rd(p).right.is_none());
                    wr(p).right = Some(va);
                    (Some(p), rd(p).next)
                }
            },
        };
        // Address-sort the list.
        wr(va).prev = prev;
        wr(va).next = next;
        match prev {
            Some(x) => wr(x).next = Some(va),
            None => self.head = Some(va),
        }
        match next {
            Some(x) => wr(x).prev = Some(va),
            None => self.tail = Some(va),
        }
        self.nr += 1;
        self.retrace(link.parent);
    }

    /// Linux: insert_vmap_area() / insert_vmap_area_augment(): `Err(other)` on overlap.
    pub fn insert(&mut self, va: P) -> Result<(), P> {
        let (s, e) = (rd(va).va_start, rd(va).va_end);
        let link = self.find_va_links(s, e)?;
        self.link_va(va, link);
        Ok(())
    }

    /// Linux: __unlink_va() — take `va` out of the tree and the list; its links are cleared.
    pub fn unlink_va(&mut self, z: P) {
        let zn = rd(z);
        let (zp, zl, zr) = (zn.parent, zn.left, zn.right);
        let start = match (zl, zr) {
            (Some(l), Some(r)) => {
                // Two children: the in-order successor `y` (leftmost of the right subtree)
                // takes z's place.
                let mut y = r;
                while let Some(l2) = rd(y).left {
                    y = l2;
                }
                let start = if y == r {
                    Some(y)
                } else {
                    let yp = rd(y).parent.expect("successor below z has a parent");
                    let x = rd(y).right;
                    wr(yp).left = x;
                    if let Some(x) = x {
                        wr(x).parent = Some(yp);
                    }
                    wr(y).right = Some(r);
                    wr(r).parent = Some(y);
                    Some(yp)
                };
                wr(y).left = Some(l);
                wr(l).parent = Some(y);
                wr(y).parent = zp;
                self.replace_child(zp, z, Some(y));
                start
            }
            (c, None) | (None, c) => {
                if let Some(c) = c {
                    wr(c).parent = zp;
                }
                self.replace_child(zp, z, c);
                zp
            }
        };
        self.retrace(start);

        let (prev, next) = (rd(z).prev, rd(z).next);
        match prev {
            Some(x) => wr(x).next = next,
            None => self.head = next,
        }
        match next {
            Some(x) => wr(x).prev = prev,
            None => self.tail = prev,
        }
        let n = wr(z);
        n.parent = None;
        n.left = None;
        n.right = None;
        n.prev = None;
        n.next = None;
        n.height = 0;
        self.nr -= 1;
    }

    /// Linux: augment_tree_propagate_from() — after `va` changed size, recompute
    /// `subtree_max_size` from it towards the root, stopping where nothing changes.
    pub fn augment_tree_propagate_from(&mut self, va: P) {
        if !self.augment {
            return;
        }
        let mut cur = Some(va);
        while let Some(p) = cur {
            let computed = compute_subtree_max_size(p);
            if rd(p).subtree_max_size == computed {
                break;
            }
            wr(p).subtree_max_size = computed;
            cur = rd(p).parent;
        }
    }

    /// Linux: find_vmap_lowest_match() — the lowest-addressed node that can hold `size`
    /// bytes aligned to `align` at or above `vstart`. With `adjust_search_size` subtrees are
    /// searched only if they hold a block of `size + align - 1` (the worst-case alignment
    /// overhead), as Linux does for alignments above a page.
    pub fn find_vmap_lowest_match(
        &self,
        size: u64,
        align: u64,
        mut vstart: u64,
        adjust_search_size: bool,
    ) -> Link {
        // Adjust the search size for alignment overhead.
        let length = if adjust_search_size {
            size.saturating_add(align - 1)
        } else {
            size
        };
        let mut node = self.root;
        while let Some(p) = node {
            self.step();
            let va = rd(p);
            if get_subtree_max_size(va.left) >= length && vstart < va.va_start {
                node = va.left;
                continue;
            }
            if is_within_this_va(p, size, align, vstart) {
                return Some(p);
            }
            // No point going right unless that subtree has a big enough block.
            if get_subtree_max_size(va.right) >= length {
                node = va.right;
                continue;
            }
            // Roll back to the first right subtree that may satisfy the search: the
            // "vstart" restriction or an alignment overhead above a page can make a
            // subtree that looked big enough useless.
            node = None;
            let mut cur = p;
            while let Some(up) = rd(cur).parent {
                self.step();
                cur = up;
                let va = rd(up);
                if is_within_this_va(up, size, align, vstart) {
                    return Some(up);
                }
                if get_subtree_max_size(va.right) >= length && vstart <= va.va_start {
                    // Shift vstart past this node so the subtree already searched is not
                    // entered again.
                    vstart = va.va_start + 1;
                    node = va.right;
                    break;
                }
            }
        }
        None
    }

    fn replace_child(&mut self, parent: Link, old: P, new: Link) {
        match parent {
            None => self.root = new,
            Some(p) => {
                if rd(p).left == Some(old) {
                    wr(p).left = new;
                } else {
                    debug_assert!(rd(p).right == Some(old));
                    wr(p).right = new;
                }
            }
        }
    }

    /// Recompute a node's height and, in the free tree, its augmented value from its
    /// children (Linux: the augment callbacks' `compute`).
    fn update(&self, p: P) {
        let (l, r) = (rd(p).left, rd(p).right);
        let h = 1 + height(l).max(height(r));
        let smax = if self.augment {
            compute_subtree_max_size(p)
        } else {
            0
        };
        let n = wr(p);
        n.height = h;
        n.subtree_max_size = smax;
    }

    fn rotate_left(&mut self, x: P) -> P {
        let y = rd(x).right.expect("rotate_left needs a right child");
        let b = rd(y).left;
        wr(x).right = b;
        if let Some(b) = b {
            wr(b).parent = Some(x);
        }
        let p = rd(x).parent;
        wr(y).parent = p;
        self.replace_child(p, x, Some(y));
        wr(y).left = Some(x);
        wr(x).parent = Some(y);
        self.update(x);
        self.update(y);
        y
    }

    fn rotate_right(&mut self, x: P) -> P {
        let y = rd(x).left.expect("rotate_right needs a left child");
        let b = rd(y).right;
        wr(x).left = b;
        if let Some(b) = b {
            wr(b).parent = Some(x);
        }
        let p = rd(x).parent;
        wr(y).parent = p;
        self.replace_child(p, x, Some(y));
        wr(y).right = Some(x);
        wr(x).parent = Some(y);
        self.update(x);
        self.update(y);
        y
    }

    /// Restore the AVL balance at `x`; returns the root of the (possibly rotated) subtree.
    fn rebalance(&mut self, x: P) -> P {
        let (l, r) = (rd(x).left, rd(x).right);
        let (hl, hr) = (height(l), height(r));
        if hl > hr + 1 {
            let l = l.expect("taller side exists");
            if height(rd(l).left) < height(rd(l).right) {
                self.rotate_left(l);
            }
            self.rotate_right(x)
        } else if hr > hl + 1 {
            let r = r.expect("taller side exists");
            if height(rd(r).right) < height(rd(r).left) {
                self.rotate_right(r);
            }
            self.rotate_left(x)
        } else {
            self.update(x);
            x
        }
    }

    /// Walk from `from` to the root, rebalancing and updating every node on the way.
    fn retrace(&mut self, from: Link) {
        let mut cur = from;
        while let Some(x) = cur {
            let top = self.rebalance(x);
            cur = rd(top).parent;
        }
    }

    /// The invariant checker: parent links, AVL heights and balance, address order without
    /// overlap, `subtree_max_size` (augmented trees), and the list equal to the in-order
    /// walk. Returns the number of nodes.
    pub fn check(&self) -> Result<usize, &'static str> {
        if let Some(r) = self.root {
            if rd(r).parent.is_some() {
                return Err("root has a parent");
            }
        }
        let mut count = 0usize;
        let mut expect_next = self.head;
        let mut prev: Link = None;
        // Iterative in-order walk using parent links (no allocation).
        let mut cur = self.root;
        while let Some(l) = cur.and_then(|c| rd(c).left) {
            cur = Some(l);
        }
        while let Some(p) = cur {
            count += 1;
            if count > self.nr {
                return Err("more nodes in the tree than counted");
            }
            let va = rd(p);
            if va.va_start >= va.va_end {
                return Err("empty or inverted area");
            }
            if expect_next != Some(p) {
                return Err("list order differs from tree order");
            }
            if va.prev != prev {
                return Err("list prev link wrong");
            }
            if let Some(q) = prev {
                if rd(q).va_end > va.va_start {
                    return Err("areas overlap or are out of order");
                }
            }
            for c in [va.left, va.right].into_iter().flatten() {
                if rd(c).parent != Some(p) {
                    return Err("child's parent link wrong");
                }
            }
            let (hl, hr) = (height(va.left), height(va.right));
            if va.height != 1 + hl.max(hr) {
                return Err("stale height");
            }
            if hl.abs_diff(hr) > 1 {
                return Err("tree out of balance");
            }
            if self.augment && va.subtree_max_size != compute_subtree_max_size(p) {
                return Err("subtree_max_size wrong");
            }
            expect_next = va.next;
            prev = Some(p);
            // In-order successor.
            cur = if let Some(mut r) = va.right {
                while let Some(l) = rd(r).left {
                    r = l;
                }
                Some(r)
            } else {
                let mut c = p;
                let mut up = rd(c).parent;
                while let Some(u) = up {
                    if rd(u).left == Some(c) {
                        break;
                    }
                    c = u;
                    up = rd(u).parent;
                }
                up
            };
        }
        if expect_next.is_some() {
            return Err("list longer than the tree");
        }
        if self.tail != prev {
            return Err("list tail wrong");
        }
        if count != self.nr {
            return Err("node count wrong");
        }
        // AVL height bound: h < 1.45 log2(n + 2) (integer form, rounded up).
        let h = height(self.root) as u64;
        let bound = (145 * (u64::from((count as u64 + 2).ilog2()) + 1)).div_ceil(100) + 1;
        if h > bound {
            return Err("tree too tall");
        }
        Ok(count)
    }
}
