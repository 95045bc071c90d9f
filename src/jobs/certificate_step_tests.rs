use chrono::{TimeZone, Utc};

use super::*;
use crate::personio::PersonioError;

fn outage() -> PersonioError {
    PersonioError::Unavailable {
        message: "HTTP 503".into(),
        maybe_applied: false,
        trace_id: None,
    }
}

fn not_found() -> PersonioError {
    PersonioError::NotFound {
        what: "employee".into(),
        message: "404".into(),
    }
}

fn forbidden() -> PersonioError {
    PersonioError::Forbidden {
        endpoint: "GET /v2/document-management/documents",
        message: "scope".into(),
    }
}

fn in_flight(participation_id: Option<&str>) -> InFlightCertificate {
    InFlightCertificate {
        certificate_id: "cert-1".into(),
        personio_id: "17".into(),
        started_at: Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap(),
        participation_id: participation_id.map(str::to_string),
        completed_at: None,
        uploader: None,
    }
}

fn job_error() -> JobError {
    JobError::Personio {
        action: "could not upload certificates to Personio",
        source: outage(),
    }
}

/// The reason of a failed attempt and whether it was transient; any other step fails the test.
fn attempt(step: Step) -> (String, bool) {
    match step {
        Step::Attempt { reason, transient } => (reason, transient.is_some()),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn listing_errors_become_markers_by_what_they_mean() {
    assert!(matches!(
        Markers::from(not_found()),
        Markers::EmployeeUnknown
    ));
    assert!(matches!(Markers::from(outage()), Markers::Transient(_)));
    match Markers::from(forbidden()) {
        Markers::Unavailable(why) => assert!(why.contains("GET /v2/document-management/documents")),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn certificate_with_its_marker_in_personio_is_already_there() {
    assert!(matches!(
        after_listing(Ok(true)),
        Step::InPersonio(Presence::AlreadyThere)
    ));
}

#[test]
fn certificate_without_its_marker_is_uploaded() {
    assert!(matches!(after_listing(Ok(false)), Step::Upload));
}

#[test]
fn unreadable_document_list_leaves_the_certificate_unverified() {
    match after_listing(Err(Markers::Unavailable("no scope".into()))) {
        Step::Unverified(why) => assert_eq!(why, "no scope"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn employee_unknown_to_personio_is_a_failed_attempt_not_an_outage() {
    let (reason, transient) = attempt(after_listing(Err(Markers::EmployeeUnknown)));
    assert_eq!(reason, "employee not found in Personio");
    assert!(!transient);
}

#[test]
fn document_list_outage_is_a_transient_attempt() {
    let (_, transient) = attempt(after_listing(Err(Markers::Transient(outage()))));
    assert!(transient);
}

#[test]
fn confirmed_upload_is_in_personio() {
    assert!(matches!(
        after_transfer(Transfer::Uploaded),
        Step::InPersonio(Presence::Uploaded)
    ));
}

#[test]
fn missing_pdf_waits() {
    assert!(matches!(
        after_transfer(Transfer::PdfNotReady),
        Step::WaitForPdf
    ));
}

#[test]
fn refused_transfer_is_an_attempt_with_its_reason() {
    let refused = Transfer::Refused("certificate file is not a PDF".into());
    let (reason, transient) = attempt(after_transfer(refused));
    assert_eq!(reason, "certificate file is not a PDF");
    assert!(!transient);
}

#[test]
fn transient_transfer_failure_is_a_transient_attempt() {
    let transfer = Transfer::Transient {
        reason: "Personio was unavailable for the upload",
        error: job_error(),
    };
    let (reason, transient) = attempt(after_transfer(transfer));
    assert_eq!(reason, "Personio was unavailable for the upload");
    assert!(transient);
}

#[test]
fn upload_that_may_have_landed_stops_and_keeps_the_intent() {
    let step = after_transfer(Transfer::Uncertain(job_error()));
    assert!(matches!(step, Step::StopUncertain(_)));
    assert!(step.keeps_in_flight());
    assert!(step.stops_run());
}

#[test]
fn fatal_transfer_stops_and_clears_the_intent() {
    let step = after_transfer(Transfer::Fatal(job_error()));
    assert!(matches!(step, Step::Stop(_)));
    assert!(!step.keeps_in_flight());
    assert!(step.stops_run());
}

#[test]
fn only_an_uncertain_upload_keeps_the_intent_or_ends_the_run() {
    let going_on = [
        Step::Upload,
        Step::InPersonio(Presence::Uploaded),
        Step::WaitForPdf,
        Step::Unverified("no scope".into()),
        Step::Attempt {
            reason: "refused".into(),
            transient: Some(job_error()),
        },
        Step::Interrupted,
        Step::Forget,
        Step::SetAside("no scope".into()),
    ];
    for step in going_on {
        assert!(!step.keeps_in_flight(), "{step:?}");
        assert!(!step.stops_run(), "{step:?}");
    }
}

#[test]
fn interrupted_upload_found_in_personio_counts_as_uploaded() {
    assert!(matches!(
        settle_in_flight(&in_flight(Some("p-1")), Ok(true)),
        Step::InPersonio(Presence::Interrupted)
    ));
}

#[test]
fn interrupted_upload_that_did_not_land_is_an_attempt_of_that_certificate() {
    assert!(matches!(
        settle_in_flight(&in_flight(Some("p-1")), Ok(false)),
        Step::Interrupted
    ));
    assert!(matches!(
        settle_in_flight(&in_flight(Some("p-1")), Err(Markers::EmployeeUnknown)),
        Step::Interrupted
    ));
}

#[test]
fn interrupted_upload_of_an_older_version_is_left_to_the_full_pass() {
    assert!(matches!(
        settle_in_flight(&in_flight(None), Ok(false)),
        Step::Forget
    ));
    assert!(matches!(
        settle_in_flight(&in_flight(None), Err(Markers::EmployeeUnknown)),
        Step::Forget
    ));
}

#[test]
fn interrupted_upload_that_cannot_be_checked_is_set_aside() {
    match settle_in_flight(
        &in_flight(Some("p-1")),
        Err(Markers::Unavailable("no scope".into())),
    ) {
        Step::SetAside(why) => assert_eq!(why, "no scope"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn interrupted_upload_during_an_outage_stays_in_flight_and_stops_the_run() {
    let step = settle_in_flight(&in_flight(Some("p-1")), Err(Markers::Transient(outage())));
    assert!(matches!(step, Step::StopUncertain(_)));
    assert!(step.keeps_in_flight());
}

#[test]
fn third_transient_failure_in_a_row_is_an_outage_taking_back_all_three() {
    let mut streak = OutageStreak::default();
    assert_eq!(streak.transient_failure("p-1"), None);
    assert_eq!(streak.transient_failure("p-2"), None);
    assert_eq!(
        streak.transient_failure("p-3"),
        Some(vec![
            "p-1".to_string(),
            "p-2".to_string(),
            "p-3".to_string()
        ])
    );
    assert_eq!(streak.transient_failure("p-4"), None, "a new streak starts");
}

#[test]
fn a_success_in_between_breaks_the_streak() {
    let mut streak = OutageStreak::default();
    assert_eq!(streak.transient_failure("p-1"), None);
    assert_eq!(streak.transient_failure("p-2"), None);
    streak.break_off();
    assert_eq!(streak.transient_failure("p-3"), None);
    assert_eq!(streak.transient_failure("p-4"), None);
    assert!(streak.transient_failure("p-5").is_some());
}
