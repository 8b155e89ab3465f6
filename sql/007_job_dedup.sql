-- 007: a job may name what it does (dedup_key, e.g. "index_market:42");
-- while such a job is still queued, queuing the same work again returns
-- it instead of adding another (INSERT … ON DUPLICATE KEY UPDATE
-- id = LAST_INSERT_ID(id)), so nobody can fill the queue with copies of
-- one market's re-index. Once a runner claims the job (status running)
-- the key is free again: an edit made while it runs gets a job of its own.
ALTER TABLE jobs
	ADD COLUMN IF NOT EXISTS dedup_key VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
	ADD COLUMN IF NOT EXISTS queued_dedup_key VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin
		AS (IF(status = 'queued', dedup_key, NULL)) PERSISTENT,
	ADD UNIQUE KEY IF NOT EXISTS jobs_queued_dedup (queued_dedup_key);
