//! The Personio rows of a preflight: token, attribute whitelist, the v2 employee rows and the
//! API recommendation ([`super::personio_v2`]), document category, v2 document listing and (from
//! the token's scopes) the upload right. Every call is a read.

use crate::api::{DocumentCategoryRef, PersonioApiVersion};
use crate::jobs::{resolve_category, JobError};
use crate::personio::{AttributeRequest, PersonioApi, PersonioClient, PersonioError};

use super::personio_v2::{probe_v2, recommend};
use super::report::{Capability, Finding, Need, State};

const CREDENTIALS_PAGE: &str = "Personio: Settings → Integrations → API credentials";

/// Where the Personio probes look and what they name in their advice.
pub struct PersonioPlan<'a> {
    /// Where the credential lives (e.g. `the keys clientId and clientSecret of Secret ns/name`).
    pub credentials_hint: &'a str,
    /// The CertificateSync's category; `None` for an EmployeeSync.
    pub category: Option<&'a DocumentCategoryRef>,
    /// Employee whose documents the v2 listing probe reads; `None` = the first listed employees,
    /// until one has a document.
    pub employee_id: Option<&'a str>,
    /// The attributes the EmployeeSync reads (its mapping, selector and the locking rule, see
    /// [`crate::sync::employee_config::EmployeeConfig::attributes`]), or why its mapping is
    /// invalid.
    pub attributes: Result<AttributeRequest, String>,
    /// Which API the EmployeeSync reads employees through (`spec.personio.api`).
    pub api: PersonioApiVersion,
}

/// Runs the Personio probes in order; later ones are skipped when the token is refused.
pub async fn probe_personio(client: &PersonioClient, plan: &PersonioPlan<'_>) -> Vec<Finding> {
    let token = probe_token(client, plan.credentials_hint).await;
    if token.state != State::Ok {
        return token.then_skipped(rows_after_token(plan.api, plan.category.is_some()));
    }
    let mut findings = vec![token];
    let listed = match &plan.attributes {
        Ok(request) => employee_rows(client, request, plan.api, &mut findings).await,
        Err(message) => {
            findings.push(Finding::missing(
                Capability::PersonioAttributes,
                message.clone(),
                "fix spec.mapping or spec.selector of the EmployeeSync",
            ));
            findings.push(recommend(plan.api, State::Unknown, None));
            Vec::new()
        }
    };
    let Some(category) = plan.category else {
        return findings;
    };
    findings.push(probe_category(client, category).await);
    findings.push(probe_listing(client, plan.employee_id, &listed).await);
    findings.push(probe_upload_scope(client).await);
    findings
}

/// The rows after the token, in the order they are printed: the employee rows of `api`, and the
/// document rows when the resource syncs `certificates`.
pub fn rows_after_token(api: PersonioApiVersion, certificates: bool) -> Vec<Capability> {
    let mut rows = vec![Capability::PersonioAttributes];
    if api == PersonioApiVersion::V2 {
        rows.extend(V2_ROWS);
    }
    rows.push(Capability::PersonioApi);
    if certificates {
        rows.extend(DOCUMENT_ROWS);
    }
    rows
}

/// The v2 employee rows, in the order they are printed.
pub const V2_ROWS: [Capability; 3] = [
    Capability::PersonioV2Persons,
    Capability::PersonioV2Employments,
    Capability::PersonioV2OrgUnits,
];

/// The document rows of a CertificateSync, in the order they are printed.
pub const DOCUMENT_ROWS: [Capability; 3] = [
    Capability::PersonioDocumentCategory,
    Capability::PersonioDocumentListing,
    Capability::PersonioDocumentUpload,
];

/// The attribute row (through the API the resource reads), the v2 rows when they are probed, and
/// the `personio-api` recommendation; returns the employee ids the listing probe may try.
///
/// v1 is always sampled (one request): it decides the recommendation. v2 is probed when the
/// resource reads through it, or when v1 cannot read employees (could v2?).
async fn employee_rows(
    client: &PersonioClient,
    request: &AttributeRequest,
    api: PersonioApiVersion,
    findings: &mut Vec<Finding>,
) -> Vec<String> {
    let (v1, v1_listed) = probe_attributes(client, request).await;
    let on_v2 = api == PersonioApiVersion::V2;
    let v2 = if on_v2 || v1.state != State::Ok {
        let need = if on_v2 {
            Need::Required
        } else {
            Need::Recommended
        };
        Some(probe_v2(client, request, need).await)
    } else {
        None
    };
    let v1_state = v1.state;
    let v2_state = v2.as_ref().map(|rows| rows.state());
    let listed = match (on_v2, v2) {
        (true, Some(rows)) => {
            findings.push(rows.attributes);
            findings.extend(rows.rows);
            rows.listed
        }
        (_, rows) => {
            findings.push(v1);
            if let Some(rows) = rows {
                findings.extend(rows.rows);
            }
            v1_listed
        }
    };
    findings.push(recommend(api, v1_state, v2_state));
    listed
}

