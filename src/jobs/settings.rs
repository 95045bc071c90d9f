//! The spec values a run needs, typed and validated in one place, so both kinds (and the demo)
//! treat a bad value the same way: the run stalls with reason `InvalidSpec` and a message naming
//! the field.

use std::time::Duration;

use chrono_tz::Tz;

use crate::api::duration::{parse_full_resync_interval, parse_interval, DurationError};
use crate::api::{
    AttributeMatchSpec, CertificateSyncSpec, EmployeeSyncSpec, FieldSourceSpec, TagRuleSpec,
};
use crate::sync::employee_config::{
    check_attribute_name, template_attributes, AttributeMatch, EmployeeConfig, FieldSource,
};
use crate::sync::employee_tags::{TagRule, MAX_TAG_CHARS, MAX_TAG_RULES};
use crate::sync::field_table::configurable_fields;

/// Shortest `fullResyncInterval` of a CertificateSync: a full pass lists every completion.
const MIN_CERTIFICATE_FULL_RESYNC: Duration = Duration::from_secs(3600);

/// An invalid spec value. `Display` is the condition message.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A duration field is invalid or out of bounds.
    #[error("{owner}spec.{field}: {source}")]
    Duration {
        /// `EmployeeSync <name>: ` when the value belongs to another resource, else empty.
        owner: String,
        /// The field, e.g. `interval`.
        field: &'static str,
        /// What is wrong with it.
        source: DurationError,
    },
    /// A value of `mapping`, `selector` or `tags` is invalid; `field` is its path, e.g.
    /// `mapping.position.template`.
    #[error("spec.{field}: {message}")]
    Mapping {
        /// The path below `spec`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// `timeZone` is not an IANA time zone.
    #[error(
        "{owner}spec.timeZone: {value:?} is not an IANA time zone; use e.g. Europe/Berlin or UTC"
    )]
    TimeZone {
        /// `EmployeeSync <name>: ` when the value belongs to another resource, else empty.
        owner: String,
        /// The value as written.
        value: String,
    },
}

/// A run interval (`spec.interval`), at least the operator's minimum and at most 24 h.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval(Duration);

impl Interval {
    /// Parses `spec.interval`.
    pub fn parse(text: &str, minimum: Duration) -> Result<Self, SpecError> {
        parse_interval(text, minimum)
            .map(Self)
            .map_err(|source| duration_error("interval", source))
    }

    /// The interval as a duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

/// When a kind runs: a run starts every `interval`, and once per `full_resync_interval` a run
/// compares everything instead of only what changed since the last one. Both kinds read it from
/// the same two spec fields with the same rules; only the shortest full resync is the kind's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cadence {
    /// `spec.interval`.
    pub interval: Interval,
    /// `spec.fullResyncInterval`.
    pub full_resync_interval: Duration,
}

impl Cadence {
    /// Parses `spec.interval` (at least the operator's `minimum`) and `spec.fullResyncInterval`
    /// (at least `shortest_full_resync`, at most
    /// [`MAX_FULL_RESYNC_INTERVAL`](crate::api::duration::MAX_FULL_RESYNC_INTERVAL)).
    pub fn parse(
        interval: &str,
        full_resync_interval: &str,
        minimum: Duration,
        shortest_full_resync: Duration,
    ) -> Result<Self, SpecError> {
        Ok(Self {
            interval: Interval::parse(interval, minimum)?,
            full_resync_interval: parse_full_resync_interval(
                full_resync_interval,
                shortest_full_resync,
            )
            .map_err(|source| duration_error("fullResyncInterval", source))?,
        })
    }
}

/// The company's time zone (`spec.timeZone` of an EmployeeSync): the day boundary for the
/// locking rule and for certificate dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeZone(Tz);

impl TimeZone {
    /// Parses an IANA zone name.
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        text.parse::<Tz>()
            .map(Self)
            .map_err(|_| SpecError::TimeZone {
                owner: String::new(),
                value: text.to_string(),
            })
    }

    /// The zone.
    pub fn get(self) -> Tz {
        self.0
    }
}

