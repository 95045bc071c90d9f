use super::*;

use crate::clock::at;

fn completion(participation: &str, certificate: Option<&str>, completed_at: &str) -> Completion {
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

fn key(participation: &str, completed_at: &str) -> ProcessingKey {
    ProcessingKey {
        completed_at: at(completed_at),
        participation_id: participation.into(),
    }
}

fn ledger_at(cursor: &str, participation: &str) -> CertificateLedger {
    let mut ledger = CertificateLedger::default();
    ledger.advance_cursor(&key(participation, cursor));
    ledger.last_full_pass_time = Some(at(cursor));
    ledger
}

const NOW: &str = "2026-06-01T12:00:00Z";

#[test]
fn everything_is_verified_without_a_cursor() {
    let ledger = CertificateLedger::default();
    let c = completion("p1", Some("c1"), "2026-01-01T00:00:00Z");
    assert_eq!(ledger.triage(&c, at(NOW)), Triage::Verify);
}

#[test]
fn completions_after_the_cursor_are_new_ties_broken_by_participation() {
    let ledger = ledger_at("2026-01-01T00:00:00Z", "p5");
    let same_time_later = completion("p6", Some("c6"), "2026-01-01T00:00:00Z");
    let same_time_earlier = completion("p4", Some("c4"), "2026-01-01T00:00:00Z");
    assert_eq!(ledger.triage(&same_time_later, at(NOW)), Triage::New);
    assert_eq!(ledger.triage(&same_time_earlier, at(NOW)), Triage::Verify);
}

#[test]
fn future_completions_wait_for_their_time() {
    let ledger = ledger_at("2026-01-01T00:00:00Z", "p1");
    let c = completion("p2", Some("c2"), "2026-06-01T12:00:01Z");
    assert_eq!(ledger.triage(&c, at(NOW)), Triage::Deferred);
}

#[test]
fn overlap_skips_users_without_personio_id_and_pdf_less_completions() {
    let ledger = ledger_at("2026-01-01T00:10:00Z", "p9");
    let mut unlinked = completion("p1", Some("c1"), "2026-01-01T00:05:00Z");
    unlinked.customer_external_id = None;
    let no_pdf = completion("p2", None, "2026-01-01T00:05:00Z");
    assert_eq!(ledger.triage(&unlinked, at(NOW)), Triage::LeftToFullPass);
    assert_eq!(ledger.triage(&no_pdf, at(NOW)), Triage::LeftToFullPass);
}

#[test]
fn full_pass_verifies_everything_before_the_cursor() {
    let mut ledger = ledger_at("2026-01-01T00:10:00Z", "p9");
    let mut unlinked = completion("p1", Some("c1"), "2025-01-01T00:05:00Z");
    unlinked.customer_external_id = None;
    ledger.start_full_pass(at(NOW), false);
    assert_eq!(ledger.triage(&unlinked, at(NOW)), Triage::Verify);
    assert_eq!(ledger.listing_since(Duration::minutes(10)), None);
}

#[test]
fn known_certificates_cost_nothing() {
    let mut ledger = ledger_at("2026-01-01T00:10:00Z", "p9");
    let c = completion("p1", Some("c1"), "2026-01-01T00:05:00Z");
    ledger.record_in_personio("c1", &ProcessingKey::of(&c), Duration::minutes(10));
    assert_eq!(ledger.triage(&c, at(NOW)), Triage::Known);
}

#[test]
fn recent_stays_bounded_in_a_bulk_import_and_remembers_where_it_starts() {
    let mut ledger = ledger_at("2026-01-01T00:00:00Z", "p");
    let overlap = Duration::minutes(10);
    for i in 0..(MAX_RECENT + 50) {
        let k = key(&format!("q{i:05}"), "2026-01-01T00:00:00Z");
        ledger.record_in_personio(&format!("c{i}"), &k, overlap);
        ledger.advance_cursor(&k);
    }
    assert_eq!(ledger.recent.len(), MAX_RECENT);
    let from = ledger.recent_from.clone().unwrap();
    assert_eq!(from.participation_id, "q00050");
    // Handled before the kept part of `recent`: left to the full pass, no Personio request.
    let dropped = completion("q00010", Some("c10"), "2026-01-01T00:00:00Z");
    assert_eq!(ledger.triage(&dropped, at(NOW)), Triage::LeftToFullPass);
}

#[test]
fn prunes_recent_outside_the_overlap() {
    let mut ledger = ledger_at("2026-01-01T12:00:00Z", "z");
    let overlap = Duration::minutes(10);
    for (id, t) in [
        ("old", "2026-01-01T11:49:59Z"),
        ("edge", "2026-01-01T11:50:00Z"),
        ("new", "2026-01-01T12:00:00Z"),
    ] {
        ledger.recent.push(RecentUpload {
            certificate_id: id.into(),
            completed_at: at(t),
            participation_id: None,
        });
    }
    ledger.prune_recent(overlap);
    let kept: Vec<_> = ledger
        .recent
        .iter()
        .map(|r| r.certificate_id.as_str())
        .collect();
    assert_eq!(kept, ["edge", "new"]);
}

#[test]
fn cursor_only_moves_forward() {
    let mut ledger = CertificateLedger::default();
    ledger.advance_cursor(&key("b", "2026-01-02T00:00:00Z"));
    ledger.advance_cursor(&key("z", "2026-01-01T00:00:00Z"));
    assert_eq!(ledger.cursor_key(), Some(key("b", "2026-01-02T00:00:00Z")));
}

/// An empty ledger after `attempts` failed uploads of certificate `c1` (participation `p1`).
fn failed_attempts(attempts: usize) -> (CertificateLedger, Completion) {
    let mut ledger = CertificateLedger::default();
    let c = completion("p1", Some("c1"), "2026-01-01T00:00:00Z");
    for _ in 0..attempts {
        ledger.record_failed_attempt(&c, "x");
    }
    (ledger, c)
}

#[test]
fn failed_attempts_add_up_and_exhausted_ones_are_set_aside() {
    let mut ledger = CertificateLedger::default();
    let c = completion("p1", Some("c1"), "2026-01-01T00:00:00Z");
    for expected in 1..=3 {
        assert_eq!(
            ledger.record_failed_attempt(&c, "Personio rejected the document"),
            Some(expected)
        );
    }
    let personio = |_: &str| Some("7".to_string());
    assert!(ledger.set_aside_exhausted(4, &personio, at(NOW)).is_empty());
    ledger.record_failed_attempt(&c, "Personio rejected the document");
    let newly = ledger.set_aside_exhausted(4, &personio, at(NOW));
    assert_eq!(newly.len(), 1);
    assert_eq!(newly[0].certificate_id, "c1");
    assert_eq!(newly[0].personio_id.as_deref(), Some("7"));
    assert_eq!(newly[0].reason, "Personio rejected the document");
    assert!(ledger.pending.is_empty());
    assert_eq!(ledger.triage(&c, at(NOW)), Triage::Known);
}

#[test]
fn a_requested_full_pass_gives_set_aside_certificates_another_chance() {
    let (mut ledger, c) = failed_attempts(1);
    ledger.set_aside_exhausted(1, &|_| None, at(NOW));
    assert_eq!(ledger.set_aside.len(), 1);
    ledger.start_full_pass(at(NOW), true);
    assert!(ledger.set_aside.is_empty());
    assert_eq!(ledger.triage(&c, at(NOW)), Triage::Verify);
}

#[test]
fn forgiven_attempts_do_not_count() {
    let (mut ledger, _) = failed_attempts(2);
    ledger.forgive_attempt("p1");
    assert_eq!(ledger.pending_attempts("p1"), 1);
}

#[test]
fn pending_is_bounded() {
    let mut ledger = CertificateLedger::default();
    for i in 0..MAX_PENDING {
        let c = completion(&format!("p{i}"), None, "2026-01-01T00:00:00Z");
        assert!(ledger.record_pdf_pending(&c));
    }
    let extra = completion("extra", None, "2026-01-01T00:00:00Z");
    assert!(!ledger.record_pdf_pending(&extra));
    assert_eq!(ledger.record_failed_attempt(&extra, "x"), None);
    assert_eq!(ledger.pending.len(), MAX_PENDING);
}

#[test]
fn set_aside_keeps_the_newest_within_its_bound() {
    let mut ledger = CertificateLedger::default();
    for i in 0..(MAX_SET_ASIDE + 5) {
        let c = completion(
            &format!("p{i}"),
            Some(&format!("c{i}")),
            "2026-01-01T00:00:00Z",
        );
        ledger.record_failed_attempt(&c, "x");
        ledger.set_aside_exhausted(1, &|_| None, at(NOW));
    }
    assert_eq!(ledger.set_aside.len(), MAX_SET_ASIDE);
    assert_eq!(ledger.set_aside[0].certificate_id, "c5");
}

#[test]
fn a_finished_full_pass_moves_the_cursor_over_what_it_handled() {
    let mut ledger = CertificateLedger::default();
    ledger.start_full_pass(at(NOW), false);
    ledger.full_pass_handled(&key("p2", "2026-03-01T00:00:00Z"));
    ledger.full_pass_handled(&key("p1", "2026-02-01T00:00:00Z"));
    assert_eq!(
        ledger.full_pass_after(),
        Some(key("p2", "2026-03-01T00:00:00Z"))
    );
    ledger.finish_full_pass(at(NOW));
    assert_eq!(ledger.cursor_key(), Some(key("p2", "2026-03-01T00:00:00Z")));
    assert_eq!(ledger.last_full_pass_time, Some(at(NOW)));
    assert!(ledger.full_pass.is_none());
}

#[test]
fn an_empty_academy_starts_its_cursor_at_the_first_pass() {
    let mut ledger = CertificateLedger::default();
    ledger.start_full_pass(at(NOW), false);
    ledger.finish_full_pass(at(NOW));
    assert_eq!(ledger.cursor, Some(at(NOW)));
}

#[test]
fn full_pass_is_due_by_interval_request_link_or_missing_ledger() {
    let day = Duration::hours(24);
    let fresh = CertificateLedger::default();
    assert!(fresh.full_pass_due(at(NOW), day, false, None));
    let ledger = ledger_at("2026-06-01T00:00:00Z", "p");
    assert!(!ledger.full_pass_due(at(NOW), day, false, None));
    assert!(ledger.full_pass_due(at(NOW), day, true, None));
    assert!(ledger.full_pass_due(at(NOW), day, false, Some(at("2026-06-01T06:00:00Z"))));
    assert!(!ledger.full_pass_due(at(NOW), day, false, Some(at("2026-05-31T06:00:00Z"))));
    assert!(ledger.full_pass_due(at("2026-06-02T00:00:00Z"), day, false, None));
    // Absurd intervals never panic.
    assert!(!ledger.full_pass_due(at(NOW), Duration::MAX, false, None));
}

#[test]
fn normalizes_ledgers_of_older_versions() {
    let mut ledger = CertificateLedger::default();
    for i in 0..1_000 {
        ledger.pending.push(PendingCertificate {
            certificate_id: format!("c{i}"),
            participation_id: format!("p{i}"),
            completed_at: at("2026-01-01T00:00:00Z"),
            reason: if i % 2 == 0 {
                "UnknownEmployee".into()
            } else {
                REASON_PDF_PENDING.into()
            },
            attempts: 0,
            last_error: None,
        });
    }
    ledger.normalize();
    assert_eq!(ledger.pending.len(), MAX_PENDING);
    assert!(ledger
        .pending
        .iter()
        .all(|p| p.reason == REASON_PDF_PENDING));
}
