//! `spec.mapping`, `spec.selector` and `spec.tags` of an EmployeeSync (issue 17): where each
//! reteach field takes its value from, which employees are synced, and which reteach tags they get. Validated further in
//! [`crate::jobs::settings`], which names the field of an invalid value.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use crate::sync::field_table::{reteach_fields, ReteachField};

macro_rules! mapping_spec {
    (
        login { $($login:tt)* }
        mapped {
            $(($v:ident, $m:ident, $name:literal, $ty:ty, $source:expr, $comparison:ident,
                $clears:ident, $personal:ident, $cleaning:ident, $doc:literal))*
        }
        lock { $($lock:tt)* }
    ) => {
        /// Where the reteach fields take their values from. A field left out keeps its default
        /// source (shown in brackets); `email`, the Personio id and the lock dates are not
        /// configurable.
        #[skip_serializing_none]
        #[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
        pub struct EmployeeMappingSpec {
            $(
                #[doc = $doc]
                #[serde(rename = $name)]
                pub $m: Option<FieldSourceSpec>,
            )*
        }

        impl EmployeeMappingSpec {
            /// The source given for `field`, if any.
            pub fn source(&self, field: ReteachField) -> Option<&FieldSourceSpec> {
                match field {
                    $(ReteachField::$v => self.$m.as_ref(),)*
                    _ => None,
                }
            }
        }
    };
}
reteach_fields!(mapping_spec);

/// One field's source: exactly one of `attribute`, `constant`, `template` or `unmapped: true`.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct FieldSourceSpec {
    /// A Personio attribute by its API name: a standard one (`office`, `employment_type`,
    /// `subcompany`, …) or a custom one (`dynamic_12345`).
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-z0-9_]+$"))]
    pub attribute: Option<String>,
    /// The same value for everyone.
    #[schemars(length(min = 1, max = 255))]
    pub constant: Option<String>,
    /// Text with `{attribute}` placeholders, e.g. `{position} ({dynamic_12345})`. An empty
    /// attribute renders as nothing.
    #[schemars(length(min = 1, max = 255))]
    pub template: Option<String>,
    /// With `attribute`: Personio value → reteach value (compared after trimming); other values
    /// pass through unchanged.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    /// The operator neither writes nor compares this field; reteach keeps what it has.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unmapped: bool,
}

/// Which employees the resource syncs, by attribute values: those matching every `include`
/// condition and none of the `exclude` conditions. An employee who leaves the selection is
/// treated like one whose contract ended: their reteach user is locked, never deleted. One who
/// enters it is synced on the next run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct EmployeeSelectorSpec {
    /// Conditions that must all match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub include: Vec<AttributeMatchSpec>,
    /// Conditions none of which may match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub exclude: Vec<AttributeMatchSpec>,
}

/// The attribute's value is one of `values` (compared trimmed, ignoring case). An employee
/// without a value matches no condition.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttributeMatchSpec {
    /// A Personio attribute by its API name (`department`, `office`, `employment_type`,
    /// `subcompany`, `dynamic_12345`, …).
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-z0-9_]+$"))]
    pub attribute: String,
    /// Accepted values.
    #[schemars(length(min = 1, max = 100))]
    pub values: Vec<String>,
}

/// One reteach tag rule: exactly one of `attribute`, `constant` or `template`. An employee gets
/// the rule's tag when it renders non-empty (trimmed, at most 100 characters; a longer one is
/// not set and reported in `status.failures`). The operator only removes tags it set itself
/// (`status.managedTags`); tags set by hand under other names stay.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct TagRuleSpec {
    /// A Personio attribute by its API name (`department`, `office`, `dynamic_12345`, …): the tag
    /// is its trimmed value.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-z0-9_]+$"))]
    pub attribute: Option<String>,
    /// With `attribute`: Personio value → tag (compared after trimming); other values pass
    /// through unchanged.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    /// With `attribute`: text put before the value, e.g. `dept:` gives `dept:Sales`.
    #[schemars(length(min = 1, max = 50))]
    pub prefix: Option<String>,
    /// The same tag for everyone the resource syncs.
    #[schemars(length(min = 1, max = 100))]
    pub constant: Option<String>,
    /// Text with `{attribute}` placeholders, e.g. `team-{department}`. An empty attribute renders
    /// as nothing; a template that renders blank gives no tag.
    #[schemars(length(min = 1, max = 100))]
    pub template: Option<String>,
}
