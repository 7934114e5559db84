//! The RFC 6962 / RFC 9162 §2.1 Merkle tree over a chain's events.
//!
//! Leaf `i` of the tree is event `seq = i`; its leaf data is the event's
//! 32-byte hash. Leaf hash = `SHA-256(0x00 || data)`, interior node =
//! `SHA-256(0x01 || left || right)`, the empty tree's root = `SHA-256("")`.
//! A tree of `n > 1` leaves splits at the largest power of two below `n`.
//!
//! This module is pure computation: roots, the shape of inclusion and
//! consistency proofs, their verification, and a [`Frontier`] that appends
//! leaves in O(log n). Where interior hashes come from is the business of
//! [`crate::tree`].

use std::fmt;
use std::ops::Range;

use sha2::{Digest as _, Sha256};

/// A 32-byte tree hash.
pub type Hash = [u8; 32];

/// The root of the empty tree: `SHA-256("")`.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// A complete subtree: the `2^level` leaves starting at `index << level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves (0 = a leaf hash).
    pub level: u8,
    /// Position among the nodes of that level, from the left.
    pub index: u64,
}

impl NodeId {
    /// The node at `level` and `index`.
    pub const fn new(level: u8, index: u64) -> Self {
        NodeId { level, index }
    }

    /// The leaves it covers.
    pub fn leaves(&self) -> Range<u64> {
        let start = self.index << self.level;
        start..start + (1u64 << self.level)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node (level {}, index {})", self.level, self.index)
    }
}

/// The largest power of two strictly less than `n` (`n > 1`).
fn split(n: u64) -> u64 {
    debug_assert!(n > 1);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The complete subtrees whose hashes, folded from the right with
/// [`node_hash`], give the hash of leaves `range` (largest first).
///
/// `range.start` must be a multiple of the smallest power of two that is at
/// least `range.end - range.start`, as every range in an RFC 9162 proof is.
pub fn decompose(range: Range<u64>) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut start = range.start;
    let mut len = range.end.saturating_sub(range.start);
    while len > 0 {
        let level = 63 - len.leading_zeros();
        out.push(NodeId::new(level as u8, start >> level));
        start += 1u64 << level;
        len -= 1u64 << level;
    }
    out
}

/// Folds the hashes of a [`decompose`]d range into the range's hash.
///
/// `hashes` must not be empty.
pub fn fold(hashes: &[Hash]) -> Hash {
    let mut iter = hashes.iter().rev();
    let mut acc = *iter.next().unwrap_or(&EMPTY_ROOT);
    for h in iter {
        acc = node_hash(h, &acc);
    }
    acc
}

/// The root of a tree of these leaf hashes (RFC 9162 MTH, computed with a
/// [`Frontier`]).
pub fn root(leaf_hashes: &[Hash]) -> Hash {
    let mut f = Frontier::new();
    for l in leaf_hashes {
        f.push(*l);
    }
    f.root()
}

/// The leaf ranges whose hashes make the inclusion proof of `index` in a tree
/// of `size` leaves, in proof order (nearest the leaf first). Empty when
/// `size <= 1`; `None` when `index >= size`.
pub fn inclusion_ranges(index: u64, size: u64) -> Option<Vec<Range<u64>>> {
    if index >= size {
        return None;
    }
    let mut out = Vec::new();
    path(index, 0, size, &mut out);
    Some(out)
}

fn path(m: u64, offset: u64, n: u64, out: &mut Vec<Range<u64>>) {
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, offset, k, out);
        out.push(offset + k..offset + n);
    } else {
        path(m - k, offset + k, n - k, out);
        out.push(offset..offset + k);
    }
}

/// The leaf ranges whose hashes make the consistency proof from `old` to
/// `new` leaves, in proof order. Empty when `old == new`; `None` when
/// `old == 0` or `old > new` (no proof exists).
pub fn consistency_ranges(old: u64, new: u64) -> Option<Vec<Range<u64>>> {
    if old == 0 || old > new {
        return None;
    }
    let mut out = Vec::new();
    if old < new {
        subproof(old, 0, new, true, &mut out);
    }
    Some(out)
}

