package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// TestComposeFile loads docker-compose.yml with the compose-spec parser
// (there is no Docker engine here) and checks what users rely on.
func TestComposeFile(t *testing.T) {
	opts, err := cli.NewProjectOptions([]string{"../../docker-compose.yml"},
		cli.WithWorkingDirectory("../.."), cli.WithName("assay"), cli.WithProfiles([]string{"ollama"}),
		cli.WithEnv([]string{"OPENAI_API_KEY=", "OPENAI_BASE_URL=", "ASSAY_LLM_MODEL="}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	svc := func(name string) types.ServiceConfig {
		t.Helper()
		s, err := p.GetService(name)
		if err != nil {
			t.Fatalf("service %s: %v", name, err)
		}
		return s
	}

	pg := svc("postgres")
	if !strings.HasPrefix(pg.Image, "pgvector/pgvector:pg17") {
		t.Errorf("postgres image = %q, want pgvector/pgvector:pg17", pg.Image)
	}
	if pg.HealthCheck == nil || len(pg.HealthCheck.Test) == 0 || !strings.Contains(strings.Join(pg.HealthCheck.Test, " "), "pg_isready") {
		t.Errorf("postgres healthcheck = %+v, want pg_isready", pg.HealthCheck)
	}
	if len(pg.Volumes) == 0 || pg.Volumes[0].Type != types.VolumeTypeVolume || p.Volumes[pg.Volumes[0].Source].Name == "" {
		t.Errorf("postgres volumes = %+v, want a named volume", pg.Volumes)
	}

	api := svc("api")
	if api.Build == nil || api.Build.Dockerfile != "Dockerfile" {
		t.Errorf("api build = %+v, want the Dockerfile", api.Build)
	}
	if dep, ok := api.DependsOn["postgres"]; !ok || dep.Condition != types.ServiceConditionHealthy {
		t.Errorf("api depends_on = %+v, want postgres service_healthy", api.DependsOn)
	}
	if len(api.Ports) != 1 || api.Ports[0].Target != 8080 || api.Ports[0].Published != "8080" {
		t.Errorf("api ports = %+v, want 8080:8080", api.Ports)
	}
	if url := api.Environment["DATABASE_URL"]; url == nil || !strings.Contains(*url, "@postgres:5432/") {
		t.Errorf("api DATABASE_URL = %v, want the postgres service", url)
	}

	ollama := svc("ollama")
	if len(ollama.Profiles) != 1 || ollama.Profiles[0] != "ollama" {
		t.Errorf("ollama profiles = %v, want [ollama]", ollama.Profiles)
	}
}

// TestDockerfile checks the image is multi-stage, static and non-root.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []string{"AS build", "CGO_ENABLED=0", "COPY --from=build", "USER nonroot", "./cmd/api"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	froms := 0
	for _, line := range strings.Split(df, "\n") {
		if strings.HasPrefix(line, "FROM ") {
			froms++
		}
	}
	if froms < 2 {
		t.Errorf("Dockerfile has %d FROM lines, want a multi-stage build", froms)
	}
}
