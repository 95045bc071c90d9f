//! `Debug` output without personal data. Names and e-mail addresses must never reach a log line,
//! an error message or a panic message, and `{:?}` of a struct is the easiest way for them to get
//! there; so the types that carry them print `<redacted>` in their place (whether a value is
//! present stays visible, which is what debugging needs).

use std::fmt;

/// A value whose content `Debug` must not show.
pub trait Personal {
    /// Writes the value's shape (`Some(<redacted>)`, `None`) without its content.
    fn fmt_redacted(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl Personal for String {
    fn fmt_redacted(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<T: Personal> Personal for Option<T> {
    fn fmt_redacted(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            None => f.write_str("None"),
            Some(value) => {
                f.write_str("Some(")?;
                value.fmt_redacted(f)?;
                f.write_str(")")
            }
        }
    }
}

/// Wraps a personal value for a `Debug` field: `.field("email", &Redacted(&self.email))`.
pub struct Redacted<'a, T: Personal>(pub &'a T);

impl<T: Personal> fmt::Debug for Redacted<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_redacted(f)
    }
}

/// Implements `Debug` for a struct that carries personal data: the `shown` fields print as they
/// are, the `personal` ones their shape only (see [`Redacted`]). Every field must be named in
/// one of the two lists, so a new field is a decision, not an accident:
///
/// ```ignore
/// redacted_debug!(ReteachCustomer {
///     shown: id, external_id, position;
///     personal: email, first_name, last_name;
/// });
/// ```
macro_rules! redacted_debug {
    ($type:ident {
        shown: $($shown:ident),+ ;
        personal: $($personal:ident),+ ;
        $(keys_only: $($keys:ident),+ ;)?
    }) => {
        impl ::std::fmt::Debug for $type {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                // Destructured without `..`: a field added to the struct but not here fails to
                // compile instead of silently missing from (or leaking into) the output.
                let $type { $($shown,)+ $($personal,)+ $($($keys,)+)? } = self;
                f.debug_struct(stringify!($type))
                    $(.field(stringify!($shown), $shown))+
                    $(.field(stringify!($personal), &$crate::sync::redact::Redacted($personal)))+
                    // Maps of free-form values (custom attributes): their keys only.
                    $($(.field(stringify!($keys), &$keys.keys().collect::<Vec<_>>()))+)?
                    .finish()
            }
        }
    };
}
pub(crate) use redacted_debug;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_presence_but_not_the_value() {
        let email = Some("anna@acme.example".to_string());
        assert_eq!(format!("{:?}", Redacted(&email)), "Some(<redacted>)");
        let cleared: Option<Option<String>> = Some(None);
        assert_eq!(format!("{:?}", Redacted(&cleared)), "Some(None)");
        let none: Option<String> = None;
        assert_eq!(format!("{:?}", Redacted(&none)), "None");
        assert_eq!(format!("{:?}", Redacted(&"Anna".to_string())), "<redacted>");
    }
}
