{{/* Names, labels and the lists the other templates share. */}}

{{- define "reconciler.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "reconciler.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "reconciler.labels" -}}
app.kubernetes.io/name: {{ include "reconciler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "reconciler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "reconciler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "reconciler.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "reconciler.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "reconciler.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "reconciler.secretNamespace" -}}
{{- default .Release.Namespace .Values.apiSecret.namespace -}}
{{- end -}}

{{/* Watched namespaces as a JSON list (the release namespace when none are given). */}}
{{- define "reconciler.watchNamespaces" -}}
{{- if .Values.operator.watchNamespaces -}}
{{- toJson .Values.operator.watchNamespaces -}}
{{- else -}}
{{- toJson (list .Release.Namespace) -}}
{{- end -}}
{{- end -}}

{{- define "reconciler.localServiceName" -}}
{{- printf "%s-local" (include "reconciler.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* RBAC rules for the watched custom resources and the events about them. */}}
{{- define "reconciler.watchRules" -}}
- apiGroups: [reconciler.io]
  resources: [batchpredictionjobdefinitions]
  verbs: [get, list, watch, patch]
- apiGroups: [reconciler.io]
  resources: [batchpredictionjobdefinitions/status]
  verbs: [get, patch]
- apiGroups: [reconciler.io]
  resources: [batchpredictionjobdefinitions/finalizers]
  verbs: [update]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}

{{/*
Notification channels from keys of a Secret (values notifications.*), as the environment
reconciler.notify.send.channels_from_env reads: never a URL or a secret in values or args.
*/}}
{{- define "reconciler.notifyEnv" -}}
{{- with .Values.notifications }}
{{- if .secretName }}
{{- if .webhookUrlKey }}
- name: RECONCILER_NOTIFY_WEBHOOK_URL
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ .webhookUrlKey }}
{{- end }}
{{- if .webhookSecretKey }}
- name: RECONCILER_NOTIFY_WEBHOOK_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ .webhookSecretKey }}
{{- end }}
{{- if .appriseUrlKey }}
- name: RECONCILER_NOTIFY_APPRISE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ .appriseUrlKey }}
{{- end }}
- name: RECONCILER_NOTIFY_EVENTS
  value: {{ join "," .events | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The project config (reconciler.yaml) holding the operator's controls: ignore rules and sync windows.
*/}}
{{- define "reconciler.controlsConfig" -}}
apiVersion: reconciler.io/v1alpha1
kind: Project
{{- with .Values.controls.ignoreChanges }}
ignoreChanges:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.controls.syncWindows }}
syncWindows:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
