//! Pure parts of the certificate sync: document titles, the marker that recognises our own uploads,
//! and the exactly-once ledger bookkeeping (see DESIGN §4).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::employee_mapping::{truncate_chars, MAX_TEXT_CHARS};
use super::model::Completion;
use crate::api::{CertificateLedgerStatus, PendingCertificate, RecentUpload};

/// Prefix of the marker written into the document comment.
pub const MARKER_PREFIX: &str = "reteach-certificate:";
/// Placeholder in the title template replaced by the course name.
pub const COURSE_PLACEHOLDER: &str = "{course}";
/// Stands in for a course without a name.
pub const UNNAMED_COURSE: &str = "(unnamed course)";
/// Most pending certificates kept in status; beyond it the cursor stops advancing.
pub const MAX_PENDING: usize = 1_000;
/// Default overlap re-read before the cursor, for completions reteach lists late.
pub const DEFAULT_OVERLAP_MINUTES: i64 = 10;

/// Why a certificate waits in `pending`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PendingReason {
    /// reteach has not generated the PDF yet.
    PdfPending,
    /// The reteach user has no Personio id, or Personio does not know it (yet).
    UnknownEmployee,
    /// Personio refused the document (type, size); retried every run and reported.
    Rejected,
}

impl PendingReason {
    /// The value stored in `PendingCertificate.reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PdfPending => "PdfPending",
            Self::UnknownEmployee => "UnknownEmployee",
            Self::Rejected => "Rejected",
        }
    }
}

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

/// The id a completion is tracked by in the ledger: its certificate id, or the participation id
/// while no certificate exists yet.
pub fn ledger_key(completion: &Completion) -> &str {
    completion
        .certificate_id
        .as_deref()
        .unwrap_or(&completion.participation_id)
}

/// Whether the certificate was uploaded recently (inside the overlap window).
pub fn is_recent(ledger: &CertificateLedgerStatus, certificate_id: &str) -> bool {
    ledger
        .recent
        .iter()
        .any(|r| r.certificate_id == certificate_id)
}

/// Records a confirmed upload (or a document found in Personio) and drops the certificate from
/// `pending`.
pub fn record_uploaded(
    ledger: &mut CertificateLedgerStatus,
    certificate_id: &str,
    participation_id: Option<&str>,
    completed_at: DateTime<Utc>,
) {
    if !is_recent(ledger, certificate_id) {
        ledger.recent.push(RecentUpload {
            certificate_id: certificate_id.to_string(),
            completed_at,
        });
    }
    ledger.pending.retain(|p| {
        p.certificate_id != certificate_id && Some(p.participation_id.as_str()) != participation_id
    });
}

/// Adds or refreshes a pending entry. Returns `false` (and changes nothing) when `pending` is full.
pub fn upsert_pending(
    ledger: &mut CertificateLedgerStatus,
    completion: &Completion,
    reason: PendingReason,
) -> bool {
    let entry = PendingCertificate {
        certificate_id: ledger_key(completion).to_string(),
        participation_id: completion.participation_id.clone(),
        completed_at: completion.completed_at,
        reason: reason.as_str().to_string(),
    };
    if let Some(existing) = ledger
        .pending
        .iter_mut()
        .find(|p| p.participation_id == completion.participation_id)
    {
        *existing = entry;
        return true;
    }
    if ledger.pending.len() >= MAX_PENDING {
        return false;
    }
    ledger.pending.push(entry);
    true
}

/// Drops a participation from `pending` (e.g. it no longer exists in reteach).
pub fn remove_pending(ledger: &mut CertificateLedgerStatus, participation_id: &str) {
    ledger
        .pending
        .retain(|p| p.participation_id != participation_id);
}

/// Moves the cursor forward to `completed_at` (never backwards).
pub fn advance_cursor(ledger: &mut CertificateLedgerStatus, completed_at: DateTime<Utc>) {
    if ledger.cursor.is_none_or(|cursor| cursor < completed_at) {
        ledger.cursor = Some(completed_at);
    }
}

/// The `since` of the next listing: the cursor minus the overlap; `None` means backfill everything.
pub fn listing_since(ledger: &CertificateLedgerStatus, overlap: Duration) -> Option<DateTime<Utc>> {
    ledger.cursor.map(|cursor| {
        cursor
            .checked_sub_signed(overlap)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    })
}

