{{/* The chart's name (nameOverride wins). */}}
{{- define "tmdbsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: <release>-<chart>, or the release name when it already contains it. */}}
{{- define "tmdbsync.fullname" -}}
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

{{/* Name of cluster-scoped objects: the namespace is part of it, so releases of the same name in
two namespaces do not collide. */}}
{{- define "tmdbsync.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "tmdbsync.fullname" .) | trunc 253 | trimSuffix "-" }}
{{- end }}

{{- define "tmdbsync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tmdbsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tmdbsync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "tmdbsync.labels" -}}
helm.sh/chart: {{ include "tmdbsync.chart" . }}
{{ include "tmdbsync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: tmdbsync
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "tmdbsync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tmdbsync.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image, also the Jobs' worker image. */}}
{{- define "tmdbsync.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "tmdbsync.leaseName" -}}
{{- default (include "tmdbsync.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
The rules the controller needs in a namespace it reconciles: exactly the API calls of
src/controller (see the README's RBAC table). Shared by the ClusterRole and the per-namespace Roles.
*/}}
{{- define "tmdbsync.rules" -}}
# TmdbSync: watched by the controller (list, watch), read by the SyncRun reconciler (get),
# status written by server-side apply (patch).
- apiGroups: ["tmdbsync.io"]
  resources: ["tmdbsyncs"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["tmdbsync.io"]
  resources: ["tmdbsyncs/status"]
  verbs: ["patch"]
# SyncRun: watched (list, watch), listed for the queue and history, created on schedule, adopted
# by server-side apply of ownerReferences (patch), pruned by history limits (delete).
- apiGroups: ["tmdbsync.io"]
  resources: ["syncruns"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["tmdbsync.io"]
  resources: ["syncruns/status"]
  verbs: ["patch"]
# Jobs: watched (list, watch, label app.kubernetes.io/managed-by=tmdbsync), read (get) and created
# per run; deleted only by the garbage collector through their owner reference.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create"]
# The Secrets a TmdbSync references (database URL; the API key is checked to exist).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# Owner references with blockOwnerDeletion (a Job's to its SyncRun, a SyncRun's to its TmdbSync)
# need update on the owner's finalizers subresource where the API server enforces it
# (OwnerReferencesPermissionEnforcement, e.g. OpenShift). Nothing else writes finalizers.
- apiGroups: ["tmdbsync.io"]
  resources: ["tmdbsyncs/finalizers", "syncruns/finalizers"]
  verbs: ["update"]
# kube-runtime's event Recorder: creates events, patches a repeated one's count.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
