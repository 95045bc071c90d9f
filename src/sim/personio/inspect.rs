//! `GET /sim/inspect/documents`: every stored document and the number of upload requests, read
//! straight from the simulator's state (no token, no rate limit, no fault injection, not logged
//! as a request). For soak tests that must tell duplicates apart across thousands of employees
//! at once, without paging the v2 listing employee by employee.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::PersonioSim;

/// The upload endpoint, as the request log records it.
const UPLOAD: &str = "POST /v1/company/documents";

pub(super) async fn documents(State(sim): State<PersonioSim>) -> Response {
    axum::Json(sim.document_inventory()).into_response()
}

impl PersonioSim {
    /// `{"uploadRequests": n, "documents": [{"id", "ownerId", "categoryId", "comment", "size"}]}`:
    /// upload requests received (whatever their answer) and every stored document in upload order.
    pub fn document_inventory(&self) -> Value {
        let documents: Vec<Value> = self
            .documents()
            .iter()
            .map(|d| {
                json!({
                    "id": d.id,
                    "ownerId": d.owner_id,
                    "categoryId": d.category_id,
                    "comment": d.comment,
                    "size": d.size,
                })
            })
            .collect();
        json!({
            "uploadRequests": self.control().count(UPLOAD),
            "documents": documents,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inventory_lists_every_document_with_its_owner_and_marker() {
        let sim = PersonioSim::new(super::super::PersonioSimConfig::default());
        sim.populate(2, 1);
        let owner = sim.employee_ids()[1];
        sim.insert_document(owner, 2, "Certificate", Some("reteach-certificate:cer_1"));
        let inventory = sim.document_inventory();
        assert_eq!(inventory["uploadRequests"], 0);
        let documents = inventory["documents"].as_array().unwrap();
        assert_eq!(documents.len(), 1);
        assert_eq!(documents[0]["ownerId"], owner);
        assert_eq!(documents[0]["comment"], "reteach-certificate:cer_1");
    }
}
