#!/usr/bin/perl
# The slow-request log: a request slower than slow_request_threshold gets
# one more log line — a warning, "msg":"slow request", its access fields —
# saying where its time went ("phases_ms": auth, cache, database, wait,
# render, total) and the SQL it ran without values ("statements",
# "statements_run"); markets_http_slow_requests_total counts them. Fast
# requests get none; with the threshold 0 neither.
# A buy waits on its market's row lock, held by another MariaDB session:
# most of its time is the database's. A market read while memcached is
# stopped (SIGSTOP) waits out memcached_timeout: most of it is the cache's.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use Markets::Test;

my $t = Markets::Test->new(seed => 1, env => { MARKETS_RATE_LIMIT => '1000000/60', MARKETS_SLOW_REQUEST_THRESHOLD => '300ms',
	MARKETS_MEMCACHED_TIMEOUT => '600ms' });

sub slow_lines { grep { ($_->{msg} // '') eq 'slow request' } $t->log_lines }
sub slow_line { my ($id) = @_; my ($l) = grep { ($_->{request_id} // '') eq $id } slow_lines(); $l }
sub slow_count { ($t->get('/metrics')->{content} =~ /^markets_http_slow_requests_total (\d+)$/m)[0] }
# markets_http_slow_requests_total moved by $want since $before. Under
# mod_fcgid each process counts its own: there the count of the process
# that answers the scrape must be its own slow lines, and when a request
# id is given, that process must be the one that answered it (Apache
# hands sequential requests to the idle process it has).
sub slow_counted_ok {
	my ($before, $want, $name, $rid) = @_;
	return is(slow_count() - $before, $want, $name) unless $t->mod_fcgid;
	my $content = $t->get('/metrics')->{content};
	my ($n) = $content =~ /^markets_http_slow_requests_total (\d+)$/m;
	my ($pid) = $content =~ /^markets_process_info\{pid="(\d+)"/m;
	if (defined $rid) {
		my $line = $t->access_line($rid);
		is($pid, $line && $line->{pid}, "$name: the scrape reached the process that answered $rid");
	}
	is($n, scalar(grep { $_->{pid} == ($pid // 0) } slow_lines()), "$name (mod_fcgid: process " . ($pid // '?') . "'s count is its slow lines)");
}
sub buy {
	my ($id, $rid) = @_;
	return $t->request('POST', "/api/markets/$id/positions", { headers => { %{ $t->bearer(sub => '4400') },
		'Content-Type' => 'application/json', 'X-Request-Id' => $rid }, content => '{"side":"no","amount":"3.25"}' });
}
my ($market) = map { $_->[0] } $t->sql(q{SELECT id FROM markets WHERE status = 'active' ORDER BY id LIMIT 1});

# ---- fast requests: no slow line -----------------------------------------------------
my $before = slow_count();
is($t->get('/healthz', { headers => { 'X-Request-Id' => 'fast-1' } })->{status}, 200, 'GET /healthz');
is(buy($market, 'fast-buy')->{status}, 201, 'a buy with no lock in its way');
ok($t->access_line('fast-buy'), 'is logged');
ok(!slow_line('fast-1') && !slow_line('fast-buy'), 'fast requests get no slow line');

# ---- a buy held by a row lock: the database's time -------------------------------------
# Held 2 s: a buy that reaches it late on a loaded machine still waits.
my $locker = $t->hold_row_lock($market, 2);
my $r = buy($market, 'slow-buy');
close $locker;
is($r->{status}, 201, 'a buy that waited for its lock went through');
my $access = $t->access_line('slow-buy');
my $slow = slow_line('slow-buy');
ok($slow, 'it is slower than 300ms: a slow line') or BAIL_OUT('no slow line');
is($slow->{level}, 'warn', 'a warning');
is_deeply([@$slow{qw(method route status user client)}], ['POST', '/api/markets/:id/positions', 201, 4400, '127.0.0.1'],
	'with the access line\'s fields');
is($slow->{duration_us}, $access->{duration_us}, 'and its duration');
my $p = $slow->{phases_ms} || {};
is_deeply([sort keys %$p], [qw(auth cache database render total wait)], 'phases: auth, cache, database, wait, render, total');
ok(!(grep { $_ !~ /^\d+(\.\d+)?$/ } values %$p), 'each in milliseconds') or diag(explain($p));
is(sprintf('%.3f', $p->{total}), sprintf('%.3f', $access->{duration_us} / 1000), 'total is the duration, to the microsecond');
my $sum = 0;
$sum += $p->{$_} for qw(auth cache database wait render);
ok(abs($sum - $p->{total}) < 0.002, "the phases add up to the total ($sum ms)");
ok($p->{database} > $p->{total} / 2, "most of it was the database's: $p->{database} of $p->{total} ms (the lock wait)");
ok($p->{auth} > 0, "the token's verification is the auth phase ($p->{auth} ms)");
diag(sprintf 'slow buy: %s', join ', ', map { "$_ $p->{$_} ms" } qw(auth cache database wait render total));
my @sql = @{ $slow->{statements} || [] };
ok(@sql >= 2 && @sql <= 8, scalar(@sql) . ' statements listed (at most 8)');
cmp_ok($slow->{statements_run}, '>=', scalar @sql, "statements_run: $slow->{statements_run}");
ok((grep { /FROM markets WHERE id = \? FOR UPDATE/ } @sql), 'the locking read is there, its value a ?') or diag(explain(\@sql));
ok(!(grep { /\d/ || /3\.25|4400|'/ } @sql), 'no value in any statement: no digit, no quoted text') or diag(explain(\@sql));
slow_counted_ok($before, 1, 'markets_http_slow_requests_total: +1', 'slow-buy');

# ---- a market read while memcached does not answer: the cache's time -----------------------
my $mc = $t->pid_of('memcached');
kill 'STOP', $mc;
my $g = $t->get("/api/markets/$market", { headers => { 'X-Request-Id' => 'slow-get' } });
kill 'CONT', $mc;
is($g->{status}, 200, 'GET /api/markets/:id with memcached stopped: 200 from MariaDB');
my $gs = slow_line('slow-get');
ok($gs, 'waiting out memcached_timeout made it slow');
ok($gs && $gs->{phases_ms}{cache} > $gs->{phases_ms}{total} / 2,
	sprintf('most of it was the cache\'s: %s of %s ms', $gs ? @{ $gs->{phases_ms} }{qw(cache total)} : ('?', '?')));
ok($gs && (grep { /FROM markets/ } @{ $gs->{statements} }), 'and the row was read from MariaDB') or diag(explain($gs));

# ---- threshold 0: no slow log -------------------------------------------------------------
# The app again, the threshold 0 in its last config file (and no longer
# in its environment, which would win).
if ($t->mod_fcgid) {
	# No master: the stack again, which renders the app's configuration anew
	# (Apache's processes read it when they start).
	$t->stop;
	$t->write_local_conf("slow_request_threshold = 0\n");
	delete $t->{env}{MARKETS_SLOW_REQUEST_THRESHOLD};
	$t->start;
} else {
	my $app = $t->master_pid;
	kill 'TERM', $app;
	ok($t->wait_until(20, sub { !kill(0, $app) || Markets::Test::slurp("/proc/$app/stat") =~ /^\d+ \(.*\) Z/ }), 'the app stopped');
	$t->write_local_conf("slow_request_threshold = 0\n");
	delete $t->{env}{MARKETS_SLOW_REQUEST_THRESHOLD};
	$t->start('app');
}
$before = slow_count();
$locker = $t->hold_row_lock($market, 1);
$r = buy($market, 'slow-but-off');
close $locker;
is($r->{status}, 201, 'slow_request_threshold = 0: a buy held by the lock');
ok($t->access_line('slow-but-off'), 'is logged');
ok(!slow_line('slow-but-off'), 'but gets no slow line');
slow_counted_ok($before, 0, 'nor is it counted', 'slow-but-off');

$t->finish;
done_testing;
