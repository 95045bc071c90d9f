//! The reteach fields the operator writes, declared once as data: one row per field with its
//! reteach name, its value type, its default Personio source, how it is compared, whether a value
//! missing in Personio clears it, and whether it is personal. `spec.mapping` overrides the source
//! column ([`super::employee_config::EmployeeConfig::table`]); everything else that walks the
//! fields — the diff, the create body, the field lists of reports, the Personio attributes a
//! resource requires, the fields the academy may refuse, redacted `Debug` — reads this table.
//!
//! The table is a macro, [`reteach_fields!`], so that the typed members of the value structs are
//! generated from the same rows the runtime table ([`FIELDS`]) is: a field cannot be in one and
//! missing in the other.
//!
//! # Adding a field
//!
//! A new reteach field touches at most four files by hand:
//!
//! 1. this file: one row in [`reteach_fields!`] (in the `mapped` group when `spec.mapping` may
//!    configure it; its doc is the field's `kubectl explain` text);
//! 2. `CHANGELOG.md`;
//! 3. and 4. the reteach simulator, `src/sim/reteach/input.rs` and `src/sim/reteach/model.rs`,
//!    when the tests should see an academy that keeps the field (without them the simulator
//!    refuses it like an older academy, and the operator leaves it out: `status.unsupportedFields`).
//!
//! Generated, not written: the CRDs (`cargo run -- crdgen`) and the CRD reference
//! (`scripts/crd-reference.py --update`). Everything else follows from the row: the members of
//! `ReteachCustomer`, `CustomerFields`, `CustomerPatch` (`super::model`), `DesiredEmployee`,
//! `EmployeeMapping` and `crate::api::EmployeeMappingSpec`, their accessors and redacted `Debug`,
//! the default mapping, the attributes a resource requires, reading a reteach answer, the field
//! lists of dry-run reports, the fields the academy may refuse. A value type other than text,
//! [`Gender`] or [`Instant`] would need a [`FieldType`] implementation here and its reading in
//! `src/reteach/wire.rs`. The test `reteach::field_round_trip_tests` sends every row through all
//! of these types, so a row that one of them misses fails (most omissions do not compile).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// reteach's gender values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Gender {
    Male,
    Female,
    Diverse,
}

/// An instant as reteach writes it (`setActiveAt`).
pub type Instant = DateTime<Utc>;

/// The table. Calls `$callback!` with the rows in three groups: `login` (the e-mail address,
/// never configurable), `mapped` (what `spec.mapping` may configure) and `lock` (the lock window).
/// A row is `(Variant, member, "reteachName", Type, default source, comparison, clearing,
/// personal, cleaning, "doc of spec.mapping.<member>")`:
///
/// - default source: `Attribute("personio_name")`, `Configured` (unmapped unless configured) or
///   `LockWindow`;
/// - comparison: `Exact`, `IgnoringCase` or `LockByMeaning` ([`Comparison`]);
/// - clearing: `clears` (a value missing in Personio clears the field) or `keeps`;
/// - personal: `personal` (never in a log, `Debug` redacts it) or `shown`;
/// - cleaning: how a Personio value becomes the field's ([`Cleaning`]).
macro_rules! reteach_fields {
    ($callback:ident) => {
        $callback! {
            login {
                (Email, email, "email", String, Attribute("email"), IgnoringCase, keeps, personal, Login,
                    "The login; not configurable.")
            }
            mapped {
                (FirstName, first_name, "firstName", String, Attribute("first_name"), Exact,
                    clears, personal, Trimmed, "reteach `firstName` (`first_name`).")
                (LastName, last_name, "lastName", String, Attribute("last_name"), Exact, clears, personal, Trimmed, "reteach `lastName` (`last_name`).")
                (Position, position, "position", String, Attribute("position"), Exact, clears, shown, Trimmed, "reteach `position` (`position`).")
                (Department, department, "department", String, Attribute("department"), Exact,
                    clears, shown, Trimmed, "reteach `department` (`department`).")
                (Location, location, "location", String, Attribute("office"), Exact, clears, shown, Trimmed, "reteach `location` (`office`).")
                (Gender, gender, "gender", Gender, Attribute("gender"), Exact, clears, shown, Gender,
                    "reteach `gender` (`gender`). After the value map, the value must be one of `male`/`m`,\n`female`/`f`, `diverse`/`d`/`x`; any other value leaves the user without a gender.")
                (Company, company, "company", String, Configured, Exact, clears, shown, Trimmed,
                    "reteach `company` (unmapped: the operator leaves it alone unless this is set).")
                (Language, language, "language", String, Configured, Exact, keeps, shown, Language,
                    "reteach `language` (unmapped unless set). After the value map, the value must be one of\n`EN`, `DE`, `FR`, `ES`, `IT`, `UK`, `RU` (ignoring case); any other value, or none, leaves\nthe user's language as it is.")
                (Note, note, "note", String, Configured, Exact, clears, personal, Trimmed,
                    "reteach `note` (unmapped unless set).")
            }
            lock {
                (SetActiveAt, set_active_at, "setActiveAt", Instant, LockWindow, LockByMeaning,
                    clears, shown, Window, "When reteach unlocks the user; not configurable.")
                (SetInactiveAt, set_inactive_at, "setInactiveAt", Instant, LockWindow,
                    LockByMeaning, clears, shown, Window, "When reteach locks the user; not configurable.")
            }
        }
    };
}
pub(crate) use reteach_fields;

