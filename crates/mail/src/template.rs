//! Email templates: a subject and a plain-text body with `{placeholders}`, rendered to a
//! plain-text part and an HTML part.
//!
//! The coach edits one body, in plain text; the HTML part is derived from it, with every
//! character of the template and of every value escaped, so neither a client's name nor a
//! coach's template can inject markup. Only the link placeholders become anchors, and only
//! for `http(s)` URLs. `{{` and `}}` write literal braces. Pure: no store, no clock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::kind::MailKind;

/// A subject and body with placeholders, as the coach edits them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub subject: String,
    pub body: String,
}

/// A value a template can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placeholder {
    ClientName,
    Session,
    /// The session's start in the client's own time zone.
    StartLocal,
    /// When the payment is due, in the client's time zone.
    DeadlineLocal,
    /// The session's price.
    Amount,
    /// What is refunded (cancellation notices).
    RefundAmount,
    PaymentLink,
    RecoveryLink,
    CoachName,
}

impl Placeholder {
    pub const ALL: [Placeholder; 9] = [
        Self::ClientName,
        Self::Session,
        Self::StartLocal,
        Self::DeadlineLocal,
        Self::Amount,
        Self::RefundAmount,
        Self::PaymentLink,
        Self::RecoveryLink,
        Self::CoachName,
    ];

    /// The name written between braces.
    pub fn name(self) -> &'static str {
        match self {
            Self::ClientName => "client_name",
            Self::Session => "session",
            Self::StartLocal => "start_local",
            Self::DeadlineLocal => "deadline_local",
            Self::Amount => "amount",
            Self::RefundAmount => "refund_amount",
            Self::PaymentLink => "payment_link",
            Self::RecoveryLink => "recovery_link",
            Self::CoachName => "coach_name",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    fn is_link(self) -> bool {
        matches!(self, Self::PaymentLink | Self::RecoveryLink)
    }

    /// Whether an email of `kind` has this value.
    pub fn available_in(self, kind: MailKind) -> bool {
        match self {
            Self::ClientName
            | Self::Session
            | Self::StartLocal
            | Self::Amount
            | Self::CoachName => true,
            Self::DeadlineLocal | Self::PaymentLink => {
                matches!(kind, MailKind::PaymentRequest | MailKind::PaymentReminder)
            }
            Self::RecoveryLink => kind == MailKind::PaymentReminder,
            Self::RefundAmount => {
                matches!(kind, MailKind::Cancellation | MailKind::LatePaymentRefund)
            }
        }
    }

    /// The placeholders an email of `kind` can use (for the editor's help text).
    pub fn for_kind(kind: MailKind) -> Vec<Placeholder> {
        Self::ALL
            .into_iter()
            .filter(|p| p.available_in(kind))
            .collect()
    }
}

/// The values of one email, by placeholder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Values(pub BTreeMap<Placeholder, String>);

impl Values {
    pub fn set(&mut self, placeholder: Placeholder, value: impl Into<String>) -> &mut Self {
        self.0.insert(placeholder, value.into());
        self
    }

    pub fn get(&self, placeholder: Placeholder) -> Option<&str> {
        self.0.get(&placeholder).map(String::as_str)
    }
}

/// A rendered email's parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What is wrong with a template as the coach wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum TemplateProblem {
    EmptySubject,
    EmptyBody,
    /// `{name}` is not a placeholder at all.
    UnknownPlaceholder {
        name: String,
    },
    /// `{name}` exists but this email has no such value (a refund amount in a payment
    /// request).
    NotAvailable {
        name: String,
    },
}

