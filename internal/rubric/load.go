package rubric

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a rubric file.
type Problem struct {
	File    string
	Field   string
	Message string
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.File + ": " + p.Message
	}
	return p.File + ": " + p.Field + ": " + p.Message
}

// Problems is a list of problems that is also an error.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Parse decodes one rubric. Unknown fields are errors, so a typo in a field
// name cannot silently drop part of a rubric.
func Parse(data []byte) (Rubric, error) {
	var r Rubric
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		if errors.Is(err, io.EOF) {
			return r, errors.New("empty file")
		}
		return r, err
	}
	r.Normalize()
	return r, nil
}

// Normalize replaces absent lists with empty ones, so a rubric reads the
// same from YAML, JSON and every store.
func (r *Rubric) Normalize() {
	if r.Aliases == nil {
		r.Aliases = []string{}
	}
	if r.Tags == nil {
		r.Tags = []string{}
	}
}

// Load reads every *.yaml file at the top of fsys, checks each rubric and the
// set as a whole, and returns the rubrics sorted by id. It returns Problems
// when any file is invalid, so a server never starts with half a bank.
func Load(fsys fs.FS) ([]Rubric, error) {
	rubrics, problems := LoadAll(fsys)
	if len(problems) > 0 {
		return nil, problems
	}
	return rubrics, nil
}

// LoadAll is Load that returns the valid rubrics along with every problem,
// for the linter.
func LoadAll(fsys fs.FS) ([]Rubric, Problems) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, Problems{{File: ".", Message: err.Error()}}
	}
	var (
		rubrics  []Rubric
		problems Problems
		seen     = map[string]string{}
	)
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || (path.Ext(name) != ".yaml" && path.Ext(name) != ".yml") {
			continue
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			problems = append(problems, Problem{File: name, Message: err.Error()})
			continue
		}
		r, err := Parse(data)
		if err != nil {
			problems = append(problems, Problem{File: name, Message: "invalid YAML: " + err.Error()})
			continue
		}
		ps := Check(r)
		if want := strings.TrimSuffix(name, path.Ext(name)); r.ID != "" && r.ID != want {
			ps = append(ps, Problem{Field: "id", Message: fmt.Sprintf("%q must match the file name %q", r.ID, want)})
		}
		if other, dup := seen[r.ID]; dup && r.ID != "" {
			ps = append(ps, Problem{Field: "id", Message: fmt.Sprintf("%q is also the id in %s", r.ID, other)})
		}
		seen[r.ID] = name
		for i := range ps {
			ps[i].File = name
		}
		problems = append(problems, ps...)
		if len(ps) == 0 {
			rubrics = append(rubrics, r)
		}
	}
	if len(rubrics) == 0 && len(problems) == 0 {
		problems = append(problems, Problem{File: ".", Message: "no rubric files (*.yaml)"})
	}
	sort.Slice(rubrics, func(i, j int) bool { return rubrics[i].ID < rubrics[j].ID })
	return rubrics, problems
}
