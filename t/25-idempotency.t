#!/usr/bin/perl
# Idempotency-Key on POST /api/markets and POST /api/markets/:id/positions
# (API.md, Idempotency): a repeat by the same caller replays the first
# response (status, Location, body byte for byte) with Idempotent-Replayed
# and writes nothing; another body under the key is a 422; a repeat while
# the first runs is a 409; a failed effect frees the key; keys expire after
# 24 h. A reservation is "running" while the session of its request holds
# the key's lock in MariaDB: once that session is gone (a worker SIGKILLed)
# a retry takes it over at once; after a minute it is taken over anyway;
# of two runners of one key only one effect commits.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha256);
use HTTP::Tiny;
use POSIX qw(_exit);
use Test::More;
use Time::HiRes qw(sleep time);
use Markets::FastCGI;
use Markets::Test;

my $t = Markets::Test->new(seed => 1, env => { MARKETS_RATE_LIMIT => '1000000/60' });
sub h { Markets::Test::header(@_) }
sub post {
	my ($path, $body, $key, %claims) = @_;
	return $t->request('POST', $path, { headers => { %{ $t->bearer(sub => '6001', %claims) },
		'Content-Type' => 'application/json', defined $key ? ('Idempotency-Key' => $key) : () }, content => $body });
}
sub count { ($t->sql($_[0]))[0][0] }

# Create: once, then replayed.
my $body = '{"name":"Idempotent market"}';
my $first = post('/api/markets', $body, 'create-1');
is($first->{status}, 201, 'first create: 201');
ok(!defined h($first, 'Idempotent-Replayed'), 'not a replay');
my $again = post('/api/markets', $body, 'create-1');
is($again->{status}, 201, 'repeat: 201');
is(h($again, 'Idempotent-Replayed'), 'true', 'Idempotent-Replayed: true');
is(h($again, 'Location'), h($first, 'Location'), 'the same Location');
is($again->{content}, $first->{content}, 'the same body, byte for byte');
is(count("SELECT COUNT(*) FROM markets WHERE name = 'Idempotent market'"), 1, 'one market written');
$t->is_error(post('/api/markets', '{"name":"Another body"}', 'create-1'), 422, 'idempotency_key_reused', 'the key with another body');
is(post('/api/markets', $body, 'create-1', sub => '6002')->{status}, 201, 'the same key of another caller is its own');
is(count("SELECT COUNT(*) FROM markets WHERE name = 'Idempotent market'"), 2, 'so two markets in all');
for my $bad ('x' x 65, 'has space', 'semi;colon', '') {
	$t->is_error(post('/api/markets', $body, $bad), 400, 'bad_request', "Idempotency-Key '" . substr($bad, 0, 10) . "'");
}

# Buy: a retry after a timeout never buys twice.
my $v = count('SELECT volume FROM markets WHERE id = 3');
my $buy = '{"side":"yes","amount":"7.25"}';
my $b1 = post('/api/markets/3/positions', $buy, 'buy-1');
is($b1->{status}, 201, 'buy: 201');
my $b2 = post('/api/markets/3/positions', $buy, 'buy-1');
is($b2->{content}, $b1->{content}, 'the repeat replays the same position');
is(h($b2, 'Idempotent-Replayed'), 'true', 'marked as a replay');
is(count('SELECT volume FROM markets WHERE id = 3'), count("SELECT CAST($v AS DECIMAL(20,2)) + 7.25"), 'volume added once');
is(count("SELECT COUNT(*) FROM positions WHERE market_id = 3 AND user_id = 6001"), 1, 'one position');
$t->is_error(post('/api/markets/3/positions', '{"side":"no","amount":"7.25"}', 'buy-1'), 422, 'idempotency_key_reused',
	'the key with another body');
$t->is_error(post('/api/markets/6/positions', $buy, 'buy-1'), 422, 'idempotency_key_reused', 'the key on another market (another request)');

# A failed effect frees the key: a buy on a closed market, then the market opens.
$t->is_error(post('/api/markets/4/positions', $buy, 'buy-closed'), 409, 'conflict', 'buy on a closed market');
$t->sql("UPDATE markets SET status = 'active' WHERE id = 4");
my $open = post('/api/markets/4/positions', $buy, 'buy-closed');
is($open->{status}, 201, 'the same key works once the effect can happen');
ok(!defined h($open, 'Idempotent-Replayed'), 'and it is not a replay of the failure');

