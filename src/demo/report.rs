//! Turns what a pass did into text for an 80–100 column terminal: ids, counts and reasons. The
//! simulators are inspected directly (no requests), so the report does not change the counts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::api::{CertificateSyncStatus, RecordFailure};
use crate::sim::personio::{PersonioSim, SimDocument};
use crate::sim::reteach::{ReteachSim, SimCustomer};
use crate::sync::certificate_ledger::REASON_PDF_PENDING;
use crate::sync::certificate_marker;
use crate::upstream::RequestRecord;

/// Width the id lists are wrapped at.
const WIDTH: usize = 88;
/// Uploaded certificates listed one by one; the rest are counted.
const UPLOAD_ROWS: usize = 6;

/// The reteach users as they were before a pass, to tell afterwards what the pass changed.
#[derive(Clone, Debug, Default)]
pub struct UsersBefore {
    ids: HashSet<String>,
    writes: HashMap<String, usize>,
    documents: usize,
}

impl UsersBefore {
    /// Snapshot of both simulators.
    pub fn take(reteach: &ReteachSim, personio: &PersonioSim) -> Self {
        let customers = reteach.customers();
        Self {
            writes: customers
                .iter()
                .map(|c| (c.id.clone(), reteach.writes(&c.id)))
                .collect(),
            ids: customers.into_iter().map(|c| c.id).collect(),
            documents: personio.documents().len(),
        }
    }
}

/// `title` underlined, with a blank line before.
pub fn heading(out: &mut String, title: &str) {
    let _ = write!(out, "\n{title}\n{}\n", "-".repeat(title.chars().count()));
}

/// The status of one resource as YAML, as `kubectl get -o yaml` would show it.
pub fn status_yaml(
    out: &mut String,
    kind: &str,
    name: &str,
    status: &impl Serialize,
) -> Result<(), serde_norway::Error> {
    let yaml = serde_norway::to_string(status)?;
    let _ = writeln!(out, "# kubectl get {kind} {name} -o yaml  (status only)");
    out.push_str("status:\n");
    for line in yaml.lines() {
        let _ = writeln!(out, "  {line}");
    }
    Ok(())
}

/// Created, updated and unchanged users by Personio id, and the lock schedule of every user the
/// pass touched.
pub fn users(
    out: &mut String,
    before: &UsersBefore,
    reteach: &ReteachSim,
    personio: &PersonioSim,
    tz: Tz,
    now: DateTime<Utc>,
) {
    let after = reteach.customers();
    let personio_id = |c: &SimCustomer| c.external_id.clone().unwrap_or_else(|| c.id.clone());
    let created: Vec<&SimCustomer> = after
        .iter()
        .filter(|c| !before.ids.contains(&c.id))
        .collect();
    let updated: Vec<&SimCustomer> = after
        .iter()
        .filter(|c| {
            before
                .writes
                .get(&c.id)
                .is_some_and(|&earlier| reteach.writes(&c.id) > earlier)
        })
        .collect();
    let ids = |list: &[&SimCustomer]| {
        let mut ids: Vec<String> = list.iter().map(|c| personio_id(c)).collect();
        ids.sort_by_key(|id| numeric_first(id));
        ids
    };
    id_list(out, "created", &ids(&created));
    id_list(out, "updated", &ids(&updated));
    let mut touched: Vec<&SimCustomer> = created.iter().chain(&updated).copied().collect();
    touched.sort_by_key(|c| numeric_first(&personio_id(c)));
    let scheduled: Vec<&&SimCustomer> = touched
        .iter()
        .filter(|c| c.set_inactive_at.is_some() || c.set_active_at.is_some_and(|at| at > now))
        .collect();
    if !scheduled.is_empty() {
        let _ = writeln!(
            out,
            "\n  lock schedule of these users (setActiveAt / setInactiveAt, {tz}):"
        );
        let _ = writeln!(
            out,
            "  {:<10} {:<18} {:<18} {:<8} why",
            "personio", "active from", "inactive from", "now"
        );
        for customer in scheduled {
            let day = |at: Option<DateTime<Utc>>| {
                at.map(|at| at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_else(|| "-".into())
            };
            let _ = writeln!(
                out,
                "  {:<10} {:<18} {:<18} {:<8} {}",
                personio_id(customer),
                day(customer.set_active_at),
                day(customer.set_inactive_at),
                lock_state(customer.status(now)),
                lock_reason(customer, now),
            );
        }
    }
    tags(out, &touched, &personio_id);
    for customer in &touched {
        let has_gender_in_personio = customer
            .external_id
            .as_deref()
            .and_then(|id| id.parse::<i64>().ok())
            .and_then(|id| personio.employee(id))
            .is_some_and(|e| e.seed.gender.is_some());
        if customer.gender.is_none() && has_gender_in_personio {
            let _ = writeln!(
                out,
                "  note: {} has a gender value reteach does not know; it is left empty",
                personio_id(customer)
            );
        }
    }
}

/// The tags of the users a pass touched, by tag (`spec.tags` and any set by hand).
fn tags(out: &mut String, touched: &[&SimCustomer], personio_id: &dyn Fn(&SimCustomer) -> String) {
    let mut by_tag: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for customer in touched {
        for tag in &customer.tags {
            by_tag
                .entry(tag.name.as_str())
                .or_default()
                .push(personio_id(customer));
        }
    }
    if by_tag.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n  reteach tags of these users (spec.tags, and any set by hand):"
    );
    let width = by_tag
        .keys()
        .map(|tag| tag.chars().count())
        .max()
        .unwrap_or(0);
    for (tag, mut ids) in by_tag {
        ids.sort_by_key(|id| numeric_first(id));
        id_list_wide(out, tag, width, &ids);
    }
}

