// Command go_baseline runs the Go original's check algorithm so the benchmark suite can
// time it on the same namespace, rules and patterns as ours: for each of the five
// tables, go-iptables' ListChains (`iptables -t T -S`) and one List (`iptables -t T -S
// CHAIN`) process per chain, then the table's and the global allowlist file read line by
// line, every pattern compiled with Go's regexp, and each rule tried against the
// patterns in order until the first MatchString. go-iptables runs each command with
// `--wait`, as the original does.
//
// Modes:
//
//	go_baseline -input DIR [-checks N]
//	    N checks in one process, as the original's loop does (no caching between
//	    checks); prints timings and the unexpected rules as JSON.
//	go_baseline -input DIR -matchOnly FILE [-reps N]
//	    matching alone on rules read from FILE (JSON {"table": ["rule", ...]}), N times.
//
// Build: GOPATH=/usr/share/gocode GO111MODULE=off go build (Debian's
// golang-github-coreos-go-iptables-dev provides the library under /usr/share/gocode).
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	goiptables "github.com/coreos/go-iptables/iptables"
)

var tables = []string{"nat", "mangle", "filter", "raw", "security"}

type unexpectedRule struct {
	Table string `json:"table"`
	Rule  string `json:"rule"`
}

type tableStats struct {
	Rules  int    `json:"rules"`
	Chains int    `json:"chains"`
	Digest string `json:"digest"`
}

type checkTimings struct {
	ListMs     float64               `json:"listMs"`
	PatternsMs float64               `json:"patternsMs"`
	CompileMs  float64               `json:"compileMs"`
	LoopMs     float64               `json:"loopMs"`
	TotalMs    float64               `json:"totalMs"`
	Processes  int                   `json:"processes"`
	Tables     map[string]tableStats `json:"tables"`
	Unexpected []unexpectedRule      `json:"unexpected"`
}

type checkOutput struct {
	Iptables string         `json:"iptables"`
	NewMs    float64        `json:"newMs"`
	Checks   []checkTimings `json:"checks"`
}

type matchOutput struct {
	Rules      int              `json:"rules"`
	CompileMs  []float64        `json:"compileMs"`
	LoopMs     []float64        `json:"loopMs"`
	Unexpected []unexpectedRule `json:"unexpected"`
}

func millis(d time.Duration) float64 {
	return float64(d.Nanoseconds()) / 1e6
}

// readLines reads a pattern file as the original does: one pattern a line, empty lines
// skipped; a missing file means no patterns.
func readLines(path string) []string {
	file, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer file.Close()
	var lines []string
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		if line := scanner.Text(); line != "" {
			lines = append(lines, line)
		}
	}
	return lines
}

func compileAll(patterns []string) []*regexp.Regexp {
	compiled := make([]*regexp.Regexp, 0, len(patterns))
	for _, pattern := range patterns {
		re, err := regexp.Compile(pattern)
		if err != nil {
			fmt.Fprintf(os.Stderr, "skipping pattern %q: %v\n", pattern, err)
			continue
		}
		compiled = append(compiled, re)
	}
	return compiled
}

// unexpectedIn is the original's loop: every rule against the patterns in order, stopping
// at the first match.
func unexpectedIn(table string, rules []string, patterns []*regexp.Regexp) []unexpectedRule {
	var out []unexpectedRule
	for _, rule := range rules {
		matched := false
		for _, pattern := range patterns {
			if pattern.MatchString(rule) {
				matched = true
				break
			}
		}
		if !matched {
			out = append(out, unexpectedRule{Table: table, Rule: rule})
		}
	}
	return out
}

// digest is the SHA-256 of a table's lines in sorted order (each followed by a newline):
// the baseline lists chain by chain, iptables-save declarations first, so only the
// sets of lines are comparable.
func digest(rules []string) string {
	sorted := append([]string(nil), rules...)
	sort.Strings(sorted)
	hash := sha256.New()
	for _, rule := range sorted {
		hash.Write([]byte(rule))
		hash.Write([]byte{'\n'})
	}
	return hex.EncodeToString(hash.Sum(nil))
}

