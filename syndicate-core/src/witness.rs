//! A witness: cosigns a log's checkpoint only when it is consistent with
//! the last checkpoint it cosigned for the same origin, and remembers that
//! checkpoint durably. This is the C2SP `tlog-witness` idea run locally.
//!
//! A log that shows one history to one party and another history to
//! another (a fork), or that goes back to an earlier, shorter tree (a
//! rollback), cannot get both cosigned by the same witness: the witness
//! refuses, and its error holds both signed checkpoints as evidence.
//!
//! ```
//! use syndicate_core::checkpoint::{self, Checkpoint};
//! use syndicate_core::keys::SigningKey;
//! use syndicate_core::merkle;
//! use syndicate_core::witness::{ConsistencyProof, Witness, WitnessError};
//!
//! let log = SigningKey::generate("log.example")?;
//! let dir = tempfile::tempdir()?;
//! let witness = Witness::new(
//!     SigningKey::generate("witness.example")?,
//!     log.verifier().clone(),
//!     dir.path(),
//! );
//! let leaves: Vec<merkle::Hash> = (0u8..3).map(|i| merkle::leaf_hash(&[i])).collect();
//! let one = checkpoint::sign(&Checkpoint::new("o", 1, merkle::root(&leaves[..1])), &log)?;
//! let first = witness.cosign(&one, &ConsistencyProof::empty(0))?;
//! assert!(first.lines().count() > one.lines().count());
//! // Another tree of size 1: a fork, refused.
//! let other = merkle::root(&[merkle::leaf_hash(b"x")]);
//! let fork = checkpoint::sign(&Checkpoint::new("o", 1, other), &log)?;
//! assert!(matches!(
//!     witness.cosign(&fork, &ConsistencyProof::empty(1)),
//!     Err(WitnessError::Fork { .. })
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The state directory holds one file per origin, named by the lower-case
//! hex SHA-256 of the origin with the suffix `.checkpoint`, holding the
//! last cosigned note. It is replaced atomically (write a temporary file,
//! sync it, rename it over the old one, sync the directory), and every
//! cosigning holds an exclusive lock on `DIR/lock`, so two witness
//! processes sharing a directory never both cosign two checkpoints of one
//! size.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest as _, Sha256};

use crate::checkpoint::{self, CheckpointError, Trust};
use crate::keys::{SigningKey, VerifierKey};
use crate::merkle::{self, Hash};

/// A consistency proof with the old size it starts from; text form (the
/// header and hash lines of a C2SP `tlog-witness` add-checkpoint request):
///
/// ```text
/// old <size, decimal>\n
/// <hash, standard base64 of 32 bytes>\n   (one line per hash, RFC 9162 order)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The size of the older tree.
    pub old_size: u64,
    /// The proof's hashes (empty from size 0, or between equal sizes).
    pub hashes: Vec<Hash>,
}

/// A consistency proof's text is not in the format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("consistency proof line {line}: {reason}")]
pub struct ProofFormatError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl ConsistencyProof {
    /// A proof with no hashes: from size 0, or to the same size.
    pub fn empty(old_size: u64) -> Self {
        ConsistencyProof {
            old_size,
            hashes: Vec::new(),
        }
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        let mut s = format!("old {}\n", self.old_size);
        for h in &self.hashes {
            s.push_str(&BASE64.encode(h));
            s.push('\n');
        }
        s
    }

    /// Parses the text form.
    ///
    /// # Errors
    /// [`ProofFormatError`] naming the first bad line.
    pub fn parse(text: &str) -> Result<Self, ProofFormatError> {
        let bad = |line: usize, reason: &str| ProofFormatError {
            line,
            reason: reason.to_owned(),
        };
        let Some(text) = text.strip_suffix('\n') else {
            return Err(bad(1, "the proof must end with a newline"));
        };
        let mut lines = text.split('\n');
        let first = lines.next().unwrap_or_default();
        let size = first
            .strip_prefix("old ")
            .filter(|n| {
                !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit())
                    && (*n == "0" || !n.starts_with('0'))
            })
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| bad(1, "expected `old <size>` with a decimal size"))?;
        let mut hashes = Vec::new();
        for (i, line) in lines.enumerate() {
            let hash: Hash = BASE64
                .decode(line)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad(i + 2, "not standard base64 of 32 bytes"))?;
            hashes.push(hash);
        }
        Ok(ConsistencyProof {
            old_size: size,
            hashes,
        })
    }
}

