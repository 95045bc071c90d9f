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
