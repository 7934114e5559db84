//! The Merkle tree of a stored chain: a node cache every store keeps, proofs
//! from it, and a [`VerifiedTree`] whose roots are the only ones ever signed.
//!
//! # Design
//! A store keeps the hashes of *complete* subtrees (`2^level` leaves starting
//! at `index << level`) as opaque 32-byte values through
//! [`EventStore::put_tree_nodes`] and [`EventStore::tree_nodes`]. Only this
//! module computes them; a backend stores and returns bytes. A node never
//! changes once written because the leaves it covers never change.
//!
//! - [`sync_nodes`] brings the cache up to the head: it reads only the
//!   events appended since the last sync, so appends never recompute the
//!   tree.
//! - [`inclusion_proof`] and [`consistency_proof`] need O(log² n) cached
//!   nodes, fetched in one call; no scan. A node missing from the cache (a
//!   store that keeps none) is computed from the events it covers.
//! - The cache is not trusted. A tampered node can only make a proof fail
//!   verification; a root that gets signed comes from a [`VerifiedTree`],
//!   which hashes events it has just verified link by link.

use crate::checkpoint::{self, Checkpoint, CheckpointError};
use crate::event::ChainId;
use crate::keys::SigningKey;
use crate::merkle::{self, Frontier, Hash, NodeId, ProofError, decompose, fold, leaf_hash};
use crate::store::{EventStore, StoreError};
use crate::verify::{VERIFY_PAGE, Verifier, Violation};

/// Why a tree operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain failed verification; no root is computed past a violation.
    #[error("chain failed verification, no root computed: {0}")]
    Broken(Violation),
    /// A size beyond the chain was asked for.
    #[error("the chain has {available} events, fewer than the {requested} asked for")]
    TooShort {
        /// The size asked for.
        requested: u64,
        /// Events in the chain.
        available: u64,
    },
    /// No proof exists for these sizes or this index.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The checkpoint could not be signed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// The leaf hash of an event: `SHA-256(0x00 || event hash)`.
pub fn event_leaf(event_hash: &crate::digest::Digest) -> Hash {
    leaf_hash(event_hash.as_bytes())
}

/// Events in the chain (head seq + 1, or 0).
async fn chain_len<S: EventStore + ?Sized>(store: &S) -> Result<u64, StoreError> {
    Ok(store.head().await?.map_or(0, |h| h.seq + 1))
}

/// Brings the store's node cache up to the head of its chain and returns
/// the number of leaves it now covers. Reads only events not yet covered
/// (plus O(log n) cached nodes to resume from).
///
/// # Errors
/// [`TreeError::Store`] when the store cannot be read or written.
pub async fn sync_nodes<S: EventStore + ?Sized>(store: &S) -> Result<u64, TreeError> {
    let mut frontier = resume_frontier(store).await?;
    loop {
        let events = store.read(frontier.size(), VERIFY_PAGE).await?;
        if events.is_empty() {
            return Ok(frontier.size());
        }
        let mut nodes = Vec::with_capacity(events.len() * 2);
        for event in &events {
            if event.seq != frontier.size() {
                return Err(StoreError::Corrupt {
                    store: "tree",
                    seq: event.seq,
                    reason: format!("expected seq {}", frontier.size()),
                }
                .into());
            }
            nodes.extend(frontier.push(event_leaf(&event.hash)));
        }
        store.put_tree_nodes(&nodes).await?;
    }
}

/// The frontier at the store's cached leaf count, or the empty frontier when
/// the cache is empty or incomplete.
async fn resume_frontier<S: EventStore + ?Sized>(store: &S) -> Result<Frontier, TreeError> {
    let count = store.tree_leaf_count().await?;
    if count == 0 {
        return Ok(Frontier::new());
    }
    let ids = decompose(0..count);
    let found = store.tree_nodes(&ids).await?;
    let hashes: Option<Vec<Hash>> = found.into_iter().collect();
    match hashes {
        Some(h) => Ok(Frontier::from_nodes(count, &h)?),
        None => Ok(Frontier::new()),
    }
}

/// The hashes of these leaf ranges (each an RFC 9162 proof range), from the
/// cache, computing any missing node from the events it covers.
async fn range_hashes<S: EventStore + ?Sized>(
    store: &S,
    ranges: &[std::ops::Range<u64>],
) -> Result<Vec<Hash>, TreeError> {
    let per_range: Vec<Vec<NodeId>> = ranges.iter().map(|r| decompose(r.clone())).collect();
    let ids: Vec<NodeId> = per_range.iter().flatten().copied().collect();
    let cached = store.tree_nodes(&ids).await?;
    let mut hashes = Vec::with_capacity(ids.len());
    for (id, cached) in ids.iter().zip(cached) {
        hashes.push(match cached {
            Some(h) => h,
            None => node_from_events(store, *id).await?,
        });
    }
    let mut out = Vec::with_capacity(ranges.len());
    let mut at = 0;
    for r in &per_range {
        out.push(fold(&hashes[at..at + r.len()]));
        at += r.len();
    }
    Ok(out)
}

