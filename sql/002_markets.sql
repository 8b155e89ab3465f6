-- 002: markets and positions. Money is DECIMAL(20,2), never a float.
-- Every list sort and filter has an index that ends in id, so keyset
-- pagination (sort key, id) reads only the rows of the page.
CREATE TABLE IF NOT EXISTS markets (
	id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
	name VARCHAR(200) NOT NULL,
	description TEXT NOT NULL,
	status ENUM('active', 'closed', 'resolved') NOT NULL DEFAULT 'active',
	volume DECIMAL(20,2) NOT NULL DEFAULT 0,
	creator_id BIGINT UNSIGNED NOT NULL,
	end_date DATETIME NULL,
	created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
	version INT UNSIGNED NOT NULL DEFAULT 1,
	KEY markets_created (created_at, id),
	KEY markets_volume (volume, id),
	KEY markets_name (name, id),
	KEY markets_status_created (status, created_at, id),
	KEY markets_status_volume (status, volume, id),
	KEY markets_status_name (status, name, id),
	KEY markets_creator_created (creator_id, created_at, id),
	CONSTRAINT markets_creator FOREIGN KEY (creator_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS positions (
	id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
	market_id BIGINT UNSIGNED NOT NULL,
	user_id BIGINT UNSIGNED NOT NULL,
	side ENUM('yes', 'no') NOT NULL,
	amount DECIMAL(20,2) NOT NULL,
	created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	KEY positions_market_created (market_id, created_at, id),
	KEY positions_user (user_id),
	CONSTRAINT positions_market FOREIGN KEY (market_id) REFERENCES markets (id) ON DELETE CASCADE,
	CONSTRAINT positions_user FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
