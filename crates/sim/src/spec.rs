//! Fidelity to Stripe's published OpenAPI description.
//!
//! The simulator is only useful if it accepts what Stripe accepts and rejects what Stripe
//! rejects, and answers in shapes Stripe would. This module checks both directions against
//! a trimmed copy of the description (`fixtures/stripe/openapi-subset.json`, made by
//! `scripts/trim_openapi.py` from `openapi-spec3.2023-09-13.json`; only the served
//! operations and the schemas they reach, to a fixed depth; a cut `$ref` reads as "any").
//!
//! - [`StripeSpec::check_request`]: a parsed form body or query string (all leaves are
//!   strings) against an operation's `requestBody` schema or query parameters: unknown
//!   parameters (also nested, as Stripe does), required ones, enums, integers, booleans,
//!   lengths. The first problem is returned, worded like Stripe's own 400s.
//! - [`StripeSpec::check_response`] / [`StripeSpec::check_object`]: a JSON answer against a
//!   response schema: required fields, types, nullability, enums. All problems are listed.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

const SUBSET: &str = include_str!("../fixtures/stripe/openapi-subset.json");

/// A request parameter that the OpenAPI description does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("Received unknown parameter: {0}")]
    UnknownParameter(String),
    #[error("Missing required param: {0}.")]
    Missing(String),
    #[error("Invalid {param}: must be one of {allowed}")]
    Enum { param: String, allowed: String },
    #[error("Invalid {expected}: {value:?} (parameter {param})")]
    Type {
        param: String,
        expected: &'static str,
        value: String,
    },
    #[error("Invalid {param}: must be at most {max} characters")]
    TooLong { param: String, max: u64 },
}

impl Violation {
    /// The parameter in Stripe's bracket notation, as the error's `param` field.
    pub fn param(&self) -> &str {
        match self {
            Violation::UnknownParameter(p) | Violation::Missing(p) => p,
            Violation::Enum { param, .. }
            | Violation::Type { param, .. }
            | Violation::TooLong { param, .. } => param,
        }
    }

    /// Stripe's error code for this kind of problem.
    pub fn code(&self) -> &'static str {
        match self {
            Violation::UnknownParameter(_) => "parameter_unknown",
            Violation::Missing(_) => "parameter_missing",
            _ => "parameter_invalid_string",
        }
    }
}

