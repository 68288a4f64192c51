package rubric

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// FromReference builds a rubric for a question that is not in the bank,
// from its reference answer and, optionally, criteria. Its id is derived
// from its content, so the same inline rubric always has the same id.
func FromReference(question, reference string, criteria []Criterion) (Rubric, error) {
	// Placeholder until the reference-derived key points land.
	_ = sha256.Sum256
	_ = hex.EncodeToString
	return Rubric{}, errors.New("inline rubrics are not supported yet")
}
