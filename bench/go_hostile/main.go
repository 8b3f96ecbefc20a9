// Command go_hostile times Go's regexp on hostile pattern/rule pairs for bench/hostile.ts:
// regexp.Compile, and MatchString on the rule, as the Go original runs each pattern.
//
// Input on stdin:  {"cases": [{"pattern": "...", "rule": "...", "compiles": N}]}
// Output on stdout: {"results": [{"error": "..."|null, "compileMs": [...], "firstMatchMs": [...],
// "ruleMs": x, "matched": bool}]}
//
// Each compile is followed by one match (the first rule); then ruleMs is the time of one
// more match of the rule (see perRule).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"time"
)

type request struct {
	Cases []struct {
		Pattern  string `json:"pattern"`
		Rule     string `json:"rule"`
		Compiles int    `json:"compiles"`
	} `json:"cases"`
}

type result struct {
	Error        *string   `json:"error"`
	CompileMs    []float64 `json:"compileMs"`
	FirstMatchMs []float64 `json:"firstMatchMs"`
	RuleMs       float64   `json:"ruleMs"`
	Matched      bool      `json:"matched"`
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// perRule is the time of one run of match: batches of runs that take at least half a
// millisecond each, 21 of them, the median batch divided by its runs (robust to the
// preemptions of a busy machine).
func perRule(match func()) float64 {
	n := 1
	for {
		start := time.Now()
		for i := 0; i < n; i++ {
			match()
		}
		if time.Since(start) >= 500*time.Microsecond || n >= 1<<20 {
			break
		}
		n *= 2
	}
	batches := make([]float64, 21)
	for b := range batches {
		start := time.Now()
		for i := 0; i < n; i++ {
			match()
		}
		batches[b] = ms(time.Since(start)) / float64(n)
	}
	sort.Float64s(batches)
	return batches[len(batches)/2]
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "go_hostile:", err)
		os.Exit(2)
	}
	results := []result{}
	for _, c := range req.Cases {
		res := result{CompileMs: []float64{}, FirstMatchMs: []float64{}}
		var re *regexp.Regexp
		for i := 0; i < c.Compiles; i++ {
			start := time.Now()
			compiled, err := regexp.Compile(c.Pattern)
			res.CompileMs = append(res.CompileMs, ms(time.Since(start)))
			if err != nil {
				msg := err.Error()
				res.Error = &msg
				break
			}
			re = compiled
			start = time.Now()
			res.Matched = re.MatchString(c.Rule)
			res.FirstMatchMs = append(res.FirstMatchMs, ms(time.Since(start)))
		}
		if re != nil {
			res.RuleMs = perRule(func() { re.MatchString(c.Rule) })
		}
		results = append(results, res)
	}
	if err := json.NewEncoder(os.Stdout).Encode(map[string]any{"results": results}); err != nil {
		fmt.Fprintln(os.Stderr, "go_hostile:", err)
		os.Exit(2)
	}
}
