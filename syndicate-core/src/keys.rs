//! Ed25519 keys in the C2SP signed-note text forms.
//!
//! Every key in syndicate — approver, operator, log, witness — is an Ed25519
//! key with a *name* (for an approver, the identity it signs as, such as
//! `bob@example.com`). The public half is written in the C2SP signed-note
//! *verifier key* form, so the same text works in policies, checkpoints and
//! the transparency-log ecosystem's note tools:
//!
//! ```text
//! <name>+<key id: 8 lower-case hex>+<base64(0x01 || 32-byte Ed25519 public key)>
//! ```
//!
//! The key id is the first four bytes, big-endian, of
//! `SHA-256(name || 0x0A || 0x01 || public key)`. Base64 is the standard
//! alphabet with padding (RFC 4648 §4).
//!
//! The private half, as stored in key files, environment variables or piped
//! on stdin, uses the form of the Go `golang.org/x/mod/sumdb/note` package:
//!
//! ```text
//! PRIVATE+KEY+<name>+<key id>+<base64(0x01 || 32-byte Ed25519 seed)>
//! ```
//!
//! where the key id is the one of the *public* key. Loading checks that the
//! key id matches the seed, so a damaged or hand-edited file is refused.
//!
//! Key names must be non-empty and contain no `+`, no whitespace and no
//! control characters (C2SP signed-note forbids spaces and `+`; control
//! characters would break the one-line forms).
//!
//! ```
//! use syndicate_core::keys::{SigningKey, VerifierKey};
//!
//! let key = SigningKey::generate("bob@example.com")?;
//! let verifier: VerifierKey = key.verifier().to_string().parse()?;
//! let signature = key.sign(b"hello");
//! verifier.verify(b"hello", &signature)?;
//! assert!(verifier.verify(b"hellO", &signature).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::Signer as _;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// The C2SP signed-note signature type byte of Ed25519.
pub const ED25519: u8 = 0x01;

/// The prefix of the private key text form.
const PRIVATE_PREFIX: &str = "PRIVATE+KEY+";

/// The largest key text accepted from a file, a variable or stdin, in bytes.
const MAX_KEY_TEXT: u64 = 4096;

/// Why a key, a key text or a key file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key name is empty or holds `+`, whitespace or a control character.
    #[error(
        "key name {0:?} is not valid: a key name is non-empty and holds no '+', no whitespace and no control character"
    )]
    Name(String),
    /// The text is not a key in the expected form.
    #[error("not a {expected}: {reason}")]
    Format {
        /// Which form was expected (`verifier key`, `private key`).
        expected: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The key uses a signature type other than Ed25519 (0x01).
    #[error("signature type 0x{0:02x} is not supported; only Ed25519 (0x01) keys are")]
    Algorithm(u8),
    /// The key id written in the text does not match the key.
    #[error(
        "key id {written} does not match the key, whose id is {computed}; the key text is damaged"
    )]
    KeyIdMismatch {
        /// The key id in the text.
        written: KeyId,
        /// The key id computed from the name and the key.
        computed: KeyId,
    },
    /// The public key is not a usable Ed25519 point (invalid or of small order).
    #[error("the public key is not a valid Ed25519 key")]
    BadPublicKey,
    /// A key file is readable or writable by group or others.
    #[error(
        "key file {path} has permissions {mode:04o}, open to group or others; run `chmod 600 {path}`"
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A new key file would overwrite an existing file.
    #[error("key file {0} already exists; choose another path or remove it first")]
    Exists(PathBuf),
    /// Reading or writing a key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file (`-` for stdin).
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An environment variable that should hold a private key is unset or not UTF-8.
    #[error("environment variable {0} does not hold a key; set it to a PRIVATE+KEY+... line")]
    Env(String),
    /// The key text is larger than any key.
    #[error("key text is larger than {MAX_KEY_TEXT} bytes; it is not a key")]
    TooLarge,
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),
}

/// An Ed25519 signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the signature does not verify with this key")]
pub struct SignatureError;

/// The 32-bit key id of a C2SP signed-note key, written as 8 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(u32);

