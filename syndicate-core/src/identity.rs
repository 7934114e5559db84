//! Identities as people mean them.
//!
//! Approver and requester ids are compared in one normal form: Unicode NFC,
//! then full case folding (Unicode `CaseFolding.txt`, statuses C and F), so
//! `Bob@Example.com` and `bob@example.com` are one identity, as are a
//! precomposed `é` and `e` followed by a combining acute accent.
//!
//! Some ids are refused outright, whoever presents them:
//! - empty ids, ids longer than [`MAX_ID_BYTES`], ids with a leading or
//!   trailing space;
//! - any character that is invisible or rewrites how text around it is
//!   shown: controls (`Cc`), format characters (`Cf`, which holds the
//!   bidirectional controls and zero-width joiners), line and paragraph
//!   separators, whitespace other than U+0020, private-use and unassigned
//!   code points, and every `Default_Ignorable_Code_Point`.
//!
//! A person may not claim an identity the gate uses for itself: ids that
//! start with `policy:` (policy approvals and denials) and the gate's own
//! operator ids ([`SYSTEM_IDS`] and the configured operator) are reserved.

use std::borrow::Cow;

use icu_casemap::CaseMapper;
use icu_normalizer::ComposingNormalizer;
use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory, WhiteSpace};
use icu_properties::{CodePointMapData, CodePointSetData};

/// The longest id accepted, in UTF-8 bytes.
pub const MAX_ID_BYTES: usize = 256;

/// The prefix of the ids of policy rules (`policy:<rule>`).
pub const POLICY_PREFIX: &str = "policy:";

/// Ids the gate and system components use; no person may claim them.
pub const SYSTEM_IDS: &[&str] = &["gate", "system", "syndicate"];

/// Why an id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The id is empty.
    #[error("an identity may not be empty")]
    Empty,
    /// The id is too long.
    #[error("an identity may be at most {MAX_ID_BYTES} bytes of UTF-8, this one is {0}")]
    TooLong(usize),
    /// The id starts or ends with a space.
    #[error("an identity may not start or end with a space")]
    Padded,
    /// The id holds a character that is invisible or changes how text is
    /// shown.
    #[error(
        "an identity may not contain {character} (at byte {at}): controls, format, bidi and \
         invisible characters are refused"
    )]
    Forbidden {
        /// The character, as `U+XXXX`.
        character: String,
        /// Its byte offset.
        at: usize,
    },
    /// The id is reserved for the gate or a policy.
    #[error("{0:?} is reserved for the gate and its policies; a person cannot use it")]
    Reserved(String),
}

/// Checks that an id holds only visible, assigned characters and is of a
/// sane length (see the [module docs](self)).
///
/// # Errors
/// [`IdentityError`] saying what is wrong.
pub fn check(id: &str) -> Result<(), IdentityError> {
    if id.is_empty() {
        return Err(IdentityError::Empty);
    }
    if id.len() > MAX_ID_BYTES {
        return Err(IdentityError::TooLong(id.len()));
    }
    if id.starts_with(' ') || id.ends_with(' ') {
        return Err(IdentityError::Padded);
    }
    let category = CodePointMapData::<GeneralCategory>::new();
    let ignorable = CodePointSetData::new::<DefaultIgnorableCodePoint>();
    let white = CodePointSetData::new::<WhiteSpace>();
    for (at, c) in id.char_indices() {
        let forbidden = matches!(
            category.get(c),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
                | GeneralCategory::PrivateUse
                | GeneralCategory::Surrogate
                | GeneralCategory::Unassigned
        ) || ignorable.contains(c)
            || (c != ' ' && white.contains(c));
        if forbidden {
            return Err(IdentityError::Forbidden {
                character: format!("U+{:04X}", u32::from(c)),
                at,
            });
        }
    }
    Ok(())
}

/// The normal form ids are compared in: NFC, then full case folding, then
/// NFC again (folding can leave a string unnormalized).
///
/// # Errors
/// As [`check`].
pub fn normalize(id: &str) -> Result<String, IdentityError> {
    check(id)?;
    Ok(fold(id).into_owned())
}

/// NFC + full case fold + NFC of any string, without checking it.
pub(crate) fn fold(id: &str) -> Cow<'_, str> {
    let nfc = ComposingNormalizer::new_nfc();
    let composed = nfc.normalize(id);
    let folded = CaseMapper::new().fold_string(&composed).into_owned();
    let again = nfc.normalize(&folded).into_owned();
    if again == id {
        Cow::Borrowed(id)
    } else {
        Cow::Owned(again)
    }
}

/// Whether an id is reserved for the gate or a policy: it starts with
/// `policy:`, or its normal form is one of [`SYSTEM_IDS`] or `operator`'s.
pub fn is_reserved(id: &str, operator: &str) -> bool {
    let key = fold(id);
    key.starts_with(POLICY_PREFIX) || SYSTEM_IDS.iter().any(|s| *s == key) || fold(operator) == key
}

/// Normalizes the id a person presents (an approver, a denier, a
/// requester): as [`normalize`], and refused when reserved.
///
/// # Errors
/// As [`normalize`], and [`IdentityError::Reserved`].
pub fn person(id: &str, operator: &str) -> Result<String, IdentityError> {
    let key = normalize(id)?;
    if is_reserved(id, operator) {
        return Err(IdentityError::Reserved(id.to_owned()));
    }
    Ok(key)
}

/// Whether two ids are one identity (both compared in normal form, without
/// checking them).
pub fn same(a: &str, b: &str) -> bool {
    a == b || fold(a) == fold(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_composition_are_one_identity() {
        assert!(same("Bob@Example.COM", "bob@example.com"));
        assert!(same("Ren\u{e9}e", "RENE\u{301}E"));
        assert!(same("stra\u{df}e", "STRASSE"));
        assert!(!same("bob@example.com", "rob@example.com"));
        assert_eq!(normalize("Bob").unwrap(), "bob");
    }

    #[test]
    fn invisible_and_bidi_characters_are_refused() {
        for bad in [
            "bob\u{200b}",
            "\u{202e}moc.elpmaxe@bob",
            "bob\u{0}",
            "bo\u{7}b",
            "bob\u{2028}x",
            "bob\u{00a0}x",
            "bob\u{feff}",
            "bob\u{e000}",
            "bob\u{2066}x",
            "bob\u{115f}",
        ] {
            assert!(
                matches!(check(bad), Err(IdentityError::Forbidden { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(check(""), Err(IdentityError::Empty));
        assert_eq!(check(" bob"), Err(IdentityError::Padded));
        assert_eq!(check("bob "), Err(IdentityError::Padded));
        assert!(check("Bob Smith").is_ok());
        assert_eq!(check(&"b".repeat(257)), Err(IdentityError::TooLong(257)));
        assert!(check(&"b".repeat(256)).is_ok());
    }

    #[test]
    fn reserved_ids_cannot_be_claimed_by_a_person() {
        for reserved in ["policy:deploys", "POLICY:x", "gate", "Gate", "SYSTEM"] {
            assert!(
                matches!(person(reserved, "gate"), Err(IdentityError::Reserved(_))),
                "{reserved}"
            );
        }
        assert!(matches!(
            person("Ops-Bot", "ops-bot"),
            Err(IdentityError::Reserved(_))
        ));
        assert_eq!(person("Bob", "gate").unwrap(), "bob");
    }
}