# A repeat while the first still runs: 409. The first waits for the market's
# row lock, held by another session.
open my $locker, '|-', 'mariadb', '--no-defaults', '--socket=' . $t->root . '/run/mysql.sock', '-uroot', 'markets' or die $!;
$locker->autoflush(1);
print $locker "BEGIN; SELECT id FROM markets WHERE id = 9 FOR UPDATE; SELECT SLEEP(3); COMMIT;\n";
sleep 0.5;
my $dir = File::Temp::tempdir(CLEANUP => 1);
my $kid = fork // die;
if ($kid == 0) {
	my $res = HTTP::Tiny->new(timeout => 30)->request('POST', $t->base_url . $t->path('/api/markets/9/positions'), {
		headers => { Authorization => 'Bearer ' . $t->token(sub => '6001'), 'Content-Type' => 'application/json',
			'Idempotency-Key' => 'slow-1' }, content => $buy });
	open my $fh, '>', "$dir/slow" or _exit(1);
	print $fh "$res->{status}\n$res->{content}";
	close $fh;
	_exit(0);
}
sleep 1;
# On a connection of its own, straight to the app: through nginx the repeat
# could queue behind the first on the same kept-alive connection, and then
# find it finished (a replay, also correct, but not what this checks).
# Under mod_fcgid there is no app socket: a new client connection through
# Apache, which gives each request a process of its own.
sub buy_alone {
	my ($market, $key) = @_;
	if ($t->mod_fcgid) {
		my $res = HTTP::Tiny->new(timeout => 30, keep_alive => 0)->request('POST',
			$t->base_url . $t->path("/api/markets/$market/positions"), { headers => {
				Authorization => 'Bearer ' . $t->token(sub => '6001'), 'Content-Type' => 'application/json',
				'Idempotency-Key' => $key }, content => $buy });
		return { status => $res->{status}, body => $res->{content} };
	}
	return Markets::FastCGI->simple($t->app_socket, params => {
		REQUEST_METHOD => 'POST', REQUEST_URI => "/api/markets/$market/positions", CONTENT_TYPE => 'application/json',
		CONTENT_LENGTH => length $buy, HTTP_AUTHORIZATION => 'Bearer ' . $t->token(sub => '6001'),
		HTTP_IDEMPOTENCY_KEY => $key }, body => $buy,
		# It waits for a row lock the test holds while it waits (up to
		# 15 s) for the other runner: longer than the 10 s default.
		timeout => 60);
}
my $during = buy_alone(9, 'slow-1');
is($during->{status}, 409, 'a repeat while the first runs: 409');
like($during->{body}, qr/"code":"conflict"/, 'code conflict');
waitpid $kid, 0;
close $locker;
my ($slow_status, $slow_body) = split /\n/, Markets::Test::slurp("$dir/slow"), 2;
is($slow_status, 201, 'the first one completes once the lock is free');
my $after = post('/api/markets/9/positions', $buy, 'slow-1');
is($after->{content}, $slow_body, 'then a repeat replays it');
is(count("SELECT COUNT(*) FROM positions WHERE market_id = 9 AND user_id = 6001"), 1, 'one position');

# Keys expire after 24 hours.
$t->sql("UPDATE idempotency_keys SET created_at = NOW(6) - INTERVAL 25 HOUR WHERE idem_key = 'create-1' AND user_id = 6001");
my $later = post('/api/markets', '{"name":"After a day"}', 'create-1');
is($later->{status}, 201, 'an expired key takes another body');
ok(!defined h($later, 'Idempotent-Replayed'), 'as a new request');

# A reservation left by a request that died is taken over after a minute.
my $hash = unpack 'H*', sha256("POST\0/api/markets\0" . '{"name":"Orphan"}');
$t->sql("INSERT INTO idempotency_keys (user_id, idem_key, request_hash, created_at) VALUES (6001, 'orphan', UNHEX('$hash'), NOW(6) - INTERVAL 2 MINUTE)");
is(post('/api/markets', '{"name":"Orphan"}', 'orphan')->{status}, 201, 'an abandoned reservation is taken over');

