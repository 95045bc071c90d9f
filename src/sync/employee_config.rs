//! What a resource configures about the employee sync (issue 17): where each mapped reteach field
//! takes its value from (`spec.mapping`) and which employees are synced at all (`spec.selector`).
//! The defaults reproduce the fixed mapping of [`super::employee_fields::EMPLOYEE_FIELDS`]. The
//! Personio attributes a configuration reads follow from it ([`EmployeeConfig::attributes`]): the
//! operator requests and requires exactly those (data minimisation).

use std::collections::{BTreeMap, BTreeSet};

use super::employee_fields::{FieldMapping, ReteachField, EMPLOYEE_FIELDS, OPTIONAL_ROWS};
use super::model::PersonioEmployee;

/// Attributes every configuration reads: the login and the locking rule (Personio sends `id`
/// unasked).
pub const ALWAYS_REQUIRED: [&str; 3] = ["email", "hire_date", "termination_date"];

/// Attributes read when the credential returns them, never required: `status` and
/// `contract_end_date` refine the locking rule, `last_modified_at` is informative.
pub const OPTIONAL: [&str; 3] = ["status", "contract_end_date", "last_modified_at"];

/// Where one reteach field's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldSource {
    /// A Personio attribute (standard, e.g. `office`, or custom, e.g. `dynamic_33400`), with an
    /// optional value map (Personio value → reteach value; values not in a non-empty map are
    /// passed through).
    Attribute {
        /// The attribute's API name.
        name: String,
        /// Optional value map.
        values: BTreeMap<String, String>,
    },
    /// The same text for everyone.
    Constant(String),
    /// Text with `{attribute}` placeholders, e.g. `{office} / {department}`. A placeholder whose
    /// attribute is empty renders as nothing; a template that renders blank is no value.
    Template(String),
    /// The operator does not write this field.
    Unmapped,
}

impl FieldSource {
    /// A plain attribute without a value map.
    pub fn attribute(name: &str) -> Self {
        Self::Attribute {
            name: name.to_string(),
            values: BTreeMap::new(),
        }
    }

    /// The attributes this source reads.
    pub fn attributes(&self) -> Vec<String> {
        match self {
            Self::Attribute { name, .. } => vec![name.clone()],
            Self::Template(template) => template_attributes(template).unwrap_or_default(),
            Self::Constant(_) | Self::Unmapped => Vec::new(),
        }
    }

    /// The raw (uncleaned) value for `employee`.
    pub fn value(&self, employee: &PersonioEmployee) -> Option<String> {
        match self {
            Self::Attribute { name, values } => {
                let raw = employee.attribute(name)?;
                let trimmed = raw.trim();
                Some(
                    values
                        .get(trimmed)
                        .cloned()
                        .unwrap_or_else(|| trimmed.to_string()),
                )
            }
            Self::Constant(text) => Some(text.clone()),
            Self::Template(template) => render_template(template, employee),
            Self::Unmapped => None,
        }
    }
}

/// The source of each reteach text field the mapping may change. `email` (the login), the
/// Personio id (`externalId`) and the lock dates are not configurable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmployeeMapping {
    /// `firstName`.
    pub first_name: FieldSource,
    /// `lastName`.
    pub last_name: FieldSource,
    /// `position`.
    pub position: FieldSource,
    /// `department`.
    pub department: FieldSource,
    /// `location`.
    pub location: FieldSource,
    /// `gender`; the value after the value map must be one `map_gender` knows.
    pub gender: FieldSource,
    /// `company`; unmapped by default.
    pub company: FieldSource,
    /// `language`; unmapped by default. The value after the value map must be one
    /// `map_language` knows (`EN`, `DE`, …); any other leaves the user's language as it is.
    pub language: FieldSource,
    /// `note`; unmapped by default.
    pub note: FieldSource,
}

impl Default for EmployeeMapping {
    fn default() -> Self {
        Self {
            first_name: FieldSource::attribute("first_name"),
            last_name: FieldSource::attribute("last_name"),
            position: FieldSource::attribute("position"),
            department: FieldSource::attribute("department"),
            location: FieldSource::attribute("office"),
            gender: FieldSource::attribute("gender"),
            company: FieldSource::Unmapped,
            language: FieldSource::Unmapped,
            note: FieldSource::Unmapped,
        }
    }
}

impl EmployeeMapping {
    /// The sources with reteach's field names.
    pub fn fields(&self) -> [(&'static str, &FieldSource); 9] {
        [
            ("firstName", &self.first_name),
            ("lastName", &self.last_name),
            ("position", &self.position),
            ("department", &self.department),
            ("location", &self.location),
            ("gender", &self.gender),
            ("company", &self.company),
            ("language", &self.language),
            ("note", &self.note),
        ]
    }
}

/// One condition of the selector: the attribute's value is one of `values` (compared trimmed and
/// ignoring case).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeMatch {
    /// The attribute's API name.
    pub attribute: String,
    /// Accepted values.
    pub values: Vec<String>,
}

