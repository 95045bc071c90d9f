//! The Personio document category certificates are filed under: `spec.documentCategory` names
//! it by id or by name, and a run first checks that it exists.

use crate::api::DocumentCategoryRef;
use crate::personio::PersonioApi;

use super::error::JobError;

/// Resolves `spec.documentCategory` to a category id that exists in Personio.
pub async fn resolve_category(
    personio: &dyn PersonioApi,
    wanted: &DocumentCategoryRef,
) -> Result<i64, JobError> {
    let name = wanted
        .name
        .as_deref()
        .filter(|name| !name.trim().is_empty());
    if wanted.id.is_some() == name.is_some() {
        return Err(JobError::InvalidCategoryRef);
    }
    let categories = personio
        .document_categories()
        .await
        .map_err(JobError::personio(
            "could not read document categories from Personio",
        ))?;
    let found = categories
        .iter()
        .find(|category| match (wanted.id, name) {
            (Some(id), _) => category.id == id,
            (None, Some(name)) => category.name == name,
            (None, None) => false,
        })
        .map(|category| category.id);
    found.ok_or_else(|| JobError::UnknownCategory {
        wanted: match (wanted.id, name) {
            (Some(id), _) => format!("id {id}"),
            (None, name) => format!("{:?}", name.unwrap_or_default()),
        },
        available: categories
            .iter()
            .map(|category| format!("{} (id {})", category.name, category.id))
            .collect(),
    })
}
