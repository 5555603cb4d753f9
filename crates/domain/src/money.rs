//! Money in integer minor units, with each currency's own exponent.
//!
//! Floats never touch an amount: 150.00 EUR is `15000` cents, 15000 JPY is `15000` yen
//! (JPY has no minor unit). Parsing and formatting go through the currency's exponent so a
//! coach types and reads amounts the way their currency writes them.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Currencies whose minor unit is the major unit (ISO 4217 exponent 0), as Stripe lists them.
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];
/// Currencies with three decimals.
const THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];

/// What can be wrong with an amount or a currency code as typed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MoneyError {
    #[error("\"{0}\" is not a currency code: use three letters such as EUR, USD or JPY")]
    BadCurrency(String),
    #[error("\"{0}\" is not an amount: write digits, such as 150 or 150.00")]
    NotANumber(String),
    #[error("{currency} amounts have at most {exponent} decimal place(s); \"{text}\" has more")]
    TooManyDecimals {
        text: String,
        currency: Currency,
        exponent: u32,
    },
    #[error("the amount must not be negative")]
    Negative,
    #[error("the amount is too large")]
    Overflow,
    #[error("cannot combine {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
}

/// An ISO 4217 currency code, stored upper-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// Parses a code case-insensitively (`eur` as Stripe writes it, `EUR` as people do).
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let trimmed = code.trim();
        let bytes = trimmed.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(MoneyError::BadCurrency(trimmed.to_owned()));
        }
        Ok(Self([
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ]))
    }

    /// The code, such as `EUR`.
    pub fn code(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// The code as Stripe writes it (`eur`).
    pub fn stripe_code(&self) -> String {
        self.code().to_ascii_lowercase()
    }

    /// Number of decimal places of the minor unit.
    pub fn exponent(&self) -> u32 {
        let code = self.code();
        if ZERO_DECIMAL.contains(&code) {
            0
        } else if THREE_DECIMAL.contains(&code) {
            3
        } else {
            2
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.code().to_owned()
    }
}

/// An amount in minor units of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    /// Parses an amount as a person types it in major units: `150`, `150.5`, `150.00`.
    pub fn parse_major(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let trimmed = text.trim();
        if trimmed.starts_with('-') {
            return Err(MoneyError::Negative);
        }
        let (whole, frac) = match trimmed.split_once('.') {
            Some((w, f)) => (w, f),
            None => (trimmed, ""),
        };
        let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits_ok(whole) || !digits_ok(frac) {
            return Err(MoneyError::NotANumber(trimmed.to_owned()));
        }
        let exponent = currency.exponent();
        if frac.len() as u32 > exponent {
            return Err(MoneyError::TooManyDecimals {
                text: trimmed.to_owned(),
                currency,
                exponent,
            });
        }
        let scale = 10_i64.pow(exponent);
        let whole: i64 = whole.parse().map_err(|_| MoneyError::Overflow)?;
        let mut frac_value: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse()
                .map_err(|_| MoneyError::NotANumber(trimmed.to_owned()))?
        };
        for _ in frac.len() as u32..exponent {
            frac_value *= 10;
        }
        let minor = whole
            .checked_mul(scale)
            .and_then(|m| m.checked_add(frac_value))
            .ok_or(MoneyError::Overflow)?;
        Ok(Self::new(minor, currency))
    }

    /// The amount in major units without the code: `150.00`, `15000` (JPY).
    pub fn format_major(&self) -> String {
        let exponent = self.currency.exponent();
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if exponent == 0 {
            return format!("{sign}{abs}");
        }
        let scale = 10_u64.pow(exponent);
        format!(
            "{sign}{}.{:0width$}",
            abs / scale,
            abs % scale,
            width = exponent as usize
        )
    }

    /// `self + other`, refusing to mix currencies.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    /// `percent`% of the amount, rounded down to the minor unit (never more than owed).
    pub fn percent(self, percent: u8) -> Money {
        let minor = (i128::from(self.minor) * i128::from(percent.min(100)) / 100) as i64;
        Money::new(minor, self.currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.format_major(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    #[test]
    fn currency_exponents_follow_iso_4217() {
        assert_eq!(cur("eur").exponent(), 2);
        assert_eq!(cur("JPY").exponent(), 0);
        assert_eq!(cur("KWD").exponent(), 3);
        assert_eq!(cur("eur").code(), "EUR");
        assert_eq!(cur("EUR").stripe_code(), "eur");
    }

    #[test]
    fn bad_currency_codes_are_refused() {
        for bad in ["", "EU", "EURO", "E1R", "€€€"] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_major_amounts_with_the_currency_exponent() {
        assert_eq!(Money::parse_major("150", cur("EUR")).unwrap().minor, 15000);
        assert_eq!(
            Money::parse_major("150.5", cur("EUR")).unwrap().minor,
            15050
        );
        assert_eq!(Money::parse_major(" 0.07 ", cur("EUR")).unwrap().minor, 7);
        assert_eq!(
            Money::parse_major("15000", cur("JPY")).unwrap().minor,
            15000
        );
        assert_eq!(Money::parse_major("1.234", cur("KWD")).unwrap().minor, 1234);
    }

    #[test]
    fn rejects_amounts_the_currency_cannot_hold() {
        assert!(matches!(
            Money::parse_major("150.5", cur("JPY")),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        assert!(matches!(
            Money::parse_major("1.001", cur("EUR")),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        assert_eq!(
            Money::parse_major("-5", cur("EUR")),
            Err(MoneyError::Negative)
        );
        for bad in ["", "abc", "1,50", "1.2.3", ".5"] {
            assert!(Money::parse_major(bad, cur("EUR")).is_err(), "{bad}");
        }
        assert_eq!(
            Money::parse_major("99999999999999999999", cur("EUR")),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn formats_with_the_currency_exponent() {
        assert_eq!(Money::new(15000, cur("EUR")).to_string(), "150.00 EUR");
        assert_eq!(Money::new(7, cur("EUR")).to_string(), "0.07 EUR");
        assert_eq!(Money::new(15000, cur("JPY")).to_string(), "15000 JPY");
        assert_eq!(Money::new(1234, cur("KWD")).to_string(), "1.234 KWD");
        assert_eq!(Money::new(-7500, cur("EUR")).format_major(), "-75.00");
    }

    #[test]
    fn percent_rounds_down_and_never_exceeds_the_amount() {
        assert_eq!(Money::new(15000, cur("EUR")).percent(50).minor, 7500);
        assert_eq!(Money::new(999, cur("EUR")).percent(50).minor, 499);
        assert_eq!(Money::new(999, cur("JPY")).percent(200).minor, 999);
    }

    #[test]
    fn adding_different_currencies_is_an_error() {
        let sum = Money::new(1, cur("EUR")).checked_add(Money::new(1, cur("USD")));
        assert!(matches!(sum, Err(MoneyError::CurrencyMismatch(..))));
    }
}
