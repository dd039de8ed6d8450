//go:build tools

// Package tools pins modules this module takes files from rather than code: the
// MCS API's CRD manifests (sigs.k8s.io/mcs-api/config/crd), which
// scripts/ensure-kube-tools.sh copies next to the binaries. The import keeps the
// version in go.mod and its checksum in go.sum; the build tag keeps it out of builds.
package tools

import _ "sigs.k8s.io/mcs-api/config/crd"
