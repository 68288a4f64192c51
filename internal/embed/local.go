// Package embed turns text into vectors for rubric retrieval. Local is the
// built-in embedder: pure Go, deterministic, no download. The OpenAI-
// compatible embedder lives beside it.
package embed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strings"

	"github.com/assay-dev/assay/internal/rubric"
	"github.com/assay-dev/assay/internal/text"
)

// LocalDims is the dimension of the local embedder's vectors. 1024 hashed
// buckets keep collisions rare for a vocabulary of a few thousand stems
// while staying well under pgvector's 2,000-dimension HNSW limit.
const LocalDims = 1024

// Feature weights relative to a unigram. Bigrams reward matching phrases
// ("token bucket"); character n-grams catch spelling variants and word
// forms the stemmer misses ("idempotency" and "idempotent").
const (
	bigramWeight = 0.6
	charWeight   = 0.5
	charN        = 4
)

// Local is a feature-hashing embedder: stemmed words, word bigrams and
// character 4-grams, weighted by inverse document frequency learnt from a
// fixed corpus, hashed into LocalDims signed buckets and L2-normalised.
// Cosine similarity of two vectors is then a tf-idf similarity that also
// credits shared phrases and word fragments.
type Local struct {
	idf     map[string]float64
	maxIDF  float64
	model   string
	synonym map[string]string
}

// NewLocal builds the embedder with idf weights from corpus (one document per
// element). The model name carries a hash of the corpus, so vectors made with
// different weights are never compared with each other.
func NewLocal(corpus []string) *Local {
	df := map[string]int{}
	h := sha256.New()
	for _, doc := range corpus {
		h.Write([]byte(doc))
		h.Write([]byte{0})
		seen := map[string]bool{}
		for _, tok := range text.Tokenize(doc) {
			for _, f := range append(charGrams(tok.Word), tok.Stem) {
				if !seen[f] {
					seen[f] = true
					df[f]++
				}
			}
		}
	}
	n := float64(len(corpus))
	l := &Local{idf: make(map[string]float64, len(df)), synonym: synonyms()}
	l.maxIDF = math.Log((n+1)/1) + 1
	for s, d := range df {
		l.idf[s] = math.Log((n+1)/float64(d+1)) + 1
	}
	l.model = "local-v1-" + hex.EncodeToString(h.Sum(nil))[:8]
	return l
}

// Model names the embedder and its weights.
func (l *Local) Model() string { return l.model }

// Dims is the vector dimension.
func (l *Local) Dims() int { return LocalDims }

// Embed returns one vector per text.
func (l *Local) Embed(_ context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		out[i] = l.vector(t)
	}
	return out, nil
}

func (l *Local) weight(stem string) float64 {
	if w, ok := l.idf[stem]; ok {
		return w
	}
	// A word the corpus never uses says little about which rubric matches,
	// but it should still make off-topic text unlike every rubric.
	return l.maxIDF
}

func (l *Local) vector(s string) []float32 {
	v := make([]float64, LocalDims)
	var prev string
	var gram [64]byte // "^word$" for short words, without allocating
	for _, tok := range text.Tokenize(s) {
		if text.IsStop(tok.Word) {
			prev = ""
			continue
		}
		stem := tok.Stem
		if syn, ok := l.synonym[stem]; ok {
			stem = syn
		}
		w := l.weight(stem)
		add(v, fnvString(fnvString(fnvOffset, "w:"), stem), w)
		if prev != "" {
			h := fnvString(fnvString(fnvString(fnvString(fnvOffset, "b:"), prev), " "), stem)
			add(v, h, bigramWeight*(w+l.weight(prev))/2)
		}
		prev = stem
		// The character n-grams of "^word$", as charGrams makes them.
		mw := append(append(append(gram[:0], '^'), tok.Word...), '$')
		if len(mw) <= charN+1 {
			continue
		}
		for i := 0; i+charN <= len(mw); i++ {
			g := mw[i : i+charN]
			// string(g) as a map key does not allocate.
			add(v, fnvBytes(fnvString(fnvOffset, "c:"), g), charWeight*l.weightBytes(g))
		}
	}
	var norm float64
	for _, x := range v {
		norm += x * x
	}
	out := make([]float32, LocalDims)
	if norm == 0 {
		return out
	}
	norm = math.Sqrt(norm)
	for i, x := range v {
		out[i] = float32(x / norm)
	}
	return out
}

// weightBytes is weight for a feature held in a byte slice.
func (l *Local) weightBytes(f []byte) float64 {
	if w, ok := l.idf[string(f)]; ok {
		return w
	}
	return l.maxIDF
}

// charGrams returns the character n-grams of a word marked at both ends,
// or none for words too short to have fragments worth matching.
func charGrams(word string) []string {
	w := "^" + word + "$"
	if len(w) <= charN+1 {
		return nil
	}
	out := make([]string, 0, len(w)-charN+1)
	for i := 0; i+charN <= len(w); i++ {
		out = append(out, w[i:i+charN])
	}
	return out
}

// FNV-1a, 64 bits (hash/fnv's New64a), computed over the parts of a
// feature name so that the name is never built.
const (
	fnvOffset uint64 = 14695981039346656037
	fnvPrime  uint64 = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func fnvBytes(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// add puts weight w for the feature whose FNV-1a hash is x into its bucket,
// with a sign taken from the hash so that colliding features tend to
// cancel rather than pile up.
func add(v []float64, x uint64, w float64) {
	i := int(x % LocalDims)
	if x>>63 == 1 {
		w = -w
	}
	v[i] += w
}

// synonyms maps abbreviations and near-synonyms onto one stem, so "db"
// meets "database" and "throttling" meets "rate limit".
func synonyms() map[string]string {
	pairs := map[string]string{
		"db": "database", "dbs": "database", "rdbms": "sql", "nosql": "nosql",
		"throttle": "limit", "throttling": "limit", "ratelimit": "limit",
		"authn": "authentication", "authz": "authorization",
		"paging": "pagination", "paginate": "pagination", "paginated": "pagination",
		"sharded": "shard", "sharding": "shard",
		"k8s": "kubernetes",
	}
	out := make(map[string]string, len(pairs))
	for k, v := range pairs {
		out[text.Stem(k)] = text.Stem(v)
	}
	return out
}

// Cosine returns the cosine similarity of two vectors of equal length.
func Cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

// NewLocalForBank builds the local embedder with the rubrics' texts as the
// idf corpus, one document per rubric. The server passes the embedded seed
// bank, so the weights are fixed per binary and stored vectors stay
// comparable however the served bank changes.
func NewLocalForBank(bank []rubric.Rubric) *Local {
	docs := make([]string, len(bank))
	for i, r := range bank {
		docs[i] = strings.Join(r.SearchTexts(), "\n")
	}
	return NewLocal(docs)
}
