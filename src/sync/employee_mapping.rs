//! Maps one Personio employee to the reteach fields the operator owns, validating strictly.
//! Failure reasons are fixed strings: they end up in status and must never carry a value of the record.

use chrono::NaiveDate;

use super::employee_config::EmployeeConfig;
use super::employee_tags::{wanted_tags, WantedTags};
use super::field_table::{field_access, reteach_fields, Cleaning, DebugValue, FieldValue, FIELDS};
use super::model::{Gender, PersonioEmployee};
use super::redact::Redacted;

/// Longest text reteach accepts in a name or attribute field; longer values are shortened.
pub const MAX_TEXT_CHARS: usize = 255;

/// Why an employee cannot be transferred. `Display` is the fixed, PII-free reason shown in status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The employee has no e-mail address; reteach needs one as the login.
    #[error("no e-mail address")]
    NoEmail,
    /// The e-mail address is not syntactically valid; reteach would refuse it.
    #[error("invalid e-mail address")]
    InvalidEmail,
    /// Termination or contract end lies before the hire date; the lock window would be empty.
    #[error("end of employment before hire date")]
    EndBeforeHire,
}

impl MappingError {
    /// The reason as a static string, for status entries.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NoEmail => "no e-mail address",
            Self::InvalidEmail => "invalid e-mail address",
            Self::EndBeforeHire => "end of employment before hire date",
        }
    }
}

macro_rules! desired_employee {
    (
        login { $($login:tt)* }
        mapped { $(($v:ident, $m:ident, $name:literal, $ty:ty, $($mapped:tt)*))* }
        lock { $($lock:tt)* }
    ) => {
        /// The reteach fields an employee should have, before time zones turn dates into
        /// instants: the `mapped` rows of the field table, cleaned as their rows say. `Debug`
        /// redacts the personal fields of the table and the e-mail address.
        #[derive(Clone, Default, PartialEq, Eq)]
        pub struct DesiredEmployee {
            /// Personio id (reteach `externalId`).
            pub external_id: String,
            /// Trimmed e-mail address (case preserved).
            pub email: String,
            $(#[doc = $name] pub $m: Option<$ty>,)*
            /// First day of employment.
            pub hire_date: Option<NaiveDate>,
            /// `termination_date`, else `contract_end_date`: the last day of employment.
            pub end_of_employment: Option<NaiveDate>,
        }
        field_access!(plain DesiredEmployee { $($m: $v,)* });
    };
}
reteach_fields!(desired_employee);

impl std::fmt::Debug for DesiredEmployee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("DesiredEmployee");
        out.field("external_id", &self.external_id)
            .field("email", &Redacted(&self.email));
        for row in FIELDS.iter().filter(|row| row.configurable) {
            out.field(
                row.member,
                &DebugValue(&self.value(row.field), row.personal),
            );
        }
        out.field("hire_date", &self.hire_date)
            .field("end_of_employment", &self.end_of_employment)
            .finish()
    }
}

/// Validates one employee and maps it to the fields reteach should hold, with the default
/// mapping.
pub fn map_employee(employee: &PersonioEmployee) -> Result<DesiredEmployee, MappingError> {
    map_configured(employee, &EmployeeConfig::default())
}

/// [`map_employee`] with the resource's mapping.
fn map_configured(
    employee: &PersonioEmployee,
    config: &EmployeeConfig,
) -> Result<DesiredEmployee, MappingError> {
    let email = clean_text(employee.email.as_deref()).ok_or(MappingError::NoEmail)?;
    if !is_valid_email(&email) {
        return Err(MappingError::InvalidEmail);
    }
    map_fields(employee, email, config)
}

/// One employee, mapped once for the whole run (the reteach lookups and the plan both use it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedEmployee {
    /// Personio employee id.
    pub personio_id: String,
    /// The fields reteach should hold, or why the employee cannot be transferred.
    pub result: Result<DesiredEmployee, MappingError>,
    /// When only the e-mail address is missing or invalid: every other field, with the address
    /// left empty. Employees already linked to a reteach user (often leavers whose address was
    /// removed) still get their lock dates, while their login stays as it is.
    pub without_email: Option<DesiredEmployee>,
    /// Whether the resource's selector selects the employee. One it does not select is only
    /// locked, when already linked to a reteach user, like one whose contract ended.
    pub selected: bool,
    /// The reteach tags the resource's tag rules give the employee.
    pub tags: WantedTags,
}

/// Maps one employee once with the resource's `config`: [`map_employee`], and for an address
/// problem the other fields too.
pub fn map_record(employee: &PersonioEmployee, config: &EmployeeConfig) -> MappedEmployee {
    let result = map_configured(employee, config);
    let without_email = match result {
        Err(MappingError::NoEmail | MappingError::InvalidEmail) => {
            map_fields(employee, String::new(), config).ok()
        }
        _ => None,
    };
    MappedEmployee {
        personio_id: employee.id.clone(),
        result,
        without_email,
        selected: config.selector.selects(employee),
        tags: wanted_tags(&config.tags, employee),
    }
}

