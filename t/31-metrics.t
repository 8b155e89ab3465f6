#!/usr/bin/perl
# GET /metrics (API.md; src/core/metrics.c, src/http/health.c): Prometheus
# text format 0.0.4 from an allowed address; request counters by route and
# status that move by exactly the requests sent (unknown routes under
# route="none"); a latency histogram per route with cumulative buckets up to
# 30 s whose _count is the +Inf bucket and the number of requests, and whose
# _sum is exactly the sum of the route's access-line durations (microseconds,
# printed with six decimals: no float drift); the process gauges (workers
# busy and idle, build_info, the answering process: markets_process_info);
# counters shared by the workers
# that outlive a worker SIGKILLed (and count the restart); never rate
# limited; 403 in the JSON envelope from an address metrics_allow does not
# list (X-Forwarded-For is never believed); a bad metrics_allow refuses the
# start.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(sleep);
use Markets::Test;

sub h { Markets::Test::header(@_) }

# A rate limit of 3 per minute: /metrics is scraped far more often than that
# below, and must never be limited.
my $t = Markets::Test->new(services => [qw(memcached app nginx)], env => { MARKETS_WORKERS => 2, MARKETS_RATE_LIMIT => '3/60' });

my $sample_re = qr/^([a-z_]+)(\{[^}]*\})? (\d+(?:\.\d+)?(?:e[-+]?\d+)?)$/;

