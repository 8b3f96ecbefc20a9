// Command regexp_oracle answers, with Go's own regexp package, whether patterns compile
// and which inputs they match, so the TypeScript engine can be tested against Go itself.
//
// Input on stdin:  {"cases": [{"pattern": "...", "inputs": ["...", ...]}, ...]}
// Output on stdout: {"results": [{"error": "..." | null, "matches": [bool, ...],
//
//	"divergence": "..." | null, "unstable": [bool, ...]}, ...]}
//
// The Go on hand (Debian's 1.19) is older than the Go the upstream binary is built with.
// The oracle follows current Go where it can:
//   - `(?<name>...)` (Go 1.22+) is rewritten to `(?P<name>...)` before compiling, and
//     error texts are mapped back to the pattern as written;
//   - Go 1.19 reports an over-large pattern as "regexp/syntax: internal error"; current
//     Go says "expression too large".
//
// Where it cannot, it says so instead of answering wrongly:
//   - "divergence" names a `\p{...}` spelling that current Go (1.25+) accepts but Go
//     1.19 rejects (long category names such as Letter, Cn, LC, Assigned, ASCII, names in
//     another case or with _ - or spaces dropped, scripts added in Unicode 14 and 15);
//   - "unstable" marks an input holding a code point unassigned in Unicode 13 when the
//     pattern's meaning depends on Unicode tables (`\p`, `\P`, case folding), because
//     current Go uses Unicode 15 and counts unassigned code points in \pC.
//
// Run it with `go run regexp_oracle.go` or build it; standard library only.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode"
	"unicode/utf8"
)

type request struct {
	Cases []struct {
		Pattern string   `json:"pattern"`
		Inputs  []string `json:"inputs"`
		// Raw bytes (base64 in JSON), for text that is not valid UTF-8; used instead of
		// Pattern and Inputs when present.
		PatternBytes []byte   `json:"patternBytes"`
		InputBytes   [][]byte `json:"inputBytes"`
	} `json:"cases"`
	// Byte strings to decode as Go iterates a string: the code points of []rune(s).
	Decode [][]byte `json:"decode"`
	// Files to split into lines as bufio.Scanner with ScanLines does.
	Lines [][]byte `json:"lines"`
}

type result struct {
	Error      *string `json:"error"`
	Matches    []bool  `json:"matches"`
	Divergence *string `json:"divergence"`
	Unstable   []bool  `json:"unstable"`
}

type response struct {
	Results []result   `json:"results"`
	Decoded [][]rune   `json:"decoded"`
	Lines   [][][]byte `json:"lines"`
	// Per file: the scanner's error (a line too long), or "".
	LineErrors []string `json:"lineErrors"`
}

func main() {
	var req request
	dec := json.NewDecoder(bufio.NewReader(os.Stdin))
	if err := dec.Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "regexp_oracle: reading request:", err)
		os.Exit(2)
	}
	resp := response{Results: make([]result, 0, len(req.Cases)), Decoded: [][]rune{}, Lines: [][][]byte{}, LineErrors: []string{}}
	for _, c := range req.Cases {
		pattern, inputs := c.Pattern, c.Inputs
		if c.PatternBytes != nil {
			pattern = string(c.PatternBytes)
		}
		if c.InputBytes != nil {
			inputs = make([]string, len(c.InputBytes))
			for i, b := range c.InputBytes {
				inputs[i] = string(b)
			}
		}
		resp.Results = append(resp.Results, answer(pattern, inputs))
	}
	for _, b := range req.Decode {
		resp.Decoded = append(resp.Decoded, []rune(string(b)))
	}
	for _, file := range req.Lines {
		lines := [][]byte{}
		scanner := bufio.NewScanner(bytes.NewReader(file))
		for scanner.Scan() {
			lines = append(lines, append([]byte{}, scanner.Bytes()...))
		}
		resp.Lines = append(resp.Lines, lines)
		msg := ""
		if err := scanner.Err(); err != nil {
			msg = err.Error()
		}
		resp.LineErrors = append(resp.LineErrors, msg)
	}
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(resp); err != nil {
		fmt.Fprintln(os.Stderr, "regexp_oracle: writing response:", err)
		os.Exit(2)
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "regexp_oracle: writing response:", err)
		os.Exit(2)
	}
}

func answer(pattern string, inputs []string) result {
	scan := scanPattern(pattern)
	res := result{Matches: []bool{}, Unstable: []bool{}}
	if d := scan.divergence(); d != "" {
		res.Divergence = &d
	}
	re, err := regexp.Compile(scan.rewritten)
	if err != nil {
		msg := scan.currentGoError(err)
		res.Error = &msg
		return res
	}
	tableDependent := scan.usesUnicodeTables || hasFoldFlag(pattern)
	for _, in := range inputs {
		res.Matches = append(res.Matches, re.MatchString(in))
		res.Unstable = append(res.Unstable, tableDependent && hasUnassigned13(in))
	}
	return res
}

