-- 005: the durable job queue. A job is claimed in a short transaction
-- (SELECT ... FOR UPDATE SKIP LOCKED, then status running with a lease:
-- locked_by, locked_until); its effect and its completion commit together,
-- and only while the lease is still its runner's. A runner that dies
-- leaves a lease that expires, and the job runs again. Failures go back
-- to `failed` with run_at pushed out by an exponential back-off with
-- jitter, until max_attempts: then `dead`, with last_error kept.
CREATE TABLE IF NOT EXISTS jobs (
	id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
	type VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	payload LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL CHECK (JSON_VALID(payload)),
	status ENUM('queued', 'running', 'done', 'failed', 'dead') NOT NULL DEFAULT 'queued',
	attempts INT UNSIGNED NOT NULL DEFAULT 0,
	max_attempts INT UNSIGNED NOT NULL DEFAULT 5,
	run_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	locked_by VARCHAR(64) NULL,
	locked_until DATETIME(6) NULL,
	last_error VARCHAR(1000) NULL,
	created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	finished_at DATETIME(6) NULL,
	KEY jobs_ready (status, run_at, id),
	KEY jobs_lease (status, locked_until, id)
) ENGINE=InnoDB;