# Whether a younger one still runs, MariaDB says: its request's session
# holds the key's lock (named as in src/markets/repo_mysql_idem.c). Here a
# session of the test's own holds it, and then goes away as a killed
# worker's would.
sub key_lock { my ($user, $key) = @_; "CONCAT('mk_idem_', SHA1(CONCAT(DATABASE(), '/', $user, '/', '$key')))" }
sub hold_key_lock {
	my ($user, $key) = @_;
	open my $holder, '|-', 'mariadb', '--no-defaults', '--socket=' . $t->root . '/run/mysql.sock', '-uroot', '-N', 'markets'
		or die $!;
	$holder->autoflush(1);
	print $holder 'DO GET_LOCK(' . key_lock($user, $key) . ", 0);\n";
	$t->wait_until(10, sub { count('SELECT IS_USED_LOCK(' . key_lock($user, $key) . ') IS NOT NULL') == 1 })
		or die 'the key lock was not taken';
	return $holder;
}
$t->sql("INSERT INTO idempotency_keys (user_id, idem_key, request_hash) VALUES (6001, 'young', UNHEX('$hash'))");
my $holder = hold_key_lock(6001, 'young');
$t->is_error(post('/api/markets', '{"name":"Orphan"}', 'young'), 409, 'conflict', 'a fresh one whose session lives is in progress');
close $holder; # the session ends, as a SIGKILLed worker's does
ok($t->wait_until(10, sub { count('SELECT IS_USED_LOCK(' . key_lock(6001, 'young') . ') IS NULL') == 1 }), 'its lock is gone with it');
my $young = post('/api/markets', '{"name":"Orphan"}', 'young');
is($young->{status}, 201, 'then the reservation is taken over at once, not after a minute');
ok(!defined h($young, 'Idempotent-Replayed'), 'and run (not a replay)');
ok((grep { /reservation of user 6001 left by a request that died is taken over/ } $t->log_text_lines), 'the takeover is logged');
is(post('/api/markets', '{"name":"Orphan"}', 'young')->{content}, $young->{content}, 'a repeat replays it');
# A holder that hangs past a minute loses the key all the same.
$t->sql("INSERT INTO idempotency_keys (user_id, idem_key, request_hash, created_at) VALUES (6001, 'hung', UNHEX('$hash'), NOW(6) - INTERVAL 2 MINUTE)");
$holder = hold_key_lock(6001, 'hung');
is(post('/api/markets', '{"name":"Orphan"}', 'hung')->{status}, 201, 'a reservation held for over a minute is taken over');
close $holder;
is(count("SELECT COUNT(*) FROM markets WHERE name = 'Orphan'"), 3, 'one market per key');

