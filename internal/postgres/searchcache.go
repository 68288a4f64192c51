package postgres

import (
	"context"
	"encoding/binary"
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/rubric"
)

// The store keeps two caches in memory, both exact:
//
//   - rubric bodies by (id, version). A version is never changed once
//     stored (rubric_versions is append-only), so a body read once can be
//     served again without reading and decoding its JSON.
//   - search results by (model, query vector, k), each with the bank stamp
//     read in the same snapshot as the search. A cached result is served
//     only after reading the stamp again and finding it unchanged: the
//     stamp changes whenever anything the search reads does (a rubric
//     added, versioned, archived or restored; a vector stored, replaced or
//     deleted alongside), whichever replica made the change. Reading it is
//     one cheap statement instead of the vector search and its body reads.
//
// Each cache holds at most cacheSize entries in two generations: when the
// current one is full it becomes the previous one and the oldest entries
// are dropped, so the hottest entries stay without any LRU bookkeeping.
const cacheSize = 4096

// maxStampRubrics is the largest bank for which search results are cached:
// the stamp reads every rubric's row, which for a larger bank would cost
// about as much as the search it saves.
const maxStampRubrics = 5000

// bankStampQuery reads the stamp. max(id) of rubric_embeddings changes with
// every stored vector (ids come from an identity column and only grow);
// every other change that affects a search changes a row of rubrics (its
// latest version or whether it is archived), which the count and the sum
// of row hashes see.
const bankStampQuery = `
	SELECT (SELECT coalesce(max(id), 0) FROM rubric_embeddings),
	       count(*),
	       coalesce(sum(hashtextextended(id || '/' || latest_version || '/' || (archived_at IS NULL)::text, 0)), 0)::text
	FROM rubrics`

// bankStamp identifies the state of everything SearchRubrics reads.
type bankStamp struct {
	maxVectorID int64
	rubrics     int64
	rowsHash    string
}

// queryRower is a pool or a transaction.
type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func readStamp(ctx context.Context, q queryRower) (bankStamp, error) {
	var st bankStamp
	err := q.QueryRow(ctx, bankStampQuery).Scan(&st.maxVectorID, &st.rubrics, &st.rowsHash)
	return st, err
}

// twoGen is a map bounded by two generations.
type twoGen[K comparable, V any] struct {
	// size bounds the entries of both generations; 0 means cacheSize.
	size      int
	mu        sync.Mutex
	cur, prev map[K]V
}

func (c *twoGen[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[k]; ok {
		return v, true
	}
	v, ok := c.prev[k]
	if ok {
		c.putLocked(k, v) // promote
	}
	return v, ok
}

func (c *twoGen[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, v)
}

func (c *twoGen[K, V]) putLocked(k K, v V) {
	if c.cur == nil {
		c.cur = map[K]V{}
	}
	size := c.size
	if size == 0 {
		size = cacheSize
	}
	if len(c.cur) >= size/2 {
		c.prev, c.cur = c.cur, map[K]V{}
	}
	c.cur[k] = v
}

type versionKey struct {
	id      string
	version int
}

// searchKey is a hash of the search's arguments; the entry keeps them, to
// be compared in full.
type searchKey uint64

type searchEntry struct {
	model string
	k     int
	vec   []float32
	stamp bankStamp
	out   []evaluation.Match
}

// caches are the store's in-memory caches.
type caches struct {
	seed     maphash.Seed
	bodies   twoGen[versionKey, rubric.Rubric]
	searches twoGen[searchKey, *searchEntry]
	// hits holds decoded evaluation-cache hits by evaluation id (batch.go).
	hits twoGen[string, evaluation.Evaluation]
	// large is whether the bank was too large to cache searches for when
	// checked (a time in Unix nanoseconds).
	large   atomic.Bool
	checked atomic.Int64
}

func newCaches() *caches {
	return &caches{seed: maphash.MakeSeed(), hits: twoGen[string, evaluation.Evaluation]{size: hitCacheSize}}
}

// hitCacheSize bounds the decoded cache hits: a decoded evaluation takes
// two to three times its 7 to 12 KB of JSON, so 512 are about 15 MB.
const hitCacheSize = 512

func (c *caches) key(model string, vec []float32, k int) searchKey {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(model)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(k))
	h.Write(b[:])
	// The vector's bytes as they are in memory, in one write: four bytes
	// per Write cost more than the rest of a cached search. The key only
	// lives in this process, so the byte order does not matter.
	if len(vec) > 0 {
		h.Write(unsafe.Slice((*byte)(unsafe.Pointer(&vec[0])), 4*len(vec)))
	}
	return searchKey(h.Sum64())
}

// lookup returns the cached search for the arguments, if any.
func (c *caches) lookup(key searchKey, model string, vec []float32, k int) (*searchEntry, bool) {
	e, ok := c.searches.get(key)
	if !ok || e.model != model || e.k != k || !slices.EqualFunc(e.vec, vec, sameBits) {
		return nil, false
	}
	return e, true
}

func sameBits(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }

// stampRecheck is how long a search skips reading the stamp after finding
// the bank too large to cache searches for.
const stampRecheck = 30 * time.Second

// wantStamp reports whether a search should read the stamp: always, unless
// the bank was found too large recently.
func (c *caches) wantStamp() bool {
	return !c.large.Load() || time.Since(time.Unix(0, c.checked.Load())) > stampRecheck
}

// cacheable records the bank's size from a stamp and reports whether it is
// small enough for its stamp to be cheap.
func (c *caches) cacheable(st bankStamp) bool {
	large := st.rubrics > maxStampRubrics
	c.large.Store(large)
	c.checked.Store(time.Now().UnixNano())
	return !large
}

// matches returns a copy of the entry's matches: callers may change the
// slice (they round similarities), never the rubrics.
func (e *searchEntry) matches() []evaluation.Match {
	if len(e.out) == 0 {
		return nil
	}
	return slices.Clone(e.out)
}
