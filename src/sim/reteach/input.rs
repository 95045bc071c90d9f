//! Validation of `CustomerCreateInput` / `CustomerUpdateInput` bodies. Omitted fields stay as they
//! are, `null` clears a field, anything else must have the right type. Fields the simulator does
//! not model (birthDate, …) are accepted and ignored, as reteach ignores unknown ones.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::model::SimCustomer;

/// What a body says about one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Change<T> {
    Keep,
    Clear,
    Set(T),
}

impl<T: Clone> Change<T> {
    fn apply(&self, field: &mut Option<T>) {
        match self {
            Change::Keep => {}
            Change::Clear => *field = None,
            Change::Set(value) => *field = Some(value.clone()),
        }
    }

    /// The value after applying to `current`.
    pub fn result(&self, current: &Option<T>) -> Option<T> {
        let mut value = current.clone();
        self.apply(&mut value);
        value
    }
}

/// What class-validator checks on a text field of the body, beyond being a string.
#[derive(Clone, Copy, Debug)]
enum Check {
    /// Nothing more (`IsString`).
    Text,
    /// `IsEmail`.
    Email,
    /// `IsEnum` over these values.
    OneOf(&'static [&'static str]),
}

impl Check {
    /// The message when `value`, given for field `key`, fails the check.
    fn refuses(self, key: &str, value: &str) -> Option<String> {
        match self {
            Check::Text => None,
            Check::Email => (!is_email(value)).then(|| format!("{key} must be an email")),
            Check::OneOf(values) => (!values.contains(&value)).then(|| {
                let values = values.join(", ");
                format!("{key} must be one of the following values: {values}")
            }),
        }
    }
}

/// `gender` values.
const GENDERS: [&str; 3] = ["MALE", "FEMALE", "DIVERSE"];
/// `language` values.
const LANGUAGES: [&str; 7] = ["EN", "DE", "FR", "ES", "IT", "UK", "RU"];

/// Where [`SimCustomer`] keeps a field of the body.
type Slot<T> = fn(&mut SimCustomer) -> &mut Option<T>;

/// The text fields of `CustomerCreateInput` / `CustomerUpdateInput` the simulator models: JSON
/// key, check, where it is kept.
const TEXT_FIELDS: [(&str, Check, Slot<String>); 12] = [
    ("externalId", Check::Text, |c| &mut c.external_id),
    ("email", Check::Email, |c| &mut c.email),
    ("userName", Check::Text, |c| &mut c.user_name),
    ("firstName", Check::Text, |c| &mut c.first_name),
    ("lastName", Check::Text, |c| &mut c.last_name),
    ("position", Check::Text, |c| &mut c.position),
    ("department", Check::Text, |c| &mut c.department),
    ("location", Check::Text, |c| &mut c.location),
    ("gender", Check::OneOf(&GENDERS), |c| &mut c.gender),
    ("company", Check::Text, |c| &mut c.company),
    ("language", Check::OneOf(&LANGUAGES), |c| &mut c.language),
    ("note", Check::Text, |c| &mut c.note),
];

/// The date fields (ISO 8601 strings).
const DATE_FIELDS: [(&str, Slot<DateTime<Utc>>); 2] = [
    ("setActiveAt", |c| &mut c.set_active_at),
    ("setInactiveAt", |c| &mut c.set_inactive_at),
];

/// A validated customer body: what it says about each field.
#[derive(Clone, Debug)]
pub(crate) struct CustomerInput {
    /// One change for each of [`TEXT_FIELDS`], in its order.
    texts: Vec<Change<String>>,
    /// One change for each of [`DATE_FIELDS`], in its order.
    dates: Vec<Change<DateTime<Utc>>>,
}

/// A plausible e-mail address (what class-validator's `IsEmail` roughly accepts).
pub(crate) fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.chars().any(char::is_whitespace)
}

fn string(body: &Map<String, Value>, key: &str, errors: &mut Vec<String>) -> Change<String> {
    match body.get(key) {
        None => Change::Keep,
        Some(Value::Null) => Change::Clear,
        Some(Value::String(s)) => Change::Set(s.clone()),
        Some(_) => {
            errors.push(format!("{key} must be a string"));
            Change::Keep
        }
    }
}

fn date(body: &Map<String, Value>, key: &str, errors: &mut Vec<String>) -> Change<DateTime<Utc>> {
    match body.get(key) {
        None => Change::Keep,
        Some(Value::Null) => Change::Clear,
        Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
            Ok(at) => Change::Set(at.with_timezone(&Utc)),
            Err(_) => {
                errors.push(format!("{key} must be a valid ISO 8601 date string"));
                Change::Keep
            }
        },
        Some(_) => {
            errors.push(format!("{key} must be a valid ISO 8601 date string"));
            Change::Keep
        }
    }
}

impl CustomerInput {
    /// Validates a body; the error is the list of class-validator style messages (never values).
    pub fn parse(body: &Value) -> Result<Self, Vec<String>> {
        let Some(body) = body.as_object() else {
            return Err(vec!["body must be an object".to_string()]);
        };
        let mut errors = Vec::new();
        let input = Self {
            texts: TEXT_FIELDS
                .iter()
                .map(|(key, _, _)| string(body, key, &mut errors))
                .collect(),
            dates: DATE_FIELDS
                .iter()
                .map(|(key, _)| date(body, key, &mut errors))
                .collect(),
        };
        for ((key, check, _), change) in TEXT_FIELDS.iter().zip(&input.texts) {
            if let Change::Set(value) = change {
                errors.extend(check.refuses(key, value));
            }
        }
        if errors.is_empty() {
            Ok(input)
        } else {
            Err(errors)
        }
    }

    /// What the body says about the text field `key` (one of [`TEXT_FIELDS`]; any other key is
    /// left as it is).
    pub fn text(&self, key: &str) -> &Change<String> {
        TEXT_FIELDS
            .iter()
            .zip(&self.texts)
            .find(|((field, _, _), _)| *field == key)
            .map_or(&Change::Keep, |(_, change)| change)
    }

    /// Writes the changes into `customer`.
    pub fn apply(&self, customer: &mut SimCustomer) {
        for ((_, _, slot), change) in TEXT_FIELDS.iter().zip(&self.texts) {
            change.apply(slot(customer));
        }
        for ((_, slot), change) in DATE_FIELDS.iter().zip(&self.dates) {
            change.apply(slot(customer));
        }
    }
}
