//! Display helpers: amounts in minor units and RFC 3339 times, shown the coach's way.

/// Currencies whose minor unit is the unit itself (Stripe's zero-decimal list).
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];

/// `15000, "EUR"` → `150.00 EUR`; `15000, "JPY"` → `15000 JPY`.
pub fn money(minor: i64, currency: &str) -> String {
    let code = currency.to_ascii_uppercase();
    if ZERO_DECIMAL.contains(&code.as_str()) {
        return format!("{minor} {code}");
    }
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02} {code}", abs / 100, abs % 100)
}

/// What the coach typed as an amount (`40`, `40.5`, `40.50`, `40,50`) in minor units of
/// `currency`, or a sentence saying what is wrong with it.
pub fn parse_amount(text: &str, currency: &str) -> Result<i64, String> {
    let text = text.trim().replace(',', ".");
    let bad = || format!("Enter an amount such as 40.00; \"{text}\" is not one.");
    let zero_decimal = ZERO_DECIMAL.contains(&currency.to_ascii_uppercase().as_str());
    let (whole, fraction) = text.split_once('.').unwrap_or((text.as_str(), ""));
    if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    if !fraction.chars().all(|c| c.is_ascii_digit()) || fraction.len() > 2 {
        return Err(bad());
    }
    if zero_decimal && !fraction.is_empty() {
        return Err(format!("{currency} has no cents: enter a whole amount."));
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    if zero_decimal {
        return Ok(whole);
    }
    let cents: i64 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(cents))
        .ok_or_else(bad)
}

/// An RFC 3339 time in the coach's locale, or the text as it came if it does not parse.
pub fn when(rfc3339: &str) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(rfc3339));
    if date.get_time().is_nan() {
        return rfc3339.to_owned();
    }
    let options = js_sys::Object::new();
    for (key, value) in [("dateStyle", "medium"), ("timeStyle", "short")] {
        // Setting a plain property on a fresh object cannot fail.
        let _ = js_sys::Reflect::set(&options, &key.into(), &value.into());
    }
    date.to_locale_string("default", &options).into()
}

/// `awaiting_payment` → `Awaiting payment`.
pub fn state_label(state: &str) -> String {
    let mut label = state.replace('_', " ");
    if let Some(first) = label.get(0..1) {
        let upper = first.to_ascii_uppercase();
        label.replace_range(0..1, &upper);
    }
    label
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_decimal_and_zero_decimal_currencies() {
        assert_eq!(money(15000, "eur"), "150.00 EUR");
        assert_eq!(money(5, "USD"), "0.05 USD");
        assert_eq!(money(-250, "GBP"), "-2.50 GBP");
        assert_eq!(money(15000, "JPY"), "15000 JPY");
    }

    #[test]
    fn typed_amounts_become_minor_units() {
        assert_eq!(parse_amount("40", "EUR"), Ok(4000));
        assert_eq!(parse_amount(" 40.5 ", "EUR"), Ok(4050));
        assert_eq!(parse_amount("40,05", "EUR"), Ok(4005));
        assert_eq!(parse_amount("1500", "JPY"), Ok(1500));
        assert!(parse_amount("15.5", "JPY").is_err());
        assert!(parse_amount("4.005", "EUR").is_err());
        assert!(parse_amount("-3", "EUR").is_err());
        assert!(parse_amount("", "EUR").is_err());
        assert!(parse_amount("ten", "EUR").is_err());
    }

    #[test]
    fn state_labels_read_as_words() {
        assert_eq!(state_label("awaiting_payment"), "Awaiting payment");
        assert_eq!(state_label(""), "");
    }
}
