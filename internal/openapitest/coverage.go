package openapitest

import (
	"fmt"
	"slices"
	"strings"
)

// Coverage records which documented statuses of which operations real
// answers produced, and checks each answer on the way.
type Coverage struct {
	spec *Spec
	seen map[string]map[int]bool
	errs []string
}

// NewCoverage starts recording against s.
func (s *Spec) NewCoverage() *Coverage {
	return &Coverage{spec: s, seen: map[string]map[int]bool{}}
}

// Record checks one answer of op (see Spec.CheckResponse) and notes its
// status as exercised; a failed check is kept for Errors.
func (c *Coverage) Record(op *Operation, status int, err error) {
	if err != nil {
		c.errs = append(c.errs, err.Error())
		return
	}
	if c.seen[op.Key()] == nil {
		c.seen[op.Key()] = map[int]bool{}
	}
	c.seen[op.Key()][status] = true
}

// Errors are the failed checks, in order.
func (c *Coverage) Errors() []string { return slices.Clone(c.errs) }

// Missing lists, for the operations keep selects, each documented
// status that no recorded answer produced, as "GET /v1/x 404".
func (c *Coverage) Missing(keep func(*Operation) bool) []string {
	var out []string
	for _, op := range c.spec.ops {
		if !keep(op) {
			continue
		}
		for _, st := range op.Statuses {
			if !c.seen[op.Key()][st] {
				out = append(out, fmt.Sprintf("%s %d", op.Key(), st))
			}
		}
	}
	return out
}

// Undescribed compares the patterns a ServeMux serves with the
// description: it returns each operation pattern ("GET /v1/x/{id}")
// that has no operation, and each method-less pattern (a 405 twin)
// whose path the description does not have, except those in exempt.
func (s *Spec) Undescribed(patterns []string, exempt ...string) []string {
	var out []string
	for _, p := range patterns {
		method, path := PatternOperation(p)
		if slices.Contains(exempt, p) {
			continue
		}
		switch {
		case method == "" && !s.HasPath(path) && !s.hasPrefix(path):
			out = append(out, p+" (answers every method)")
		case method != "" && s.Find(method, path) == nil:
			out = append(out, method+" "+path)
		}
	}
	return out
}

// hasPrefix reports whether a subtree pattern ("/u/") covers described
// paths.
func (s *Spec) hasPrefix(path string) bool {
	if !strings.HasSuffix(path, "/") {
		return false
	}
	for _, o := range s.ops {
		if strings.HasPrefix(o.Path, path) {
			return true
		}
	}
	return false
}
