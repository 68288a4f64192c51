-- Cheaper storage and lookup of what every grading writes and reads.
--
-- An evaluation's body (7 to 12 KB of JSON) is over the TOAST threshold,
-- so every insert compresses it. lz4 does that at about half the
-- database's CPU per insert of the default pglz (0.14 against 0.23 to
-- 0.26 ms, measured on this project's benchmark bodies), and reads it
-- back faster. Idempotent replays store whole response bodies the same
-- way. lz4 needs a server built --with-lz4 (the Debian, Ubuntu and
-- official Docker images are); elsewhere the columns keep pglz.
--
-- A 1,024-dimension vector is 4 KB, which pgvector stores out of line
-- (STORAGE external), so a sequential scan of a small bank and the exact
-- re-scoring of a search's candidates read every vector through the TOAST
-- index. MAIN keeps a vector in its row, compressed when that helps (the
-- local embedder's vectors are sparse), and moves it out only when the row
-- would not fit a page (3,072 dimensions and up).
ALTER TABLE rubric_embeddings ALTER COLUMN embedding SET STORAGE MAIN;

DO $$
BEGIN
	ALTER TABLE evaluations ALTER COLUMN body SET COMPRESSION lz4;
	ALTER TABLE idempotency_keys ALTER COLUMN body SET COMPRESSION lz4;
	ALTER TABLE rubric_embeddings ALTER COLUMN embedding SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
	RAISE NOTICE 'lz4 is not available in this server; keeping pglz';
END
$$;

-- Every cache hit stores a new evaluation under the same cache key, so a
-- key gathers rows. The lookup (internal/postgres/evaluations.go) wants
-- the newest completed one; without status in the index the planner chose
-- a bitmap scan of every row of the key and a sort, which grew with the
-- hits (1.4 ms at 217 rows, against 0.07 ms for this index's first entry).
DROP INDEX evaluations_cache_idx;
CREATE INDEX evaluations_cache_idx ON evaluations (cache_key, created_at DESC)
	WHERE cache_key IS NOT NULL AND status = 'completed';

-- A rate-limit statement can take tokens for several requests at once
-- (internal/ratelimit/coalesce.go); granted says how many it took.
ALTER TABLE rate_limits ADD COLUMN granted int NOT NULL DEFAULT 0;
