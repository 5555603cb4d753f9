//! Session types: what a coach sells (name, duration, price, refund policy).
//!
//! Validation lives here, pure, so the app can show every problem next to its field
//! before anything is stored.

use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money};
use crate::refund_policy::{RefundPolicy, RefundTier};

/// Longest session a coach can sell (a full day).
pub const MAX_DURATION_MINUTES: u32 = 24 * 60;
/// Longest name shown in lists and on Stripe's checkout page.
pub const MAX_NAME_CHARS: usize = 120;
/// How long a client has to pay after booking, unless the coach says otherwise.
pub const DEFAULT_PAYMENT_WINDOW_MINUTES: u32 = 24 * 60;
/// The shortest and longest time to pay: a Checkout Session made for the booking must be
/// able to expire at the deadline, and Stripe allows 30 minutes to 24 hours.
pub const MIN_PAYMENT_WINDOW_MINUTES: u32 = 30;
pub const MAX_PAYMENT_WINDOW_MINUTES: u32 = 24 * 60;

fn default_payment_window() -> u32 {
    DEFAULT_PAYMENT_WINDOW_MINUTES
}

/// A validated session type, ready to store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTypeSpec {
    pub name: String,
    pub duration_minutes: u32,
    pub price: Money,
    pub refund_policy: RefundPolicy,
    pub calendly_event_type_uri: Option<String>,
    /// How long after booking the client has to pay before the slot is released.
    #[serde(default = "default_payment_window")]
    pub payment_window_minutes: u32,
}

/// One problem with one field of the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: &'static str,
    pub message: String,
}

/// The form as typed, before validation.
#[derive(Debug, Clone, Default)]
pub struct SessionTypeInput<'a> {
    pub name: &'a str,
    pub duration_minutes: u32,
    pub price: &'a str,
    pub currency: &'a str,
    pub refund_tiers: Vec<RefundTier>,
    pub calendly_event_type_uri: Option<&'a str>,
    /// `None`: [`DEFAULT_PAYMENT_WINDOW_MINUTES`].
    pub payment_window_minutes: Option<u32>,
}

impl SessionTypeInput<'_> {
    /// Checks every field and reports all problems at once.
    pub fn validate(&self) -> Result<SessionTypeSpec, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let mut problem =
            |field: &'static str, message: String| problems.push(FieldProblem { field, message });

        let name = self.name.trim();
        if name.is_empty() {
            problem(
                "name",
                "Give the session type a name, such as \"Coaching call\".".into(),
            );
        } else if name.chars().count() > MAX_NAME_CHARS {
            problem(
                "name",
                format!("Keep the name under {MAX_NAME_CHARS} characters."),
            );
        }

        if self.duration_minutes == 0 || self.duration_minutes > MAX_DURATION_MINUTES {
            problem(
                "duration_minutes",
                format!("The duration must be between 1 and {MAX_DURATION_MINUTES} minutes."),
            );
        }

        let currency = match Currency::parse(self.currency) {
            Ok(currency) => Some(currency),
            Err(err) => {
                problem("currency", capitalise(&err.to_string()));
                None
            }
        };
        let price = currency.and_then(|currency| match Money::parse_major(self.price, currency) {
            Ok(price) if price.minor == 0 => {
                problem("price", "The price must be more than zero.".into());
                None
            }
            Ok(price) => Some(price),
            Err(err) => {
                problem("price", capitalise(&err.to_string()));
                None
            }
        });

        let policy = match RefundPolicy::new(self.refund_tiers.clone()) {
            Ok(policy) => Some(policy),
            Err(err) => {
                problem("refund_tiers", capitalise(&err.to_string()));
                None
            }
        };

        let uri = self
            .calendly_event_type_uri
            .map(str::trim)
            .filter(|uri| !uri.is_empty());
        if let Some(uri) = uri {
            if !uri.starts_with("https://") && !uri.starts_with("http://") {
                problem(
                    "calendly_event_type_uri",
                    "A Calendly event type is a URI such as https://api.calendly.com/event_types/…"
                        .into(),
                );
            }
        }

        let payment_window_minutes = self
            .payment_window_minutes
            .unwrap_or(DEFAULT_PAYMENT_WINDOW_MINUTES);
        if !(MIN_PAYMENT_WINDOW_MINUTES..=MAX_PAYMENT_WINDOW_MINUTES)
            .contains(&payment_window_minutes)
        {
            problem(
                "payment_window_minutes",
                format!(
                    "The time to pay must be between {MIN_PAYMENT_WINDOW_MINUTES} and {MAX_PAYMENT_WINDOW_MINUTES} minutes (24 hours): Stripe's checkout pages last no shorter or longer."
                ),
            );
        }

        match (price, policy) {
            (Some(price), Some(refund_policy)) if problems.is_empty() => Ok(SessionTypeSpec {
                name: name.to_owned(),
                duration_minutes: self.duration_minutes,
                price,
                refund_policy,
                calendly_event_type_uri: uri.map(str::to_owned),
                payment_window_minutes,
            }),
            _ => Err(problems),
        }
    }
}