func check(ipt *goiptables.IPTables, dir string) (checkTimings, error) {
	result := checkTimings{Tables: map[string]tableStats{}, Unexpected: []unexpectedRule{}}
	started := time.Now()
	global := readLines(filepath.Join(dir, "global"))
	result.PatternsMs += millis(time.Since(started))
	for _, table := range tables {
		t0 := time.Now()
		chains, err := ipt.ListChains(table)
		if err != nil {
			return result, fmt.Errorf("listing chains of %s: %w", table, err)
		}
		result.Processes++
		var rules []string
		for _, chain := range chains {
			chainRules, err := ipt.List(table, chain)
			if err != nil {
				return result, fmt.Errorf("listing %s %s: %w", table, chain, err)
			}
			result.Processes++
			rules = append(rules, chainRules...)
		}
		t1 := time.Now()
		patterns := append(readLines(filepath.Join(dir, table)), global...)
		t2 := time.Now()
		compiled := compileAll(patterns)
		t3 := time.Now()
		result.Unexpected = append(result.Unexpected, unexpectedIn(table, rules, compiled)...)
		t4 := time.Now()
		result.ListMs += millis(t1.Sub(t0))
		result.PatternsMs += millis(t2.Sub(t1))
		result.CompileMs += millis(t3.Sub(t2))
		result.LoopMs += millis(t4.Sub(t3))
		result.Tables[table] = tableStats{Rules: len(rules), Chains: len(chains), Digest: digest(rules)}
	}
	result.TotalMs = millis(time.Since(started))
	return result, nil
}

func matchOnly(dir, rulesFile string, reps int) (matchOutput, error) {
	out := matchOutput{Unexpected: []unexpectedRule{}}
	raw, err := os.ReadFile(rulesFile)
	if err != nil {
		return out, err
	}
	var byTable map[string][]string
	if err := json.Unmarshal(raw, &byTable); err != nil {
		return out, fmt.Errorf("%s: %w", rulesFile, err)
	}
	names := make([]string, 0, len(byTable))
	for name, rules := range byTable {
		names = append(names, name)
		out.Rules += len(rules)
	}
	sort.Strings(names)
	global := readLines(filepath.Join(dir, "global"))
	for rep := 0; rep < reps; rep++ {
		var compileMs, loopMs float64
		var unexpected []unexpectedRule
		for _, table := range names {
			patterns := append(readLines(filepath.Join(dir, table)), global...)
			t0 := time.Now()
			compiled := compileAll(patterns)
			t1 := time.Now()
			unexpected = append(unexpected, unexpectedIn(table, byTable[table], compiled)...)
			compileMs += millis(t1.Sub(t0))
			loopMs += millis(time.Since(t1))
		}
		out.CompileMs = append(out.CompileMs, compileMs)
		out.LoopMs = append(out.LoopMs, loopMs)
		if unexpected != nil {
			out.Unexpected = unexpected
		}
	}
	return out, nil
}

func main() {
	dir := flag.String("input", "/etc/config/", "directory of the allowlist files")
	checks := flag.Int("checks", 1, "checks to run in this process")
	rulesFile := flag.String("matchOnly", "", "time matching alone on the rules in this JSON file")
	reps := flag.Int("reps", 5, "repetitions of -matchOnly")
	flag.Parse()

	var output interface{}
	if *rulesFile != "" {
		result, err := matchOnly(*dir, *rulesFile, *reps)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		output = result
	} else {
		t0 := time.Now()
		ipt, err := goiptables.New()
		if err != nil {
			fmt.Fprintf(os.Stderr, "failed to create iptables client: %v\n", err)
			os.Exit(2)
		}
		result := checkOutput{NewMs: millis(time.Since(t0))}
		if path, err := exec.LookPath("iptables"); err == nil {
			if real, err := filepath.EvalSymlinks(path); err == nil {
				result.Iptables = real
			}
		}
		for i := 0; i < *checks; i++ {
			timings, err := check(ipt, *dir)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			result.Checks = append(result.Checks, timings)
		}
		output = result
	}
	encoded, err := json.Marshal(output)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Stdout.Write(append(encoded, '\n'))
}
