//go:build tools

// Package tools pins modules this module takes files from rather than code: the
// MCS API's CRD manifests (sigs.k8s.io/mcs-api/config/crd) and the Gateway API's
// standard-channel CRDs (sigs.k8s.io/gateway-api's config/crd/standard, a directory
// with no Go package, so its apis/v1 package is imported instead), which
// scripts/ensure-kube-tools.sh copies next to the binaries. The imports keep the
// versions in go.mod and their checksums in go.sum; the build tag keeps them out of builds.
package tools

import (
	_ "sigs.k8s.io/gateway-api/apis/v1"
	_ "sigs.k8s.io/mcs-api/config/crd"
)