/// A complete subtree's hash computed from its events (the slow path for a
/// store that keeps no nodes).
async fn node_from_events<S: EventStore + ?Sized>(
    store: &S,
    id: NodeId,
) -> Result<Hash, TreeError> {
    let leaves = id.leaves();
    let mut frontier = Frontier::new();
    let mut next = leaves.start;
    while next < leaves.end {
        let want = usize::try_from(leaves.end - next)
            .unwrap_or(usize::MAX)
            .min(VERIFY_PAGE);
        let events = store.read(next, want).await?;
        if events.is_empty() {
            return Err(TreeError::TooShort {
                requested: leaves.end,
                available: next,
            });
        }
        for e in &events {
            frontier.push(event_leaf(&e.hash));
        }
        next += events.len() as u64;
    }
    Ok(frontier.root())
}

/// The inclusion proof of leaf `index` in the tree of the first `size`
/// events, in RFC 9162 order. Syncs the cache first.
///
/// # Errors
/// [`TreeError::TooShort`] when the chain has fewer than `size` events,
/// [`TreeError::Proof`] when `index >= size`, or a store error.
pub async fn inclusion_proof<S: EventStore + ?Sized>(
    store: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, TreeError> {
    let available = sync_nodes(store).await?;
    if size > available {
        return Err(TreeError::TooShort {
            requested: size,
            available,
        });
    }
    let ranges = merkle::inclusion_ranges(index, size)
        .ok_or_else(|| ProofError::Impossible(format!("leaf {index} in a tree of {size}")))?;
    range_hashes(store, &ranges).await
}

/// The consistency proof from the tree of the first `old` events to the
/// tree of the first `new`, in RFC 9162 order. Syncs the cache first.
///
/// # Errors
/// [`TreeError::TooShort`] when the chain has fewer than `new` events,
/// [`TreeError::Proof`] when `old == 0` or `old > new`, or a store error.
pub async fn consistency_proof<S: EventStore + ?Sized>(
    store: &S,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, TreeError> {
    let available = sync_nodes(store).await?;
    if new > available {
        return Err(TreeError::TooShort {
            requested: new,
            available,
        });
    }
    let ranges = merkle::consistency_ranges(old, new).ok_or_else(|| {
        ProofError::Impossible(format!("consistency from size {old} to size {new}"))
    })?;
    range_hashes(store, &ranges).await
}

/// The root of the first `size` events from the (untrusted) cache. Use it
/// to compare, never to sign: sign [`VerifiedTree::root`].
///
/// # Errors
/// As [`inclusion_proof`].
pub async fn cached_root<S: EventStore + ?Sized>(store: &S, size: u64) -> Result<Hash, TreeError> {
    if size == 0 {
        return Ok(merkle::EMPTY_ROOT);
    }
    let available = sync_nodes(store).await?;
    if size > available {
        return Err(TreeError::TooShort {
            requested: size,
            available,
        });
    }
    let whole = 0..size;
    Ok(range_hashes(store, std::slice::from_ref(&whole)).await?[0])
}

/// A tree built only from events it verified: the frontier of the chain's
/// Merkle tree beside a streaming [`Verifier`]. Keep one alive to make each
/// new root cost O(new events + log n).
#[derive(Debug, Clone)]
pub struct VerifiedTree {
    verifier: Verifier,
    frontier: Frontier,
}

impl VerifiedTree {
    /// An empty tree for a chain, verified from genesis.
    pub fn new(chain: ChainId) -> Self {
        VerifiedTree {
            verifier: Verifier::new(chain),
            frontier: Frontier::new(),
        }
    }

    /// Leaves verified and hashed so far.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The root of the verified leaves.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// The checkpoint body of the verified leaves, with this origin.
    pub fn checkpoint(&self, origin: &str) -> Checkpoint {
        Checkpoint::new(origin, self.size(), self.root())
    }

    /// Signs the checkpoint of the verified leaves with the log key: the
    /// only way this crate signs a root, so a signed root always covers
    /// events verified link by link.
    ///
    /// # Errors
    /// [`TreeError::Checkpoint`] for an origin that cannot be a checkpoint
    /// line (empty, or holding a newline).
    pub fn sign(&self, origin: &str, log_key: &SigningKey) -> Result<String, TreeError> {
        Ok(checkpoint::sign(&self.checkpoint(origin), log_key)?)
    }

    /// Verifies one event, the next in seq order, and adds its leaf: for a
    /// caller that already reads the events (an export, say).
    ///
    /// # Errors
    /// [`TreeError::Broken`] when it fails verification (nothing is added).
    pub fn add(&mut self, event: &crate::event::Event) -> Result<(), TreeError> {
        self.verifier.check(event).map_err(TreeError::Broken)?;
        self.frontier.push(event_leaf(&event.hash));
        Ok(())
    }

    /// Verifies and adds the store's events after the ones seen so far, up
    /// to `limit` leaves in all (or to the head). Completed nodes the
    /// store's cache lacks are written to it on the way.
    ///
    /// # Errors
    /// [`TreeError::Broken`] at the first event that fails verification
    /// (the tree keeps what came before), or a store error.
    pub async fn catch_up<S: EventStore + ?Sized>(
        &mut self,
        store: &S,
        limit: Option<u64>,
    ) -> Result<u64, TreeError> {
        let cached = store.tree_leaf_count().await?;
        let end = limit.unwrap_or(u64::MAX);
        while self.size() < end {
            let want = usize::try_from(end - self.size())
                .unwrap_or(usize::MAX)
                .min(VERIFY_PAGE);
            let events = match store.read(self.size(), want).await {
                Ok(events) => events,
                Err(StoreError::Corrupt { seq, reason, .. }) => {
                    return Err(TreeError::Broken(Violation {
                        seq,
                        check: crate::verify::Check::Row,
                        expected: "a readable row".into(),
                        found: reason,
                    }));
                }
                Err(e) => return Err(e.into()),
            };
            if events.is_empty() {
                break;
            }
            let mut nodes = Vec::new();
            for event in &events {
                self.verifier.check(event).map_err(TreeError::Broken)?;
                let done = self.frontier.push(event_leaf(&event.hash));
                if event.seq >= cached {
                    nodes.extend(done);
                }
            }
            if !nodes.is_empty() {
                store.put_tree_nodes(&nodes).await?;
            }
        }
        Ok(self.size())
    }
}

/// Verifies a store's whole chain and signs a checkpoint of its head: the
/// body (origin, size, root) and the signed note. O(n); keep a
/// [`VerifiedTree`] to checkpoint repeatedly at O(new events) each.
///
/// # Errors
/// [`TreeError::Broken`] when the chain does not verify (nothing is
/// signed), [`TreeError::Checkpoint`] for a bad origin, or a store error.
pub async fn sign_head<S: EventStore + ?Sized>(
    store: &S,
    origin: &str,
    log_key: &SigningKey,
) -> Result<(Checkpoint, String), TreeError> {
    let mut tree = VerifiedTree::new(store.chain().clone());
    tree.catch_up(store, None).await?;
    let signed = tree.sign(origin, log_key)?;
    Ok((tree.checkpoint(origin), signed))
}

/// Why a chain does not match a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Mismatch {
    /// The chain is shorter than the checkpoint: cut short or rolled back.
    #[error(
        "chain has {found} events but a checkpoint covers {size}: it was cut short or rolled back"
    )]
    Shorter {
        /// The checkpoint's size.
        size: u64,
        /// Events in the chain.
        found: u64,
    },
    /// The first `size` events do not hash to the checkpoint's root.
    #[error(
        "root at size {size} is {found}, the checkpoint says {expected}: events inside the checkpointed prefix were rewritten"
    )]
    Root {
        /// The checkpoint's size.
        size: u64,
        /// The checkpoint's root (hex).
        expected: String,
        /// The chain's root at that size (hex).
        found: String,
    },
    /// The event at the checkpoint's last position does not hash to its
    /// stored hash, or is not a leaf of the checkpoint's tree.
    #[error("event {seq} is not the one the checkpoint covers: {reason}")]
    Event {
        /// Its seq.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Checks in O(log n) that a store's chain still extends a checkpointed
/// tree of `size` events with `root`: the chain has at least `size` events,
/// event `size - 1`'s stored hash is the hash of its bytes, and that hash is
/// leaf `size - 1` of the checkpoint's tree. Because each event's hash
/// covers its predecessor's, this pins the whole prefix for a chain whose
/// links verify (run the verifier too for the full guarantee).
///
/// For the gate: refuse to run when this returns an error.
///
/// # Errors
/// `Ok(Err(Mismatch))` when the chain was cut short or rewritten; `Err`
/// when the store cannot be read.
pub async fn check_against_checkpoint<S: EventStore + ?Sized>(
    store: &S,
    size: u64,
    root: &Hash,
) -> Result<Result<(), Mismatch>, TreeError> {
    let found = chain_len(store).await?;
    if found < size {
        return Ok(Err(Mismatch::Shorter { size, found }));
    }
    if size == 0 {
        return Ok(Ok(()));
    }
    let last = store.read(size - 1, 1).await?;
    let Some(event) = last.first().filter(|e| e.seq == size - 1) else {
        return Ok(Err(Mismatch::Shorter { size, found }));
    };
    let rehashed =
        crate::digest::Digest::of_canonical(crate::digest::tags::EVENT, &event.canonical);
    if rehashed != event.hash {
        return Ok(Err(Mismatch::Event {
            seq: event.seq,
            reason: "its stored hash is not the hash of its bytes".into(),
        }));
    }
    let proof = inclusion_proof(store, size - 1, size).await?;
    if merkle::verify_inclusion(size - 1, size, &event_leaf(&event.hash), &proof, root).is_err() {
        // The cache may be stale or tampered: recompute from the events.
        let mut tree = VerifiedTree::new(store.chain().clone());
        match tree.catch_up(store, Some(size)).await {
            Ok(_) if tree.root() == *root => return Ok(Ok(())),
            Ok(_) | Err(TreeError::Broken(_)) => {
                return Ok(Err(Mismatch::Root {
                    size,
                    expected: merkle::hex(root),
                    found: merkle::hex(&tree.root()),
                }));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Ok(()))
}
