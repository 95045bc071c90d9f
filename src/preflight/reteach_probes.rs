//! The reteach rows of a preflight: token, one customer read, the completed-participation listing
//! and its filters, and the headers of one certificate download. Every call is a read.

use crate::reteach::{
    CertificateHead, ParticipationSample, ReteachApi, ReteachClient, ReteachError,
};

use super::report::{Capability, Finding, State};

const API_ACCESS_PAGE: &str = "reteach: Settings → Integrations → API access";
const RETRY_ADVICE: &str = "run preflight again; if it persists, check the network path to the API";
const DOWNLOAD_POLICY_ADVICE: &str = "a run cannot download this certificate either: ask reteach where certificate PDFs are served from, and the operator's administrator to allow that host (--allowed-download-hosts, Helm value certificateDownloads.allowedHosts)";

/// Where the reteach probes look and what they name in their advice.
pub struct ReteachPlan<'a> {
    /// Where the app credentials live.
    pub credentials_hint: &'a str,
    /// Whether the resource syncs certificates (then participations and downloads are probed).
    pub certificates: bool,
}

/// The rows after the token, in the order they are printed: the user listing, and the
/// participation and download rows when the resource syncs `certificates`.
pub fn rows_after_token(certificates: bool) -> Vec<Capability> {
    let mut rows = vec![Capability::ReteachCustomerRead];
    if certificates {
        rows.extend([
            Capability::ReteachParticipationRead,
            Capability::ReteachParticipationFilters,
            Capability::ReteachCertificateDownload,
        ]);
    }
    rows
}

/// Runs the reteach probes in order; later ones are skipped when the token is refused.
pub async fn probe_reteach(client: &ReteachClient, plan: &ReteachPlan<'_>) -> Vec<Finding> {
    let token = probe_token(client, plan.credentials_hint).await;
    if token.state != State::Ok {
        return token.then_skipped(rows_after_token(plan.certificates));
    }
    let mut findings = vec![token];
    findings.push(probe_customers(client).await);
    if !plan.certificates {
        return findings;
    }
    let sample = match client.sample_completed_participations(None).await {
        Ok(sample) => sample,
        Err(error) => {
            findings.push(participation_error(error));
            for capability in [
                Capability::ReteachParticipationFilters,
                Capability::ReteachCertificateDownload,
            ] {
                findings.push(Finding::skipped(
                    capability,
                    Capability::ReteachParticipationRead,
                ));
            }
            return findings;
        }
    };
    findings.push(Finding::ok(
        Capability::ReteachParticipationRead,
        format!(
            "GET /participation?status=COMPLETED answered: {} on the first page{}",
            sample.items.len(),
            sample
                .total
                .map(|total| format!(", {total} in all"))
                .unwrap_or_default()
        ),
    ));
    findings.push(probe_filters(client, &sample).await);
    findings.push(probe_download(client, &sample).await);
    findings
}

async fn probe_token(client: &ReteachClient, credentials_hint: &str) -> Finding {
    let capability = Capability::ReteachToken;
    match client.me().await {
        Ok(academy) => Finding::ok(
            capability,
            format!("POST /oauth/authorize accepted the app credentials; academy id {}", academy.id),
        ),
        Err(ReteachError::Unauthorized { message }) => Finding::missing(
            capability,
            format!("reteach rejected the app credentials: {message}"),
            format!("check {credentials_hint}; create new app credentials under {API_ACCESS_PAGE} if they were revoked"),
        ),
        Err(ReteachError::Forbidden { message, .. }) => Finding::missing(
            capability,
            format!("reteach denied GET /me with a fresh token: {message}"),
            format!("check {credentials_hint} and the app's access under {API_ACCESS_PAGE}"),
        ),
        Err(error) => unknown(capability, &error),
    }
}

async fn probe_customers(client: &ReteachClient) -> Finding {
    let capability = Capability::ReteachCustomerRead;
    match client.sample_customers().await {
        Ok(sample) => Finding::ok(
            capability,
            format!(
                "GET /customer answered: {} user(s) in the academy",
                sample
                    .total
                    .map(|total| total.to_string())
                    .unwrap_or_else(|| format!("at least {}", sample.returned))
            ),
        ),
        Err(ReteachError::Forbidden { message, .. }) => Finding::missing(
            capability,
            format!("GET /customer denied: {message}"),
            format!("give the app credentials access to users under {API_ACCESS_PAGE}"),
        ),
        Err(error) => unknown(capability, &error),
    }
}

fn participation_error(error: ReteachError) -> Finding {
    let capability = Capability::ReteachParticipationRead;
    match error {
        ReteachError::Forbidden { message, .. } => Finding::missing(
            capability,
            format!("GET /participation denied: {message}"),
            format!(
                "give the app credentials access to course participations under {API_ACCESS_PAGE}"
            ),
        ),
        ReteachError::Rejected { message, .. } => Finding::missing(
            capability,
            format!("GET /participation refused the status filter: {message}"),
            "this academy's API predates the participation filters; ask reteach to enable them",
        ),
        error => unknown(capability, &error),
    }
}

