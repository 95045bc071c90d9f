//! Routes webhook notifications to the process that syncs. With leader election only the leader
//! runs the receiver, and with shards each Deployment's leader knows only its own resources, so a
//! Service that selects every operator pod would hand notifications to a standby (connection
//! refused) or to another shard (404). Instead the chart renders a Service **without** a selector
//! per Deployment, plus an `EndpointSlice` of the same name (labelled with the Service's name), and
//! the process that syncs points that slice at itself ([`ReceiverEndpoints::point_here`]) once its
//! receiver listens, and takes itself out again when it stops ([`ReceiverEndpoints::withdraw`]). A
//! new leader simply points it at itself; a crashed one is replaced the same way (Patroni routes
//! to its primary the same way, with an `Endpoints` object).
//!
//! The operator writes only the `endpoints` list of this one named object (RBAC `get`/`patch` on
//! `endpointslices` restricted by `resourceNames`), never Pods: `patch pods` would let it change
//! any pod's image. The chart owns the slice's ports and address type.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::{oneshot, ApiResource};
use kube::Client;
use serde_json::{json, Value};

/// Who this process is, for the `Endpoints` address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiverAddress {
    /// The pod's IP (`POD_IP`, from the downward API `status.podIP`).
    pub ip: String,
    /// The pod's name (`POD_NAME`), recorded as the address's `targetRef`.
    pub pod: Option<String>,
}

/// Why the `Endpoints` object could not be written.
#[derive(Debug, thiserror::Error)]
pub enum EndpointsError {
    /// `--webhook-endpoints` without `POD_IP`.
    #[error("--webhook-endpoints needs the pod's IP in POD_IP (downward API `status.podIP`)")]
    MissingPodIp,
    /// `POD_IP` is not an IP address.
    #[error("POD_IP is not an IP address")]
    InvalidPodIp,
    /// The apiserver refused.
    #[error("cannot update EndpointSlice {namespace}/{name} (the operator's role needs `get` and `patch` on it): {source}")]
    Kube {
        /// Namespace of the object.
        namespace: String,
        /// Name of the object.
        name: String,
        /// What the apiserver said.
        #[source]
        source: kube::Error,
    },
}

/// The one `EndpointSlice` this process may point at itself.
pub struct ReceiverEndpoints {
    api: Api<DynamicObject>,
    namespace: String,
    name: String,
    address: ReceiverAddress,
}

impl ReceiverEndpoints {
    /// The slice `namespace/name`, pointed at `address`. Asks the apiserver which EndpointSlice
    /// version it serves (`discovery.k8s.io/v1` from Kubernetes 1.21, `v1beta1` before).
    pub async fn new(
        client: Client,
        namespace: &str,
        name: &str,
        address: ReceiverAddress,
    ) -> Result<Self, EndpointsError> {
        let error = |source| EndpointsError::Kube {
            namespace: namespace.to_string(),
            name: name.to_string(),
            source,
        };
        let group = oneshot::group(&client, DISCOVERY_GROUP)
            .await
            .map_err(error)?;
        let resource = group
            .recommended_kind("EndpointSlice")
            .map(|(resource, _)| resource)
            .unwrap_or_else(|| ApiResource::from_gvk(&endpoint_slice_v1()));
        Ok(Self {
            api: Api::namespaced_with(client, namespace, &resource),
            namespace: namespace.to_string(),
            name: name.to_string(),
            address,
        })
    }

    /// This process's address from the environment (`POD_IP`, `POD_NAME`).
    pub fn address_from_env() -> Result<ReceiverAddress, EndpointsError> {
        let ip = std::env::var("POD_IP").map_err(|_| EndpointsError::MissingPodIp)?;
        ip.parse::<std::net::IpAddr>()
            .map_err(|_| EndpointsError::InvalidPodIp)?;
        Ok(ReceiverAddress {
            ip,
            pod: std::env::var("POD_NAME")
                .ok()
                .filter(|name| !name.is_empty()),
        })
    }

    fn error(&self, source: kube::Error) -> EndpointsError {
        EndpointsError::Kube {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }

    /// Makes this process the only endpoint of the slice (a merge patch replaces `endpoints` as a
    /// whole). Retried a few times: a new leader that cannot route notifications to itself still
    /// syncs (polling is the safety net), so the caller only logs a final failure.
    pub async fn point_here(&self) -> Result<(), EndpointsError> {
        let patch =
            Patch::Merge(json!({ "endpoints": [endpoint(&self.namespace, &self.address)] }));
        let write = || async {
            self.api
                .patch(&self.name, &PatchParams::default(), &patch)
                .await
        };
        write
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_times(4),
            )
            .await
            .map(|_| ())
            .map_err(|source| self.error(source))
    }

