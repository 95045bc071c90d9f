//! Plain data shared by the sync core and the upstream clients. No I/O here.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::field_table::{
    field_access, reteach_fields, DebugValue, FieldValue, Instant, ReteachField, FIELDS,
};
use super::redact::redacted_debug;

/// A Personio employee after lenient parsing: only the fields the operator may transfer.
/// Required-but-empty values stay `None`; the sync core decides whether that is acceptable.
/// `Debug` redacts names and the e-mail address.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PersonioEmployee {
    /// Personio employee id (becomes reteach `externalId`).
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub position: Option<String>,
    pub department: Option<String>,
    /// Personio `office`, reteach `location`.
    pub office: Option<String>,
    /// Raw Personio gender value (lowercase, e.g. `male`); mapped by the sync core.
    pub gender: Option<String>,
    pub hire_date: Option<NaiveDate>,
    pub termination_date: Option<NaiveDate>,
    pub contract_end_date: Option<NaiveDate>,
    /// Personio `status` (`active`, `inactive`, `onboarding`, `leave`) when the credential returns it.
    pub status: Option<String>,
    pub last_modified_at: Option<DateTime<Utc>>,
    /// Further attributes the configuration asked for (custom `dynamic_…` ones,
    /// `employment_type`, `subcompany`, …), by API name, as trimmed text.
    pub other: BTreeMap<String, String>,
}

impl PersonioEmployee {
    /// An attribute's value by its API name: the typed fields first, then [`Self::other`].
    pub fn attribute(&self, name: &str) -> Option<&str> {
        let typed = match name {
            "first_name" => &self.first_name,
            "last_name" => &self.last_name,
            "email" => &self.email,
            "position" => &self.position,
            "department" => &self.department,
            "office" => &self.office,
            "gender" => &self.gender,
            "status" => &self.status,
            _ => return self.other.get(name).map(String::as_str),
        };
        typed.as_deref()
    }
}

/// A record that could not be read, with a PII-free reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedRecord {
    /// Id of the record, when it could be read.
    pub id: Option<String>,
    /// Why it was skipped, e.g. `hire_date: unparseable date`. Never contains a value of the record.
    pub reason: String,
}

/// A tag on a reteach user. Its name may come from a template over personal attributes, so
/// `Debug` of a [`ReteachCustomer`] shows only how many tags it has.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CustomerTag {
    /// reteach's tag id (empty when reteach sent none; the name then addresses the tag).
    pub id: String,
    /// The tag's name.
    pub name: String,
}

impl CustomerTag {
    /// How the tag is addressed in `DELETE /customer/{id}/tags/{tagIdOrName}`: by id when known.
    pub fn address(&self) -> &str {
        if self.id.is_empty() {
            &self.name
        } else {
            &self.id
        }
    }
}

impl std::fmt::Debug for CustomerTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerTag")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

pub use super::field_table::Gender;

macro_rules! customer_types {
    (
        login { $(($lv:ident, $lm:ident, $($login:tt)*))* }
        mapped { $(($v:ident, $m:ident, $name:literal, $ty:ty, $($mapped:tt)*))* }
        lock { $(($kv:ident, $km:ident, $kname:literal, $kty:ty, $($lock:tt)*))* }
    ) => {
        /// A reteach user ("customer") as read from reteach. `Debug` redacts the personal fields
        /// of the table.
        #[derive(Clone, Default, PartialEq, Eq)]
        pub struct ReteachCustomer {
            /// reteach's own id.
            pub id: String,
            /// `externalId`: the Personio id of a linked user.
            pub external_id: Option<String>,
            /// `email`, the login.
            pub email: Option<String>,
            $(#[doc = $name] pub $m: Option<$ty>,)*
            $(#[doc = $kname] pub $km: Option<$kty>,)*
            /// Read-only status (`ADDED`, `INVITED`, `ACTIVE`, `INACTIVE`).
            pub status: Option<String>,
            /// The user's tags, as every customer object carries them (`tags: [{id, name}]`).
            pub tags: Vec<CustomerTag>,
        }
        field_access!(plain ReteachCustomer {
            email: Email, $($m: $v,)* $($km: $kv,)*
        });

        impl std::fmt::Debug for ReteachCustomer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut out = f.debug_struct("ReteachCustomer");
                out.field("id", &self.id).field("external_id", &self.external_id);
                for row in FIELDS {
                    out.field(row.member, &DebugValue(&self.value(row.field), row.personal));
                }
                out.field("status", &self.status)
                    .field("tags", &self.tags)
                    .finish()
            }
        }

        /// The reteach fields the operator owns, as they should be. Serialized as the body of
        /// `POST /customer` (camelCase, absent fields omitted). `Debug` redacts the personal
        /// fields of the table.
        #[derive(Clone, Default, PartialEq, Eq, Serialize)]
        #[serde(rename_all = "camelCase")]
        pub struct CustomerFields {
            /// The Personio id.
            pub external_id: String,
            /// The login.
            pub email: String,
            $(
                #[doc = $name]
                #[serde(rename = $name, skip_serializing_if = "Option::is_none")]
                pub $m: Option<$ty>,
            )*
            $(
                #[doc = $kname]
                #[serde(rename = $kname, skip_serializing_if = "Option::is_none")]
                pub $km: Option<$kty>,
            )*
        }
        field_access!(plain CustomerFields { $($m: $v,)* $($km: $kv,)* });

        impl std::fmt::Debug for CustomerFields {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut out = f.debug_struct("CustomerFields");
                out.field("external_id", &self.external_id);
                for row in FIELDS {
                    let value = match row.field {
                        ReteachField::Email => FieldValue::Text(Some(self.email.clone())),
                        field => self.value(field),
                    };
                    out.field(row.member, &DebugValue(&value, row.personal));
                }
                out.finish()
            }
        }

        /// Only the changed fields of a reteach user, as the body of `PUT /customer/{id}`.
        /// `None` = leave unchanged (omitted), `Some(None)` = clear (JSON `null`),
        /// `Some(Some(v))` = set. `Debug` redacts the personal fields of the table.
        #[derive(Clone, Default, PartialEq, Eq, Serialize)]
        #[serde(rename_all = "camelCase")]
        pub struct CustomerPatch {
            /// `externalId`, stamped when a user found by e-mail is adopted.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub external_id: Option<Option<String>>,
            /// The login.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub email: Option<Option<String>>,
            $(
                #[doc = $name]
                #[serde(rename = $name, skip_serializing_if = "Option::is_none")]
                pub $m: Option<Option<$ty>>,
            )*
            $(
                #[doc = $kname]
                #[serde(rename = $kname, skip_serializing_if = "Option::is_none")]
                pub $km: Option<Option<$kty>>,
            )*
        }
        field_access!(patch CustomerPatch {
            email: Email, $($m: $v,)* $($km: $kv,)*
        });

        impl std::fmt::Debug for CustomerPatch {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut out = f.debug_struct("CustomerPatch");
                out.field("external_id", &self.external_id);
                for row in FIELDS {
                    match self.value(row.field) {
                        Some(value) => out.field(row.member, &DebugValue(&value, row.personal)),
                        None => out.field(row.member, &"unchanged"),
                    };
                }
                out.finish()
            }
        }
    };
}
reteach_fields!(customer_types);

