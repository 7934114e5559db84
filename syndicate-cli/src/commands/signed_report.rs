//! Signed reports: a detached signature over a report's bytes, so a report
//! handed to an auditor is verifiable and cannot be forged or edited
//! unseen (`audit changes|report --sign-key`, `audit verify-report`).
//!
//! The signature is a C2SP signed note (the form of checkpoints, FORMAT.md
//! 10.5) signed with the log key, whose text names the report's SHA-256
//! and size:
//!
//! ```text
//! syndicate-report-signature/v1
//! sha256 <64 lower-case hex of SHA-256(report bytes)>
//! size <report length in bytes, decimal>
//!
//! — <key name> <base64(key id || Ed25519 signature)>
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use sha2::{Digest as _, Sha256};
use syndicate_core::keys::{SigningKey, VerifierKey};
use syndicate_core::note::{self, NoteError};

use crate::exit::{CommandResult, Failure};

/// The first line of a report signature's note text.
pub const FORMAT_LINE: &str = "syndicate-report-signature/v1";

/// Where a report goes, and whether it is signed.
#[derive(Debug, Clone, Default, Args)]
pub struct OutputArgs {
    /// Write the report to this file (replaced only when complete) instead
    /// of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Sign the report with this key file (the log key; `-` for standard
    /// input): a detached signature, a C2SP signed note naming the report's
    /// SHA-256 and size (FORMAT.md 11.3). Check it with `syndicate audit
    /// verify-report`.
    #[arg(long, value_name = "KEY_FILE")]
    pub sign_key: Option<PathBuf>,
    /// Where the signature goes (default `<out>.sig`; required when the
    /// report goes to standard output).
    #[arg(long, value_name = "FILE", requires = "sign_key")]
    pub signature_out: Option<PathBuf>,
}

/// Why a report signature was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportSignatureError {
    /// The signed note does not open with the keys given.
    #[error("the signature does not verify: {0}")]
    Note(#[from] NoteError),
    /// The note verifies but is not a report signature.
    #[error("the signed note is not a {FORMAT_LINE} signature (its text is {0:?})")]
    NotAReportSignature(String),
    /// The report's bytes are not the ones signed.
    #[error(
        "the report was changed: it has SHA-256 {found} and {found_size} bytes, but the signature is for SHA-256 {signed} and {signed_size} bytes"
    )]
    Changed {
        /// The digest signed.
        signed: String,
        /// The size signed.
        signed_size: u64,
        /// The report's digest.
        found: String,
        /// The report's size.
        found_size: u64,
    },
}

/// The note text of a report's signature.
pub fn note_text(report: &[u8]) -> String {
    format!(
        "{FORMAT_LINE}\nsha256 {}\nsize {}\n",
        hex(&Sha256::digest(report)),
        report.len()
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Signs a report: the signed note of [`note_text`].
///
/// # Errors
/// [`NoteError`] should the key's name be unusable in a note.
pub fn sign(report: &[u8], key: &SigningKey) -> Result<String, NoteError> {
    note::sign(&note_text(report), &[key])
}

/// Checks a report against its signature and the keys trusted; returns the
/// keys whose signatures verified.
///
/// # Errors
/// [`ReportSignatureError`]: the note does not verify, is not a report
/// signature, or is for other bytes.
pub fn verify(
    report: &[u8],
    signature: &str,
    trusted: &[VerifierKey],
) -> Result<Vec<VerifierKey>, ReportSignatureError> {
    let opened = note::open(signature, trusted)?;
    let text = opened.text();
    let mut lines = text.lines();
    let (Some(FORMAT_LINE), Some(digest), Some(size), None) =
        (lines.next(), lines.next(), lines.next(), lines.next())
    else {
        return Err(ReportSignatureError::NotAReportSignature(text.to_owned()));
    };
    let (Some(signed), Some(signed_size)) = (
        digest
            .strip_prefix("sha256 ")
            .filter(|d| d.len() == 64 && d.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))),
        size.strip_prefix("size ")
            .and_then(|s| s.parse::<u64>().ok()),
    ) else {
        return Err(ReportSignatureError::NotAReportSignature(text.to_owned()));
    };
    if note_text(report) != text {
        return Err(ReportSignatureError::Changed {
            signed: signed.to_owned(),
            signed_size,
            found: hex(&Sha256::digest(report)),
            found_size: report.len() as u64,
        });
    }
    Ok(opened.verified().to_vec())
}