/// Where a reteach field's value comes from in Personio by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// One Personio attribute (by its API name), cleaned (trimmed, shortened, mapped).
    Attribute(&'static str),
    /// Only what `spec.mapping` configures; no default source.
    Configured,
    /// The lock window, from `hire_date` and the end of employment (`termination_date`, else
    /// `contract_end_date`) in the company time zone.
    LockWindow,
}

/// How the wanted value is compared with the one reteach holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// Equal values, or a change.
    Exact,
    /// Equal ignoring case and surrounding space (reteach compares logins that way).
    IgnoringCase,
    /// By what the date does, not its value: reteach may clear or rewrite a date once it fired.
    LockByMeaning,
}

/// The type of a field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Free text.
    Text,
    /// One of reteach's [`Gender`] values.
    Gender,
    /// An instant.
    Instant,
}

/// A field's value, wanted or held. Deliberately without `Debug`: it may be a name.
#[derive(Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// A text field's value.
    Text(Option<String>),
    /// The gender.
    Gender(Option<Gender>),
    /// A date.
    Instant(Option<Instant>),
}

impl Kind {
    /// No value of this kind.
    pub fn empty(self) -> FieldValue {
        match self {
            Self::Text => FieldValue::Text(None),
            Self::Gender => FieldValue::Gender(None),
            Self::Instant => FieldValue::Instant(None),
        }
    }
}

impl FieldValue {
    /// Whether there is no value.
    pub fn is_empty(&self) -> bool {
        match self {
            Self::Text(value) => value.is_none(),
            Self::Gender(value) => value.is_none(),
            Self::Instant(value) => value.is_none(),
        }
    }
}

/// A Rust type a field's value has: how it goes into and out of a [`FieldValue`].
pub trait FieldType: Sized + Clone {
    /// The kind of value.
    const KIND: Kind;
    /// `value` as a field value.
    fn wrap(value: Option<Self>) -> FieldValue;
    /// The value of `value`, or `None` for a value of another kind.
    fn unwrap(value: FieldValue) -> Option<Option<Self>>;
}

/// `FieldType` for a Rust type held by a `FieldValue` and `Kind` variant of the same name.
macro_rules! field_type {
    ($($rust:ty => $variant:ident),* $(,)?) => {$(
        impl FieldType for $rust {
            const KIND: Kind = Kind::$variant;
            fn wrap(value: Option<Self>) -> FieldValue {
                FieldValue::$variant(value)
            }
            fn unwrap(value: FieldValue) -> Option<Option<Self>> {
                match value {
                    FieldValue::$variant(value) => Some(value),
                    _ => None,
                }
            }
        }
    )*};
}

field_type!(String => Text, Gender => Gender, Instant => Instant);

