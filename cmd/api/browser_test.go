package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/assay-dev/assay/internal/auth"
	"github.com/assay-dev/assay/internal/config"
)

// The browser tests drive the practice page in headless Chromium (Debian's
// package chromium) against the real server. They skip when Chromium is
// missing, except in CI (CI=true), where .ci/run installs it.

const rateLimitingAnswer = "🚦 Rate limiting caps how many requests a client may send per time window, to protect the service from abuse. " +
	"I would use a token bucket per API key: it refills at a steady rate and allows short bursts. " +
	"The counters live in Redis so all replicas share them, and a client over the limit gets 429 Too Many Requests with a Retry-After header."

// followUpAnswer holds markup that must show as text, never as elements.
const followUpAnswer = "I keep the counters in Redis and update them atomically with a Lua script, so that ten replicas share one limit <b>exactly</b>. " +
	"If Redis is slow or down, each replica falls back to a local in-memory limiter with the limit divided by the number of instances, which is approximate but keeps the API up."

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("ASSAY_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium is missing: .ci/run installs it with apt-get install -y chromium")
	}
	t.Skip("Chromium is not installed (apt-get install -y chromium); skipping the browser test")
	return ""
}

// screenshotDir is testoutput/browser at the root of the repository.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "testoutput", "browser"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browserTab is one headless Chromium with one tab. It records uncaught
// exceptions and security errors (a Content-Security-Policy violation) of
// the page, which fail the test.
type browserTab struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string
}

func newBrowser(t *testing.T, width, height int) *browserTab {
	t.Helper()
	exe := chromiumPath(t)
	profile, err := os.MkdirTemp("", "assay-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(width, height),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		_ = os.RemoveAll(profile)
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser without a deadline
		t.Fatalf("starting Chromium (%s): %v", exe, err)
	}
	b := &browserTab{t: t}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Source == "security" {
				b.mu.Lock()
				b.problems = append(b.problems, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m.Text))
				b.mu.Unlock()
			}
		}
	}()
	tctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel)
	b.ctx = tctx
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, p := range b.problems {
			t.Errorf("page error: %s", p)
		}
	})
	return b
}

// do runs steps; on failure it saves a screenshot for the post-mortem.
func (b *browserTab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.failShot()
		b.t.Fatalf("browser: %v", err)
	}
}

// waitFor polls a JavaScript expression until it is true.
func (b *browserTab) waitFor(expr string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		b.failShot()
		b.t.Fatalf("waiting for %s: %v", expr, err)
	}
}

func (b *browserTab) failShot() {
	if buf, err := chromedp.Run(context.WithoutCancel(b.ctx), chromedp.FullScreenshot(100)); err == nil {
		name := "failed-" + strings.ReplaceAll(b.t.Name(), "/", "-") + ".png"
		_ = os.WriteFile(filepath.Join(screenshotDir(b.t), name), buf, 0o644)
		b.t.Logf("screenshot of the failure: testoutput/browser/%s", name)
	}
}

