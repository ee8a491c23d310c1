package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

const k8sDir = "deployments/k8s"

// k8sDoc is one YAML document of the Kubernetes example.
type k8sDoc struct {
	file       string
	apiVersion string
	kind       string
	name       string
	namespace  string
	raw        []byte // the document as JSON
}

func (d k8sDoc) String() string {
	return fmt.Sprintf("%s %s/%s (%s)", d.apiVersion, d.kind, d.name, d.file)
}

// loadK8s parses every document of every manifest listed by the
// kustomization, and checks that no manifest is left out of it.
func loadK8s(t *testing.T) (docs []k8sDoc, kust kustomization) {
	t.Helper()
	dir := filepath.Join(repoRoot(t), k8sDir)
	require.NoError(t, sigsyaml.UnmarshalStrict(readRepoFile(t, k8sDir+"/kustomization.yaml"), &kust))
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	var manifests []string
	for _, f := range files {
		if filepath.Base(f) != "kustomization.yaml" {
			manifests = append(manifests, filepath.Base(f))
		}
	}
	sort.Strings(manifests)
	listed := slices.Clone(kust.Resources)
	sort.Strings(listed)
	require.Equal(t, manifests, listed, "kustomization.yaml must list every manifest in %s, and only those", k8sDir)

	for _, file := range kust.Resources {
		data, err := os.ReadFile(filepath.Join(dir, file))
		require.NoError(t, err)
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var node yaml.Node
			err := dec.Decode(&node)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, "%s document %d", file, i+1)
			var head struct {
				APIVersion string `yaml:"apiVersion"`
				Kind       string `yaml:"kind"`
				Metadata   struct {
					Name      string `yaml:"name"`
					Namespace string `yaml:"namespace"`
				} `yaml:"metadata"`
			}
			require.NoError(t, node.Decode(&head), "%s document %d", file, i+1)
			var doc any
			require.NoError(t, node.Decode(&doc))
			raw, err := sigsyaml.Marshal(doc)
			require.NoError(t, err)
			js, err := sigsyaml.YAMLToJSON(raw)
			require.NoError(t, err)
			d := k8sDoc{file: file, apiVersion: head.APIVersion, kind: head.Kind, name: head.Metadata.Name, namespace: head.Metadata.Namespace, raw: js}
			require.NotEmpty(t, d.apiVersion, "%s document %d has no apiVersion", file, i+1)
			require.NotEmpty(t, d.kind, "%s document %d has no kind", file, i+1)
			require.NotEmpty(t, d.name, "%s document %d has no name", file, i+1)
			docs = append(docs, d)
		}
	}
	return docs, kust
}

type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name   string `json:"name"`
		NewTag string `json:"newTag"`
	} `json:"images"`
}

// KEDA's objects, as far as the example uses them; strict decoding into
// these catches a misspelt or misplaced field.
type kedaTriggerAuthentication struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   map[string]string `json:"metadata"`
	Spec       struct {
		SecretTargetRef []struct {
			Parameter string `json:"parameter"`
			Name      string `json:"name"`
			Key       string `json:"key"`
		} `json:"secretTargetRef"`
	} `json:"spec"`
}

type kedaScaledObject struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   map[string]string `json:"metadata"`
	Spec       struct {
		ScaleTargetRef struct {
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount int `json:"minReplicaCount"`
		MaxReplicaCount int `json:"maxReplicaCount"`
		CooldownPeriod  int `json:"cooldownPeriod"`
		Triggers        []struct {
			Type     string `json:"type"`
			Metadata struct {
				Protocol  string `json:"protocol"`
				Mode      string `json:"mode"`
				QueueName string `json:"queueName"`
				Value     string `json:"value"`
			} `json:"metadata"`
			AuthenticationRef struct {
				Name string `json:"name"`
			} `json:"authenticationRef"`
		} `json:"triggers"`
	} `json:"spec"`
}

// decode decodes d strictly (unknown fields are errors) into out.
func decode(t *testing.T, d k8sDoc, out any) {
	t.Helper()
	require.NoError(t, sigsyaml.UnmarshalStrict(d.raw, out), "%s", d)
}