impl TemplateProblem {
    /// The sentence shown next to the field.
    pub fn describe(&self, kind: MailKind) -> String {
        let known = Placeholder::for_kind(kind)
            .iter()
            .map(|p| format!("{{{}}}", p.name()))
            .collect::<Vec<_>>()
            .join(", ");
        match self {
            Self::EmptySubject => "The subject is empty; write one.".into(),
            Self::EmptyBody => "The message is empty; write one.".into(),
            Self::UnknownPlaceholder { name } => format!(
                "{{{name}}} is not a placeholder. This email can use: {known}. Write {{{{ for a literal brace."
            ),
            Self::NotAvailable { name } => format!(
                "{{{name}}} has no value in the {} email. This email can use: {known}.",
                crate::kind::label(kind).to_lowercase()
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment<'a> {
    Text(&'a str),
    Brace(char),
    /// A `{word}`, known or not.
    Var(&'a str),
}

fn segments(template: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        let Some(pos) = rest.find(['{', '}']) else {
            out.push(Segment::Text(rest));
            break;
        };
        if pos > 0 {
            out.push(Segment::Text(&rest[..pos]));
        }
        rest = &rest[pos..];
        if rest.starts_with("{{") {
            out.push(Segment::Brace('{'));
            rest = &rest[2..];
        } else if rest.starts_with("}}") {
            out.push(Segment::Brace('}'));
            rest = &rest[2..];
        } else if rest.starts_with('{') {
            let name_len = rest[1..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len() - 1);
            if name_len > 0 && rest[1 + name_len..].starts_with('}') {
                out.push(Segment::Var(&rest[1..1 + name_len]));
                rest = &rest[name_len + 2..];
            } else {
                out.push(Segment::Brace('{'));
                rest = &rest[1..];
            }
        } else {
            out.push(Segment::Brace('}'));
            rest = &rest[1..];
        }
    }
    out
}

impl Template {
    /// The template's problems for an email of `kind`; empty when it can be saved.
    pub fn problems(&self, kind: MailKind) -> Vec<TemplateProblem> {
        let mut problems = Vec::new();
        if self.subject.trim().is_empty() {
            problems.push(TemplateProblem::EmptySubject);
        }
        if self.body.trim().is_empty() {
            problems.push(TemplateProblem::EmptyBody);
        }
        for text in [&self.subject, &self.body] {
            for segment in segments(text) {
                if let Segment::Var(name) = segment {
                    let problem = match Placeholder::parse(name) {
                        None => TemplateProblem::UnknownPlaceholder {
                            name: name.to_owned(),
                        },
                        Some(p) if !p.available_in(kind) => TemplateProblem::NotAvailable {
                            name: name.to_owned(),
                        },
                        Some(_) => continue,
                    };
                    if !problems.contains(&problem) {
                        problems.push(problem);
                    }
                }
            }
        }
        problems
    }

    /// Renders the three parts. Unknown placeholders are kept as written; known ones
    /// without a value render empty.
    pub fn render(&self, values: &Values) -> Rendered {
        let subject = render_text(&self.subject, values);
        // A header is one line: a newline in a value or the template must not start another.
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        Rendered {
            subject: subject.clone(),
            text: render_text(&self.body, values),
            html: render_html(&subject, &self.body, values),
        }
    }
}

fn render_text(template: &str, values: &Values) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    for segment in segments(template) {
        match segment {
            Segment::Text(text) => out.push_str(text),
            Segment::Brace(c) => out.push(c),
            Segment::Var(name) => match Placeholder::parse(name) {
                Some(p) => out.push_str(values.get(p).unwrap_or("")),
                None => {
                    out.push('{');
                    out.push_str(name);
                    out.push('}');
                }
            },
        }
    }
    out
}

fn render_html(subject: &str, template: &str, values: &Values) -> String {
    let mut body = String::with_capacity(template.len() * 2 + 128);
    for segment in segments(template) {
        match segment {
            Segment::Text(text) => body.push_str(&escape_html(text)),
            Segment::Brace(c) => body.push(c),
            Segment::Var(name) => match Placeholder::parse(name) {
                Some(p) => {
                    let value = values.get(p).unwrap_or("");
                    if p.is_link() && is_web_link(value) {
                        let escaped = escape_html(value);
                        body.push_str(&format!("<a href=\"{escaped}\">{escaped}</a>"));
                    } else {
                        body.push_str(&escape_html(value));
                    }
                }
                None => body.push_str(&escape_html(&format!("{{{name}}}"))),
            },
        }
    }
    let paragraphs: Vec<String> = body
        .replace("\r\n", "\n")
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| format!("<p>{}</p>", p.replace('\n', "<br>\n")))
        .collect();
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body style=\"font-family: sans-serif; line-height: 1.5;\">\n{}\n</body></html>\n",
        escape_html(subject),
        paragraphs.join("\n")
    )
}

fn is_web_link(value: &str) -> bool {
    (value.starts_with("https://") || value.starts_with("http://"))
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Escapes text for HTML element content and quoted attributes.
pub fn escape_html(text: &str) -> String {
    html_escape::encode_quoted_attribute(text).into_owned()
}

/// The template a coach starts from.
pub fn default_template(kind: MailKind) -> Template {
    let (subject, body) = match kind {
        MailKind::PaymentRequest => (
            "Please complete your booking: {session} on {start_local}",
            "Hello {client_name},\n\n\
             Thank you for booking {session} on {start_local}.\n\n\
             To secure your place, please pay {amount} by {deadline_local}:\n\
             {payment_link}\n\n\
             If the payment has not arrived by then, the time is released for others.\n\n\
             Best wishes,\n{coach_name}",
        ),
        MailKind::PaymentReminder => (
            "Reminder: your booking for {session} is not paid yet",
            "Hello {client_name},\n\n\
             Your booking for {session} on {start_local} is still waiting for payment of \
             {amount}. Please pay by {deadline_local} to keep your place:\n\
             {recovery_link}\n\n\
             If you have just paid, thank you, and please ignore this message.\n\n\
             Best wishes,\n{coach_name}",
        ),
        MailKind::Confirmation => (
            "Confirmed: {session} on {start_local}",
            "Hello {client_name},\n\n\
             Thank you, your payment of {amount} has arrived. Your session {session} on \
             {start_local} is confirmed.\n\n\
             See you then,\n{coach_name}",
        ),
        MailKind::Cancellation => (
            "Cancelled: {session} on {start_local}",
            "Hello {client_name},\n\n\
             Your session {session} on {start_local} has been cancelled.\n\n\
             Refund: {refund_amount}.\n\n\
             Best wishes,\n{coach_name}",
        ),
        MailKind::LatePaymentRefund => (
            "Your payment for {session} has been refunded",
            "Hello {client_name},\n\n\
             Your payment for {session} on {start_local} arrived after the booking had \
             expired or been cancelled, so the time was no longer reserved for you. We have \
             refunded it in full: {refund_amount}. It can take a few days to reach your \
             account.\n\n\
             If you would still like a session, please book again.\n\n\
             Best wishes,\n{coach_name}",
        ),
        MailKind::Reschedule => (
            "Rescheduled: {session} is now on {start_local}",
            "Hello {client_name},\n\n\
             Your session {session} has been moved to {start_local}. Your booking carries \
             over as it was; there is nothing more to do.\n\n\
             See you then,\n{coach_name}",
        ),
    };
    Template {
        subject: subject.to_owned(),
        body: body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        let mut v = Values::default();
        v.set(
            Placeholder::ClientName,
            "Dana <script>alert(1)</script> & Co",
        )
        .set(Placeholder::Session, "Coaching")
        .set(
            Placeholder::StartLocal,
            "Tuesday 1 December 2026, 11:00 (Europe/Berlin)",
        )
        .set(Placeholder::Amount, "150.00 EUR")
        .set(
            Placeholder::PaymentLink,
            "https://relay.example/pay/coaching?invitee_uuid=A&invitee_email=d%40x",
        )
        .set(Placeholder::CoachName, "Sam Coach");
        v
    }

    #[test]
    fn placeholders_are_replaced_in_text_and_escaped_in_html() {
        let t = Template {
            subject: "Hi {client_name}\nBcc: evil@x".into(),
            body: "Dear {client_name},\n\npay {amount} at {payment_link}\n{{literal}} {unknown}"
                .into(),
        };
        let r = t.render(&values());
        assert_eq!(
            r.subject,
            "Hi Dana <script>alert(1)</script> & Co Bcc: evil@x"
        );
        assert!(r.text.starts_with("Dear Dana <script>alert(1)</script> & Co,\n\npay 150.00 EUR at https://relay.example/pay/coaching?invitee_uuid=A&invitee_email=d%40x\n{literal} {unknown}"), "{}", r.text);
        assert!(!r.html.contains("<script>"), "{}", r.html);
        assert!(r
            .html
            .contains("Dana &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"));
        assert!(r.html.contains(
            "<a href=\"https://relay.example/pay/coaching?invitee_uuid=A&amp;invitee_email=d%40x\">"
        ));
        assert!(r.html.contains("{literal} {unknown}"));
    }

    #[test]
    fn a_link_value_that_is_not_a_web_link_is_not_an_anchor() {
        let mut v = values();
        v.set(Placeholder::PaymentLink, "javascript:alert(1)");
        let t = Template {
            subject: "s".into(),
            body: "{payment_link}".into(),
        };
        let html = t.render(&v).html;
        assert!(!html.contains("<a "), "{html}");
        assert!(html.contains("javascript:alert(1)"));
    }

    #[test]
    fn problems_name_unknown_and_unavailable_placeholders() {
        let t = Template {
            subject: " ".into(),
            body: "{refund_amount} {nme} {client_name} {nme}".into(),
        };
        let problems = t.problems(MailKind::PaymentRequest);
        assert_eq!(
            problems,
            vec![
                TemplateProblem::EmptySubject,
                TemplateProblem::NotAvailable {
                    name: "refund_amount".into()
                },
                TemplateProblem::UnknownPlaceholder { name: "nme".into() },
            ]
        );
        assert!(problems[2]
            .describe(MailKind::PaymentRequest)
            .contains("{client_name}"));
    }

    #[test]
    fn default_templates_are_valid_for_their_kind() {
        for kind in MailKind::ALL {
            assert_eq!(default_template(kind).problems(kind), vec![], "{kind:?}");
        }
    }

    #[test]
    fn braces_that_are_not_placeholders_pass_through() {
        let t = Template {
            subject: "{".into(),
            body: "a { b } {c d} {} }".into(),
        };
        let r = t.render(&Values::default());
        assert_eq!(r.subject, "{");
        assert_eq!(r.text, "a { b } {c d} {} }");
    }
}
