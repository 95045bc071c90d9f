//! What the certificate run does after each request, decided by pure functions over the request's
//! result and the ledger's state: a document listing (is the certificate already in Personio?), a
//! transfer (download, check, upload), or the check of an upload an earlier run did not confirm.
//! The run only applies the returned [`Step`] (`Run::apply` in `certificate`), so every branch of
//! the decision is a unit test here, and the in-flight intent is cleared in one place, by
//! [`Step::keeps_in_flight`].

use crate::personio::PersonioError;
use crate::sync::certificate_ledger_state::InFlightCertificate;
use crate::sync::Completion;

use super::certificate_transfer::Transfer;
use super::error::JobError;

/// Why the markers of an employee's documents are not known.
#[derive(Debug)]
pub(crate) enum Markers {
    /// Personio does not know the employee (404 for the owner).
    EmployeeUnknown,
    /// The listing is not available to this credential (scope, access right, endpoint): no
    /// certificate can be checked in this run.
    Unavailable(String),
    /// An outage; a later attempt may succeed.
    Transient(PersonioError),
}

impl From<PersonioError> for Markers {
    fn from(error: PersonioError) -> Self {
        match error {
            PersonioError::NotFound { .. } => Self::EmployeeUnknown,
            error if error.is_transient() => Self::Transient(error),
            error => Self::Unavailable(format!(
                "Personio's document list (GET /v2/document-management/documents) could not be read: {error}"
            )),
        }
    }
}

/// What a document listing told: whether the employee's documents carry the certificate's
/// marker, or why that is not known.
pub(crate) type Listing = Result<bool, Markers>;

/// How Personio came to hold a certificate's document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// This run uploaded it and Personio confirmed.
    Uploaded,
    /// It was there before this run (found by its marker).
    AlreadyThere,
    /// An earlier run's unconfirmed upload did land (found by its marker): counted as uploaded
    /// now, since the earlier run could not count it.
    Interrupted,
}

/// What the run does next with a certificate.
#[derive(Debug)]
pub(crate) enum Step {
    /// Nothing stands in the way: upload it.
    Upload,
    /// Personio holds the document: record it in the ledger.
    InPersonio(Presence),
    /// reteach has no PDF yet: wait, no failure.
    WaitForPdf,
    /// Personio's document list cannot be read with this credential: count it as unverified,
    /// and check nothing more in this run.
    Unverified(String),
    /// A failed attempt (a fixed reason, no personal data), retried in a later run. With
    /// `transient`, the upstream failed, and several in a row mean an outage.
    Attempt {
        reason: String,
        transient: Option<JobError>,
    },
    /// An upload of an earlier run did not land: one failed attempt of that certificate, not a
    /// failure of this run.
    Interrupted,
    /// An upload of an earlier run, recorded without its participation id (older versions), did
    /// not land: nothing to record; the next full pass finds the certificate.
    Forget,
    /// An upload of an earlier run cannot be checked: set it aside for a human rather than
    /// upload it again blindly.
    SetAside(String),
    /// Personio may have stored the document: the in-flight intent stays, the run stops, and the
    /// next run looks for the marker first.
    StopUncertain(JobError),
    /// Every further certificate would fail the same way (credentials, configuration, an
    /// outage): the run stops.
    Stop(JobError),
}

/// The reason of an interrupted upload that did not land.
pub(crate) const INTERRUPTED: &str = "the upload was interrupted before Personio confirmed it";

impl Step {
    /// Whether the in-flight intent must stay in the ledger after this step. Only an upload that
    /// may have landed keeps it; every other outcome is known and the intent is cleared.
    pub(crate) fn keeps_in_flight(&self) -> bool {
        matches!(self, Self::StopUncertain(_))
    }

    /// Whether the run ends with this step (an outage streak aside, which `OutageStreak` decides).
    pub(crate) fn stops_run(&self) -> bool {
        matches!(self, Self::StopUncertain(_) | Self::Stop(_))
    }
}

