//! Participation endpoints: completed participations with their certificates.

use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat, Utc};

use super::client::{found, ReteachClient};
use super::customers::{last_page, PAGE_LIMIT};
use super::wire;
use super::ReteachError;
use crate::sync::Completion;

const LIST: &str = "GET /participation";
const GET_ONE: &str = "GET /participation/{id}";

impl ReteachClient {
    pub(crate) async fn all_completions(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Completion>, ReteachError> {
        let url = self.url(&["participation"])?;
        let mut filters = vec![("status", "COMPLETED".to_string())];
        if let Some(since) = since {
            filters.push((
                "completedAtSince",
                since.to_rfc3339_opts(SecondsFormat::Millis, true),
            ));
        }
        let mut completions = Vec::new();
        let mut seen = HashSet::new();
        let mut page = 1u64;
        loop {
            let mut query = filters.clone();
            query.push(("page", page.to_string()));
            query.push(("limit", PAGE_LIMIT.to_string()));
            let value = self
                .call_json(LIST, &[], || self.http.get(url.clone()).query(&query))
                .await?;
            let (items, total) = wire::page(&value).ok_or_else(|| ReteachError::Malformed {
                endpoint: LIST,
                message: "no results".to_string(),
            })?;
            // The filters are newer than the 2022 spec: filter again, in case they are ignored.
            let wanted = items
                .iter()
                .filter_map(wire::completion)
                .filter(|c| since.is_none_or(|since| c.completed_at >= since));
            for completion in wanted {
                if seen.insert(completion.participation_id.clone()) {
                    completions.push(completion);
                }
            }
            if last_page(page, items.len(), total) {
                return Ok(completions);
            }
            page += 1;
        }
    }

    pub(crate) async fn one_completion(
        &self,
        id: &str,
    ) -> Result<Option<Completion>, ReteachError> {
        let url = self.url(&["participation", id])?;
        let value = found(
            self.call_json(GET_ONE, &[], || self.http.get(url.clone()))
                .await,
        )?;
        Ok(value.as_ref().and_then(wire::completion))
    }
}
