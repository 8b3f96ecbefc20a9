// Command list_lines prints the lines the Go original matches against its allowlists,
// read exactly as it reads them: for each of the five tables, go-iptables' ListChains
// (`iptables -t T -S`), then List (`iptables -t T -S CHAIN`) for each chain, whose output
// go-iptables splits on "\n". Output: JSON {"table": ["line", ...]}; a table iptables
// cannot list is left out.
//
// The iptables on PATH decides the backend; -family ipv6 uses ip6tables.
//
// Build: GOPATH=/usr/share/gocode GO111MODULE=off go build list_lines.go (Debian's
// golang-github-coreos-go-iptables-dev provides the library).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	goiptables "github.com/coreos/go-iptables/iptables"
)

var tables = []string{"nat", "mangle", "filter", "raw", "security"}

func main() {
	family := flag.String("family", "ipv4", "ipv4 or ipv6")
	flag.Parse()
	proto := goiptables.ProtocolIPv4
	if *family == "ipv6" {
		proto = goiptables.ProtocolIPv6
	}
	ipt, err := goiptables.New(goiptables.IPFamily(proto), goiptables.Timeout(30))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := map[string][]string{}
	for _, table := range tables {
		chains, err := ipt.ListChains(table)
		if err != nil {
			continue
		}
		lines := []string{}
		for _, chain := range chains {
			listed, err := ipt.List(table, chain)
			if err != nil {
				fmt.Fprintf(os.Stderr, "listing %s %s: %v\n", table, chain, err)
				os.Exit(2)
			}
			lines = append(lines, listed...)
		}
		out[table] = lines
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
