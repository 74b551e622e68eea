package packaging

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// manifests decodes every document of every deploy/kubernetes/*.yaml.
func manifests(t *testing.T) map[string][]map[string]any {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(deployDir(t), "kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	all := map[string][]map[string]any{}
	for _, f := range files {
		dec := yaml.NewDecoder(bytes.NewReader(readFile(t, f)))
		for {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			all[filepath.Base(f)] = append(all[filepath.Base(f)], doc)
		}
	}
	return all
}

// TestManifests: every document is YAML with apiVersion, kind and
// metadata.name, and names are unique per kind.
func TestManifests(t *testing.T) {
	seen := map[string]string{}
	for file, docs := range manifests(t) {
		if len(docs) == 0 {
			t.Errorf("%s: no document", file)
		}
		for i, d := range docs {
			api, _ := d["apiVersion"].(string)
			kind, _ := d["kind"].(string)
			md, _ := d["metadata"].(map[string]any)
			name, _ := md["name"].(string)
			if api == "" || kind == "" || name == "" {
				t.Errorf("%s document %d: apiVersion %q, kind %q, metadata.name %q: all three are required", file, i, api, kind, name)
				continue
			}
			if prev, ok := seen[kind+"/"+name]; ok {
				t.Errorf("%s: %s %s already in %s", file, kind, name, prev)
			}
			seen[kind+"/"+name] = file
		}
	}
	for _, want := range []string{"DaemonSet/keepwatch", "ConfigMap/keepwatch-config", "Service/keepwatch", "ServiceMonitor/keepwatch", "PrometheusRule/keepwatch"} {
		if _, ok := seen[want]; !ok {
			t.Errorf("no %s manifest", want)
		}
	}
}

// decodeAs decodes the one document in deploy/kubernetes/file into v.
func decodeAs(t *testing.T, file string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(readFile(t, filepath.Join(deployDir(t), "kubernetes", file)), v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

type objectMeta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type daemonSet struct {
	Metadata objectMeta `yaml:"metadata"`
	Spec     struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata objectMeta `yaml:"metadata"`
			Spec     struct {
				HostNetwork bool `yaml:"hostNetwork"`
				Containers  []struct {
					Args  []string `yaml:"args"`
					Ports []struct {
						Name          string `yaml:"name"`
						ContainerPort int    `yaml:"containerPort"`
					} `yaml:"ports"`
					ReadinessProbe  probe `yaml:"readinessProbe"`
					LivenessProbe   probe `yaml:"livenessProbe"`
					SecurityContext struct {
						Capabilities struct {
							Add  []string `yaml:"add"`
							Drop []string `yaml:"drop"`
						} `yaml:"capabilities"`
					} `yaml:"securityContext"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name      string `yaml:"name"`
					ConfigMap struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// TestDaemonSet checks the agent's pod: host network, the two
// capabilities, probes on /-/ready and /-/healthy at 9759, the config from
// the ConfigMap at /etc/keepalived, and arguments keepwatch run accepts;
// then that the Service and ServiceMonitor reach that port.
func TestDaemonSet(t *testing.T) {
	var ds daemonSet
	decodeAs(t, "daemonset.yaml", &ds)
	pod := ds.Spec.Template.Spec
	if !pod.HostNetwork {
		t.Error("hostNetwork is false: VIPs and adverts would stay in the pod's namespace")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	checkRunArgs(t, "daemonset args", c.Args, "/etc/keepalived/keepalived.conf")
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 9759 {
		t.Fatalf("ports %+v, want one at 9759", c.Ports)
	}
	port := c.Ports[0].Name
	for name, p := range map[string]struct {
		got  probe
		path string
	}{"readiness": {c.ReadinessProbe, "/-/ready"}, "liveness": {c.LivenessProbe, "/-/healthy"}} {
		if p.got.HTTPGet.Path != p.path || p.got.HTTPGet.Port != port {
			t.Errorf("%s probe %+v, want %s on port %s", name, p.got.HTTPGet, p.path, port)
		}
	}
	caps := c.SecurityContext.Capabilities
	if !contains(caps.Drop, "ALL") || !contains(caps.Add, "NET_ADMIN") || !contains(caps.Add, "NET_RAW") || len(caps.Add) != 2 {
		t.Errorf("capabilities %+v, want drop ALL, add NET_ADMIN and NET_RAW", caps)
	}
	var cm struct {
		Metadata objectMeta        `yaml:"metadata"`
		Data     map[string]string `yaml:"data"`
	}
	decodeAs(t, "configmap.yaml", &cm)
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.ConfigMap.Name == cm.Metadata.Name && m.MountPath == "/etc/keepalived" {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("ConfigMap %s is not mounted at /etc/keepalived", cm.Metadata.Name)
	}
	if diff := cmp.Diff(ds.Spec.Selector.MatchLabels, ds.Spec.Template.Metadata.Labels); diff != "" {
		t.Errorf("selector does not match the pod labels:\n%s", diff)
	}

	var svc struct {
		Metadata objectMeta `yaml:"metadata"`
		Spec     struct {
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Name       string `yaml:"name"`
				Port       int    `yaml:"port"`
				TargetPort string `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	decodeAs(t, "service.yaml", &svc)
	// The Service's name is the job label the alert rules select on.
	if svc.Metadata.Name != "keepwatch" {
		t.Errorf("Service %s: the alerts expect job=\"keepwatch\"", svc.Metadata.Name)
	}
	for k, v := range svc.Spec.Selector {
		if ds.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("Service selects %s=%s, not a pod label", k, v)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 9759 || svc.Spec.Ports[0].TargetPort != port {
		t.Errorf("Service ports %+v, want 9759 to %s", svc.Spec.Ports, port)
	}
	var sm struct {
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Endpoints []struct {
				Port string `yaml:"port"`
				Path string `yaml:"path"`
			} `yaml:"endpoints"`
		} `yaml:"spec"`
	}
	decodeAs(t, "servicemonitor.yaml", &sm)
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Metadata.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s, not a Service label", k, v)
		}
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != svc.Spec.Ports[0].Name || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v, want /metrics on port %s", sm.Spec.Endpoints, svc.Spec.Ports[0].Name)
	}
}

// TestConfigMapLoads reads the ConfigMap's keepalived.conf for each node
// its @id lines name.
func TestConfigMapLoads(t *testing.T) {
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	decodeAs(t, "configmap.yaml", &cm)
	path := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(path, []byte(cm.Data["keepalived.conf"]), 0o644); err != nil {
		t.Fatal(err)
	}
	prio := map[string]int{}
	for _, id := range []string{"node1", "node2"} {
		c := load(t, path, id)
		prio[id] = c.Instances[0].Priority
	}
	if prio["node1"] <= prio["node2"] {
		t.Errorf("priorities %v: node1 should be preferred", prio)
	}
}

const ruleHeader = `# The alerting mixin as a Prometheus Operator PrometheusRule. Generated: spec
# is alerts/keepwatch.rules.yml indented under it; do not edit here, run
#   go test ./deploy/packaging -run TestPrometheusRule -update
# The operator picks rules by its ruleSelector: add the labels yours uses
# (kube-prometheus-stack: release: <its release name>).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: keepwatch
  namespace: keepwatch
  labels:
    app.kubernetes.io/name: keepwatch
spec:
`

// TestPrometheusRule keeps prometheusrule.yaml's groups exactly those of
// alerts/keepwatch.rules.yml: compared as parsed YAML, and as the text the
// generator writes (so the comments follow too).
func TestPrometheusRule(t *testing.T) {
	rules := readFile(t, filepath.Join(repoRoot(t), "alerts", "keepwatch.rules.yml"))
	path := filepath.Join(deployDir(t), "kubernetes", "prometheusrule.yaml")
	var want bytes.Buffer
	want.WriteString(ruleHeader)
	for _, line := range strings.SplitAfter(string(rules), "\n") {
		if strings.TrimSpace(line) != "" {
			want.WriteString("  ")
		}
		want.WriteString(line)
	}
	if *update {
		if err := os.WriteFile(path, want.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := readFile(t, path)

	var file struct {
		Groups []any `yaml:"groups"`
	}
	if err := yaml.Unmarshal(rules, &file); err != nil {
		t.Fatal(err)
	}
	var pr struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Spec       struct {
			Groups []any `yaml:"groups"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(got, &pr); err != nil {
		t.Fatal(err)
	}
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" {
		t.Errorf("%s %s, want monitoring.coreos.com/v1 PrometheusRule", pr.APIVersion, pr.Kind)
	}
	if len(file.Groups) == 0 {
		t.Fatal("alerts/keepwatch.rules.yml has no groups")
	}
	if diff := cmp.Diff(file.Groups, pr.Spec.Groups); diff != "" {
		t.Errorf("PrometheusRule groups differ from alerts/keepwatch.rules.yml (-rules +manifest); go test -update regenerates:\n%s", diff)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Error("prometheusrule.yaml is not what the generator writes; go test ./deploy/packaging -run TestPrometheusRule -update")
	}
}
