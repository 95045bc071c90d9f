//! A preflight [`Report`] as the `status.capabilities` list of a resource (pure; the controllers
//! call it with the report of the probes they run before a resource's first run).

use super::report::{Need, Report, State};
use crate::api::CapabilityCheck;

/// Longest message kept per capability (status stays small; the table has the full text).
const MAX_MESSAGE_CHARS: usize = 300;

/// One entry per finding, in report order: `Ok` entries carry what was seen, the others what was
/// seen and what to do.
pub fn capability_status(report: &Report) -> Vec<CapabilityCheck> {
    report
        .findings
        .iter()
        .map(|finding| {
            let message = if finding.action.is_empty() {
                finding.detail.clone()
            } else {
                format!("{}; {}", finding.detail, finding.action)
            };
            CapabilityCheck {
                name: finding.capability.name().to_string(),
                state: match finding.state {
                    State::Ok => "Ok",
                    State::Missing => "Missing",
                    State::Unknown => "Unknown",
                }
                .to_string(),
                required: finding.need == Need::Required,
                message: truncate(&message),
            }
        })
        .collect()
}

/// The sentence for a `Stalled` condition when a required capability is missing: names each one
/// with what to do. `None` when nothing required is missing.
pub fn stalled_message(report: &Report) -> Option<String> {
    let missing: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.state == State::Missing && f.need == Need::Required)
        .map(|f| format!("{}: {} ({})", f.capability.name(), f.detail, f.action))
        .collect();
    (!missing.is_empty()).then(|| format!("preflight: {}", missing.join("; ")))
}

fn truncate(text: &str) -> String {
    if text.chars().count() <= MAX_MESSAGE_CHARS {
        return text.to_string();
    }
    let mut short: String = text.chars().take(MAX_MESSAGE_CHARS - 1).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preflight::{Capability, Finding};

    fn report() -> Report {
        Report {
            resource: "CertificateSync ns/certs".into(),
            findings: vec![
                Finding::ok(Capability::PersonioToken, "accepted"),
                Finding::missing(
                    Capability::PersonioAttributes,
                    "not returned: email",
                    "whitelist email",
                ),
                Finding::missing(
                    Capability::ReteachParticipationFilters,
                    "completedAtSince ignored",
                    "ask reteach",
                ),
            ],
        }
    }

    #[test]
    fn maps_every_finding_to_a_capability_entry() {
        let status = capability_status(&report());
        assert_eq!(status.len(), 3);
        assert_eq!(status[0].name, "personio-token");
        assert_eq!(status[0].state, "Ok");
        assert_eq!(status[0].message, "accepted");
        assert_eq!(status[1].state, "Missing");
        assert!(status[1].required);
        assert_eq!(status[1].message, "not returned: email; whitelist email");
        assert!(!status[2].required);
    }

    #[test]
    fn stalls_only_on_missing_required_capabilities() {
        let message = stalled_message(&report()).unwrap();
        assert!(message.contains("personio-attributes: not returned: email (whitelist email)"));
        assert!(!message.contains("reteach-participation-filters"));
        let mut fine = report();
        fine.findings.remove(1);
        assert_eq!(stalled_message(&fine), None);
    }

    #[test]
    fn capabilities_land_in_status_as_camel_case_json() {
        let mut status = crate::api::CertificateSyncStatus::default();
        status.common.capabilities = capability_status(&report());
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(
            json["capabilities"][1],
            serde_json::json!({
                "name": "personio-attributes",
                "state": "Missing",
                "required": true,
                "message": "not returned: email; whitelist email",
            })
        );
        let empty = serde_json::to_value(crate::api::EmployeeSyncStatus::default()).unwrap();
        assert!(empty.get("capabilities").is_none());
    }

    #[test]
    fn long_messages_are_cut() {
        let mut long = report();
        long.findings[0].detail = "x".repeat(1000);
        let status = capability_status(&long);
        assert_eq!(status[0].message.chars().count(), MAX_MESSAGE_CHARS);
    }
}
