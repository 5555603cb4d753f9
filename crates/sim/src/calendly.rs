//! The fake Calendly API v2: the current user, event types, scheduled events and their
//! invitees, cancellation, no-shows and webhook subscriptions, with bearer auth, Calendly's
//! error bodies (`title`, `message`, `details`) and `count` / `page_token` pagination.
//!
//! Resource URIs use `config.calendly_uri_base` (`https://api.calendly.com` by default) like
//! the real service; path parameters are the UUIDs at the end of those URIs. Every change
//! produces the webhook payload of the fixtures (`invitee.created`, `invitee.canceled` with
//! reschedule links, `invitee_no_show.created`), delivered to the configured target and to
//! every active subscription that asked for that event.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::webhook::{Delivery, Provider, WebhookTarget};
use crate::world::{calendly_time, parse_time, Incoming, Reply, World};

/// A webhook subscription made through the API (its signing key is kept, not returned).
#[derive(Debug, Clone)]
pub struct Subscription {
    pub resource: Value,
    pub signing_key: String,
}

/// Calendly's resources.
#[derive(Debug, Default)]
pub struct CalendlyState {
    pub user: Value,
    pub event_types: Vec<Value>,
    pub events: BTreeMap<String, Value>,
    /// Invitee resources (API shape, without the embedded `scheduled_event`).
    pub invitees: BTreeMap<String, Value>,
    pub subscriptions: BTreeMap<String, Subscription>,
    pub no_shows: BTreeMap<String, Value>,
    /// Every webhook payload produced, oldest first.
    pub webhooks: Vec<Value>,
    /// Answer 403 to subscription calls, as on Calendly's free plan.
    pub free_plan: bool,
}

/// Calendly's error body.
pub fn error(status: u16, title: &str, message: &str) -> Reply {
    Reply::json(status, json!({"title": title, "message": message}))
}

fn invalid_argument(parameter: &str, message: &str) -> Reply {
    Reply::json(
        400,
        json!({"title": "Invalid Argument", "message": "The supplied parameters are invalid.",
               "details": [{"parameter": parameter, "message": message}]}),
    )
}

fn not_found() -> Reply {
    error(
        404,
        "Resource Not Found",
        "The server could not find the requested resource.",
    )
}

/// The UUID at the end of a URI (or the argument itself when it is already one).
pub fn uuid_of(uri_or_uuid: &str) -> &str {
    uri_or_uuid
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(uri_or_uuid)
}

const WEBHOOK_EVENTS: [&str; 5] = [
    "invitee.created",
    "invitee.canceled",
    "invitee_no_show.created",
    "invitee_no_show.deleted",
    "routing_form_submission.created",
];

impl World {
    pub(crate) fn seed_calendly(&mut self) {
        let base = self.config.calendly_uri_base.clone();
        let user_uuid = self.uuid();
        let org_uuid = self.uuid();
        let user_uri = format!("{base}/users/{user_uuid}");
        let org_uri = format!("{base}/organizations/{org_uuid}");
        let created = calendly_time(self.now() - 86400 * 30);
        self.calendly.user = json!({
            "uri": user_uri, "name": self.config.coach_name, "slug": "coach", "email": self.config.coach_email,
            "scheduling_url": "https://calendly.com/coach", "timezone": "Europe/Berlin", "avatar_url": null,
            "created_at": created, "updated_at": created, "current_organization": org_uri, "resource_type": "User",
            "locale": "en",
        });
        for et in self.config.event_types.clone() {
            let uuid = et.uuid.clone().unwrap_or_else(|| self.uuid());
            self.calendly.event_types.push(json!({
                "uri": format!("{base}/event_types/{uuid}"), "name": et.name, "active": true,
                "slug": et.slug, "scheduling_url": format!("https://calendly.com/coach/{}", et.slug),
                "duration": et.duration_minutes, "kind": "solo", "pooling_type": null, "type": "StandardEventType",
                "color": "#0069ff", "created_at": created, "updated_at": created, "internal_note": null,
                "description_plain": null, "description_html": null, "profile": {"type": "User", "name": self.config.coach_name, "owner": user_uri},
                "secret": false, "booking_method": "instant", "custom_questions": [], "deleted_at": null,
                "admin_managed": false, "locations": null, "position": 0,
            }));
        }
    }