// scan is what one pass over a pattern learns: the pattern with `(?<` rewritten, where
// the inserted `P`s are, where named groups open, and which `\p` names it uses.
type scan struct {
	original          string
	rewritten         string
	inserted          map[int]bool // indexes in rewritten of inserted 'P's
	namedOpens        []int        // indexes in rewritten of '(' opening a named group
	unicodeNames      []string     // names after \p or \P, without a leading '^'
	usesUnicodeTables bool
}

// scanPattern walks the pattern the way Go's parser tokenizes it, far enough to tell a
// group opener from text inside a character class or a \Q...\E quote.
func scanPattern(p string) *scan {
	s := &scan{original: p, inserted: map[int]bool{}}
	var out strings.Builder
	i := 0
	copyTo := func(end int) {
		if end > len(p) {
			end = len(p)
		}
		out.WriteString(p[i:end])
		i = end
	}
	unicodeClass := func() bool {
		// At `\p` or `\P`: copies the whole class escape, records its name.
		if i+1 >= len(p) || (p[i+1] != 'p' && p[i+1] != 'P') {
			return false
		}
		s.usesUnicodeTables = true
		if i+2 >= len(p) {
			copyTo(len(p))
			return true
		}
		if p[i+2] != '{' {
			_, size := decodeRune(p[i+2:])
			s.unicodeNames = append(s.unicodeNames, strings.TrimPrefix(p[i+2:i+2+size], "^"))
			copyTo(i + 2 + size)
			return true
		}
		end := strings.IndexByte(p[i:], '}')
		if end < 0 {
			copyTo(len(p))
			return true
		}
		s.unicodeNames = append(s.unicodeNames, strings.TrimPrefix(p[i+3:i+end], "^"))
		copyTo(i + end + 1)
		return true
	}
	for i < len(p) {
		switch c := p[i]; {
		case c == '\\':
			if i+1 < len(p) && p[i+1] == 'Q' {
				end := strings.Index(p[i+2:], `\E`)
				if end < 0 {
					copyTo(len(p))
				} else {
					copyTo(i + 2 + end + 2)
				}
				continue
			}
			if unicodeClass() {
				continue
			}
			copyTo(i + 2)
		case c == '(' && strings.HasPrefix(p[i:], "(?P<") && len(p)-i > 4:
			s.namedOpens = append(s.namedOpens, out.Len())
			copyTo(i + 4)
		case c == '(' && strings.HasPrefix(p[i:], "(?<") && len(p)-i > 3:
			s.namedOpens = append(s.namedOpens, out.Len())
			out.WriteString("(?")
			s.inserted[out.Len()] = true
			out.WriteString("P<")
			i += 3
		case c == '[':
			copyTo(i + 1)
			if i < len(p) && p[i] == '^' {
				copyTo(i + 1)
			}
			first := true
			for i < len(p) {
				if p[i] == ']' && !first {
					copyTo(i + 1)
					break
				}
				first = false
				if p[i] == '[' && len(p)-i > 2 && p[i+1] == ':' {
					if end := strings.Index(p[i+2:], ":]"); end >= 0 {
						copyTo(i + 2 + end + 2)
						continue
					}
				}
				if p[i] == '\\' && unicodeClass() {
					continue
				}
				s.classChar(p, &i, copyTo)
				if len(p)-i >= 2 && p[i] == '-' && p[i+1] != ']' {
					copyTo(i + 1)
					s.classChar(p, &i, copyTo)
				}
			}
		default:
			copyTo(i + 1)
		}
	}
	s.rewritten = out.String()
	return s
}

// classChar copies one class item: an escape's backslash and the rune after it (the rest
// of a longer escape holds only hex or octal digits and braces), or one rune.
func (s *scan) classChar(p string, i *int, copyTo func(int)) {
	if *i >= len(p) {
		return
	}
	if p[*i] == '\\' {
		if *i+1 >= len(p) {
			copyTo(len(p))
			return
		}
		_, size := decodeRune(p[*i+1:])
		copyTo(*i + 1 + size)
		return
	}
	_, size := decodeRune(p[*i:])
	copyTo(*i + size)
}

func decodeRune(s string) (rune, int) {
	return utf8.DecodeRuneInString(s)
}

// original maps a range of the rewritten pattern back to the text as written.
func (s *scan) originalText(start, end int) string {
	var b strings.Builder
	for j := start; j < end; j++ {
		if !s.inserted[j] {
			b.WriteByte(s.rewritten[j])
		}
	}
	return b.String()
}

