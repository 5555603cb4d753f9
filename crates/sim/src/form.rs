//! Stripe's form encoding: `application/x-www-form-urlencoded` with bracket notation
//! (`line_items[0][price_data][currency]=eur`, `expand[]=x`, `metadata[k]=v`).
//!
//! Parsing turns a body into a JSON tree whose leaves are all strings (the wire has no
//! types; the OpenAPI check in [`crate::spec`] decides what a string must look like).
//! Objects whose keys are all indices become arrays. Encoding is the inverse, for the
//! scripted client and tests that play the product.

use serde_json::{Map, Value};

/// A body or query string that is not valid bracket notation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormError {
    #[error("invalid parameter name {0:?}: unbalanced brackets")]
    Brackets(String),
    #[error("parameter {0:?} is given both as a value and as a nested object")]
    Conflict(String),
}

/// Parse a form-encoded body (or query string) into a JSON tree of strings.
pub fn parse(input: &[u8]) -> Result<Value, FormError> {
    let mut root = Value::Object(Map::new());
    for (key, value) in form_urlencoded::parse(input) {
        let segments = split_key(&key)?;
        insert(&mut root, &segments, value.into_owned(), &key)?;
    }
    Ok(arrays(root))
}

fn split_key(key: &str) -> Result<Vec<String>, FormError> {
    let bad = || FormError::Brackets(key.to_string());
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if head.is_empty() || head.contains(']') {
        return Err(bad());
    }
    let mut segments = vec![head.to_string()];
    while !rest.is_empty() {
        if !rest.starts_with('[') {
            return Err(bad());
        }
        let close = rest.find(']').ok_or_else(bad)?;
        let inner = &rest[1..close];
        if inner.contains('[') {
            return Err(bad());
        }
        segments.push(inner.to_string());
        rest = &rest[close + 1..];
    }
    Ok(segments)
}

fn insert(
    node: &mut Value,
    segments: &[String],
    value: String,
    key: &str,
) -> Result<(), FormError> {
    let conflict = || FormError::Conflict(key.to_string());
    let Value::Object(map) = node else {
        return Err(conflict());
    };
    let (first, rest) = match segments.split_first() {
        Some(split) => split,
        None => return Err(conflict()),
    };
    // `a[]=x` appends: give it the next free index.
    let name = if first.is_empty() {
        map.len().to_string()
    } else {
        first.clone()
    };
    if rest.is_empty() {
        if map.get(&name).is_some_and(Value::is_object) {
            return Err(conflict());
        }
        map.insert(name, Value::String(value));
        return Ok(());
    }
    let child = map.entry(name).or_insert_with(|| Value::Object(Map::new()));
    insert(child, rest, value, key)
}

fn arrays(node: Value) -> Value {
    match node {
        Value::Object(map) => {
            let is_array = !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok());
            let mut entries: Vec<(String, Value)> =
                map.into_iter().map(|(k, v)| (k, arrays(v))).collect();
            if is_array {
                entries.sort_by_key(|(k, _)| k.parse::<usize>().unwrap_or(usize::MAX));
                Value::Array(entries.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(entries.into_iter().collect())
            }
        }
        other => other,
    }
}

/// Encode a JSON tree as a form body in bracket notation (numbers and booleans as text,
/// `null` as the empty string, which Stripe reads as "unset").
pub fn encode(value: &Value) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    let mut pairs = Vec::new();
    flatten(value, None, &mut pairs);
    for (k, v) in pairs {
        out.append_pair(&k, &v);
    }
    out.finish()
}

fn flatten(value: &Value, prefix: Option<String>, out: &mut Vec<(String, String)>) {
    let child = |k: &str| match &prefix {
        Some(p) => format!("{p}[{k}]"),
        None => k.to_string(),
    };
    match value {
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| flatten(v, Some(child(k)), out)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| flatten(v, Some(child(&i.to_string())), out)),
        Value::String(s) => out.push((prefix.unwrap_or_default(), s.clone())),
        Value::Null => out.push((prefix.unwrap_or_default(), String::new())),
        other => out.push((prefix.unwrap_or_default(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_brackets_and_indices_become_objects_and_arrays() {
        let body = b"mode=payment&line_items[0][price_data][currency]=eur\
&line_items[0][price_data][product_data][name]=Coaching+60&line_items[0][quantity]=1\
&metadata[booking_id]=bk_1&expand[]=payment_intent&expand[]=line_items";
        let v = parse(body).unwrap();
        assert_eq!(
            v,
            json!({
                "mode": "payment",
                "line_items": [{"price_data": {"currency": "eur", "product_data": {"name": "Coaching 60"}}, "quantity": "1"}],
                "metadata": {"booking_id": "bk_1"},
                "expand": ["payment_intent", "line_items"]
            })
        );
    }

    #[test]
    fn encode_round_trips_through_parse() {
        let v = json!({"a": {"b": [{"c": "x y&z"}, {"c": "2"}]}, "n": "5"});
        assert_eq!(parse(encode(&v).as_bytes()).unwrap(), v);
    }

    #[test]
    fn unbalanced_brackets_are_rejected() {
        assert!(matches!(parse(b"a[b=1"), Err(FormError::Brackets(_))));
        assert!(matches!(parse(b"[x]=1"), Err(FormError::Brackets(_))));
        assert!(matches!(parse(b"a=1&a[b]=2"), Err(FormError::Conflict(_))));
    }
}
