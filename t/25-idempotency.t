#!/usr/bin/perl
# Idempotency-Key on POST /api/markets and POST /api/markets/:id/positions
# (API.md, Idempotency): a repeat by the same caller replays the first
# response (status, Location, body byte for byte) with Idempotent-Replayed
# and writes nothing; another body under the key is a 422; a repeat while
# the first runs is a 409; a failed effect frees the key; keys expire after
# 24 h; a reservation left by a dead request is taken over after a minute.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha256);
use HTTP::Tiny;
use POSIX qw(_exit);
use Test::More;
use Time::HiRes qw(sleep);
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
	my $res = HTTP::Tiny->new(timeout => 30)->request('POST', $t->base_url . '/api/markets/9/positions', {
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
my $during = Markets::FastCGI->simple($t->app_socket, params => {
	REQUEST_METHOD => 'POST', REQUEST_URI => '/api/markets/9/positions', CONTENT_TYPE => 'application/json',
	CONTENT_LENGTH => length $buy, HTTP_AUTHORIZATION => 'Bearer ' . $t->token(sub => '6001'),
	HTTP_IDEMPOTENCY_KEY => 'slow-1' }, body => $buy);
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
$t->sql("INSERT INTO idempotency_keys (user_id, idem_key, request_hash) VALUES (6001, 'young', UNHEX('$hash'))");
is(post('/api/markets', '{"name":"Orphan"}', 'orphan')->{status}, 201, 'an abandoned reservation is taken over');
$t->is_error(post('/api/markets', '{"name":"Orphan"}', 'young'), 409, 'conflict', 'a fresh one is still in progress');

$t->finish;

# Expired records are purged by the workers (every second here).
my $p = Markets::Test->new(services => [qw(mariadb app)], env => { MARKETS_IDEMPOTENCY_PURGE_INTERVAL => '1s' });
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