/// Why a witness refused to cosign.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessError {
    /// The offered checkpoint does not verify with the log key.
    #[error("the offered checkpoint is refused: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The offered checkpoint is smaller than the one already cosigned.
    #[error(
        "refused: a rollback of {origin}: the offered checkpoint has size {offered_size}, smaller than size {held_size} this witness already cosigned"
    )]
    Rollback {
        /// The origin.
        origin: String,
        /// Size of the offered checkpoint.
        offered_size: u64,
        /// Size of the cosigned one.
        held_size: u64,
        /// The checkpoint this witness cosigned before (signed note).
        held: String,
        /// The checkpoint offered now (signed note).
        offered: String,
    },
    /// The offered checkpoint is not consistent with the one cosigned: the
    /// log shows two different histories.
    #[error(
        "refused: a fork of {origin}: the offered checkpoint of size {offered_size} is not consistent with size {held_size} this witness cosigned ({reason})"
    )]
    Fork {
        /// The origin.
        origin: String,
        /// Size of the offered checkpoint.
        offered_size: u64,
        /// Size of the cosigned one.
        held_size: u64,
        /// Why the two do not fit together.
        reason: String,
        /// The checkpoint this witness cosigned before (signed note).
        held: String,
        /// The checkpoint offered now (signed note).
        offered: String,
    },
    /// The proof starts at another size than the checkpoint the witness holds.
    #[error(
        "the proof starts at size {proof_old} but this witness last cosigned size {held_size} of {origin}; make the proof from the checkpoint of size {held_size}"
    )]
    ProofBase {
        /// The origin.
        origin: String,
        /// The proof's old size.
        proof_old: u64,
        /// The size the witness holds (0 when it holds none).
        held_size: u64,
    },
    /// The state directory cannot be read or written.
    #[error("witness state {path}: {source}")]
    State {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A state file does not hold a checkpoint signed by the log key.
    #[error(
        "witness state {path} is damaged or from another log key ({reason}); restore it from a backup, never delete it to get past this"
    )]
    StateCorrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A witness: its key, the log key it trusts, and its state directory.
#[derive(Debug)]
pub struct Witness {
    key: SigningKey,
    log: VerifierKey,
    dir: PathBuf,
}

impl Witness {
    /// A witness of the log signing with `log`, keeping state in `dir`
    /// (created on first use).
    pub fn new(key: SigningKey, log: VerifierKey, dir: impl Into<PathBuf>) -> Self {
        Witness {
            key,
            log,
            dir: dir.into(),
        }
    }

    /// The file holding the last checkpoint cosigned for `origin`.
    pub fn state_file(&self, origin: &str) -> PathBuf {
        let name = merkle::hex(&Sha256::digest(origin.as_bytes()));
        self.dir.join(format!("{name}.checkpoint"))
    }

