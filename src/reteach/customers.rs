//! Customer endpoints: list (paged), lookups, find-or-create and partial update.

use std::collections::HashSet;

use super::client::ReteachClient;
use super::wire;
use super::{Academy, ReteachError};
use crate::sync::field_table::{FieldValue, FIELDS};
use crate::sync::{CustomerFields, CustomerPatch, ReteachCustomer};

/// reteach's maximum page size.
pub(crate) const PAGE_LIMIT: u64 = 250;
/// Guard against a server that never ends a listing (a page count no academy reaches).
pub(crate) const MAX_PAGES: u64 = 10_000;

const ME: &str = "GET /me";
pub const LIST: &str = "GET /customer";
pub const GET_ONE: &str = "GET /customer/{identifier}";
pub const CREATE: &str = "POST /customer";
pub const UPDATE: &str = "PUT /customer/{id}";

/// Whether a listing is complete after `page` (1-based) returned `items` items.
pub(crate) fn last_page(page: u64, items: usize, total: Option<u64>) -> bool {
    items == 0
        || (items as u64) < PAGE_LIMIT
        || total.is_some_and(|total| page * PAGE_LIMIT >= total)
        || page >= MAX_PAGES
}

/// The values of `fields` that must never appear in an error message: the ids, the login and
/// every text field of the table.
fn personal_values(fields: &CustomerFields) -> Vec<String> {
    let mut values = vec![fields.email.clone(), fields.external_id.clone()];
    values.extend(
        FIELDS
            .iter()
            .filter_map(|row| text(fields.value(row.field))),
    );
    values
}

/// The values of `patch` that must never appear in an error message.
fn patch_values(patch: &CustomerPatch) -> Vec<String> {
    let mut values: Vec<String> = patch.external_id.clone().flatten().into_iter().collect();
    values.extend(
        FIELDS
            .iter()
            .filter_map(|row| text(patch.value(row.field)?)),
    );
    values
}

fn text(value: FieldValue) -> Option<String> {
    match value {
        FieldValue::Text(text) => text,
        FieldValue::Gender(_) | FieldValue::Instant(_) => None,
    }
}

fn as_strs(values: &[String]) -> Vec<&str> {
    values.iter().map(String::as_str).collect()
}

impl ReteachClient {
    pub(crate) async fn get_me(&self) -> Result<Academy, ReteachError> {
        let url = self.url(&["me"])?;
        let value = self
            .call_json(ME, &[], || self.http.get(url.clone()))
            .await?;
        Ok(Academy {
            id: wire::text(&value, "id")
                .ok_or_else(|| ReteachError::malformed(ME, "no academy id"))?,
            name: wire::text(&value, "name").unwrap_or_default(),
        })
    }

    pub(crate) async fn all_customers(&self) -> Result<Vec<ReteachCustomer>, ReteachError> {
        let url = self.url(&["customer"])?;
        let mut customers = Vec::new();
        // Pages have no documented order and may shift while we read: keep each id once.
        let mut seen = HashSet::new();
        let mut page = 1u64;
        loop {
            let query = [
                ("page", page.to_string()),
                ("limit", PAGE_LIMIT.to_string()),
            ];
            let value = self
                .call_json(LIST, &[], || self.http.get(url.clone()).query(&query))
                .await?;
            let (items, total) = wire::page(&value, LIST)?;
            for item in items {
                match wire::customer(item) {
                    Some(customer) if seen.insert(customer.id.clone()) => customers.push(customer),
                    Some(_) => {}
                    None => tracing::warn!(page, "skipping a reteach customer without id"),
                }
            }
            if last_page(page, items.len(), total) {
                return Ok(customers);
            }
            page += 1;
        }
    }

    pub(crate) async fn customer_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<ReteachCustomer>, ReteachError> {
        let url = self.url(&["customer"])?;
        let query = [("externalId", external_id), ("limit", "250")];
        let value = self
            .call_json(LIST, &[external_id], || {
                self.http.get(url.clone()).query(&query)
            })
            .await?;
        let (items, _) = wire::page(&value, LIST)?;
        // Checked again here: a server (or proxy) that ignored the filter must not make us
        // update somebody else.
        Ok(items
            .iter()
            .filter_map(wire::customer)
            .find(|c| c.external_id.as_deref() == Some(external_id)))
    }

    pub(crate) async fn customer_by_email(
        &self,
        email: &str,
    ) -> Result<Option<ReteachCustomer>, ReteachError> {
        let value = self
            .get_one(GET_ONE, &["customer", email], &[email])
            .await?;
        let Some(value) = value else {
            return Ok(None);
        };
        let customer = wire::customer(&value)
            .ok_or_else(|| ReteachError::malformed(GET_ONE, "no customer id"))?;
        // The identifier also matches ids and usernames; only an e-mail match counts here.
        let matches = customer
            .email
            .as_deref()
            .is_some_and(|found| found.eq_ignore_ascii_case(email));
        Ok(matches.then_some(customer))
    }

    pub(crate) async fn find_or_create(
        &self,
        fields: &CustomerFields,
    ) -> Result<ReteachCustomer, ReteachError> {
        let url = self.url(&["customer"])?;
        let value = self
            .call_json(CREATE, &as_strs(&personal_values(fields)), || {
                self.http.post(url.clone()).json(fields)
            })
            .await?;
        wire::customer(&value).ok_or_else(|| ReteachError::malformed(CREATE, "no customer id"))
    }

    pub(crate) async fn put_customer(
        &self,
        id: &str,
        patch: &CustomerPatch,
    ) -> Result<ReteachCustomer, ReteachError> {
        let url = self.url(&["customer", id])?;
        let value = self
            .call_json(UPDATE, &as_strs(&patch_values(patch)), || {
                self.http.put(url.clone()).json(patch)
            })
            .await?;
        wire::customer(&value).ok_or_else(|| ReteachError::malformed(UPDATE, "no customer id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_edges() {
        assert!(last_page(1, 0, Some(0)));
        assert!(last_page(1, 250, Some(250)));
        assert!(!last_page(1, 250, Some(251)));
        assert!(last_page(2, 1, Some(251)));
        assert!(!last_page(1, 250, None));
        assert!(last_page(1, 10, None));
    }
}
