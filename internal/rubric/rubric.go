// Package rubric defines rubrics, the yardstick every answer is graded
// against, and reads and checks them from YAML files.
package rubric

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
)

// Levels is the number of level descriptors a criterion has (levels 0 to 4).
const Levels = 5

// MaxLevel is the highest level a criterion can reach.
const MaxLevel = Levels - 1

// Rubric says how to grade answers to one question.
type Rubric struct {
	ID              string          `json:"id" yaml:"id"`
	Version         int             `json:"version" yaml:"version"`
	Title           string          `json:"title" yaml:"title"`
	Question        string          `json:"question" yaml:"question"`
	Aliases         []string        `json:"aliases" yaml:"aliases"`
	Tags            []string        `json:"tags" yaml:"tags"`
	Level           string          `json:"level" yaml:"level"`
	ReferenceAnswer string          `json:"reference_answer" yaml:"reference_answer"`
	Criteria        []Criterion     `json:"criteria" yaml:"criteria"`
	Misconceptions  []Misconception `json:"misconceptions" yaml:"misconceptions"`
	FollowUps       []FollowUp      `json:"follow_ups" yaml:"follow_ups"`
}

// Criterion is one graded aspect of an answer.
type Criterion struct {
	ID          string     `json:"id" yaml:"id"`
	Name        string     `json:"name" yaml:"name"`
	Weight      float64    `json:"weight" yaml:"weight"`
	Description string     `json:"description" yaml:"description"`
	Levels      []string   `json:"levels" yaml:"levels"`
	KeyPoints   []KeyPoint `json:"key_points" yaml:"key_points"`
}

// KeyPoint is one thing a good answer says, with the terms that show it.
type KeyPoint struct {
	ID    string   `json:"id" yaml:"id"`
	Point string   `json:"point" yaml:"point"`
	Terms []string `json:"terms" yaml:"terms"`
}

// Misconception is a wrong claim candidates make.
type Misconception struct {
	ID      string   `json:"id" yaml:"id"`
	Claim   string   `json:"claim" yaml:"claim"`
	Why     string   `json:"why" yaml:"why"`
	Signals []string `json:"signals" yaml:"signals"`
}

// FollowUp is a question to ask next, aimed at one criterion.
type FollowUp struct {
	Question  string `json:"question" yaml:"question"`
	Criterion string `json:"criterion" yaml:"criterion"`
	Depth     int    `json:"depth" yaml:"depth"`
}

// Criterion returns the criterion with the given id.
func (r *Rubric) Criterion(id string) (*Criterion, bool) {
	for i := range r.Criteria {
		if r.Criteria[i].ID == id {
			return &r.Criteria[i], true
		}
	}
	return nil, false
}

// TotalWeight is the sum of the criteria weights.
func (r *Rubric) TotalWeight() float64 {
	var w float64
	for _, c := range r.Criteria {
		w += c.Weight
	}
	return w
}

// ContentHash identifies the rubric's content, ignoring its version, so a
// store can tell whether a synced file changed.
func (r Rubric) ContentHash() string {
	r.Version = 0
	b, err := json.Marshal(r)
	if err != nil {
		// Marshalling plain strings, numbers and slices cannot fail.
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Public is the candidate's view of a rubric: enough to know what will be
// graded, without the reference answer, the level descriptors or the terms
// that would let a candidate game the grader.
func (r Rubric) Public() Rubric {
	out := Rubric{ID: r.ID, Version: r.Version, Title: r.Title, Question: r.Question,
		Aliases: r.Aliases, Tags: r.Tags, Level: r.Level}
	for _, c := range r.Criteria {
		out.Criteria = append(out.Criteria, Criterion{ID: c.ID, Name: c.Name, Weight: c.Weight, Description: c.Description})
	}
	return out
}

// SearchTexts returns the texts a rubric is found by: its question, each
// alias, its title with its tags, and its content (reference answer and key
// points), which is what an answer sent without a question resembles. Each
// becomes one vector; a rubric's similarity is its best vector's.
func (r Rubric) SearchTexts() []string {
	texts := []string{r.Question}
	texts = append(texts, r.Aliases...)
	texts = append(texts, r.Title+". "+strings.Join(r.Tags, " "))
	texts = append(texts, r.ReferenceAnswer)
	// Short texts match short questions best: each key point with its
	// terms, and each follow-up question, which reads like a paraphrase.
	for _, c := range r.Criteria {
		texts = append(texts, c.Name+". "+c.Description)
		for _, kp := range c.KeyPoints {
			texts = append(texts, kp.Point+" "+strings.Join(kp.Terms, ", "))
		}
	}
	for _, f := range r.FollowUps {
		texts = append(texts, f.Question)
	}
	return texts
}
