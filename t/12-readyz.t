#!/usr/bin/perl
# GET /readyz: 200 while the database and memcached answer; a 503
# "unavailable" naming what is down (with Retry-After) while one is not;
# 200 again, without a restart of the app, once it is back. /healthz stays
# 200 throughout (the worker itself is alive). Neither is rate limited.
# Without a database configured at all, /readyz is a 503 that says so
# (memcached, which is optional, may be missing).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Markets::Test;
use Time::HiRes qw(time sleep);

my $t = Markets::Test->new(env => { MARKETS_RATE_LIMIT => '3/60' });
sub h { Markets::Test::header(@_) }
sub dead { my $pid = shift; !kill(0, $pid) || (Markets::Test::slurp("/proc/$pid/stat") =~ /^\d+ \(.*\) (\S)/s)[0] eq 'Z' }
sub stop_service {
	my ($name) = @_;
	my $pid = $t->pid_of($name);
	kill 'TERM', $pid;
	ok($t->wait_until(20, sub { dead($pid) }), "$name stopped");
}

# Both up, and the app's own database account works.
for (1 .. 5) {
	my $r = $t->get('/readyz');
	is($r->{status}, 200, 'ready: 200');
	is_deeply($r->{json}{data}, { status => 'ready', database => 'ok', memcached => 'ok' }, 'both backends ok');
	ok(!defined h($r, 'X-RateLimit-Limit'), '/readyz is not rate limited (limit 3/60, 5 calls)');
}
# Polling is cheap: each worker pings the backends at most once a second
# and answers from that result meanwhile (COM_PING counts as an admin command).
sub pings { ($t->sql("SHOW GLOBAL STATUS LIKE 'Com_admin_commands'"))[0][1] }
my ($pings_before, $t0) = (pings(), time);
my @burst = map { $t->get('/readyz')->{status} } 1 .. 200;
my $elapsed = time - $t0;
my $pings = pings() - $pings_before;
is_deeply([grep { $_ != 200 } @burst], [], '200 readiness polls: all 200');
# The workers: the master's two, or under mod_fcgid the processes Apache
# started that answered /readyz.
my $workers = $t->mod_fcgid
	? scalar(keys %{ { map { $_->{pid} => 1 } grep { ($_->{route} // '') eq '/readyz' } $t->log_lines } }) : 2;
my $bound = $workers * (int($elapsed) + 2);
ok($pings <= $bound, sprintf('200 polls in %.2f s cost %d database pings (at most one per worker per second, %d workers: <= %d)',
	$elapsed, $pings, $workers, $bound));
my ($grants) = $t->sql("SHOW GRANTS FOR 'markets'\@'localhost'");
unlike(join(' ', @{ $grants || [] }), qr/ALL PRIVILEGES ON \*\.\*/, "the app's account is not a superuser");

# memcached down: 503 naming it; back: 200.
stop_service('memcached');
# A worker answers from a result up to a second old.
my $r;
$t->wait_until(5, sub { $r = $t->get('/readyz'); $r->{status} == 503 });
$t->is_error($r, 503, 'unavailable', 'memcached down');
like($r->{json}{error}, qr/memcached/, 'the message names memcached');
unlike($r->{json}{error}, qr/database/, 'and not the database');
ok(h($r, 'Retry-After'), 'Retry-After');
is($t->get('/healthz')->{status}, 200, '/healthz still 200');
$t->start('memcached');
ok($t->wait_until(10, sub { $t->get('/readyz')->{status} == 200 }), 'memcached back: ready again');

# MariaDB down: 503 naming it; back: 200, the workers reconnect by themselves.
stop_service('mysqld');
$t->wait_until(5, sub { $r = $t->get('/readyz'); $r->{status} == 503 });
$t->is_error($r, 503, 'unavailable', 'database down');
like($r->{json}{error}, qr/database/, 'the message names the database');
is($t->get('/healthz')->{status}, 200, '/healthz still 200');
ok((grep { /database unavailable/ } $t->log_text_lines), 'the outage is logged');
$t->start('mariadb');
ok($t->wait_until(15, sub { $t->get('/readyz')->{status} == 200 }), 'database back: ready again');
# Every worker, not only the one that answered first: ask enough times,
# once each worker's last probe (up to a second old) has expired.
sleep 1.1;
my @after = map { $t->get('/readyz')->{status} } 1 .. 10;
is_deeply(\@after, [(200) x 10], 'ready on every request after the database is back');
ok((grep { /database is back/ } $t->log_text_lines), 'the recovery is logged');

$t->finish;

# No database configured: never ready, and it says why; /healthz is 200.
my $bare = Markets::Test->new(services => [qw(memcached app nginx)]);
$r = $bare->get('/readyz');
$bare->is_error($r, 503, 'unavailable', 'no database configured');
like($r->{json}{error}, qr/database not configured/, 'the message says the database is not configured');
unlike($r->{json}{error}, qr/memcached/, 'memcached, which answers, is not named');
ok(h($r, 'Retry-After'), 'Retry-After');
is($bare->get('/healthz')->{status}, 200, '/healthz is 200 all the same');
$bare->finish;
my $nocache = Markets::Test->new(services => [qw(mariadb app nginx)]);
$r = $nocache->get('/readyz');
is($r->{status}, 200, 'a database and no memcached: ready (memcached is optional)');
is_deeply($r->{json}{data}, { status => 'ready', database => 'ok', memcached => 'not configured' }, 'and says so');
$nocache->finish;
done_testing;