    /// Points the slice here now, then checks every `period` until `shutdown` that it still does
    /// and points it back if not: a `helm upgrade` that re-applies the chart's empty slice, or a
    /// hand edit, must not cut notifications off until the next leader change. One GET per
    /// period; a failure is logged and tried again next period (polling syncs meanwhile).
    pub async fn hold(&self, period: Duration, shutdown: tokio_util::sync::CancellationToken) {
        let mut announced = false;
        loop {
            match self.ensure_here().await {
                Ok(()) if !announced => {
                    announced = true;
                    tracing::info!(endpoint_slice = %self.name, "webhook Service points at this process");
                }
                Ok(()) => {}
                Err(error) => tracing::error!(
                    %error,
                    "webhook notifications cannot reach this process; polling continues"
                ),
            }
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    async fn ensure_here(&self) -> Result<(), EndpointsError> {
        let current = self
            .api
            .get(&self.name)
            .await
            .map_err(|source| self.error(source))?;
        if points_only_at(&current.data, &self.address) {
            return Ok(());
        }
        self.point_here().await
    }

    /// Removes this process from the object if it is still the address there; a successor that
    /// already pointed it elsewhere is left alone (the patch carries the read resourceVersion, so
    /// a concurrent change wins).
    pub async fn withdraw(&self) -> Result<(), EndpointsError> {
        let current = self
            .api
            .get(&self.name)
            .await
            .map_err(|source| self.error(source))?;
        if !points_at(&current.data, &self.address) {
            return Ok(());
        }
        let patch = Patch::Merge(json!({
            "metadata": { "resourceVersion": current.metadata.resource_version },
            "endpoints": [],
        }));
        match self
            .api
            .patch(&self.name, &PatchParams::default(), &patch)
            .await
        {
            Ok(_) => Ok(()),
            // Changed meanwhile: someone else owns it now.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(source) => Err(self.error(source)),
        }
    }
}

const DISCOVERY_GROUP: &str = "discovery.k8s.io";

fn endpoint_slice_v1() -> kube::api::GroupVersionKind {
    kube::api::GroupVersionKind::gvk(DISCOVERY_GROUP, "v1", "EndpointSlice")
}

/// The slice's entry for `address` (the same shape in `v1` and `v1beta1`).
fn endpoint(namespace: &str, address: &ReceiverAddress) -> Value {
    let mut entry = json!({ "addresses": [address.ip], "conditions": { "ready": true } });
    if let Some(pod) = &address.pod {
        entry["targetRef"] = json!({ "kind": "Pod", "namespace": namespace, "name": pod });
    }
    entry
}

/// Whether `address` is the slice's one endpoint.
fn points_only_at(slice: &Value, address: &ReceiverAddress) -> bool {
    slice["endpoints"].as_array().map(Vec::len) == Some(1) && points_at(slice, address)
}

/// Whether the slice (its fields besides metadata) routes to `address`.
fn points_at(slice: &Value, address: &ReceiverAddress) -> bool {
    slice["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| match &address.pod {
            Some(pod) => entry["targetRef"]["name"].as_str() == Some(pod.as_str()),
            None => true,
        })
        .filter_map(|entry| entry["addresses"].as_array())
        .flatten()
        .any(|ip| ip.as_str() == Some(address.ip.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(ip: &str) -> ReceiverAddress {
        ReceiverAddress {
            ip: ip.to_string(),
            pod: Some("rpo-abc".to_string()),
        }
    }

    #[test]
    fn the_entry_names_the_pod_and_is_ready() {
        let value = endpoint("ops", &address("10.244.0.7"));
        assert_eq!(value["addresses"][0], "10.244.0.7");
        assert_eq!(value["conditions"]["ready"], true);
        assert_eq!(value["targetRef"]["name"], "rpo-abc");
        assert_eq!(value["targetRef"]["namespace"], "ops");
    }

    #[test]
    fn withdrawing_leaves_a_slice_that_points_at_a_successor_alone() {
        let ours = json!({ "endpoints": [endpoint("ops", &address("10.244.0.7"))] });
        assert!(points_at(&ours, &address("10.244.0.7")));
        assert!(!points_at(&ours, &address("10.244.0.9")));
        let successor_same_ip = ReceiverAddress {
            ip: "10.244.0.7".to_string(),
            pod: Some("rpo-def".to_string()),
        };
        assert!(!points_at(&ours, &successor_same_ip));
        assert!(!points_at(
            &json!({ "endpoints": [] }),
            &address("10.244.0.7")
        ));
        assert!(!points_at(&json!({}), &address("10.244.0.7")));
    }

    #[test]
    fn a_slice_that_also_names_another_address_is_pointed_here_again() {
        let ours = json!({ "endpoints": [endpoint("ops", &address("10.244.0.7"))] });
        assert!(points_only_at(&ours, &address("10.244.0.7")));
        let shared = json!({ "endpoints": [
            endpoint("ops", &address("10.244.0.7")),
            endpoint("ops", &address("10.244.0.9")),
        ] });
        assert!(!points_only_at(&shared, &address("10.244.0.7")));
        assert!(!points_only_at(
            &json!({ "endpoints": [] }),
            &address("10.244.0.7")
        ));
    }
}