/// Why a user has a lock date, in the words of the locking rule.
fn lock_reason(customer: &SimCustomer, now: DateTime<Utc>) -> &'static str {
    match (customer.set_active_at, customer.set_inactive_at) {
        (Some(active), _) if active > now => "contract starts later",
        (_, Some(inactive)) if inactive <= now => "contract ended",
        (_, Some(_)) => "last day ahead",
        _ => "",
    }
}

/// Sort key: numeric ids in numeric order, then anything else.
fn numeric_first(id: &str) -> (u64, String) {
    (id.parse().unwrap_or(u64::MAX), id.to_string())
}

fn lock_state(status: &str) -> &'static str {
    if status == "INACTIVE" {
        "locked"
    } else {
        "active"
    }
}

/// The documents the pass uploaded to Personio.
pub fn uploads(out: &mut String, before: &UsersBefore, personio: &PersonioSim) -> usize {
    let new: Vec<SimDocument> = personio
        .documents()
        .into_iter()
        .skip(before.documents)
        .collect();
    let _ = writeln!(out, "  uploaded {}", new.len());
    if new.is_empty() {
        return 0;
    }
    let _ = writeln!(
        out,
        "  {:<10} {:<10} {:<13} title",
        "document", "employee", "certificate"
    );
    for document in new.iter().take(UPLOAD_ROWS) {
        let certificate = document
            .comment
            .as_deref()
            .and_then(|c| c.strip_prefix(&certificate_marker("")))
            .unwrap_or("-");
        let _ = writeln!(
            out,
            "  {:<10} {:<10} {:<13} {}",
            document.id, document.owner_id, certificate, document.title
        );
    }
    if new.len() > UPLOAD_ROWS {
        let _ = writeln!(out, "  … and {} more", new.len() - UPLOAD_ROWS);
    }
    new.len()
}

