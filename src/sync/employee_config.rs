//! What a resource configures about the employee sync (issue 17): where each mapped reteach field
//! takes its value from (`spec.mapping`) and which employees are synced at all (`spec.selector`).
//! The mapping overrides the source column of the field table
//! ([`super::field_table::FIELDS`]); its defaults are that column. The Personio attributes a
//! configuration reads follow from it ([`EmployeeConfig::attributes`]): the operator requests and
//! requires exactly those (data minimisation).

use std::collections::BTreeSet;

use super::employee_tags::TagRule;
use super::field_table::{
    reteach_fields, FieldMapping, ReteachField, Source, FIELDS, LOCK_WINDOW_ATTRIBUTES,
};
use super::model::PersonioEmployee;

pub use super::field_source::{
    check_attribute_name, template_attributes, ConfigError, FieldSource,
};

/// Attributes read when the credential returns them, never required: `status` and
/// `contract_end_date` refine the locking rule, `last_modified_at` is informative.
pub const OPTIONAL: [&str; 3] = ["status", "contract_end_date", "last_modified_at"];

macro_rules! employee_mapping {
    (
        login { $($login:tt)* }
        mapped { $(($v:ident, $m:ident, $name:literal, $($mapped:tt)*))* }
        lock { $($lock:tt)* }
    ) => {
        /// The source of each reteach field the mapping may change (the `mapped` rows of the
        /// field table). `email` (the login), the Personio id (`externalId`) and the lock dates
        /// are not configurable.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct EmployeeMapping {
            $(#[doc = $name] pub $m: FieldSource,)*
        }

        impl EmployeeMapping {
            /// The configured source of `field`; `None` for a field that is not configurable.
            pub fn source(&self, field: ReteachField) -> Option<&FieldSource> {
                match field {
                    $(ReteachField::$v => Some(&self.$m),)*
                    _ => None,
                }
            }

            /// The configured source of `field`, to change it; `None` for a field that is not
            /// configurable.
            pub fn source_mut(&mut self, field: ReteachField) -> Option<&mut FieldSource> {
                match field {
                    $(ReteachField::$v => Some(&mut self.$m),)*
                    _ => None,
                }
            }
        }

        impl Default for EmployeeMapping {
            /// The source column of the field table.
            fn default() -> Self {
                Self {
                    $($m: default_source(ReteachField::$v),)*
                }
            }
        }
    };
}
reteach_fields!(employee_mapping);

/// The default source of `field`: its row's attribute, else none.
fn default_source(field: ReteachField) -> FieldSource {
    match field.row().source {
        Source::Attribute(name) => FieldSource::attribute(name),
        Source::Configured | Source::LockWindow => FieldSource::Unmapped,
    }
}

impl EmployeeMapping {
    /// The configurable fields with their sources, in table order.
    pub fn fields(&self) -> impl Iterator<Item = (ReteachField, &FieldSource)> {
        FIELDS
            .iter()
            .filter_map(|row| Some((row.field, self.source(row.field)?)))
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
    pub tags: Vec<TagRule>,
}

impl EmployeeConfig {
    /// The field table of this configuration: the rows of [`FIELDS`] without the configurable
    /// fields the mapping leaves unmapped, which the operator then neither compares nor writes
    /// (the `source` column of a row names its default).
    pub fn table(&self) -> Vec<FieldMapping> {
        FIELDS
            .iter()
            .filter(|row| self.mapping.source(row.field) != Some(&FieldSource::Unmapped))
            .copied()
            .collect()
    }

    /// The Personio attributes this configuration reads, sorted: exactly those the credential
    /// must whitelist (besides the optional [`OPTIONAL`] ones). The login's and the lock
    /// window's attributes are always read.
    pub fn attributes(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = LOCK_WINDOW_ATTRIBUTES
            .iter()
            .map(|s| s.to_string())
            .collect();
        for row in FIELDS {
            match self.mapping.source(row.field) {
                Some(source) => names.extend(source.attributes()),
                None => {
                    if let Source::Attribute(name) = row.source {
                        names.insert(name.to_string());
                    }
                }
            }
        }
        names.extend(self.selector.attributes().map(str::to_string));
        for rule in &self.tags {
            names.extend(rule.attributes());
        }
        names.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::field_source::tests::employee;

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
        config.tags.push(TagRule {
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
        let default = EmployeeConfig::default().table();
        let unmapped_by_default = ["company", "language", "note"];
        assert_eq!(default.len(), FIELDS.len() - unmapped_by_default.len());
        assert!(default
            .iter()
            .all(|row| !unmapped_by_default.contains(&row.field.name())));
        let mut config = EmployeeConfig::default();
        config.mapping.department = FieldSource::Unmapped;
        let table = config.table();
        assert_eq!(table.len(), default.len() - 1);
        assert!(table
            .iter()
            .all(|row| row.field != ReteachField::Department));
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
}