    fn user_uri(&self) -> String {
        self.calendly.user["uri"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn org_uri(&self) -> String {
        self.calendly.user["current_organization"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Handle a Calendly API request.
    pub fn calendly(&mut self, req: &Incoming) -> Reply {
        let token = req
            .header("Authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        if token != Some(self.config.calendly_token.as_str()) {
            return error(401, "Unauthenticated", "The access token is invalid");
        }
        let q = req.query_pairs();
        let segments = req.segments();
        match (req.method.as_str(), segments.as_slice()) {
            ("GET", ["users", "me"]) => Reply::json(200, json!({"resource": self.calendly.user})),
            ("GET", ["event_types"]) => {
                if let Err(r) = self.owner_filter(&q) {
                    return r;
                }
                let items = self.calendly.event_types.clone();
                self.paginate(req, &q, items)
            }
            ("GET", ["scheduled_events"]) => self.list_scheduled_events(req, &q),
            ("GET", ["scheduled_events", uuid]) => match self.calendly.events.get(*uuid) {
                Some(e) => Reply::json(200, json!({"resource": e})),
                None => not_found(),
            },
            ("GET", ["scheduled_events", uuid, "invitees"]) => {
                if !self.calendly.events.contains_key(*uuid) {
                    return not_found();
                }
                let mut items: Vec<Value> = self
                    .calendly
                    .invitees
                    .values()
                    .filter(|i| i["event"].as_str().map(uuid_of) == Some(*uuid))
                    .filter(|i| q.get("status").is_none_or(|s| i["status"] == s.as_str()))
                    .filter(|i| q.get("email").is_none_or(|s| i["email"] == s.as_str()))
                    .cloned()
                    .collect();
                items.sort_by(|a, b| a["created_at"].as_str().cmp(&b["created_at"].as_str()));
                self.paginate(req, &q, items)
            }
            ("GET", ["scheduled_events", event, "invitees", invitee]) => {
                match self.calendly.invitees.get(*invitee) {
                    Some(i) if i["event"].as_str().map(uuid_of) == Some(*event) => {
                        Reply::json(200, json!({"resource": i}))
                    }
                    _ => not_found(),
                }
            }
            ("POST", ["scheduled_events", uuid, "cancellation"]) => {
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(json!({}));
                let reason = body["reason"].as_str().map(str::to_string);
                self.host_cancels_event(uuid, reason.as_deref())
            }
            ("POST", ["invitee_no_shows"]) => {
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(json!({}));
                let Some(invitee) = body["invitee"].as_str() else {
                    return invalid_argument("invitee", "is required");
                };
                match self.mark_no_show(uuid_of(invitee)) {
                    Ok(no_show) => Reply::json(201, json!({"resource": no_show})),
                    Err(r) => r,
                }
            }
            ("GET", ["invitee_no_shows", uuid]) => match self.calendly.no_shows.get(*uuid) {
                Some(n) => Reply::json(200, json!({"resource": n})),
                None => not_found(),
            },
            ("DELETE", ["invitee_no_shows", uuid]) => self.undo_no_show(uuid),
            ("POST", ["webhook_subscriptions"]) => self.create_subscription(&req.body),
            ("GET", ["webhook_subscriptions"]) => {
                if self.calendly.free_plan {
                    return upgrade();
                }
                if !q.contains_key("organization") {
                    return invalid_argument("organization", "is required");
                }
                let Some(scope) = q.get("scope") else {
                    return invalid_argument("scope", "is required");
                };
                let items: Vec<Value> = self
                    .calendly
                    .subscriptions
                    .values()
                    .map(|s| s.resource.clone())
                    .filter(|r| r["scope"] == scope.as_str())
                    .filter(|r| q.get("user").is_none_or(|u| r["user"] == u.as_str()))
                    .collect();
                self.paginate(req, &q, items)
            }
            ("GET", ["webhook_subscriptions", uuid]) => {
                match self.calendly.subscriptions.get(*uuid) {
                    Some(s) => Reply::json(200, json!({"resource": s.resource})),
                    None => not_found(),
                }
            }
            ("DELETE", ["webhook_subscriptions", uuid]) => {
                match self.calendly.subscriptions.remove(*uuid) {
                    Some(_) => Reply::empty(204),
                    None => not_found(),
                }
            }
            _ => not_found(),
        }
    }

    fn owner_filter(&self, q: &BTreeMap<String, String>) -> Result<(), Reply> {
        match (q.get("user"), q.get("organization")) {
            (None, None) => Err(invalid_argument("user", "user or organization is required")),
            (Some(u), _) if *u != self.user_uri() => Err(error(
                403,
                "Permission Denied",
                "You do not have permission to access this resource.",
            )),
            (_, Some(o)) if *o != self.org_uri() => Err(error(
                403,
                "Permission Denied",
                "You do not have permission to access this resource.",
            )),
            _ => Ok(()),
        }
    }

    fn list_scheduled_events(&self, req: &Incoming, q: &BTreeMap<String, String>) -> Reply {
        if let Err(r) = self.owner_filter(q) {
            return r;
        }
        let mut bounds = [None, None];
        for (slot, name) in bounds.iter_mut().zip(["min_start_time", "max_start_time"]) {
            if let Some(t) = q.get(name) {
                match parse_time(t) {
                    Some(t) => *slot = Some(t),
                    None => return invalid_argument(name, "must be a valid ISO 8601 timestamp"),
                }
            }
        }
        if let Some(status) = q.get("status") {
            if status != "active" && status != "canceled" {
                return invalid_argument("status", "must be one of active, canceled");
            }
        }
        let email = q.get("invitee_email");
        let mut items: Vec<Value> = self
            .calendly
            .events
            .values()
            .filter(|e| {
                let start = e["start_time"].as_str().and_then(parse_time).unwrap_or(0);
                bounds[0].is_none_or(|m| start >= m)
                    && bounds[1].is_none_or(|m| start < m)
                    && q.get("status").is_none_or(|s| e["status"] == s.as_str())
                    && email.is_none_or(|em| {
                        self.calendly
                            .invitees
                            .values()
                            .any(|i| i["event"] == e["uri"] && i["email"] == em.as_str())
                    })
            })
            .cloned()
            .collect();
        items.sort_by(|a, b| a["start_time"].as_str().cmp(&b["start_time"].as_str()));
        if q.get("sort").is_some_and(|s| s == "start_time:desc") {
            items.reverse();
        }
        self.paginate(req, q, items)
    }

    /// One page of a collection: `count` (1..=100, default 20) and an opaque `page_token`.
    fn paginate(&self, req: &Incoming, q: &BTreeMap<String, String>, items: Vec<Value>) -> Reply {
        let count = match q.get("count").map(|c| c.parse::<usize>()) {
            None => 20,
            Some(Ok(c)) if (1..=100).contains(&c) => c,
            Some(_) => return invalid_argument("count", "must be between 1 and 100"),
        };
        let offset = match q.get("page_token") {
            None => 0,
            Some(t) => match t
                .strip_prefix("sim")
                .and_then(|h| usize::from_str_radix(h, 16).ok())
            {
                Some(o) => o,
                None => return invalid_argument("page_token", "is invalid"),
            },
        };
        let end = (offset + count).min(items.len());
        let page = items
            .get(offset.min(end)..end)
            .map(<[Value]>::to_vec)
            .unwrap_or_default();
        let link = |token: &str| {
            let mut pairs: Vec<(String, String)> = q
                .iter()
                .filter(|(k, _)| *k != "page_token")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            pairs.push(("page_token".into(), token.into()));
            let query: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
            format!("{}{}?{query}", self.base_url, req.path)
        };
        let next = (end < items.len()).then(|| format!("sim{end:x}"));
        let prev = (offset > 0).then(|| format!("sim{:x}", offset.saturating_sub(count)));
        Reply::json(
            200,
            json!({
                "collection": page,
                "pagination": {
                    "count": end.saturating_sub(offset),
                    "next_page": next.as_deref().map(link), "next_page_token": next,
                    "previous_page": prev.as_deref().map(link), "previous_page_token": prev,
                }
            }),
        )
    }

    fn find_event_type(&self, wanted: &str) -> Option<Value> {
        self.calendly
            .event_types
            .iter()
            .find(|et| {
                et["slug"] == wanted
                    || et["uri"] == wanted
                    || et["uri"].as_str().map(uuid_of) == Some(wanted)
            })
            .cloned()
    }

    /// A client books: a new scheduled event with one invitee; `invitee.created`.
    pub fn book(&mut self, args: &Value) -> Result<Value, String> {
        let et_name = args["event_type"].as_str().unwrap_or("");
        let event_type = match self.find_event_type(et_name) {
            Some(et) => et,
            None if et_name.is_empty() => self
                .calendly
                .event_types
                .first()
                .cloned()
                .ok_or("no event types configured")?,
            None => {
                return Err(format!(
                    "no event type {et_name:?}; known slugs: {}",
                    self.event_type_slugs()
                ))
            }
        };
        let start = match args["start_time"].as_str() {
            Some(t) => parse_time(t).ok_or_else(|| format!("start_time {t:?} is not RFC 3339"))?,
            None => {
                let base = (self.now() / 3600 + 48) * 3600;
                base + 3600 * self.calendly.events.len() as i64
            }
        };
        let name = args["name"].as_str().unwrap_or("Dana Client").to_string();
        let email = args["email"]
            .as_str()
            .unwrap_or("dana.client@example.com")
            .to_string();
        let (event, invitee) = self.create_booking(&event_type, start, &name, &email, args, None);
        let payload = self.emit_invitee("invitee.created", &invitee);
        Ok(json!({"event": event, "invitee": invitee, "webhook": payload}))
    }

    fn event_type_slugs(&self) -> String {
        self.calendly
            .event_types
            .iter()
            .filter_map(|e| e["slug"].as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn create_booking(
        &mut self,
        event_type: &Value,
        start: i64,
        name: &str,
        email: &str,
        args: &Value,
        old_invitee: Option<String>,
    ) -> (Value, Value) {
        let base = self.config.calendly_uri_base.clone();
        let event_uuid = self.uuid();
        let invitee_uuid = self.uuid();
        let now = calendly_time(self.now());
        let minutes = event_type["duration"].as_i64().unwrap_or(60);
        let event_uri = format!("{base}/scheduled_events/{event_uuid}");
        let event = json!({
            "uri": event_uri, "name": event_type["name"], "meeting_notes_plain": null, "meeting_notes_html": null,
            "status": "active", "start_time": calendly_time(start), "end_time": calendly_time(start + minutes * 60),
            "event_type": event_type["uri"],
            "location": {"type": "zoom", "join_url": "https://example.zoom.us/j/000", "status": "pushed"},
            "invitees_counter": {"total": 1, "active": 1, "limit": 1},
            "created_at": now, "updated_at": now,
            "event_memberships": [{"user": self.user_uri(), "user_email": self.config.coach_email, "user_name": self.config.coach_name}],
            "event_guests": [],
        });
        let (first, last) = match name.split_once(' ') {
            Some((f, l)) if args["split_name"] == true => (json!(f), json!(l)),
            _ => (Value::Null, Value::Null),
        };
        let invitee = json!({
            "uri": format!("{event_uri}/invitees/{invitee_uuid}"), "email": email, "name": name,
            "first_name": first, "last_name": last, "status": "active",
            "timezone": args["timezone"].as_str().unwrap_or("Europe/Berlin"), "event": event_uri,
            "created_at": now, "updated_at": now,
            "cancel_url": format!("https://calendly.com/cancellations/{invitee_uuid}"),
            "reschedule_url": format!("https://calendly.com/reschedulings/{invitee_uuid}"),
            "rescheduled": false, "old_invitee": old_invitee, "new_invitee": null, "no_show": null, "payment": null,
            "questions_and_answers": args.get("questions_and_answers").cloned().filter(Value::is_array).unwrap_or(json!([])),
            "reconfirmation": null, "routing_form_submission": null, "text_reminder_number": null,
            "tracking": {"utm_campaign": null, "utm_source": null, "utm_medium": null, "utm_content": null, "utm_term": null, "salesforce_uuid": null},
        });
        self.calendly.events.insert(event_uuid, event.clone());
        self.calendly.invitees.insert(invitee_uuid, invitee.clone());
        (event, invitee)
    }

    /// Cancel one invitee (and its single-invitee event). Returns the canceled invitee.
    fn cancel_invitee(
        &mut self,
        invitee_uuid: &str,
        canceler_type: &str,
        reason: &str,
        new_invitee: Option<String>,
    ) -> Result<Value, Reply> {
        let now = calendly_time(self.now());
        let invitee = self
            .calendly
            .invitees
            .get(invitee_uuid)
            .ok_or_else(not_found)?
            .clone();
        if invitee["status"] == "canceled" {
            return Err(error(
                403,
                "Permission Denied",
                "Invitee is already canceled",
            ));
        }
        let canceled_by = if canceler_type == "host" {
            self.config.coach_name.clone()
        } else {
            invitee["name"].as_str().unwrap_or("").to_string()
        };
        let cancellation = json!({"canceled_by": canceled_by, "reason": reason, "canceler_type": canceler_type, "created_at": now});
        let event_uuid = invitee["event"]
            .as_str()
            .map(uuid_of)
            .unwrap_or("")
            .to_string();
        if let Some(event) = self.calendly.events.get_mut(&event_uuid) {
            event["status"] = json!("canceled");
            event["invitees_counter"]["active"] = json!(0);
            event["cancellation"] = cancellation.clone();
            event["updated_at"] = json!(now);
        }
        let invitee = self
            .calendly
            .invitees
            .get_mut(invitee_uuid)
            .ok_or_else(not_found)?;
        invitee["status"] = json!("canceled");
        invitee["updated_at"] = json!(now);
        invitee["cancellation"] = cancellation;
        if let Some(new) = new_invitee {
            invitee["rescheduled"] = json!(true);
            invitee["new_invitee"] = json!(new);
        }
        Ok(invitee.clone())
    }

    /// `POST /scheduled_events/{uuid}/cancellation`: the host cancels.
    fn host_cancels_event(&mut self, event_uuid: &str, reason: Option<&str>) -> Reply {
        let Some(event) = self.calendly.events.get(event_uuid) else {
            return not_found();
        };
        if event["status"] == "canceled" {
            return error(403, "Permission Denied", "Event is already canceled");
        }
        let active: Vec<String> = self
            .calendly
            .invitees
            .iter()
            .filter(|(_, i)| {
                i["event"].as_str().map(uuid_of) == Some(event_uuid) && i["status"] == "active"
            })
            .map(|(k, _)| k.clone())
            .collect();
        let reason = reason.unwrap_or("");
        for uuid in active {
            match self.cancel_invitee(&uuid, "host", reason, None) {
                Ok(invitee) => {
                    self.emit_invitee("invitee.canceled", &invitee);
                }
                Err(r) => return r,
            }
        }
        let cancellation = self
            .calendly
            .events
            .get(event_uuid)
            .map(|e| e["cancellation"].clone())
            .unwrap_or(Value::Null);
        Reply::json(201, json!({"resource": cancellation}))
    }

    /// Control: cancel as the invitee or the host.
    pub fn cancel(&mut self, args: &Value) -> Result<Value, String> {
        let invitee = uuid_of(args["invitee"].as_str().ok_or("invitee is required")?).to_string();
        let by = args["by"].as_str().unwrap_or("invitee");
        if by != "invitee" && by != "host" {
            return Err(format!("by must be invitee or host, not {by:?}"));
        }
        let reason = args["reason"].as_str().unwrap_or("Something came up");
        let canceled = self
            .cancel_invitee(&invitee, by, reason, None)
            .map_err(reply_message)?;
        Ok(self.emit_invitee("invitee.canceled", &canceled))
    }

    /// Control: the invitee reschedules: the old one is canceled (`rescheduled: true`) and a
    /// new event and invitee are created (`old_invitee` set). `order`: which webhook first.
    pub fn reschedule(&mut self, args: &Value) -> Result<Value, String> {
        let old_uuid = uuid_of(args["invitee"].as_str().ok_or("invitee is required")?).to_string();
        let old = self
            .calendly
            .invitees
            .get(&old_uuid)
            .ok_or_else(|| format!("no invitee {old_uuid}"))?
            .clone();
        if old["status"] != "active" {
            return Err(format!("invitee {old_uuid} is not active"));
        }
        let event = self
            .calendly
            .events
            .get(old["event"].as_str().map(uuid_of).unwrap_or(""))
            .cloned()
            .ok_or("event missing")?;
        let event_type = self
            .find_event_type(event["event_type"].as_str().unwrap_or(""))
            .ok_or("event type missing")?;
        let start = match args["start_time"].as_str() {
            Some(t) => parse_time(t).ok_or_else(|| format!("start_time {t:?} is not RFC 3339"))?,
            None => {
                event["start_time"]
                    .as_str()
                    .and_then(parse_time)
                    .unwrap_or(self.now())
                    + 2 * 86400
            }
        };
        let carry = json!({"timezone": old["timezone"], "questions_and_answers": old["questions_and_answers"]});
        let name = old["name"].as_str().unwrap_or("").to_string();
        let email = old["email"].as_str().unwrap_or("").to_string();
        let (new_event, new_invitee) = self.create_booking(
            &event_type,
            start,
            &name,
            &email,
            &carry,
            old["uri"].as_str().map(str::to_string),
        );
        let canceled = self
            .cancel_invitee(
                &old_uuid,
                "invitee",
                "Rescheduled",
                new_invitee["uri"].as_str().map(str::to_string),
            )
            .map_err(reply_message)?;
        let (first, second) = if args["order"] == "created_first" {
            (
                ("invitee.created", &new_invitee),
                ("invitee.canceled", &canceled),
            )
        } else {
            (
                ("invitee.canceled", &canceled),
                ("invitee.created", &new_invitee),
            )
        };
        let a = self.emit_invitee(first.0, first.1);
        let b = self.emit_invitee(second.0, second.1);
        Ok(
            json!({"event": new_event, "invitee": new_invitee, "old_invitee": canceled, "webhooks": [a, b]}),
        )
    }

    /// Mark a no-show (API or control); `invitee_no_show.created`.
    pub fn mark_no_show(&mut self, invitee_uuid: &str) -> Result<Value, Reply> {
        let base = self.config.calendly_uri_base.clone();
        let uuid = self.uuid();
        let now = calendly_time(self.now());
        let invitee = self
            .calendly
            .invitees
            .get_mut(invitee_uuid)
            .ok_or_else(not_found)?;
        if !invitee["no_show"].is_null() {
            return Err(error(
                403,
                "Permission Denied",
                "Invitee is already marked as a no-show",
            ));
        }
        let no_show = json!({"uri": format!("{base}/invitee_no_shows/{uuid}"), "invitee": invitee["uri"], "created_at": now});
        invitee["no_show"] = json!({"uri": no_show["uri"], "created_at": now});
        invitee["updated_at"] = json!(now);
        let invitee = invitee.clone();
        self.calendly.no_shows.insert(uuid, no_show.clone());
        self.emit_invitee("invitee_no_show.created", &invitee);
        Ok(no_show)
    }

    fn undo_no_show(&mut self, uuid: &str) -> Reply {
        let Some(no_show) = self.calendly.no_shows.remove(uuid) else {
            return not_found();
        };
        let invitee_uuid = no_show["invitee"]
            .as_str()
            .map(uuid_of)
            .unwrap_or("")
            .to_string();
        if let Some(invitee) = self.calendly.invitees.get_mut(&invitee_uuid) {
            invitee["no_show"] = Value::Null;
            let invitee = invitee.clone();
            self.emit_invitee("invitee_no_show.deleted", &invitee);
        }
        Reply::empty(204)
    }

    fn create_subscription(&mut self, body: &[u8]) -> Reply {
        if self.calendly.free_plan {
            return upgrade();
        }
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return invalid_argument("body", "must be a JSON object");
        };
        let Some(url) = body["url"].as_str().filter(|u| u.starts_with("http")) else {
            return invalid_argument("url", "must be a valid URL");
        };
        let events: Vec<String> = body["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str().map(str::to_string))
            .collect();
        if events.is_empty() || events.iter().any(|e| !WEBHOOK_EVENTS.contains(&e.as_str())) {
            return invalid_argument(
                "events",
                "must be a non-empty list of supported webhook events",
            );
        }
        let scope = body["scope"].as_str().unwrap_or("");
        if scope != "user" && scope != "organization" {
            return invalid_argument("scope", "must be user or organization");
        }
        if body["organization"].as_str() != Some(self.org_uri().as_str()) {
            return invalid_argument("organization", "must be the current organization");
        }
        if scope == "user" && body["user"].as_str() != Some(self.user_uri().as_str()) {
            return invalid_argument(
                "user",
                "is required for user scope and must be the current user",
            );
        }
        if self
            .calendly
            .subscriptions
            .values()
            .any(|s| s.resource["callback_url"] == url && s.resource["scope"] == scope)
        {
            return error(409, "Already Exists", "Hook with this url already exists");
        }
        let uuid = self.uuid();
        let now = calendly_time(self.now());
        let resource = json!({
            "uri": format!("{}/webhook_subscriptions/{uuid}", self.config.calendly_uri_base),
            "callback_url": url, "created_at": now, "updated_at": now, "retry_started_at": null,
            "state": "active", "events": events, "scope": scope, "organization": self.org_uri(),
            "user": if scope == "user" { json!(self.user_uri()) } else { Value::Null },
            "group": null, "creator": self.user_uri(),
        });
        let signing_key = body["signing_key"].as_str().unwrap_or("").to_string();
        self.calendly.subscriptions.insert(
            uuid,
            Subscription {
                resource: resource.clone(),
                signing_key,
            },
        );
        Reply::json(201, json!({"resource": resource}))
    }

    /// Control: Calendly gave up on a subscription (or a test says so).
    pub fn disable_subscription(&mut self, uuid: &str) -> Result<Value, String> {
        let now = calendly_time(self.now());
        let sub = self
            .calendly
            .subscriptions
            .get_mut(uuid_of(uuid))
            .ok_or_else(|| format!("no webhook subscription {uuid}"))?;
        sub.resource["state"] = json!("disabled");
        sub.resource["updated_at"] = json!(now);
        Ok(sub.resource.clone())
    }

    /// Build the webhook payload for an invitee and queue its deliveries.
    fn emit_invitee(&mut self, kind: &str, invitee: &Value) -> Value {
        let mut payload = invitee.clone();
        let event_uuid = invitee["event"].as_str().map(uuid_of).unwrap_or("");
        payload["scheduled_event"] = self
            .calendly
            .events
            .get(event_uuid)
            .cloned()
            .unwrap_or(Value::Null);
        let created_at = calendly_time(self.now());
        let envelope = json!({"created_at": created_at, "created_by": self.user_uri(), "event": kind, "payload": payload});
        self.calendly.webhooks.push(envelope.clone());
        let key = format!(
            "{kind} {} {created_at}",
            invitee["uri"].as_str().unwrap_or("")
        );
        let body = serde_json::to_vec(&envelope).unwrap_or_default();
        let mut targets: Vec<(WebhookTarget, Option<String>)> = self
            .calendly_target
            .clone()
            .map(|t| (t, None))
            .into_iter()
            .collect();
        for (uuid, sub) in &self.calendly.subscriptions {
            let wants = sub.resource["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|x| x == kind));
            if sub.resource["state"] == "active" && wants {
                let url = sub.resource["callback_url"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                targets.push((
                    WebhookTarget {
                        url,
                        secret: sub.signing_key.clone(),
                    },
                    Some(uuid.clone()),
                ));
            }
        }
        for (target, subscription) in targets {
            self.outgoing.push(Delivery {
                provider: Provider::Calendly,
                target,
                key: key.clone(),
                body: body.clone(),
                subscription,
            });
        }
        envelope
    }
}

fn upgrade() -> Reply {
    error(
        403,
        "Permission Denied",
        "Please upgrade your Calendly account to Standard",
    )
}

fn reply_message(r: Reply) -> String {
    r.body
        .map(|b| b["message"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}
