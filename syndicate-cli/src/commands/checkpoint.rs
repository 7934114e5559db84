//! Signed checkpoints from the command line: `audit checkpoint`, the
//! `--checkpoint` check of `audit verify`, `audit prove consistency`,
//! `witness`, `audit receipt` and `audit verify-receipt`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::{Args, Subcommand};
use serde_json::Value;
use syndicate_core::checkpoint::{self, Checkpoint, Trust};
use syndicate_core::merkle::{self, Frontier};
use syndicate_core::tree::{self, Mismatch, TreeError};
use syndicate_core::witness::{ConsistencyProof, Witness, WitnessError};
use syndicate_core::{ActorKind, ChainId, Event, EventKind, SignedDecision, VerifierKey, receipt};

use crate::exit::{CommandResult, Failure};
use crate::store_url::{Access, StoreUrl, open};

/// `syndicate audit checkpoint`.
#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// The store, e.g. `sqlite:audit.db`.
    #[arg(long, value_name = "URL")]
    pub store: String,
    /// The chain; needed only when the store holds several.
    #[arg(long)]
    pub chain: Option<String>,
    /// The log's private key file (`syndicate key new`), or `-` for stdin.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The checkpoint's origin line (default `syndicate/<chain>`); give a
    /// published log a globally unique one such as `audit.example.com/prod`.
    #[arg(long)]
    pub origin: Option<String>,
    /// Write the signed checkpoint here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// The keys `--checkpoint` is checked with (shared by `audit verify` and
/// `audit verify-receipt`).
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// The log's verifier key (`name+keyid+base64`), or a file holding it.
    #[arg(long, value_name = "KEY")]
    pub log_key: Option<String>,
    /// A witness's verifier key, or a file of them, one per line; repeat
    /// for several.
    #[arg(long, value_name = "KEY")]
    pub witness_key: Vec<String>,
    /// How many of the witnesses must have cosigned the checkpoint.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub witnesses_required: usize,
}

/// `syndicate audit prove ...`.
#[derive(Debug, Subcommand)]
pub enum ProveCommand {
    /// Print the consistency proof from one checkpoint's tree to a later
    /// one's (the input of `syndicate witness`).
    Consistency(ConsistencyArgs),
}

/// `syndicate audit prove consistency`.
#[derive(Debug, Args)]
pub struct ConsistencyArgs {
    /// The store, e.g. `sqlite:audit.db`.
    #[arg(long, value_name = "URL")]
    pub store: String,
    /// The chain; needed only when the store holds several.
    #[arg(long)]
    pub chain: Option<String>,
    /// The older signed checkpoint.
    #[arg(long, value_name = "CP_OLD")]
    pub from: PathBuf,
    /// The newer signed checkpoint.
    #[arg(long, value_name = "CP_NEW")]
    pub to: PathBuf,
    /// Write the proof here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `syndicate witness`.
#[derive(Debug, Args)]
pub struct WitnessArgs {
    /// The witness's private key file, or `-` for stdin.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The verifier key of the log whose checkpoints it cosigns, or a file holding it.
    #[arg(long, value_name = "KEY")]
    pub log_key: String,
    /// The directory keeping the last cosigned checkpoint of each origin.
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    /// The signed checkpoint to cosign.
    #[arg(value_name = "CHECKPOINT")]
    pub checkpoint: PathBuf,
    /// The consistency proof from the last cosigned checkpoint
    /// (`syndicate audit prove consistency`); not needed the first time.
    #[arg(value_name = "PROOF")]
    pub proof: Option<PathBuf>,
    /// Write the cosigned checkpoint here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `syndicate audit receipt`.
#[derive(Debug, Args)]
pub struct ReceiptArgs {
    /// The request.
    #[arg(value_name = "REQUEST_ID")]
    pub request_id: String,
    /// The store, e.g. `sqlite:audit.db`.
    #[arg(long, value_name = "URL")]
    pub store: String,
    /// The chain; needed only when the store holds several.
    #[arg(long)]
    pub chain: Option<String>,
    /// The signed checkpoint the proofs lead to.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: PathBuf,
    /// The receipt file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `syndicate audit verify-receipt`.
#[derive(Debug, Args)]
pub struct VerifyReceiptArgs {
    /// The receipt file.
    #[arg(value_name = "RECEIPT")]
    pub receipt: PathBuf,
    /// The checkpoint's keys.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Approver verifier keys (or files of them) to check signed approvals with.
    #[arg(long, value_name = "KEY")]
    pub trusted_keys: Vec<String>,
}

/// Verifier keys from an argument: the key text itself, or the path of a
/// file holding such lines (blank lines and `#` comments skipped).
///
/// # Errors
/// A usage failure naming the option and what is wrong.
pub fn verifier_keys(flag: &str, arg: &str) -> Result<Vec<VerifierKey>, Failure> {
    let as_key = arg.trim().parse::<VerifierKey>();
    if let Ok(key) = as_key {
        return Ok(vec![key]);
    }
    let path = Path::new(arg);
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let why = as_key.err().map(|e| e.to_string()).unwrap_or_default();
            return Err(Failure::usage(format!(
                "--{flag} {arg:?} is neither a verifier key ({why}) nor a file"
            )));
        }
        Err(e) => return Err(Failure::usage(format!("--{flag}: cannot read {arg}: {e}"))),
    };
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        keys.push(
            line.parse::<VerifierKey>()
                .map_err(|e| Failure::usage(format!("--{flag}: {arg} line {}: {e}", i + 1)))?,
        );
    }
    if keys.is_empty() {
        return Err(Failure::usage(format!(
            "--{flag}: {arg} holds no verifier key"
        )));
    }
    Ok(keys)
}

