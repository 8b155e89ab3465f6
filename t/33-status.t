#!/usr/bin/perl
# Operating it like PHP-FPM: the process metrics move as the server does.
# Two workers; a buy made to wait on its market's row lock (held by another
# MariaDB session) keeps one busy:
# - markets_workers{state="busy"} counts it (and the worker answering the
#   scrape), idle the rest; a scrape while the other is busy counts in
#   markets_workers_all_busy_total; requests accepted less those answered
#   are the requests in flight;
# - both workers held: connections made meanwhile wait in the listen queue,
#   which the master sees (markets_listen_queue_max_length), then accepted
#   they count as open FastCGI connections until closed;
# - a worker SIGKILLed while busy counts as a restart and busy no more;
# - job runs count by outcome (done, failed, dead);
# - markets-admin status prints the same numbers as a page.
# Scrapes and buys speak FastCGI to the app's socket: through nginx, a
# request may ride a kept-alive connection of the worker that is held.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Socket::UNIX;
use POSIX ();
use Socket qw(SOCK_STREAM);
use Test::More;
use Time::HiRes qw(sleep time);
use Markets::FastCGI;
use Markets::Test;

Markets::Test::fronts_only([qw(nginx apache-proxy)], "the master's worker, listen-queue and restart gauges: under mod_fcgid Apache runs the processes (t/06, t/31 check what /metrics says there)");

my $t = Markets::Test->new(seed => 1, env => { MARKETS_WORKERS => 2, MARKETS_RATE_LIMIT => '1000000/60',
	MARKETS_JOB_BACKOFF => '100ms', MARKETS_JOB_POLL => '50ms' });
my $dir = $t->root;

