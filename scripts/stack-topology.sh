# scripts/stack-topology.sh — sourced by scripts/stack: the parts of a
# stack that only `--topology replicated` (or MARKETS_TOPOLOGY=replicated)
# adds. `single` (the default) is one MariaDB, one memcached, --apps N
# app instances. `replicated` is what a user who outgrew one machine runs,
# on this one:
#   - a MariaDB primary with a binary log (server_id 1, GTIDs), listening
#     on 127.0.0.1:PORT as well as its socket (a replica's IO thread
#     connects over TCP only), PORT kept in conf/mysql.port across restarts;
#   - a replica on its own datadir (db-replica/) and socket
#     (run/mysql-replica.sock), server_id 2, read_only, skip-networking,
#     replicating with CHANGE MASTER TO … MASTER_USE_GTID=slave_pos and
#     START SLAVE through a `repl` account whose generated password is in
#     repl.conf (0600); started from the same template datadir, it
#     replays the primary's binary log from its first event;
#   - two memcached servers (run/memcached.sock, run/memcached-2.sock);
#   - two app instances (unless --apps says otherwise) behind nginx.
# The app is told `db_replicas` and both memcached servers in
# conf/markets.stack.conf. The topology a root was started with is kept in
# conf/topology, so a later start (a test restarting what it stopped),
# stop and status need not be told again.

# topology_load — TOPOLOGY from the option, the environment, or the root.
topology_load() {
	if [ -z "$TOPOLOGY" ]; then
		TOPOLOGY=${MARKETS_TOPOLOGY:-}
		[ -z "$TOPOLOGY" ] && [ -s "$ROOT/conf/topology" ] && TOPOLOGY=$(cat "$ROOT/conf/topology")
		TOPOLOGY=${TOPOLOGY:-single}
	fi
	case $TOPOLOGY in
	single | replicated) ;;
	*) die "unknown topology $TOPOLOGY (single or replicated)" ;;
	esac
	# A datadir made without a binary log cannot seed a replica, nor
	# one with a replica go on alone unnoticed: one root, one topology.
	# (A root from before topologies is a single one.)
	local made=single
	[ -s "$ROOT/conf/topology" ] && made=$(cat "$ROOT/conf/topology")
	if [ "$made" != "$TOPOLOGY" ] && [ -d "$ROOT/db/mysql" ]; then
		die "$ROOT holds a $made stack; stop it and remove $ROOT/db (or use another root) to start it $TOPOLOGY"
	fi
	if [ "$TOPOLOGY" = replicated ] && [ "$APPS_GIVEN" = 0 ]; then APPS=2; fi
}

topology_save() { mkdir -p "$ROOT/conf" && echo "$TOPOLOGY" >"$ROOT/conf/topology"; }

# The primary's TCP port: chosen free once, then kept (the replica's
# master.info names it, so a restarted primary must come back on it).
primary_port() {
	local f=$ROOT/conf/mysql.port
	if [ ! -s "$f" ]; then
		perl -MIO::Socket::INET -e \
			'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1) or die "$!\n"; print $s->sockport, "\n"' \
			>"$f" || die "no free TCP port for the MariaDB primary"
	fi
	cat "$f"
}

# The primary's networking and binary log flags for start_mariadb.
mariadb_role_flags() {
	if [ "$TOPOLOGY" = replicated ]; then
		echo "--log-bin=$ROOT/db/mysql-bin --server-id=1"
		echo "--bind-address=127.0.0.1 --port=$(primary_port) --binlog-format=ROW"
	else
		echo "--skip-networking --skip-log-bin"
	fi
}

mysql_replica() { mariadb --no-defaults --socket="$ROOT/run/mysql-replica.sock" -uroot "$@"; }

# The replication account on the primary, with a password generated once.
ensure_repl_account() {
	local f=$ROOT/repl.conf password
	if [ -s "$f" ]; then
		password=$(sed -n 's/^password = //p' "$f")
	else
		password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
		(umask 077 && printf '# scripts/stack: the replica'"'"'s account on the primary.\nuser = repl\npassword = %s\n' "$password" >"$f")
	fi
	# The app's account reads SHOW SLAVE STATUS on the replica (its lag):
	# granted here, it reaches the replica through the binary log.
	mysql_root -e "CREATE USER IF NOT EXISTS 'repl'@'127.0.0.1' IDENTIFIED BY '$password';
		ALTER USER 'repl'@'127.0.0.1' IDENTIFIED BY '$password';
		GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';
		GRANT SLAVE MONITOR ON *.* TO 'markets'@'localhost'"
	echo "$password"
}

