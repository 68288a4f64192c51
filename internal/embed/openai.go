package embed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	openai "github.com/sashabaranov/go-openai"

	"github.com/assay-dev/assay/internal/fault"
)

// DefaultOpenAIBatch is how many texts one embeddings request carries; the
// API accepts up to 2048 inputs per request.
const DefaultOpenAIBatch = 256

// OpenAI embeds through an OpenAI-compatible /v1/embeddings endpoint.
type OpenAI struct {
	client *openai.Client
	model  string
	// BatchSize is how many texts go in one request; 0 means
	// DefaultOpenAIBatch.
	BatchSize int
}

// NewOpenAI returns an embedder for model through client.
func NewOpenAI(client *openai.Client, model string) *OpenAI {
	return &OpenAI{client: client, model: model}
}

// Model names the embedder: "openai:" and the model, so that vectors of
// another model (or of the local embedder) are never compared with these.
func (o *OpenAI) Model() string { return "openai:" + o.model }

// Embed returns one vector per text, in order, in batches of BatchSize.
func (o *OpenAI) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	batch := o.BatchSize
	if batch <= 0 {
		batch = DefaultOpenAIBatch
	}
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += batch {
		in := texts[start:min(start+batch, len(texts))]
		// The API rejects empty strings; a space embeds as "nothing".
		clean := make([]string, len(in))
		for i, t := range in {
			if strings.TrimSpace(t) == "" {
				t = " "
			}
			clean[i] = t
		}
		resp, err := o.client.CreateEmbeddings(ctx, openai.EmbeddingRequestStrings{
			Input: clean, Model: openai.EmbeddingModel(o.model),
		})
		if err != nil {
			return nil, embedFault(ctx, err)
		}
		if len(resp.Data) != len(in) {
			return nil, fault.Wrap(fmt.Errorf("%d embeddings for %d inputs", len(resp.Data), len(in)),
				fault.Upstream, "the embedding model returned an unusable response")
		}
		vecs := make([][]float32, len(in))
		for _, d := range resp.Data {
			if d.Index < 0 || d.Index >= len(in) || vecs[d.Index] != nil || len(d.Embedding) == 0 {
				return nil, fault.Wrap(fmt.Errorf("bad or repeated embedding index %d", d.Index),
					fault.Upstream, "the embedding model returned an unusable response")
			}
			vecs[d.Index] = d.Embedding
		}
		out = append(out, vecs...)
	}
	return out, nil
}

// embedFault classifies a provider error as the LLM grader does: rate
// limits (429), overload (503) and unreachable endpoints are unavailable
// (retry later); other server errors, refusals and unreadable bodies are
// upstream failures; a cancelled caller's error wraps its context error.
// The provider's message is only the cause, never shown.
func embedFault(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fault.Wrap(fmt.Errorf("%w (%v)", ctx.Err(), err), fault.Unavailable, "the embedding was cancelled")
	}
	status := 0
	var ae *openai.APIError
	var re *openai.RequestError
	switch {
	case errors.As(err, &ae):
		status = ae.HTTPStatusCode
	case errors.As(err, &re):
		status = re.HTTPStatusCode
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case status == 0 && (errors.As(err, &se) || errors.As(err, &te)):
		return fault.Wrap(err, fault.Upstream, "the embedding model returned an unreadable response")
	case status == 0:
		return fault.Wrap(err, fault.Unavailable, "the embedding model cannot be reached; retry later")
	case status == http.StatusTooManyRequests:
		return fault.Wrap(err, fault.Unavailable, "the embedding model is rate limited; retry later")
	case status == http.StatusServiceUnavailable:
		return fault.Wrap(err, fault.Unavailable, "the embedding model is unavailable; retry later")
	case status >= 500:
		return fault.Wrap(err, fault.Upstream, fmt.Sprintf("the embedding model failed (HTTP %d)", status))
	default:
		return fault.Wrap(err, fault.Upstream, fmt.Sprintf("the embedding model rejected the request (HTTP %d)", status))
	}
}
