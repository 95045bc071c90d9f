//! Routes webhook notifications to the process that syncs. With leader election only the leader
//! runs the receiver, and with shards each Deployment's leader knows only its own resources, so a
//! Service that selects every operator pod would hand notifications to a standby (connection
//! refused) or to another shard (404). Instead the chart renders a Service **without** a selector
//! per Deployment, and the process that syncs keeps an `EndpointSlice` for it (named like the
//! Service, labelled `kubernetes.io/service-name`, owned by the Service so it goes with it)
//! pointing at itself ([`ReceiverEndpoints::hold`]), and takes itself out again when it stops
//! ([`ReceiverEndpoints::withdraw`]). A new leader simply points it at itself; a crashed one is
//! replaced the same way (Patroni routes to its primary the same way, with an `Endpoints`
//! object).
//!
//! The operator creates the slice rather than the chart: Helm validates an `EndpointSlice`
//! without `endpoints` as invalid, and one with `endpoints: []` would, under server-side apply,
//! conflict with the operator's addresses on every upgrade (or reset them). RBAC: `create` on
//! `endpointslices` in the release namespace, `get`/`patch` only on the named slices and `get` only
//! on the named Services (for the owner reference); never Pods (`patch pods` would let it change
//! any pod's image).

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
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
    /// The receiver Service is missing.
    #[error("the webhook receiver Service {namespace}/{name} does not exist (the chart creates it with webhook.enabled)")]
    NoService {
        /// Namespace of the Service.
        namespace: String,
        /// Name of the Service.
        name: String,
    },
    /// The apiserver refused.
    #[error("cannot update EndpointSlice {namespace}/{name} (the operator's role needs `create` on endpointslices, `get` and `patch` on this one, and `get` on the Service of the same name): {source}")]
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
    services: Api<Service>,
    api_version: String,
    namespace: String,
    name: String,
    port: u16,
    address: ReceiverAddress,
}

impl ReceiverEndpoints {
    /// The slice of the Service `namespace/name`, pointed at `address` and the receiver's
    /// `port`. Asks the apiserver which EndpointSlice version it serves (`discovery.k8s.io/v1`
    /// from Kubernetes 1.21, `v1beta1` before).
    pub async fn new(
        client: Client,
        namespace: &str,
        name: &str,
        port: u16,
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
            api: Api::namespaced_with(client.clone(), namespace, &resource),
            services: Api::namespaced(client, namespace),
            api_version: resource.api_version,
            namespace: namespace.to_string(),
            name: name.to_string(),
            port,
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

    /// Creates the slice or points it here now, then checks every `period` until `shutdown` that
    /// it still names this process only and repairs it if not (a hand edit, a deleted slice, a
    /// predecessor's late write). One GET per period; a failure is logged and tried again next
    /// period (polling syncs meanwhile).
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
            .get_opt(&self.name)
            .await
            .map_err(|source| self.error(source))?;
        match current {
            None => self.create().await,
            Some(slice) if points_only_at(&slice.data, &self.address) => Ok(()),
            Some(_) => self.point_here().await,
        }
    }

    /// Creates the slice pointing here, owned by its Service (so it goes with the release).
    async fn create(&self) -> Result<(), EndpointsError> {
        let service = self
            .services
            .get_opt(&self.name)
            .await
            .map_err(|source| self.error(source))?
            .ok_or_else(|| EndpointsError::NoService {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
            })?;
        let slice = new_slice(
            &self.api_version,
            &self.name,
            service.metadata.uid.as_deref().unwrap_or_default(),
            &self.namespace,
            self.port,
            &self.address,
        );
        let slice: DynamicObject =
            serde_json::from_value(slice).map_err(|e| self.error(kube::Error::SerdeError(e)))?;
        match self.api.create(&PostParams::default(), &slice).await {
            Ok(_) => Ok(()),
            // Created meanwhile (a predecessor that has not stopped yet): point it here.
            Err(kube::Error::Api(status)) if status.code == 409 => self.point_here().await,
            Err(source) => Err(self.error(source)),
        }
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

/// A new slice for the Service `name` (uid `service_uid`) naming only `address` on `port`.
fn new_slice(
    api_version: &str,
    name: &str,
    service_uid: &str,
    namespace: &str,
    port: u16,
    address: &ReceiverAddress,
) -> Value {
    let address_type = if address.ip.contains(':') {
        "IPv6"
    } else {
        "IPv4"
    };
    json!({
        "apiVersion": api_version,
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/service-name": name,
                "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
            },
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "Service",
                "name": name,
                "uid": service_uid,
            }],
        },
        "addressType": address_type,
        "ports": [{ "name": PORT_NAME, "port": port, "protocol": "TCP" }],
        "endpoints": [endpoint(namespace, address)],
    })
}

/// `endpointslice.kubernetes.io/managed-by` of the slices the operator keeps (the cluster's own
/// EndpointSlice controller leaves them alone).
pub const MANAGED_BY: &str = "reteach-personio-operator";

/// Name of the slice's port; the chart's receiver Service port has the same name.
pub const PORT_NAME: &str = "webhook";

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
    fn a_new_slice_belongs_to_its_service_and_names_only_this_process() {
        let slice = new_slice(
            "discovery.k8s.io/v1",
            "rpo-webhook",
            "uid-1",
            "ops",
            8443,
            &address("10.244.0.7"),
        );
        assert_eq!(
            slice["metadata"]["labels"]["kubernetes.io/service-name"],
            "rpo-webhook"
        );
        assert_eq!(slice["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(slice["addressType"], "IPv4");
        assert_eq!(slice["ports"][0]["port"], 8443);
        assert_eq!(slice["ports"][0]["name"], PORT_NAME);
        assert!(points_only_at(&slice, &address("10.244.0.7")));
        let v6 = ReceiverAddress {
            ip: "fd00::7".to_string(),
            pod: None,
        };
        assert_eq!(
            new_slice("v", "s", "u", "ops", 8443, &v6)["addressType"],
            "IPv6"
        );
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