start_replica() {
	local password port
	if pid_alive "$ROOT/run/mysqld-replica.pid"; then return 0; fi
	pid_alive "$ROOT/run/mysqld.pid" || die "the replica needs its primary running"
	password=$(ensure_repl_account)
	port=$(primary_port)
	if [ ! -d "$ROOT/db-replica/mysql" ]; then
		rm -rf "$ROOT/db-replica"
		cp -a "$(mariadb_template)" "$ROOT/db-replica"
	fi
	detached mariadbd --no-defaults --datadir="$ROOT/db-replica" \
		--socket="$ROOT/run/mysql-replica.sock" --skip-networking \
		--pid-file="$ROOT/run/mysqld-replica.pid" --log-error="$ROOT/log/mysqld-replica.log" \
		--server-id=2 --skip-log-bin --read-only \
		--relay-log="$ROOT/db-replica/relay-bin" --innodb-buffer-pool-size=128M \
		--character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
		$(run_as_root_flag --user=root) >>"$ROOT/log/mysqld-replica.out" 2>&1
	wait_for "MariaDB replica" 60 mysql_replica -e 'SELECT 1'
	# Configured once; a restarted replica resumes from its relay log
	# and gtid_slave_pos by itself. MASTER_CONNECT_RETRY=1: after the
	# primary comes back, replication resumes within a second, not 60.
	if [ -z "$(mysql_replica -N -e 'SHOW SLAVE STATUS')" ]; then
		mysql_replica -e "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$port,
			MASTER_USER='repl', MASTER_PASSWORD='$password',
			MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1;
			START SLAVE" || die "the replica refused CHANGE MASTER TO (log in $ROOT/log/mysqld-replica.log)"
	fi
	# Caught up with everything the primary holds now (schema, account,
	# seed) before the app reads from it.
	local pos
	pos=$(mysql_root -N -e 'SELECT @@gtid_binlog_pos')
	[ "$(mysql_replica -N -e "SELECT MASTER_GTID_WAIT('$pos', 120)")" = 0 ] \
		|| die "the replica did not catch up with the primary ($pos) within 120s (log in $ROOT/log/mysqld-replica.log)"
}

# start_memcached_named NAME — one more memcached on run/NAME.sock.
start_memcached_named() {
	local name=$1
	if pid_alive "$ROOT/run/$name.pid"; then return 0; fi
	rm -f "$ROOT/run/$name.sock"
	detached memcached -d -s "$ROOT/run/$name.sock" -a 0700 -m 64 -c 4096 \
		-P "$ROOT/run/$name.pid" $(run_as_root_flag "-u root") \
		>>"$ROOT/log/$name.log" 2>&1
	wait_for "$name" 10 test -S "$ROOT/run/$name.sock"
}

# Hooks scripts/stack calls.
topology_start_mariadb() { [ "$TOPOLOGY" != replicated ] || start_replica; }
topology_start_memcached() { [ "$TOPOLOGY" != replicated ] || start_memcached_named memcached-2; }

# The lines conf/markets.stack.conf gets: every memcached server of the
# stack (a killed one stays listed: the pool keeps its place on the
# ring), and the replicas.
topology_app_conf() {
	local servers="" s
	for s in memcached memcached-2; do
		if [ -S "$ROOT/run/$s.sock" ] || { [ "$s" = memcached-2 ] && [ "$TOPOLOGY" = replicated ] \
			&& [ -n "$servers" ]; }; then
			servers="${servers:+$servers,}unix:$ROOT/run/$s.sock"
		fi
	done
	[ -n "$servers" ] && echo "memcached = $servers"
	[ "$TOPOLOGY" = replicated ] && echo "db_replicas = unix:$ROOT/run/mysql-replica.sock"
	return 0
}

# What status lists besides the single topology's services.
topology_status_services() {
	[ "$TOPOLOGY" = replicated ] && echo "memcached-2:memcached-2 MariaDB-replica:mysqld-replica"
	return 0
}

topology_stop() {
	stop_pid memcached-2 "$ROOT/run/memcached-2.pid"
	stop_pid MariaDB-replica "$ROOT/run/mysqld-replica.pid"
}
