//! Moving one certificate: download from reteach, check the PDF, upload to Personio. Each step's
//! error maps to one [`Transfer`] outcome by a pure function, so every branch is a unit test.

use crate::personio::{DocumentUpload, PersonioApi, PersonioError};
use crate::reteach::{ReteachApi, ReteachError};
use crate::sync::certificate_plan::{
    certificate_file_name, certificate_marker, completion_date, document_title,
};
use crate::sync::Completion;

use super::certificate_input::CertificateJobInput;
use super::error::JobError;
use super::pdf_check::{check_pdf, PdfCheckError};

/// How moving one certificate ended.
#[derive(Debug)]
pub(crate) enum Transfer {
    /// Personio confirmed the document.
    Uploaded,
    /// reteach has no PDF yet: wait, no failure.
    PdfNotReady,
    /// This certificate cannot be moved as it is (a fixed reason, no personal data); an attempt.
    Refused(String),
    /// The upstream failed for this certificate; an attempt, and several in a row mean an outage.
    Transient {
        reason: &'static str,
        error: JobError,
    },
    /// Personio may have stored the document: the in-flight intent stays, the run stops, and the
    /// next run looks for the marker first.
    Uncertain(JobError),
    /// Every further certificate would fail the same way (credentials, configuration): stop.
    Fatal(JobError),
}

/// Downloads, checks and uploads one certificate.
pub(crate) async fn transfer(
    personio: &dyn PersonioApi,
    reteach: &dyn ReteachApi,
    input: &CertificateJobInput<'_>,
    completion: &Completion,
    certificate_id: &str,
    url: &str,
    personio_id: &str,
) -> Transfer {
    let pdf = match reteach.download_certificate(url).await {
        Ok(pdf) => pdf,
        Err(error) => return after_download_error(error),
    };
    let mut pdf = match check_pdf(pdf).await {
        Ok(pdf) => pdf,
        Err(error) => return after_pdf_check_error(error),
    };
    // A replica paused past its Lease must not finish a transfer another replica may redo.
    pdf.body = input.fence.guard(pdf.body);
    let upload = DocumentUpload {
        employee_id: personio_id.to_string(),
        category_id: input.category_id,
        title: document_title(&input.title_template, &completion.course_name),
        date: completion_date(completion.completed_at, input.tz),
        comment: certificate_marker(certificate_id),
        file_name: certificate_file_name(certificate_id),
        pdf,
    };
    match personio.upload_document(upload).await {
        Ok(document_id) => {
            tracing::info!(
                certificate_id,
                personio_id,
                document_id = document_id.as_str(),
                "certificate uploaded to Personio"
            );
            Transfer::Uploaded
        }
        Err(error) => after_upload_error(error),
    }
}

/// What a failed download means.
pub(crate) fn after_download_error(error: ReteachError) -> Transfer {
    match error {
        ReteachError::NotFound { .. } => Transfer::PdfNotReady,
        error if error.is_transient() => Transfer::Transient {
            reason: "reteach was unavailable for the certificate download",
            error: JobError::Reteach {
                action: "could not download certificates from reteach",
                source: error,
            },
        },
        // Credentials reteach no longer accepts, or a token request answered with a redirect:
        // every further download would fail the same way.
        error @ (ReteachError::Unauthorized { .. }
        | ReteachError::Config(_)
        | ReteachError::Redirected { .. }) => Transfer::Fatal(JobError::Reteach {
            action: "could not download a certificate from reteach",
            source: error,
        }),
        refused => Transfer::Refused(download_refusal_reason(&refused).to_string()),
    }
}

/// What a failed PDF check means.
pub(crate) fn after_pdf_check_error(error: PdfCheckError) -> Transfer {
    match error {
        PdfCheckError::Io(error) => Transfer::Transient {
            reason: "the certificate download broke off",
            error: JobError::Reteach {
                action: "could not download certificates from reteach",
                source: ReteachError::Unavailable {
                    message: error.to_string(),
                },
            },
        },
        refused => Transfer::Refused(refused.to_string()),
    }
}

/// What a failed upload means.
pub(crate) fn after_upload_error(error: PersonioError) -> Transfer {
    match error {
        PersonioError::NotFound { .. } => {
            Transfer::Refused("employee not found in Personio".to_string())
        }
        PersonioError::Rejected { .. } => Transfer::Refused(
            "Personio rejected the document (file type, size or title)".to_string(),
        ),
        error @ (PersonioError::Unavailable {
            maybe_applied: true,
            ..
        }
        | PersonioError::Malformed { .. }) => Transfer::Uncertain(JobError::Personio {
            action: "could not confirm a certificate upload to Personio; the next run checks for it before retrying",
            source: error,
        }),
        error if error.is_transient() => Transfer::Transient {
            reason: "Personio was unavailable for the upload",
            error: JobError::Personio {
                action: "could not upload certificates to Personio",
                source: error,
            },
        },
        error => Transfer::Fatal(JobError::Personio {
            action: "could not upload a certificate to Personio",
            source: error,
        }),
    }
}