fn one_key(flag: &str, arg: &str) -> Result<VerifierKey, Failure> {
    let mut keys = verifier_keys(flag, arg)?;
    if keys.len() != 1 {
        return Err(Failure::usage(format!(
            "--{flag}: {arg} holds {} keys; give exactly one",
            keys.len()
        )));
    }
    Ok(keys.remove(0))
}

impl TrustArgs {
    /// The trust these options describe.
    ///
    /// # Errors
    /// A usage failure for a missing or bad key.
    pub fn trust(&self) -> Result<Trust, Failure> {
        let Some(log) = &self.log_key else {
            return Err(Failure::usage(
                "a checkpoint is checked against the log key: give --log-key KEY",
            ));
        };
        let log = one_key("log-key", log)?;
        let mut witnesses = Vec::new();
        for arg in &self.witness_key {
            witnesses.extend(verifier_keys("witness-key", arg)?);
        }
        if self.witnesses_required > witnesses.len() {
            return Err(Failure::usage(format!(
                "--witnesses-required {} but only {} witness key(s) given with --witness-key",
                self.witnesses_required,
                witnesses.len()
            )));
        }
        Ok(Trust::log(log).with_witnesses(witnesses, self.witnesses_required))
    }
}

fn read_text(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))
}

/// Writes `bytes` to `out` (through a temporary file, synced, then
/// renamed) or to standard output.
fn write_out(out: Option<&Path>, bytes: &[u8]) -> CommandResult {
    let Some(out) = out else {
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(bytes)
            .and_then(|()| stdout.flush())
            .map_err(|e| Failure::usage(format!("cannot write standard output: {e}")));
    };
    let mut name = out.file_name().unwrap_or_default().to_owned();
    name.push(".partial");
    let partial = out.with_file_name(name);
    let written = std::fs::File::create(&partial)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&partial, out));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        Failure::usage(format!("cannot write {}: {e}", out.display()))
    })
}

fn parse_url(text: &str) -> Result<StoreUrl, Failure> {
    text.parse().map_err(Failure::usage)
}

fn parse_chain(text: Option<&str>) -> Result<Option<ChainId>, Failure> {
    text.map(ChainId::new)
        .transpose()
        .map_err(|e| Failure::usage(format!("--chain: {e}")))
}

fn tree_failure(url: &StoreUrl, e: TreeError) -> Failure {
    match e {
        TreeError::Broken(v) => Failure::broken(format!(
            "the chain does not verify (first bad seq {}: {v}); run `syndicate audit verify --store {url}`",
            v.seq
        )),
        TreeError::TooShort {
            requested,
            available,
        } => Failure::broken(Mismatch::Shorter {
            size: requested,
            found: available,
        }),
        other => Failure::usage(format!("cannot read {url}: {other}")),
    }
}

