//! `GET /sim/inspect/certificates`: every completed participation with its certificate, read
//! straight from the simulator's state (no token, no rate limit, no fault injection, not logged as
//! a request). For soak tests that must know the whole academy at once — which certificates the
//! operator owes, and which of them are broken on purpose — without paging the public API.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::ReteachSim;

pub(super) async fn certificates(State(sim): State<ReteachSim>) -> Response {
    axum::Json(json!({ "certificates": sim.certificate_inventory() })).into_response()
}

impl ReteachSim {
    /// Every completed participation that has a certificate, in creation order: its ids, the
    /// customer's `externalId`, whether the PDF is generated and whether its download is broken
    /// ([`Self::break_certificate`]).
    pub fn certificate_inventory(&self) -> Vec<Value> {
        self.with_state(|state| {
            state
                .participations
                .iter()
                .filter(|p| p.completed_at.is_some())
                .filter_map(|p| {
                    let certificate = state.certificates.get(p.certificate_id.as_deref()?)?;
                    let external_id = state
                        .customers
                        .iter()
                        .find(|c| c.id == p.customer_id)
                        .and_then(|c| c.external_id.clone());
                    Some(json!({
                        "certificateId": certificate.id,
                        "participationId": p.id,
                        "externalId": external_id,
                        "pdfReady": certificate.pdf_ready,
                        "broken": certificate.not_pdf,
                    }))
                })
                .collect()
        })
    }

    /// Breaks the downloads of the first `count` certificates (creation order), as
    /// [`Self::break_certificate`] does one. Returns their ids.
    pub fn break_first_certificates(&self, count: usize) -> Vec<String> {
        let ids: Vec<String> = self.with_state(|state| {
            state
                .participations
                .iter()
                .filter_map(|p| p.certificate_id.clone())
                .take(count)
                .collect()
        });
        ids.into_iter()
            .filter(|id| self.break_certificate(id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::SystemClock;

    #[test]
    fn the_inventory_lists_every_certificate_with_its_owner_and_the_broken_ones() {
        let sim = ReteachSim::new(Arc::new(SystemClock));
        sim.generate_from(10001, 3, 2);
        let broken = sim.break_first_certificates(2);
        assert_eq!(broken.len(), 2);
        let inventory = sim.certificate_inventory();
        assert_eq!(inventory.len(), 6);
        let broken_listed: Vec<&str> = inventory
            .iter()
            .filter(|c| c["broken"] == true)
            .map(|c| c["certificateId"].as_str().unwrap())
            .collect();
        assert_eq!(
            broken_listed,
            broken.iter().map(String::as_str).collect::<Vec<_>>()
        );
        assert_eq!(inventory[0]["externalId"], "10001");
        assert_eq!(inventory[5]["externalId"], "10003");
        assert!(inventory.iter().all(|c| c["pdfReady"] == true));
    }
}
