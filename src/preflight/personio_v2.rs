//! The v2 employee rows of a preflight (persons, employments, org units and workplaces) and the
//! `personio-api` row: which API the EmployeeSync should read employees through
//! (`spec.personio.api`). The v2 rows are required of a resource that reads through v2; for one
//! on v1 they are probed only when v1 cannot read employees, to tell whether v2 could.

use crate::api::PersonioApiVersion;
use crate::personio::{AttributeRequest, PersonioClient, PersonioError, PersonsSample};

use super::report::{Capability, Finding, Need, State};

const CREDENTIALS_PAGE: &str = "Personio: Settings → Integrations → API credentials";
const RETRY_ADVICE: &str = "run preflight again; if it persists, check the network path to the API";

/// What a full read costs through each API, for the recommendation (docs/credentials.md,
/// "Personio API v1 or v2"; BENCHMARKS.md).
const COST: &str = "v1 reads 100 employees per request and its change feed sees every change; v2 needs one request per employee and its incremental runs miss employment-only changes";

/// The v2 rows: persons, employments, org units/workplaces; and the attribute row as seen
/// through v2 (for a resource that reads through v2). `need` is that of the resource's use.
pub struct V2Rows {
    /// `personio-v2-persons`, `personio-v2-employments`, `personio-v2-org-units`.
    pub rows: Vec<Finding>,
    /// The whitelist as v2 returned it (`personio-attributes` of a v2 resource).
    pub attributes: Finding,
    /// Person ids on the first page (the document listing probe tries them).
    pub listed: Vec<String>,
}

impl V2Rows {
    /// Whether v2 can read employees: every row and the whitelist ok.
    pub fn state(&self) -> State {
        let states = self
            .rows
            .iter()
            .chain(std::iter::once(&self.attributes))
            .map(|f| f.state);
        worst(states)
    }
}

fn worst(states: impl Iterator<Item = State>) -> State {
    states.fold(State::Ok, |worst, state| match (worst, state) {
        (State::Missing, _) | (_, State::Missing) => State::Missing,
        (State::Unknown, _) | (_, State::Unknown) => State::Unknown,
        _ => State::Ok,
    })
}

/// Probes the v2 employee endpoints with the attributes the resource reads.
pub async fn probe_v2(client: &PersonioClient, request: &AttributeRequest, need: Need) -> V2Rows {
    let sample = client.sample_persons().await;
    judge(&sample, request, need)
}

/// The rows of a [`PersonsSample`] (pure).
pub fn judge(sample: &PersonsSample, request: &AttributeRequest, need: Need) -> V2Rows {
    let persons = Capability::PersonioV2Persons;
    let employments = Capability::PersonioV2Employments;
    let units = Capability::PersonioV2OrgUnits;
    let mut rows = Vec::new();
    let listed = match &sample.persons {
        Ok(ids) => {
            rows.push(Finding::ok(
                persons,
                format!(
                    "GET /v2/persons answered: {} person(s) on the first page",
                    ids.len()
                ),
            ));
            ids.clone()
        }
        Err(error) => {
            rows.push(denied(persons, error, "personio:persons:read"));
            rows.extend([employments, units].map(|c| Finding::skipped(c, persons)));
            return finish(rows, skipped_attributes(persons), Vec::new(), need);
        }
    };
    match &sample.employments {
        None => {
            rows.push(no_person(employments));
            rows.push(no_person(units));
            let attributes = Finding::unknown(
                Capability::PersonioAttributes,
                "Personio v2 lists no persons, so the whitelist cannot be seen",
                "add an employee (or check the credential's employee access), then run preflight again",
            );
            return finish(rows, attributes, listed, need);
        }
        Some(Err(error)) => {
            rows.push(denied(employments, error, "personio:employments:read"));
            rows.push(Finding::skipped(units, employments));
            return finish(rows, skipped_attributes(employments), listed, need);
        }
        Some(Ok(found)) => rows.push(Finding::ok(
            employments,
            format!("GET /v2/persons/{{id}}/employments answered: {found} employment(s) of the first persons"),
        )),
    }
    match &sample.units {
        Some(Err(error)) => {
            rows.push(denied(units, error, "the org-unit and workplace read scopes"));
            return finish(rows, skipped_attributes(units), listed, need);
        }
        Some(Ok(named)) => rows.push(Finding::ok(
            units,
            format!("GET /v2/org-units/{{id}} and GET /v2/workplaces answered: {named} department/office name(s)"),
        )),
        None => rows.push(Finding::unknown(
            units,
            "no employment to look up a department or office for",
            "run preflight again once an employee has an employment",
        )),
    }
    let attributes = v2_attributes(sample, request);
    finish(rows, attributes, listed, need)
}