/// `syndicate audit checkpoint`: verifies the whole chain, then signs the
/// checkpoint of its head.
///
/// # Errors
/// Exit 1 when the chain does not verify (nothing is signed), exit 2 for a
/// bad key, store or output.
pub async fn sign(args: &CheckpointArgs) -> CommandResult {
    let url = parse_url(&args.store)?;
    let chain = parse_chain(args.chain.as_deref())?;
    let key = super::key::load_key(Some(&args.key), None)?;
    let store = open(&url, chain.as_ref(), Access::Existing).await?;
    let origin = args
        .origin
        .clone()
        .unwrap_or_else(|| checkpoint::default_origin(store.chain()));
    let (body, signed) = tree::sign_head(store.as_ref(), &origin, &key)
        .await
        .map_err(|e| match e {
            TreeError::Checkpoint(e) => Failure::usage(format!("--origin: {e}")),
            e => tree_failure(&url, e),
        })?;
    write_out(args.out.as_deref(), signed.as_bytes())?;
    let file = args
        .out
        .as_ref()
        .map_or_else(|| "CHECKPOINT".to_owned(), |p| p.display().to_string());
    eprintln!(
        "signed checkpoint {:?} of chain {:?}: size {}, root {}\ncheck the chain against it with:\n  syndicate audit verify --store {} --checkpoint {file} --log-key {}",
        body.origin,
        store.chain().as_str(),
        body.size,
        BASE64.encode(body.root),
        args.store,
        key.verifier()
    );
    Ok(())
}

/// The root of the first `size` events, computed while they are verified.
#[derive(Debug)]
pub struct PrefixRoot {
    size: u64,
    frontier: Frontier,
}

impl PrefixRoot {
    /// A root of the first `size` events, none seen yet.
    pub fn new(size: u64) -> Self {
        PrefixRoot {
            size,
            frontier: Frontier::new(),
        }
    }

    /// Adds the event when it is the next leaf of the prefix.
    pub fn see(&mut self, event: &Event) {
        if self.frontier.size() < self.size && event.seq == self.frontier.size() {
            self.frontier.push(tree::event_leaf(&event.hash));
        }
    }

    /// Checks the events seen (all verified) against the checkpoint.
    ///
    /// # Errors
    /// A broken failure (exit 1) naming the size, or the size whose root differs.
    pub fn check(&self, opened: &checkpoint::Opened, events: u64) -> CommandResult {
        println!("{}", self.judge(opened, events)?);
        Ok(())
    }

    /// [`PrefixRoot::check`] without printing: what holds, as one line.
    ///
    /// # Errors
    /// As [`PrefixRoot::check`].
    pub fn judge(&self, opened: &checkpoint::Opened, events: u64) -> Result<String, Failure> {
        let cp = opened.checkpoint();
        if self.frontier.size() < cp.size {
            return Err(Failure::broken(Mismatch::Shorter {
                size: cp.size,
                found: events,
            }));
        }
        let root = self.frontier.root();
        if root != cp.root {
            return Err(Failure::broken(Mismatch::Root {
                size: cp.size,
                expected: merkle::hex(&cp.root),
                found: merkle::hex(&root),
            }));
        }
        let witnesses: Vec<String> = opened.witnesses().iter().map(key_label).collect();
        Ok(format!(
            "checkpoint holds: the first {} events hash to the root of {:?} signed by {}{}",
            cp.size,
            cp.origin,
            key_label(opened.log_key()),
            if witnesses.is_empty() {
                String::new()
            } else {
                format!(", cosigned by {}", witnesses.join(", "))
            }
        ))
    }
}

fn key_label(key: &VerifierKey) -> String {
    format!("{}+{}", key.name(), key.key_id())
}

