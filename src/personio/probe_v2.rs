//! Read-only probes of the v2 employee endpoints for `preflight`: the first page of persons, the
//! latest employment of the first persons, and the org unit and workplace look-ups that name
//! their department and office. Each step's answer is kept apart, so the preflight can name the
//! right (scope) that is missing. Nothing here writes to Personio.

use std::collections::BTreeSet;

use serde_json::Value;

use super::auth::TokenKind;
use super::client::PersonioClient;
use super::config::Lane;
use super::employee_record::{attribute_names, id_text};
use super::persons::{v1_record, UnitNames};
use super::PersonioError;

use super::persons::PERSONS;
/// Persons on the sample page.
const SAMPLE_PERSONS: usize = 10;
/// Persons whose employment (and units) the sample reads.
const SAMPLE_EMPLOYMENTS: usize = 3;

/// What the v2 probes saw.
#[derive(Debug)]
pub struct PersonsSample {
    /// `GET /v2/persons?limit=10`: the ids of the persons on it.
    pub persons: Result<Vec<String>, PersonioError>,
    /// `GET /v2/persons/{id}/employments?limit=1` of the first persons: how many had one.
    /// `None` when there was no person to try.
    pub employments: Option<Result<usize, PersonioError>>,
    /// `GET /v2/org-units/{id}` and `GET /v2/workplaces` for those employments: how many names
    /// were found. `None` when no employment was read.
    pub units: Option<Result<usize, PersonioError>>,
    /// Attribute names of the records built from them (as v1 would send them).
    pub attributes: BTreeSet<String>,
    /// Records built.
    pub records: usize,
}

impl PersonioClient {
    /// Samples the v2 employee endpoints (a handful of GETs).
    pub async fn sample_persons(&self) -> PersonsSample {
        let mut sample = PersonsSample {
            persons: Ok(Vec::new()),
            employments: None,
            units: None,
            attributes: BTreeSet::new(),
            records: 0,
        };
        let persons = match self.first_persons().await {
            Ok(persons) => persons,
            Err(error) => {
                sample.persons = Err(error);
                return sample;
            }
        };
        sample.persons = Ok(persons
            .iter()
            .filter_map(|person| person.get("id").and_then(id_text))
            .collect());
        let mut names = UnitNames::default();
        let mut employments = 0;
        let mut units = 0;
        for person in persons.iter().take(SAMPLE_EMPLOYMENTS) {
            let Some(id) = person.get("id").and_then(id_text) else {
                continue;
            };
            let employment = match self.latest_employment(&id).await {
                Ok(Some(employment)) => employment,
                Ok(None) | Err(PersonioError::NotFound { .. }) => continue,
                Err(error) => {
                    sample.employments = Some(Err(error));
                    return sample;
                }
            };
            employments += 1;
            sample.employments = Some(Ok(employments));
            let (department, office) = match names.of(self, &employment).await {
                Ok(Ok(found)) => found,
                Ok(Err(_unknown)) => (None, None),
                Err(error) => {
                    sample.units = Some(Err(error));
                    return sample;
                }
            };
            units += usize::from(department.is_some()) + usize::from(office.is_some());
            if department.is_none() && office.is_none() {
                // Nothing to name: still try the workplace listing for its right.
                if let Err(error) = names.workplace(self, "").await {
                    sample.units = Some(Err(error));
                    return sample;
                }
            }
            sample.units = Some(Ok(units));
            let record = v1_record(&id, person, &employment, department, office);
            sample
                .attributes
                .extend(attribute_names(&record).map(str::to_string));
            sample.records += 1;
        }
        if sample.employments.is_none() && !persons.is_empty() {
            sample.employments = Some(Ok(0));
        }
        sample
    }

    /// The first page of `GET /v2/persons`.
    async fn first_persons(&self) -> Result<Vec<Value>, PersonioError> {
        let mut url = self.url("/v2/persons")?;
        url.query_pairs_mut()
            .append_pair("limit", &SAMPLE_PERSONS.to_string());
        let page = self
            .get_json(PERSONS, TokenKind::V2, Lane::Employees, &url)
            .await?;
        Ok(page
            .get("_data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }
}
