#!/usr/bin/perl
# The transaction helper retries a whole transaction on a lock wait
# timeout (and deadlock): with innodb_lock_wait_timeout = 1 s, a buy that
# waits longer than that for its market's row lock is run again, after a
# back-off, and succeeds once the lock is free — not a 500, not a
# half-written row. When the retries run out it is a 503 with Retry-After.
# Each run again counts in markets_db_transaction_retries_total.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use Markets::Test;

# MariaDB first, and the lock wait timeout set before anything else runs:
# a session takes the global value when it connects, and a worker or job
# runner connected by the stack's start-up checks would keep the default.
my $t = Markets::Test->new(seed => 1, services => [qw(mariadb)],
	env => { MARKETS_RATE_LIMIT => '1000000/60', MARKETS_DB_RETRY_TIME => '5s', MARKETS_DB_RETRIES => 6 });
$t->sql('SET GLOBAL innodb_lock_wait_timeout = 1');
$t->start(qw(memcached app nginx));

# (Returns once the lock is held, not after a guessed pause.)
sub hold_lock { my ($market, $secs) = @_; return $t->hold_row_lock($market, $secs) }
sub buy {
	my ($market) = @_;
	return $t->request('POST', "/api/markets/$market/positions", { headers => { %{ $t->bearer(sub => '7700') },
		'Content-Type' => 'application/json' }, content => '{"side":"yes","amount":"2.00"}' });
}

sub retries { ($t->get('/metrics')->{content} =~ /^markets_db_transaction_retries_total (\d+)$/m)[0] }
my $retries = retries();
is($retries, 0, 'markets_db_transaction_retries_total starts at 0');
my $v = ($t->sql('SELECT volume FROM markets WHERE id = 3'))[0][0];
my $locker = hold_lock(3, 2.5);
my $start = time;
my $r = buy(3);
my $took = time - $start;
close $locker;
is($r->{status}, 201, 'a buy that outwaits the lock wait timeout is retried and succeeds') or diag($r->{content});
ok($took > 1, sprintf('it waited for the lock (%.1f s)', $took));
ok((grep { /transaction attempt \d failed .*retrying/ } $t->log_text_lines), 'the retry is logged');
is(($t->sql('SELECT volume FROM markets WHERE id = 3'))[0][0], ($t->sql("SELECT CAST($v AS DECIMAL(20,2)) + 2"))[0][0],
	'the amount was added once');
is(($t->sql('SELECT COUNT(*) FROM positions WHERE market_id = 3 AND user_id = 7700'))[0][0], 1, 'one position');
my $logged = grep { /transaction attempt \d failed .*retrying/ } $t->log_text_lines;
is(retries() - $retries, $logged, "markets_db_transaction_retries_total moved by the retries logged ($logged)");

# Held longer than the retries may take: 503 with Retry-After, nothing written.
$locker = hold_lock(6, 9);
$r = buy(6);
$t->is_error($r, 503, 'unavailable', 'the retries run out');
ok(Markets::Test::header($r, 'Retry-After'), 'with Retry-After');
close $locker;
is(($t->sql('SELECT COUNT(*) FROM positions WHERE market_id = 6'))[0][0], 0, 'and nothing was written');

$t->finish;
done_testing;