# One scrape over FastCGI: { "name{labels}" => value }.
sub scrape {
	my $r = Markets::FastCGI->simple($t->app_socket, params => { REQUEST_URI => '/metrics' });
	my %m = map { /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/ ? ($1 => $2) : () } split /\n/, $r->{body};
	return \%m;
}
sub busy { $_[0]{'markets_workers{state="busy"}'} }
sub idle { $_[0]{'markets_workers{state="idle"}'} }
sub answered { my ($m) = @_; my $n = 0; $n += $m->{$_} for grep { /^markets_http_requests_total\{/ } keys %$m; $n }
sub delta { my ($a, $b, $k) = @_; ($b->{$k} // 0) - ($a->{$k} // 0) }

# Buys waiting for their market's row lock (the locking read still running;
# the job runners' claims lock rows too, but other ones).
sub lock_waits {
	($t->sql(q{SELECT COUNT(*) FROM information_schema.processlist WHERE USER = 'markets'
		AND INFO LIKE '%FROM markets WHERE id = ? FOR UPDATE'}))[0][0];
}
# Active markets, whose buys take the row lock (an inactive one is a 409 first).
my @active = map { $_->[0] } $t->sql(q{SELECT id FROM markets WHERE status = 'active' ORDER BY id LIMIT 3});

# A buy over FastCGI in a child process; its status lands in $dir/buy-$name.
sub buy_in_background {
	my ($id, $name) = @_;
	my $body = '{"side":"yes","amount":"1.00"}';
	# A user of its own: two buys of one user would queue on the user row.
	my $auth = 'Bearer ' . $t->token(sub => 3300 + unpack('%16C*', $name));
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		my $r = eval {
			Markets::FastCGI->simple($t->app_socket, body => $body, params => { REQUEST_METHOD => 'POST',
				REQUEST_URI => "/api/markets/$id/positions", CONTENT_TYPE => 'application/json',
				CONTENT_LENGTH => length $body, HTTP_AUTHORIZATION => $auth });
		};
		open my $fh, '>', "$dir/buy-$name" or POSIX::_exit(1);
		print $fh $r && defined $r->{status} ? $r->{status} : 'none';
		close $fh;
		POSIX::_exit(0);
	}
	return $pid;
}
sub buy_status { my $s = Markets::Test::slurp("$dir/buy-$_[0]"); $s eq '' ? undef : $s }

# ---- at rest -------------------------------------------------------------------
my $m0 = scrape();
is(busy($m0), 1, 'at rest: one worker busy, the one answering the scrape');
is(idle($m0), 1, 'and one idle');
cmp_ok($m0->{markets_listen_queue_limit} // 0, '>', 0, "the listen queue's limit (backlog) is known: $m0->{markets_listen_queue_limit}");
is($m0->{markets_listen_queue_length}, 0, 'nothing waits in it');
my $now = time;
ok($m0->{markets_start_time_seconds} <= $now && $m0->{markets_start_time_seconds} > $now - 600,
	"markets_start_time_seconds is the master's start ($m0->{markets_start_time_seconds})");
ok(defined $m0->{markets_uptime_seconds} && $m0->{markets_uptime_seconds} <= $now - $m0->{markets_start_time_seconds} + 1,
	"markets_uptime_seconds: $m0->{markets_uptime_seconds}");

# ---- one worker held by a slow buy --------------------------------------------------
my $locker = $t->hold_row_lock($active[0], 4);
my $buyer = buy_in_background($active[0], 'one');
# Scrape only once it waits: a worker accepts every connection waiting
# when it wakes, a scrape's too, and would answer it after the buy.
ok($t->wait_until(10, sub { lock_waits() == 1 }), 'a buy waits for its lock');
my $m1;
ok($t->wait_until(10, sub { $m1 = scrape(); busy($m1) == 2 }), 'while a buy waits for its lock: two workers busy')
	or diag(explain($m1));
is(idle($m1), 0, 'none idle');
cmp_ok(delta($m0, $m1, 'markets_workers_all_busy_total'), '>=', 1,
	'a scrape that began while the other worker was busy counts in markets_workers_all_busy_total');
is($m1->{markets_http_requests_accepted_total} - answered($m1), 2,
	'requests accepted less those answered: the two in flight (the buy, this scrape)');
waitpid $buyer, 0;
close $locker;
is(buy_status('one'), 201, 'the buy went through once the lock was free');
my $m2 = scrape();
is(busy($m2), 1, 'afterwards one worker busy again (the scrape)');
is($m2->{markets_http_requests_accepted_total} - answered($m2), 1, 'and one request in flight: the scrape');

# ---- both workers held: the listen queue ---------------------------------------------
# One at a time, for the same reason.
$locker = $t->hold_row_lock($active[1], 6);
my @buyers = buy_in_background($active[1], 'queue-1');
ok($t->wait_until(10, sub { lock_waits() == 1 }), 'a buy waits for the lock: one worker is held');
push @buyers, buy_in_background($active[1], 'queue-2');
ok($t->wait_until(10, sub { lock_waits() == 2 }), 'a second one waits too: both workers are held');
my @waiting = map { IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $t->app_socket) or die "connect: $!" } 1 .. 5;
# The master looks once a second; the lock is held for seconds more.
sleep 2.5;
waitpid $_, 0 for @buyers;
close $locker;
is_deeply([map { buy_status("queue-$_") } 1 .. 2], [201, 201], 'both buys went through');
my $m3 = scrape();
cmp_ok($m3->{markets_listen_queue_max_length}, '>=', 5,
	"the 5 connections made while every worker was held waited in the listen queue (max $m3->{markets_listen_queue_max_length})");
cmp_ok($m3->{markets_fastcgi_connections_open}, '>=', 6,
	"accepted since, they are open FastCGI connections ($m3->{markets_fastcgi_connections_open}, with the scrape's)");
cmp_ok(delta($m2, $m3, 'markets_fastcgi_connections_accepted_total'), '>=', 5 + 2 + 1,
	'markets_fastcgi_connections_accepted_total counts them, the buys\' and the scrape\'s');
ok($t->wait_until(5, sub { scrape()->{markets_listen_queue_length} == 0 }), 'the queue is empty again at the next look');
close $_ for @waiting;
ok($t->wait_until(5, sub { scrape()->{markets_fastcgi_connections_open} < 5 }), 'closed, they are open no more');

# ---- a worker killed while busy ------------------------------------------------------
$locker = $t->hold_row_lock($active[2], 4);
my $doomed = buy_in_background($active[2], 'killed');
ok($t->wait_until(10, sub { lock_waits() == 1 }), 'a buy waits for its lock');
my $m4 = scrape();
is(busy($m4), 2, 'two busy');
my @old = $t->worker_pids;
kill 'KILL', @old;
ok($t->wait_until(15, sub { my @w = $t->worker_pids; @w == 2 && !grep { my $o = $_; grep { $_ == $o } @w } @old }),
	'both workers SIGKILLed (one of them mid-request) are replaced');
my $m5 = scrape();
is(delta($m4, $m5, 'markets_worker_restarts_total'), 2, 'markets_worker_restarts_total: +2');
is(busy($m5), 1, 'the dead busy worker counts as busy no more: only the scrape is');
is(idle($m5), 1, 'one idle');
waitpid $doomed, 0;
close $locker;

# ---- job outcomes ------------------------------------------------------------------
ok($t->wait_until(20, sub { ($t->sql(q{SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running', 'failed')}))[0][0] == 0 }),
	'no job pending');
my $m6 = scrape();
$t->sql(q{INSERT INTO jobs (type, payload, max_attempts) VALUES ('index_market', '{"market_id":1}', 3),
	('frobnicate', '{"market_id":1}', 2)});
ok($t->wait_until(20, sub { ($t->sql(q{SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running', 'failed')}))[0][0] == 0 }),
	'an index job and a job of an unknown type (2 attempts) ran');
my $m7 = scrape();
is(delta($m6, $m7, 'markets_job_runs_total{outcome="done"}'), 1, 'markets_job_runs_total{outcome="done"}: +1');
is(delta($m6, $m7, 'markets_job_runs_total{outcome="failed"}'), 1, '{outcome="failed"}: +1 (its first attempt)');
is(delta($m6, $m7, 'markets_job_runs_total{outcome="dead"}'), 1, '{outcome="dead"}: +1 (its last)');

# ---- markets-admin status: the same numbers, for a person ------------------------------------
my $admin = Markets::Test::build_dir() . '/markets-admin';
my $url = $t->base_url . '/metrics';
my $page = `'$admin' status --url '$url' 2>&1`;
is($? >> 8, 0, 'markets-admin status --url (through nginx): exit 0') or diag($page);
my $m8 = scrape();
my %f = map { /^([a-z ]+):\s+(.*)$/ ? ($1 => $2) : () } split /\n/, $page;
diag($page);
is($f{url}, $url, 'it names the URL read');
my ($v) = map { /^markets_build_info\{version="(.*)"\}$/ ? $1 : () } keys %$m8;
is($f{version}, $v, "version: $v");
is($f{'accepted requests'}, $m8->{markets_http_requests_accepted_total} - 1,
	'accepted requests: the metrics\' (less the scrape after it)');
like($f{'answered requests'}, qr/^\d+ \(2xx \d+, 3xx \d+, 4xx \d+, 5xx \d+\)$/, 'answered requests, by class');
is($f{'busy workers'}, '1 (this request\'s included)', 'busy workers: 1, its own request');
is($f{'idle workers'}, 1, 'idle workers: 1');
is($f{'total workers'}, 2, 'total workers: 2');
is($f{'worker restarts'}, $m8->{markets_worker_restarts_total}, "worker restarts: $f{'worker restarts'}");
is($f{'max listen queue'}, $m8->{markets_listen_queue_max_length}, "max listen queue: $f{'max listen queue'}");
is($f{'listen queue limit'}, $m8->{markets_listen_queue_limit}, 'listen queue limit');
is($f{'all workers busy'}, "$m8->{markets_workers_all_busy_total} times", 'all workers busy');
is($f{'job runs'}, sprintf('done %d, failed %d, dead %d', map { $m8->{qq{markets_job_runs_total{outcome="$_"}}} } qw(done failed dead)),
	"job runs: $f{'job runs'}");
like($f{uptime}, qr/^\d+ s \(\d+d \d+h \d+m \d+s\)$/, 'uptime');
my $gone = 'http://127.0.0.1:' . Markets::Test::free_port() . '/metrics';
my $out = `'$admin' status --url '$gone' --timeout 2 2>&1`;
is($? >> 8, 1, 'nothing listening: exit 1');
like($out, qr/\Q$gone\E/, 'and the message names the URL');
$out = `'$admin' status --url '${\ $t->base_url}/healthz' 2>&1`;
is($? >> 8, 1, 'a URL that is not the metrics: exit 1');
like($out, qr/not the metrics/, 'and says so') or diag($out);
$out = `'$admin' status --bogus 2>&1`;
is($? >> 8, 2, 'a bad option: exit 2');

$t->finish;
done_testing;
