//! The canonical writer: [`Value`] to RFC 8785 bytes.

use serde_json::{Number, Value};

use super::CanonError;
use super::number::{MAX_EXACT_INTEGER, check_big_integer, u64_digits, write_integer};

/// For each byte, how a string must write it: 0 as itself, `u` as `\u00xx`,
/// any other value as a backslash followed by that byte.
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0A] = b'n';
    table[0x0C] = b'f';
    table[0x0D] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends the canonical bytes of `value`, nesting at most `max_depth`
/// arrays and objects.
pub(crate) fn write(value: &Value, max_depth: usize, out: &mut Vec<u8>) -> Result<(), CanonError> {
    let start = out.len();
    let result = write_value(value, 0, max_depth, out);
    if result.is_err() {
        // Leave no partial output behind.
        out.truncate(start);
    }
    result
}

fn write_value(
    value: &Value,
    depth: usize,
    max_depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), CanonError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_json_number(n, out)?,
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            if depth >= max_depth {
                return Err(CanonError::ValueTooDeep {
                    limit: max_depth,
                    path: String::new(),
                });
            }
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, depth + 1, max_depth, out)
                    .map_err(|e| e.within(&i.to_string()))?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            if depth >= max_depth {
                return Err(CanonError::ValueTooDeep {
                    limit: max_depth,
                    path: String::new(),
                });
            }
            out.push(b'{');
            if utf16_order_differs(map.keys().map(String::as_str)) {
                let mut members: Vec<(&String, &Value)> = map.iter().collect();
                members.sort_unstable_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
                write_members(members.into_iter(), depth, max_depth, out)?;
            } else {
                write_members(map.iter(), depth, max_depth, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_members<'v>(
    members: impl Iterator<Item = (&'v String, &'v Value)>,
    depth: usize,
    max_depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), CanonError> {
    for (i, (key, value)) in members.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        write_value(value, depth + 1, max_depth, out).map_err(|e| e.within(key))?;
    }
    Ok(())
}

/// Whether byte order of `keys` (by UTF-8 bytes, that is by code point)
/// could differ from RFC 8785's order (by UTF-16 code units).
///
/// The two orders disagree only between a supplementary character (UTF-16
/// surrogates D800-DFFF, UTF-8 lead byte F0-F4) and a character in
/// U+E000-U+FFFF (UTF-8 lead byte EE or EF): code point order puts the
/// supplementary one last, UTF-16 order first. Without keys holding both
/// kinds the map is already in canonical order.
pub(super) fn utf16_order_differs<'k>(keys: impl Iterator<Item = &'k str>) -> bool {
    let mut high_bmp = false;
    let mut supplementary = false;
    for key in keys {
        for &b in key.as_bytes() {
            if b >= 0xF0 {
                supplementary = true;
            } else if b >= 0xEE {
                high_bmp = true;
            }
        }
        if high_bmp && supplementary {
            return true;
        }
    }
    false
}

/// Writes a string as RFC 8785 section 3.2.2.2 says: `\"`, `\\`, `\b`,
/// `\f`, `\n`, `\r`, `\t`, other controls as `\u00xx` (lower-case hex),
/// everything else as itself.
pub(crate) fn write_string(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = ESCAPE[usize::from(b)];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[run..i]);
        if escape == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xF)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', escape]);
        }
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// Writes a number: integers within ±2^53 as themselves, larger integers
/// only if they already are the rendering of their nearest double, doubles
/// by the ECMAScript rules.
pub(super) fn write_json_number(n: &Number, out: &mut Vec<u8>) -> Result<(), CanonError> {
    if let Some(u) = n.as_u64() {
        return write_exact_integer(false, u, out);
    }
    if let Some(i) = n.as_i64() {
        return write_exact_integer(i < 0, i.unsigned_abs(), out);
    }
    match n.as_f64() {
        Some(f) => super::number::write_number(f, out),
        None => Err(CanonError::NonFiniteNumber {
            path: String::new(),
        }),
    }
}

fn write_exact_integer(
    negative: bool,
    magnitude: u64,
    out: &mut Vec<u8>,
) -> Result<(), CanonError> {
    if magnitude <= MAX_EXACT_INTEGER {
        write_integer(negative && magnitude != 0, magnitude, out);
        return Ok(());
    }
    let mut buf = [0u8; 21];
    let digits_start = {
        let mut digits = [0u8; 20];
        let first = u64_digits(magnitude, &mut digits);
        let len = 20 - first;
        let start = 21 - len - usize::from(negative);
        buf[21 - len..].copy_from_slice(&digits[first..]);
        if negative {
            buf[start] = b'-';
        }
        start
    };
    let text = std::str::from_utf8(&buf[digits_start..]).unwrap_or_default();
    // `as` rounds to the nearest double, ties to even.
    let nearest = if negative {
        -(magnitude as f64)
    } else {
        magnitude as f64
    };
    match check_big_integer(text, nearest) {
        Ok(()) => {
            out.extend_from_slice(text.as_bytes());
            Ok(())
        }
        Err(rendering) => Err(CanonError::InexactIntegerValue {
            value: text.to_owned(),
            rendering,
            path: String::new(),
        }),
    }
}
