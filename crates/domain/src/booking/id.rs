//! A booking's id. The store makes it (`bk_...`) and keys every row of the booking by it
//! (the booking, its audit, its outbox); the window sends it back with each action. A type
//! rather than a `String`, so an invitee URI or an action id cannot stand in for it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A booking's id (see the module's doc). Its JSON is the plain string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BookingId(String);

/// An id from outside (the window, a URL) that cannot name a booking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a booking id cannot be empty")]
pub struct EmptyBookingId;

impl BookingId {
    /// An id as stored (a booking row, an outbox row) or just made by the store.
    pub fn from_stored(text: impl Into<String>) -> BookingId {
        BookingId(text.into())
    }

    /// An id from outside (the window's arguments): it must not be empty.
    pub fn parse(text: impl Into<String>) -> Result<BookingId, EmptyBookingId> {
        let text = text.into();
        if text.trim().is_empty() {
            return Err(EmptyBookingId);
        }
        Ok(BookingId(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for BookingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for BookingId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for BookingId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for BookingId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_ids_must_not_be_empty() {
        assert_eq!(BookingId::parse(""), Err(EmptyBookingId));
        assert_eq!(BookingId::parse("  "), Err(EmptyBookingId));
        assert_eq!(
            BookingId::parse("bk_1").map(|id| id.to_string()),
            Ok("bk_1".to_owned())
        );
    }

    #[test]
    fn its_json_is_the_plain_string() {
        let id = BookingId::from_stored("bk_1");
        assert_eq!(serde_json::to_string(&id).ok(), Some("\"bk_1\"".to_owned()));
        let back: Result<BookingId, _> = serde_json::from_str("\"bk_1\"");
        assert_eq!(back.ok(), Some(id));
    }
}