// k8sObjects is the example decoded by kind.
type k8sObjects struct {
	namespaces   map[string]corev1.Namespace
	configMaps   map[string]corev1.ConfigMap
	secrets      map[string]corev1.Secret
	deployments  map[string]appsv1.Deployment
	services     map[string]corev1.Service
	hpas         map[string]autoscalingv2.HorizontalPodAutoscaler
	pdbs         map[string]policyv1.PodDisruptionBudget
	triggerAuths map[string]kedaTriggerAuthentication
	scaledObjs   map[string]kedaScaledObject
	kust         kustomization
}

func decodeK8s(t *testing.T) k8sObjects {
	t.Helper()
	docs, kust := loadK8s(t)
	o := k8sObjects{
		namespaces: map[string]corev1.Namespace{}, configMaps: map[string]corev1.ConfigMap{},
		secrets: map[string]corev1.Secret{}, deployments: map[string]appsv1.Deployment{},
		services: map[string]corev1.Service{}, hpas: map[string]autoscalingv2.HorizontalPodAutoscaler{},
		pdbs: map[string]policyv1.PodDisruptionBudget{}, triggerAuths: map[string]kedaTriggerAuthentication{},
		scaledObjs: map[string]kedaScaledObject{}, kust: kust,
	}
	seen := map[string]bool{}
	for _, d := range docs {
		id := d.kind + "/" + d.name
		require.False(t, seen[id], "%s defined twice", id)
		seen[id] = true
		if d.kind != "Namespace" {
			require.Equal(t, kust.Namespace, d.namespace, "%s: every object in the kustomization's namespace", d)
		}
		switch gk := d.apiVersion + " " + d.kind; gk {
		case "v1 Namespace":
			var v corev1.Namespace
			decode(t, d, &v)
			o.namespaces[d.name] = v
		case "v1 ConfigMap":
			var v corev1.ConfigMap
			decode(t, d, &v)
			o.configMaps[d.name] = v
		case "v1 Secret":
			var v corev1.Secret
			decode(t, d, &v)
			o.secrets[d.name] = v
		case "apps/v1 Deployment":
			var v appsv1.Deployment
			decode(t, d, &v)
			o.deployments[d.name] = v
		case "v1 Service":
			var v corev1.Service
			decode(t, d, &v)
			o.services[d.name] = v
		case "autoscaling/v2 HorizontalPodAutoscaler":
			var v autoscalingv2.HorizontalPodAutoscaler
			decode(t, d, &v)
			o.hpas[d.name] = v
		case "policy/v1 PodDisruptionBudget":
			var v policyv1.PodDisruptionBudget
			decode(t, d, &v)
			o.pdbs[d.name] = v
		case "keda.sh/v1alpha1 TriggerAuthentication":
			var v kedaTriggerAuthentication
			decode(t, d, &v)
			o.triggerAuths[d.name] = v
		case "keda.sh/v1alpha1 ScaledObject":
			var v kedaScaledObject
			decode(t, d, &v)
			o.scaledObjs[d.name] = v
		default:
			t.Fatalf("%s: unexpected kind %s", d, gk)
		}
	}
	return o
}

