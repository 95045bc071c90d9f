//! Where one value comes from in Personio: an attribute (optionally through a value map), a
//! constant, or a template over attributes. `spec.mapping` gives each reteach field a source,
//! `spec.tags` each tag rule one.

use std::collections::BTreeMap;

use super::model::PersonioEmployee;

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

    /// An attribute with the value map of a spec; the keys are trimmed, as the attribute's value
    /// is before the lookup.
    pub fn mapped(name: &str, values: &BTreeMap<String, String>) -> Self {
        Self::Attribute {
            name: name.to_string(),
            values: values
                .iter()
                .map(|(from, to)| (from.trim().to_string(), to.clone()))
                .collect(),
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
pub(super) mod tests {
    use super::*;

    /// An employee with a department, an office, a gender and two custom attributes.
    pub(in crate::sync) fn employee() -> PersonioEmployee {
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
