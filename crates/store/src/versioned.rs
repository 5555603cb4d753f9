//! Persisted JSON (a booking's facts, an outbox effect) carries the version of its shape, so
//! a later shape can be told from this one and read by a conversion rather than a guess.
//!
//! Written as `{"v": 1, "data": ...}`. Rows written before versions existed hold the bare
//! value; they are version 0, whose shape is the same as version 1's.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// The version this build writes.
pub(crate) const CURRENT: u64 = 1;

/// `value` in its versioned envelope.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    #[derive(Serialize)]
    struct Envelope<'a, T> {
        v: u64,
        data: &'a T,
    }
    serde_json::to_string(&Envelope {
        v: CURRENT,
        data: value,
    })
}

/// Reads a value written by [`to_json`] or, unversioned, by a build before versions.
pub(crate) fn from_json<T: DeserializeOwned>(json: &str) -> Result<T, String> {
    let value: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let (version, data) = match value {
        Value::Object(mut map)
            if map.len() == 2 && map.contains_key("data") && map.contains_key("v") =>
        {
            let version = map.get("v").and_then(Value::as_u64);
            (version, map.remove("data").unwrap_or(Value::Null))
        }
        bare => (Some(0), bare),
    };
    match version {
        Some(0 | CURRENT) => serde_json::from_value(data).map_err(|e| e.to_string()),
        Some(newer) => Err(format!(
            "written in version {newer}, newer than this build reads ({CURRENT})"
        )),
        None => Err("its version is not a number".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_reads_back_and_a_newer_version_is_refused() {
        let json = to_json(&vec![1, 2]).unwrap();
        assert_eq!(json, r#"{"v":1,"data":[1,2]}"#);
        assert_eq!(from_json::<Vec<u8>>(&json).unwrap(), vec![1, 2]);
        assert_eq!(from_json::<Vec<u8>>("[3]").unwrap(), vec![3]);
        let newer = from_json::<Vec<u8>>(r#"{"v":2,"data":[1]}"#).unwrap_err();
        assert!(newer.starts_with("written in version 2"), "{newer}");
    }
}