impl KeyId {
    /// The key id of an Ed25519 public key with this name:
    /// `SHA-256(name || 0x0A || 0x01 || public key)[..4]`, big-endian.
    pub fn of_ed25519(name: &str, public_key: &[u8; 32]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(name.as_bytes());
        hasher.update([b'\n', ED25519]);
        hasher.update(public_key);
        let hash = hasher.finalize();
        KeyId(u32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]))
    }

    /// Wraps the 32-bit value.
    pub const fn from_u32(value: u32) -> Self {
        KeyId(value)
    }

    /// The 32-bit value.
    pub const fn as_u32(self) -> u32 {
        self.0
    }

    /// The four bytes, big-endian, as they open a note signature.
    pub const fn to_be_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = KeyError;

    /// Parses exactly 8 lower-case hex digits.
    fn from_str(s: &str) -> Result<Self, KeyError> {
        if s.len() != 8 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(KeyError::Format {
                expected: "key id",
                reason: format!("{s:?} is not 8 lower-case hex digits"),
            });
        }
        u32::from_str_radix(s, 16)
            .map(KeyId)
            .map_err(|e| KeyError::Format {
                expected: "key id",
                reason: e.to_string(),
            })
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether `name` may name a key: non-empty, no `+`, no whitespace, no control character.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c != '+' && !c.is_whitespace() && !c.is_control())
}

fn check_name(name: &str) -> Result<(), KeyError> {
    if is_valid_key_name(name) {
        Ok(())
    } else {
        Err(KeyError::Name(name.to_owned()))
    }
}

/// Splits `<name>+<id>+<base64>`.
fn split_key_text<'a>(
    text: &'a str,
    expected: &'static str,
) -> Result<(&'a str, KeyId, Zeroizing<Vec<u8>>), KeyError> {
    let format = |reason: &str| KeyError::Format {
        expected,
        reason: reason.to_owned(),
    };
    // Names hold no '+' but base64 may: split from the left.
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format("expected <name>+<8 hex key id>+<base64 key>"));
    };
    check_name(name)?;
    let id: KeyId = id.parse()?;
    let bytes = Zeroizing::new(
        BASE64
            .decode(b64)
            .map_err(|e| format(&format!("the key part is not standard base64: {e}")))?,
    );
    match bytes.first() {
        None => return Err(format("the key part is empty")),
        Some(&ED25519) => {}
        Some(&other) => return Err(KeyError::Algorithm(other)),
    }
    if bytes.len() != 33 {
        return Err(format(&format!(
            "an Ed25519 key part is 33 bytes (0x01 and 32 key bytes), found {}",
            bytes.len()
        )));
    }
    Ok((name, id, bytes))
}

/// A public key that checks signatures, with its name and key id.
///
/// Its text form ([`Display`](fmt::Display) and [`FromStr`]) is the C2SP
/// signed-note verifier key `<name>+<key id>+<base64(0x01 || key)>`; it is
/// serialized as that string too.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: KeyId,
    key: ed25519_dalek::VerifyingKey,
}

impl VerifierKey {
    /// A verifier key from a name and a raw 32-byte Ed25519 public key.
    ///
    /// # Errors
    /// [`KeyError::Name`] for a name that cannot name a key;
    /// [`KeyError::BadPublicKey`] for bytes that are not a usable Ed25519 key.
    pub fn from_ed25519(name: &str, public_key: &[u8; 32]) -> Result<Self, KeyError> {
        check_name(name)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(public_key)
            .map_err(|_| KeyError::BadPublicKey)?;
        if key.is_weak() {
            return Err(KeyError::BadPublicKey);
        }
        Ok(VerifierKey {
            name: name.to_owned(),
            id: KeyId::of_ed25519(name, public_key),
            key,
        })
    }