fn finish(rows: Vec<Finding>, attributes: Finding, listed: Vec<String>, need: Need) -> V2Rows {
    V2Rows {
        rows: rows.into_iter().map(|row| row.with_need(need)).collect(),
        attributes,
        listed,
    }
}

fn skipped_attributes(prerequisite: Capability) -> Finding {
    Finding::skipped(Capability::PersonioAttributes, prerequisite)
}

fn no_person(capability: Capability) -> Finding {
    Finding::unknown(
        capability,
        "Personio v2 lists no persons to try",
        "add an employee, then run preflight again",
    )
}

/// The whitelist as the records built from v2 show it.
fn v2_attributes(sample: &PersonsSample, request: &AttributeRequest) -> Finding {
    let capability = Capability::PersonioAttributes;
    if sample.records == 0 {
        return Finding::unknown(
            capability,
            "no person with an employment, so the whitelist cannot be seen through v2",
            "add an employee with an employment, then run preflight again",
        );
    }
    let missing: Vec<&str> = request
        .required()
        .iter()
        .map(String::as_str)
        .filter(|name| !sample.attributes.contains(*name))
        .collect();
    if missing.is_empty() {
        Finding::ok(
            capability,
            format!(
                "all {} attributes the resource reads returned through v2 (first {} persons)",
                request.required().len(),
                sample.records
            ),
        )
    } else {
        Finding::missing(
            capability,
            format!("not returned through v2: {}", missing.join(", ")),
            format!(
                "add {} to the credential's readable attributes under {CREDENTIALS_PAGE}",
                missing.join(", ")
            ),
        )
    }
}

/// A refused or failed v2 step: a missing right names its scope.
fn denied(capability: Capability, error: &PersonioError, scope: &str) -> Finding {
    match error {
        PersonioError::Unauthorized { message } => Finding::missing(
            capability,
            format!("POST /v2/auth/token or the request refused the credential: {message}"),
            format!("allow the credential to use API v2 under {CREDENTIALS_PAGE}"),
        ),
        PersonioError::Forbidden { message, .. } => Finding::missing(
            capability,
            format!("denied: {message}"),
            format!("grant the credential {scope} under {CREDENTIALS_PAGE}"),
        ),
        other => Finding::unknown(capability, other.to_string(), RETRY_ADVICE),
    }
}

