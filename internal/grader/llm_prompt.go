package grader

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"sync"
	"text/template"
	"unicode"
	"unicode/utf8"

	openai "github.com/sashabaranov/go-openai"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/rubric"
	"github.com/assay-dev/assay/prompts"
)

// The template files a prompt set is made of.
const (
	systemTemplate = "system.tmpl"
	userTemplate   = "user.tmpl"
)

// repairText follows an invalid reply. It is part of the prompt version.
const repairText = `Your reply cannot be used:
%s
Reply again with the complete, corrected JSON object%s, grading every criterion exactly once.`

// SystemData is what system.tmpl receives: the rubric and how to reply.
// It holds nothing of the answer, so the system message of a rubric is the
// same for every answer (and cacheable by the provider).
type SystemData struct {
	Rubric   rubric.Rubric
	MaxLevel int
	// Format is the response format mode: json_schema, json_object or text.
	Format string
}

// UserData is what user.tmpl receives: the untrusted parts of a request.
type UserData struct {
	// Question is the question as the request asked it, when it differs
	// from the rubric's; empty otherwise. Neutralised like the answer.
	Question string
	// Answer is the candidate's answer with any tag that could close the
	// answer's delimiters neutralised; same length in runes as the answer.
	Answer string
	// Tag names the delimiters around the answer: answer_ and 8 hex digits
	// of the answer's SHA-256, which the answer cannot contain.
	Tag string
}

type promptSet struct {
	system, user *template.Template
	version      string
}

// loadPrompts parses the templates of fsys (the embedded ones when nil)
// and computes the prompt version from their contents.
func loadPrompts(fsys fs.FS) (*promptSet, error) {
	if fsys == nil {
		fsys = prompts.FS
	}
	h := sha256.New()
	ps := &promptSet{}
	for _, f := range []struct {
		name string
		dst  **template.Template
	}{{systemTemplate, &ps.system}, {userTemplate, &ps.user}} {
		b, err := fs.ReadFile(fsys, f.name)
		if err != nil {
			return nil, fmt.Errorf("reading prompt template: %w", err)
		}
		t, err := template.New(f.name).Option("missingkey=error").Parse(string(b))
		if err != nil {
			return nil, fmt.Errorf("parsing prompt template: %w", err)
		}
		*f.dst = t
		fmt.Fprintf(h, "%s\x00%s\x00", f.name, b)
	}
	h.Write([]byte(repairText))
	ps.version = hex.EncodeToString(h.Sum(nil))[:12]
	return ps, nil
}

// prompt is a rendered request, ready to send.
type prompt struct {
	rubric       rubric.Rubric
	system, user string
	format       string
	schema       json.RawMessage // nil unless format is json_schema
	tokens       int             // estimated prompt tokens

	// The answer's offsets tables are built when a reply is checked, not
	// while the call is in flight: a grading waiting on the model holds
	// the answer once, not four times over.
	text func() *answerText
}

// rubricPart is the part of a prompt that depends only on the rubric and
// the format, rendered once per rubric (the system prompt and the schema
// were a sixth of the server's CPU on the LLM path when rendered per
// request).
type rubricPart struct {
	system string
	schema json.RawMessage
	tokens int // estimated tokens of the system message and the schema
}

func (l *LLM) renderRubric(r *rubric.Rubric, format string) (*rubricPart, error) {
	var sys bytes.Buffer
	if err := l.prompts.system.Execute(&sys, SystemData{Rubric: *r, MaxLevel: rubric.MaxLevel, Format: format}); err != nil {
		return nil, err
	}
	rp := &rubricPart{system: sys.String()}
	rp.tokens = EstimateTokens(rp.system)
	if format == FormatJSONSchema {
		b, err := newSchema(*r).MarshalJSON()
		if err != nil {
			return nil, err
		}
		rp.schema = b
		rp.tokens += EstimateTokens(string(b))
	}
	return rp, nil
}

func (l *LLM) render(in evaluation.GradeInput, format string) (*prompt, error) {
	memo := l.rendered[format]
	if memo == nil {
		return nil, fmt.Errorf("response format %q is not json_schema, json_object or text", format)
	}
	rp, err := memo.Get(&in.Rubric, func(r *rubric.Rubric) (*rubricPart, error) { return l.renderRubric(r, format) })
	if err != nil {
		return nil, err
	}
	q := strings.TrimSpace(in.Question)
	if strings.EqualFold(q, strings.TrimSpace(in.Rubric.Question)) {
		q = ""
	}
	var usr bytes.Buffer
	ud := UserData{Question: neutralise(q), Answer: neutralise(in.Answer), Tag: answerTag(in.Answer)}
	if err := l.prompts.user.Execute(&usr, ud); err != nil {
		return nil, err
	}
	p := &prompt{rubric: in.Rubric, system: rp.system, user: usr.String(), format: format, schema: rp.schema}
	p.tokens = rp.tokens + EstimateTokens(p.user) + 3*2 + 3
	answer := in.Answer
	p.text = sync.OnceValue(func() *answerText { return newAnswerText(answer) })
	return p, nil
}

