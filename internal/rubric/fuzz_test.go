package rubric

import (
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/assay-dev/assay/rubrics"
)

// FuzzParseRubric feeds arbitrary bytes to Parse and whatever it returns to
// Check: neither may panic, Parse normalises what it returns, Check is
// deterministic, and every problem says what is wrong.
//
//	go test -run '^$' -fuzz FuzzParseRubric -fuzztime 30s -fuzzminimizetime 1s ./internal/rubric/
//
// Keep -fuzzminimizetime short: by default the fuzzer spends up to a minute
// minimising each new input, which for YAML of this size eats a short run.
func FuzzParseRubric(f *testing.F) {
	// A small valid rubric, the shape of the bank's files, and broken
	// variants of it. The bank's own files (about 9 KB each) are checked by
	// TestBankSeedsParse instead: as fuzz seeds they make the fuzzer spend
	// its time minimising large inputs rather than exploring.
	f.Add([]byte(validRubric))
	f.Add([]byte(strings.Replace(validRubric, "weight: 2", "weight: 0", 1)))
	f.Add([]byte(strings.Replace(validRubric, "depth: 3", "depth: 4", 1)))
	f.Add([]byte(strings.Replace(validRubric, "criterion: isolation", "criterion: nope", 1)))
	f.Add([]byte(strings.Replace(validRubric, "[rollback, all or nothing, partial write]", "[Rollback]", 1)))
	for _, s := range []string{
		``,
		`---`,
		`id: x`,
		"id: db-acid\nversion: 1\ntitle: t\nquestion: q\nlevel: mid\nreference_answer: r\n",
		"id: x\nunknown_field: 1\n",
		"id: [1, 2]\n",
		"version: 99999999999999999999999\n",
		"version: -1\ncriteria: []\n",
		"criteria:\n  - id: a\n    weight: .nan\n  - id: a\n    weight: -.inf\n",
		"criteria:\n  - id: A B\n    levels: [a, b]\n    key_points:\n      - id: k\n        terms: [UPPER, '', x]\n",
		"follow_ups:\n  - question: q\n    criterion: nope\n    depth: 7\n",
		"misconceptions:\n  - id: m\n    signals: [Upper Case]\n",
		"tags: [Not A Slug, ok-tag]\naliases: ['', '  ']\n",
		"a: &a [*a, *a]\n",
		"x: &x {a: 1}\ny: *x\n",
		"- just\n- a\n- list\n",
		"id: x\n---\nid: y\n",
		"title: !!binary aGVsbG8=\n",
		"question: \"\\xff\\xfe\"\n",
		"\xff\xfe\x00i\x00d\x00",
		"level: senior\nlevel: junior\n",
		"{id: x, criteria: [{id: a, key_points: [{id: k, terms: [a, b, c]}]}]}",
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			return
		}
		if r.Aliases == nil || r.Tags == nil {
			t.Errorf("Parse left aliases %v or tags %v nil", r.Aliases, r.Tags)
		}
		ps := Check(r)
		if again := Check(r); !reflect.DeepEqual(ps, again) {
			t.Errorf("Check is not deterministic:\n%v\n%v", ps, again)
		}
		for _, p := range ps {
			if p.Message == "" {
				t.Errorf("problem %+v has no message", p)
			}
		}
	})
}

// validRubric is a small rubric that passes Check.
const validRubric = `id: db-acid-mini
version: 1
title: ACID, briefly
question: Explain ACID properties.
aliases:
  - What does an ACID database promise?
tags: [database, transactions]
level: mid
reference_answer: |
  Atomicity is all or nothing; consistency keeps invariants; isolation hides
  concurrent transactions from each other; durability survives a crash.
criteria:
  - id: atomicity
    name: Atomicity
    weight: 2
    description: All or nothing.
    levels: [wrong, names it, defines it, explains rollback, explains undo logs]
    key_points:
      - id: all-or-nothing
        point: A failed transaction leaves no partial write.
        terms: [rollback, all or nothing, partial write]
      - id: crash
        point: A crash mid-transaction is rolled back.
        terms: [crash, undo log, recovery]
  - id: isolation
    name: Isolation
    weight: 1.5
    description: Concurrent transactions.
    levels: [wrong, names it, defines it, names levels, explains anomalies]
    key_points:
      - id: levels
        point: Isolation levels trade anomalies for throughput.
        terms: [read committed, serializable, snapshot]
      - id: anomalies
        point: Weaker levels allow anomalies.
        terms: [dirty read, phantom, write skew]
  - id: durability
    name: Durability
    weight: 1
    description: Commits survive crashes.
    levels: [wrong, names it, defines it, explains the log, explains fsync]
    key_points:
      - id: wal
        point: The write-ahead log is flushed before commit returns.
        terms: [write-ahead log, wal, fsync]
      - id: replicas
        point: Asynchronous replicas can lose commits on failover.
        terms: [replica, failover, asynchronous]
misconceptions:
  - id: cap
    claim: The C in ACID is the C in CAP.
    why: CAP consistency is linearizability across replicas.
    signals: [same as cap]
  - id: serializable-default
    claim: Databases default to serializable.
    why: Most default to read committed.
    signals: [default is serializable]
  - id: no-races
    claim: Transactions prevent every race.
    why: Read committed allows lost updates.
    signals: [no race conditions]
follow_ups:
  - question: How does the database roll back after a crash?
    criterion: atomicity
    depth: 2
  - question: What anomaly does repeatable read still allow?
    criterion: isolation
    depth: 3
  - question: What does fsync have to do with commit?
    criterion: durability
    depth: 2
  - question: Name the isolation levels.
    criterion: isolation
    depth: 1
`

// TestBankSeedsParse checks the fuzz target's invariants on the bank's own
// rubrics, which are too large to be useful fuzz seeds.
func TestBankSeedsParse(t *testing.T) {
	entries, err := fs.ReadDir(rubrics.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		data, err := fs.ReadFile(rubrics.FS, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		r, err := Parse(data)
		if err != nil {
			t.Errorf("%s: %v", e.Name(), err)
			continue
		}
		if ps := Check(r); len(ps) != 0 {
			t.Errorf("%s: %v", e.Name(), ps)
		}
	}
	r, err := Parse([]byte(validRubric))
	if err != nil {
		t.Fatal(err)
	}
	if ps := Check(r); len(ps) != 0 {
		t.Errorf("validRubric breaks rules: %v", ps)
	}
}