# The app's processes: the master's workers, or under mod_fcgid those
# Apache's process manager (a child of Apache's parent) started.
sub app_pids {
	return $t->worker_pids unless $t->mod_fcgid;
	my $apache = $t->pid_of($t->front_pid_name);
	my (%ppid, %comm);
	for my $stat (glob '/proc/[0-9]*/stat') {
		my ($pid, $comm, $state, $pp) = Markets::Test::slurp($stat) =~ /^(\d+) \((.*)\) (\S) (\d+)/s or next;
		next if $state eq 'Z';
		($ppid{$pid}, $comm{$pid}) = ($pp, $comm);
	}
	return sort { $a <=> $b } grep { $comm{$_} eq 'markets' && ($ppid{ $ppid{$_} } // 0) == $apache } keys %comm;
}

# A worker SIGKILLed while its buy holds a reservation: the buy waits for
# the market's row lock (held by another session), both workers die, and
# once the row lock is let go the retry with the same key gets its 201 —
# not a 409 for a minute. Nothing of the killed buy remains.
my $v12 = count('SELECT volume FROM markets WHERE id = 12');
open my $row_locker, '|-', 'mariadb', '--no-defaults', '--socket=' . $t->root . '/run/mysql.sock', '-uroot', 'markets' or die $!;
$row_locker->autoflush(1);
# The user lock says the statement before it is done: the row is locked.
print $row_locker "BEGIN; SELECT id FROM markets WHERE id = 12 FOR UPDATE; DO GET_LOCK('t25-row-locker', 0);\n";
ok($t->wait_until(10, sub { count("SELECT IS_USED_LOCK('t25-row-locker') IS NOT NULL") == 1 }), 'market 12 is locked');
my $buyer = fork // die;
if ($buyer == 0) {
	HTTP::Tiny->new(timeout => 30)->request('POST', $t->base_url . $t->path('/api/markets/12/positions'), {
		headers => { Authorization => 'Bearer ' . $t->token(sub => '6001'), 'Content-Type' => 'application/json',
			'Idempotency-Key' => 'killed-1' }, content => $buy });
	_exit(0);
}
ok($t->wait_until(15, sub { count("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
	. "WHERE USER = 'markets' AND INFO LIKE 'SELECT status, % FROM markets WHERE id = ? FOR UPDATE'") == 1 }),
	'the buy holds its reservation and waits for the row lock');
is(count("SELECT status FROM idempotency_keys WHERE user_id = 6001 AND idem_key = 'killed-1'"), 0, 'reserved, running');
my @dead = app_pids();
kill 'KILL', @dead;
if ($t->mod_fcgid) {
	# Apache starts new processes as requests come.
	ok(scalar @dead, "the app processes Apache started: @dead");
	ok($t->wait_until(15, sub { !grep { kill 0, $_ } @dead }), 'every app process Apache had started was SIGKILLed');
} else {
	ok($t->wait_until(15, sub { my %old = map { $_ => 1 } @dead; my @w = grep { !$old{$_} } $t->worker_pids; @w == 2 }),
		'both workers were SIGKILLed and replaced');
}
waitpid $buyer, 0;
my $early = post('/api/markets/12/positions', $buy, 'killed-1');
diag("a retry while the dead session still waits for the row lock: $early->{status}");
print $row_locker "COMMIT;\n";
close $row_locker;
my ($retry, $tries, $started) = (undef, 0, time);
while (time - $started < 20) {
	$tries++;
	$retry = post('/api/markets/12/positions', $buy, 'killed-1');
	last unless $retry->{status} == 409;
	sleep 0.2;
}
diag(sprintf('the retry got %d after %d tries, %.2f s after the row lock went', $retry->{status}, $tries, time - $started));
is($retry->{status}, 201, 'the retry after the worker died gets 201 (not 409 for a minute)') or diag($retry->{content});
is(count("SELECT COUNT(*) FROM positions WHERE market_id = 12 AND user_id = 6001"), 1, 'one position');
is(count('SELECT volume FROM markets WHERE id = 12'), count("SELECT CAST($v12 AS DECIMAL(20,2)) + 7.25"), 'volume added once');
is(post('/api/markets/12/positions', $buy, 'killed-1')->{content}, $retry->{content}, 'and a repeat replays it');

# A request that fails drops its reservation only while the reservation is
# still its own: here it waits for market 13's row lock, its reservation is
# taken over meanwhile (owner_conn moves to another session, as when it ran
# past a minute), then the market closes and its buy fails: the row stays
# for the request that took it over.
$t->sql("UPDATE markets SET status = 'active' WHERE id = 13");
open $row_locker, '|-', 'mariadb', '--no-defaults', '--socket=' . $t->root . '/run/mysql.sock', '-uroot', 'markets' or die $!;
$row_locker->autoflush(1);
print $row_locker "BEGIN; SELECT id FROM markets WHERE id = 13 FOR UPDATE; DO GET_LOCK('t25-row-locker-3', 0);\n";
ok($t->wait_until(10, sub { count("SELECT IS_USED_LOCK('t25-row-locker-3') IS NOT NULL") == 1 }), 'market 13 is locked');
my $loser = fork // die;
if ($loser == 0) {
	my $r = HTTP::Tiny->new(timeout => 30)->request('POST', $t->base_url . $t->path('/api/markets/13/positions'), {
		headers => { Authorization => 'Bearer ' . $t->token(sub => '6001'), 'Content-Type' => 'application/json',
			'Idempotency-Key' => 'lost-1' }, content => $buy });
	_exit($r->{status} == 409 ? 0 : 1);
}
ok($t->wait_until(15, sub { count("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
	. "WHERE USER = 'markets' AND INFO LIKE 'SELECT status, % FROM markets WHERE id = ? FOR UPDATE'") == 1 }),
	'the buy holds its reservation and waits for market 13');
$t->sql("UPDATE idempotency_keys SET owner_conn = 4000000000 WHERE user_id = 6001 AND idem_key = 'lost-1'");
print $row_locker "UPDATE markets SET status = 'closed' WHERE id = 13; COMMIT;\n";
close $row_locker;
waitpid $loser, 0;
is($? >> 8, 0, 'its buy fails on the closed market: 409');
is(count("SELECT COUNT(*) FROM idempotency_keys WHERE user_id = 6001 AND idem_key = 'lost-1' AND status = 0 "
	. "AND owner_conn = 4000000000"), 1, 'the reservation taken over from it is still there for its new owner');
is(count("SELECT IS_USED_LOCK(" . key_lock(6001, 'lost-1') . ") IS NULL"), 1, 'and the failed request let its lock go');

# Two runners of one key — a takeover while the first still runs (here it
# hung past a minute; a reconnected session that lost its lock is the
# other way) — and only one effect: both wait for market 15's row lock,
# the first commits, the second finds the reservation no longer running
# and rolls back (409; the next repeat replays the first).
my $v15 = count('SELECT volume FROM markets WHERE id = 15');
# The app's sessions in the middle of a statement: waiting for a row lock
# (the first for market 15's, the second for the user row the first holds).
# (Transactions in LOCK WAIT, not every statement of the app's account in
# flight: a job runner's, or under mod_fcgid the cron stand-in's, would
# count too.)
sub waiting_buys { count("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'") }
open $row_locker, '|-', 'mariadb', '--no-defaults', '--socket=' . $t->root . '/run/mysql.sock', '-uroot', 'markets' or die $!;
$row_locker->autoflush(1);
print $row_locker "BEGIN; SELECT id FROM markets WHERE id = 15 FOR UPDATE; DO GET_LOCK('t25-row-locker-2', 0);\n";
ok($t->wait_until(10, sub { count("SELECT IS_USED_LOCK('t25-row-locker-2') IS NOT NULL") == 1 }), 'market 15 is locked');
my @runners;
for my $n (1, 2) {
	my $pid = fork // die;
	if ($pid == 0) {
		# Straight to the app, each on a connection of its own (see above).
		my $r = buy_alone(15, 'twice-1');
		open my $fh, '>', "$dir/runner-$n" or _exit(1);
		print $fh $r->{status} // 'none';
		close $fh;
		_exit(0);
	}
	push @runners, $pid;
	if ($n == 1) {
		ok($t->wait_until(15, sub { waiting_buys() == 1 }), 'the first runner waits for the row lock');
		$t->sql("UPDATE idempotency_keys SET created_at = NOW(6) - INTERVAL 2 MINUTE WHERE user_id = 6001 AND idem_key = 'twice-1'");
	}
}
ok($t->wait_until(15, sub { waiting_buys() == 2 }), 'the second took the key over and waits too');
print $row_locker "COMMIT;\n";
close $row_locker;
waitpid $_, 0 for @runners;
is_deeply([sort map { Markets::Test::slurp("$dir/runner-$_") } 1, 2], [201, 409], 'one runner commits, the other gets 409');
is(count("SELECT COUNT(*) FROM positions WHERE market_id = 15 AND user_id = 6001"), 1, 'one position of the two runners');
is(count('SELECT volume FROM markets WHERE id = 15'), count("SELECT CAST($v15 AS DECIMAL(20,2)) + 7.25"), 'volume added once');
ok((grep { /completed by another request: this run is rolled back/ } $t->log_text_lines), 'the rollback is logged');
my $replay = post('/api/markets/15/positions', $buy, 'twice-1');
is(h($replay, 'Idempotent-Replayed'), 'true', 'a repeat replays the one that committed');

$t->finish;

# Expired records are purged by the workers (every second here). The front
# too: under mod_fcgid the workers are the processes Apache starts.
my $p = Markets::Test->new(services => [qw(mariadb app nginx)], env => { MARKETS_IDEMPOTENCY_PURGE_INTERVAL => '1s' });
$p->sql("INSERT INTO users (id, name) VALUES (1, 'u')");
$p->sql("INSERT INTO idempotency_keys (user_id, idem_key, request_hash, status, created_at) VALUES "
	. join(', ', map { "(1, 'old-$_', UNHEX(REPEAT('00', 32)), 201, NOW(6) - INTERVAL 25 HOUR)" } 1 .. 30));
$p->sql("INSERT INTO idempotency_keys (user_id, idem_key, request_hash, status) VALUES (1, 'fresh', UNHEX(REPEAT('00', 32)), 201)");
ok($p->wait_until(15, sub { ($p->sql("SELECT COUNT(*) FROM idempotency_keys WHERE idem_key LIKE 'old-%'"))[0][0] == 0 }),
	'expired keys are purged');
is(($p->sql("SELECT COUNT(*) FROM idempotency_keys WHERE idem_key = 'fresh'"))[0][0], 1, 'a fresh key stays');
ok((grep { /purged 30 expired Idempotency-Key record/ } $p->log_text_lines), 'the purge is logged');
$p->finish;
done_testing;
