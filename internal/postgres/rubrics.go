package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/rubric"
)

// A rubric's content is stored as JSON in rubric_versions.body; the version
// column, not the body's version field, is authoritative.

const selectLatest = `
	SELECT v.version, v.body
	FROM rubrics r
	JOIN rubric_versions v ON v.rubric_id = r.id AND v.version = r.latest_version
	WHERE r.id = $1 AND r.archived_at IS NULL`

// Rubric implements evaluation.Store.
func (s *Store) Rubric(ctx context.Context, id string) (rubric.Rubric, error) {
	r, err := scanRubric(s.pool.QueryRow(ctx, selectLatest, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return rubric.Rubric{}, evaluation.NotFound("rubric", id)
	}
	if err != nil {
		return rubric.Rubric{}, classify("reading rubric", err)
	}
	return r, nil
}

const selectVersion = `
	SELECT version, body
	FROM rubric_versions
	WHERE rubric_id = $1 AND version = $2`

// RubricVersion implements evaluation.Store. Archived rubrics' versions
// stay readable: evaluations refer to them.
func (s *Store) RubricVersion(ctx context.Context, id string, version int) (rubric.Rubric, error) {
	// A stored version never changes, so the cache is always right.
	vk := versionKey{id, version}
	if r, ok := s.cache.bodies.get(vk); ok {
		return r, nil
	}
	r, err := scanRubric(s.pool.QueryRow(ctx, selectVersion, id, version))
	if err == nil {
		s.cache.bodies.put(vk, r)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return rubric.Rubric{}, evaluation.NotFound("rubric version", id)
	}
	if err != nil {
		return rubric.Rubric{}, classify("reading rubric version", err)
	}
	return r, nil
}

// The tag filter is off when $2 is empty; `body -> 'tags' ? tag` is true
// when the tags array holds that string.
const selectRubricPage = `
	SELECT v.version, v.body
	FROM rubrics r
	JOIN rubric_versions v ON v.rubric_id = r.id AND v.version = r.latest_version
	WHERE r.archived_at IS NULL
	  AND r.id > $1
	  AND ($2::text = '' OR v.body -> 'tags' ? $2)
	ORDER BY r.id
	LIMIT $3`

// ListRubrics implements evaluation.Store.
func (s *Store) ListRubrics(ctx context.Context, f evaluation.RubricFilter) ([]rubric.Rubric, error) {
	rows, err := s.pool.Query(ctx, selectRubricPage, f.After, f.Tag, max(f.Limit, 0))
	if err != nil {
		return nil, classify("listing rubrics", err)
	}
	rs, err := scanRubrics(rows)
	if err != nil {
		return nil, classify("listing rubrics", err)
	}
	return rs, nil
}

// SyncRubrics implements evaluation.Store.
func (s *Store) SyncRubrics(ctx context.Context, rs []rubric.Rubric) (evaluation.SyncResult, error) {
	var res evaluation.SyncResult
	err := s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if err := lockRubrics(ctx, tx); err != nil {
			return err
		}
		for _, r := range rs {
			hash := r.ContentHash()
			cur, err := current(ctx, tx, r.ID)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				if err := addVersion(ctx, tx, r, hash, true); err != nil {
					return err
				}
				res.Added = append(res.Added, r.ID)
			case err != nil:
				return err
			case cur.hash == hash && !cur.archived:
				res.Unchanged++
			default:
				// Changed, or archived and synced again: a new version,
				// as the file's own version number allows.
				r.Version = max(r.Version, cur.rubric.Version+1)
				if err := addVersion(ctx, tx, r, hash, false); err != nil {
					return err
				}
				res.Updated = append(res.Updated, r.ID)
			}
		}
		return nil
	})
	if err != nil {
		return evaluation.SyncResult{}, classify("syncing rubrics", err)
	}
	return res, nil
}

// CreateRubric implements evaluation.Store.
func (s *Store) CreateRubric(ctx context.Context, r rubric.Rubric) (rubric.Rubric, error) {
	err := s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if err := lockRubrics(ctx, tx); err != nil {
			return err
		}
		cur, err := current(ctx, tx, r.ID)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			r.Version = max(r.Version, 1)
			return addVersion(ctx, tx, r, r.ContentHash(), true)
		case err != nil:
			return err
		case !cur.archived:
			return fault.New(fault.Conflict, "rubric %q already exists; PUT it to make a new version", r.ID)
		default:
			r.Version = max(r.Version, cur.rubric.Version+1)
			return addVersion(ctx, tx, r, r.ContentHash(), false)
		}
	})
	if err != nil {
		return rubric.Rubric{}, classify("creating rubric", err)
	}
	return r, nil
}

