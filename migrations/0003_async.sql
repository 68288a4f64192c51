-- Asynchronous grading: batches (a client's batch of answers, or the
-- regrade of a rubric's past evaluations) and the evaluations' link to
-- them. River's own tables (river_job and the rest) come from its
-- migrations, which run right after these under the same advisory lock
-- (internal/postgres/jobs.go).

CREATE TABLE batches (
	id             uuid PRIMARY KEY,
	-- 'batch' or 'regrade'
	kind           text NOT NULL,
	created_at     timestamptz NOT NULL,
	api_key_id     text,
	-- The rubric version a regrade grades against.
	rubric_id      text,
	rubric_version int,
	total          int NOT NULL,
	-- False while a regrade job is still creating the evaluations.
	filled         boolean NOT NULL
);

ALTER TABLE evaluations ADD COLUMN batch_id uuid REFERENCES batches (id);
-- Counts by status of one batch are a range of this index.
CREATE INDEX evaluations_batch_idx ON evaluations (batch_id, status) WHERE batch_id IS NOT NULL;
