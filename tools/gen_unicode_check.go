// gen_unicode_check proves tools/gen_unicode.ts derives Go's tables from the UCD: it reads
// the JSON that gen_unicode.ts prints for the Unicode version of the Go on hand and
// compares every category, script and case-folding orbit with Go's own unicode package.
//
// Run (Debian's Go 1.19 ships Unicode 13.0.0):
//
//	deno run --allow-read tools/gen_unicode.ts /tmp/ucd/node_modules/@unicode/unicode-13.0.0 --json \
//	  | go run tools/gen_unicode_check.go
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"unicode"
)

type tables struct {
	Version    string            `json:"version"`
	Categories map[string][]rune `json:"categories"`
	Scripts    map[string][]rune `json:"scripts"`
	Orbits     [][]rune          `json:"orbits"`
}

func set(t *unicode.RangeTable) []rune {
	var out []rune
	add := func(lo, hi rune) {
		if n := len(out); n > 0 && out[n-1]+1 == lo {
			out[n-1] = hi
			return
		}
		out = append(out, lo, hi)
	}
	for _, r := range t.R16 {
		for c := rune(r.Lo); c <= rune(r.Hi); c += rune(r.Stride) {
			add(c, c)
		}
	}
	for _, r := range t.R32 {
		for c := rune(r.Lo); c <= rune(r.Hi); c += rune(r.Stride) {
			add(c, c)
		}
	}
	return out
}

func same(a, b []rune) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func main() {
	var t tables
	if err := json.NewDecoder(os.Stdin).Decode(&t); err != nil {
		fmt.Fprintln(os.Stderr, "reading tables:", err)
		os.Exit(2)
	}
	bad := 0
	if t.Version != unicode.Version {
		fmt.Printf("version: UCD %s, Go %s\n", t.Version, unicode.Version)
		bad++
	}
	for name, got := range t.Categories {
		table := unicode.Categories[name]
		if table == nil || name == "C" {
			continue // Cn, LC, and C holding Cn: Go 1.25+ only
		}
		if !same(got, set(table)) {
			fmt.Println("category differs:", name)
			bad++
		}
	}
	if len(t.Scripts) != len(unicode.Scripts) {
		fmt.Printf("scripts: UCD %d, Go %d\n", len(t.Scripts), len(unicode.Scripts))
		bad++
	}
	for name, table := range unicode.Scripts {
		if !same(t.Scripts[name], set(table)) {
			fmt.Println("script differs:", name)
			bad++
		}
	}
	var orbits [][]rune
	seen := map[rune]bool{}
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if seen[r] || unicode.SimpleFold(r) == r {
			continue
		}
		orbit := []rune{r}
		seen[r] = true
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			orbit = append(orbit, f)
			seen[f] = true
		}
		sort.Slice(orbit, func(i, j int) bool { return orbit[i] < orbit[j] })
		orbits = append(orbits, orbit)
	}
	if len(orbits) != len(t.Orbits) {
		fmt.Printf("orbits: UCD %d, Go %d\n", len(t.Orbits), len(orbits))
		bad++
	} else {
		for i := range orbits {
			if !same(orbits[i], t.Orbits[i]) {
				fmt.Println("orbit differs:", orbits[i], t.Orbits[i])
				bad++
			}
		}
	}
	if bad > 0 {
		os.Exit(1)
	}
	fmt.Printf("Unicode %s: %d categories, %d scripts, %d orbits: all equal to Go's\n",
		t.Version, len(t.Categories), len(t.Scripts), len(orbits))
}