// UpdateRubric implements evaluation.Store.
func (s *Store) UpdateRubric(ctx context.Context, r rubric.Rubric) (rubric.Rubric, error) {
	err := s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if err := lockRubrics(ctx, tx); err != nil {
			return err
		}
		cur, err := current(ctx, tx, r.ID)
		switch {
		case errors.Is(err, pgx.ErrNoRows) || (err == nil && cur.archived):
			return evaluation.NotFound("rubric", r.ID)
		case err != nil:
			return err
		}
		hash := r.ContentHash()
		if cur.hash == hash {
			r = cur.rubric // unchanged: what is stored, with its version
			return nil
		}
		r.Version = max(r.Version, cur.rubric.Version+1)
		return addVersion(ctx, tx, r, hash, false)
	})
	if err != nil {
		return rubric.Rubric{}, classify("updating rubric", err)
	}
	return r, nil
}

// Archiving deletes the rubric's vectors: they are never searched again,
// because a rubric that comes back gets a new version, which needs its
// own. Fewer dead rows keep the HNSW over-fetch in SearchRubrics useful.
const archive = `
	WITH archived AS (
		UPDATE rubrics SET archived_at = now()
		WHERE id = $1 AND archived_at IS NULL
		RETURNING id
	), dropped AS (
		DELETE FROM rubric_embeddings WHERE rubric_id IN (SELECT id FROM archived)
	)
	SELECT count(*) FROM archived`

// ArchiveRubric implements evaluation.Store.
func (s *Store) ArchiveRubric(ctx context.Context, id string) error {
	err := s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if err := lockRubrics(ctx, tx); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, archive, id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return evaluation.NotFound("rubric", id)
		}
		return nil
	})
	return classify("archiving rubric", err)
}

// lockRubrics serializes rubric writes across replicas until the
// transaction ends. Each write reads the latest version, then writes the
// next one; without the lock two replicas syncing the same changed file at
// start-up would both see the old hash and make two versions. Rubric writes
// are rare, so one lock for all of them costs nothing and rules out
// deadlocks between writes touching several rubrics.
func lockRubrics(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", rubricLockKey)
	return err
}

// state is what a write needs to know of a stored rubric.
type state struct {
	rubric   rubric.Rubric // latest version
	hash     string
	archived bool
}

const selectState = `
	SELECT v.version, v.body, v.content_hash, r.archived_at IS NOT NULL
	FROM rubrics r
	JOIN rubric_versions v ON v.rubric_id = r.id AND v.version = r.latest_version
	WHERE r.id = $1`

// current returns the state of rubric id, or pgx.ErrNoRows.
func current(ctx context.Context, tx pgx.Tx, id string) (state, error) {
	var (
		st      state
		version int
	)
	err := tx.QueryRow(ctx, selectState, id).Scan(&version, &st.rubric, &st.hash, &st.archived)
	if err != nil {
		return state{}, err
	}
	st.rubric.Version = version
	return st, nil
}

// addVersion stores r as the latest, active version of its rubric, making
// the rubric when isNew.
func addVersion(ctx context.Context, tx pgx.Tx, r rubric.Rubric, hash string, isNew bool) error {
	upsert := `UPDATE rubrics SET latest_version = $2, archived_at = NULL WHERE id = $1`
	if isNew {
		upsert = `INSERT INTO rubrics (id, latest_version) VALUES ($1, $2)`
	}
	if _, err := tx.Exec(ctx, upsert, r.ID, r.Version); err != nil {
		return err
	}
	const insertVersion = `
		INSERT INTO rubric_versions (rubric_id, version, content_hash, body)
		VALUES ($1, $2, $3, $4)`
	if _, err := tx.Exec(ctx, insertVersion, r.ID, r.Version, hash, r); err != nil {
		return err
	}
	// Only the latest version is searched; older vectors are dead weight.
	const dropOld = `DELETE FROM rubric_embeddings WHERE rubric_id = $1 AND version <> $2`
	_, err := tx.Exec(ctx, dropOld, r.ID, r.Version)
	return err
}

// scanRubric reads one (version, body) row.
func scanRubric(row pgx.Row) (rubric.Rubric, error) {
	var (
		r       rubric.Rubric
		version int
	)
	if err := row.Scan(&version, &r); err != nil {
		return rubric.Rubric{}, err
	}
	r.Version = version
	return r, nil
}

// scanRubrics reads (version, body) rows; never nil, like the memory store.
func scanRubrics(rows pgx.Rows) ([]rubric.Rubric, error) {
	defer rows.Close()
	out := []rubric.Rubric{}
	for rows.Next() {
		r, err := scanRubric(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
