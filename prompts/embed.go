// Package prompts holds the LLM grader's prompt templates (text/template),
// embedded in the binary. README.md documents every variable they receive;
// the grader accepts another fs.FS with files of the same names instead.
package prompts

import "embed"

// FS holds the templates: system.tmpl (the rubric and the grading rules)
// and user.tmpl (the candidate's answer, fenced as untrusted data).
//
//go:embed *.tmpl
var FS embed.FS