/// Whether reteach applied `status=COMPLETED` (every item completed) and `completedAtSince`
/// (a second page from the latest completion time holds nothing earlier).
async fn probe_filters(client: &ReteachClient, sample: &ParticipationSample) -> Finding {
    let capability = Capability::ReteachParticipationFilters;
    let consequence = "the sync still works (it filters again), but every run reads every participation; ask reteach about the status and completedAtSince filters";
    let not_completed = sample
        .items
        .iter()
        .filter(|item| item.status != "COMPLETED")
        .count();
    if not_completed > 0 {
        return Finding::missing(
            capability,
            format!(
                "status=COMPLETED ignored: {not_completed} of {} participations are not completed",
                sample.items.len()
            ),
            consequence,
        );
    }
    let times: Vec<_> = sample.items.iter().filter_map(|i| i.completed_at).collect();
    let (Some(latest), Some(earliest)) = (times.iter().max(), times.iter().min()) else {
        return Finding::unknown(
            capability,
            "no completed participation to test the filters with",
            "run preflight again once a course has been completed",
        );
    };
    if earliest == latest {
        return Finding::unknown(
            capability,
            "status=COMPLETED honoured; completedAtSince untested (one completion time on the first page)",
            "run preflight again once courses with different completion times exist",
        );
    }
    let later = match client.sample_completed_participations(Some(*latest)).await {
        Ok(later) => later,
        Err(error) => return unknown(capability, &error),
    };
    let earlier = later
        .items
        .iter()
        .filter(|item| item.completed_at.is_none_or(|at| at < *latest))
        .count();
    if earlier > 0 {
        return Finding::missing(
            capability,
            format!("completedAtSince ignored: {earlier} earlier participation(s) returned"),
            consequence,
        );
    }
    Finding::ok(
        capability,
        format!(
            "status=COMPLETED and completedAtSince honoured ({} → {} on the first page)",
            sample.items.len(),
            later.items.len()
        ),
    )
}

async fn probe_download(client: &ReteachClient, sample: &ParticipationSample) -> Finding {
    let capability = Capability::ReteachCertificateDownload;
    let Some((certificate_id, url)) = sample.items.iter().find_map(|item| {
        Some((
            item.certificate_id
                .clone()
                .unwrap_or_else(|| item.id.clone()),
            item.certificate_url.as_deref()?,
        ))
    }) else {
        return Finding::unknown(
            capability,
            "no completed participation with a generated certificate on the first page",
            "run preflight again once a certificate has been issued",
        );
    };
    match client.probe_certificate(url).await {
        Ok(head) => judge_head(&certificate_id, &head),
        Err(ReteachError::Unauthorized { message }) => Finding::missing(
            capability,
            format!("certificate {certificate_id}: the API refused the token: {message}"),
            format!("give the app credentials access to certificates under {API_ACCESS_PAGE}"),
        ),
        // Refused by the download policy before anything was sent to the URL: a fixed sentence,
        // nothing about the host (no status, length or error) — the URL is the academy's data.
        Err(error) => match error.certificate_url_refusal() {
            Some(sentence) => Finding::missing(
                capability,
                format!("certificate {certificate_id}: {sentence}"),
                DOWNLOAD_POLICY_ADVICE,
            ),
            None => Finding::unknown(
                capability,
                format!("certificate {certificate_id}: {error}"),
                RETRY_ADVICE,
            ),
        },
    }
}

/// ok for a 2xx PDF (or an unlabelled body, whose `%PDF` header the sync checks before each
/// upload); missing for a refusal or a page that is not a PDF.
fn judge_head(certificate_id: &str, head: &CertificateHead) -> Finding {
    let capability = Capability::ReteachCertificateDownload;
    let host = if head.same_origin {
        "API origin, with the token"
    } else {
        "another host, without the token"
    };
    let content_type = head.content_type.as_deref().unwrap_or("no content type");
    let redirects = match head.redirects {
        0 => String::new(),
        1 => " after 1 redirect".to_string(),
        n => format!(" after {n} redirects"),
    };
    let seen = format!(
        "certificate {certificate_id}: {} {}{redirects} ({host}), {content_type}{}",
        head.method,
        head.status,
        head.content_length
            .map(|length| format!(", {length} bytes"))
            .unwrap_or_default()
    );
    match head.status {
        200..=299 => match head.content_type.as_deref() {
            Some("application/pdf") | Some("application/octet-stream") | None => {
                Finding::ok(capability, seen)
            }
            Some(_) => Finding::missing(
                capability,
                seen,
                "the certificate URL does not lead to a PDF; ask reteach how certificate PDFs are downloaded by API",
            ),
        },
        401 | 403 => Finding::missing(
            capability,
            seen,
            if head.same_origin {
                format!("give the app credentials access to certificates under {API_ACCESS_PAGE}")
            } else {
                "the storage host refused the URL without a token; ask reteach whether certificate URLs need one".to_string()
            },
        ),
        _ => Finding::unknown(capability, seen, RETRY_ADVICE),
    }
}

fn unknown(capability: Capability, error: &ReteachError) -> Finding {
    Finding::unknown(capability, error.to_string(), RETRY_ADVICE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: u16, content_type: Option<&str>) -> CertificateHead {
        CertificateHead {
            status,
            content_type: content_type.map(str::to_string),
            content_length: Some(2048),
            same_origin: false,
            method: "HEAD",
            redirects: 0,
        }
    }

    #[test]
    fn a_pdf_from_a_storage_host_is_ok() {
        let finding = judge_head("c1", &head(200, Some("application/pdf")));
        assert_eq!(finding.state, State::Ok);
        assert!(finding.detail.contains("without the token"));
    }

    #[test]
    fn an_html_page_is_not_a_certificate() {
        let finding = judge_head("c1", &head(200, Some("text/html")));
        assert_eq!(finding.state, State::Missing);
    }

    #[test]
    fn a_refusing_storage_host_is_missing_with_advice_about_tokens() {
        let finding = judge_head("c1", &head(403, None));
        assert_eq!(finding.state, State::Missing);
        assert!(finding.action.contains("storage host"));
    }
}