func TestK8sManifestsAreWellFormed(t *testing.T) {
	o := decodeK8s(t)
	require.Equal(t, "kustomize.config.k8s.io/v1beta1", o.kust.APIVersion)
	require.Equal(t, "Kustomization", o.kust.Kind)
	require.Contains(t, o.namespaces, o.kust.Namespace, "the namespace is created")
	var images []string
	for _, img := range o.kust.Images {
		images = append(images, img.Name)
		require.NotEmpty(t, img.NewTag)
	}
	want := []string{}
	for _, name := range appServices {
		want = append(want, "photopipe/"+name)
	}
	require.ElementsMatch(t, want, images, "kustomization images name the four images")
	require.ElementsMatch(t, appServices, keys(o.deployments), "one Deployment per service")
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestK8sDeployments(t *testing.T) {
	o := decodeK8s(t)
	known := knownSettings(t)
	for _, name := range appServices {
		t.Run(name, func(t *testing.T) {
			d := o.deployments[name]
			labels := d.Spec.Template.Labels
			require.NotNil(t, d.Spec.Selector)
			for k, v := range d.Spec.Selector.MatchLabels {
				require.Equal(t, v, labels[k], "the selector matches the pod labels")
			}
			require.Nil(t, d.Spec.Replicas, "an autoscaled Deployment leaves replicas to the autoscaler")
			pod := d.Spec.Template.Spec
			require.GreaterOrEqual(t, *pod.TerminationGracePeriodSeconds, int64(45), "longer than the workers' 30 s SHUTDOWN_TIMEOUT")
			require.NotNil(t, pod.SecurityContext.RunAsNonRoot)
			require.True(t, *pod.SecurityContext.RunAsNonRoot)
			require.EqualValues(t, 65532, *pod.SecurityContext.RunAsUser, "the distroless nonroot user")
			require.Len(t, pod.Containers, 1)
			c := pod.Containers[0]
			repo, tag, ok := strings.Cut(c.Image, ":")
			require.True(t, ok, "image %s has a tag", c.Image)
			require.Equal(t, "photopipe/"+name, repo)
			require.NotEqual(t, "latest", tag)
			require.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
			require.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
			require.NotNil(t, c.Resources.Limits.Memory(), "a memory limit")
			require.False(t, c.Resources.Requests.Cpu().IsZero(), "a CPU request (the autoscalers and the scheduler need it)")

			// Settings: from the shared ConfigMap and Secret, plus the
			// container's own; every name is one a service reads.
			env := map[string]string{}
			for _, from := range c.EnvFrom {
				switch {
				case from.ConfigMapRef != nil:
					cm, ok := o.configMaps[from.ConfigMapRef.Name]
					require.True(t, ok, "ConfigMap %s not defined", from.ConfigMapRef.Name)
					for k, v := range cm.Data {
						env[k] = v
					}
				case from.SecretRef != nil:
					s, ok := o.secrets[from.SecretRef.Name]
					require.True(t, ok, "Secret %s not defined", from.SecretRef.Name)
					for k, v := range s.StringData {
						env[k] = v
					}
				}
			}
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
			for k := range env {
				require.True(t, known[k], "%s gets %s, which no service reads", name, k)
			}
			for _, k := range []string{"AMQP_URL", "STORAGE_BACKEND", "S3_ENDPOINT", "S3_BUCKET", "HEALTH_ADDR"} {
				require.NotEmpty(t, env[k], "%s needs %s", name, k)
			}
			require.Equal(t, "s3", env["STORAGE_BACKEND"], "pods on several nodes share no directory")
			for i, u := range strings.Split(env["AMQP_URL"], ",") {
				pu, err := url.Parse(strings.TrimSpace(u))
				require.NoError(t, err)
				require.Contains(t, []string{"amqp", "amqps"}, pu.Scheme, "AMQP_URL entry %d", i+1)
			}
			if name == "ingest-api" || name == "recorder" {
				require.NotEmpty(t, env["DATABASE_URL"], "%s needs DATABASE_URL", name)
			}

			// Probes on the health port HEALTH_ADDR opens.
			health := port(t, c, "health")
			require.Equal(t, ":"+fmt.Sprint(health), env["HEALTH_ADDR"])
			require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
			require.Equal(t, "health", c.ReadinessProbe.HTTPGet.Port.String())
			require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
			require.Equal(t, "health", c.LivenessProbe.HTTPGet.Port.String())
			// Prometheus scrapes /metrics where the health server serves it.
			ann := d.Spec.Template.Annotations
			require.Equal(t, "true", ann["prometheus.io/scrape"])
			require.Equal(t, fmt.Sprint(health), ann["prometheus.io/port"])
			require.Equal(t, "/metrics", ann["prometheus.io/path"])
			if name == "ingest-api" {
				require.Equal(t, ":"+fmt.Sprint(port(t, c, "http")), env["HTTP_ADDR"])
			}
		})
	}
}

func port(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %s", c.Name, name)
	return 0
}

func TestK8sIngestAPIServiceAndHPA(t *testing.T) {
	o := decodeK8s(t)
	svc, ok := o.services["ingest-api"]
	require.True(t, ok, "a Service for ingest-api")
	d := o.deployments["ingest-api"]
	for k, v := range svc.Spec.Selector {
		require.Equal(t, v, d.Spec.Template.Labels[k], "the Service selects the ingest-api pods")
	}
	require.Len(t, svc.Spec.Ports, 1)
	require.Equal(t, "http", svc.Spec.Ports[0].TargetPort.String())
	port(t, d.Spec.Template.Spec.Containers[0], "http")
	require.Len(t, o.services, 1, "workers serve no traffic, so they have no Service")

	hpa, ok := o.hpas["ingest-api"]
	require.True(t, ok, "an HPA for ingest-api")
	require.Equal(t, "Deployment", hpa.Spec.ScaleTargetRef.Kind)
	require.Equal(t, "ingest-api", hpa.Spec.ScaleTargetRef.Name)
	require.GreaterOrEqual(t, *hpa.Spec.MinReplicas, int32(2), "two API pods survive a node loss")
	require.Greater(t, hpa.Spec.MaxReplicas, *hpa.Spec.MinReplicas)
	for name, pdb := range o.pdbs {
		_, ok := o.deployments[name]
		require.True(t, ok, "PodDisruptionBudget %s has no Deployment", name)
		for k, v := range pdb.Spec.Selector.MatchLabels {
			require.Equal(t, v, o.deployments[name].Spec.Template.Labels[k])
		}
	}
}

// TestK8sWorkersScaleOnQueueDepth: every worker has a KEDA ScaledObject
// on exactly the queues it consumes, authenticated through a Secret that
// exists.
func TestK8sWorkersScaleOnQueueDepth(t *testing.T) {
	o := decodeK8s(t)
	queues := queuesByService(t)
	require.ElementsMatch(t, workers, keys(o.scaledObjs), "one ScaledObject per worker")
	for _, name := range workers {
		t.Run(name, func(t *testing.T) {
			so := o.scaledObjs[name]
			require.Equal(t, name, so.Spec.ScaleTargetRef.Name)
			_, ok := o.deployments[so.Spec.ScaleTargetRef.Name]
			require.True(t, ok, "the scale target exists")
			require.GreaterOrEqual(t, so.Spec.MinReplicaCount, 1, "never scaled to zero: a worker must be there to drain dead letters and redeliveries")
			require.Greater(t, so.Spec.MaxReplicaCount, so.Spec.MinReplicaCount)
			var got []string
			for _, tr := range so.Spec.Triggers {
				require.Equal(t, "rabbitmq", tr.Type)
				require.Equal(t, "QueueLength", tr.Metadata.Mode)
				require.Contains(t, []string{"amqp", "auto"}, tr.Metadata.Protocol)
				require.NotEmpty(t, tr.Metadata.Value)
				got = append(got, tr.Metadata.QueueName)
				ta, ok := o.triggerAuths[tr.AuthenticationRef.Name]
				require.True(t, ok, "TriggerAuthentication %s not defined", tr.AuthenticationRef.Name)
				require.NotEmpty(t, ta.Spec.SecretTargetRef)
				for _, ref := range ta.Spec.SecretTargetRef {
					require.Equal(t, "host", ref.Parameter)
					s, ok := o.secrets[ref.Name]
					require.True(t, ok, "Secret %s not defined", ref.Name)
					require.NotEmpty(t, s.StringData[ref.Key], "Secret %s has no key %s", ref.Name, ref.Key)
				}
			}
			require.ElementsMatch(t, queues[name], got, "%s scales on the queues it consumes", name)
		})
	}
}

// TestK8sKustomizeBuilds renders the kustomization with kubectl's built-in
// kustomize (offline), as `kubectl apply -k` would before sending it.
func TestK8sKustomizeBuilds(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed; the YAML checks above still ran")
	}
	out, err := exec.CommandContext(t.Context(), kubectl, "kustomize", filepath.Join(repoRoot(t), k8sDir)).CombinedOutput()
	require.NoError(t, err, "%s", out)
	docs, _ := loadK8s(t)
	require.Len(t, regexp.MustCompile(`(?m)^kind: `).FindAll(out, -1), len(docs), "every object rendered:\n%s", out)
	for _, name := range appServices {
		require.Contains(t, string(out), "image: photopipe/"+name+":", "kustomize renders the %s image", name)
	}
}