// screenshot writes testoutput/browser/NAME.png, the whole page.
func (b *browserTab) screenshot(name string) {
	b.t.Helper()
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(screenshotDir(b.t), name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

func evalJS[T any](b *browserTab, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.failShot()
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

func (b *browserTab) text(sel string) string {
	b.t.Helper()
	return evalJS[string](b, fmt.Sprintf(`(document.querySelector(%q) || {textContent: "(missing)"}).textContent`, sel))
}

func (b *browserTab) activeID() string {
	return evalJS[string](b, `document.activeElement ? document.activeElement.id : ""`)
}

// TestBrowserPractice walks the page as a candidate would: search the bank,
// pick the rate-limiting question, submit an empty answer, answer, read the
// grading, answer a follow-up, and read the page on a 375 px phone.
func TestBrowserPractice(t *testing.T) {
	b := newBrowser(t, 1280, 900)
	base, _ := startServer(t, nil)

	b.do(chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#bank-list .bank-item")))
	if got := evalJS[string](b, `document.title`); !strings.Contains(got, "Assay") {
		t.Errorf("title = %q", got)
	}

	// Search and pick.
	b.do(
		chromedp.SendKeys(chromedp.ID("search-input"), "rate limiting"),
		chromedp.Click(chromedp.CSS("#search-form button[type=submit]")),
	)
	b.waitFor(`document.getElementById("bank-status").textContent.includes("match")`)
	if got := evalJS[string](b, `document.querySelector("#bank-list .bank-item").dataset.rubricId`); got != "api-rate-limiting" {
		t.Errorf("first search hit = %q, want api-rate-limiting", got)
	}
	b.do(chromedp.Click(chromedp.CSS(`#bank-list .bank-item[data-rubric-id="api-rate-limiting"]`)))
	if got := b.text("#picked-question"); got != "What is rate limiting and how do you implement it?" {
		t.Errorf("picked question = %q", got)
	}
	if id := b.activeID(); id != "answer-input" {
		t.Errorf("focus after picking is on %q, want the answer field", id)
	}

	// An empty answer: the API's problem detail and field error show.
	b.do(chromedp.Click(chromedp.ID("submit-answer")), chromedp.WaitVisible(chromedp.ID("grade-error")))
	errText := b.text("#grade-error")
	for _, want := range []string{"answer must not be empty", "A field is invalid (422)"} {
		if !strings.Contains(errText, want) {
			t.Errorf("error box %q lacks %q", errText, want)
		}
	}
	if got := evalJS[string](b, `document.getElementById("answer-input").getAttribute("aria-invalid") || ""`); got != "true" {
		t.Errorf("answer field aria-invalid = %q after the field error", got)
	}
	b.screenshot("error")

	// Answer and grade; record whether the busy state showed.
	evalJS[bool](b, `window.sawBusy = false; new MutationObserver(() => {
		if (document.getElementById("answer-form").getAttribute("aria-busy") === "true" &&
		    document.getElementById("grade-status").textContent.includes("Grading")) window.sawBusy = true;
	}).observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true}); true`)
	b.do(
		chromedp.SendKeys(chromedp.ID("answer-input"), rateLimitingAnswer),
		chromedp.Click(chromedp.ID("submit-answer")),
		chromedp.WaitVisible(chromedp.CSS("#result .score-value")),
	)
	if !evalJS[bool](b, `window.sawBusy`) {
		t.Error("no Grading… state with aria-busy showed while grading ran")
	}
	if id := b.activeID(); id != "result-heading" {
		t.Errorf("focus after grading is on %q, want the result heading", id)
	}
	if !evalJS[bool](b, `document.getElementById("grade-error").hidden`) {
		t.Error("the error box still shows after a good answer")
	}
	ev := latestEvaluation(t, base)
	if got, want := b.text("#result .score-value"), fmt.Sprintf("%.1f", ev.Score.Overall); got != want {
		t.Errorf("score shown = %q, want %q", got, want)
	}
	if got := b.text("#result .band"); got == "" {
		t.Error("no band shown")
	}
	if n := evalJS[int](b, `document.querySelectorAll("#result .criterion").length`); n != len(ev.Criteria) {
		t.Errorf("%d criteria shown, want %d", n, len(ev.Criteria))
	}
	if got, want := b.text("#result .criterion .level"), fmt.Sprintf("Level %d of 4", ev.Criteria[0].Level); got != want {
		t.Errorf("first criterion level = %q, want %q", got, want)
	}
	if got := b.text("#result .answer-text"); got != rateLimitingAnswer {
		t.Errorf("answer shown = %q, want the answer as typed", got)
	}
	marks := evalJS[[]string](b, `Array.from(document.querySelectorAll("#result .answer-text mark"), m => m.textContent)`)
	if len(marks) == 0 {
		t.Fatal("no evidence highlighted in the answer")
	}
	for _, m := range marks {
		if !strings.Contains(rateLimitingAnswer, m) {
			t.Errorf("mark %q is not a substring of the answer", m)
		}
		// The emoji before the first sentence is two UTF-16 units but one
		// code point: a mark cut at UTF-16 indices would not lie inside a quote.
		if !ev.hasQuoteContaining(m) {
			t.Errorf("mark %q is not part of any evidence quote", m)
		}
	}
	b.screenshot("result")

	// Answer the first follow-up question with one click.
	if len(ev.FollowUps) == 0 {
		t.Fatal("the evaluation has no follow-up questions")
	}
	fuQuestion := b.text("#result .follow-up .question")
	if fuQuestion != ev.FollowUps[0].Question {
		t.Errorf("first follow-up shown = %q, want %q", fuQuestion, ev.FollowUps[0].Question)
	}
	b.do(chromedp.Click(chromedp.CSS("#result .answer-follow-up")))
	if got := b.text("#picked-question"); got != fuQuestion {
		t.Errorf("question to answer = %q, want the follow-up %q", got, fuQuestion)
	}
	if id := b.activeID(); id != "answer-input" {
		t.Errorf("focus after choosing a follow-up is on %q, want the answer field", id)
	}
	b.do(
		chromedp.SendKeys(chromedp.ID("answer-input"), followUpAnswer),
		chromedp.Click(chromedp.ID("submit-answer")),
	)
	b.waitFor(`document.querySelectorAll("#result .thread .turn").length === 2`)
	turns := evalJS[[]string](b, `Array.from(document.querySelectorAll("#result .thread .turn"), t => t.textContent)`)
	if !strings.Contains(turns[0], "What is rate limiting and how do you implement it?") || !strings.Contains(turns[1], fuQuestion) {
		t.Errorf("interview thread = %q, want the question then the follow-up", turns)
	}
	child := latestEvaluation(t, base)
	if child.FollowUpOf == nil || child.FollowUpOf.EvaluationID != ev.ID || child.FollowUpOf.Index != 0 {
		t.Errorf("follow_up_of = %+v, want evaluation %s index 0", child.FollowUpOf, ev.ID)
	}
	if n := evalJS[int](b, `document.querySelectorAll("#result .answer-text b, #result .answer-text script").length`); n != 0 {
		t.Error("markup in the answer became elements")
	}
	if got := b.text("#result .answer-text"); !strings.Contains(got, "<b>exactly</b>") {
		t.Errorf("answer shown = %q, want the markup as text", got)
	}
	b.waitFor(`document.querySelectorAll("#history-list .history-item").length === 2`)
	b.screenshot("thread")

	// A phone: nothing may scroll sideways, with a result on the page or not.
	b.do(chromedp.EmulateViewport(375, 812))
	b.waitFor(`window.innerWidth === 375`)
	if w := evalJS[int](b, `document.scrollingElement.scrollWidth`); w > 375 {
		t.Errorf("at 375 px with a result, scrollWidth = %d", w)
	}
	b.screenshot("mobile-result")
	b.do(chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#bank-list .bank-item")))
	if w := evalJS[int](b, `document.scrollingElement.scrollWidth`); w > 375 {
		t.Errorf("at 375 px, scrollWidth = %d", w)
	}
	b.screenshot("mobile")

	// Browse pages with the cursor.
	b.waitFor(`!document.getElementById("bank-more").hidden`)
	b.do(chromedp.Click(chromedp.ID("bank-more")))
	b.waitFor(`document.querySelectorAll("#bank-list .bank-item").length === 20 && document.getElementById("bank-more").hidden`)
}

// TestBrowserAPIKey checks that the page asks for a key on a 401, keeps it
// in sessionStorage only and sends it as a bearer token.
func TestBrowserAPIKey(t *testing.T) {
	b := newBrowser(t, 1024, 800)
	base, secret := startKeyedServer(t)

	b.do(chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("key-section")))
	if got := b.text("#key-reason"); !strings.Contains(got, "send an API key as Authorization: Bearer KEY") {
		t.Errorf("key prompt says %q, want the problem's detail", got)
	}
	if id := b.activeID(); id != "key-input" {
		t.Errorf("focus is on %q, want the key field", id)
	}

	b.do(chromedp.SendKeys(chromedp.ID("key-input"), "assay_nosuchkey0_secret"), chromedp.Click(chromedp.CSS("#key-form button[type=submit]")))
	b.waitFor(`document.getElementById("key-reason").textContent.startsWith("The key was refused")`)
	if got := evalJS[string](b, `sessionStorage.getItem("assay.apiKey") || ""`); got != "" {
		t.Errorf("a refused key stays in sessionStorage: %q", got)
	}
	b.screenshot("api-key")

	b.do(chromedp.SendKeys(chromedp.ID("key-input"), secret), chromedp.Click(chromedp.CSS("#key-form button[type=submit]")))
	b.do(chromedp.WaitVisible(chromedp.CSS("#bank-list .bank-item")), chromedp.WaitVisible(chromedp.ID("key-status")))
	b.waitFor(`document.getElementById("history-status").textContent.includes("No evaluations yet")`)
	if got := evalJS[string](b, `sessionStorage.getItem("assay.apiKey") || ""`); got != secret {
		t.Errorf("sessionStorage key = %q, want the key", got)
	}
	if n := evalJS[int](b, `localStorage.length`); n != 0 {
		t.Errorf("localStorage holds %d items, want none", n)
	}
	if !evalJS[bool](b, `document.getElementById("key-section").hidden`) {
		t.Error("the key prompt still shows after a good key")
	}
}

// startKeyedServer wires the app as serve does, with ASSAY_REQUIRE_AUTH and
// one grade key, and returns its URL and the key.
func startKeyedServer(t *testing.T) (string, string) {
	t.Helper()
	cfg, err := config.Load(nil, env(map[string]string{"ASSAY_REQUIRE_AUTH": "true"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := newApp(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	k, secret, err := auth.Mint("browser-test", []string{auth.ScopeGrade}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.keys.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.handler)
	t.Cleanup(srv.Close)
	return srv.URL, secret
}

type shownEvaluation struct {
	ID    string
	Score struct {
		Overall float64
		Band    string
	}
	Criteria []struct {
		Level    int
		Evidence []struct{ Quote string }
	}
	Misconceptions []struct {
		Evidence *struct{ Quote string }
	}
	FollowUps []struct {
		Question string
	} `json:"follow_ups"`
	FollowUpOf *struct {
		EvaluationID string `json:"evaluation_id"`
		Index        int
	} `json:"follow_up_of"`
}

func (e shownEvaluation) hasQuoteContaining(s string) bool {
	for _, c := range e.Criteria {
		for _, ev := range c.Evidence {
			if strings.Contains(ev.Quote, s) {
				return true
			}
		}
	}
	for _, m := range e.Misconceptions {
		if m.Evidence != nil && strings.Contains(m.Evidence.Quote, s) {
			return true
		}
	}
	return false
}

// latestEvaluation reads the newest evaluation from the API.
func latestEvaluation(t *testing.T, base string) shownEvaluation {
	t.Helper()
	resp, err := http.Get(base + "/v1/evaluations?limit=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct{ Items []shownEvaluation }
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || len(page.Items[0].Criteria) == 0 {
		t.Fatalf("latest evaluation = %+v, want one with criteria", page.Items)
	}
	return page.Items[0]
}