    /// The key name (for an approver, the identity it signs as).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> KeyId {
        self.id
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Checks an Ed25519 signature of `message` (RFC 8032, with the strict
    /// checks of `ed25519-dalek`'s `verify_strict`: canonical encodings, no
    /// small-order points).
    ///
    /// # Errors
    /// [`SignatureError`] when the signature does not verify.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> Result<(), SignatureError> {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.key
            .verify_strict(message, &signature)
            .map_err(|_| SignatureError)
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = [0u8; 33];
        bytes[0] = ED25519;
        bytes[1..].copy_from_slice(self.key.as_bytes());
        write!(f, "{}+{}+{}", self.name, self.id, BASE64.encode(bytes))
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl FromStr for VerifierKey {
    type Err = KeyError;

    /// Parses `<name>+<key id>+<base64(0x01 || 32-byte key)>`, checking that
    /// the key id matches the name and key.
    fn from_str(s: &str) -> Result<Self, KeyError> {
        if s.starts_with(PRIVATE_PREFIX) {
            return Err(KeyError::Format {
                expected: "verifier key",
                reason:
                    "this is a private key; give the public verifier key (`syndicate key show`)"
                        .to_owned(),
            });
        }
        let (name, written, bytes) = split_key_text(s, "verifier key")?;
        let public: [u8; 32] = bytes[1..].try_into().map_err(|_| KeyError::BadPublicKey)?;
        let key = VerifierKey::from_ed25519(name, &public)?;
        if key.id != written {
            return Err(KeyError::KeyIdMismatch {
                written,
                computed: key.id,
            });
        }
        Ok(key)
    }
}

impl serde::Serialize for VerifierKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for VerifierKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A private Ed25519 key with its name: signs messages and notes.
///
/// Its text form is `PRIVATE+KEY+<name>+<key id>+<base64(0x01 || seed)>`
/// ([`SigningKey::to_private_text`], [`SigningKey::from_private_text`]).
/// It has no `Display`, and its `Debug` shows only the public verifier key,
/// so the secret does not end up in logs by accident. The secret is wiped
/// from memory when the key is dropped.
#[derive(Clone)]
pub struct SigningKey {
    verifier: VerifierKey,
    key: ed25519_dalek::SigningKey,
}

impl SigningKey {
    /// A new key from the operating system's random number generator.
    ///
    /// # Errors
    /// [`KeyError::Name`] for an invalid name; [`KeyError::Random`] when the
    /// system generator fails.
    pub fn generate(name: &str) -> Result<Self, KeyError> {
        check_name(name)?;
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
        SigningKey::from_seed(name, &seed)
    }

    /// The key of a 32-byte Ed25519 seed (RFC 8032 private key).
    ///
    /// # Errors
    /// [`KeyError::Name`] for an invalid name.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, KeyError> {
        check_name(name)?;
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        let verifier = VerifierKey::from_ed25519(name, key.verifying_key().as_bytes())?;
        Ok(SigningKey { verifier, key })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        self.verifier.name()
    }

    /// The key id (of the public key).
    pub fn key_id(&self) -> KeyId {
        self.verifier.key_id()
    }

    /// The public verifier key.
    pub fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }

    /// The Ed25519 signature (RFC 8032) of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// `PRIVATE+KEY+<name>+<key id>+<base64(0x01 || seed)>`, without a newline.
    pub fn to_private_text(&self) -> Zeroizing<String> {
        let mut bytes = Zeroizing::new([0u8; 33]);
        bytes[0] = ED25519;
        bytes[1..].copy_from_slice(self.key.as_bytes());
        Zeroizing::new(format!(
            "{PRIVATE_PREFIX}{}+{}+{}",
            self.name(),
            self.key_id(),
            BASE64.encode(bytes.as_ref())
        ))
    }

