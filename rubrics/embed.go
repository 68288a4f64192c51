// Package rubrics holds the seed question bank, embedded in the binary so
// that Assay grades with zero configuration.
package rubrics

import "embed"

// FS holds the rubric files (*.yaml) of this folder.
//
//go:embed *.yaml
var FS embed.FS
