{{/* Pod settings shared by the hub, proxy and launch pods: include "dsbuild.podCommon" (list . .Values.hub) */}}
{{- define "dsbuild.podCommon" -}}
{{- $root := index . 0 -}}{{- $part := index . 1 -}}
{{- if include "dsbuild.hostNetwork" $root }}
hostNetwork: true
dnsPolicy: ClusterFirstWithHostNet
{{- end }}
{{- with $part.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $part.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.image.pullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "dsbuild.restricted" -}}
allowPrivilegeEscalation: false
capabilities: {drop: [ALL]}
{{- end -}}
