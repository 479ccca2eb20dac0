{{/* The release's name prefix for every object: RELEASE-dsbuild, or RELEASE when it already says dsbuild. */}}
{{- define "dsbuild.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "dsbuild.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels of one component: include "dsbuild.selector" (list . "hub") */}}
{{- define "dsbuild.selector" -}}
app.kubernetes.io/name: {{ (index . 0).Chart.Name }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "dsbuild.image" -}}
{{- printf "%s:%s" .Values.image.name (toString .Values.image.tag) -}}
{{- end -}}

{{- define "dsbuild.hostNetwork" -}}
{{- if eq .Values.network.mode "hostNetwork" -}}true{{- else if eq .Values.network.mode "services" -}}{{- else -}}
{{- fail (printf "network.mode must be services or hostNetwork, not %q" .Values.network.mode) -}}
{{- end -}}
{{- end -}}

{{/* How servers (pods) reach the hub's API. */}}
{{- define "dsbuild.hubConnectUrl" -}}
{{- if include "dsbuild.hostNetwork" . -}}
{{- printf "http://%s:%v" (required "network.nodeIP is needed with network.mode=hostNetwork" .Values.network.nodeIP) .Values.hub.port -}}
{{- else -}}
{{- printf "http://%s-hub:%v" (include "dsbuild.fullname" .) .Values.hub.port -}}
{{- end -}}
{{- end -}}

{{/* How the proxy reaches the hub (its default target). */}}
{{- define "dsbuild.hubUrlForProxy" -}}
{{- if include "dsbuild.hostNetwork" . -}}
{{- printf "http://127.0.0.1:%v" .Values.hub.port -}}
{{- else -}}
{{- printf "http://%s-hub:%v" (include "dsbuild.fullname" .) .Values.hub.port -}}
{{- end -}}
{{- end -}}

{{/* How the hub reaches the proxy's API. */}}
{{- define "dsbuild.proxyApiUrl" -}}
{{- if include "dsbuild.hostNetwork" . -}}
{{- printf "http://127.0.0.1:%v" .Values.proxy.apiPort -}}
{{- else -}}
{{- printf "http://%s-proxy-api:%v" (include "dsbuild.fullname" .) .Values.proxy.apiPort -}}
{{- end -}}
{{- end -}}

{{/* How the launch service reaches the hub's public side (the proxy). */}}
{{- define "dsbuild.proxyUrl" -}}
{{- if include "dsbuild.hostNetwork" . -}}
{{- printf "http://127.0.0.1:%v/" .Values.proxy.port -}}
{{- else -}}
{{- printf "http://%s-proxy-public:%v/" (include "dsbuild.fullname" .) .Values.proxy.port -}}
{{- end -}}
{{- end -}}

{{/* Where the proxy reaches the launch service (JupyterHub's service URL). */}}
{{- define "dsbuild.launchUrl" -}}
{{- if include "dsbuild.hostNetwork" . -}}
{{- printf "http://127.0.0.1:%v" .Values.launch.port -}}
{{- else -}}
{{- printf "http://%s-launch:%v" (include "dsbuild.fullname" .) .Values.launch.port -}}
{{- end -}}
{{- end -}}

{{/* The proxy's route to the launch service, and its base URL: JupyterHub's
     /services/NAME/ for the service named dsbuild (launch/hubconfig.py, SERVICE_PREFIX). */}}
{{- define "dsbuild.launchPrefix" -}}
/services/dsbuild/
{{- end -}}

{{/* Where browsers reach the hub (no trailing slash), when hub.config.public_url says. */}}
{{- define "dsbuild.publicHub" -}}
{{- with .Values.hub.config.public_url }}{{ trimSuffix "/" . }}{{ end -}}
{{- end -}}

{{/* The hub's settings file, read by dsbuild.launch.clusterhub (its docstring is the format). */}}
{{- define "dsbuild.hubYaml" -}}
{{- if and .Values.launch.enabled (not .Values.registry.host) -}}
{{- fail "launch.enabled needs registry.host (where dsbuild serve pushes and nodes pull)" -}}
{{- end -}}
{{- $options := merge (dict
      "spawner" "kubernetes"
      "hub_port" (int .Values.hub.port)
      "port" (int .Values.proxy.port)
      "hub_connect_url" (include "dsbuild.hubConnectUrl" .)
      "launch_image_prefix" (ternary (printf "%s/" .Values.registry.host) "" (ne .Values.registry.host ""))
      "service_url" (include "dsbuild.launchUrl" .)
      "service_route" .Values.launch.enabled) (omit .Values.hub.config "spawner") -}}
{{- $spawner := dict
      "node_selector" .Values.singleuser.nodeSelector
      "tolerations" .Values.singleuser.tolerations
      "start_timeout" (int .Values.singleuser.startTimeout)
      "image_pull_policy" .Values.singleuser.imagePullPolicy -}}
{{- toYaml (dict
      "options" $options
      "launch" .Values.launch.enabled
      "proxy_api_url" (include "dsbuild.proxyApiUrl" .)
      "db_url" .Values.hub.db.url
      "spawner" $spawner
      "extra_config" (include "dsbuild.extraConfig" .)
      "catalog" .Values.catalog) -}}
{{- end -}}

{{- /* hub.extraConfig's snippets, in the order of their names, each under a comment naming it. */ -}}
{{- define "dsbuild.extraConfig" -}}
{{- range $name, $code := .Values.hub.extraConfig }}
# hub.extraConfig.{{ $name }}
{{ $code }}
{{- end -}}
{{- end -}}