/// A report's destination, with its signing key loaded before any work.
#[derive(Debug)]
pub struct Output {
    out: Option<PathBuf>,
    signing: Option<(SigningKey, PathBuf)>,
}

impl Output {
    /// Checks the arguments and loads the key.
    ///
    /// # Errors
    /// A usage failure for an unreadable key, or a signature with nowhere to go.
    pub fn new(args: &OutputArgs) -> Result<Output, Failure> {
        let signing = match &args.sign_key {
            None => None,
            Some(path) => {
                let key = super::key::load_key(Some(path), None)?;
                let sig = match (&args.signature_out, &args.out) {
                    (Some(sig), _) => sig.clone(),
                    (None, Some(out)) => with_suffix(out, ".sig"),
                    (None, None) => {
                        return Err(Failure::usage(
                            "--sign-key needs --out FILE (the signature goes to FILE.sig) or --signature-out FILE",
                        ));
                    }
                };
                Some((key, sig))
            }
        };
        Ok(Output {
            out: args.out.clone(),
            signing,
        })
    }

    /// Writes the report, then its signature.
    ///
    /// # Errors
    /// A usage failure when a file cannot be written.
    pub fn emit(&self, report: &[u8]) -> CommandResult {
        match &self.out {
            Some(path) => write_file(path, report)?,
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(report)
                    .and_then(|()| out.flush())
                    .map_err(|e| Failure::usage(format!("cannot write standard output: {e}")))?;
            }
        }
        if let Some((key, path)) = &self.signing {
            let signed = sign(report, key)
                .map_err(|e| Failure::usage(format!("cannot sign the report: {e}")))?;
            write_file(path, signed.as_bytes())?;
            let shown = self
                .out
                .as_deref()
                .map_or_else(|| "REPORT".to_owned(), |p| p.display().to_string());
            eprintln!(
                "signed the report ({} bytes) with {}; signature in {}; check with:\n  syndicate audit verify-report {shown} --signature {} --key {}",
                report.len(),
                key.verifier(),
                path.display(),
                path.display(),
                key.verifier()
            );
        }
        Ok(())
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(suffix);
    path.with_file_name(name)
}

/// Writes a file whole: a temporary beside it, then a rename.
fn write_file(path: &Path, bytes: &[u8]) -> CommandResult {
    let partial = with_suffix(path, ".partial");
    std::fs::write(&partial, bytes)
        .and_then(|()| std::fs::rename(&partial, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            Failure::usage(format!("cannot write {}: {e}", path.display()))
        })
}

/// `syndicate audit verify-report`.
#[derive(Debug, Args)]
pub struct VerifyReportArgs {
    /// The report file, exactly as written.
    pub report: PathBuf,
    /// Its detached signature (default `<REPORT>.sig`).
    #[arg(long, value_name = "FILE")]
    pub signature: Option<PathBuf>,
    /// The key it must be signed with: a verifier key, or a file of them,
    /// one a line. Repeatable.
    #[arg(long, value_name = "KEY|FILE", required = true)]
    pub key: Vec<String>,
}

/// Runs `syndicate audit verify-report`: exit 0 when the signature
/// verifies with a given key and is over exactly the report's bytes, 1
/// when it does not, 2 when a file or key cannot be read.
///
/// # Errors
/// As above.
pub fn verify_report(args: &VerifyReportArgs) -> CommandResult {
    let mut trusted = Vec::new();
    for arg in &args.key {
        trusted.extend(super::checkpoint::verifier_keys("key", arg)?);
    }
    let report = std::fs::read(&args.report)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", args.report.display())))?;
    let sig_path = args
        .signature
        .clone()
        .unwrap_or_else(|| with_suffix(&args.report, ".sig"));
    let signature = std::fs::read(&sig_path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", sig_path.display())))?;
    let signature = String::from_utf8(signature).map_err(|_| {
        Failure::broken(format!(
            "{} is not a signed note (not UTF-8 text)",
            sig_path.display()
        ))
    })?;
    let keys = verify(&report, &signature, &trusted).map_err(Failure::broken)?;
    let names: Vec<String> = keys
        .iter()
        .map(|k| format!("{}+{}", k.name(), k.key_id()))
        .collect();
    println!(
        "verified: {} ({} bytes, sha256 {}) is the report signed by {}",
        args.report.display(),
        report.len(),
        hex(&Sha256::digest(&report)),
        names.join(", ")
    );
    Ok(())
}