/// Every record left out of a pass, with the reason status carries.
pub fn skipped(
    out: &mut String,
    employee_failures: &[RecordFailure],
    certificate_failures: &[RecordFailure],
    certificates: &CertificateSyncStatus,
) {
    let mut rows: Vec<(String, String)> = Vec::new();
    for failure in employee_failures.iter().chain(certificate_failures) {
        let what = match (&failure.certificate_id, &failure.personio_id) {
            (Some(certificate), _) => format!("certificate {certificate}"),
            (None, Some(employee)) => format!("employee {employee}"),
            (None, None) => "run".to_string(),
        };
        rows.push((what, failure.reason.clone()));
    }
    for pending in &certificates.ledger.pending {
        if pending.reason == REASON_PDF_PENDING {
            rows.push((
                format!("certificate {}", pending.certificate_id),
                "PDF not generated yet (PdfPending); retried every run".into(),
            ));
        }
    }
    let unlinked = certificates
        .last_run
        .as_ref()
        .map_or(0, |run| run.unknown_employee);
    if unlinked > 0 {
        rows.push((
            format!("{unlinked} certificates"),
            "of reteach users without a Personio id; not owed until the EmployeeSync links them"
                .into(),
        ));
    }
    if rows.is_empty() {
        out.push_str("  nothing\n");
    }
    for (what, reason) in rows {
        let _ = writeln!(out, "  {what:<24} {reason}");
    }
}

/// Requests per endpoint, one column per pass.
pub fn requests(out: &mut String, passes: &[Vec<RequestRecord>]) -> Vec<usize> {
    let mut counts: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (pass, records) in passes.iter().enumerate() {
        for record in records {
            counts
                .entry((record.api, record.endpoint))
                .or_insert_with(|| vec![0; passes.len()])[pass] += 1;
        }
    }
    let header: String = (1..=passes.len())
        .map(|n| format!("{:>7}", format!("run {n}")))
        .collect();
    let _ = writeln!(out, "  {:<48}{header}", "endpoint");
    for ((api, endpoint), per_pass) in &counts {
        let cells: String = per_pass.iter().map(|n| format!("{n:>7}")).collect();
        let _ = writeln!(out, "  {:<48}{cells}", format!("{api:<9}{endpoint}"));
    }
    let totals: Vec<usize> = passes.iter().map(Vec::len).collect();
    let cells: String = totals.iter().map(|n| format!("{n:>7}")).collect();
    let _ = writeln!(out, "  {:<48}{cells}", "total");
    totals
}

/// `label  N  id id id …`, wrapped.
fn id_list(out: &mut String, label: &str, ids: &[String]) {
    id_list_wide(out, label, 9, ids);
}

/// [`id_list`] with labels padded to `width`.
fn id_list_wide(out: &mut String, label: &str, width: usize, ids: &[String]) {
    let prefix = format!("  {label:<width$} {:>3}  ", ids.len());
    let indent = " ".repeat(prefix.chars().count());
    let mut line = prefix;
    let mut first = true;
    for id in ids {
        if !first && line.chars().count() + id.len() + 1 > WIDTH {
            let _ = writeln!(out, "{}", line.trim_end());
            line = indent.clone();
        }
        line.push_str(id);
        line.push(' ');
        first = false;
    }
    let _ = writeln!(out, "{}", line.trim_end());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_lists_wrap_below_the_terminal_width() {
        let ids: Vec<String> = (10_001..10_041).map(|id| id.to_string()).collect();
        let mut out = String::new();
        id_list(&mut out, "created", &ids);
        assert!(out.starts_with("  created    40  10001 10002"));
        assert!(out.lines().count() > 1);
        assert!(out.lines().all(|line| line.chars().count() <= WIDTH));
    }

    #[test]
    fn request_table_counts_each_endpoint_per_pass() {
        let record = |endpoint| RequestRecord {
            api: "personio",
            endpoint,
            status: 200,
            elapsed: std::time::Duration::ZERO,
        };
        let first = vec![record("POST /v1/auth"), record("GET /v1/company/employees")];
        let second = vec![record("GET /v1/company/employees")];
        let mut out = String::new();
        let totals = requests(&mut out, &[first, second]);
        assert_eq!(totals, vec![2, 1]);
        let auth = out.lines().find(|l| l.contains("POST /v1/auth")).unwrap();
        assert!(auth.ends_with("      1      0"), "{auth}");
    }
}
