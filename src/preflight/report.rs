//! What a preflight found: one [`Finding`] per capability, and the plain table printed for it.
//! Messages carry ids and counts only, never names, e-mail addresses or secret values.

use std::fmt::Write as _;

/// Outcome of one probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The capability works.
    Ok,
    /// The upstream answered and the capability is not there (a right, an attribute, a category).
    Missing,
    /// The probe could not decide (no data to try it on, an outage, a probe that depends on a
    /// missing capability).
    Unknown,
}

impl State {
    /// `ok`, `missing` or `unknown`, as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Missing => "missing",
            Self::Unknown => "unknown",
        }
    }
}

/// Whether a sync can run without the capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Without it the sync stalls.
    Required,
    /// The sync runs without it, degraded (slower, or needing a human after a crash).
    Recommended,
}

/// The capabilities a preflight probes, in the order they are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// `POST /v1/auth` accepts the credential.
    PersonioToken,
    /// The attribute whitelist returns every attribute the employee sync requires.
    PersonioAttributes,
    /// The CertificateSync's document category exists.
    PersonioDocumentCategory,
    /// v2 document listing of one employee (the upload marker check).
    PersonioDocumentListing,
    /// Document upload right, as far as the token's scopes tell.
    PersonioDocumentUpload,
    /// `GET /v2/persons` answers (scope `personio:persons:read`).
    PersonioV2Persons,
    /// `GET /v2/persons/{id}/employments` answers (scope `personio:employments:read`).
    PersonioV2Employments,
    /// Department and office names through `GET /v2/org-units/{id}` and `GET /v2/workplaces`.
    PersonioV2OrgUnits,
    /// Which API employees should be read through (`spec.personio.api`), from what the probes saw.
    PersonioApi,
    /// `POST /oauth/authorize` accepts the app credentials.
    ReteachToken,
    /// `GET /customer` answers.
    ReteachCustomerRead,
    /// `GET /participation?status=COMPLETED` answers.
    ReteachParticipationRead,
    /// reteach honours the `status` and `completedAtSince` filters.
    ReteachParticipationFilters,
    /// One certificate URL answers with a PDF (headers only).
    ReteachCertificateDownload,
}

impl Capability {
    /// Stable name, as printed and as written to `status.capabilities`.
    pub fn name(self) -> &'static str {
        match self {
            Self::PersonioToken => "personio-token",
            Self::PersonioAttributes => "personio-attributes",
            Self::PersonioDocumentCategory => "personio-document-category",
            Self::PersonioDocumentListing => "personio-document-listing",
            Self::PersonioDocumentUpload => "personio-document-upload",
            Self::PersonioV2Persons => "personio-v2-persons",
            Self::PersonioV2Employments => "personio-v2-employments",
            Self::PersonioV2OrgUnits => "personio-v2-org-units",
            Self::PersonioApi => "personio-api",
            Self::ReteachToken => "reteach-token",
            Self::ReteachCustomerRead => "reteach-customer-read",
            Self::ReteachParticipationRead => "reteach-participation-read",
            Self::ReteachParticipationFilters => "reteach-participation-filters",
            Self::ReteachCertificateDownload => "reteach-certificate-download",
        }
    }

    /// Whether the sync stalls without it, by default (a finding may say otherwise: the v2
    /// employee rows are required only of a resource that reads through v2, see
    /// [`Finding::with_need`]).
    pub fn need(self) -> Need {
        // The v2 listing is required: without a cursor (the first run's backfill, every full
        // pass) each certificate is checked against Personio's markers before it is uploaded.
        match self {
            Self::PersonioDocumentUpload
            | Self::ReteachParticipationFilters
            | Self::PersonioV2Persons
            | Self::PersonioV2Employments
            | Self::PersonioV2OrgUnits
            | Self::PersonioApi => Need::Recommended,
            _ => Need::Required,
        }
    }
}

/// The result of one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub capability: Capability,
    pub state: State,
    /// Whether the resource stalls without it (the capability's default unless set otherwise).
    pub need: Need,
    /// What was seen (ids and counts only).
    pub detail: String,
    /// What to do about a non-ok finding; empty when ok.
    pub action: String,
}

impl Finding {
    /// The capability works.
    pub fn ok(capability: Capability, detail: impl Into<String>) -> Self {
        Self::new(capability, State::Ok, detail.into(), String::new())
    }

    /// The capability is missing; `action` says how to grant it.
    pub fn missing(
        capability: Capability,
        detail: impl Into<String>,
        action: impl Into<String>,
    ) -> Self {
        Self::new(capability, State::Missing, detail.into(), action.into())
    }

    /// The probe could not decide; `action` says how to find out.
    pub fn unknown(
        capability: Capability,
        detail: impl Into<String>,
        action: impl Into<String>,
    ) -> Self {
        Self::new(capability, State::Unknown, detail.into(), action.into())
    }

    /// A finding in `state` with the capability's default need.
    fn new(capability: Capability, state: State, detail: String, action: String) -> Self {
        Self {
            capability,
            state,
            need: capability.need(),
            detail,
            action,
        }
    }

    /// The same finding with another need (e.g. a v2 row of a resource that reads through v2).
    pub fn with_need(mut self, need: Need) -> Self {
        self.need = need;
        self
    }