fn subproof(m: u64, offset: u64, n: u64, complete: bool, out: &mut Vec<Range<u64>>) {
    if m == n {
        if !complete {
            out.push(offset..offset + n);
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, offset, k, complete, out);
        out.push(offset + k..offset + n);
    } else {
        subproof(m - k, offset + k, n - k, false, out);
        out.push(offset..offset + k);
    }
}

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The index is not inside the tree, or the sizes cannot be related.
    #[error("no proof exists for {0}")]
    Impossible(String),
    /// The proof has the wrong number of hashes for these sizes.
    #[error("proof has {found} hashes, {expected} expected for these sizes")]
    WrongLength {
        /// Hashes the sizes call for.
        expected: usize,
        /// Hashes given.
        found: usize,
    },
    /// A hash is not 32 bytes.
    #[error("a hash is {0} bytes, 32 expected")]
    BadHash(usize),
    /// The proof leads to another root than the one given.
    #[error("proof leads to root {computed}, not {expected}")]
    RootMismatch {
        /// The root the proof computes (hex).
        computed: String,
        /// The root it was checked against (hex).
        expected: String,
    },
}

fn hash32(bytes: &[u8]) -> Result<Hash, ProofError> {
    bytes
        .try_into()
        .map_err(|_| ProofError::BadHash(bytes.len()))
}

fn mismatch(computed: &Hash, expected: &Hash) -> ProofError {
    ProofError::RootMismatch {
        computed: hex(computed),
        expected: hex(expected),
    }
}

/// Lower-case hex of a hash.
pub fn hex(h: &[u8]) -> String {
    use fmt::Write as _;
    h.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2). Hashes are raw byte
/// slices so that a wrong length is refused, never padded.
///
/// # Errors
/// [`ProofError`] saying why the proof does not hold.
pub fn verify_inclusion<P: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf: &[u8],
    proof: &[P],
    root: &[u8],
) -> Result<(), ProofError> {
    let leaf = hash32(leaf)?;
    let root = hash32(root)?;
    if index >= size {
        return Err(ProofError::Impossible(format!(
            "leaf {index} in a tree of {size}"
        )));
    }
    let computed = inclusion_root(index, size, leaf, proof)?;
    if computed != root {
        return Err(mismatch(&computed, &root));
    }
    Ok(())
}