/// The `personio-api` row: which API the resource should read employees through, from what v1
/// (`v1`: the state of its attribute row) and v2 (`v2`: the state of its rows, `None` when not
/// probed) showed. Never required: the rows of the configured API decide whether it can run.
pub fn recommend(configured: PersonioApiVersion, v1: State, v2: Option<State>) -> Finding {
    let capability = Capability::PersonioApi;
    let name = |api: PersonioApiVersion| match api {
        PersonioApiVersion::V1 => "v1",
        PersonioApiVersion::V2 => "v2",
    };
    let set = |api| format!("set spec.personio.api: {} on the EmployeeSync", name(api));
    match (configured, v1, v2) {
        (PersonioApiVersion::V1, State::Ok, _) => Finding::ok(
            capability,
            format!("recommended: v1 (configured); {COST}"),
        ),
        (PersonioApiVersion::V2, State::Ok, Some(State::Ok)) => Finding::ok(
            capability,
            format!("v2 (configured) can read employees; v1 can too and is recommended while Personio serves it ({COST}); switching keeps every reteach user linked"),
        ),
        (PersonioApiVersion::V2, State::Ok, _) => Finding::missing(
            capability,
            "v2 (configured) cannot read employees (see the personio-v2 rows); v1 can",
            format!("{}, or grant the v2 scopes the rows name", set(PersonioApiVersion::V1)),
        ),
        (PersonioApiVersion::V2, _, Some(State::Ok)) => Finding::ok(
            capability,
            "recommended: v2 (configured): v1 cannot read employees with this credential",
        ),
        (PersonioApiVersion::V1, State::Missing, Some(State::Ok)) => Finding::missing(
            capability,
            "v1 (configured) cannot read employees (see personio-attributes); v2 can",
            format!("{}, or grant the v1 rights personio-attributes names", set(PersonioApiVersion::V2)),
        ),
        (_, State::Missing, Some(State::Missing)) => Finding::missing(
            capability,
            "neither v1 nor v2 can read employees with this credential",
            format!("grant the rights the rows above name under {CREDENTIALS_PAGE}"),
        ),
        _ => Finding::unknown(
            capability,
            "not decided: an employee read could not be checked",
            "fix the rows above that are not ok, then run preflight again",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PersonsSample {
        PersonsSample {
            persons: Ok(vec!["7".into(), "8".into()]),
            employments: Some(Ok(2)),
            units: Some(Ok(4)),
            attributes: crate::personio::REQUIRED_ATTRIBUTES
                .iter()
                .map(|name| name.to_string())
                .collect(),
            records: 2,
        }
    }

    #[test]
    fn a_complete_v2_sample_is_ok_with_the_need_of_the_resource() {
        let rows = judge(&sample(), &AttributeRequest::default(), Need::Required);
        assert_eq!(rows.state(), State::Ok);
        assert_eq!(rows.listed, vec!["7", "8"]);
        assert!(rows.rows.iter().all(|row| row.need == Need::Required));
        assert_eq!(rows.attributes.state, State::Ok);
    }

    #[test]
    fn a_missing_scope_is_named_and_the_later_rows_are_skipped() {
        let forbidden = |endpoint| PersonioError::Forbidden {
            endpoint,
            message: "insufficient scope".into(),
        };
        let mut denied = sample();
        denied.employments = Some(Err(forbidden("GET /v2/persons/{id}/employments")));
        let rows = judge(&denied, &AttributeRequest::default(), Need::Recommended);
        assert_eq!(rows.rows[1].state, State::Missing);
        assert!(rows.rows[1].action.contains("personio:employments:read"));
        assert_eq!(rows.rows[2].state, State::Unknown, "org units not probed");
        assert_eq!(rows.state(), State::Missing);
        assert!(rows.rows.iter().all(|row| row.need == Need::Recommended));

        let mut no_persons = sample();
        no_persons.persons = Err(forbidden("GET /v2/persons"));
        let rows = judge(&no_persons, &AttributeRequest::default(), Need::Required);
        assert!(rows.rows[0].action.contains("personio:persons:read"));
    }

    #[test]
    fn a_whitelist_gap_shows_through_v2() {
        let mut partial = sample();
        partial.attributes.remove("gender");
        let rows = judge(&partial, &AttributeRequest::default(), Need::Required);
        assert_eq!(rows.attributes.state, State::Missing);
        assert!(rows.attributes.detail.contains("gender"));
    }

    #[test]
    fn the_recommendation_follows_what_each_api_can_do() {
        use PersonioApiVersion::{V1, V2};
        let ok = |f: &Finding| f.state == State::Ok;
        assert!(ok(&recommend(V1, State::Ok, None)));
        assert!(recommend(V1, State::Ok, None)
            .detail
            .contains("recommended: v1"));
        let v2_but_v1_cheaper = recommend(V2, State::Ok, Some(State::Ok));
        assert!(ok(&v2_but_v1_cheaper) && v2_but_v1_cheaper.detail.contains("v1 can too"));
        let back_to_v1 = recommend(V2, State::Ok, Some(State::Missing));
        assert_eq!(back_to_v1.state, State::Missing);
        assert!(back_to_v1.action.contains("spec.personio.api: v1"));
        let to_v2 = recommend(V1, State::Missing, Some(State::Ok));
        assert!(to_v2.action.contains("spec.personio.api: v2"));
        assert!(ok(&recommend(V2, State::Missing, Some(State::Ok))));
        assert_eq!(
            recommend(V1, State::Missing, Some(State::Missing)).state,
            State::Missing
        );
        assert_eq!(recommend(V1, State::Unknown, None).state, State::Unknown);
        for finding in [to_v2, back_to_v1] {
            assert_eq!(finding.need, Need::Recommended, "never stalls a resource");
        }
    }
}
