# Assay's developer commands. `make test` is what CI runs (through .ci/run).
GO      ?= go
PKGS    ?= ./...
STATICCHECK_VERSION ?= v0.8.2

.PHONY: run test test-go lint vet fmt staticcheck bench bench-go build rubrics-lint fuzz

run: ## serve with zero configuration on :8080
	$(GO) run ./cmd/api

build:
	$(GO) build -o bin/api ./cmd/api

test: rubrics-lint vet ## rubric lint, vet, and the whole test suite against a throwaway PostgreSQL
	scripts/testdb.sh run -- $(MAKE) --no-print-directory test-go

test-go:
	$(GO) test -count=1 -race $(PKGS)

rubrics-lint:
	$(GO) run ./cmd/api rubrics lint rubrics

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

lint: vet rubrics-lint staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

bench: ## load benchmark (throwaway PostgreSQL, mock LLM, API, loadgen) + Go benchmarks; updates docs/performance.md (~8 min)
	scripts/bench.sh

bench-go: ## Go benchmarks only (the PostgreSQL ones need TEST_DATABASE_URL)
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

FUZZTIME ?= 30s
fuzz: ## short fuzzing runs of the request decoder and the rubric parser
	$(GO) test -run '^$$' -fuzz '^FuzzCreateEvaluation$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./internal/httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzParseRubric$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./internal/rubric
