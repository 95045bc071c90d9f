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

/// A validated customer body.
#[derive(Clone, Debug)]
pub(crate) struct CustomerInput {
    pub external_id: Change<String>,
    pub email: Change<String>,
    pub user_name: Change<String>,
    pub first_name: Change<String>,
    pub last_name: Change<String>,
    pub position: Change<String>,
    pub department: Change<String>,
    pub location: Change<String>,
    pub gender: Change<String>,
    pub company: Change<String>,
    pub language: Change<String>,
    pub note: Change<String>,
    pub set_active_at: Change<DateTime<Utc>>,
    pub set_inactive_at: Change<DateTime<Utc>>,
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
            external_id: string(body, "externalId", &mut errors),
            email: string(body, "email", &mut errors),
            user_name: string(body, "userName", &mut errors),
            first_name: string(body, "firstName", &mut errors),
            last_name: string(body, "lastName", &mut errors),
            position: string(body, "position", &mut errors),
            department: string(body, "department", &mut errors),
            location: string(body, "location", &mut errors),
            gender: string(body, "gender", &mut errors),
            company: string(body, "company", &mut errors),
            language: string(body, "language", &mut errors),
            note: string(body, "note", &mut errors),
            set_active_at: date(body, "setActiveAt", &mut errors),
            set_inactive_at: date(body, "setInactiveAt", &mut errors),
        };
        if let Change::Set(email) = &input.email {
            if !is_email(email) {
                errors.push("email must be an email".to_string());
            }
        }
        if let Change::Set(gender) = &input.gender {
            if !matches!(gender.as_str(), "MALE" | "FEMALE" | "DIVERSE") {
                errors.push(
                    "gender must be one of the following values: MALE, FEMALE, DIVERSE".to_string(),
                );
            }
        }
        if let Change::Set(language) = &input.language {
            if !matches!(
                language.as_str(),
                "EN" | "DE" | "FR" | "ES" | "IT" | "UK" | "RU"
            ) {
                errors.push(
                    "language must be one of the following values: EN, DE, FR, ES, IT, UK, RU"
                        .to_string(),
                );
            }
        }
        if errors.is_empty() {
            Ok(input)
        } else {
            Err(errors)
        }
    }

    /// Writes the changes into `customer`.
    pub fn apply(&self, customer: &mut SimCustomer) {
        self.external_id.apply(&mut customer.external_id);
        self.email.apply(&mut customer.email);
        self.user_name.apply(&mut customer.user_name);
        self.first_name.apply(&mut customer.first_name);
        self.last_name.apply(&mut customer.last_name);
        self.position.apply(&mut customer.position);
        self.department.apply(&mut customer.department);
        self.location.apply(&mut customer.location);
        self.gender.apply(&mut customer.gender);
        self.company.apply(&mut customer.company);
        self.language.apply(&mut customer.language);
        self.note.apply(&mut customer.note);
        self.set_active_at.apply(&mut customer.set_active_at);
        self.set_inactive_at.apply(&mut customer.set_inactive_at);
    }
}