/// How a Personio value is cleaned into a field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cleaning {
    /// The e-mail address: trimmed and checked, the employee is skipped without a valid one.
    Login,
    /// Trimmed and shortened; empty is no value.
    Trimmed,
    /// One of reteach's genders (`map_gender`); any other value is none.
    Gender,
    /// One of reteach's languages (`map_language`); any other value is none.
    Language,
    /// Computed from the lock window, not read from an attribute.
    Window,
}

/// The Personio attributes the lock window reads (besides the optional `contract_end_date` and
/// `status`).
pub const LOCK_WINDOW_ATTRIBUTES: [&str; 2] = ["hire_date", "termination_date"];

/// One row of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldMapping {
    /// The reteach field written.
    pub field: ReteachField,
    /// The field's member in the value structs (`first_name`), as `Debug` names it.
    pub member: &'static str,
    /// Where its value comes from by default.
    pub source: Source,
    /// How a difference is detected.
    pub comparison: Comparison,
    /// Whether a value missing in Personio clears the field in reteach (the operator owns the
    /// field), or leaves it as it is.
    pub may_be_cleared: bool,
    /// Whether the value is personal data (never logged; `Debug` redacts it).
    pub personal: bool,
    /// Whether `spec.mapping` may configure the field (and the academy may refuse it).
    pub configurable: bool,
    /// The value's type.
    pub kind: Kind,
    /// How a Personio value becomes the field's value.
    pub cleaning: Cleaning,
}

macro_rules! flag {
    (clears) => {
        true
    };
    (keeps) => {
        false
    };
    (personal) => {
        true
    };
    (shown) => {
        false
    };
    (mapped) => {
        true
    };
    (login) => {
        false
    };
    (lock) => {
        false
    };
}

macro_rules! runtime_table {
    ($(
        $group:ident { $(($variant:ident, $member:ident, $name:literal, $ty:ty, $source:expr,
            $comparison:ident, $clears:ident, $personal:ident, $cleaning:ident, $doc:literal))* }
    )*) => {
        /// A reteach user field the operator owns.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ReteachField {
            $($(#[doc = $name] $variant,)*)*
        }

        impl ReteachField {
            /// reteach's name of the field (dry-run reports name fields, never values).
            pub const fn name(self) -> &'static str {
                match self {
                    $($(Self::$variant => $name,)*)*
                }
            }

            /// The field's row.
            pub const fn row(self) -> FieldMapping {
                #[allow(unused_imports)]
                use Source::*;
                match self {
                    $($(Self::$variant => FieldMapping {
                        field: Self::$variant,
                        member: stringify!($member),
                        source: $source,
                        comparison: Comparison::$comparison,
                        may_be_cleared: flag!($clears),
                        personal: flag!($personal),
                        configurable: flag!($group),
                        kind: <$ty as FieldType>::KIND,
                        cleaning: Cleaning::$cleaning,
                    },)*)*
                }
            }
        }

        /// Every row, in reteach's order.
        pub const FIELDS: &[FieldMapping] = &[$($(ReteachField::$variant.row(),)*)*];
    };
}
reteach_fields!(runtime_table);

/// The fields `spec.mapping` may configure, in table order.
pub fn configurable_fields() -> impl Iterator<Item = ReteachField> {
    FIELDS
        .iter()
        .filter(|row| row.configurable)
        .map(|row| row.field)
}

/// The configurable field with reteach's name `name`.
pub fn configurable_field(name: &str) -> Option<ReteachField> {
    configurable_fields().find(|field| field.name() == name)
}

/// `value` for `Debug`: as it is, or only its shape when the field is personal.
pub struct DebugValue<'a>(pub &'a FieldValue, pub bool);

impl std::fmt::Debug for DebugValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let DebugValue(value, personal) = self;
        match value {
            FieldValue::Text(None) | FieldValue::Gender(None) | FieldValue::Instant(None) => {
                f.write_str("None")
            }
            _ if *personal => f.write_str("Some(<redacted>)"),
            FieldValue::Text(Some(text)) => write!(f, "Some({text:?})"),
            FieldValue::Gender(Some(gender)) => write!(f, "Some({gender:?})"),
            FieldValue::Instant(Some(at)) => write!(f, "Some({at:?})"),
        }
    }
}