/// Opens the `--checkpoint` file of `audit verify`: exit 1 when its
/// signatures do not verify.
///
/// # Errors
/// A usage failure for an unreadable file or bad keys, a broken one for a
/// checkpoint that does not verify.
pub fn open_checkpoint(path: &Path, trust: &TrustArgs) -> Result<checkpoint::Opened, Failure> {
    let trust = trust.trust()?;
    let text = read_text(path)?;
    checkpoint::open(&text, &trust).map_err(|e| Failure::broken(format!("{}: {e}", path.display())))
}

/// `syndicate audit prove consistency`.
///
/// # Errors
/// Exit 1 when the store's tree does not match a checkpoint, exit 2 for
/// unreadable input or checkpoints that cannot be related.
pub async fn prove_consistency(args: &ConsistencyArgs) -> CommandResult {
    let url = parse_url(&args.store)?;
    let chain = parse_chain(args.chain.as_deref())?;
    let parse = |path: &Path| -> Result<Checkpoint, Failure> {
        checkpoint::parse_unverified(&read_text(path)?)
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))
    };
    let (old, new) = (parse(&args.from)?, parse(&args.to)?);
    if old.origin != new.origin {
        return Err(Failure::usage(format!(
            "the checkpoints are of two logs: origin {:?} and {:?}",
            old.origin, new.origin
        )));
    }
    if old.size > new.size {
        return Err(Failure::usage(format!(
            "--from has size {}, larger than --to's {}; swap them",
            old.size, new.size
        )));
    }
    let store = open(&url, chain.as_ref(), Access::Existing).await?;
    for (cp, path) in [(&old, &args.from), (&new, &args.to)] {
        let root = tree::cached_root(store.as_ref(), cp.size)
            .await
            .map_err(|e| tree_failure(&url, e))?;
        if root != cp.root {
            return Err(Failure::broken(format!(
                "root at size {} of {url} is {}, {} says {}: the store does not hold the tree that checkpoint signs",
                cp.size,
                merkle::hex(&root),
                path.display(),
                merkle::hex(&cp.root)
            )));
        }
    }
    let hashes = if old.size == 0 || old.size == new.size {
        Vec::new()
    } else {
        let proof = tree::consistency_proof(store.as_ref(), old.size, new.size)
            .await
            .map_err(|e| tree_failure(&url, e))?;
        merkle::verify_consistency(old.size, new.size, &old.root, &new.root, &proof).map_err(
            |e| {
                Failure::broken(format!(
                    "the store's node cache gives a proof that does not verify ({e}); delete its tree_nodes rows to rebuild them"
                ))
            },
        )?;
        proof
    };
    let proof = ConsistencyProof {
        old_size: old.size,
        hashes,
    };
    write_out(args.out.as_deref(), proof.to_text().as_bytes())
}

/// `syndicate witness`.
///
/// # Errors
/// Exit 1 when the witness refuses (fork, rollback, bad signature, a proof
/// that does not verify), printing both checkpoints on standard output for
/// a fork or rollback; exit 2 for unreadable input or state.
pub fn witness(args: &WitnessArgs) -> CommandResult {
    let key = super::key::load_key(Some(&args.key), None)?;
    let log = one_key("log-key", &args.log_key)?;
    let signed = read_text(&args.checkpoint)?;
    let proof = match &args.proof {
        Some(path) => ConsistencyProof::parse(&read_text(path)?)
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?,
        None => ConsistencyProof::empty(0),
    };
    let witness = Witness::new(key, log, &args.state);
    match witness.cosign(&signed, &proof) {
        Ok(cosigned) => write_out(args.out.as_deref(), cosigned.as_bytes()),
        Err(e) => {
            if let WitnessError::Fork { held, offered, .. }
            | WitnessError::Rollback { held, offered, .. } = &e
            {
                println!(
                    "checkpoint this witness cosigned before:\n{held}\ncheckpoint offered now:\n{offered}"
                );
            }
            Err(match e {
                WitnessError::State { .. } => Failure::usage(e),
                e => Failure::broken(e),
            })
        }
    }
}