/// A completed reteach participation, with its certificate when one exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// reteach participation id.
    pub participation_id: String,
    /// reteach certificate id; `None` when the course issues no certificate (yet).
    pub certificate_id: Option<String>,
    /// Download URL of the PDF; `None` while reteach is still generating it.
    pub certificate_url: Option<String>,
    pub course_name: String,
    pub completed_at: DateTime<Utc>,
    /// reteach user's `externalId` (= Personio employee id), when set.
    pub customer_external_id: Option<String>,
    /// reteach user id.
    pub customer_id: String,
}

/// A Personio document category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentCategory {
    pub id: i64,
    pub name: String,
}

/// A document already stored in Personio (v2 listing), enough to recognise our own uploads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDocument {
    pub id: String,
    pub name: String,
    pub comment: Option<String>,
    pub category_id: Option<i64>,
}

redacted_debug!(PersonioEmployee {
    shown: id, position, department, office, gender, hire_date, termination_date,
        contract_end_date, status, last_modified_at;
    personal: first_name, last_name, email;
    keys_only: other;
});

#[cfg(test)]
mod debug_tests {
    use super::*;

    const PERSONAL: [&str; 3] = ["Anna", "Active", "anna@acme.example"];

    fn assert_redacted(debug: String) {
        for value in PERSONAL {
            assert!(!debug.contains(value), "{value:?} in {debug}");
        }
        assert!(debug.contains("<redacted>"), "{debug}");
    }

    fn named<T>(make: impl FnOnce(Option<String>, Option<String>, String) -> T) -> T {
        make(
            Some("Anna".into()),
            Some("Active".into()),
            "anna@acme.example".into(),
        )
    }

    #[test]
    fn debug_of_an_employee_hides_names_and_email() {
        let employee = named(|first_name, last_name, email| PersonioEmployee {
            id: "7".into(),
            first_name,
            last_name,
            email: Some(email),
            position: Some("Engineer".into()),
            ..Default::default()
        });
        let debug = format!("{employee:?}");
        assert_redacted(debug.clone());
        assert!(
            debug.contains("\"7\"") && debug.contains("Engineer"),
            "{debug}"
        );
    }

    #[test]
    fn debug_of_a_reteach_user_and_its_writes_hides_names_and_email() {
        let customer = named(|first_name, last_name, email| ReteachCustomer {
            id: "c1".into(),
            first_name,
            last_name,
            email: Some(email),
            ..Default::default()
        });
        assert_redacted(format!("{customer:?}"));
        let fields = named(|first_name, last_name, email| CustomerFields {
            external_id: "7".into(),
            email,
            first_name,
            last_name,
            ..Default::default()
        });
        assert_redacted(format!("{fields:?}"));
        let patch = named(|first_name, last_name, email| CustomerPatch {
            email: Some(Some(email)),
            first_name: Some(first_name),
            last_name: Some(last_name),
            ..Default::default()
        });
        assert_redacted(format!("{patch:?}"));
    }
}
