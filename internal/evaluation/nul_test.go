package evaluation

import "testing"

func TestHoldsNUL(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want bool
	}{
		{"none", []string{"plain", `back\slash`}, false},
		{"a NUL", []string{"ok", "a\x00b"}, true},
		{"the text \\u0000, not a NUL", []string{`\u0000`}, false},
		{"a backslash then a NUL", []string{"\\\x00"}, true},
		{"the text \\u0000 then a NUL", []string{`\u0000` + "\x00"}, true},
		{"nested", map[string][]string{"k": {"x\x00"}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := holdsNUL(tc.v); got != tc.want {
				t.Errorf("holdsNUL(%q) = %v, want %v", tc.v, got, tc.want)
			}
		})
	}
}
