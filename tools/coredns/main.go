// Command coredns is CoreDNS's own main (coremain.Run) with only the plugins the DNS
// benchmark's authoritative comparison uses: bind (listen on loopback), errors,
// minimal (no authority or additional records beside an answer, as fedgate sends
// none) and file (serve a zone file). Setting the directive list and importing only
// those plugins keeps the kubernetes plugin, and with it every k8s.io module, out of
// the binary; see README.md.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/file"
	_ "github.com/coredns/coredns/plugin/minimal"
)

// directives in execution order, as upstream's plugin.cfg orders them.
var directives = []string{"bind", "errors", "minimal", "file"}

func main() {
	if err := dnsserver.SetDirectives(directives); err != nil {
		panic(err)
	}
	coremain.Run()
}
