package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

// mockRubric is what the mock learns of the rubric from the request: the
// ids from the JSON schema's enums, the texts from the system prompt.
type mockRubric struct {
	criteria       []mockCriterion
	misconceptions []mockMisconception
}

type mockCriterion struct {
	id, name, text string
	keyPoints      []mockKeyPoint
}

type mockKeyPoint struct{ id, point string }

type mockMisconception struct{ id, claim string }

var (
	criterionLine = regexp.MustCompile(`(?m)^Criterion ([a-z0-9-]+): (.+)$`)
	listLine      = regexp.MustCompile(`(?m)^- ([a-z0-9-]+): (.+)$`)
	openTag       = regexp.MustCompile(`<(answer_[0-9a-f]+)>`)
	injection     = regexp.MustCompile(`(?i)\b(ignore|disregard|forget)\b.{0,20}\b(instructions|rubric|rules)\b|\bfull marks\b|\bas an ai\b|\byou are the grader\b`)
)

// parseRubric reads the criteria blocks ("Criterion id: name", level and
// key point lines, up to a blank line) and the misconceptions list of the
// system prompt, and the enums of the schema, which win when present.
func parseRubric(system string, schema json.RawMessage) mockRubric {
	var rb mockRubric
	blocks := map[string]mockCriterion{}
	var order []string
	for _, loc := range criterionLine.FindAllStringSubmatchIndex(system, -1) {
		id, name := system[loc[2]:loc[3]], system[loc[4]:loc[5]]
		end := strings.Index(system[loc[1]:], "\n\n")
		if end < 0 {
			end = len(system) - loc[1]
		}
		body := system[loc[1] : loc[1]+end]
		c := mockCriterion{id: id, name: name, text: name + "\n" + body}
		for _, m := range listLine.FindAllStringSubmatch(body, -1) {
			c.keyPoints = append(c.keyPoints, mockKeyPoint{m[1], m[2]})
		}
		blocks[id] = c
		order = append(order, id)
	}
	claims := map[string]string{}
	if i := strings.Index(system, "\nMisconceptions:"); i >= 0 {
		for _, m := range listLine.FindAllStringSubmatch(system[i:], -1) {
			claims[m[1]] = m[2]
			rb.misconceptions = append(rb.misconceptions, mockMisconception{m[1], m[2]})
		}
	}
	var s struct {
		Properties struct {
			Criteria struct {
				Items struct {
					Properties struct {
						ID struct {
							Enum []string `json:"enum"`
						} `json:"id"`
					} `json:"properties"`
				} `json:"items"`
			} `json:"criteria"`
			Misconceptions struct {
				Items struct {
					Properties struct {
						ID struct {
							Enum []string `json:"enum"`
						} `json:"id"`
					} `json:"properties"`
				} `json:"items"`
			} `json:"misconceptions"`
		} `json:"properties"`
	}
	if len(schema) > 0 && json.Unmarshal(schema, &s) == nil {
		if ids := s.Properties.Criteria.Items.Properties.ID.Enum; len(ids) > 0 {
			order = ids
		}
		if ids := s.Properties.Misconceptions.Items.Properties.ID.Enum; len(ids) > 0 {
			rb.misconceptions = nil
			for _, id := range ids {
				rb.misconceptions = append(rb.misconceptions, mockMisconception{id, claims[id]})
			}
		}
	}
	for _, id := range order {
		c, ok := blocks[id]
		if !ok {
			name := strings.ReplaceAll(id, "-", " ")
			c = mockCriterion{id: id, name: name, text: name}
		}
		rb.criteria = append(rb.criteria, c)
	}
	return rb
}

// extractAnswer returns the text between the answer tags of the user
// message, or the whole message.
func extractAnswer(user string) string {
	loc := openTag.FindStringSubmatchIndex(user)
	if loc == nil {
		return user
	}
	closing := "</" + user[loc[2]:loc[3]] + ">"
	end := strings.LastIndex(user, closing)
	if end < loc[1] {
		return user
	}
	a := strings.TrimPrefix(user[loc[1]:end], "\n")
	return strings.TrimSuffix(a, "\n")
}

// The grading, its fields in the schema's order.
type gradingOut struct {
	Criteria       []criterionOut     `json:"criteria"`
	Misconceptions []misconceptionOut `json:"misconceptions"`
	FollowUps      []followUpOut      `json:"follow_ups"`
	Feedback       string             `json:"feedback"`
	Flags          []string           `json:"flags"`
}

type criterionOut struct {
	ID        string        `json:"id"`
	Evidence  []string      `json:"evidence"`
	KeyPoints []keyPointOut `json:"key_points"`
	Comment   string        `json:"comment"`
	Level     int           `json:"level"`
}

type keyPointOut struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

type misconceptionOut struct {
	ID    string `json:"id"`
	Quote string `json:"quote"`
}

type followUpOut struct {
	Question  string `json:"question"`
	Criterion string `json:"criterion"`
	Why       string `json:"why"`
}