/// A kind's validated spec values: how they are read from the spec (the same rules wherever the
/// kind is run: operator, demo, bench) and what every kind has.
pub trait KindSettings: Sized {
    /// The kind's spec.
    type Spec;

    /// Validates the spec; `minimum` is the operator's shortest interval.
    fn from_spec(spec: &Self::Spec, minimum: Duration) -> Result<Self, SpecError>;

    /// `spec.interval` and `spec.fullResyncInterval`.
    fn cadence(&self) -> &Cadence;
}

/// The validated spec values of an EmployeeSync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmployeeSettings {
    /// `spec.mapping`, `spec.selector` and `spec.tags`.
    pub config: EmployeeConfig,
    /// `spec.interval` and `spec.fullResyncInterval` (a full resync at least as long as the
    /// operator's minimum interval).
    pub cadence: Cadence,
    /// `spec.timeZone`.
    pub time_zone: TimeZone,
}

impl KindSettings for EmployeeSettings {
    type Spec = EmployeeSyncSpec;

    fn from_spec(spec: &EmployeeSyncSpec, minimum: Duration) -> Result<Self, SpecError> {
        Ok(Self {
            cadence: Cadence::parse(&spec.interval, &spec.full_resync_interval, minimum, minimum)?,
            time_zone: TimeZone::parse(&spec.time_zone)?,
            config: employee_config(spec)?,
        })
    }

    fn cadence(&self) -> &Cadence {
        &self.cadence
    }
}

/// `spec.mapping` and `spec.selector` as the sync core's configuration (also what `preflight`
/// checks the credential's whitelist against).
pub fn employee_config(spec: &EmployeeSyncSpec) -> Result<EmployeeConfig, SpecError> {
    let mut config = EmployeeConfig::default();
    if let Some(mapping) = &spec.mapping {
        for field in configurable_fields() {
            if let (Some(given), Some(slot)) =
                (mapping.source(field), config.mapping.source_mut(field))
            {
                *slot = field_source(field.name(), given)?;
            }
        }
    }
    if let Some(selector) = &spec.selector {
        config.selector.include = conditions("selector.include", &selector.include)?;
        config.selector.exclude = conditions("selector.exclude", &selector.exclude)?;
    }
    config.tags = tag_rules(&spec.tags)?;
    Ok(config)
}

/// `spec.tags` as tag rules; the first invalid rule names its index.
fn tag_rules(given: &[TagRuleSpec]) -> Result<Vec<TagRule>, SpecError> {
    if given.len() > MAX_TAG_RULES {
        return Err(SpecError::Mapping {
            field: "tags".to_string(),
            message: format!("at most {MAX_TAG_RULES} rules"),
        });
    }
    given
        .iter()
        .enumerate()
        .map(|(index, rule)| tag_rule(index, rule))
        .collect()
}

fn tag_rule(index: usize, given: &TagRuleSpec) -> Result<TagRule, SpecError> {
    let invalid = |field: &str, message: String| SpecError::Mapping {
        field: format!("tags[{index}]{field}"),
        message,
    };
    let chosen = [
        given.attribute.is_some(),
        given.constant.is_some(),
        given.template.is_some(),
    ]
    .into_iter()
    .filter(|set| *set)
    .count();
    if chosen != 1 {
        return Err(invalid(
            "",
            "set exactly one of attribute, constant or template".to_string(),
        ));
    }
    if given.attribute.is_none() {
        if !given.values.is_empty() {
            return Err(invalid(".values", "a value map needs an attribute".into()));
        }
        if given.prefix.is_some() {
            return Err(invalid(".prefix", "a prefix needs an attribute".into()));
        }
    }
    let too_long = |text: &str| text.chars().count() > MAX_TAG_CHARS;
    let prefix = given.prefix.clone().unwrap_or_default();
    if too_long(&prefix) {
        return Err(invalid(
            ".prefix",
            format!("longer than {MAX_TAG_CHARS} characters"),
        ));
    }
    let source = if let Some(attribute) = &given.attribute {
        check_attribute_name(attribute)
            .map_err(|error| invalid(".attribute", error.to_string()))?;
        FieldSource::mapped(attribute, &given.values)
    } else if let Some(template) = &given.template {
        template_attributes(template).map_err(|error| invalid(".template", error.to_string()))?;
        if too_long(template) {
            return Err(invalid(
                ".template",
                format!("longer than {MAX_TAG_CHARS} characters"),
            ));
        }
        FieldSource::Template(template.clone())
    } else {
        let constant = given.constant.as_deref().unwrap_or_default().trim();
        if constant.is_empty() || too_long(constant) {
            return Err(invalid(
                ".constant",
                format!("must be 1 to {MAX_TAG_CHARS} characters (trimmed)"),
            ));
        }
        FieldSource::Constant(constant.to_string())
    };
    Ok(TagRule { source, prefix })
}

