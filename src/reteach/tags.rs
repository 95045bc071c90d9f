//! A user's tags (`spec.tags`, issue 17): assign one (`PUT /customer/{id}/tags`), assign several
//! (`PUT /customer/{id}/multiple-tags`, mode `ADD` only) and unassign one
//! (`DELETE /customer/{id}/tags/{tagIdOrName}`). Requests go through the client's rate limit,
//! retries and error classification like every other call; tag names are scrubbed from error
//! messages (a template may put personal values into a tag).

use serde_json::{json, Value};

use super::client::ReteachClient;
use super::wire;
use super::ReteachError;

/// Assigns one tag.
pub(crate) const ASSIGN: &str = "PUT /customer/{id}/tags";
/// Assigns several tags.
pub(crate) const ASSIGN_MANY: &str = "PUT /customer/{id}/multiple-tags";
/// Unassigns one tag.
pub(crate) const UNASSIGN: &str = "DELETE /customer/{id}/tags/{tag}";

/// The body of `PUT /customer/{id}/tags` or `…/multiple-tags` for `names`.
pub(crate) fn assign_body(names: &[String]) -> (&'static str, Value) {
    match names {
        [one] => (ASSIGN, json!({ "tag": { "name": one } })),
        many => (
            ASSIGN_MANY,
            json!({
                "tags": many.iter().map(|name| json!({ "name": name })).collect::<Vec<_>>(),
                "mode": "ADD",
            }),
        ),
    }
}

impl ReteachClient {
    pub(crate) async fn put_tags(
        &self,
        customer_id: &str,
        names: &[String],
    ) -> Result<(), ReteachError> {
        if names.is_empty() {
            return Ok(());
        }
        let (endpoint, body) = assign_body(names);
        let path = if endpoint == ASSIGN {
            "tags"
        } else {
            "multiple-tags"
        };
        let url = self.url(&["customer", customer_id, path])?;
        let submitted: Vec<&str> = names.iter().map(String::as_str).collect();
        let value = self
            .call_json(endpoint, &submitted, || {
                self.http.put(url.clone()).json(&body)
            })
            .await?;
        // The assigned Tag, or (several) the array of them.
        let answered = if endpoint == ASSIGN {
            wire::tag(&value).is_some()
        } else {
            value.as_array().is_some()
        };
        if answered {
            Ok(())
        } else {
            Err(ReteachError::Malformed {
                endpoint,
                message: "no tag in the answer".to_string(),
            })
        }
    }

    pub(crate) async fn delete_tag(
        &self,
        customer_id: &str,
        tag: &str,
    ) -> Result<(), ReteachError> {
        // Each segment is percent-encoded: a tag named `a/b` or `50%` stays one segment.
        let url = self.url(&["customer", customer_id, "tags", tag])?;
        self.call_json(UNASSIGN, &[tag], || self.http.delete(url.clone()))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reteach::{ReteachConfig, ReteachCredentials};

    #[test]
    fn one_tag_is_assigned_alone_several_with_mode_add_never_replace() {
        let (endpoint, body) = assign_body(&["Sales".to_string()]);
        assert_eq!(endpoint, ASSIGN);
        assert_eq!(body, json!({"tag": {"name": "Sales"}}));
        let (endpoint, body) = assign_body(&["Sales".to_string(), "all".to_string()]);
        assert_eq!(endpoint, ASSIGN_MANY);
        assert_eq!(
            body,
            json!({"tags": [{"name": "Sales"}, {"name": "all"}], "mode": "ADD"})
        );
    }

    #[test]
    fn a_tag_name_stays_one_path_segment() {
        let credentials = ReteachCredentials::new("id", "secret", "code");
        let config = ReteachConfig::new("https://api.example", credentials);
        let client = ReteachClient::new(config).unwrap();
        let url = client
            .url(&["customer", "cus_1", "tags", "R&D / 50% ?"])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://api.example/customer/cus_1/tags/R&D%20%2F%2050%25%20%3F"
        );
    }
}
