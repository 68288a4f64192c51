package web

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// TestAssets checks the static rules of the page: every file index.html
// links is embedded, nothing comes from another origin, no inline script
// (the server's Content-Security-Policy forbids it), and no API that parses
// a string as HTML or code.
func TestAssets(t *testing.T) {
	index, err := fs.ReadFile(FS, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(string(index), -1)
	if len(refs) < 3 {
		t.Fatalf("index.html links %d files, want the script, the style sheet and the icon", len(refs))
	}
	for _, m := range refs {
		ref := m[1]
		switch {
		case strings.HasPrefix(ref, "#"), ref == "/v1/openapi.json":
		case strings.HasPrefix(ref, "/assets/"):
			if _, err := fs.Stat(FS, strings.TrimPrefix(ref, "/")); err != nil {
				t.Errorf("index.html links %s, which is not embedded", ref)
			}
		default:
			t.Errorf("index.html links %s: only /assets/ files, anchors and the API document are allowed", ref)
		}
	}
	if regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]|\son[a-z]+=`).Match(index) {
		t.Error("index.html has an inline script or event handler attribute")
	}

	forbidden := regexp.MustCompile(`\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(|https?://`)
	err = fs.WalkDir(FS, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(FS, path)
		if err != nil {
			return err
		}
		if !strings.HasSuffix(path, ".js") && !strings.HasSuffix(path, ".css") {
			return nil
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := forbidden.FindString(line); m != "" && !strings.HasPrefix(strings.TrimSpace(line), "//") {
				t.Errorf("%s:%d uses %s", path, i+1, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