/// Generates accessors over the typed members of a struct whose members the table generated:
/// `plain` for members `Option<T>` (`value`, `put`), `patch` for members `Option<Option<T>>`
/// (`None` = not part of the patch: `value` is then `None`, `put` adds a field, `leave_out`
/// takes it out). Fields the struct does not hold read as empty and are never written.
macro_rules! field_access {
    (plain $type:ident { $($member:ident: $variant:ident),* $(,)? }) => {
        impl $type {
            /// The value this holds in `field` (empty when it holds no such field).
            pub fn value(
                &self,
                field: $crate::sync::field_table::ReteachField,
            ) -> $crate::sync::field_table::FieldValue {
                use $crate::sync::field_table::{FieldType, ReteachField};
                match field {
                    $(ReteachField::$variant => FieldType::wrap(self.$member.clone()),)*
                    #[allow(unreachable_patterns)]
                    other => other.row().kind.empty(),
                }
            }

            $crate::sync::field_table::field_access!(@put
                /// Sets `field` to `value`; an empty value clears it (a value of another kind, or
                /// a field this does not hold, is ignored).
                std::convert::identity { $($member: $variant),* }
            );
        }
    };
    (patch $type:ident { $($member:ident: $variant:ident),* $(,)? }) => {
        impl $type {
            /// The value the patch writes into `field` (an empty one clears it), or `None` when
            /// the patch leaves `field` alone.
            pub fn value(
                &self,
                field: $crate::sync::field_table::ReteachField,
            ) -> Option<$crate::sync::field_table::FieldValue> {
                use $crate::sync::field_table::{FieldType, ReteachField};
                match field {
                    $(ReteachField::$variant => {
                        self.$member.clone().map(|value| FieldType::wrap(value))
                    })*
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }

            $crate::sync::field_table::field_access!(@put
                /// Makes the patch write `value` into `field` (an empty value clears the field).
                Some { $($member: $variant),* }
            );

            /// Leaves `field` alone (takes it out of the patch).
            pub fn leave_out(&mut self, field: $crate::sync::field_table::ReteachField) {
                use $crate::sync::field_table::ReteachField;
                match field {
                    $(ReteachField::$variant => self.$member = None,)*
                    #[allow(unreachable_patterns)]
                    _ => {}
                }
            }
        }
    };
    // `put` of both: the typed value of `field` goes into its member through `$store` (as it is
    // into a plain member, as `Some` into a patch member).
    (@put $(#[$doc:meta])* $store:path { $($member:ident: $variant:ident),* }) => {
        $(#[$doc])*
        pub fn put(
            &mut self,
            field: $crate::sync::field_table::ReteachField,
            value: $crate::sync::field_table::FieldValue,
        ) {
            use $crate::sync::field_table::{FieldType, ReteachField};
            match field {
                $(ReteachField::$variant => {
                    if let Some(value) = FieldType::unwrap(value) {
                        self.$member = $store(value);
                    }
                })*
                #[allow(unreachable_patterns)]
                _ => {}
            }
        }
    };
}
pub(crate) use field_access;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_variant_has_its_row() {
        let mut names: Vec<&str> = FIELDS.iter().map(|row| row.field.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FIELDS.len());
        for row in FIELDS {
            assert_eq!(row.field.row(), *row);
        }
        assert_eq!(
            ReteachField::Location.row().source,
            Source::Attribute("office")
        );
        assert!(!ReteachField::Email.row().configurable);
        assert!(!ReteachField::Language.row().may_be_cleared);
        assert_eq!(configurable_field("note"), Some(ReteachField::Note));
        assert_eq!(configurable_field("email"), None);
    }

    #[test]
    fn a_personal_value_is_redacted_in_debug() {
        let name = FieldValue::Text(Some("Ada".into()));
        assert_eq!(format!("{:?}", DebugValue(&name, true)), "Some(<redacted>)");
        assert_eq!(format!("{:?}", DebugValue(&name, false)), "Some(\"Ada\")");
        assert_eq!(
            format!("{:?}", DebugValue(&FieldValue::Text(None), true)),
            "None"
        );
    }
}
