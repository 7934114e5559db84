//! ECMAScript number rendering (RFC 8785 section 3.2.2.3) and the integer rule.

use super::CanonError;

/// 2^53: integers up to this magnitude are exact in a double and render as
/// their own decimal digits.
pub(crate) const MAX_EXACT_INTEGER: u64 = 1 << 53;

/// Renders a finite double the way ECMAScript's `Number.prototype.toString`
/// does, which is what RFC 8785 prescribes: the shortest digits that round
/// trip, plain notation for magnitudes in [1e-6, 1e21), exponent notation
/// (`1e+21`, `1e-7`) outside it, and `0` for both zeros.
///
/// ```
/// use syndicate_core::jcs::format_number;
///
/// assert_eq!(format_number(1e21)?, "1e+21");
/// assert_eq!(format_number(-0.0)?, "0");
/// assert_eq!(format_number(333333333.33333329)?, "333333333.3333333");
/// assert!(format_number(f64::NAN).is_err());
/// # Ok::<(), syndicate_core::jcs::CanonError>(())
/// ```
///
/// # Errors
/// [`CanonError::NonFiniteNumber`] for NaN and the infinities.
pub fn format_number(f: f64) -> Result<String, CanonError> {
    let mut out = Vec::with_capacity(24);
    write_number(f, &mut out)?;
    // The rendering is ASCII.
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// Appends the rendering of [`format_number`] to `out` without allocating.
///
/// # Errors
/// [`CanonError::NonFiniteNumber`] for NaN and the infinities; nothing is
/// appended then.
pub fn write_number(f: f64, out: &mut Vec<u8>) -> Result<(), CanonError> {
    if !f.is_finite() {
        return Err(CanonError::NonFiniteNumber {
            path: String::new(),
        });
    }
    let mut buffer = ryu_js::Buffer::new();
    out.extend_from_slice(buffer.format_finite(f).as_bytes());
    Ok(())
}

/// Decimal digits of an unsigned integer, written right-aligned into `buf`;
/// returns the index of the first digit.
pub(crate) fn u64_digits(mut n: u64, buf: &mut [u8; 20]) -> usize {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return i;
        }
    }
}

/// Appends the decimal digits of `n`, with a `-` when `negative`.
pub(crate) fn write_integer(negative: bool, magnitude: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let start = u64_digits(magnitude, &mut buf);
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[start..]);
}

/// The integer rule for magnitudes above 2^53: `text` (the integer's
/// decimal digits with an optional leading `-`) is kept only if it already
/// is the rendering of `nearest`, its nearest double. Returns the rendering
/// when it differs.
pub(crate) fn check_big_integer(text: &str, nearest: f64) -> Result<(), String> {
    let mut buffer = ryu_js::Buffer::new();
    let rendering = buffer.format_finite(nearest);
    if rendering == text {
        Ok(())
    } else {
        Err(rendering.to_owned())
    }
}