impl AttributeMatch {
    fn matches(&self, employee: &PersonioEmployee) -> bool {
        let Some(value) = employee.attribute(&self.attribute) else {
            return false;
        };
        let value = value.trim();
        self.values
            .iter()
            .any(|wanted| wanted.trim().eq_ignore_ascii_case(value))
    }
}

/// Which employees the resource syncs: those matching every `include` condition and no `exclude`
/// condition. An empty selector selects everyone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmployeeSelector {
    /// All must match.
    pub include: Vec<AttributeMatch>,
    /// None may match.
    pub exclude: Vec<AttributeMatch>,
}

impl EmployeeSelector {
    /// Whether `employee` is selected.
    pub fn selects(&self, employee: &PersonioEmployee) -> bool {
        self.include
            .iter()
            .all(|condition| condition.matches(employee))
            && !self
                .exclude
                .iter()
                .any(|condition| condition.matches(employee))
    }

    fn attributes(&self) -> impl Iterator<Item = &str> {
        self.include
            .iter()
            .chain(&self.exclude)
            .map(|condition| condition.attribute.as_str())
    }
}

/// The employee sync's configuration: mapping, selector and tag rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmployeeConfig {
    /// Where each field's value comes from.
    pub mapping: EmployeeMapping,
    /// Which employees are synced.
    pub selector: EmployeeSelector,
    /// The reteach tags each employee should carry (`spec.tags`).
    pub tags: Vec<super::employee_tags::TagRule>,
}

impl EmployeeConfig {
    /// The field table of this configuration: the rows of
    /// [`super::employee_fields::EMPLOYEE_FIELDS`] without the unmapped fields, which the
    /// operator then neither compares nor writes (their `source` column names the default), plus
    /// the rows of [`OPTIONAL_ROWS`] that are mapped.
    pub fn table(&self) -> Vec<FieldMapping> {
        let unmapped: Vec<ReteachField> = [
            (ReteachField::FirstName, &self.mapping.first_name),
            (ReteachField::LastName, &self.mapping.last_name),
            (ReteachField::Position, &self.mapping.position),
            (ReteachField::Department, &self.mapping.department),
            (ReteachField::Location, &self.mapping.location),
            (ReteachField::Gender, &self.mapping.gender),
            (ReteachField::Company, &self.mapping.company),
            (ReteachField::Language, &self.mapping.language),
            (ReteachField::Note, &self.mapping.note),
        ]
        .into_iter()
        .filter(|(_, source)| **source == FieldSource::Unmapped)
        .map(|(field, _)| field)
        .collect();
        EMPLOYEE_FIELDS
            .iter()
            .chain(&OPTIONAL_ROWS)
            .filter(|row| !unmapped.contains(&row.field))
            .copied()
            .collect()
    }

    /// The Personio attributes this configuration reads, sorted: exactly those the credential
    /// must whitelist (besides the optional [`OPTIONAL`] ones).
    pub fn attributes(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = ALWAYS_REQUIRED.iter().map(|s| s.to_string()).collect();
        for (_, source) in self.mapping.fields() {
            names.extend(source.attributes());
        }
        names.extend(self.selector.attributes().map(str::to_string));
        for rule in &self.tags {
            names.extend(rule.attributes());
        }
        names.into_iter().collect()
    }
}

/// Why a configured value is invalid (`Display` names no value of a record).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A template's braces do not pair up, or a placeholder is not an attribute name.
    #[error("invalid template: {0}")]
    Template(&'static str),
    /// An attribute name is not a Personio API name.
    #[error("{0:?} is not a Personio attribute name (lowercase letters, digits and _)")]
    AttributeName(String),
}

/// Checks that `name` looks like a Personio attribute API name.
pub fn check_attribute_name(name: &str) -> Result<(), ConfigError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(ConfigError::AttributeName(name.to_string()))
    }
}

/// The attribute names of a template's placeholders, in order.
pub fn template_attributes(template: &str) -> Result<Vec<String>, ConfigError> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(ConfigError::Template("'}' without '{'"));
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or(ConfigError::Template("'{' without '}'"))?;
        let name = &after[..close];
        if name.contains('{') {
            return Err(ConfigError::Template("nested '{'"));
        }
        check_attribute_name(name)?;
        names.push(name.to_string());
        rest = &after[close + 1..];
    }
    Ok(names)
}