/// Why reteach refused a certificate download. Fixed sentences only: the download carries no
/// submitted values, but reteach's own message is not copied into status either.
fn download_refusal_reason(error: &ReteachError) -> &'static str {
    if let Some(reason) = error.download_refusal() {
        return reason;
    }
    match error {
        ReteachError::Rejected { message, .. } if message.contains("not a PDF") => {
            "certificate file is not a PDF"
        }
        ReteachError::Rejected { message, .. } if message.contains("not https") => {
            "reteach refused the certificate download: the certificate URL is not https"
        }
        ReteachError::Forbidden { .. } => {
            "reteach refused the certificate download: the app lacks access to it"
        }
        _ => "reteach refused the certificate download",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable(maybe_applied: bool) -> PersonioError {
        PersonioError::Unavailable {
            message: "HTTP 503".into(),
            maybe_applied,
            trace_id: None,
        }
    }

    /// The variant a transfer ends in, for the tables below.
    fn variant(transfer: &Transfer) -> &'static str {
        match transfer {
            Transfer::Uploaded => "Uploaded",
            Transfer::PdfNotReady => "PdfNotReady",
            Transfer::Refused(_) => "Refused",
            Transfer::Transient { .. } => "Transient",
            Transfer::Uncertain(_) => "Uncertain",
            Transfer::Fatal(_) => "Fatal",
        }
    }

    #[test]
    fn download_errors_wait_count_as_an_attempt_or_stop_the_run() {
        let cases = [
            (
                "a missing PDF is waiting, not failure",
                ReteachError::NotFound {
                    what: "certificate".into(),
                },
                "PdfNotReady",
            ),
            (
                "a download outage is a transient attempt",
                ReteachError::Unavailable {
                    message: "HTTP 502".into(),
                },
                "Transient",
            ),
            (
                "rejected reteach credentials stop the run",
                ReteachError::Unauthorized {
                    message: "invalid".into(),
                },
                "Fatal",
            ),
        ];
        for (case, error, expected) in cases {
            assert_eq!(variant(&after_download_error(error)), expected, "{case}");
        }
    }

    #[test]
    fn forbidden_download_is_refused_with_a_fixed_reason() {
        let error = ReteachError::Forbidden {
            endpoint: "GET certificate",
            message: "secret detail".into(),
        };
        match after_download_error(error) {
            Transfer::Refused(reason) => {
                assert!(reason.contains("lacks access"));
                assert!(!reason.contains("secret detail"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn broken_off_download_is_transient_and_bad_pdf_refused() {
        let io = PdfCheckError::Io(std::io::Error::other("reset"));
        assert!(matches!(
            after_pdf_check_error(io),
            Transfer::Transient { .. }
        ));
        assert!(matches!(
            after_pdf_check_error(PdfCheckError::NotPdf),
            Transfer::Refused(_)
        ));
    }

    #[test]
    fn upload_errors_keep_the_intent_count_as_an_attempt_or_stop_the_run() {
        let document = "POST /v1/company/documents";
        let cases = [
            (
                "a 503 after sending may have landed: the intent stays",
                unavailable(true),
                "Uncertain",
            ),
            (
                "an unreadable answer may have landed: the intent stays",
                PersonioError::Malformed {
                    endpoint: document,
                    message: "not JSON".into(),
                },
                "Uncertain",
            ),
            (
                "an outage before sending is a transient attempt",
                unavailable(false),
                "Transient",
            ),
            (
                "an unknown employee is refused",
                PersonioError::NotFound {
                    what: "employee".into(),
                    message: "404".into(),
                },
                "Refused",
            ),
            (
                "a rejected document is refused",
                PersonioError::Rejected {
                    endpoint: document,
                    message: "file type".into(),
                },
                "Refused",
            ),
            (
                "a missing upload right stops the run",
                PersonioError::Forbidden {
                    endpoint: document,
                    message: "no right".into(),
                },
                "Fatal",
            ),
        ];
        for (case, error, expected) in cases {
            assert_eq!(variant(&after_upload_error(error)), expected, "{case}");
        }
    }
}
