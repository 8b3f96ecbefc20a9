// flagcheck is the reference for src/cli/go_flags.ts: it defines flag tables with Go's
// own flag package and reports, for each argument vector, what Go makes of it.
//
// Input on stdin (JSON): [{"program": "...", "flags": [{"name", "kind", "default",
// "usage"}], "vectors": [["-a", "b"], ...]}, ...]; defaults are strings in Go syntax.
// Output on stdout (JSON): per suite, per vector, {"kind": "ok"|"help"|"error",
// "message", "values", "set", "rest", "output"}, where output is everything the
// FlagSet printed (error line and usage text).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
)

type flagSpec struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Default string `json:"default"`
	Usage   string `json:"usage"`
}

type suite struct {
	Program string     `json:"program"`
	Flags   []flagSpec `json:"flags"`
	Vectors [][]string `json:"vectors"`
}

type outcome struct {
	Kind    string            `json:"kind"`
	Message string            `json:"message"`
	Values  map[string]string `json:"values"`
	Set     []string          `json:"set"`
	Rest    []string          `json:"rest"`
	Output  string            `json:"output"`
}

func newFlagSet(s suite, output *bytes.Buffer) (*flag.FlagSet, error) {
	fs := flag.NewFlagSet(s.Program, flag.ContinueOnError)
	fs.SetOutput(output)
	for _, f := range s.Flags {
		switch f.Kind {
		case "bool":
			v, err := strconv.ParseBool(f.Default)
			if err != nil {
				return nil, err
			}
			fs.Bool(f.Name, v, f.Usage)
		case "string":
			fs.String(f.Name, f.Default, f.Usage)
		case "int":
			v, err := strconv.ParseInt(f.Default, 10, 64)
			if err != nil {
				return nil, err
			}
			fs.Int(f.Name, int(v), f.Usage)
		case "uint":
			v, err := strconv.ParseUint(f.Default, 10, 64)
			if err != nil {
				return nil, err
			}
			fs.Uint(f.Name, uint(v), f.Usage)
		default:
			return nil, fmt.Errorf("unknown kind %q", f.Kind)
		}
	}
	return fs, nil
}

func run(s suite, args []string) (outcome, error) {
	var output bytes.Buffer
	fs, err := newFlagSet(s, &output)
	if err != nil {
		return outcome{}, err
	}
	result := outcome{Values: map[string]string{}, Set: []string{}, Rest: []string{}}
	err = fs.Parse(args)
	switch {
	case err == nil:
		result.Kind = "ok"
		fs.VisitAll(func(f *flag.Flag) { result.Values[f.Name] = f.Value.String() })
		fs.Visit(func(f *flag.Flag) { result.Set = append(result.Set, f.Name) })
		result.Rest = append(result.Rest, fs.Args()...)
	case errors.Is(err, flag.ErrHelp):
		result.Kind = "help"
	default:
		result.Kind = "error"
		result.Message = err.Error()
	}
	result.Output = output.String()
	return result, nil
}

func main() {
	var suites []suite
	if err := json.NewDecoder(os.Stdin).Decode(&suites); err != nil {
		fmt.Fprintln(os.Stderr, "flagcheck: reading input:", err)
		os.Exit(2)
	}
	results := make([][]outcome, 0, len(suites))
	for _, s := range suites {
		outcomes := make([]outcome, 0, len(s.Vectors))
		for _, args := range s.Vectors {
			o, err := run(s, args)
			if err != nil {
				fmt.Fprintln(os.Stderr, "flagcheck:", err)
				os.Exit(2)
			}
			outcomes = append(outcomes, o)
		}
		results = append(results, outcomes)
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, "flagcheck: writing output:", err)
		os.Exit(2)
	}
}
