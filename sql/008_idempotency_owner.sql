-- 008: which database session runs a reservation (CONNECTION_ID(), set
-- when a request reserves a key or takes it over). A request that fails
-- drops the reservation only while it is still its own: one taken over
-- from it meanwhile (it ran past a minute) belongs to the request that
-- took it, whose effect must not lose its row.
ALTER TABLE idempotency_keys
	ADD COLUMN IF NOT EXISTS owner_conn BIGINT UNSIGNED NULL;
