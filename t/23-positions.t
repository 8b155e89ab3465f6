#!/usr/bin/perl
# Positions: POST /api/markets/:id/positions buys (insert + volume in one
# transaction, the market row locked; only active markets), GET lists them
# newest first with offset or cursor. 50 concurrent buys leave the volume at
# the exact sum; MariaDB killed in the middle of a buy leaves nothing of it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use HTTP::Tiny;
use JSON::PP;
use POSIX qw(_exit);
use Test::More;
use Time::HiRes qw(sleep);
use Markets::Test;

my $t = Markets::Test->new(seed => 1, env => { MARKETS_RATE_LIMIT => '1000000/60' });
sub buy {
	my ($market, $body, %claims) = @_;
	return $t->request('POST', "/api/markets/$market/positions", {
		headers => { %{ $t->bearer(sub => '8001', email => 'buyer@example.org', %claims) }, 'Content-Type' => 'application/json' },
		content => ref $body ? encode_json($body) : $body });
}
sub volume { ($t->sql("SELECT volume FROM markets WHERE id = $_[0]"))[0][0] }
sub positions { ($t->sql("SELECT COUNT(*) FROM positions WHERE market_id = $_[0]"))[0][0] }

# In the seed, status = ELT(1 + id % 3, active, closed, resolved): 3, 6, 9, 12 are active, 4 closed, 2 resolved.
is(($t->sql('SELECT status FROM markets WHERE id = 3'))[0][0], 'active', 'market 3 is active');
my $v0 = volume(3);
my $r = buy(3, { side => 'yes', amount => '10.05' });
is($r->{status}, 201, 'buy: 201');
my $p = $r->{json}{data};
is_deeply([sort keys %$p], [qw(amount created_at id market_id side user_id)], 'a position');
is($p->{amount}, '10.05', 'amount as a decimal string');
is($p->{user_id}, 8001, 'the buyer is the token sub');
is($p->{market_id}, 3, 'market_id');
is(Markets::Test::header($r, 'Location'), $t->path("/api/markets/3/positions/$p->{id}"), 'Location');
is_deeply($t->get("/api/markets/3/positions/$p->{id}")->{json}{data}, $p, 'GET the Location: the same position');
my ($expect) = $t->sql("SELECT CAST($v0 AS DECIMAL(20,2)) + 10.05");
is(volume(3), $expect->[0], 'volume grew by exactly the amount');
is_deeply([$t->sql('SELECT name, email FROM users WHERE id = 8001')], [['', 'buyer@example.org']], 'the buyer has a user row');

# Refusals.
$t->is_error(buy(2, { side => 'yes', amount => '1' }), 409, 'conflict', 'a resolved market');
$t->is_error(buy(4, { side => 'no', amount => '1' }), 409, 'conflict', 'a closed market');
$t->is_error(buy(99999, { side => 'no', amount => '1' }), 404, 'not_found', 'an unknown market');
$t->is_error(buy('abc', { side => 'no', amount => '1' }), 404, 'not_found', 'a malformed id');
for my $case ([{ side => 'maybe', amount => '1' }, 'side'], [{ side => 'yes' }, 'amount'], [{ side => 'yes', amount => '1e999' }, 'amount'],
	[{ side => 'yes', amount => '-0' }, 'amount'], [{ side => 'yes', amount => 5 }, 'amount'], [{ side => 'yes', amount => '1', user_id => 1 }, 'user_id'],
	[[1], 'body']) {
	my ($body, $field) = @$case;
	my $e = buy(3, $body);
	$t->is_error($e, 400, 'validation_failed', "bad body: $field");
	ok((grep { $_->{field} eq $field } @{ $e->{json}{details} || [] }), "details name $field");
}
$t->is_error(buy(3, '{"side":"yes",'), 400, 'invalid_json', 'broken JSON');
$t->is_error($t->request('POST', '/api/markets/3/positions', { headers => { 'Content-Type' => 'application/json' },
	content => '{"side":"yes","amount":"1"}' }), 401, 'unauthorized', 'no token');
is(positions(3), 1, 'no refused buy left a row');
is(positions(2) + positions(4), 0, 'nothing on the closed and resolved markets');

