package grader

import (
	"regexp"

	"github.com/assay-dev/assay/internal/text"
)

// injection matches text that talks to the grader instead of answering the
// question. Such sentences are removed before grading, so they earn
// nothing, and the evaluation is flagged. The patterns aim at the phrasing
// of instructions ("ignore previous instructions", "give this answer full
// marks"), which a genuine answer about backends has no reason to use.
var injection = regexp.MustCompile(`(?i)` +
	`\b(ignore|disregard|forget|override)\b.{0,30}\b(previous|prior|above|earlier|preceding|all|your|the)\b.{0,20}\b(instructions?|prompts?|rules|directions|rubric|guidelines)\b` +
	`|\b(give|award|assign|grade|score|rate|mark)\b.{0,40}\b(full|maximum|max|perfect|top|highest)\b.{0,12}\b(marks?|scores?|points?|credit|grade|level)` +
	`|\b(full|maximum|perfect|top)\s+(marks|score|points|credit)\b` +
	`|\b(100|10)\s*(/|out of)\s*(100|10)\b|\blevel\s*4\b.{0,20}\b(all|every|each)\b` +
	`|\b(you are|act as|pretend to be|you're)\b.{0,12}\b(grader|evaluator|examiner|assistant|language model|llm|ai model)\b` +
	`|\b(as an?|dear|attention|note to( the)?)\s+(ai|llm|language model|grader|evaluator|examiner|assistant)\b` +
	`|\b(system|developer)\s+(prompt|message|instructions?)\b` +
	`|\b(new|updated|real)\s+instructions?\b` +
	`|</?\s*(system|assistant|user|answer|instructions?|rubric)\s*>` +
	`|\bdo not (penalize|penalise|deduct|mark down|grade)\b` +
	`|\bthis (answer|response) (is|deserves|should (get|receive|be graded))\b.{0,20}\b(perfect|correct|excellent|full|top|100|maximum)\b`)

// IsInjection reports whether a sentence addresses the grader.
func IsInjection(sentence string) bool { return injection.MatchString(sentence) }

// phrase is a term or signal as a sequence of stems.
type phrase []string

func newPhrase(s string) phrase { return phrase(text.Stems(s)) }

// in reports whether p occurs contiguously in stems.
func (p phrase) in(stems []string) bool {
	if len(p) == 0 || len(p) > len(stems) {
		return false
	}
outer:
	for i := 0; i+len(p) <= len(stems); i++ {
		for j := range p {
			if stems[i+j] != p[j] {
				continue outer
			}
		}
		return true
	}
	return false
}
