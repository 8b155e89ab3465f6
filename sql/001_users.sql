-- 001: users. Rows are created or refreshed from token claims on an
-- authenticated write (sub, email, name); nothing secret is stored.
CREATE TABLE IF NOT EXISTS users (
	id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
	name VARCHAR(200) NOT NULL DEFAULT '',
	email VARCHAR(320) NULL,
	created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
	updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
	UNIQUE KEY users_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