/// A certificate to verify (no ledger, full pass, overlap window) after its employee's documents
/// were listed.
pub(crate) fn after_listing(listing: Listing) -> Step {
    match listing {
        Ok(true) => Step::InPersonio(Presence::AlreadyThere),
        Ok(false) => Step::Upload,
        Err(Markers::Unavailable(why)) => Step::Unverified(why),
        Err(Markers::EmployeeUnknown) => Step::Attempt {
            reason: "employee not found in Personio".into(),
            transient: None,
        },
        Err(Markers::Transient(source)) => Step::Attempt {
            reason: "Personio's document list was unavailable".into(),
            transient: Some(JobError::Personio {
                action: "could not read an employee's documents in Personio",
                source,
            }),
        },
    }
}

/// A certificate after its transfer (download, check, upload).
pub(crate) fn after_transfer(transfer: Transfer) -> Step {
    match transfer {
        Transfer::Uploaded => Step::InPersonio(Presence::Uploaded),
        Transfer::PdfNotReady => Step::WaitForPdf,
        Transfer::Refused(reason) => Step::Attempt {
            reason,
            transient: None,
        },
        Transfer::Transient { reason, error } => Step::Attempt {
            reason: reason.into(),
            transient: Some(error),
        },
        Transfer::Uncertain(error) => Step::StopUncertain(error),
        Transfer::Fatal(error) => Step::Stop(error),
    }
}

/// The upload an earlier run left in flight, after its employee's documents were listed. An
/// intent written by an older version without a participation id cannot be retried by
/// participation; when it did not land, the next full pass finds the certificate. When the list
/// cannot be read now but may be later, the intent stays and the run stops.
pub(crate) fn settle_in_flight(in_flight: &InFlightCertificate, listing: Listing) -> Step {
    match listing {
        Ok(true) => Step::InPersonio(Presence::Interrupted),
        Ok(false) | Err(Markers::EmployeeUnknown) if in_flight.participation_id.is_some() => {
            Step::Interrupted
        }
        Ok(false) | Err(Markers::EmployeeUnknown) => Step::Forget,
        Err(Markers::Unavailable(why)) => Step::SetAside(why),
        // Still unknown whether it landed: the intent stays for the next run.
        Err(Markers::Transient(source)) => Step::StopUncertain(JobError::Personio {
            action: "could not check Personio for an interrupted certificate upload",
            source,
        }),
    }
}

/// Consecutive transient per-certificate failures after which the run concludes the upstream is
/// down, takes those attempts back and stops.
pub(crate) const OUTAGE_STREAK: usize = 3;

/// The participations whose transient failures came in a row.
#[derive(Debug, Default)]
pub(crate) struct OutageStreak {
    participations: Vec<String>,
}

impl OutageStreak {
    /// Something went through (or failed for a reason of its own): the streak is broken.
    pub(crate) fn break_off(&mut self) {
        self.participations.clear();
    }

    /// A transient failure of `participation_id`. Returns the participations whose attempts are
    /// to be taken back when this failure completes an outage (the run then stops).
    pub(crate) fn transient_failure(&mut self, participation_id: &str) -> Option<Vec<String>> {
        self.participations.push(participation_id.to_string());
        (self.participations.len() >= OUTAGE_STREAK)
            .then(|| std::mem::take(&mut self.participations))
    }
}

/// The completion an upload left in flight stands for (its key as far as the intent records it).
pub(crate) fn in_flight_completion(in_flight: &InFlightCertificate) -> Completion {
    Completion {
        participation_id: in_flight.participation_id.clone().unwrap_or_default(),
        certificate_id: Some(in_flight.certificate_id.clone()),
        certificate_url: None,
        course_name: String::new(),
        completed_at: in_flight.completed_at.unwrap_or(in_flight.started_at),
        customer_external_id: Some(in_flight.personio_id.clone()),
        customer_id: String::new(),
    }
}

#[cfg(test)]
#[path = "certificate_step_tests.rs"]
mod tests;
