-- Demo data for `scripts/dev up` (applied only to an empty database):
-- 1,000 users and 10,000 markets (ids 1-10000) with a mix of statuses,
-- volumes, creators, end dates and creation times. Uses MariaDB's
-- sequence engine (seq_1_to_N).
INSERT INTO users (id, name, email)
SELECT seq, CONCAT('User ', seq), CONCAT('user', seq, '@example.org')
FROM seq_1_to_1000;

INSERT INTO markets (id, name, description, status, volume, creator_id, end_date, created_at, updated_at)
SELECT seq,
	CONCAT('Will event ', seq, ' happen by ', 2026 + seq % 4, '?'),
	CONCAT('Resolves YES if event ', seq, ' is reported by two independent sources before the end date.'),
	ELT(1 + seq % 3, 'active', 'closed', 'resolved'),
	ROUND((seq * 7919) % 1000000 / 3, 2),
	1 + seq % 1000,
	IF(seq % 5 = 0, NULL, TIMESTAMP('2027-01-01') + INTERVAL seq HOUR),
	TIMESTAMP('2026-01-01') + INTERVAL seq MINUTE,
	TIMESTAMP('2026-01-01') + INTERVAL seq MINUTE
FROM seq_1_to_10000;
