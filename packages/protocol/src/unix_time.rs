//! Times in the exchange's requests and records are unix seconds (`u64`), like the signed
//! `issued_at` and `expires_at`: one format for clients. State written before this change
//! kept block times as a `Timestamp` (a string of nanoseconds); these deserializers read
//! both, so a migrated contract still reads its old entries (they are written back as
//! seconds).

use serde::de::{Deserializer, Error, Visitor};
use std::fmt;

struct Seconds;

impl Visitor<'_> for Seconds {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("unix seconds, or a Timestamp (nanoseconds as a string)")
    }

    fn visit_u64<E: Error>(self, seconds: u64) -> Result<u64, E> {
        Ok(seconds)
    }

    fn visit_i64<E: Error>(self, seconds: i64) -> Result<u64, E> {
        u64::try_from(seconds).map_err(|_| E::custom("a time before 1970"))
    }

    fn visit_str<E: Error>(self, nanos: &str) -> Result<u64, E> {
        nanos
            .parse::<u64>()
            .map(|n| n / 1_000_000_000)
            .map_err(|_| E::custom("a Timestamp is a string of nanoseconds"))
    }
}

/// Unix seconds, or a legacy `Timestamp`.
pub fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(Seconds)
}

struct OptionalSeconds;

impl<'de> Visitor<'de> for OptionalSeconds {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("null, unix seconds, or a Timestamp (nanoseconds as a string)")
    }

    fn visit_none<E: Error>(self) -> Result<Option<u64>, E> {
        Ok(None)
    }

    fn visit_unit<E: Error>(self) -> Result<Option<u64>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
        seconds(d).map(Some)
    }
}

/// Optional unix seconds, or a legacy `Timestamp`.
pub fn optional_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    d.deserialize_option(OptionalSeconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::{from_json, Timestamp};
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct At {
        #[serde(deserialize_with = "seconds")]
        at: u64,
        #[serde(default, deserialize_with = "optional_seconds")]
        last: Option<u64>,
    }

    #[test]
    fn reads_seconds_and_legacy_timestamps() {
        let at: At = from_json(br#"{"at":1700000000,"last":1700000001}"#).unwrap();
        assert_eq!((at.at, at.last), (1_700_000_000, Some(1_700_000_001)));
        let legacy = Timestamp::from_nanos(1_700_000_000_123_456_789);
        let json = format!(
            r#"{{"at":"{}","last":"{}"}}"#,
            legacy.nanos(),
            legacy.nanos()
        );
        let at: At = from_json(json.as_bytes()).unwrap();
        assert_eq!((at.at, at.last), (legacy.seconds(), Some(legacy.seconds())));
        let at: At = from_json(br#"{"at":5,"last":null}"#).unwrap();
        assert_eq!(at.last, None);
        let at: At = from_json(br#"{"at":5}"#).unwrap();
        assert_eq!(at.last, None);
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            r#"{"at":"soon"}"#,
            r#"{"at":-1}"#,
            r#"{"at":true}"#,
            r#"{"at":[1]}"#,
        ] {
            assert!(from_json::<At>(bad.as_bytes()).is_err(), "{bad} accepted");
        }
    }
}