# 50 buyers at once on one market: the volume is the exact sum.
my $v1 = volume(6);
my @amounts = map { sprintf '%d.%02d', $_, ($_ * 37) % 100 } 1 .. 50;
my $dir = File::Temp::tempdir(CLEANUP => 1);
my @kids;
for my $i (0 .. $#amounts) {
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		my $res = HTTP::Tiny->new(timeout => 30)->request('POST', $t->base_url . $t->path('/api/markets/6/positions'), {
			headers => { Authorization => 'Bearer ' . $t->token(sub => 9000 + $i), 'Content-Type' => 'application/json' },
			content => encode_json({ side => $i % 2 ? 'yes' : 'no', amount => $amounts[$i] }) });
		open my $fh, '>', "$dir/$i" or _exit(1);
		print $fh $res->{status};
		close $fh;
		_exit(0);
	}
	push @kids, $pid;
}
waitpid $_, 0 for @kids;
my @statuses = map { Markets::Test::slurp("$dir/$_") } 0 .. $#amounts;
is_deeply(\@statuses, [(201) x 50], '50 concurrent buys: all 201');
my $sum = join ' + ', @amounts;
my ($exact) = $t->sql("SELECT CAST($v1 AS DECIMAL(20,2)) + $sum");
is(volume(6), $exact->[0], "volume is the exact sum of the 50 amounts ($exact->[0])");
is(positions(6), 50, '50 positions');
is(($t->sql('SELECT SUM(amount) FROM positions WHERE market_id = 6'))[0][0],
	($t->sql("SELECT CAST($sum AS DECIMAL(20,2))"))[0][0], 'and they add up');

# Listing: newest first, offset and cursor agree with SQL, a cursor is bound to its market.
my @all = map { $_->[0] } $t->sql('SELECT id FROM positions WHERE market_id = 6 ORDER BY created_at DESC, id DESC');
my (@walked, $cursor);
for (1 .. 10) {
	my $page = $t->get('/api/markets/6/positions?limit=7' . (defined $cursor ? "&cursor=$cursor" : ''))->{json};
	push @walked, map { $_->{id} } @{ $page->{data} };
	$cursor = $page->{meta}{next_cursor};
	last unless defined $cursor;
}
is_deeply(\@walked, \@all, 'a cursor walk returns every position once, newest first');
is_deeply([map { $_->{id} } @{ $t->get('/api/markets/6/positions?limit=5&offset=10')->{json}{data} }], [@all[10 .. 14]], 'offset');
my $c6 = $t->get('/api/markets/6/positions?limit=2')->{json}{meta}{next_cursor};
$t->is_error($t->get("/api/markets/3/positions?cursor=$c6"), 400, 'bad_request', "another market's cursor");
$t->is_error($t->get('/api/markets/6/positions?limit=0'), 400, 'bad_request', 'limit=0');
$t->is_error($t->get('/api/markets/6/positions?offset=1&cursor=x'), 400, 'bad_request', 'offset and cursor');
$t->is_error($t->get('/api/markets/99999/positions'), 404, 'not_found', 'positions of an unknown market');
is_deeply($t->get('/api/markets/12/positions')->{json}{data}, [], 'a market without positions: an empty list');

# MariaDB killed while a buy waits for the market's row lock: afterwards
# nothing of that buy exists — no position, no volume change, no user row.
my $v9 = volume(9);
open my $locker, '|-', 'mariadb', '--no-defaults', '--socket=' . $t->root . '/run/mysql.sock', '-uroot', 'markets'
	or die "mariadb: $!";
$locker->autoflush(1);
print $locker "BEGIN; SELECT id FROM markets WHERE id = 9 FOR UPDATE; SELECT SLEEP(60);\n";
sleep 0.5;
my $kid = fork // die;
if ($kid == 0) {
	my $res = HTTP::Tiny->new(timeout => 60)->request('POST', $t->base_url . $t->path('/api/markets/9/positions'), {
		headers => { Authorization => 'Bearer ' . $t->token(sub => 8888, email => 'killed@example.org'), 'Content-Type' => 'application/json' },
		content => '{"side":"yes","amount":"5.00"}' });
	open my $fh, '>', "$dir/killed" or _exit(1);
	print $fh "$res->{status} " . (($res->{headers}{'retry-after'}) // '-') . " $res->{content}";
	close $fh;
	_exit(0);
}
sleep 1;
my $mysqld = $t->pid_of('mysqld');
kill 'KILL', $mysqld;
waitpid $kid, 0;
close $locker;
my ($status, $retry, $body) = split / /, Markets::Test::slurp("$dir/killed"), 3;
is($status, 503, 'the buy caught by the crash answers 503');
ok($retry ne '-' && $retry > 0, 'with Retry-After');
like($body, qr/"code":"unavailable"/, 'code unavailable');
unlike($body, qr/mysql|maria|SQL|socket/i, 'no internals in the body');
$t->start('mariadb');
is(volume(9), $v9, 'after restart: the volume is unchanged');
is(positions(9), 0, 'no position was written');
is(($t->sql('SELECT COUNT(*) FROM users WHERE id = 8888'))[0][0], 0, 'no user row either (same transaction)');
is(buy(9, { side => 'yes', amount => '5.00' })->{status}, 201, 'and the next buy works');

$t->finish;
done_testing;