fn render_template(template: &str, employee: &PersonioEmployee) -> Option<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}')?;
        if let Some(value) = employee.attribute(&after[..close]) {
            out.push_str(value.trim());
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    let trimmed = out.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn employee() -> PersonioEmployee {
        let mut employee = PersonioEmployee {
            id: "7".into(),
            department: Some("Sales".into()),
            office: Some("Berlin".into()),
            gender: Some("female".into()),
            ..Default::default()
        };
        employee
            .other
            .insert("dynamic_1234".into(), "E-0042".into());
        employee
            .other
            .insert("employment_type".into(), "external".into());
        employee
    }

    #[test]
    fn the_default_reads_exactly_todays_attributes() {
        let attributes = EmployeeConfig::default().attributes();
        let mut today: Vec<&str> = crate::personio::REQUIRED_ATTRIBUTES.to_vec();
        today.sort_unstable();
        assert_eq!(attributes, today);
    }

    #[test]
    fn the_attributes_follow_mapping_and_selector() {
        let mut config = EmployeeConfig::default();
        config.mapping.gender = FieldSource::Unmapped;
        config.mapping.position = FieldSource::Constant("Staff".into());
        config.mapping.location = FieldSource::Template("{office} ({dynamic_1234})".into());
        config.selector.exclude.push(AttributeMatch {
            attribute: "employment_type".into(),
            values: vec!["external".into()],
        });
        config.tags.push(super::super::employee_tags::TagRule {
            source: FieldSource::Template("team-{dynamic_77}".into()),
            prefix: String::new(),
        });
        let attributes = config.attributes();
        assert!(!attributes.contains(&"gender".to_string()));
        assert!(!attributes.contains(&"position".to_string()));
        for wanted in [
            "office",
            "dynamic_1234",
            "employment_type",
            "hire_date",
            "dynamic_77",
        ] {
            assert!(attributes.contains(&wanted.to_string()), "{wanted}");
        }
    }

    #[test]
    fn an_unmapped_field_leaves_the_table() {
        assert_eq!(EmployeeConfig::default().table(), EMPLOYEE_FIELDS.to_vec());
        let mut config = EmployeeConfig::default();
        config.mapping.department = FieldSource::Unmapped;
        let table = config.table();
        assert_eq!(table.len(), EMPLOYEE_FIELDS.len() - 1);
        assert!(table
            .iter()
            .all(|row| row.field != ReteachField::Department));
    }

    #[test]
    fn sources_read_attributes_constants_templates_and_value_maps() {
        let employee = employee();
        assert_eq!(
            FieldSource::attribute("dynamic_1234")
                .value(&employee)
                .as_deref(),
            Some("E-0042")
        );
        assert_eq!(
            FieldSource::Template("{office} / {department} {missing}".into())
                .value(&employee)
                .as_deref(),
            Some("Berlin / Sales")
        );
        assert_eq!(
            FieldSource::Template("{missing}".into()).value(&employee),
            None
        );
        let mapped = FieldSource::Attribute {
            name: "gender".into(),
            values: [("female".to_string(), "diverse".to_string())].into(),
        };
        assert_eq!(mapped.value(&employee).as_deref(), Some("diverse"));
        assert_eq!(
            FieldSource::Constant("Academy".into())
                .value(&employee)
                .as_deref(),
            Some("Academy")
        );
        assert_eq!(FieldSource::Unmapped.value(&employee), None);
    }

    #[test]
    fn the_selector_includes_and_excludes_ignoring_case() {
        let employee = employee();
        let condition = |attribute: &str, value: &str| AttributeMatch {
            attribute: attribute.into(),
            values: vec![value.into()],
        };
        assert!(EmployeeSelector::default().selects(&employee));
        let sales = EmployeeSelector {
            include: vec![condition("department", "sales")],
            exclude: Vec::new(),
        };
        assert!(sales.selects(&employee));
        let not_external = EmployeeSelector {
            include: vec![condition("department", "Sales")],
            exclude: vec![condition("employment_type", "External")],
        };
        assert!(!not_external.selects(&employee));
        let missing = EmployeeSelector {
            include: vec![condition("dynamic_9", "x")],
            exclude: Vec::new(),
        };
        assert!(
            !missing.selects(&employee),
            "a missing attribute matches nothing"
        );
    }

    #[test]
    fn templates_are_checked() {
        assert_eq!(
            template_attributes("team-{department}").unwrap(),
            vec!["department"]
        );
        assert!(template_attributes("team-{department").is_err());
        assert!(template_attributes("team}").is_err());
        assert!(template_attributes("{Department}").is_err());
        assert!(template_attributes("{}").is_err());
        assert!(template_attributes("plain").unwrap().is_empty());
    }
}
