//! Pure parts of the certificate sync: document titles and the marker that recognises our own
//! uploads (the ledger is in `certificate_ledger`).

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::employee_mapping::{truncate_chars, MAX_TEXT_CHARS};

/// Prefix of the marker written into the document comment.
pub const MARKER_PREFIX: &str = "reteach-certificate:";
/// Placeholder in the title template replaced by the course name.
pub const COURSE_PLACEHOLDER: &str = "{course}";
/// Stands in for a course without a name.
pub const UNNAMED_COURSE: &str = "(unnamed course)";
/// Default overlap re-read before the cursor, for completions reteach lists late.
pub const DEFAULT_OVERLAP_MINUTES: i64 = 10;

/// The Personio document title for a course: `{course}` in `template` replaced, at most 255 chars.
pub fn document_title(template: &str, course_name: &str) -> String {
    let course = course_name.trim();
    let course = if course.is_empty() {
        UNNAMED_COURSE
    } else {
        course
    };
    truncate_chars(
        &template.replace(COURSE_PLACEHOLDER, course),
        MAX_TEXT_CHARS,
    )
}

/// The marker identifying the certificate in the Personio document comment.
pub fn certificate_marker(certificate_id: &str) -> String {
    format!("{MARKER_PREFIX}{certificate_id}")
}

/// Whether `comment` carries the marker of exactly this certificate (a marker of `12` does not
/// match certificate `1`).
pub fn has_marker(comment: Option<&str>, certificate_id: &str) -> bool {
    let Some(comment) = comment else {
        return false;
    };
    let marker = certificate_marker(certificate_id);
    comment.match_indices(&marker).any(|(at, _)| {
        comment[at + marker.len()..]
            .chars()
            .next()
            .is_none_or(|next| !is_id_char(next))
    })
}

fn is_id_char(c: char) -> bool {
    c.is_alphanumeric() || c == '-' || c == '_'
}

/// File name of the uploaded PDF; the id is reduced to characters safe in a file name.
pub fn certificate_file_name(certificate_id: &str) -> String {
    let safe: String = certificate_id
        .chars()
        .map(|c| {
            if is_id_char(c) && c.is_ascii() {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("certificate-{safe}.pdf")
}

/// The completion date as the company sees it.
pub fn completion_date(completed_at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    completed_at.with_timezone(&tz).date_naive()
}

/// The certificate ids of every marker in `comment`.
pub fn marker_ids(comment: &str) -> impl Iterator<Item = &str> {
    comment
        .match_indices(MARKER_PREFIX)
        .filter_map(move |(at, _)| {
            let rest = &comment[at + MARKER_PREFIX.len()..];
            let end = rest.find(|c: char| !is_id_char(c)).unwrap_or(rest.len());
            (end > 0).then(|| &rest[..end])
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{Europe, UTC};

    use crate::clock::at;

    #[test]
    fn replaces_course_in_title() {
        assert_eq!(
            document_title("Certificate: {course}", "Fire safety"),
            "Certificate: Fire safety"
        );
        assert_eq!(
            document_title("Static title", "Fire safety"),
            "Static title"
        );
    }

    #[test]
    fn names_unnamed_course() {
        assert_eq!(
            document_title("Certificate: {course}", "  "),
            "Certificate: (unnamed course)"
        );
    }

    #[test]
    fn cuts_long_title_at_character_boundary() {
        let title = document_title("Zertifikat: {course}", &"ü".repeat(400));
        assert_eq!(title.chars().count(), 255);
        assert!(title.starts_with("Zertifikat: ü"));
    }

    #[test]
    fn recognises_own_marker_only() {
        let comment = format!("Uploaded by the operator. {}", certificate_marker("12"));
        assert!(has_marker(Some(&comment), "12"));
        assert!(!has_marker(Some(&comment), "1"));
        assert!(!has_marker(Some("reteach-certificate:123"), "12"));
        assert!(has_marker(Some("reteach-certificate:12."), "12"));
        assert!(!has_marker(None, "12"));
        assert!(!has_marker(Some(""), "12"));
    }

    #[test]
    fn builds_safe_file_names() {
        assert_eq!(certificate_file_name("abc-1"), "certificate-abc-1.pdf");
        assert_eq!(certificate_file_name("../x"), "certificate-___x.pdf");
    }

    #[test]
    fn completion_date_follows_company_zone() {
        let late = at("2026-11-25T23:30:00Z");
        assert_eq!(
            completion_date(late, UTC),
            NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
        );
        assert_eq!(
            completion_date(late, Europe::Berlin),
            NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
        );
    }

    #[test]
    fn extracts_every_marker_id() {
        let ids: Vec<_> =
            marker_ids("x reteach-certificate:a-1 y reteach-certificate:b_2. reteach-certificate:")
                .collect();
        assert_eq!(ids, ["a-1", "b_2"]);
    }
}