/// `syndicate audit receipt`.
///
/// # Errors
/// Exit 1 when the store does not match the checkpoint, exit 2 for
/// unreadable input, an unknown request or an output that cannot be written.
pub async fn make_receipt(args: &ReceiptArgs) -> CommandResult {
    let url = parse_url(&args.store)?;
    let chain = parse_chain(args.chain.as_deref())?;
    let signed = read_text(&args.checkpoint)?;
    let store = open(&url, chain.as_ref(), Access::Existing).await?;
    let (receipt, later) = receipt::make(store.as_ref(), &args.request_id, &signed)
        .await
        .map_err(|e| match e {
            receipt::ReceiptError::NotInCheckpoint { .. } => Failure::broken(e),
            receipt::ReceiptError::Tree(e) => tree_failure(&url, e),
            e => Failure::usage(e),
        })?;
    let bytes = receipt.to_bytes().map_err(Failure::usage)?;
    write_out(Some(&args.out), &bytes)?;
    eprintln!(
        "receipt of request {}: {} event(s) with inclusion proofs to the checkpoint, written to {}{}",
        args.request_id,
        receipt.events.len(),
        args.out.display(),
        if later == 0 {
            String::new()
        } else {
            format!(
                "; {later} later event(s) of the request are after the checkpoint and not covered: sign a newer one"
            )
        }
    );
    Ok(())
}

/// `syndicate audit verify-receipt`: checks a receipt with no store and
/// tells the request's story.
///
/// # Errors
/// Exit 1 for a receipt that does not verify, exit 2 for unreadable input
/// or bad keys.
pub fn verify_receipt(args: &VerifyReceiptArgs) -> CommandResult {
    let trust = args.trust.trust()?;
    let mut approvers = Vec::new();
    for arg in &args.trusted_keys {
        approvers.extend(verifier_keys("trusted-keys", arg)?);
    }
    let bytes = std::fs::read(&args.receipt)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", args.receipt.display())))?;
    let verified = receipt::verify(&bytes, &trust)
        .map_err(|e| Failure::broken(format!("{}: {e}", args.receipt.display())))?;
    let cp = verified.checkpoint.checkpoint();
    let mut out = String::new();
    out.push_str(&format!(
        "receipt verified: {} event(s) of request {} on chain {:?}, each included in checkpoint {:?} of size {} signed by {}{}\n",
        verified.events.len(),
        verified.request_id,
        verified.chain.as_str(),
        cp.origin,
        cp.size,
        key_label(trust.log_key()),
        {
            let w: Vec<String> = verified.checkpoint.witnesses().iter().map(key_label).collect();
            if w.is_empty() { String::new() } else { format!(", cosigned by {}", w.join(", ")) }
        }
    ));
    let mut story = Story::default();
    for (envelope, _) in &verified.events {
        let line = story.see(envelope, &verified.chain, &approvers);
        out.push_str(&format!(
            "  seq {} {} {} by {} {}: {line}\n",
            envelope.seq,
            envelope.at,
            envelope.kind.as_str(),
            actor_kind(envelope.actor.kind),
            envelope.actor.id,
        ));
    }
    out.push_str(&story.summary());
    print!("{out}");
    match story.bad_signatures {
        0 => Ok(()),
        n => Err(Failure::broken(format!(
            "{}: {n} approval signature(s) do not verify against the --trusted-keys given",
            args.receipt.display()
        ))),
    }
}

fn actor_kind(kind: ActorKind) -> &'static str {
    match kind {
        ActorKind::Human => "human",
        ActorKind::Agent => "agent",
        ActorKind::Policy => "policy",
        ActorKind::System => "system",
        _ => "actor",
    }
}

/// What a receipt's events say about their request.
#[derive(Debug, Default)]
struct Story {
    proposed_by: Option<String>,
    approved_by: Vec<String>,
    approved: Option<String>,
    executed: Option<String>,
    outcome: Option<String>,
    refused: Vec<String>,
    bad_signatures: usize,
}

fn text(body: &Value, member: &str) -> String {
    match body.get(member) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_owned(),
        Some(other) => other.to_string(),
    }
}