/// The root an inclusion proof leads to, without comparing it.
///
/// # Errors
/// [`ProofError`] when the proof has the wrong shape.
pub fn inclusion_root<P: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf: Hash,
    proof: &[P],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::Impossible(format!(
            "leaf {index} in a tree of {size}"
        )));
    }
    let (inner, border) = decomp_inclusion(index, size);
    if proof.len() != inner + border {
        return Err(ProofError::WrongLength {
            expected: inner + border,
            found: proof.len(),
        });
    }
    let proof = proof
        .iter()
        .map(|p| hash32(p.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut h = leaf;
    for (i, p) in proof[..inner].iter().enumerate() {
        h = if (index >> i) & 1 == 0 {
            node_hash(&h, p)
        } else {
            node_hash(p, &h)
        };
    }
    for p in &proof[inner..] {
        h = node_hash(p, &h);
    }
    Ok(h)
}

/// (inner, border) proof lengths for a leaf, as in RFC 9162 / transparency-dev.
fn decomp_inclusion(index: u64, size: u64) -> (usize, usize) {
    let inner = (64 - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = (index >> inner).count_ones() as usize;
    (inner, border)
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2). A proof from size 0
/// never verifies; equal sizes need an empty proof and equal roots.
///
/// # Errors
/// [`ProofError`] saying why the proof does not hold.
pub fn verify_consistency<P: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    root1: &[u8],
    root2: &[u8],
    proof: &[P],
) -> Result<(), ProofError> {
    if size1 == 0 || size2 < size1 {
        return Err(ProofError::Impossible(format!(
            "consistency from size {size1} to size {size2}"
        )));
    }
    if size1 == size2 {
        // As transparency-dev: equal sizes need an empty proof and the very
        // same root bytes.
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                expected: 0,
                found: proof.len(),
            });
        }
        if root1 != root2 {
            return Err(ProofError::RootMismatch {
                computed: hex(root2),
                expected: hex(root1),
            });
        }
        return Ok(());
    }
    let root1 = hash32(root1)?;
    let root2 = hash32(root2)?;
    if proof.is_empty() {
        return Err(ProofError::WrongLength {
            expected: 1,
            found: 0,
        });
    }
    let proof = proof
        .iter()
        .map(|p| hash32(p.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let (inner, border) = decomp_inclusion(size1 - 1, size2);
    let shift = size1.trailing_zeros() as usize;
    let inner = inner - shift;
    // The proof starts with the hash of the old tree's right-most complete
    // subtree, unless the old tree is that subtree.
    let (seed, start) = if size1 == 1u64 << shift {
        (root1, 0)
    } else {
        (proof[0], 1)
    };
    if proof.len() != start + inner + border {
        return Err(ProofError::WrongLength {
            expected: start + inner + border,
            found: proof.len(),
        });
    }
    let proof = &proof[start..];
    let mask = (size1 - 1) >> shift;
    let mut h1 = seed;
    let mut h2 = seed;
    for (i, p) in proof[..inner].iter().enumerate() {
        if (mask >> i) & 1 == 1 {
            h1 = node_hash(p, &h1);
            h2 = node_hash(p, &h2);
        } else {
            h2 = node_hash(&h2, p);
        }
    }
    for p in &proof[inner..] {
        h1 = node_hash(p, &h1);
        h2 = node_hash(p, &h2);
    }
    if h1 != root1 {
        return Err(mismatch(&h1, &root1));
    }
    if h2 != root2 {
        return Err(mismatch(&h2, &root2));
    }
    Ok(())
}

/// The right edge of a growing tree: the hashes of the complete subtrees
/// that make up its leaves (one per set bit of the size, largest first).
/// Appending is O(log n) and the root is O(log n).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<(NodeId, Hash)>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Frontier::default()
    }

    /// Rebuilds the frontier of a tree of `size` leaves from the hashes of
    /// the nodes [`decompose`]`(0..size)` names, in that order.
    ///
    /// # Errors
    /// When the number of hashes does not match the size.
    pub fn from_nodes(size: u64, hashes: &[Hash]) -> Result<Self, ProofError> {
        let ids = decompose(0..size);
        if ids.len() != hashes.len() {
            return Err(ProofError::WrongLength {
                expected: ids.len(),
                found: hashes.len(),
            });
        }
        Ok(Frontier {
            size,
            nodes: ids.into_iter().zip(hashes.iter().copied()).collect(),
        })
    }

    /// Leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The complete subtrees of the right edge, largest first.
    pub fn nodes(&self) -> &[(NodeId, Hash)] {
        &self.nodes
    }

    /// Appends a leaf hash; returns the complete subtrees this append
    /// finished, the leaf itself first.
    pub fn push(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        let mut done = vec![(NodeId::new(0, self.size), leaf)];
        let mut id = NodeId::new(0, self.size);
        let mut h = leaf;
        while let Some(&(top, left)) = self.nodes.last() {
            if top.level != id.level {
                break;
            }
            self.nodes.pop();
            h = node_hash(&left, &h);
            id = NodeId::new(id.level + 1, id.index >> 1);
            done.push((id, h));
        }
        self.nodes.push((id, h));
        self.size += 1;
        done
    }

    /// The root of the tree so far.
    pub fn root(&self) -> Hash {
        if self.nodes.is_empty() {
            return EMPTY_ROOT;
        }
        let hashes: Vec<Hash> = self.nodes.iter().map(|(_, h)| *h).collect();
        fold(&hashes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(EMPTY_ROOT, <[u8; 32]>::from(Sha256::digest(b"")));
    }

    #[test]
    fn frontier_push_reports_completed_subtrees() {
        let mut f = Frontier::new();
        let l = |i: u8| leaf_hash(&[i]);
        assert_eq!(f.push(l(0)).len(), 1);
        let done = f.push(l(1));
        assert_eq!(done[1], (NodeId::new(1, 0), node_hash(&l(0), &l(1))));
        f.push(l(2));
        let done = f.push(l(3));
        assert_eq!(done.last().unwrap().0, NodeId::new(2, 0));
        assert_eq!(f.nodes().len(), 1);
    }
}