fn field_source(name: &str, given: &FieldSourceSpec) -> Result<FieldSource, SpecError> {
    let invalid = |field: String, message: String| SpecError::Mapping { field, message };
    let chosen = [
        given.attribute.is_some(),
        given.constant.is_some(),
        given.template.is_some(),
        given.unmapped,
    ]
    .into_iter()
    .filter(|set| *set)
    .count();
    if chosen != 1 {
        return Err(invalid(
            format!("mapping.{name}"),
            "set exactly one of attribute, constant, template or unmapped".to_string(),
        ));
    }
    if !given.values.is_empty() && given.attribute.is_none() {
        return Err(invalid(
            format!("mapping.{name}.values"),
            "a value map needs an attribute".to_string(),
        ));
    }
    if let Some(attribute) = &given.attribute {
        check_attribute_name(attribute)
            .map_err(|error| invalid(format!("mapping.{name}.attribute"), error.to_string()))?;
        return Ok(FieldSource::mapped(attribute, &given.values));
    }
    if let Some(template) = &given.template {
        template_attributes(template)
            .map_err(|error| invalid(format!("mapping.{name}.template"), error.to_string()))?;
        return Ok(FieldSource::Template(template.clone()));
    }
    if let Some(constant) = &given.constant {
        return Ok(FieldSource::Constant(constant.clone()));
    }
    Ok(FieldSource::Unmapped)
}

fn conditions(path: &str, given: &[AttributeMatchSpec]) -> Result<Vec<AttributeMatch>, SpecError> {
    given
        .iter()
        .enumerate()
        .map(|(index, condition)| {
            check_attribute_name(&condition.attribute).map_err(|error| SpecError::Mapping {
                field: format!("{path}[{index}].attribute"),
                message: error.to_string(),
            })?;
            if condition.values.is_empty() {
                return Err(SpecError::Mapping {
                    field: format!("{path}[{index}].values"),
                    message: "name at least one value".to_string(),
                });
            }
            Ok(AttributeMatch {
                attribute: condition.attribute.clone(),
                values: condition.values.clone(),
            })
        })
        .collect()
}

/// The validated spec values of a CertificateSync. Its time zone is the one of the EmployeeSync
/// it references, validated by [`CertificateSettings::with_company`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertificateSettings {
    /// `spec.interval` and `spec.fullResyncInterval` (a full resync of at least an hour: it lists
    /// every completion).
    pub cadence: Cadence,
}

impl KindSettings for CertificateSettings {
    type Spec = CertificateSyncSpec;

    fn from_spec(spec: &CertificateSyncSpec, minimum: Duration) -> Result<Self, SpecError> {
        let cadence = Cadence::parse(
            &spec.interval,
            &spec.full_resync_interval,
            minimum,
            MIN_CERTIFICATE_FULL_RESYNC,
        )?;
        Ok(Self { cadence })
    }

    fn cadence(&self) -> &Cadence {
        &self.cadence
    }
}