async fn probe_token(client: &PersonioClient, credentials_hint: &str) -> Finding {
    let capability = Capability::PersonioToken;
    match client.check_credentials().await {
        Ok(()) => Finding::ok(capability, "POST /v1/auth accepted the credential"),
        Err(PersonioError::Unauthorized { message }) => Finding::missing(
            capability,
            format!("Personio rejected the credential: {message}"),
            format!(
                "check {credentials_hint}; create a new credential under {CREDENTIALS_PAGE} if it was deleted"
            ),
        ),
        Err(error) => unknown(capability, &error),
    }
}

/// The attribute row, and the employee ids Personio listed (for the listing probe).
async fn probe_attributes(
    client: &PersonioClient,
    request: &AttributeRequest,
) -> (Finding, Vec<String>) {
    let capability = Capability::PersonioAttributes;
    let sample = match client.sample_employees(request).await {
        Ok(sample) => sample,
        Err(PersonioError::Forbidden { message, .. }) => {
            return (
                Finding::missing(
                    capability,
                    format!("the credential may not read employees: {message}"),
                    format!("grant the access right \"Employees: read\" under {CREDENTIALS_PAGE}"),
                ),
                Vec::new(),
            )
        }
        Err(error) => return (unknown(capability, &error), Vec::new()),
    };
    let listed = sample.ids.clone();
    if sample.records == 0 {
        return (
            Finding::unknown(
                capability,
                "Personio lists no employees, so the whitelist cannot be seen",
                "add an employee (or check the credential's employee access), then run preflight again",
            ),
            listed,
        );
    }
    let missing = sample.missing_required();
    if !missing.is_empty() {
        return (
            Finding::missing(
                capability,
                format!("not returned: {}", missing.join(", ")),
                format!(
                    "add {} to the credential's readable employee attributes under {CREDENTIALS_PAGE}",
                    missing.join(", ")
                ),
            ),
            listed,
        );
    }
    let mut detail = format!(
        "all {} attributes the resource reads returned (first {} employees)",
        request.required().len(),
        sample.records
    );
    let optional = sample.missing_optional();
    if !optional.is_empty() {
        detail.push_str(&format!(
            "; optional, not returned: {} (used when present)",
            optional.join(", ")
        ));
    }
    (Finding::ok(capability, detail), listed)
}

async fn probe_category(client: &PersonioClient, wanted: &DocumentCategoryRef) -> Finding {
    let capability = Capability::PersonioDocumentCategory;
    match resolve_category(client, wanted).await {
        Ok(id) => Finding::ok(capability, format!("category id {id}")),
        Err(error @ (JobError::UnknownCategory { .. } | JobError::InvalidCategoryRef)) => {
            Finding::missing(
                capability,
                error.to_string(),
                "set spec.documentCategory to an existing category (by id or exact name), or create it in Personio (Settings → People → Documents → Categories) and give the credential access to it",
            )
        }
        Err(JobError::Personio {
            source: PersonioError::Forbidden { message, .. },
            ..
        }) => Finding::missing(
            capability,
            format!("the credential may not read document categories: {message}"),
            format!("grant the access right \"Documents: read\" under {CREDENTIALS_PAGE}"),
        ),
        Err(error) => Finding::unknown(capability, error.to_string(), RETRY_ADVICE),
    }
}

/// Employees tried, in the order Personio listed them, until one has a document.
const LISTING_TRIES: usize = 5;

