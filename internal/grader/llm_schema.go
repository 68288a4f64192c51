package grader

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/rubric"
)

// SchemaName names the structured output in the request.
const SchemaName = "assay_grading"

// modelFlags are the flags the model may raise; others are ignored.
var modelFlags = []string{evaluation.FlagPromptInjection, evaluation.FlagKeywordList}

// obj is a JSON object that keeps its keys in order, so the schema lists
// evidence before the level it supports (models write fields in order).
type obj []kv

type kv struct {
	k string
	v any
}

func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(e.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// schema is the JSON Schema of a grading of one rubric, in the subset that
// strict structured outputs accept: every property required, no additional
// properties, enums for every id and for the level.
type schema struct{ root obj }

func (s *schema) MarshalJSON() ([]byte, error) { return s.root.MarshalJSON() }

func object(props obj) obj {
	req := make([]string, len(props))
	for i, p := range props {
		req[i] = p.k
	}
	return obj{{"type", "object"}, {"properties", props}, {"required", req}, {"additionalProperties", false}}
}

func array(items any) obj { return obj{{"type", "array"}, {"items", items}} }

func str() obj { return obj{{"type", "string"}} }

func enum(vals []string) obj {
	if len(vals) == 0 {
		return str()
	}
	return obj{{"type", "string"}, {"enum", vals}}
}

func newSchema(r rubric.Rubric) *schema {
	var crit, kps, mis []string
	seen := map[string]bool{}
	for _, c := range r.Criteria {
		crit = append(crit, c.ID)
		for _, kp := range c.KeyPoints {
			if !seen[kp.ID] {
				seen[kp.ID] = true
				kps = append(kps, kp.ID)
			}
		}
	}
	for _, m := range r.Misconceptions {
		mis = append(mis, m.ID)
	}
	levels := make([]int, rubric.Levels)
	for i := range levels {
		levels[i] = i
	}
	criterion := object(obj{
		{"id", enum(crit)},
		{"evidence", array(str())},
		{"key_points", array(object(obj{
			{"id", enum(kps)},
			{"status", enum([]string{evaluation.Covered, evaluation.Partial, evaluation.Missing})},
		}))},
		{"comment", str()},
		{"level", obj{{"type", "integer"}, {"enum", levels}}},
	})
	return &schema{root: object(obj{
		{"criteria", array(criterion)},
		{"misconceptions", array(object(obj{{"id", enum(mis)}, {"quote", str()}}))},
		{"follow_ups", array(object(obj{{"question", str()}, {"criterion", enum(crit)}, {"why", str()}}))},
		{"feedback", str()},
		{"flags", array(enum(modelFlags))},
	})}
}

// output is the model's reply. Fields are lenient (levels as raw JSON) so
// that a reply in json_object or text mode can be checked and repaired
// rather than rejected by the decoder.
type output struct {
	Criteria []struct {
		ID        string          `json:"id"`
		Evidence  []string        `json:"evidence"`
		KeyPoints []outKeyPoint   `json:"key_points"`
		Comment   string          `json:"comment"`
		Level     json.RawMessage `json:"level"`
	} `json:"criteria"`
	Misconceptions []struct {
		ID    string `json:"id"`
		Quote string `json:"quote"`
	} `json:"misconceptions"`
	FollowUps []struct {
		Question  string `json:"question"`
		Criterion string `json:"criterion"`
		Why       string `json:"why"`
	} `json:"follow_ups"`
	Feedback string   `json:"feedback"`
	Flags    []string `json:"flags"`
}

type outKeyPoint struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

var fenced = regexp.MustCompile("(?s)```(?:json|JSON)?[ \t]*\r?\n(.*?)```")

// extractJSON returns the JSON object of a reply: the reply itself, or in
// text mode (and as a fallback) the first ```json fenced block, else the
// span from the first "{" to the last "}".
func extractJSON(content, format string) (string, error) {
	s := strings.TrimSpace(content)
	if format != FormatText && strings.HasPrefix(s, "{") {
		return s, nil
	}
	if m := fenced.FindStringSubmatch(s); m != nil {
		return strings.TrimSpace(m[1]), nil
	}
	i, j := strings.Index(s, "{"), strings.LastIndex(s, "}")
	if i < 0 || j < i {
		if format == FormatText {
			return "", errors.New("the reply has no ```json fenced block")
		}
		return "", errors.New("the reply is not a JSON object")
	}
	return s[i : j+1], nil
}

// parseOutput decodes a reply, describing a failure as a problem the model
// can fix.
func parseOutput(content, format string) (*output, error) {
	js, err := extractJSON(content, format)
	if err != nil {
		return nil, err
	}
	var out output
	if err := json.Unmarshal([]byte(js), &out); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("the reply is not valid JSON (%v at byte %d)", se, se.Offset)
		case errors.As(err, &te):
			return nil, fmt.Errorf("the field %q has the wrong type (%s, want %s)", te.Field, te.Value, te.Type)
		default:
			return nil, fmt.Errorf("the reply is not valid JSON (%v)", err)
		}
	}
	return &out, nil
}

// parseLevel accepts an integer, also written as 3.0.
func parseLevel(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, errors.New("has no level")
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || f != float64(int(f)) {
		return 0, fmt.Errorf("has level %s, which is not an integer", raw)
	}
	return int(f), nil
}