/// A URL-safe slug for the relay's `/pay/{slug}` link: lower-case letters, digits, dashes.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for ch in name.trim().chars() {
        if ch.is_ascii_alphanumeric() {
            slug.push(ch.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() {
        "session".to_owned()
    } else {
        slug
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>() + ".",
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(name: &'a str, price: &'a str, currency: &'a str) -> SessionTypeInput<'a> {
        SessionTypeInput {
            name,
            duration_minutes: 60,
            price,
            currency,
            refund_tiers: RefundPolicy::default().tiers().to_vec(),
            calendly_event_type_uri: None,
            payment_window_minutes: None,
        }
    }

    #[test]
    fn a_good_form_validates() {
        let spec = input(" Coaching call ", "150.00", "eur")
            .validate()
            .unwrap();
        assert_eq!(spec.name, "Coaching call");
        assert_eq!(spec.price.minor, 15000);
        assert_eq!(spec.price.currency.code(), "EUR");
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let mut bad = input("", "12.345", "EUR");
        bad.duration_minutes = 0;
        bad.refund_tiers = vec![RefundTier {
            min_hours_before: 1,
            percent: 150,
        }];
        bad.calendly_event_type_uri = Some("event-type-1");
        bad.payment_window_minutes = Some(25 * 60);
        let fields: Vec<_> = bad
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(
            fields,
            [
                "name",
                "duration_minutes",
                "price",
                "refund_tiers",
                "calendly_event_type_uri",
                "payment_window_minutes"
            ]
        );
    }

    #[test]
    fn the_time_to_pay_defaults_to_a_day_and_stays_within_stripes_checkout_limits() {
        let spec = input("Call", "50", "EUR").validate().unwrap();
        assert_eq!(spec.payment_window_minutes, 24 * 60);
        for (minutes, ok) in [
            (29, false),
            (30, true),
            (240, true),
            (1440, true),
            (1441, false),
        ] {
            let mut form = input("Call", "50", "EUR");
            form.payment_window_minutes = Some(minutes);
            match form.validate() {
                Ok(spec) => {
                    assert!(ok, "{minutes}");
                    assert_eq!(spec.payment_window_minutes, minutes);
                }
                Err(problems) => {
                    assert!(!ok, "{minutes}: {problems:?}");
                    assert_eq!(problems[0].field, "payment_window_minutes");
                }
            }
        }
    }

    #[test]
    fn zero_decimal_currencies_refuse_cents() {
        let problems = input("Call", "150.50", "JPY").validate().unwrap_err();
        assert_eq!(problems[0].field, "price");
        assert!(
            problems[0].message.contains("JPY"),
            "{}",
            problems[0].message
        );
        assert!(input("Call", "0", "EUR").validate().is_err());
        assert_eq!(
            input("Call", "x", "EURO").validate().unwrap_err()[0].field,
            "currency"
        );
    }

    #[test]
    fn slugs_are_url_safe() {
        assert_eq!(slugify("Coaching call (60 min)"), "coaching-call-60-min");
        assert_eq!(slugify("  Ünïcode!! "), "n-code");
        assert_eq!(slugify("!!!"), "session");
    }
}
