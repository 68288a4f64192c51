package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"sort"
	"strconv"
	"strings"
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
// message, or the whole message. The opening tag is the first
// "<answer_HEX>", found by a scan rather than a regexp.
func extractAnswer(user string) string {
	tag, after := "", 0
	for i := 0; tag == ""; {
		j := strings.Index(user[i:], "<answer_")
		if j < 0 {
			return user
		}
		from := i + j + 1
		k := from + len("answer_")
		for k < len(user) && ('0' <= user[k] && user[k] <= '9' || 'a' <= user[k] && user[k] <= 'f') {
			k++
		}
		if k > from+len("answer_") && k < len(user) && user[k] == '>' {
			tag, after = user[from:k], k+1
		}
		i = from
	}
	end := strings.LastIndex(user, "</"+tag+">")
	if end < after {
		return user
	}
	a := strings.TrimPrefix(user[after:end], "\n")
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
//
// The answer is split into words once: each word that is in the rubric's
// vocabulary goes into the answer's bitset and its sentence's, and every
// share below is a count of common bits, the same counts as set
// intersections of words would give.
func grade(c *compiledRubric, answer string) gradingOut {
	rb := c.rb
	sp := sentenceSpans(answer, nil)
	bits := make(bitset, c.size*(1+len(sp))) // the answer's words, then each sentence's
	aw := bits[:c.size]
	sentence := func(i int) bitset { return bits[(1+i)*c.size:][:c.size] }
	nWords, si := 0, 0
	bp := bufPool.Get().(*[]byte)
	*bp = scanWords(answer, *bp, func(w []byte, start int) {
		id, known := c.ids[string(w)]
		if known && id < 0 {
			return // a stop word
		}
		nWords++
		if !known {
			return // in no rubric text, so in no share
		}
		aw.add(id)
		for si < len(sp) && sp[si].to <= start {
			si++
		}
		if si < len(sp) && sp[si].from <= start {
			sentence(si).add(id)
		}
	})
	out := gradingOut{Criteria: []criterionOut{}, Misconceptions: []misconceptionOut{}, FollowUps: []followUpOut{}, Flags: []string{}}
	// The nudge is FNV-1a of the answer, a zero byte, the id and a zero
	// byte; the answer's part is hashed once.
	hAnswer := fnvAdd(fnvOffset, answer)
	for i, cr := range rb.criteria {
		cc := c.criteria[i]
		overlap := share(cc.words, aw)
		level := 0
		if overlap > 0 {
			level = min(4, max(1, int(overlap*7)+int(fnvAdd(hAnswer, cr.id)%2)))
		}
		co := criterionOut{ID: cr.id, Evidence: []string{}, KeyPoints: make([]keyPointOut, 0, len(cr.keyPoints)), Level: level}
		if level > 0 {
			co.Evidence = bestSentences(answer, sp, sentence, cc.words.bits, 2)
		}
		var covered, missing []string
		for j, kp := range cr.keyPoints {
			st := "missing"
			switch s := share(cc.keyPoints[j], aw); {
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
		co.Comment = "Uses " + strconv.FormatFloat(100*overlap, 'f', 0, 64) + "% of this criterion's vocabulary; covers " +
			list(covered) + "; lacks " + list(missing) + "."
		out.Criteria = append(out.Criteria, co)
	}
	for i, m := range rb.misconceptions {
		mw := c.miscWords[i]
		for j, s := range sp {
			if mw.n > 0 && share(mw, sentence(j)) >= 0.75 {
				out.Misconceptions = append(out.Misconceptions, misconceptionOut{m.id, answer[s.from:s.to]})
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
		cr, co := rb.criteria[i], out.Criteria[i]
		why := cr.name + " reached level " + strconv.Itoa(co.Level) + " of 4"
		for _, kp := range cr.keyPoints {
			if kp.id == firstMissing(co.KeyPoints) {
				why += "; not yet explained: " + strings.TrimSuffix(kp.point, ".")
			}
		}
		out.FollowUps = append(out.FollowUps, followUpOut{
			Question:  "Can you go deeper on " + strings.ToLower(cr.name) + ", with a concrete example from a system you built?",
			Criterion: cr.id, Why: why + "."})
	}
	if len(order) > 0 {
		best, worst := rb.criteria[order[len(order)-1]], rb.criteria[order[0]]
		out.Feedback = "Strongest on " + strings.ToLower(best.name) + "; weakest on " + strings.ToLower(worst.name) +
			". Explain the reasons and trade-offs behind each point, not only the terms."
	}
	if *bp = appendLowerASCII((*bp)[:0], answer); mayInject(*bp) && injection.MatchString(answer) {
		out.Flags = append(out.Flags, "prompt_injection_suspected")
	}
	putBytes(bp)
	if n := len(sp); n > 0 && nWords/n < 4 {
		out.Flags = append(out.Flags, "keyword_list")
	}
	return out
}

// mayInject reports whether the answer, lower-cased in ASCII, has what
// every text that injection matches has: a verb and an object of its first
// alternative, or a piece of one of the phrases. The pieces leave out the
// letters that (?i) also matches with non-ASCII runes (k: the Kelvin sign,
// s: the long s), so that an ASCII search finds them whenever the regexp
// could match. Few answers pass, and the search costs far less than the
// regexp.
func mayInject(lower []byte) bool {
	return containsAny(lower, "ignore", "regard", "forget") && containsAny(lower, "truction", "rubric", "rule") ||
		containsAny(lower, "full mar", "an ai", "you are the grader")
}

func containsAny(b []byte, subs ...string) bool {
	for _, s := range subs {
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

func appendLowerASCII(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// share is the fraction of a's words that b has.
func share(a wordSet, b bitset) float64 {
	if a.n == 0 {
		return 0
	}
	return float64(a.bits.common(b)) / float64(a.n)
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

// bestSentences returns the (up to) k sentences that share the most words
// with cw, at least two, in answer order.
func bestSentences(answer string, sp []span, sentence func(int) bitset, cw bitset, k int) []string {
	type scored struct{ i, n int }
	var ss []scored
	for i := range sp {
		if n := sentence(i).common(cw); n >= 2 {
			ss = append(ss, scored{i, n})
		}
	}
	sort.SliceStable(ss, func(a, b int) bool { return ss[a].n > ss[b].n })
	ss = ss[:min(k, len(ss))]
	sort.Slice(ss, func(a, b int) bool { return ss[a].i < ss[b].i })
	out := []string{}
	for _, s := range ss {
		out = append(out, answer[sp[s.i].from:sp[s.i].to])
	}
	return out
}