// grade makes a plausible, deterministic grading: a criterion's level
// grows with the share of its rubric words the answer uses, nudged by a
// hash of the answer; evidence is the answer's sentences that share most
// words with the criterion, quoted verbatim.
func grade(rb mockRubric, answer string) gradingOut {
	aw := set(words(answer))
	sents := sentences(answer)
	out := gradingOut{Criteria: []criterionOut{}, Misconceptions: []misconceptionOut{}, FollowUps: []followUpOut{}, Flags: []string{}}
	for _, c := range rb.criteria {
		cw := set(words(c.text))
		overlap := share(cw, aw)
		level := 0
		if overlap > 0 {
			level = min(4, max(1, int(overlap*7)+int(hash(answer, c.id)%2)))
		}
		co := criterionOut{ID: c.id, Evidence: []string{}, KeyPoints: []keyPointOut{}, Level: level}
		if level > 0 {
			co.Evidence = bestSentences(sents, cw, 2)
		}
		var covered, missing []string
		for _, kp := range c.keyPoints {
			st := "missing"
			switch s := share(set(words(kp.point)), aw); {
			case s >= 0.6:
				st = "covered"
			case s >= 0.3:
				st = "partial"
			}
			co.KeyPoints = append(co.KeyPoints, keyPointOut{kp.id, st})
			if st == "covered" {
				covered = append(covered, kp.id)
			} else {
				missing = append(missing, kp.id)
			}
		}
		co.Comment = fmt.Sprintf("Uses %.0f%% of this criterion's vocabulary; covers %s; lacks %s.",
			100*overlap, list(covered), list(missing))
		out.Criteria = append(out.Criteria, co)
	}
	for _, m := range rb.misconceptions {
		mw := set(words(m.claim))
		for _, s := range sents {
			if len(mw) > 0 && share(mw, set(words(s))) >= 0.75 {
				out.Misconceptions = append(out.Misconceptions, misconceptionOut{m.id, s})
				break
			}
		}
	}
	order := make([]int, len(out.Criteria))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return out.Criteria[order[i]].Level < out.Criteria[order[j]].Level })
	for _, i := range order[:min(2, len(order))] {
		c, co := rb.criteria[i], out.Criteria[i]
		why := fmt.Sprintf("%s reached level %d of 4", c.name, co.Level)
		for _, kp := range c.keyPoints {
			if kp.id == firstMissing(co.KeyPoints) {
				why += "; not yet explained: " + strings.TrimSuffix(kp.point, ".")
			}
		}
		out.FollowUps = append(out.FollowUps, followUpOut{
			Question:  fmt.Sprintf("Can you go deeper on %s, with a concrete example from a system you built?", strings.ToLower(c.name)),
			Criterion: c.id, Why: why + "."})
	}
	if len(order) > 0 {
		best, worst := rb.criteria[order[len(order)-1]], rb.criteria[order[0]]
		out.Feedback = fmt.Sprintf("Strongest on %s; weakest on %s. Explain the reasons and trade-offs behind each point, not only the terms.",
			strings.ToLower(best.name), strings.ToLower(worst.name))
	}
	if injection.MatchString(answer) {
		out.Flags = append(out.Flags, "prompt_injection_suspected")
	}
	if n := len(sents); n > 0 && len(words(answer))/n < 4 {
		out.Flags = append(out.Flags, "keyword_list")
	}
	return out
}

func firstMissing(kps []keyPointOut) string {
	for _, kp := range kps {
		if kp.Status != "covered" {
			return kp.ID
		}
	}
	return ""
}

func list(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

// sentences splits s at sentence ends and blank lines; each piece is a
// verbatim substring of s (wrapped lines stay in their sentence).
func sentences(s string) []string {
	var out []string
	start := 0
	rs := []rune(s)
	emit := func(end int) {
		if t := strings.TrimSpace(string(rs[start:end])); len(strings.Fields(t)) >= 3 {
			out = append(out, t)
		}
		start = end
	}
	for i, r := range rs {
		switch {
		case r == '\n' && i+1 < len(rs) && rs[i+1] == '\n':
			emit(i + 1)
		case (r == '.' || r == '!' || r == '?') && (i+1 == len(rs) || unicode.IsSpace(rs[i+1])):
			emit(i + 1)
		}
	}
	emit(len(rs))
	return out
}

// bestSentences returns the (up to) k sentences that share the most words
// with cw, at least two, in answer order.
func bestSentences(sents []string, cw map[string]bool, k int) []string {
	type scored struct{ i, n int }
	var ss []scored
	for i, s := range sents {
		n := 0
		for w := range set(words(s)) {
			if cw[w] {
				n++
			}
		}
		if n >= 2 {
			ss = append(ss, scored{i, n})
		}
	}
	sort.SliceStable(ss, func(a, b int) bool { return ss[a].n > ss[b].n })
	ss = ss[:min(k, len(ss))]
	sort.Slice(ss, func(a, b int) bool { return ss[a].i < ss[b].i })
	out := []string{}
	for _, s := range ss {
		out = append(out, sents[s.i])
	}
	return out
}

var stop = set(strings.Fields(`the and for with that this from are was were but not you your its into
than then them they their there what when which while who whom why how can could would should will
also only each other more most such some any all both does did has have had been being about over
under between without within across per via one two level answer names explains says`))

// words returns the lower-case words of s of three letters or more,
// without stop words.
func words(s string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if len(w) >= 3 && !stop[w] {
			out = append(out, w)
		}
	}
	return out
}

func set(ws []string) map[string]bool {
	m := make(map[string]bool, len(ws))
	for _, w := range ws {
		m[w] = true
	}
	return m
}

// share is the fraction of a's words that b has.
func share(a, b map[string]bool) float64 {
	if len(a) == 0 {
		return 0
	}
	n := 0
	for w := range a {
		if b[w] {
			n++
		}
	}
	return float64(n) / float64(len(a))
}

func hash(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}