    /// Parses the private key text form. Surrounding whitespace (a trailing
    /// newline) is ignored.
    ///
    /// # Errors
    /// [`KeyError::Format`] for text that is not a private key,
    /// [`KeyError::Algorithm`] for another signature type,
    /// [`KeyError::KeyIdMismatch`] when the key id does not match the seed.
    pub fn from_private_text(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let Some(rest) = text.strip_prefix(PRIVATE_PREFIX) else {
            return Err(KeyError::Format {
                expected: "private key",
                reason: "a private key starts with PRIVATE+KEY+".to_owned(),
            });
        };
        let (name, written, bytes) = split_key_text(rest, "private key")?;
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&bytes[1..]);
        let key = SigningKey::from_seed(name, &seed)?;
        if key.key_id() != written {
            return Err(KeyError::KeyIdMismatch {
                written,
                computed: key.key_id(),
            });
        }
        Ok(key)
    }

    /// Reads a private key from a file, refusing (on Unix) a file that group
    /// or others may read or write, as ssh does.
    ///
    /// # Errors
    /// [`KeyError::Permissions`] for an open file, [`KeyError::Io`] when it
    /// cannot be read, and the errors of [`SigningKey::from_private_text`].
    pub fn load_file(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = file.metadata().map_err(io)?.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Permissions {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        SigningKey::from_reader(file).map_err(|e| match e {
            KeyError::Io { source, .. } => io(source),
            other => other,
        })
    }

    /// Reads a private key from a reader (stdin for a CI approver), at most
    /// 4 KiB.
    ///
    /// # Errors
    /// [`KeyError::Io`] when reading fails, [`KeyError::TooLarge`], and the
    /// errors of [`SigningKey::from_private_text`].
    pub fn from_reader(reader: impl Read) -> Result<Self, KeyError> {
        let mut text = Zeroizing::new(String::new());
        reader
            .take(MAX_KEY_TEXT + 1)
            .read_to_string(&mut text)
            .map_err(|source| KeyError::Io {
                path: PathBuf::from("-"),
                source,
            })?;
        if text.len() as u64 > MAX_KEY_TEXT {
            return Err(KeyError::TooLarge);
        }
        SigningKey::from_private_text(&text)
    }

    /// Reads a private key from an environment variable holding its text form.
    ///
    /// # Errors
    /// [`KeyError::Env`] when the variable is unset or not UTF-8, and the
    /// errors of [`SigningKey::from_private_text`].
    pub fn from_env(var: &str) -> Result<Self, KeyError> {
        let text = Zeroizing::new(std::env::var(var).map_err(|_| KeyError::Env(var.to_owned()))?);
        SigningKey::from_private_text(&text)
    }

    /// Writes the key to a new file created with mode 0600 (on Unix), never
    /// replacing an existing file; the text form and a newline, synced to disk.
    ///
    /// # Errors
    /// [`KeyError::Exists`] when the path exists, [`KeyError::Io`] when it
    /// cannot be written.
    pub fn write_new_file(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Exists(path.to_owned())
            } else {
                io(source)
            }
        })?;
        let mut line = self.to_private_text();
        line.push('\n');
        file.write_all(line.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.verifier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c2sp_example_verifier_key_parses_with_its_key_id() {
        let text = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
        let key: VerifierKey = text.parse().unwrap();
        assert_eq!(key.name(), "example.com/foo");
        assert_eq!(key.key_id().to_string(), "530d903a");
        assert_eq!(key.to_string(), text);
    }

    #[test]
    fn verifier_key_with_wrong_key_id_is_refused() {
        let text = "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
        assert!(matches!(
            text.parse::<VerifierKey>(),
            Err(KeyError::KeyIdMismatch { .. })
        ));
        let renamed = "example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
        assert!(matches!(
            renamed.parse::<VerifierKey>(),
            Err(KeyError::KeyIdMismatch { .. })
        ));
    }

    #[test]
    fn verifier_key_of_another_algorithm_or_length_is_refused() {
        // 0x02 || 32 bytes.
        let other = format!("a+00000000+{}", BASE64.encode([2u8; 33]));
        assert!(matches!(
            other.parse::<VerifierKey>(),
            Err(KeyError::Algorithm(2))
        ));
        let short = format!("a+00000000+{}", BASE64.encode([1u8; 20]));
        assert!(matches!(
            short.parse::<VerifierKey>(),
            Err(KeyError::Format { .. })
        ));
        assert!(matches!(
            "no-plus-signs".parse::<VerifierKey>(),
            Err(KeyError::Format { .. })
        ));
        assert!(matches!(
            "has space+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
                .parse::<VerifierKey>(),
            Err(KeyError::Name(_))
        ));
    }

    #[test]
    fn private_key_text_round_trips_and_gives_the_same_verifier() {
        let key = SigningKey::generate("bob@example.com").unwrap();
        let again =
            SigningKey::from_private_text(&format!("{}\n", *key.to_private_text())).unwrap();
        assert_eq!(again.verifier(), key.verifier());
        assert!(
            key.to_private_text()
                .starts_with("PRIVATE+KEY+bob@example.com+")
        );
        let signature = again.sign(b"m");
        key.verifier().verify(b"m", &signature).unwrap();
    }

    #[test]
    fn private_key_text_with_a_wrong_key_id_is_refused() {
        let key = SigningKey::from_seed("a", &[7; 32]).unwrap();
        let text = key.to_private_text();
        let id = key.key_id().to_string();
        let damaged = text.replace(&id, "00000000");
        assert!(matches!(
            SigningKey::from_private_text(&damaged),
            Err(KeyError::KeyIdMismatch { .. })
        ));
    }

    #[test]
    fn private_key_is_refused_where_a_verifier_key_is_expected() {
        let key = SigningKey::from_seed("a", &[7; 32]).unwrap();
        assert!(matches!(
            key.to_private_text().parse::<VerifierKey>(),
            Err(KeyError::Format { .. })
        ));
        assert!(!format!("{key:?}").contains("PRIVATE"));
    }

    #[test]
    fn signature_of_another_key_or_message_does_not_verify() {
        let bob = SigningKey::from_seed("bob", &[1; 32]).unwrap();
        let eve = SigningKey::from_seed("bob", &[2; 32]).unwrap();
        let signature = eve.sign(b"m");
        assert_eq!(bob.verifier().verify(b"m", &signature), Err(SignatureError));
        let signature = bob.sign(b"m");
        assert_eq!(bob.verifier().verify(b"n", &signature), Err(SignatureError));
    }
}