fn map_fields(
    employee: &PersonioEmployee,
    email: String,
    config: &EmployeeConfig,
) -> Result<DesiredEmployee, MappingError> {
    let end_of_employment = employee.termination_date.or(employee.contract_end_date);
    if let (Some(hire), Some(end)) = (employee.hire_date, end_of_employment) {
        if end < hire {
            return Err(MappingError::EndBeforeHire);
        }
    }
    let mut desired = DesiredEmployee {
        external_id: employee.id.clone(),
        email,
        hire_date: employee.hire_date,
        end_of_employment,
        ..DesiredEmployee::default()
    };
    for (field, source) in config.mapping.fields() {
        let raw = source.value(employee);
        let value = match field.row().cleaning {
            Cleaning::Gender => FieldValue::Gender(raw.as_deref().and_then(map_gender)),
            Cleaning::Language => FieldValue::Text(raw.as_deref().and_then(map_language)),
            Cleaning::Trimmed | Cleaning::Login | Cleaning::Window => {
                FieldValue::Text(clean_text(raw.as_deref()))
            }
        };
        desired.put(field, value);
    }
    Ok(desired)
}

/// Maps Personio's gender value to reteach's; unknown values (and "prefer not to say") map to none.
pub fn map_gender(raw: &str) -> Option<Gender> {
    match raw.trim().to_lowercase().as_str() {
        "male" | "m" => Some(Gender::Male),
        "female" | "f" => Some(Gender::Female),
        "diverse" | "divers" | "d" | "x" => Some(Gender::Diverse),
        _ => None,
    }
}

/// reteach's `language` values (`CustomerUpdateInput.language`).
pub const LANGUAGES: [&str; 7] = ["EN", "DE", "FR", "ES", "IT", "UK", "RU"];

/// A language value (after the value map) as reteach's enum, ignoring case and surrounding space;
/// any other value is none, which leaves the user's language as it is.
pub fn map_language(raw: &str) -> Option<String> {
    let upper = raw.trim().to_ascii_uppercase();
    LANGUAGES.contains(&upper.as_str()).then_some(upper)
}

/// Trims a text value; empty becomes `None`, long values are cut to [`MAX_TEXT_CHARS`].
fn clean_text(value: Option<&str>) -> Option<String> {
    let trimmed = value?.trim();
    if trimmed.is_empty() {
        None
    } else {
        Some(truncate_chars(trimmed, MAX_TEXT_CHARS))
    }
}

/// Cuts `text` to at most `max` characters, never splitting a character.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((byte_index, _)) => text[..byte_index].to_string(),
        None => text.to_string(),
    }
}

