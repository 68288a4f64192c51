// Package config reads Assay's settings from environment variables, with
// command-line flags taking precedence. Every setting, its variable and its
// default is listed in the README's configuration table.
package config

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Config is the whole configuration of the server.
type Config struct {
	Addr            string
	DatabaseURL     string
	RubricsDir      string
	MatchThreshold  float64
	MaxAnswerChars  int
	MaxBodyBytes    int64
	Grader          string
	LogLevel        string
	LogFormat       string
	ShutdownTimeout time.Duration
}

// setting is one configuration entry: its flag, variable, default and help.
type setting struct {
	flag, env, def, help string
	set                  func(string) error
}

func (c *Config) settings() []setting {
	return []setting{
		{"addr", "ASSAY_ADDR", ":8080", "listen address", str(&c.Addr)},
		{"database-url", "DATABASE_URL", "", "PostgreSQL URL; empty keeps everything in memory", str(&c.DatabaseURL)},
		{"rubrics-dir", "ASSAY_RUBRICS_DIR", "", "folder of rubric YAML files replacing the embedded bank", str(&c.RubricsDir)},
		{"match-threshold", "ASSAY_MATCH_THRESHOLD", "0.20", "lowest similarity at which a rubric matches a question", float(&c.MatchThreshold)},
		{"max-answer-chars", "ASSAY_MAX_ANSWER_CHARS", "10000", "longest answer accepted, in characters", integer(&c.MaxAnswerChars)},
		{"max-body-bytes", "ASSAY_MAX_BODY_BYTES", "262144", "largest request body accepted", int64v(&c.MaxBodyBytes)},
		{"grader", "ASSAY_GRADER", "", "default grader: heuristic, or llm when an LLM is configured", str(&c.Grader)},
		{"log-level", "ASSAY_LOG_LEVEL", "info", "debug, info, warn or error", str(&c.LogLevel)},
		{"log-format", "ASSAY_LOG_FORMAT", "text", "text or json", str(&c.LogFormat)},
		{"shutdown-timeout", "ASSAY_SHUTDOWN_TIMEOUT", "15s", "time in-flight requests get to finish on shutdown", duration(&c.ShutdownTimeout)},
	}
}

// Load reads the environment through getenv, then the flags in args.
func Load(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("api", flag.ContinueOnError)
	fs.SetOutput(usage)
	for _, s := range c.settings() {
		v := s.def
		if e := getenv(s.env); e != "" {
			v = e
		}
		if err := s.set(v); err != nil {
			return c, fmt.Errorf("%s=%q: %w", s.env, v, err)
		}
		fs.Func(s.flag, fmt.Sprintf("%s (env %s, default %q)", s.help, s.env, s.def), s.set)
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	switch {
	case c.MatchThreshold < 0 || c.MatchThreshold > 1:
		return fmt.Errorf("match threshold must be between 0 and 1")
	case c.MaxAnswerChars < 1:
		return fmt.Errorf("max answer chars must be positive")
	case c.MaxBodyBytes < 1024:
		return fmt.Errorf("max body bytes must be at least 1024")
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("log format must be text or json")
	}
	return nil
}

// Table returns the settings as rows of flag, variable, default and help,
// for the README and `api help`.
func Table() [][4]string {
	var c Config
	var rows [][4]string
	for _, s := range c.settings() {
		rows = append(rows, [4]string{"--" + s.flag, s.env, s.def, s.help})
	}
	return rows
}

func str(p *string) func(string) error { return func(v string) error { *p = v; return nil } }

func float(p *float64) func(string) error {
	return func(v string) (err error) { *p, err = strconv.ParseFloat(v, 64); return err }
}

func integer(p *int) func(string) error {
	return func(v string) (err error) { *p, err = strconv.Atoi(v); return err }
}

func int64v(p *int64) func(string) error {
	return func(v string) (err error) { *p, err = strconv.ParseInt(v, 10, 64); return err }
}

func duration(p *time.Duration) func(string) error {
	return func(v string) (err error) { *p, err = time.ParseDuration(v); return err }
}
