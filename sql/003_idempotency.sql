-- 003: Idempotency-Key records (API.md, Idempotency). A key is reserved
-- (status 0) before the effect runs; the effect's own transaction writes
-- the status and the exact response, so a retry either replays what was
-- committed or finds the first request still running (409). Rows older
-- than 24 hours are purged.
CREATE TABLE IF NOT EXISTS idempotency_keys (
	user_id BIGINT UNSIGNED NOT NULL,
	idem_key VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	request_hash BINARY(32) NOT NULL,
	status SMALLINT UNSIGNED NOT NULL DEFAULT 0,
	location VARCHAR(255) NULL,
	response MEDIUMTEXT NULL,
	created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	PRIMARY KEY (user_id, idem_key),
	KEY idempotency_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