/// The subset itself could not be read (a build problem, not an input problem).
#[derive(Debug, thiserror::Error)]
#[error("the bundled OpenAPI subset is not valid JSON: {0}")]
pub struct SpecError(#[source] serde_json::Error);

/// The trimmed Stripe OpenAPI description.
#[derive(Debug)]
pub struct StripeSpec {
    paths: Value,
    schemas: Value,
}

static SPEC: OnceLock<Result<StripeSpec, String>> = OnceLock::new();

/// The bundled subset, parsed once.
pub fn stripe_spec() -> Result<&'static StripeSpec, String> {
    SPEC.get_or_init(|| StripeSpec::parse(SUBSET).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

impl StripeSpec {
    /// Parse a subset (the format `scripts/trim_openapi.py` writes).
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        let mut doc: Value = serde_json::from_str(text).map_err(SpecError)?;
        Ok(StripeSpec {
            paths: doc["paths"].take(),
            schemas: doc["schemas"].take(),
        })
    }

    fn operation(&self, method: &str, template: &str) -> Option<&Value> {
        self.paths.get(template)?.get(method.to_ascii_lowercase())
    }

    /// Whether the subset knows this operation (`template` like `/v1/refunds/{refund}`).
    pub fn serves(&self, method: &str, template: &str) -> bool {
        self.operation(method, template).is_some()
    }

    /// Check the parameters of a request (form body for POST, query for GET).
    /// Operations the subset does not describe pass.
    pub fn check_request(
        &self,
        method: &str,
        template: &str,
        params: &Value,
    ) -> Result<(), Violation> {
        let Some(op) = self.operation(method, template) else {
            return Ok(());
        };
        let schema = match op.get("requestBody") {
            Some(body) if method.eq_ignore_ascii_case("POST") => body.clone(),
            _ => query_schema(op),
        };
        let empty = Value::Object(Map::new());
        let params = if params.is_null() { &empty } else { params };
        self.check_form(&schema, params, "")
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> Option<&'a Value> {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => self.schemas.get(r.rsplit('/').next().unwrap_or(r)),
            None => Some(schema),
        }
    }

    fn check_form(&self, schema: &Value, value: &Value, param: &str) -> Result<(), Violation> {
        let Some(schema) = self.resolve(schema) else {
            return Ok(());
        };
        if let Some(branches) = schema.get("anyOf").and_then(Value::as_array) {
            let mut first = None;
            for branch in branches {
                match self.check_form(branch, value, param) {
                    Ok(()) => return Ok(()),
                    Err(e) => {
                        let kind_matches = self
                            .resolve(branch)
                            .is_some_and(|b| kind_of(b) == form_kind(value));
                        if kind_matches || first.is_none() {
                            first = Some(e);
                        }
                    }
                }
            }
            return first.map_or(Ok(()), Err);
        }
        let text = value.as_str();
        let type_err = |expected: &'static str| Violation::Type {
            param: param.to_string(),
            expected,
            value: text.unwrap_or("").to_string(),
        };
        match kind_of(schema) {
            "object" => {
                let Value::Object(map) = value else {
                    return Err(type_err("object"));
                };
                let props = schema.get("properties").and_then(Value::as_object);
                let extra = schema.get("additionalProperties");
                for (key, child) in map {
                    let name = if param.is_empty() {
                        key.clone()
                    } else {
                        format!("{param}[{key}]")
                    };
                    match (props.and_then(|p| p.get(key)), extra) {
                        (Some(s), _) => self.check_form(s, child, &name)?,
                        (None, Some(Value::Bool(true))) => {}
                        (None, Some(s @ Value::Object(_))) => self.check_form(s, child, &name)?,
                        // Stripe rejects unknown keys at every level, not only the top.
                        (None, _) if props.is_some() || extra == Some(&Value::Bool(false)) => {
                            return Err(Violation::UnknownParameter(name))
                        }
                        (None, _) => {}
                    }
                }
                for req in schema
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let Some(req) = req.as_str() else { continue };
                    if !map.contains_key(req) {
                        let name = if param.is_empty() {
                            req.to_string()
                        } else {
                            format!("{param}[{req}]")
                        };
                        return Err(Violation::Missing(name));
                    }
                }
                Ok(())
            }
            "array" => {
                let Value::Array(items) = value else {
                    return Err(type_err("array"));
                };
                let item_schema = schema.get("items").cloned().unwrap_or(json!({}));
                for (i, item) in items.iter().enumerate() {
                    self.check_form(&item_schema, item, &format!("{param}[{i}]"))?;
                }
                Ok(())
            }
            "string" => {
                let Some(s) = text else {
                    return Err(type_err("string"));
                };
                if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
                    if !allowed.iter().any(|a| a.as_str() == Some(s)) {
                        let names: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
                        return Err(Violation::Enum {
                            param: param.to_string(),
                            allowed: one_of(&names),
                        });
                    }
                }
                if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
                    if s.chars().count() as u64 > max {
                        return Err(Violation::TooLong {
                            param: param.to_string(),
                            max,
                        });
                    }
                }
                Ok(())
            }
            "integer" => match text.map(|s| s.parse::<i64>()) {
                Some(Ok(_)) => Ok(()),
                _ => Err(type_err("integer")),
            },
            "number" => match text.map(|s| s.parse::<f64>()) {
                Some(Ok(n)) if n.is_finite() => Ok(()),
                _ => Err(type_err("number")),
            },
            "boolean" => match text {
                Some("true" | "false") => Ok(()),
                _ => Err(type_err("boolean")),
            },
            _ => Ok(()),
        }
    }

    /// Check a 200 answer of an operation against its response schema.
    pub fn check_response(
        &self,
        method: &str,
        template: &str,
        body: &Value,
    ) -> Result<(), Vec<String>> {
        let Some(schema) = self
            .operation(method, template)
            .and_then(|op| op.pointer("/responses/200/content/application~1json/schema"))
        else {
            return Err(vec![format!(
                "{method} {template} is not in the OpenAPI subset"
            )]);
        };
        let mut problems = Vec::new();
        self.check_json(schema, body, "$", &mut problems);
        self.check_embedded(body, &mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Check a JSON object against the component schema of its `object` field
    /// (`checkout.session`, `refund`, `charge`, `event`...), plus an event's `data.object`.
    pub fn check_object(&self, value: &Value) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        match value.get("object").and_then(Value::as_str) {
            Some(name) if self.schemas.get(name).is_some() => {
                self.check_json(&json!({"$ref": name}), value, "$", &mut problems)
            }
            other => problems.push(format!("$.object: no schema for {other:?}")),
        }
        self.check_embedded(value, &mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Events carry their object as free-form JSON in the schema; check it by its own type.
    fn check_embedded(&self, value: &Value, problems: &mut Vec<String>) {
        let events: Vec<&Value> = match value.get("object").and_then(Value::as_str) {
            Some("event") => vec![value],
            // Lists of other objects (refunds...) carry no embedded free-form object.
            Some("list") => value["data"]
                .as_array()
                .map(|d| d.iter().filter(|item| item["object"] == "event").collect())
                .unwrap_or_default(),
            _ => vec![],
        };
        for event in events {
            let object = &event["data"]["object"];
            match object.get("object").and_then(Value::as_str) {
                Some(name) if self.schemas.get(name).is_some() => {
                    self.check_json(&json!({"$ref": name}), object, "$.data.object", problems)
                }
                other => problems.push(format!("$.data.object: no schema for {other:?}")),
            }
        }
    }

    fn check_json(&self, schema: &Value, value: &Value, path: &str, problems: &mut Vec<String>) {
        let schema = match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => match self.schemas.get(r.rsplit('/').next().unwrap_or(r)) {
                Some(s) => s,
                None if r.contains('/') => return,
                None => {
                    problems.push(format!("{path}: unknown schema {r}"));
                    return;
                }
            },
            None => schema,
        };
        if value.is_null() {
            if schema.get("nullable") != Some(&Value::Bool(true)) && !schema_is_any(schema) {
                problems.push(format!("{path}: null but not nullable"));
            }
            return;
        }
        if let Some(branches) = schema.get("anyOf").and_then(Value::as_array) {
            let mut best: Option<Vec<String>> = None;
            for branch in branches {
                let mut attempt = Vec::new();
                self.check_json(branch, value, path, &mut attempt);
                if attempt.is_empty() {
                    return;
                }
                if best.as_ref().is_none_or(|b| attempt.len() < b.len()) {
                    best = Some(attempt);
                }
            }
            problems.extend(best.unwrap_or_default());
            return;
        }
        match kind_of(schema) {
            "object" => {
                let Some(map) = value.as_object() else {
                    problems.push(format!("{path}: expected an object"));
                    return;
                };
                for req in schema
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(req) = req.as_str() {
                        if !map.contains_key(req) {
                            problems.push(format!("{path}.{req}: required but missing"));
                        }
                    }
                }
                let props = schema.get("properties").and_then(Value::as_object);
                for (key, child) in map {
                    match (
                        props.and_then(|p| p.get(key)),
                        schema.get("additionalProperties"),
                    ) {
                        (Some(s), _) => {
                            self.check_json(s, child, &format!("{path}.{key}"), problems)
                        }
                        (None, Some(s @ Value::Object(_))) => {
                            self.check_json(s, child, &format!("{path}.{key}"), problems)
                        }
                        _ => {}
                    }
                }
            }
            "array" => match value.as_array() {
                Some(items) => {
                    let item_schema = schema.get("items").cloned().unwrap_or(json!({}));
                    for (i, item) in items.iter().enumerate() {
                        self.check_json(&item_schema, item, &format!("{path}[{i}]"), problems);
                    }
                }
                None => problems.push(format!("{path}: expected an array")),
            },
            "string" => match value.as_str() {
                Some(s) => {
                    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
                        if !allowed.iter().any(|a| a.as_str() == Some(s)) {
                            problems.push(format!("{path}: {s:?} is not one of {allowed:?}"));
                        }
                    }
                }
                None => problems.push(format!("{path}: expected a string, got {value}")),
            },
            "integer" if !(value.is_i64() || value.is_u64()) => {
                problems.push(format!("{path}: expected an integer, got {value}"))
            }
            "number" if !value.is_number() => {
                problems.push(format!("{path}: expected a number, got {value}"))
            }
            "boolean" if !value.is_boolean() => {
                problems.push(format!("{path}: expected a boolean, got {value}"))
            }
            _ => {}
        }
    }
}