impl Story {
    fn see(
        &mut self,
        envelope: &syndicate_core::Envelope,
        chain: &ChainId,
        approvers: &[VerifierKey],
    ) -> String {
        let b = &envelope.body;
        match envelope.kind {
            EventKind::ActionProposed => {
                self.proposed_by = Some(text(b, "requester"));
                let action = b.get("action").map(Value::to_string).unwrap_or_default();
                format!(
                    "action {action}, digest {}, risk {}",
                    text(b, "action_digest"),
                    text(b, "risk_tier")
                )
            }
            EventKind::ActionApproved => {
                let digest = text(b, "action_digest");
                let signature = match b.get("signed") {
                    None | Some(Value::Null) => "unsigned".to_owned(),
                    Some(signed) => match signature_note(signed, chain, b, approvers) {
                        Ok(note) => note,
                        Err(refused) => {
                            self.bad_signatures += 1;
                            refused
                        }
                    },
                };
                self.approved_by
                    .push(format!("{} ({signature})", text(b, "approver")));
                self.approved = Some(digest.clone());
                format!(
                    "approver {}, method {}, digest {digest}, {signature}",
                    text(b, "approver"),
                    text(b, "method")
                )
            }
            EventKind::ActionDenied => {
                self.refused.push(format!("denied: {}", text(b, "reason")));
                format!("by {}, reason {}", text(b, "by"), text(b, "reason"))
            }
            EventKind::ExecutionStarted => {
                self.executed = Some(text(b, "executed_digest"));
                format!(
                    "approved digest {}, executed digest {}",
                    text(b, "approved_digest"),
                    text(b, "executed_digest")
                )
            }
            EventKind::ExecutionDigestMismatch => {
                self.refused.push(format!(
                    "digest mismatch: {} tried to run",
                    text(b, "executed_digest")
                ));
                format!(
                    "approved digest {}, attempted digest {}",
                    text(b, "approved_digest"),
                    text(b, "executed_digest")
                )
            }
            EventKind::ExecutionRejected => {
                self.refused
                    .push(format!("rejected: {}", text(b, "reason")));
                format!("reason {}, {}", text(b, "reason"), text(b, "detail"))
            }
            EventKind::ExecutionCompleted => {
                let exit = b
                    .get("exit_code")
                    .and_then(Value::as_i64)
                    .map_or_else(String::new, |c| format!(", exit code {c}"));
                self.outcome = Some(format!("{}{exit}", text(b, "outcome")));
                format!("outcome {}{exit}", text(b, "outcome"))
            }
            _ => b.to_string(),
        }
    }

    fn summary(&self) -> String {
        let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".to_owned());
        let run = match (&self.approved, &self.executed) {
            (Some(a), Some(e)) if a == e => format!("{e} (the approved digest)"),
            (Some(_), Some(e)) => format!("{e} (DIFFERS from the approved digest)"),
            (_, e) => or_none(e),
        };
        let mut s = format!(
            "story: proposed by {}; approved by {}; digest approved {}; digest run {run}; outcome {}\n",
            or_none(&self.proposed_by),
            if self.approved_by.is_empty() {
                "nobody".to_owned()
            } else {
                self.approved_by.join(", ")
            },
            or_none(&self.approved),
            or_none(&self.outcome),
        );
        for r in &self.refused {
            s.push_str(&format!("refused: {r}\n"));
        }
        s
    }
}

/// How a signed approval's signature stands against the approver keys
/// given: `Err` when it was checked and refused.
fn signature_note(
    signed: &Value,
    chain: &ChainId,
    body: &Value,
    approvers: &[VerifierKey],
) -> Result<String, String> {
    let Ok(decision) = serde_json::from_value::<SignedDecision>(signed.clone()) else {
        return Err("SIGNATURE REFUSED: the signature block is unreadable".to_owned());
    };
    let signer = format!("{}+{}", decision.statement.approver, decision.key_id);
    if approvers.is_empty() {
        return Ok(format!(
            "signed by {signer}, signature not checked: give --trusted-keys"
        ));
    }
    let Ok(digest) = text(body, "action_digest").parse::<syndicate_core::Digest>() else {
        return Err(format!(
            "SIGNATURE REFUSED: signed by {signer}, the approved digest is unreadable"
        ));
    };
    decision
        .verify_for(
            chain,
            &text(body, "request_id"),
            &digest,
            syndicate_core::Decision::Approve,
            approvers,
        )
        .map(|_| format!("signature by {signer} verified"))
        .map_err(|e| format!("SIGNATURE REFUSED: {e}"))
}
