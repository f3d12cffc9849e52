{{/* Chart name, trimmed to the 63 characters of a DNS label. */}}
{{- define "rolegate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-rolegate, or the release name when it already says rolegate. */}}
{{- define "rolegate.fullname" -}}
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

{{- define "rolegate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rolegate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "rolegate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "rolegate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rolegate
{{- end }}

{{- define "rolegate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rolegate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "rolegate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret holding the webhook's serving certificate (tls.crt, tls.key). */}}
{{- define "rolegate.tlsSecretName" -}}
{{- if eq .Values.certificates.mode "existing" }}
{{- required "certificates.existing.secretName is required when certificates.mode is existing" .Values.certificates.existing.secretName }}
{{- else }}
{{- printf "%s-webhook-tls" (include "rolegate.fullname" .) }}
{{- end }}
{{- end }}

{{/* The decision API is served with the webhook, whose certificate and Service it shares. */}}
{{- define "rolegate.decisionApi" -}}
{{- if and .Values.webhook.enabled .Values.decisionApi.enabled }}true{{ end }}
{{- end }}

{{- define "rolegate.webhookServiceName" -}}
{{- include "rolegate.fullname" . }}
{{- end }}

{{/* Fails rendering on an unknown certificates.mode, so a typo never renders a webhook without a CA. */}}
{{- define "rolegate.validateValues" -}}
{{- $modes := list "generate" "certManager" "existing" }}
{{- if not (has .Values.certificates.mode $modes) }}
{{- fail (printf "certificates.mode must be one of %s, not %q" (join ", " $modes) .Values.certificates.mode) }}
{{- end }}
{{- if not (has .Values.webhook.failurePolicy (list "Fail" "Ignore")) }}
{{- fail (printf "webhook.failurePolicy must be Fail or Ignore, not %q" .Values.webhook.failurePolicy) }}
{{- end }}
{{- if not (has .Values.logFormat (list "text" "json")) }}
{{- fail (printf "logFormat must be text or json, not %q" .Values.logFormat) }}
{{- end }}
{{- $t := int .Values.webhook.timeoutSeconds }}
{{- if or (lt $t 1) (gt $t 30) }}
{{- fail (printf "webhook.timeoutSeconds must be between 1 and 30, not %d" $t) }}
{{- end }}
{{- end }}