/// Lists documents of the chosen employee (or of the first listed employees, until one has a
/// document) in every category: the access right shows in the answer, and a document owned by
/// the employee confirms that `owner_id` takes the v1 employee id.
async fn probe_listing(
    client: &PersonioClient,
    chosen: Option<&str>,
    listed: &[String],
) -> Finding {
    let capability = Capability::PersonioDocumentListing;
    let with_document = "run preflight with --employee-id set to the id of an employee who has a document in Personio";
    let candidates: Vec<&str> = match chosen {
        Some(employee) => vec![employee],
        None => listed
            .iter()
            .take(LISTING_TRIES)
            .map(String::as_str)
            .collect(),
    };
    if candidates.is_empty() {
        return Finding::unknown(
            capability,
            "no employee to list documents for",
            with_document,
        );
    }
    for employee in &candidates {
        let employee = *employee;
        let result = client.sample_documents(employee, None).await;
        if matches!(&result, Ok(sample) if sample.documents == 0) {
            continue;
        }
        return listing_finding(employee, result);
    }
    Finding::unknown(
        capability,
        format!(
            "v2 listing answered (access ok), but employee(s) {} have no documents, so owner_id = v1 employee id is unconfirmed",
            candidates.join(", ")
        ),
        with_document,
    )
}

fn listing_finding(
    employee: &str,
    result: Result<crate::personio::DocumentListingSample, PersonioError>,
) -> Finding {
    let capability = Capability::PersonioDocumentListing;
    match result {
        Ok(sample) if sample.other_owners > 0 => Finding::missing(
            capability,
            format!(
                "owner_id={employee} returned {} document(s) of other owners: owner_id is not the v1 employee id",
                sample.other_owners
            ),
            "the marker check cannot trust this listing, so certificates cannot be checked before upload; report this to the operator's maintainers",
        ),
        Ok(sample) => Finding::ok(
            capability,
            format!(
                "v2 listing answered for employee {employee}: {} document(s), all of that owner",
                sample.documents
            ),
        ),
        Err(PersonioError::Unauthorized { message }) => Finding::missing(
            capability,
            format!("POST /v2/auth/token or the v2 listing refused the credential: {message}"),
            format!("allow the credential to use API v2 under {CREDENTIALS_PAGE}"),
        ),
        Err(PersonioError::Forbidden { message, .. }) => Finding::missing(
            capability,
            format!("v2 document listing denied: {message}"),
            format!(
                "grant the credential document read access for API v2 (scope documents:read) under {CREDENTIALS_PAGE}; without it no certificate can be checked against Personio, so the backfill uploads nothing"
            ),
        ),
        Err(PersonioError::NotFound { message, .. }) => Finding::missing(
            capability,
            format!("v2 listing does not know owner_id={employee} (HTTP 404: {message})"),
            "Personio just listed this v1 employee id, so owner_id takes another id on this tenant: every certificate would fail with \"employee not found in Personio\"; report this to the operator's maintainers",
        ),
        Err(error) => unknown(capability, &error),
    }
}

async fn probe_upload_scope(client: &PersonioClient) -> Finding {
    let capability = Capability::PersonioDocumentUpload;
    let advice = format!(
        "check the access right \"Documents: write\" under {CREDENTIALS_PAGE}; an upload cannot be tried without writing"
    );
    match client.probe_token_scope().await {
        Ok(Some(scope)) if grants_document_write(&scope) => {
            Finding::ok(capability, format!("token scopes: {scope}"))
        }
        Ok(Some(scope)) => Finding::missing(
            capability,
            format!("token scopes: {scope} (none for writing documents)"),
            advice,
        ),
        Ok(None) => Finding::unknown(capability, "Personio reports no token scopes", advice),
        Err(error) => unknown(capability, &error),
    }
}

/// Personio's scope names for documents are not documented (`documents:write` in the spec
/// example); any scope naming documents and write counts.
fn grants_document_write(scope: &str) -> bool {
    scope.split_whitespace().any(|term| {
        let term = term.to_ascii_lowercase();
        term.contains("document") && term.contains("write")
    })
}

const RETRY_ADVICE: &str = "run preflight again; if it persists, check the network path to the API";

fn unknown(capability: Capability, error: &PersonioError) -> Finding {
    Finding::unknown(capability, error.to_string(), RETRY_ADVICE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_write_scope_is_recognised_in_any_spelling() {
        assert!(grants_document_write(
            "employees:read documents:read documents:write"
        ));
        assert!(grants_document_write("personio:documents:write"));
        assert!(!grants_document_write("employees:read absences:read"));
        assert!(!grants_document_write("documents:read"));
    }
}
