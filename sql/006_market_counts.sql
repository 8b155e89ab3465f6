-- 006: exact market counts kept beside the data, so that count=exact on an
-- unfiltered or status-filtered list reads 48 small rows instead of
-- scanning an index of every market.
--
-- Triggers keep the counts in the statement that changes markets, so no
-- write path (the app, an operator's SQL, a seed load) can forget them.
-- Each status has 16 shard rows (a market counts in shard id % 16): two
-- creates commit without waiting on one counter row. An update touches a
-- counter only when it changes the status, so buys (which change volume)
-- never lock one. TRUNCATE fires no trigger: `markets-admin` never uses it,
-- and an operator who does re-runs the INSERT … SELECT below.
CREATE TABLE IF NOT EXISTS market_counts (
	status ENUM('active', 'closed', 'resolved') NOT NULL,
	shard TINYINT UNSIGNED NOT NULL,
	n BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (status, shard)
) ENGINE=InnoDB;

INSERT IGNORE INTO market_counts (status, shard, n)
SELECT s.status, h.shard, 0
FROM (SELECT 'active' AS status UNION ALL SELECT 'closed' UNION ALL SELECT 'resolved') s
CROSS JOIN (SELECT 0 AS shard UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3
	UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7
	UNION ALL SELECT 8 UNION ALL SELECT 9 UNION ALL SELECT 10 UNION ALL SELECT 11
	UNION ALL SELECT 12 UNION ALL SELECT 13 UNION ALL SELECT 14 UNION ALL SELECT 15) h;

DROP TRIGGER IF EXISTS markets_count_insert;
CREATE TRIGGER markets_count_insert AFTER INSERT ON markets FOR EACH ROW
	UPDATE market_counts SET n = n + 1 WHERE status = NEW.status AND shard = NEW.id % 16;

DROP TRIGGER IF EXISTS markets_count_delete;
CREATE TRIGGER markets_count_delete AFTER DELETE ON markets FOR EACH ROW
	UPDATE market_counts SET n = n - 1 WHERE status = OLD.status AND shard = OLD.id % 16;

DROP TRIGGER IF EXISTS markets_count_update;
CREATE TRIGGER markets_count_update AFTER UPDATE ON markets FOR EACH ROW
BEGIN
	IF NEW.status <> OLD.status THEN
		UPDATE market_counts SET n = n - 1 WHERE status = OLD.status AND shard = OLD.id % 16;
		UPDATE market_counts SET n = n + 1 WHERE status = NEW.status AND shard = NEW.id % 16;
	END IF;
END;

-- Counted after the triggers exist: a market created meanwhile is either in
-- this count or added by its trigger once this statement commits.
UPDATE market_counts c
JOIN (SELECT status, id % 16 AS shard, COUNT(*) AS n FROM markets GROUP BY status, id % 16) m
	ON m.status = c.status AND m.shard = c.shard
SET c.n = m.n;
