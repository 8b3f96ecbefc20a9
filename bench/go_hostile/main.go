// Command go_hostile times Go's regexp on hostile pattern/rule pairs for bench/hostile.ts:
// regexp.Compile, and MatchString on the rule, as the Go original runs each pattern.
//
// Input on stdin:  {"cases": [{"pattern": "...", "rule": "...", "compiles": N}]}
// Output on stdout: {"results": [{"error": "..."|null, "compileMs": [...], "firstMatchMs": [...],
// "ruleMs": x, "matched": bool}]}
//
// Each compile is followed by one match (the first rule); then the rule is matched in a
// loop for at least 20 ms and ruleMs is the mean CPU time per match.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"syscall"
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

// cpuTime is the CPU time the process has used: on a busy machine, waiting for a core is
// not counted.
func cpuTime() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
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
			n := 0
			start := time.Now()
			cpu := cpuTime()
			for time.Since(start) < 20*time.Millisecond || n < 3 {
				re.MatchString(c.Rule)
				n++
			}
			res.RuleMs = ms(cpuTime()-cpu) / float64(n)
		}
		results = append(results, res)
	}
	if err := json.NewEncoder(os.Stdout).Encode(map[string]any{"results": results}); err != nil {
		fmt.Fprintln(os.Stderr, "go_hostile:", err)
		os.Exit(2)
	}
}
