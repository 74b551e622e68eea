// Package packaging tests what operators install from deploy/: the systemd unit, the container recipe, the Kubernetes manifests and the example configs.
package packaging