/// Forgets recent uploads that the next listing (cursor − overlap) can no longer return.
pub fn prune_recent(ledger: &mut CertificateLedgerStatus, overlap: Duration) {
    if let Some(since) = listing_since(ledger, overlap) {
        ledger.recent.retain(|r| r.completed_at >= since);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{Europe, UTC};

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn completion(
        participation: &str,
        certificate: Option<&str>,
        completed_at: &str,
    ) -> Completion {
        Completion {
            participation_id: participation.into(),
            certificate_id: certificate.map(Into::into),
            certificate_url: certificate.map(|c| format!("https://files/{c}.pdf")),
            course_name: "Safety".into(),
            completed_at: at(completed_at),
            customer_external_id: Some("1".into()),
            customer_id: "c1".into(),
        }
    }

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
    fn cursor_only_moves_forward() {
        let mut ledger = CertificateLedgerStatus::default();
        advance_cursor(&mut ledger, at("2026-01-02T00:00:00Z"));
        advance_cursor(&mut ledger, at("2026-01-01T00:00:00Z"));
        assert_eq!(ledger.cursor, Some(at("2026-01-02T00:00:00Z")));
    }

    #[test]
    fn prunes_recent_uploads_outside_the_overlap() {
        let mut ledger = CertificateLedgerStatus {
            cursor: Some(at("2026-01-01T12:00:00Z")),
            ..Default::default()
        };
        record_uploaded(&mut ledger, "old", None, at("2026-01-01T11:49:59Z"));
        record_uploaded(&mut ledger, "edge", None, at("2026-01-01T11:50:00Z"));
        record_uploaded(&mut ledger, "new", None, at("2026-01-01T12:00:00Z"));
        prune_recent(&mut ledger, Duration::minutes(10));
        let kept: Vec<_> = ledger
            .recent
            .iter()
            .map(|r| r.certificate_id.as_str())
            .collect();
        assert_eq!(kept, ["edge", "new"]);
    }

    #[test]
    fn upload_clears_pending_entry() {
        let mut ledger = CertificateLedgerStatus::default();
        let waiting = completion("p1", None, "2026-01-01T00:00:00Z");
        assert!(upsert_pending(
            &mut ledger,
            &waiting,
            PendingReason::PdfPending
        ));
        assert_eq!(ledger.pending[0].certificate_id, "p1");
        record_uploaded(&mut ledger, "cert-1", Some("p1"), waiting.completed_at);
        assert!(ledger.pending.is_empty());
        assert!(is_recent(&ledger, "cert-1"));
    }

    #[test]
    fn refreshes_pending_entry_instead_of_duplicating() {
        let mut ledger = CertificateLedgerStatus::default();
        let waiting = completion("p1", None, "2026-01-01T00:00:00Z");
        upsert_pending(&mut ledger, &waiting, PendingReason::PdfPending);
        let ready = completion("p1", Some("cert-1"), "2026-01-01T00:00:00Z");
        upsert_pending(&mut ledger, &ready, PendingReason::UnknownEmployee);
        assert_eq!(ledger.pending.len(), 1);
        assert_eq!(ledger.pending[0].reason, "UnknownEmployee");
        assert_eq!(ledger.pending[0].certificate_id, "cert-1");
    }

    #[test]
    fn refuses_pending_beyond_the_bound() {
        let mut ledger = CertificateLedgerStatus::default();
        for i in 0..MAX_PENDING {
            let c = completion(&format!("p{i}"), None, "2026-01-01T00:00:00Z");
            assert!(upsert_pending(&mut ledger, &c, PendingReason::PdfPending));
        }
        let one_more = completion("extra", None, "2026-01-01T00:00:00Z");
        assert!(!upsert_pending(
            &mut ledger,
            &one_more,
            PendingReason::PdfPending
        ));
        assert_eq!(ledger.pending.len(), MAX_PENDING);
        remove_pending(&mut ledger, "p0");
        assert_eq!(ledger.pending.len(), MAX_PENDING - 1);
    }

    #[test]
    fn first_run_lists_everything() {
        let ledger = CertificateLedgerStatus::default();
        assert_eq!(listing_since(&ledger, Duration::minutes(10)), None);
    }
}
