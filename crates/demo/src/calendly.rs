//! Calendly's webhook bodies as pure generators, shared by the demo's bookings, the bulk
//! bookings and other crates' tests (the shape the app's parser reads).

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A time as Calendly writes it.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// One active invitee of a scheduled event: the `payload` of `invitee.created` (set its
/// fields for a cancellation or a reschedule).
#[derive(Debug, Clone, Copy)]
pub struct InviteeBody<'a> {
    pub uri: &'a str,
    pub event_uri: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    /// The scheduled event's name.
    pub event_name: &'a str,
    pub event_type: &'a str,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    /// When the client booked.
    pub booked: OffsetDateTime,
}

impl InviteeBody<'_> {
    pub fn payload(&self) -> Value {
        json!({
            "uri": self.uri,
            "email": self.email,
            "name": self.name,
            "status": "active",
            "timezone": "Europe/Berlin",
            "event": self.event_uri,
            "created_at": rfc3339(self.booked),
            "updated_at": rfc3339(self.booked),
            "rescheduled": false,
            "old_invitee": null,
            "new_invitee": null,
            "cancellation": null,
            "no_show": null,
            "scheduled_event": {
                "uri": self.event_uri,
                "name": self.event_name,
                "status": "active",
                "start_time": rfc3339(self.start),
                "end_time": rfc3339(self.end),
                "event_type": self.event_type,
            },
        })
    }
}