impl CertificateSettings {
    /// The company time zone from the referenced EmployeeSync (`name`): an invalid one stalls the
    /// CertificateSync exactly as it stalls the EmployeeSync, naming where to fix it.
    pub fn with_company(
        employee_sync: &EmployeeSyncSpec,
        name: &str,
    ) -> Result<TimeZone, SpecError> {
        TimeZone::parse(&employee_sync.time_zone).map_err(|error| match error {
            SpecError::TimeZone { value, .. } => SpecError::TimeZone {
                owner: format!("EmployeeSync {name}: "),
                value,
            },
            other => other,
        })
    }
}

fn duration_error(field: &'static str, source: DurationError) -> SpecError {
    SpecError::Duration {
        owner: String::new(),
        field,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn employee_spec(time_zone: &str) -> EmployeeSyncSpec {
        serde_json::from_value(serde_json::json!({
            "timeZone": time_zone,
            "personio": {"credentialsSecretRef": {"name": "p"}},
            "reteach": {"credentialsSecretRef": {"name": "r"}},
        }))
        .unwrap()
    }

    #[test]
    fn an_invalid_time_zone_is_refused_for_both_kinds_with_the_same_sentence() {
        let spec = employee_spec("Mars/Olympus");
        let own = EmployeeSettings::from_spec(&spec, MINUTE).unwrap_err();
        assert_eq!(
            own.to_string(),
            "spec.timeZone: \"Mars/Olympus\" is not an IANA time zone; use e.g. Europe/Berlin or UTC"
        );
        let borrowed = CertificateSettings::with_company(&spec, "personio").unwrap_err();
        assert_eq!(
            borrowed.to_string(),
            format!("EmployeeSync personio: {own}")
        );
    }

    #[test]
    fn a_valid_employee_spec_gives_typed_values() {
        let settings =
            EmployeeSettings::from_spec(&employee_spec("Europe/Berlin"), MINUTE).unwrap();
        assert_eq!(settings.cadence.interval.get(), Duration::from_secs(300));
        assert_eq!(
            settings.cadence.full_resync_interval,
            Duration::from_secs(24 * 3600)
        );
        assert_eq!(settings.time_zone.get(), chrono_tz::Europe::Berlin);
    }

    #[test]
    fn no_mapping_and_no_selector_is_the_default_configuration() {
        let settings =
            EmployeeSettings::from_spec(&employee_spec("Europe/Berlin"), MINUTE).unwrap();
        assert_eq!(settings.config, EmployeeConfig::default());
    }

    #[test]
    fn a_mapping_and_a_selector_become_the_configuration() {
        let mut spec = employee_spec("UTC");
        spec.mapping = serde_json::from_value(serde_json::json!({
            "position": {"template": "{position} ({dynamic_1})"},
            "gender": {"attribute": "gender", "values": {" m ": "male"}},
            "department": {"unmapped": true},
        }))
        .unwrap();
        spec.selector = serde_json::from_value(serde_json::json!({
            "exclude": [{"attribute": "employment_type", "values": ["external"]}],
        }))
        .unwrap();
        let config = EmployeeSettings::from_spec(&spec, MINUTE).unwrap().config;
        assert_eq!(
            config.mapping.position,
            FieldSource::Template("{position} ({dynamic_1})".into())
        );
        assert_eq!(config.mapping.department, FieldSource::Unmapped);
        assert_eq!(
            config.mapping.gender,
            FieldSource::Attribute {
                name: "gender".into(),
                values: [("m".to_string(), "male".to_string())].into()
            }
        );
        assert_eq!(config.mapping.location, FieldSource::attribute("office"));
        assert_eq!(config.selector.exclude[0].attribute, "employment_type");
    }

    #[test]
    fn an_invalid_mapping_or_selector_names_the_field() {
        let cases = [
            (
                serde_json::json!({"mapping": {"position": {}}}),
                "spec.mapping.position: set exactly one of attribute, constant, template or unmapped",
            ),
            (
                serde_json::json!({"mapping": {"location": {"constant": "HQ", "values": {"a": "b"}}}}),
                "spec.mapping.location.values: a value map needs an attribute",
            ),
            (
                serde_json::json!({"mapping": {"department": {"template": "team-{department"}}}),
                "spec.mapping.department.template: invalid template: '{' without '}'",
            ),
            (
                serde_json::json!({"mapping": {"firstName": {"attribute": "First Name"}}}),
                "spec.mapping.firstName.attribute: \"First Name\" is not a Personio attribute name (lowercase letters, digits and _)",
            ),
            (
                serde_json::json!({"selector": {"include": [{"attribute": "office", "values": []}]}}),
                "spec.selector.include[0].values: name at least one value",
            ),
            (
                serde_json::json!({"tags": [{"constant": "all"}, {}]}),
                "spec.tags[1]: set exactly one of attribute, constant or template",
            ),
            (
                serde_json::json!({"tags": [{"template": "team-{department"}]}),
                "spec.tags[0].template: invalid template: '{' without '}'",
            ),
            (
                serde_json::json!({"tags": [{"constant": "all", "prefix": "x"}]}),
                "spec.tags[0].prefix: a prefix needs an attribute",
            ),
            (
                serde_json::json!({"tags": [{"constant": "  "}]}),
                "spec.tags[0].constant: must be 1 to 100 characters (trimmed)",
            ),
            (
                serde_json::json!({"tags": [{"attribute": "Department"}]}),
                "spec.tags[0].attribute: \"Department\" is not a Personio attribute name (lowercase letters, digits and _)",
            ),
        ];
        for (patch, message) in cases {
            let mut spec = serde_json::to_value(employee_spec("UTC")).unwrap();
            for (key, value) in patch.as_object().unwrap() {
                spec[key] = value.clone();
            }
            let spec: EmployeeSyncSpec = serde_json::from_value(spec).unwrap();
            let error = EmployeeSettings::from_spec(&spec, MINUTE).unwrap_err();
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn tag_rules_become_the_configuration_and_count_as_attributes() {
        let mut spec = employee_spec("UTC");
        spec.tags = serde_json::from_value(serde_json::json!([
            {"attribute": "department", "prefix": "dept:", "values": {" Sales ": "Vertrieb"}},
            {"constant": " personio "},
            {"template": "team-{dynamic_5}"},
        ]))
        .unwrap();
        let config = EmployeeSettings::from_spec(&spec, MINUTE).unwrap().config;
        assert_eq!(
            config.tags,
            vec![
                TagRule {
                    source: FieldSource::Attribute {
                        name: "department".into(),
                        values: [("Sales".to_string(), "Vertrieb".to_string())].into(),
                    },
                    prefix: "dept:".into(),
                },
                TagRule {
                    source: FieldSource::Constant("personio".into()),
                    prefix: String::new(),
                },
                TagRule {
                    source: FieldSource::Template("team-{dynamic_5}".into()),
                    prefix: String::new(),
                },
            ]
        );
        assert!(config.attributes().contains(&"dynamic_5".to_string()));
        spec.tags = vec![TagRuleSpec::default(); MAX_TAG_RULES + 1];
        let error = EmployeeSettings::from_spec(&spec, MINUTE).unwrap_err();
        assert_eq!(error.to_string(), "spec.tags: at most 20 rules");
    }

    #[test]
    fn an_interval_below_the_minimum_names_the_field() {
        let error = Interval::parse("30s", MINUTE).unwrap_err();
        assert_eq!(
            error.to_string(),
            "spec.interval: \"30s\" is shorter than the minimum of 1m"
        );
    }

    #[test]
    fn a_certificate_full_resync_below_an_hour_is_refused() {
        let mut spec: CertificateSyncSpec = serde_json::from_value(serde_json::json!({
            "employeeSyncRef": {"name": "personio"},
            "documentCategory": {"name": "Certificates"},
        }))
        .unwrap();
        spec.full_resync_interval = "30m".into();
        let error = CertificateSettings::from_spec(&spec, MINUTE).unwrap_err();
        assert!(
            error.to_string().starts_with("spec.fullResyncInterval: "),
            "{error}"
        );
    }
}