fn schema_is_any(schema: &Value) -> bool {
    schema.as_object().is_some_and(|m| m.is_empty())
}

fn kind_of(schema: &Value) -> &str {
    match schema.get("type").and_then(Value::as_str) {
        Some(t) => t,
        None if schema.get("properties").is_some() => "object",
        None => "",
    }
}

fn form_kind(value: &Value) -> &'static str {
    match value {
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        _ => "string",
    }
}

fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{}, or {last}", init.join(", ")),
    }
}

/// The query parameters of an operation as one closed object schema.
fn query_schema(op: &Value) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for p in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if p.get("in").and_then(Value::as_str) != Some("query") {
            continue;
        }
        let Some(name) = p.get("name").and_then(Value::as_str) else {
            continue;
        };
        props.insert(
            name.to_string(),
            p.get("schema").cloned().unwrap_or(json!({})),
        );
        if p.get("required") == Some(&Value::Bool(true)) {
            required.push(Value::String(name.to_string()));
        }
    }
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form;

    fn check(method: &str, template: &str, body: &str) -> Result<(), Violation> {
        let params = form::parse(body.as_bytes()).unwrap();
        stripe_spec()
            .unwrap()
            .check_request(method, template, &params)
    }

    #[test]
    fn refund_reason_enum_is_enforced() {
        assert!(check(
            "POST",
            "/v1/refunds",
            "payment_intent=pi_1&amount=100&reason=requested_by_customer&metadata[booking_id]=b"
        )
        .is_ok());
        let err = check(
            "POST",
            "/v1/refunds",
            "payment_intent=pi_1&reason=changed_mind",
        )
        .unwrap_err();
        assert_eq!(err.param(), "reason");
        assert_eq!(
            err.to_string(),
            "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer"
        );
    }

    #[test]
    fn nested_unknown_parameters_and_bad_integers_are_rejected() {
        let err = check(
            "POST",
            "/v1/checkout/sessions",
            "success_url=https://x&line_items[0][pricedata][currency]=eur",
        )
        .unwrap_err();
        assert_eq!(
            err,
            Violation::UnknownParameter("line_items[0][pricedata]".into())
        );
        let err = check("POST", "/v1/refunds", "payment_intent=pi_1&amount=ten").unwrap_err();
        assert_eq!(err.param(), "amount");
        let err = check("POST", "/v1/products", "description=x").unwrap_err();
        assert_eq!(err, Violation::Missing("name".into()));
    }

    #[test]
    fn metadata_may_be_emptied_with_an_empty_string() {
        assert!(check("POST", "/v1/refunds", "payment_intent=pi_1&metadata=").is_ok());
    }

    #[test]
    fn query_parameters_are_checked_for_list_events() {
        assert!(check(
            "GET",
            "/v1/events",
            "created[gte]=5&types[]=charge.refunded&limit=3&starting_after=evt_1"
        )
        .is_ok());
        assert!(check("GET", "/v1/events", "created[since]=5").is_err());
        assert!(check("GET", "/v1/events", "bogus=1").is_err());
    }
}