/// A deliberately plain syntax check (`local@domain.tld`, no spaces, RFC length limits). It
/// rejects what reteach would refuse as a login without trying to implement RFC 5322.
pub fn is_valid_email(email: &str) -> bool {
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    if local.is_empty() || local.len() > 64 || domain.contains('@') {
        return false;
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    labels.iter().all(|label| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || !c.is_ascii())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn employee() -> PersonioEmployee {
        PersonioEmployee {
            id: "17".into(),
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
            email: Some("ada@example.com".into()),
            position: Some("Engineer".into()),
            department: Some("R&D".into()),
            office: Some("Berlin".into()),
            gender: Some("female".into()),
            hire_date: NaiveDate::from_ymd_opt(2020, 1, 1),
            ..Default::default()
        }
    }

    #[test]
    fn maps_all_fields_of_a_complete_employee() {
        let desired = map_employee(&employee()).unwrap();
        assert_eq!(desired.external_id, "17");
        assert_eq!(desired.email, "ada@example.com");
        assert_eq!(desired.first_name.as_deref(), Some("Ada"));
        assert_eq!(desired.last_name.as_deref(), Some("Lovelace"));
        assert_eq!(desired.position.as_deref(), Some("Engineer"));
        assert_eq!(desired.department.as_deref(), Some("R&D"));
        assert_eq!(desired.location.as_deref(), Some("Berlin"));
        assert_eq!(desired.gender, Some(Gender::Female));
        assert_eq!(desired.hire_date, NaiveDate::from_ymd_opt(2020, 1, 1));
        assert_eq!(desired.end_of_employment, None);
    }

    #[test]
    fn skips_employee_without_email() {
        let mut e = employee();
        e.email = None;
        assert_eq!(map_employee(&e), Err(MappingError::NoEmail));
        e.email = Some("   ".into());
        assert_eq!(map_employee(&e), Err(MappingError::NoEmail));
        assert_eq!(MappingError::NoEmail.to_string(), "no e-mail address");
    }

    #[test]
    fn skips_employee_with_invalid_email() {
        for bad in [
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "a da@example.com",
            "ada@example..com",
            ".ada@example.com",
            "ada@-example.com",
        ] {
            let mut e = employee();
            e.email = Some(bad.into());
            assert_eq!(map_employee(&e), Err(MappingError::InvalidEmail), "{bad}");
        }
        assert_eq!(
            MappingError::InvalidEmail.reason(),
            "invalid e-mail address"
        );
    }

    #[test]
    fn accepts_common_email_forms() {
        for good in [
            "ada@example.com",
            "ada.lovelace+lms@mail.example.co.uk",
            "ADA@EXAMPLE.COM",
            "jürgen@müller.de",
        ] {
            assert!(is_valid_email(good), "{good}");
        }
    }

    #[test]
    fn skips_employee_whose_employment_ends_before_hire() {
        let mut e = employee();
        e.termination_date = NaiveDate::from_ymd_opt(2019, 12, 31);
        assert_eq!(map_employee(&e), Err(MappingError::EndBeforeHire));
        assert_eq!(
            MappingError::EndBeforeHire.to_string(),
            "end of employment before hire date"
        );
    }

    #[test]
    fn accepts_employment_ending_on_hire_day() {
        let mut e = employee();
        e.termination_date = NaiveDate::from_ymd_opt(2020, 1, 1);
        assert!(map_employee(&e).is_ok());
    }

    #[test]
    fn termination_date_wins_over_contract_end() {
        let mut e = employee();
        e.contract_end_date = NaiveDate::from_ymd_opt(2025, 6, 30);
        assert_eq!(
            map_employee(&e).unwrap().end_of_employment,
            NaiveDate::from_ymd_opt(2025, 6, 30)
        );
        e.termination_date = NaiveDate::from_ymd_opt(2024, 3, 31);
        assert_eq!(
            map_employee(&e).unwrap().end_of_employment,
            NaiveDate::from_ymd_opt(2024, 3, 31)
        );
    }

    #[test]
    fn omits_missing_department_and_office() {
        let mut e = employee();
        e.department = None;
        e.office = Some(" ".into());
        let desired = map_employee(&e).unwrap();
        assert_eq!(desired.department, None);
        assert_eq!(desired.location, None);
    }

    #[test]
    fn truncates_long_names_at_a_character_boundary() {
        let mut e = employee();
        e.first_name = Some("é".repeat(300));
        let desired = map_employee(&e).unwrap();
        let first = desired.first_name.unwrap();
        assert_eq!(first.chars().count(), MAX_TEXT_CHARS);
        assert!(first.chars().all(|c| c == 'é'));
    }

    #[test]
    fn keeps_names_of_exactly_the_limit() {
        assert_eq!(truncate_chars(&"x".repeat(255), 255).len(), 255);
        assert_eq!(truncate_chars("short", 255), "short");
    }

    #[test]
    fn maps_everything_but_the_email_for_linked_users() {
        let mut e = employee();
        e.email = None;
        let mapped = map_record(&e, &EmployeeConfig::default());
        assert_eq!(mapped.result, Err(MappingError::NoEmail));
        let desired = mapped.without_email.unwrap();
        assert_eq!(desired.email, "");
        assert_eq!(desired.first_name.as_deref(), Some("Ada"));
        e.termination_date = NaiveDate::from_ymd_opt(2019, 1, 1);
        assert_eq!(
            map_record(&e, &EmployeeConfig::default()).without_email,
            None
        );
        e.email = Some("ada@example.com".into());
        assert_eq!(
            map_record(&e, &EmployeeConfig::default()).result,
            Err(MappingError::EndBeforeHire)
        );
    }

    #[test]
    fn a_configured_mapping_fills_the_fields_from_its_sources() {
        use super::super::employee_config::{AttributeMatch, FieldSource};
        let mut e = employee();
        e.other.insert("dynamic_1".into(), "E-17".into());
        let mut config = EmployeeConfig::default();
        config.mapping.position = FieldSource::Template("{position} ({dynamic_1})".into());
        config.mapping.location = FieldSource::Constant("HQ".into());
        config.mapping.gender = FieldSource::Attribute {
            name: "gender".into(),
            values: [("female".to_string(), "d".to_string())].into(),
        };
        config.mapping.department = FieldSource::Unmapped;
        config.selector.include.push(AttributeMatch {
            attribute: "office".into(),
            values: vec!["Munich".into()],
        });
        let mapped = map_record(&e, &config);
        let desired = mapped.result.unwrap();
        assert_eq!(desired.position.as_deref(), Some("Engineer (E-17)"));
        assert_eq!(desired.location.as_deref(), Some("HQ"));
        assert_eq!(desired.gender, Some(Gender::Diverse));
        assert_eq!(desired.department, None);
        assert!(!mapped.selected, "office Berlin is not in the selection");
        assert!(map_record(&e, &EmployeeConfig::default()).selected);
    }

    #[test]
    fn maps_gender_values_case_insensitively() {
        assert_eq!(map_gender("Male"), Some(Gender::Male));
        assert_eq!(map_gender("m"), Some(Gender::Male));
        assert_eq!(map_gender("FEMALE"), Some(Gender::Female));
        assert_eq!(map_gender("f"), Some(Gender::Female));
        for diverse in ["diverse", "Divers", "d", "X"] {
            assert_eq!(map_gender(diverse), Some(Gender::Diverse), "{diverse}");
        }
        assert_eq!(map_gender("prefer not to say"), None);
        assert_eq!(map_gender(""), None);
    }
}
