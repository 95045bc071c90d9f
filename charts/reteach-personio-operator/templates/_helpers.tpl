{{/* Name of the chart, overridable. */}}
{{- define "rpo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects. */}}
{{- define "rpo.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "rpo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "rpo.recommendedLabels" . }}
{{- end }}

{{/* Kubernetes' recommended labels (app.kubernetes.io/*), on every object and on the pods. */}}
{{- define "rpo.recommendedLabels" -}}
{{ include "rpo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: reteach-personio-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the operator pod. */}}
{{- define "rpo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rpo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Name of the leader-election Lease: per release, so releases in one namespace never share it. */}}
{{- define "rpo.leaseName" -}}
{{- default (printf "%s-leader" (include "rpo.fullname" .)) .Values.leaderElection.leaseName }}
{{- end }}

{{/* ServiceAccount the operator runs as. */}}
{{- define "rpo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rpo.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image reference: digest wins over tag; tag defaults to the appVersion. */}}
{{- define "rpo.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
RBAC rules the operator needs in every namespace it watches. Least privilege: it reads its own
resources and the Secrets they reference, writes only their status (never spec), and records Events
(kube-runtime's recorder patches repeated events, hence `patch`).
*/}}
{{- define "rpo.watchRules" -}}
- apiGroups: ["sync.reteach.io"]
  resources: ["employeesyncs", "certificatesyncs"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["sync.reteach.io"]
  resources: ["employeesyncs/status", "certificatesyncs/status"]
  verbs: ["get", "patch", "update"]
# Only `get`: each run reads the two Secrets its resource names (and uses them only when they carry
# the label sync.reteach.io/credentials=true). No list/watch: Secrets are never cached.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- if .Values.webhook.enabled }}
# Webhooks: the finalizers sync.reteach.io/personio-webhook and sync.reteach.io/reteach-subscriptions
# of resources with `spec.webhook.register` (a merge patch of metadata.finalizers only; the
# operator never writes spec).
- apiGroups: ["sync.reteach.io"]
  resources: ["employeesyncs", "certificatesyncs"]
  verbs: ["patch"]
{{- end }}
{{- end }}

{{/* PodDisruptionBudget API: policy/v1 from Kubernetes 1.21, policy/v1beta1 before. */}}
{{- define "rpo.pdbApiVersion" -}}
{{- if semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version -}}
policy/v1
{{- else -}}
policy/v1beta1
{{- end }}
{{- end }}

{{/*
The operator Deployments as JSON `{"items": [...]}` (use with fromJson): the default one, then one
per shard (sharding.shards). Each item: name (Deployment), shard ("" for the default), lease,
selector (--watch-label-selector, "" for everything) and webhook (the selector-less Service and
Endpoints of its webhook receiver).
*/}}
{{- define "rpo.instances" -}}
{{- $shards := .Values.sharding.shards }}
{{- $default := include "rpo.fullname" . }}
{{- $instances := list (dict "name" $default "shard" "" "lease" (include "rpo.leaseName" .) "selector" (ternary "!sync.reteach.io/shard" "" (gt (len $shards) 0)) "webhook" (printf "%s-webhook" ($default | trunc 55 | trimSuffix "-"))) }}
{{- range $shards }}
{{- $name := printf "%s-%s" (include "rpo.fullname" $ | trunc (int (sub 62 (len .)))) . | trimSuffix "-" }}
{{- $instances = append $instances (dict "name" $name "shard" . "lease" (printf "%s-%s" (include "rpo.leaseName" $) .) "selector" (printf "sync.reteach.io/shard=%s" .) "webhook" (printf "%s-webhook" ($name | trunc 55 | trimSuffix "-"))) }}
{{- end }}
{{- dict "items" $instances | toJson }}
{{- end }}

{{/*
The Secret with the operator's webhook key (created by the operator).
*/}}
{{- define "rpo.webhookKeySecret" -}}
{{- default (printf "%s-webhook-key" (include "rpo.fullname" . | trunc 52 | trimSuffix "-")) .Values.webhook.keySecretName -}}
{{- end }}

{{/*
The receiver's public base URL for one instance (dict root, shard): the shard's override, else
webhook.publicUrl, else https://<ingress host> when the Ingress is on; empty: none.
*/}}
{{- define "rpo.webhookPublicUrl" -}}
{{- $webhook := .root.Values.webhook -}}
{{- $url := $webhook.publicUrl -}}
{{- if and (not $url) $webhook.ingress.enabled $webhook.ingress.host -}}
{{- $url = printf "https://%s" $webhook.ingress.host -}}
{{- end -}}
{{- if .shard -}}
{{- $url = default $url (get ($webhook.shardPublicUrls | default dict) .shard) -}}
{{- end -}}
{{- $url -}}
{{- end }}
