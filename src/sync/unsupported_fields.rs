//! Fields the academy refuses or does not keep (issue 17). reteach's published 2022 spec has no
//! `position` or `location` on customers (a newer catalogue lists them); an academy on the older
//! API may answer a body carrying them with NestJS' whitelist error (400 `property position should
//! not exist`), or accept the field and drop it. The operator then leaves the field out of every
//! later write and comparison, so neither a failed write per user nor a write on every run
//! follows. This module holds the pure parts: reading the error message, stripping fields from a
//! write, and checking what a response echoed.

use super::employee_config::EmployeeConfig;
use super::field_source::FieldSource;
use super::field_table::{configurable_field, configurable_fields, ReteachField};
use super::model::{CustomerFields, CustomerPatch, ReteachCustomer};

/// Why a field is left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unsupported {
    /// reteach answered a write carrying the field with 400 `property … should not exist`.
    Refused,
    /// reteach accepted a value but its answer did not carry it (absent or `null`).
    NotKept,
}

/// The property names of every `property <name> should not exist` in `message` (NestJS'
/// `forbidNonWhitelisted` wording), in order and without duplicates. Works on a single message,
/// on the parts of an array joined with any separator, and on a message with a prefix such as
/// `HTTP 400: `. Names are limited to identifier characters (`a-z`, `A-Z`, `0-9`, `_`, `.`).
pub fn refused_properties(message: &str) -> Vec<String> {
    const START: &str = "property ";
    const END: &str = " should not exist";
    let mut names: Vec<String> = Vec::new();
    let mut rest = message;
    while let Some(at) = rest.find(START) {
        let after = &rest[at + START.len()..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        if !name.is_empty() && name_len <= 64 && after[name_len..].starts_with(END) {
            if !names.iter().any(|known| known == name) {
                names.push(name.to_string());
            }
            rest = &after[name_len + END.len()..];
        } else {
            rest = after;
        }
    }
    names
}

/// Whether `part` says nothing but `property … should not exist` (with separators): such a part
/// names only our own field names and may be kept as it is when other text is scrubbed.
pub fn only_refused_properties(part: &str) -> bool {
    if refused_properties(part).is_empty() {
        return false;
    }
    let mut rest = part.to_string();
    for name in refused_properties(part) {
        rest = rest.replace(&format!("property {name} should not exist"), "");
    }
    rest.chars()
        .all(|c| c.is_whitespace() || matches!(c, ',' | ';' | '.' | '-'))
}

/// The fields the mapping may configure ([`configurable_fields`]), and therefore the only ones
/// that may be left out: the login, the Personio id and the lock dates are never dropped (a
/// refusal of those is a failure).
pub fn optional_field(name: &str) -> Option<ReteachField> {
    configurable_field(name)
}

/// The configured source of an optional field.
pub fn source_of(config: &EmployeeConfig, field: ReteachField) -> Option<&FieldSource> {
    config.mapping.source(field)
}

/// A short, stable fingerprint of a field's source (FNV-1a over a canonical description). The
/// memory of a left-out field is tied to it: mapping the field differently tries it again.
pub fn source_fingerprint(source: &FieldSource) -> String {
    let description = match source {
        FieldSource::Attribute { name, values } => {
            let mut text = format!("attribute:{name}");
            for (from, to) in values {
                text.push_str(&format!("\u{1f}{from}\u{1e}{to}"));
            }
            text
        }
        FieldSource::Constant(text) => format!("constant:{text}"),
        FieldSource::Template(text) => format!("template:{text}"),
        FieldSource::Unmapped => "unmapped".to_string(),
    };
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in description.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// A write to reteach: a new user's fields or an update's changed fields.
pub enum Write<'a> {
    /// `POST /customer`.
    Create(&'a mut CustomerFields),
    /// `PUT /customer/{id}` with the reteach names of the changed fields.
    Update(&'a mut CustomerPatch, &'a mut Vec<&'static str>),
}

impl Write<'_> {
    /// Whether the write sends `field` at all (a value, or `null` to clear it); only optional
    /// fields count.
    pub fn sends(&self, field: ReteachField) -> bool {
        field.row().configurable
            && match self {
                Write::Create(fields) => !fields.value(field).is_empty(),
                Write::Update(patch, _) => patch.value(field).is_some(),
            }
    }

    /// Whether the write sets an optional `field` to a value (not `null`).
    pub fn sets_value(&self, field: ReteachField) -> bool {
        match self {
            Write::Create(_) => self.sends(field),
            Write::Update(patch, _) => {
                field.row().configurable
                    && patch.value(field).is_some_and(|value| !value.is_empty())
            }
        }
    }

    /// Leaves an optional `field` out of the write.
    pub fn remove(&mut self, field: ReteachField) {
        if !field.row().configurable {
            return;
        }
        match self {
            Write::Create(fields) => fields.put(field, field.row().kind.empty()),
            Write::Update(patch, changed) => {
                patch.leave_out(field);
                changed.retain(|name| *name != field.name());
            }
        }
    }

    /// Whether nothing is left to send (an update whose only changes were left out).
    pub fn is_empty(&self) -> bool {
        match self {
            Write::Create(_) => false,
            Write::Update(_, changed) => changed.is_empty(),
        }
    }
}

/// The optional fields `write` set to a value that `answer` does not carry: reteach accepted but
/// did not keep them.
pub fn not_echoed(write: &Write<'_>, answer: &ReteachCustomer) -> Vec<ReteachField> {
    configurable_fields()
        .filter(|field| write.sets_value(*field) && answer.value(*field).is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::model::Gender;

    #[test]
    fn reads_the_refused_properties_of_every_message_shape() {
        // An array, as `nest_message` joins it.
        assert_eq!(
            refused_properties("HTTP 400: property position should not exist"),
            vec!["position"]
        );
        assert_eq!(
            refused_properties(
                "HTTP 400: property position should not exist; property location should not exist"
            ),
            vec!["position", "location"]
        );
        // One string naming several, with other validation errors in between.
        assert_eq!(
            refused_properties(
                "property location should not exist, email must be an email, property position should not exist."
            ),
            vec!["location", "position"]
        );
        // Repeated names are reported once; nested names keep their path.
        assert_eq!(
            refused_properties(
                "property position should not exist; property position should not exist; property tags.0.x should not exist"
            ),
            vec!["position", "tags.0.x"]
        );
    }

    #[test]
    fn other_messages_name_no_property() {
        for message in [
            "",
            "HTTP 400: email must be an email",
            "property should not exist",
            "property position must be a string",
            "property  position should not exist",
            "property posi tion should not exist",
        ] {
            assert!(refused_properties(message).is_empty(), "{message}");
        }
    }

    #[test]
    fn only_pure_property_messages_are_kept_unscrubbed() {
        assert!(only_refused_properties(
            "property position should not exist"
        ));
        assert!(only_refused_properties(
            "property position should not exist, property location should not exist."
        ));
        assert!(!only_refused_properties(
            "property position should not exist; Jane Doe already exists"
        ));
        assert!(!only_refused_properties("email must be an email"));
    }

    #[test]
    fn a_field_is_stripped_from_creates_and_updates() {
        let mut fields = CustomerFields {
            position: Some("Engineer".into()),
            gender: Some(Gender::Male),
            ..CustomerFields::default()
        };
        let mut write = Write::Create(&mut fields);
        assert!(write.sends(ReteachField::Position));
        write.remove(ReteachField::Position);
        assert!(!write.sends(ReteachField::Position));
        assert!(!write.is_empty());
        assert_eq!(fields.position, None);
        assert_eq!(fields.gender, Some(Gender::Male));

        let mut patch = CustomerPatch {
            position: Some(None),
            location: Some(Some("HQ".into())),
            ..CustomerPatch::default()
        };
        let mut changed = vec!["position", "location"];
        let mut write = Write::Update(&mut patch, &mut changed);
        assert!(write.sends(ReteachField::Position));
        assert!(!write.sets_value(ReteachField::Position), "a clear");
        assert!(write.sets_value(ReteachField::Location));
        write.remove(ReteachField::Location);
        assert!(!write.is_empty());
        write.remove(ReteachField::Position);
        assert!(write.is_empty());
        assert_eq!(patch, CustomerPatch::default());
    }

    #[test]
    fn a_value_missing_from_the_answer_was_not_kept() {
        let mut patch = CustomerPatch {
            position: Some(Some("Lead".into())),
            department: Some(None),
            gender: Some(Some(Gender::Female)),
            ..CustomerPatch::default()
        };
        let mut changed = vec!["position", "department", "gender"];
        let write = Write::Update(&mut patch, &mut changed);
        let answer = ReteachCustomer {
            id: "c1".into(),
            gender: Some(Gender::Female),
            ..ReteachCustomer::default()
        };
        // A cleared field is not evidence either way.
        assert_eq!(not_echoed(&write, &answer), vec![ReteachField::Position]);
    }

    #[test]
    fn the_fingerprint_follows_the_source() {
        let plain = source_fingerprint(&FieldSource::attribute("position"));
        assert_eq!(
            plain,
            source_fingerprint(&FieldSource::attribute("position"))
        );
        assert_eq!(plain.len(), 16);
        assert_ne!(plain, source_fingerprint(&FieldSource::attribute("office")));
        assert_ne!(
            plain,
            source_fingerprint(&FieldSource::Template("{position}".into()))
        );
        let mapped = FieldSource::Attribute {
            name: "position".into(),
            values: [("a".to_string(), "b".to_string())].into(),
        };
        assert_ne!(plain, source_fingerprint(&mapped));
        assert_eq!(optional_field("location"), Some(ReteachField::Location));
        assert_eq!(optional_field("email"), None);
        assert_eq!(optional_field("setActiveAt"), None);
    }
}