func (p *prompt) messages() []openai.ChatCompletionMessage {
	return []openai.ChatCompletionMessage{
		{Role: openai.ChatMessageRoleSystem, Content: p.system},
		{Role: openai.ChatMessageRoleUser, Content: p.user},
	}
}

// repairMessages continues the conversation with the invalid reply and what
// is wrong with it.
func (p *prompt) repairMessages(reply string, problems []string) []openai.ChatCompletionMessage {
	const maxReply = 12000
	if r := []rune(reply); len(r) > maxReply {
		reply = string(r[:maxReply])
	}
	if strings.TrimSpace(reply) == "" {
		reply = "(empty)"
	}
	var list strings.Builder
	for _, pr := range problems {
		list.WriteString("- " + pr + "\n")
	}
	fence := ""
	if p.format == FormatText {
		fence = " in a ```json fenced block"
	}
	return append(p.messages(),
		openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: reply},
		openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, Content: fmt.Sprintf(repairText, strings.TrimRight(list.String(), "\n"), fence)})
}

func answerTag(answer string) string {
	sum := sha256.Sum256([]byte(answer))
	return "answer_" + hex.EncodeToString(sum[:4])
}

// tagLike matches the start of anything that could open or close the
// answer's delimiters: "<answer_…>", "</answer…", "< /answer".
var tagLike = regexp.MustCompile(`(?i)<(\s*/?\s*answer)`)

// neutralise replaces the "<" of every tag-like "answer" in s by "‹", one
// rune for one, so offsets into the result are offsets into s.
func neutralise(s string) string {
	if !strings.Contains(s, "<") {
		return s // nearly every answer: no copy, no regexp
	}
	return tagLike.ReplaceAllString(s, "‹$1")
}

// answerText is the answer as received and as shown to the model; both
// have the same runes at the same offsets except neutralised tags.
type answerText struct {
	orig, shown string
	// normalised is built only when a quote is not found verbatim: most
	// are, and its tables cost more than the rest of the check.
	normalised func() normalisedText
}

// normalisedText is the shown answer with whitespace collapsed and
// typography folded, and where each of its runes came from.
type normalisedText struct {
	text   string
	toOrig []int32 // normalised rune index -> rune index of the answer
}

func newAnswerText(answer string) *answerText {
	a := &answerText{orig: answer, shown: neutralise(answer)}
	a.normalised = sync.OnceValue(func() normalisedText { return normalise(a.shown) })
	return a
}

func normalise(shown string) normalisedText {
	var (
		b     strings.Builder
		n     normalisedText
		space = false
		i     int32
	)
	b.Grow(len(shown))
	n.toOrig = make([]int32, 0, utf8.RuneCountInString(shown))
	for _, r := range shown {
		switch {
		case !unicode.IsSpace(r):
			space = false
			b.WriteRune(foldRune(r))
			n.toOrig = append(n.toOrig, i)
		case !space && b.Len() > 0:
			space = true
			b.WriteByte(' ')
			n.toOrig = append(n.toOrig, i)
		}
		i++
	}
	n.text = b.String()
	return n
}

// foldRune maps typographic variants that models often substitute onto
// their plain forms.
func foldRune(r rune) rune {
	switch r {
	case '‘', '’', '′', '‛':
		return '\''
	case '“', '”', '″', '„':
		return '"'
	case '–', '—', '‐', '‑', '−':
		return '-'
	case '‹':
		return '<'
	case '›':
		return '>'
	}
	return r
}

func normaliseQuote(q string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.TrimSpace(q) {
		if unicode.IsSpace(r) {
			if !space {
				b.WriteRune(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// EstimateTokens approximates the number of tokens of s in the BPE
// vocabularies of OpenAI's chat models (o200k_base, cl100k_base), without
// their multi-megabyte tables: a word of up to 7 letters is about one
// token and longer words one more per 7 letters; digits go in threes; a run
// of other symbols is a token per two; a line break is one. Against
// o200k_base on the seed rubrics' prompts it errs high by 14 to 21 percent
// (the tests pin this), which is what a ceiling wants.
func EstimateTokens(s string) int {
	n := 0
	letters, digits, symbols := 0, 0, 0
	flush := func() {
		if letters > 0 {
			n += 1 + (letters-1)/7
		}
		if digits > 0 {
			n += (digits + 2) / 3
		}
		if symbols > 0 {
			n += (symbols + 1) / 2
		}
		letters, digits, symbols = 0, 0, 0
	}
	for _, r := range s {
		switch {
		case r < 128 && unicode.IsLetter(r):
			if digits+symbols > 0 {
				flush()
			}
			letters++
		case unicode.IsDigit(r):
			if letters+symbols > 0 {
				flush()
			}
			digits++
		case unicode.IsLetter(r):
			// Non-ASCII letters rarely merge: count each.
			flush()
			n++
		case r == '\n':
			flush()
			n++
		case unicode.IsSpace(r):
			flush()
		default:
			if letters+digits > 0 {
				flush()
			}
			symbols++
		}
	}
	flush()
	return n
}
