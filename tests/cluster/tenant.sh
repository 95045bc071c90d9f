# shellcheck shell=bash
# The tenant the cluster tests (run.sh, soak.sh) sync against the host's simulators.

# apply_sim_tenant NAMESPACE HOST PERSONIO_PORT RETEACH_PORT [EMPLOYEE_SPEC_LINES] [CERTIFICATE_SPEC_LINES]
# Applies both credentials Secrets (labelled for the operator, the simulators' credentials), an
# EmployeeSync "personio" and a CertificateSync "certificates" every minute against
# http://HOST:PERSONIO_PORT and http://HOST:RETEACH_PORT. The optional last two arguments are
# extra spec lines of each kind (YAML, indented by two spaces).
apply_sim_tenant() {
  local namespace=$1 host=$2 personio_port=$3 reteach_port=$4
  local employee_extra=${5:-} certificate_extra=${6:-}
  kubectl -n "$namespace" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Secret
metadata: {name: personio-api, labels: {sync.reteach.io/credentials: "true"}}
stringData: {clientId: sim-personio-client, clientSecret: sim-personio-secret}
---
apiVersion: v1
kind: Secret
metadata: {name: reteach-api, labels: {sync.reteach.io/credentials: "true"}}
stringData: {clientId: sim-client-id, clientSecret: sim-client-secret, clientCode: sim-client-code}
---
apiVersion: sync.reteach.io/v1alpha1
kind: EmployeeSync
metadata: {name: personio}
spec:
  interval: 1m
$employee_extra
  personio:
    baseUrl: http://$host:$personio_port
    allowInsecureHttp: true
    credentialsSecretRef: {name: personio-api}
  reteach:
    baseUrl: http://$host:$reteach_port
    allowInsecureHttp: true
    credentialsSecretRef: {name: reteach-api}
---
apiVersion: sync.reteach.io/v1alpha1
kind: CertificateSync
metadata: {name: certificates}
spec:
  interval: 1m
$certificate_extra
  employeeSyncRef: {name: personio}
  documentCategory: {name: Learning Certificates}
EOF
}