// currentGoError turns Go 1.19's error for the rewritten pattern into the text current
// Go gives for the pattern as written.
func (s *scan) currentGoError(err error) string {
	var serr *syntax.Error
	if !errors.As(err, &serr) {
		return err.Error()
	}
	code := serr.Code
	if code == syntax.ErrInternalError {
		code = syntax.ErrorCode("expression too large")
	}
	expr := serr.Expr
	switch {
	case len(s.inserted) == 0:
	case expr == s.rewritten:
		expr = s.original
	case strings.HasSuffix(s.rewritten, expr) && (code == syntax.ErrInvalidUTF8 || code == syntax.ErrMissingBracket || code == syntax.ErrInvalidCharRange || code == syntax.ErrInvalidNamedCapture):
		// The rest of the pattern from where Go stopped (invalid UTF-8, say).
		expr = s.originalText(len(s.rewritten)-len(expr), len(s.rewritten))
	case serr.Code == syntax.ErrInvalidNamedCapture:
		for _, at := range s.namedOpens {
			if strings.HasPrefix(s.rewritten[at:], expr) {
				expr = s.originalText(at, at+len(expr))
				break
			}
		}
	}
	return (&syntax.Error{Code: code, Expr: expr}).Error()
}

// divergence reports a \p name whose acceptance differs between Go 1.19 and current Go.
func (s *scan) divergence() string {
	for _, name := range s.unicodeNames {
		if name == "Any" || unicode.Categories[name] != nil || unicode.Scripts[name] != nil {
			continue
		}
		if currentGoNames()[canonicalName(name)] {
			return fmt.Sprintf(`\p{%s} is accepted by current Go (1.25+) but not by Go 1.19`, name)
		}
	}
	return ""
}

// canonicalName is how Go 1.25+ looks up \p names: first letter upper case, the rest
// lower case, without '_', '-' and ' '.
func canonicalName(name string) string {
	var b strings.Builder
	first := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_' || c == '-' || c == ' ':
			continue
		case first:
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			first = false
		default:
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

var knownNames map[string]bool

// currentGoNames is the canonical form of every \p name current Go accepts.
func currentGoNames() map[string]bool {
	if knownNames != nil {
		return knownNames
	}
	knownNames = map[string]bool{}
	add := func(name string) { knownNames[canonicalName(name)] = true }
	for name := range unicode.Categories {
		add(name)
	}
	for name := range unicode.Scripts {
		add(name)
	}
	// Special names, categories Go 1.25 added, and scripts of Unicode 14 and 15.
	for _, name := range []string{
		"Any", "Assigned", "ASCII", "LC", "Cn",
		"Cypro_Minoan", "Old_Uyghur", "Tangsa", "Toto", "Vithkuqi", "Kawi", "Nag_Mundari",
	} {
		add(name)
	}
	// unicode.CategoryAliases (Go 1.25+): the gc aliases of PropertyValueAliases.txt.
	for _, name := range []string{
		"Other", "Control", "cntrl", "Format", "Unassigned", "Private_Use", "Surrogate",
		"Letter", "Cased_Letter", "Lowercase_Letter", "Modifier_Letter", "Other_Letter",
		"Titlecase_Letter", "Uppercase_Letter", "Mark", "Combining_Mark", "Spacing_Mark",
		"Enclosing_Mark", "Nonspacing_Mark", "Number", "Decimal_Number", "digit",
		"Letter_Number", "Other_Number", "Punctuation", "punct", "Connector_Punctuation",
		"Dash_Punctuation", "Close_Punctuation", "Final_Punctuation", "Initial_Punctuation",
		"Other_Punctuation", "Open_Punctuation", "Symbol", "Currency_Symbol",
		"Modifier_Symbol", "Math_Symbol", "Other_Symbol", "Separator", "Line_Separator",
		"Paragraph_Separator", "Space_Separator",
	} {
		add(name)
	}
	return knownNames
}

// hasFoldFlag reports whether the pattern may turn on case folding somewhere.
func hasFoldFlag(p string) bool {
	for at := strings.Index(p, "(?"); at >= 0; {
		rest := p[at+2:]
		for _, c := range rest {
			if c == 'i' {
				return true
			}
			if !strings.ContainsRune("msU-", c) {
				break
			}
		}
		next := strings.Index(rest, "(?")
		if next < 0 {
			break
		}
		at += 2 + next
	}
	return false
}

var assigned13 = []*unicode.RangeTable{unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.C}

// changedSince13 are the code points assigned in Unicode 13 whose category or script
// Unicode 15 changed (U+1734: Mn to Mc; U+16FE2, U+16FE3: Common to Han).
var changedSince13 = map[rune]bool{0x1734: true, 0x16fe2: true, 0x16fe3: true}

// hasUnassigned13 reports a code point unassigned in Go 1.19's Unicode 13 tables, or one
// whose properties Unicode 15 changed.
func hasUnassigned13(s string) bool {
	for _, r := range s {
		if !unicode.IsOneOf(assigned13, r) || changedSince13[r] {
			return true
		}
	}
	return false
}