    /// This finding (a token row that is not ok), then each of `later` skipped for want of it.
    pub fn then_skipped(self, later: impl IntoIterator<Item = Capability>) -> Vec<Finding> {
        let prerequisite = self.capability;
        let skipped = later
            .into_iter()
            .map(|capability| Self::skipped(capability, prerequisite));
        std::iter::once(self).chain(skipped).collect()
    }

    /// This probe was not run because `prerequisite` is not ok.
    pub fn skipped(capability: Capability, prerequisite: Capability) -> Self {
        Self::unknown(
            capability,
            format!("not probed: {} is not ok", prerequisite.name()),
            format!(
                "fix {} first, then run preflight again",
                prerequisite.name()
            ),
        )
    }
}

/// Every finding of one preflight.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// `EmployeeSync ns/name` or `CertificateSync ns/name`.
    pub resource: String,
    pub findings: Vec<Finding>,
}

/// Process exit code: every required capability ok.
pub const EXIT_READY: i32 = 0;
/// Process exit code: a required capability is missing.
pub const EXIT_MISSING: i32 = 1;
/// Process exit code: nothing required is missing, but something required could not be decided.
pub const EXIT_UNDECIDED: i32 = 2;

impl Report {
    /// The finding of `capability`, if it was probed.
    pub fn get(&self, capability: Capability) -> Option<&Finding> {
        self.findings.iter().find(|f| f.capability == capability)
    }

    /// State of `capability` (`None` when it does not apply to the resource).
    pub fn state(&self, capability: Capability) -> Option<State> {
        self.get(capability).map(|f| f.state)
    }

    /// [`EXIT_READY`], [`EXIT_MISSING`] or [`EXIT_UNDECIDED`], from the required findings only.
    pub fn exit_code(&self) -> i32 {
        let required = || self.findings.iter().filter(|f| f.need == Need::Required);
        if required().any(|f| f.state == State::Missing) {
            EXIT_MISSING
        } else if required().any(|f| f.state == State::Unknown) {
            EXIT_UNDECIDED
        } else {
            EXIT_READY
        }
    }

    /// The report as a plain aligned table, with a one-line verdict below.
    pub fn table(&self) -> String {
        let header = ["CAPABILITY", "NEED", "RESULT", "DETAIL", "WHAT TO DO"];
        let rows: Vec<[String; 5]> = self
            .findings
            .iter()
            .map(|f| {
                [
                    f.capability.name().to_string(),
                    match f.need {
                        Need::Required => "required".to_string(),
                        Need::Recommended => "recommended".to_string(),
                    },
                    f.state.as_str().to_string(),
                    f.detail.clone(),
                    if f.action.is_empty() {
                        "-".to_string()
                    } else {
                        f.action.clone()
                    },
                ]
            })
            .collect();
        let mut widths = header.map(|h| h.chars().count());
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = format!("Preflight of {}\n\n", self.resource);
        let header = header.map(str::to_string);
        for row in std::iter::once(&header).chain(&rows) {
            let mut line = String::new();
            for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
                if index + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:<width$}  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push('\n');
        out.push_str(self.verdict());
        out.push('\n');
        out
    }

    fn verdict(&self) -> &'static str {
        match self.exit_code() {
            EXIT_READY => "Ready: every required capability is ok.",
            EXIT_MISSING => "Not ready: a required capability is missing (see WHAT TO DO).",
            _ => "Undecided: no required capability is missing, but some could not be checked.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(findings: Vec<Finding>) -> Report {
        Report {
            resource: "EmployeeSync ns/personio".into(),
            findings,
        }
    }

    /// Only required capabilities decide the exit code: a missing one wins over an unknown one,
    /// an unknown one leaves the verdict undecided, recommended ones are ignored.
    #[test]
    fn exit_code_follows_the_required_capabilities() {
        let cases = [
            (
                "recommended capabilities are ignored",
                vec![
                    Finding::ok(Capability::PersonioToken, "accepted"),
                    Finding::missing(
                        Capability::ReteachParticipationFilters,
                        "ignored",
                        "nothing",
                    ),
                ],
                EXIT_READY,
            ),
            (
                "a missing required capability wins over an unknown one",
                vec![
                    Finding::unknown(Capability::ReteachCertificateDownload, "none yet", "wait"),
                    Finding::missing(Capability::PersonioAttributes, "email", "whitelist it"),
                ],
                EXIT_MISSING,
            ),
            (
                "an unknown required capability leaves the verdict undecided",
                vec![
                    Finding::ok(Capability::PersonioToken, "accepted"),
                    Finding::unknown(Capability::ReteachCertificateDownload, "none yet", "wait"),
                ],
                EXIT_UNDECIDED,
            ),
        ];
        for (case, findings, expected) in cases {
            assert_eq!(report(findings).exit_code(), expected, "{case}");
        }
    }

    #[test]
    fn table_aligns_columns_and_prints_a_dash_for_nothing_to_do() {
        let table = report(vec![
            Finding::ok(Capability::PersonioToken, "accepted"),
            Finding::missing(
                Capability::PersonioAttributes,
                "not returned: email",
                "whitelist email",
            ),
        ])
        .table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "Preflight of EmployeeSync ns/personio");
        let result_column = lines[2].find("RESULT").unwrap();
        assert_eq!(&lines[3][result_column..result_column + 2], "ok");
        assert_eq!(&lines[4][result_column..result_column + 7], "missing");
        assert!(lines[3].ends_with(" -"));
        assert!(lines[4].ends_with("whitelist email"));
        assert!(table.contains("Not ready"));
    }
}