# One scrape: asserts the text format; returns { "name{labels}" => value },
# plus the response as {_r}. Series are keyed exactly as printed.
sub scrape {
	my ($s, $name, %opt) = @_;
	my $r = $s->get('/metrics', { headers => $opt{headers} || {} });
	my %m = (_r => $r);
	return \%m unless $r->{status} == 200;
	my (@bad, %typed, @untyped);
	for my $line (split /\n/, $r->{content}) {
		# A comment that is neither (the text format allows them).
		next if $line =~ /^# (?!HELP |TYPE )/;
		if ($line =~ /^# (HELP|TYPE) ([a-z_]+) (.+)$/) {
			$typed{$2} = $3 if $1 eq 'TYPE';
			push @bad, "bad TYPE: $line" if $1 eq 'TYPE' && $3 !~ /^(counter|gauge|histogram|summary|untyped)$/;
			next;
		}
		if ($line =~ $sample_re) {
			my ($metric, $labels, $value) = ($1, $2 // '', $3);
			(my $family = $metric) =~ s/_(bucket|sum|count)$//;
			push @untyped, $line unless $typed{$metric} || ($typed{$family} // '') eq 'histogram';
			push @bad, "bad labels: $line" if length $labels && $labels !~ /^\{[a-z_]+="(?:[^"\\]|\\.)*"(?:,[a-z_]+="(?:[^"\\]|\\.)*")*\}$/;
			push @bad, "series twice: $line" if exists $m{"$metric$labels"};
			$m{"$metric$labels"} = $value;
			next;
		}
		push @bad, "not Prometheus text: '$line'";
	}
	if ($opt{check}) {
		ok(!@bad, "$name: every line is a comment or a sample in the text format") or diag(join "\n", @bad);
		ok(!@untyped, "$name: every sample follows the # TYPE of its family") or diag(join "\n", @untyped);
		like($r->{content}, qr/\n\z/, "$name: the text ends with a newline");
	}
	return \%m;
}
sub delta { my ($before, $after, $k) = @_; ($after->{$k} // 0) - ($before->{$k} // 0) }
sub req_key { my ($route, $status) = @_; qq{markets_http_requests_total{route="$route",status="$status"}} }
# The series of markets_http_requests_total, and the histogram's, of a scrape.
sub requests_of { my ($m) = @_; map { $_ => $m->{$_} } grep { /^markets_http_requests_total\{/ } keys %$m }
sub requests_sum { my ($m) = @_; my %r = requests_of($m); my $s = 0; $s += $_ for values %r; $s }
# The histogram's series of one route.
sub hkey { my ($what, $route) = @_; "markets_http_request_duration_seconds_${what}{route=\"$route\"}" }
sub hist_routes { my ($m) = @_; my %r = map { /^markets_http_request_duration_seconds_count\{route="(.*)"\}$/ ? ($1 => 1) : () } keys %$m; sort keys %r }
# The histogram's _count summed over the routes.
sub hist_count { my ($m) = @_; my $n = 0; $n += $m->{ hkey('count', $_) } for hist_routes($m); $n }
sub buckets {
	my ($m, $route) = @_;
	my @b = map { [/,le="([^"]+)"/, $m->{$_}] } grep { /^markets_http_request_duration_seconds_bucket\{route="\Q$route\E",le=/ } keys %$m;
	return sort { ($a->[0] eq '+Inf' ? 9e99 : $a->[0]) <=> ($b->[0] eq '+Inf' ? 9e99 : $b->[0]) } @b;
}
# Under mod_fcgid a scrape shows the counts of the process that answered
# it, since it started: exactly the requests its access lines record (the
# scrape itself is counted once answered). Returns that process's
# { "ROUTE STATUS" => n } from the log, once it has caught up with the
# scrape's total (a line is written just after its answer).
sub scrape_pid { my ($m) = @_; ($m->{_r}{content} =~ /^markets_process_info\{pid="(\d+)"/m)[0] // 0 }
sub logged_requests_of {
	my ($m) = @_;
	my $pid = scrape_pid($m);
	# The scrape's own line is written once it is answered: not in its counts.
	my $own = h($m->{_r}, 'X-Request-Id') // '';
	my %n;
	$t->wait_until(5, sub {
		%n = ();
		for my $l (grep { !defined $_->{msg} && ($_->{pid} // 0) == $pid && defined $_->{status}
				&& ($_->{request_id} // '') ne $own } $t->log_lines) {
			my $route = defined $l->{route} && length $l->{route} ? "$l->{method} $l->{route}" : 'none';
			$n{ req_key($route, $l->{status}) }++;
		}
		my $sum = 0;
		$sum += $_ for values %n;
		$sum >= requests_sum($m);
	});
	return \%n;
}
sub histogram_ok {
	my ($m, $name) = @_;
	my @routes = hist_routes($m);
	ok(@routes >= 1 || requests_sum($m) == 0, "$name: the histogram has series by route, of answered requests (@routes)");
	for my $route (@routes) {
		my @b = buckets($m, $route);
		is(join(' ', map { $_->[0] } @b), '0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30 +Inf',
			"$name, $route: the buckets, up to 30 s (the longest timeout), then +Inf");
		ok(!(grep { $b[$_][1] < $b[$_ - 1][1] } 1 .. $#b), "$name, $route: the buckets are cumulative ("
			. join(' ', map { $_->[1] } @b) . ')');
		is($m->{ hkey('count', $route) }, $b[-1][1], "$name, $route: _count equals the +Inf bucket");
		like($m->{ hkey('sum', $route) } // '', qr/^\d+\.\d{6}$/, "$name, $route: _sum in seconds, to the microsecond");
	}
	# Only this test talks to the stack, one request at a time: every request
	# answered is in both the counters and the histogram.
	is(requests_sum($m), hist_count($m), "$name: the requests counted by route and status add up to the histogram's _count");
}

# ---- format ------------------------------------------------------------------
my $m0 = scrape($t, 'first scrape', check => 1);
my $r0 = $m0->{_r};
is($r0->{status}, 200, 'GET /metrics from 127.0.0.1: 200');
like(h($r0, 'Content-Type') // '', qr{^text/plain; version=0\.0\.4(;|$)}, 'Content-Type: text/plain; version=0.0.4');
unlike($r0->{content}, qr/^\{/, 'not the JSON envelope');
for my $name (qw(markets_cache_hits_total markets_cache_misses_total markets_cache_fills_total markets_cache_invalidations_total
	markets_cache_errors_total markets_db_queries_total markets_rate_limit_rejections_total markets_worker_restarts_total
	markets_db_transaction_retries_total markets_fastcgi_connections_accepted_total markets_http_requests_accepted_total
	markets_workers_all_busy_total markets_http_slow_requests_total markets_fastcgi_connections_open
	markets_listen_queue_length markets_listen_queue_max_length markets_listen_queue_limit markets_start_time_seconds
	markets_uptime_seconds), map({ qq{markets_job_runs_total{outcome="$_"}} } qw(done failed dead)),
	qq{markets_workers{state="busy"}}, qq{markets_workers{state="idle"}}) {
	like($m0->{$name} // '', qr/^\d/, "$name is exported");
	(my $family = $name) =~ s/\{.*//;
	like($r0->{content}, qr/^# TYPE \Q$family\E counter$/m, "$family is a counter") if $family =~ /_total$/;
	like($r0->{content}, qr/^# TYPE \Q$family\E gauge$/m, "$family is a gauge") if $family !~ /_total$/;
}
my ($build) = $r0->{content} =~ /^markets_build_info\{version="([^"]+)"\} 1$/m;
my $version = `'${\ Markets::Test::build_dir()}/markets' --version`;
is("markets " . ($build // '?') . "\n", $version, 'markets_build_info{version="' . ($build // '?') . '"} 1 names the running build');
# Which process answered, and whose counts these are (issue 13: mod_fcgid
# processes count apart; here every worker of the master counts together).
my ($pid, $mode, $started) = $r0->{content} =~ /^markets_process_info\{pid="(\d+)",mode="([a-z-]+)",started="(\d+)"\} 1$/m;
if ($t->mod_fcgid) {
	# Apache's processes: no master, each counts alone (t/06 checks the pid
	# against the processes mod_fcgid started).
	is($mode, 'fcgid', 'mode="fcgid" under mod_fcgid');
	like($r0->{content}, qr/^# markets: mode fcgid \(Apache mod_fcgid\): every count below is this process's own \(pid \Q$pid\E\)/m,
		'a comment line says the counts are this process\'s own');
	is($m0->{markets_start_time_seconds}, $started, 'with no master, the start time is the process\'s own');
	is($m0->{qq{markets_workers{state="busy"}}}, 1, 'one worker busy: this process, answering the scrape');
	is($m0->{qq{markets_workers{state="idle"}}}, 0, 'no other worker in it');
} else {
	my %worker = map { $_ => 1 } $t->worker_pids;
	ok($pid && $worker{$pid}, 'markets_process_info names the process that answered: one of the master\'s workers (' . ($pid // '?') . ')');
	is($mode, 'master-worker', 'mode="master-worker" under the master');
	cmp_ok($started // 0, '>=', $m0->{markets_start_time_seconds}, 'the worker started when or after the master did');
	like($r0->{content}, qr/^# markets: mode master-worker: the counts below are the whole server's, every worker's of one master \(pid \Q$pid\E answered\)$/m,
		'a comment line says whose counts these are');
	is($m0->{qq{markets_workers{state="busy"}}}, 1, 'one worker busy: the one answering the scrape');
	is($m0->{qq{markets_workers{state="idle"}}}, 1, 'the other one idle');
}
is($started, $m0->{markets_process_start_time_seconds}, 'started="…" is markets_process_start_time_seconds');
like($r0->{content}, qr/^# TYPE markets_process_info gauge$/m, 'markets_process_info is a gauge');
is($m0->{markets_process_start_time_seconds} > 0 ? 1 : 0, 1, 'markets_process_start_time_seconds is set');
like($r0->{content}, qr/^# TYPE markets_http_request_duration_seconds histogram$/m, 'the latency is a histogram');
like($r0->{content}, qr/^# TYPE markets_http_requests_total counter$/m, 'markets_http_requests_total is a counter');
histogram_ok($m0, 'first scrape');

# ---- counters move by exactly the requests sent --------------------------------
my @hz = map { $t->get('/healthz', { headers => { 'X-Request-Id' => "metrics-hz-$_" } }) } 1 .. 3;
is_deeply([map { $_->{status} } @hz], [200, 200, 200], '3 × GET /healthz: 200');
my @nf = map { $t->get("/no/such/route/$_") } 1 .. 2;
is_deeply([map { $_->{status} } @nf], [404, 404], '2 × GET of an unknown route: 404');
my $ready = $t->get('/readyz');
is($ready->{status}, 503, 'GET /readyz without a database: 503');
my $m1 = scrape($t, 'second scrape', check => 1);
my %want = (req_key('GET /healthz', 200) => 3, req_key('none', 404) => 2, req_key('GET /readyz', 503) => 1,
	req_key('GET /metrics', 200) => 1); # the first scrape counts once it is answered
my %r0 = requests_of($m0);
my %r1 = requests_of($m1);
my %moved = map { $_ => ($r1{$_} // 0) - ($r0{$_} // 0) } keys %r1, keys %r0;
delete @moved{ grep { !$moved{$_} } keys %moved };
my $fcgid_pid = $t->mod_fcgid ? scrape_pid($m1) : 0;
if ($t->mod_fcgid) {
	# Each process counts what it answered: the scrape's process's counts are
	# exactly its access lines, whichever processes Apache sent these to.
	is_deeply(\%r1, logged_requests_of($m1), "markets_http_requests_total of process $fcgid_pid: exactly the requests its access lines record");
	my %hz = map { $_ => 1 } grep { defined } map { my $l = $t->access_line("metrics-hz-$_"); $l && $l->{pid} } 1 .. 3;
	diag('mod_fcgid: the 3 × /healthz were answered by process(es) ' . join(',', sort keys %hz) . "; scrapes by $fcgid_pid");
} else {
	is_deeply(\%moved, \%want, 'markets_http_requests_total moved by exactly the requests sent: '
		. join(', ', map { "$_ +$moved{$_}" } sort keys %moved));
	is(hist_count($m1) - hist_count($m0), 7, 'the histogram counted the same 7 requests');
	is(delta($m0, $m1, hkey('count', 'GET /healthz')), 3, 'GET /healthz\'s histogram counted its 3');
	cmp_ok(delta($m0, $m1, hkey('sum', 'GET /healthz')), '>', 0, 'and their time');
	is(delta($m0, $m1, hkey('count', 'none')), 2, 'the unknown routes\' 2 are under route="none"');
}
# Exact: the sum is the access lines' durations added up, to the microsecond
# (under mod_fcgid, those of the process that answered the scrape).
my $us = 0;
$us += $_->{duration_us} for grep { ($_->{route} // '') eq '/healthz' && ($_->{method} // '') eq 'GET'
	&& (!$fcgid_pid || ($_->{pid} // 0) == $fcgid_pid) } $t->log_lines;
is($m1->{ hkey('sum', 'GET /healthz') }, sprintf('%d.%06d', int($us / 1e6), $us % 1e6),
	"GET /healthz's _sum is exactly the sum of its access lines' duration_us ($us µs)");
if ($t->mod_fcgid) {
	is($m1->{markets_http_requests_accepted_total}, requests_sum($m1) + 1,
		'markets_http_requests_accepted_total: those answered and this scrape (counted when it begins)');
} else {
	is(delta($m0, $m1, 'markets_http_requests_accepted_total'), 7,
		'markets_http_requests_accepted_total: +7 (the 6 sent and this scrape: one is counted when it begins)');
}
histogram_ok($m1, 'second scrape');
if ($t->mod_fcgid) {
	# A process's one worker is busy with every request it takes.
	is($m1->{markets_workers_all_busy_total}, $m1->{markets_http_requests_accepted_total},
		'markets_workers_all_busy_total: every request this process took (its only worker busy with it)');
}
for my $k (grep { !/^markets_http_request/ && !/^_r$/ } keys %$m1) {
	next if $k eq 'markets_rate_limit_failed_open_total';
	next if $k eq 'markets_workers_all_busy_total' && $t->mod_fcgid;
	is($m1->{$k}, $m0->{$k}, "$k did not move (nothing cached, written or limited)") if $k =~ /^markets_(cache|db|rate_limit_rejections|worker)/;
}

# ---- /metrics is not rate limited ------------------------------------------------
my @scrapes = map { $t->get('/metrics') } 1 .. 8;
is_deeply([map { $_->{status} } @scrapes], [(200) x 8], '8 more scrapes with a limit of 3 per minute: all 200');
ok(!(grep { defined h($_, 'X-RateLimit-Limit') || defined h($_, 'X-RateLimit-Remaining') || defined h($_, 'X-RateLimit-Reset') }
	@scrapes), '/metrics carries no X-RateLimit headers');
# While a limited route does get limited, and the rejection is counted.
# Windows are aligned to the epoch: wait (probing with an identity of its
# own) until this one has enough seconds left for the burst.
my $left = h($t->get('/api/me', { headers => $t->bearer(sub => '31000') }), 'X-RateLimit-Reset') // 0;
sleep $left + 0.3 if $left < 5;
my $m2 = scrape($t, 'before the limited burst');
my @me = map { $t->get('/api/me', { headers => $t->bearer(sub => '31001') }) } 1 .. 4;
is_deeply([map { $_->{status} } @me], [200, 200, 200, 429], 'GET /api/me 4 times, limit 3: 200, 200, 200, 429');
my $n429 = 1;
my $m3 = scrape($t, 'after the limited burst');
if ($t->mod_fcgid) {
	# The rejection is counted by the process that sent it.
	my %mine = %{ logged_requests_of($m3) };
	my %r3 = requests_of($m3);
	is_deeply(\%r3, \%mine, 'process ' . scrape_pid($m3) . ': its counts are its access lines\'');
	is($m3->{markets_rate_limit_rejections_total}, $mine{ req_key('GET /api/me', 429) } // 0,
		'markets_rate_limit_rejections_total: the 429s this process sent');
} else {
	is(delta($m2, $m3, 'markets_rate_limit_rejections_total'), $n429, "markets_rate_limit_rejections_total: +$n429 (the 429s sent)");
	is(delta($m2, $m3, req_key('GET /api/me', 429)), $n429, "markets_http_requests_total{GET /api/me, 429}: +$n429");
	is(delta($m2, $m3, req_key('GET /api/me', 200)), 4 - $n429, 'markets_http_requests_total{GET /api/me, 200}: +' . (4 - $n429));
}

# ---- counters survive a worker killed ------------------------------------------
# Kill the worker that answered the /healthz requests: what it counted stays.
SKIP: {
skip 'no master under mod_fcgid: each process keeps its own counts, which go with it (the comment line says so)', 1
	if $t->mod_fcgid;
my $line = $t->access_line('metrics-hz-1');
my $victim = $line && $line->{pid};
my @workers = $t->worker_pids;
ok($victim && (grep { $_ == $victim } @workers), "GET /healthz was answered by worker $victim (workers @workers)");
my $m4 = scrape($t, 'before the kill');
kill 'KILL', $victim if $victim;
ok($t->wait_until(10, sub { my @w = $t->worker_pids; @w == 2 && !grep { $_ == ($victim // 0) } @w }),
	'the killed worker is replaced');
my $m5 = scrape($t, 'after the kill', check => 1);
is($m5->{_r}{status}, 200, 'GET /metrics after the kill: 200');
is(delta($m4, $m5, 'markets_worker_restarts_total'), 1, 'markets_worker_restarts_total: +1');
# Counters and the histogram (gauges such as the open connections may
# fall: the killed worker's kept-alive front connections went with it).
my @lost = grep { ($m5->{$_} // -1) < $m4->{$_} } grep { /^markets_[a-z_]+_total(\{|$)/ || /^markets_http_request_duration_seconds_/ } keys %$m4;
ok(!@lost, 'no counter went down') or diag(join "\n", map { "$_: $m4->{$_} -> " . ($m5->{$_} // 'gone') } @lost);
is($m5->{ req_key('GET /healthz', 200) }, $m4->{ req_key('GET /healthz', 200) }, 'the /healthz requests the dead worker counted are kept');
is(hist_count($m5) - hist_count($m4), 1, 'the histogram too (+1: the scrape before the kill)');
histogram_ok($m5, 'after the kill');
$t->get('/healthz') for 1 .. 2;
my $m6 = scrape($t, 'after more requests');
is(delta($m5, $m6, req_key('GET /healthz', 200)), 2, 'counting goes on after the restart: +2');
}
$t->finish;

# ---- who may scrape: metrics_allow ------------------------------------------------
# X-Forwarded-For is never believed here, even from a trusted proxy.
my $deny = Markets::Test->new(services => [qw(app nginx)],
	env => { MARKETS_METRICS_ALLOW => '192.0.2.1', MARKETS_TRUSTED_PROXIES => '127.0.0.1' });
my $f = $deny->get('/metrics');
$deny->is_error($f, 403, 'forbidden', 'metrics_allow 192.0.2.1, from 127.0.0.1');
unlike($f->{content}, qr/markets_/, 'the 403 carries no metrics');
my $fx = $deny->get('/metrics', { headers => { 'X-Forwarded-For' => '192.0.2.1' } });
$deny->is_error($fx, 403, 'forbidden', 'X-Forwarded-For: 192.0.2.1 from a trusted proxy');
unlike($fx->{content}, qr/markets_/, 'still no metrics');
is($deny->get('/healthz')->{status}, 200, '/healthz is not affected');
$deny->finish;

my $cidr = Markets::Test->new(services => [qw(app nginx)], env => { MARKETS_METRICS_ALLOW => '192.0.2.0/24, 127.0.0.0/8' });
my $ok = $cidr->get('/metrics');
is($ok->{status}, 200, 'metrics_allow "192.0.2.0/24, 127.0.0.0/8": 127.0.0.1 may scrape');
like($ok->{content}, qr/^markets_worker_restarts_total \d+$/m, 'and gets the metrics');
$cidr->finish;

# A bad metrics_allow stops the start (exit 1, the key and value named, no socket).
my $bin = Markets::Test::build_dir() . '/markets';
my $repo = Markets::Test::repo();
my $dir = tempdir(CLEANUP => 1);
for my $bad ('not-an-address', '127.0.0.1/33', '127.0.0.1;rm', '300.1.2.3') {
	my $sock = "$dir/never.sock";
	local $ENV{MARKETS_METRICS_ALLOW} = $bad;
	my $out = `'$bin' --config '$repo/conf/markets.conf' --listen 'unix:$sock' 2>&1`;
	is($? >> 8, 1, "MARKETS_METRICS_ALLOW='$bad': the app refuses to start (exit 1)");
	like($out, qr/MARKETS_METRICS_ALLOW.*\Q$bad\E/, "MARKETS_METRICS_ALLOW='$bad': the message names the variable and value")
		or diag($out);
	ok(!-e $sock, "MARKETS_METRICS_ALLOW='$bad': no socket was opened");
}
done_testing;