    /// The last checkpoint cosigned for `origin`, as a signed note.
    ///
    /// # Errors
    /// [`WitnessError::State`] when the file cannot be read.
    pub fn latest(&self, origin: &str) -> Result<Option<String>, WitnessError> {
        let path = self.state_file(origin);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(WitnessError::State { path, source }),
        }
    }

    /// Cosigns `signed` (a checkpoint signed by the log key) when it is
    /// consistent with the last checkpoint cosigned for its origin: the
    /// same tree, or a larger one with `proof` a valid consistency proof
    /// from it. The first checkpoint of an origin is accepted with any
    /// proof from size 0 (trust on first use). Returns the note with the
    /// witness's cosignature added, and records it as the latest.
    ///
    /// # Errors
    /// [`WitnessError::Checkpoint`] when the log key did not sign it,
    /// [`WitnessError::Rollback`] for a smaller tree,
    /// [`WitnessError::Fork`] for a tree that does not extend the one held,
    /// [`WitnessError::ProofBase`] for a proof from another size, or a
    /// state error.
    pub fn cosign(&self, signed: &str, proof: &ConsistencyProof) -> Result<String, WitnessError> {
        let offered = checkpoint::open(signed, &Trust::log(self.log.clone()))?;
        let cp = offered.checkpoint();
        let origin = cp.origin.clone();
        let state = |path: &Path| {
            let path = path.to_owned();
            move |source| WitnessError::State { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(state(&self.dir))?;
        let lock_path = self.dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(state(&lock_path))?;
        lock.lock().map_err(state(&lock_path))?;

        let path = self.state_file(&origin);
        let held = match self.latest(&origin)? {
            None => None,
            Some(text) => {
                let held = checkpoint::open(&text, &Trust::log(self.log.clone())).map_err(|e| {
                    WitnessError::StateCorrupt {
                        path: path.clone(),
                        reason: e.to_string(),
                    }
                })?;
                if held.checkpoint().origin != origin {
                    return Err(WitnessError::StateCorrupt {
                        path,
                        reason: format!("it holds origin {:?}", held.checkpoint().origin),
                    });
                }
                Some((held.checkpoint().clone(), text))
            }
        };
        let held_size = held.as_ref().map_or(0, |(h, _)| h.size);
        if let Some((h, text)) = &held {
            let fork = |reason: String| WitnessError::Fork {
                origin: origin.clone(),
                offered_size: cp.size,
                held_size: h.size,
                reason,
                held: text.clone(),
                offered: signed.to_owned(),
            };
            if cp.size < h.size {
                return Err(WitnessError::Rollback {
                    origin: origin.clone(),
                    offered_size: cp.size,
                    held_size: h.size,
                    held: text.clone(),
                    offered: signed.to_owned(),
                });
            }
            if cp.size == h.size {
                if cp.root != h.root {
                    return Err(fork(format!("two different roots at size {}", cp.size)));
                }
                // The same tree again: cosigning is idempotent.
                return Ok(checkpoint::cosign(signed, &self.key)?);
            }
            if proof.old_size != h.size {
                return Err(WitnessError::ProofBase {
                    origin,
                    proof_old: proof.old_size,
                    held_size,
                });
            }
            if h.size > 0 {
                merkle::verify_consistency(h.size, cp.size, &h.root, &cp.root, &proof.hashes)
                    .map_err(|e| fork(format!("the consistency proof fails: {e}")))?;
            }
        } else if proof.old_size != 0 {
            return Err(WitnessError::ProofBase {
                origin,
                proof_old: proof.old_size,
                held_size: 0,
            });
        }
        let cosigned = checkpoint::cosign(signed, &self.key)?;
        write_durably(&self.dir, &path, cosigned.as_bytes())?;
        drop(lock);
        Ok(cosigned)
    }
}

/// Replaces `path` with `bytes`: temporary file, fsync, rename, fsync of
/// the directory.
fn write_durably(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), WitnessError> {
    let state = |p: &Path| {
        let p = p.to_owned();
        move |source| WitnessError::State { path: p, source }
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut file = File::create(&tmp).map_err(state(&tmp))?;
    file.write_all(bytes).map_err(state(&tmp))?;
    file.sync_all().map_err(state(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(state(path))?;
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(state(dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;

    fn key(name: &str, byte: u8) -> SigningKey {
        SigningKey::from_seed(name, &[byte; 32]).unwrap()
    }

    fn leaves(n: u8, salt: u8) -> Vec<Hash> {
        (0..n).map(|i| merkle::leaf_hash(&[salt, i])).collect()
    }

    fn proof_between(all: &[Hash], old: u64, new: u64) -> ConsistencyProof {
        let ranges = merkle::consistency_ranges(old, new).unwrap();
        let hashes = ranges
            .into_iter()
            .map(|r| merkle::root(&all[r.start as usize..r.end as usize]))
            .collect();
        ConsistencyProof {
            old_size: old,
            hashes,
        }
    }

    #[test]
    fn proof_text_round_trips_and_bad_lines_are_named() {
        let proof = ConsistencyProof {
            old_size: 3,
            hashes: vec![[1; 32], [2; 32]],
        };
        assert_eq!(ConsistencyProof::parse(&proof.to_text()).unwrap(), proof);
        assert_eq!(ConsistencyProof::parse("old 03\n").unwrap_err().line, 1);
        assert_eq!(
            ConsistencyProof::parse("old 3\nAAAA\n").unwrap_err().line,
            2
        );
    }

    #[test]
    fn witness_follows_a_growing_log_and_refuses_fork_and_rollback() {
        let log = key("log", 1);
        let dir = tempfile::tempdir().unwrap();
        let witness = Witness::new(key("w", 2), log.verifier().clone(), dir.path());
        let all = leaves(9, 0);
        let cp =
            |n: u64, root: Hash| checkpoint::sign(&Checkpoint::new("o", n, root), &log).unwrap();
        let at = |n: u64| cp(n, merkle::root(&all[..n as usize]));

        witness.cosign(&at(4), &ConsistencyProof::empty(0)).unwrap();
        witness.cosign(&at(9), &proof_between(&all, 4, 9)).unwrap();
        assert!(witness.latest("o").unwrap().unwrap().starts_with("o\n9\n"));

        let rollback = witness
            .cosign(&at(4), &ConsistencyProof::empty(4))
            .unwrap_err();
        assert!(
            matches!(
                rollback,
                WitnessError::Rollback {
                    held_size: 9,
                    offered_size: 4,
                    ..
                }
            ),
            "{rollback}"
        );

        // A different history of 12 leaves whose proof is made from it.
        let other = leaves(12, 1);
        let forked = cp(12, merkle::root(&other));
        let err = witness
            .cosign(&forked, &proof_between(&other, 9, 12))
            .unwrap_err();
        match &err {
            WitnessError::Fork { held, offered, .. } => {
                assert!(held.starts_with("o\n9\n"));
                assert_eq!(offered, &forked);
            }
            other => panic!("expected a fork, got {other}"),
        }
        let same_size = cp(9, merkle::root(&other[..9]));
        assert!(matches!(
            witness.cosign(&same_size, &ConsistencyProof::empty(9)),
            Err(WitnessError::Fork { .. })
        ));
        // State survives a new witness over the same directory.
        let again = Witness::new(key("w", 2), log.verifier().clone(), dir.path());
        assert!(matches!(
            again.cosign(&at(4), &ConsistencyProof::empty(4)),
            Err(WitnessError::Rollback { .. })
        ));
    }

    #[test]
    fn a_checkpoint_not_signed_by_the_log_is_not_cosigned() {
        let dir = tempfile::tempdir().unwrap();
        let witness = Witness::new(key("w", 2), key("log", 1).verifier().clone(), dir.path());
        let forged = checkpoint::sign(&Checkpoint::new("o", 1, [0; 32]), &key("log", 9)).unwrap();
        assert!(matches!(
            witness.cosign(&forged, &ConsistencyProof::empty(0)),
            Err(WitnessError::Checkpoint(_))
        ));
        assert!(witness.latest("o").unwrap().is_none());
    }
}
