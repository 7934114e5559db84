//! UTC timestamps with microsecond precision, written in one fixed form.

use std::fmt;
use std::str::FromStr;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// A UTC instant with microsecond precision (what PostgreSQL keeps).
///
/// Its only text form is RFC 3339 with exactly six fractional digits and a
/// `Z`: `2026-11-23T10:00:00.123456Z`. That form is fixed width for years
/// 0000–9999, so its byte order is its time order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp {
    micros: i64,
}

/// Microseconds from 0000-01-01 to 1970-01-01 is beyond this; years outside
/// 0000..=9999 have no fixed-width text and are refused.
const MIN_YEAR: i32 = 0;
const MAX_YEAR: i32 = 9999;

impl Timestamp {
    /// The current time, truncated to microseconds.
    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        Self::from_unix_micros(micros_of(now)).unwrap_or(Timestamp { micros: 0 })
    }

    /// Builds a timestamp from microseconds since 1970-01-01T00:00:00Z.
    ///
    /// Returns `None` outside the years 0000–9999.
    pub fn from_unix_micros(micros: i64) -> Option<Self> {
        let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).ok()?;
        (MIN_YEAR..=MAX_YEAR)
            .contains(&dt.year())
            .then_some(Timestamp { micros })
    }

    /// Microseconds since 1970-01-01T00:00:00Z.
    pub fn unix_micros(&self) -> i64 {
        self.micros
    }

    /// This instant plus a number of seconds (saturating at the year 9999).
    pub fn plus_seconds(&self, seconds: u64) -> Self {
        let micros = i64::try_from(seconds)
            .ok()
            .and_then(|s| s.checked_mul(1_000_000))
            .and_then(|d| self.micros.checked_add(d));
        micros
            .and_then(Self::from_unix_micros)
            .unwrap_or(Timestamp::MAX)
    }

    /// 9999-12-31T23:59:59.999999Z.
    pub const MAX: Timestamp = Timestamp {
        micros: 253_402_300_799_999_999,
    };

    fn datetime(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.micros) * 1000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

fn micros_of(dt: OffsetDateTime) -> i64 {
    let micros = dt.unix_timestamp_nanos() / 1000;
    i64::try_from(micros).unwrap_or(i64::MAX)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dt = self.datetime();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.microsecond()
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

/// Why a text is not a timestamp in the one accepted form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "timestamp {text:?} is not of the form YYYY-MM-DDTHH:MM:SS.ffffffZ (UTC, six fractional digits)"
)]
pub struct TimestampParseError {
    /// The text that was refused.
    pub text: String,
}

impl FromStr for Timestamp {
    type Err = TimestampParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || TimestampParseError { text: s.to_owned() };
        let b = s.as_bytes();
        if b.len() != 27
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
            || b[19] != b'.'
            || b[26] != b'Z'
        {
            return Err(err());
        }
        let num = |range: std::ops::Range<usize>| -> Result<u32, TimestampParseError> {
            let digits = &b[range];
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(err());
            }
            Ok(digits
                .iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
        };
        let year = i32::try_from(num(0..4)?).map_err(|_| err())?;
        let month =
            Month::try_from(u8::try_from(num(5..7)?).map_err(|_| err())?).map_err(|_| err())?;
        let day = u8::try_from(num(8..10)?).map_err(|_| err())?;
        let hour = u8::try_from(num(11..13)?).map_err(|_| err())?;
        let minute = u8::try_from(num(14..16)?).map_err(|_| err())?;
        let second = u8::try_from(num(17..19)?).map_err(|_| err())?;
        let micro = num(20..26)?;
        let date = Date::from_calendar_date(year, month, day).map_err(|_| err())?;
        let time = Time::from_hms_micro(hour, minute, second, micro).map_err(|_| err())?;
        let dt = PrimitiveDateTime::new(date, time).assume_offset(UtcOffset::UTC);
        Ok(Timestamp {
            micros: micros_of(dt),
        })
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_with_six_digits() {
        let t: Timestamp = "2026-11-23T10:00:00.123456Z".parse().unwrap();
        assert_eq!(t.to_string(), "2026-11-23T10:00:00.123456Z");
        let now = Timestamp::now();
        assert_eq!(now.to_string().parse::<Timestamp>().unwrap(), now);
    }

    #[test]
    fn refuses_other_forms() {
        for bad in [
            "2026-11-23T10:00:00Z",
            "2026-11-23T10:00:00.123Z",
            "2026-11-23T10:00:00.123456+00:00",
            "2026-13-23T10:00:00.123456Z",
            "2026-02-30T10:00:00.123456Z",
            "2026-11-23 10:00:00.123456Z",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad}");
        }
    }

    #[test]
    fn text_order_is_time_order() {
        let a: Timestamp = "0999-01-01T00:00:00.000000Z".parse().unwrap();
        let b: Timestamp = "2026-01-01T00:00:00.000001Z".parse().unwrap();
        assert!(a < b && a.to_string() < b.to_string());
        assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59.999999Z");
    }
}
