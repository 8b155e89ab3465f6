-- 004: market embeddings for semantic search. One row per market: the
-- vector (float32, little-endian, dim of them) made by the named embedder
-- from the market's name and description at market_version. A deleted
-- market keeps a row with a NULL vector (a tombstone), so that workers
-- refreshing their in-memory index by seq learn of the deletion too.
--
-- seq orders every change: search_state.seq is taken (locked, bumped) in
-- the transaction that writes an embedding, so changes commit in seq
-- order and a worker that has loaded up to seq N never misses an older
-- change that commits later.
CREATE TABLE IF NOT EXISTS market_embeddings (
	market_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	embedder VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	dim SMALLINT UNSIGNED NOT NULL,
	vector MEDIUMBLOB NULL,
	market_version INT UNSIGNED NOT NULL,
	seq BIGINT UNSIGNED NOT NULL,
	updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
	KEY market_embeddings_seq (seq)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS search_state (
	id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
	seq BIGINT UNSIGNED NOT NULL
) ENGINE=InnoDB;

INSERT IGNORE INTO search_state (id, seq) VALUES (1, 0);
