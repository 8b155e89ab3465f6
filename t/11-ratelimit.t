#!/usr/bin/perl
# The rate limit (API.md "Rate limit"), through nginx in front of two app
# instances of two workers each sharing one memcached (through an Apache
# front: one instance, or under mod_fcgid the processes Apache starts;
# the per-worker and per-instance checks need the masters): 100 requests per
# 60 s pass for one identity and the 101st is a 429 with Retry-After, while
# another identity is unaffected; the count is one count across every
# worker and both instances; every response of a limited route carries the
# X-RateLimit-* headers and /healthz is never limited; anonymous clients
# are keyed by address (X-Forwarded-For only from a trusted proxy); a bad
# token counts against the address. With memcached gone the limiter fails
# open and logs the outage once per worker, and counts again once it is back.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use HTTP::Tiny;
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);
use Markets::FastCGI;
use Markets::Test;

sub h { Markets::Test::header(@_) }

# Stacks are kept until the end (a test that dies still has them stopped
# by the harness's END block).
my @stacks;
sub stack { my $s = Markets::Test->new(@_); push @stacks, $s; return $s }

# worker_connections 32: the kernel hands a new connection to the first idle
# worker, so a worker must fill up before its sibling accepts; with 32, the
# 40 connections opened below reach both workers of an instance.
# nginx balances over N app instances as over N hosts; the Apache fronts
# proxy to one (apache-proxy) or start the app themselves (mod_fcgid).
my $apps = Markets::Test::test_front() eq 'nginx' ? 2 : 1;
my $t = stack(apps => $apps, services => [qw(memcached app nginx)],
	env => { MARKETS_RATE_LIMIT => '100/60', MARKETS_WORKERS => 2, MARKETS_WORKER_CONNECTIONS => 32 });
# Two small stacks for addresses: without and with a trusted proxy.
my $untrusted = stack(services => [qw(memcached app nginx)], env => { MARKETS_RATE_LIMIT => '3/60' });
my $trusted = stack(services => [qw(memcached app nginx)],
	env => { MARKETS_RATE_LIMIT => '3/60', MARKETS_TRUSTED_PROXIES => '127.0.0.1' });

my $fcgid = $t->mod_fcgid;
my @masters = $fcgid ? () : map { $t->master_pid($_) } 1 .. $apps;
ok($masters[0] && $masters[1] && $masters[0] != $masters[1], "two app instances (masters @masters)") if $apps == 2;

sub me {
	my ($s, %a) = @_;
	my %h = %{ $a{headers} || {} };
	$h{Authorization} = 'Bearer ' . $s->token(sub => $a{sub}) if defined $a{sub};
	$h{'X-Request-Id'} = $a{rid} if defined $a{rid};
	return $s->get($a{path} // '/api/me', { headers => \%h });
}
sub remaining { h($_[0], 'X-RateLimit-Remaining') }

# Fixed windows are aligned to the epoch: before a counted burst, wait
# (probing with an identity of its own) until the window has at least
# $need seconds left, so that the burst cannot straddle two windows.
my $probe_sub = 900000;
sub window_left {
	my ($s, $need) = @_;
	my $r = me($s, sub => ++$probe_sub);
	my $left = h($r, 'X-RateLimit-Reset') // 0;
	return $left if $left >= $need;
	sleep $left + 0.3;
	$r = me($s, sub => ++$probe_sub);
	return h($r, 'X-RateLimit-Reset') // 0;
}

# The instance (1 or 2) a worker pid belongs to, from its parent.
sub instance_of {
	my ($pid) = @_;
	my ($ppid) = Markets::Test::slurp("/proc/$pid/stat") =~ /^\d+ \(.*\) \S+ (\d+)/s or return 0;
	return (grep { $masters[$_ - 1] == $ppid } 1 .. @masters)[0] // 0;
}

# The access lines of these request ids (waits until all are written).
sub lines_of {
	my ($s, @rids) = @_;
	my %want = map { $_ => 1 } @rids;
	my %found;
	$s->wait_until(10, sub {
		%found = map { ($_->{request_id} // '') => $_ } grep { $want{ $_->{request_id} // '' } } $s->log_lines;
		keys %found == keys %want;
	});
	return \%found;
}

# Runs $procs client processes in parallel, each sending $per requests made
# by $make->($proc, $i) (returns path and headers); returns one row per
# response: [status, limit, remaining, reset, request id].
sub parallel {
	my ($s, $procs, $per, $make) = @_;
	my @kids;
	for my $p (1 .. $procs) {
		pipe(my $rd, my $wr) or die "pipe: $!";
		my $pid = fork // die "fork: $!";
		if (!$pid) {
			close $rd;
			my $http = HTTP::Tiny->new(timeout => 30, keep_alive => 1);
			for my $i (1 .. $per) {
				my ($path, $headers) = $make->($p, $i);
				my $res = $http->get($s->base_url . $s->path($path), { headers => $headers });
				my $hd = $res->{headers};
				print $wr join("\t", $res->{status},
					map { $hd->{$_} // '-' } qw(x-ratelimit-limit x-ratelimit-remaining x-ratelimit-reset x-request-id)), "\n";
			}
			close $wr;
			POSIX::_exit(0); # no destructors: the stack belongs to the parent
		}
		close $wr;
		push @kids, [$pid, $rd];
	}
	my @rows;
	for my $k (@kids) {
		my ($pid, $rd) = @$k;
		push @rows, map { chomp; [split /\t/] } <$rd>;
		close $rd;
		waitpid $pid, 0;
	}
	return @rows;
}

ok(window_left($t, 30) >= 30, 'at least 30 s left in the window before the bursts');

# --- one identity, sequentially: 100 pass, counting down, the 101st is a 429 ----
my (@seq, @bad_headers);
for my $i (1 .. 100) {
	my $r = me($t, sub => 1001, rid => "rl-seq-$i");
	push @seq, $r;
	my ($l, $rm, $rs) = map { h($r, $_) } qw(X-RateLimit-Limit X-RateLimit-Remaining X-RateLimit-Reset);
	push @bad_headers, "#$i: $r->{status} limit=" . ($l // '-') . ' remaining=' . ($rm // '-') . ' reset=' . ($rs // '-')
		unless $r->{status} == 200 && defined $l && $l eq '100' && defined $rm && $rm =~ /^\d+$/
		&& defined $rs && $rs =~ /^\d+$/ && $rs >= 1 && $rs <= 60;
}
ok(!@bad_headers, '100 requests: each 200 with X-RateLimit-Limit 100, -Remaining and -Reset in [1, 60]')
	or diag(join "\n", @bad_headers[0 .. ($#bad_headers < 9 ? $#bad_headers : 9)]);
is_deeply([map { remaining($_) } @seq], [map { "$_" } reverse 0 .. 99], 'X-RateLimit-Remaining counts down 99 .. 0');
my @resets = map { h($_, 'X-RateLimit-Reset') // 0 } @seq;
ok(!(grep { $resets[$_] > $resets[$_ - 1] } 1 .. $#resets), 'X-RateLimit-Reset never grows within the window');

my $over = me($t, sub => 1001, rid => 'rl-seq-101');
$t->is_error($over, 429, 'rate_limited', 'the 101st request');
my ($retry, $reset) = (h($over, 'Retry-After'), h($over, 'X-RateLimit-Reset'));
is($retry, $reset, 'Retry-After equals X-RateLimit-Reset');
ok(defined $retry && $retry =~ /^\d+$/ && $retry > 0 && $retry <= 60, "Retry-After in [1, 60] (" . ($retry // "-") . ")");
is(h($over, 'X-RateLimit-Limit'), '100', '429: X-RateLimit-Limit 100');
is(remaining($over), '0', '429: X-RateLimit-Remaining 0');
my $over_line = $t->access_line('rl-seq-101');
is($over_line && $over_line->{status}, 429, '429 logged');
like($over_line && $over_line->{error} // '', qr/rate limit/, 'the log says why');
is(me($t, sub => 1001)->{status}, 429, 'and the next one too');

# Both instances answered the countdown: one count across instances.
my $seq_lines = lines_of($t, map { "rl-seq-$_" } 1 .. 100);
my %seq_by = map { $_->{pid} => instance_of($_->{pid}) } values %$seq_lines;
is(scalar(keys %$seq_lines), 100, 'every request of the countdown has an access line');
ok((grep { $_ == 1 } values %seq_by) && (grep { $_ == 2 } values %seq_by),
	'the countdown was served by both app instances (pids ' . join(',', sort keys %seq_by) . ')') if $apps == 2;

# Another identity is unaffected.
my $other = me($t, sub => 1002);
is($other->{status}, 200, 'another sub: 200');
is(remaining($other), '99', 'another sub: X-RateLimit-Remaining 99');

# API.md: "Every response under a limited route carries X-RateLimit-*": a
# 405 on a limited path is counted and says so; a 405 on /healthz is not.
my $r405 = $t->request('POST', '/api/me', { headers => { %{ $t->bearer(sub => 1002) }, 'Content-Type' => 'application/json' },
	content => '{}' });
$t->is_error($r405, 405, 'method_not_allowed', 'POST /api/me');
is(remaining($r405), '98', 'POST /api/me (405, a limited path): counted, X-RateLimit-Remaining 98');
my $hz405 = $t->request('DELETE', '/healthz', { headers => $t->bearer(sub => 1002) });
is($hz405->{status}, 405, 'DELETE /healthz: 405');
ok(!defined h($hz405, 'X-RateLimit-Remaining'), 'DELETE /healthz (an unlimited path): no X-RateLimit headers');

# /healthz is never limited, even for the limited identity.
my @hz = map { me($t, sub => 1001, path => '/healthz') } 1 .. 5;
ok(!(grep { $_->{status} != 200 } @hz), '/healthz for the limited sub: 200, 5 times');
ok(!(grep { defined h($_, 'X-RateLimit-Limit') || defined h($_, 'X-RateLimit-Remaining') || defined h($_, 'X-RateLimit-Reset') }
	@hz), '/healthz: no X-RateLimit headers');

# --- one identity, from 5 clients at once: the same single count --------------
ok(window_left($t, 15) >= 15, 'at least 15 s left in the window before the parallel burst');
my @par = parallel($t, 5, 20, sub {
	my ($p, $i) = @_;
	return ('/api/me', { Authorization => 'Bearer ' . $t->token(sub => '1003'), 'X-Request-Id' => "rl-par-$p-$i" });
});
is(scalar @par, 100, '100 parallel requests answered');
is(scalar(grep { $_->[0] == 200 } @par), 100, 'all 100 are 200');
# A GET's count is read back after its increment, in the same round trip
# as its other lookups (ratelimit.h): a concurrent request of the same
# identity may land in between, so a value can repeat (at most once per
# concurrent client), but the last increment always reads the full count.
my %seen;
$seen{ $_->[2] }++ for @par;
ok(!(grep { $_ !~ /^\d+$/ || $_ > 99 } keys %seen), 'their X-RateLimit-Remaining are all in 0 .. 99');
is((sort { $a <=> $b } keys %seen)[0], 0, 'the last one counted reads 100 (Remaining 0): one shared count');
ok(!(grep { $_ > 5 } values %seen), 'no Remaining value is read by more than the 5 concurrent clients');
ok(!(grep { $_->[1] ne '100' || $_->[3] !~ /^\d+$/ || $_->[3] < 1 || $_->[3] > 60 } @par),
	'each carries X-RateLimit-Limit 100 and a Reset in [1, 60]');
my $par_over = me($t, sub => 1003);
is($par_over->{status}, 429, 'the 101st after the parallel burst is a 429');
is(h($par_over, 'Retry-After'), h($par_over, 'X-RateLimit-Reset'), 'with Retry-After = X-RateLimit-Reset');

my $par_lines = lines_of($t, map { $_->[4] } @par);
my %par_by = map { $_->{pid} => instance_of($_->{pid}) } values %$par_lines;
my %all_by = (%seq_by, %par_by);
my @workers = sort { $a <=> $b } keys %all_by;
note('workers that served the bursts: ' . join(', ', map { "$_ (instance $all_by{$_})" } @workers));
# (Through nginx the bursts reach both instances. Through Apache they may
# all land on one worker: mod_proxy_fcgi's few pooled backend connections
# can all be the first worker's (the per-worker round below reaches every
# one), and mod_fcgid queues clients on an idle process before it starts
# another.)
ok(@workers > 1, 'the bursts were served by more than one worker pid (' . scalar(@workers) . ')') if $apps == 2;
ok((grep { $_ == 1 } values %par_by) && (grep { $_ == 2 } values %par_by), 'the parallel burst reached both instances')
	if $apps == 2;
ok(!(grep { $_ == 0 } values %all_by), 'every serving pid is a worker of a master') unless $fcgid;

# --- every worker of both instances: 40 FastCGI connections per instance -------
sub all_children {
	my ($master) = @_;
	my @kids;
	for my $stat (glob '/proc/[0-9]*/stat') {
		my ($pid, $state, $ppid) = Markets::Test::slurp($stat) =~ /^(\d+) \(.*\) (\S+) (\d+)/s or next;
		push @kids, $pid if $ppid == $master && $state ne 'Z';
	}
	return sort { $a <=> $b } @kids;
}
# (Under mod_fcgid each process Apache starts has a socket of its own,
# which only Apache knows: this part needs the masters' sockets.)
my @worker_pids = sort { $a <=> $b } map { all_children($_) } @masters;
is(scalar @worker_pids, 2 * $apps, 2 * $apps . ' workers in all (' . join(',', @worker_pids) . ')') unless $fcgid;

sub app_socket_of { my $n = shift; $t->root . '/run/' . ($n == 1 ? 'markets' : "markets-$n") . '.sock' }
my %fc = $fcgid ? () : map { my $n = $_; ($n => [map { Markets::FastCGI->connect(app_socket_of($n)) } 1 .. 40]) } 1 .. $apps;
my $conns = 40 * $apps;

# One GET /api/me as $sub on each of those connections; rows of [status,
# remaining, request id].
sub fcgi_round {
	my ($sub, $tag) = @_;
	my @rows;
	for my $n (sort keys %fc) {
		for my $i (0 .. $#{ $fc{$n} }) {
			my $rid = "rl-$tag-$n-$i";
			$fc{$n}[$i]->send_bytes(Markets::FastCGI::request_bytes(keep => 1, params => {
				REQUEST_URI => '/api/me', HTTP_AUTHORIZATION => 'Bearer ' . $t->token(sub => $sub), HTTP_X_REQUEST_ID => $rid }));
			my $p = Markets::FastCGI::parse_cgi($fc{$n}[$i]->read_response(id => 1)->{stdout});
			push @rows, [$p->{status} // 0, $p->{headers}{'x-ratelimit-remaining'} // '-', $rid];
		}
	}
	return @rows;
}
sub pids_of { my ($rows) = @_; my $l = lines_of($t, map { $_->[2] } @$rows); sort { $a <=> $b } keys %{ { map { $_->{pid} => 1 } values %$l } } }

SKIP: {
skip 'per-worker FastCGI connections need the masters\' sockets: under mod_fcgid only Apache has them', 1 if $fcgid;
ok(window_left($t, 15) >= 15, 'at least 15 s left in the window before the per-worker round');
my @every = fcgi_round(1004, 'every');
is(scalar(grep { $_->[0] == 200 } @every), $conns, "$conns requests on $conns connections to the instances: all 200");
is_deeply([sort { $a <=> $b } map { $_->[1] } @every], [100 - $conns .. 99],
	'their X-RateLimit-Remaining are ' . (100 - $conns) . ' .. 99, each once');
is_deeply([pids_of(\@every)], \@worker_pids, 'every worker of every instance served some of them: one count for all');
}

# --- anonymous clients: the address; a bad token counts against it -------------
my $xff = sub { { 'X-Forwarded-For' => $_[0] } };
my $a1 = me($t, headers => $xff->('203.0.113.1'));
$t->is_error($a1, 401, 'unauthorized', 'anonymous GET /api/me');
like(remaining($a1) // '', qr/^\d+$/, 'an anonymous 401 carries X-RateLimit-Remaining');
ok(defined h($a1, 'X-RateLimit-Limit') && defined h($a1, 'X-RateLimit-Reset'), 'and -Limit and -Reset');
my $a2 = me($t, headers => $xff->('203.0.113.2'));
is(remaining($a2), remaining($a1) - 1, 'another X-Forwarded-For from 127.0.0.1 (not trusted): the same count');
my $bad = me($t, headers => { Authorization => 'Bearer not.a.token' });
is($bad->{status}, 401, 'a bad token: 401');
is(remaining($bad), remaining($a1) - 2, 'a bad token counts against the address');
ok(defined h($bad, 'X-RateLimit-Limit') && defined h($bad, 'X-RateLimit-Reset'), 'its 401 carries the rate-limit headers');
is(remaining(me($t)), remaining($a1) - 3, 'and the address count goes on');

# 3/60 without trusted proxies: two X-Forwarded-For values are one client.
ok(window_left($untrusted, 10) >= 10, 'untrusted stack: at least 10 s left in the window');
my @u = map { me($untrusted, headers => $xff->($_)) } qw(203.0.113.1 203.0.113.2 203.0.113.1 203.0.113.2);
is_deeply([map { $_->{status} } @u], [401, 401, 401, 429], 'no trusted proxy: 3 requests over two X-Forwarded-For, the 4th is a 429');
is_deeply([map { remaining($_) } @u], [2, 1, 0, 0], 'no trusted proxy: one count');

# 3/60 with 127.0.0.1 trusted: the rightmost untrusted X-Forwarded-For entry.
ok(window_left($trusted, 10) >= 10, 'trusted stack: at least 10 s left in the window');
my @tr = map { me($trusted, headers => $xff->($_)) }
	'203.0.113.1', '203.0.113.2', '203.0.113.1', '203.0.113.1', '203.0.113.1';
is_deeply([map { $_->{status} } @tr], [401, 401, 401, 401, 429], 'trusted proxy: 203.0.113.1 is limited on its 4th');
is_deeply([map { remaining($_) } @tr], [2, 2, 1, 0, 0], 'trusted proxy: two clients, two counts');
is(me($trusted, headers => $xff->('203.0.113.2'))->{status}, 401, 'trusted proxy: 203.0.113.2 is not limited');
is(me($trusted, headers => $xff->('198.51.100.7, 203.0.113.1'))->{status}, 429,
	'a spoofed leftmost entry does not help: the rightmost untrusted one is the client');
is(me($trusted, headers => $xff->('203.0.113.1, 127.0.0.1'))->{status}, 429, 'trusted hops on the right are skipped');
is(remaining(me($trusted)), 2, 'without X-Forwarded-For the client is 127.0.0.1 itself');
# A proxy may add its own X-Forwarded-For line rather than append to the
# client's (HAProxy's option forwardfor does), and nginx passes each line
# as its own parameter: the last line is the nearest hop's.
my $two = me($trusted, headers => { 'X-Forwarded-For' => ['198.51.100.8', '203.0.113.1'] });
is($two->{status}, 429, 'two X-Forwarded-For lines: the last (the trusted proxy\'s) names the client');
my @thz = map { me($trusted, path => '/healthz', headers => $xff->('203.0.113.1')) } 1 .. 5;
ok(!(grep { $_->{status} != 200 || defined h($_, 'X-RateLimit-Remaining') } @thz),
	'/healthz for a limited address: 200 without X-RateLimit headers, 5 times');
$untrusted->finish;
$trusted->finish;

# --- memcached down: fail open, one log line per worker; back: counting again --
sub memcached_lines {
	my ($re) = @_;
	return grep { ($_->{msg} // '') =~ $re } $t->log_lines;
}
is(scalar(memcached_lines(qr/memcached unreachable/)), 0, 'no memcached outage logged so far');

my $mc = $t->pid_of('memcached');
ok($mc && $mc > 1, "memcached pid $mc");
kill 'TERM', $mc if $mc && $mc > 1;
ok($t->wait_until(10, sub { !kill(0, $mc) || (Markets::Test::slurp("/proc/$mc/stat") =~ /^\d+ \(.*\) Z/s) }),
	'memcached stopped');

my @down = parallel($t, 4, 30, sub {
	my ($p, $i) = @_;
	return ('/api/me', { Authorization => 'Bearer ' . $t->token(sub => '2001'), 'X-Request-Id' => "rl-down-$p-$i" });
});
is(scalar @down, 120, 'memcached down: 120 requests answered');
is(scalar(grep { $_->[0] == 200 } @down), 120, 'memcached down: all 200 (fail open), past the limit of 100');
ok(!(grep { $_->[1] ne '100' || $_->[2] !~ /^\d+$/ || $_->[3] !~ /^\d+$/ } @down),
	'memcached down: the X-RateLimit headers are still there');
my @down_fc = fcgi_round(2001, 'down');
if (!$fcgid) {
	is(scalar(grep { $_->[0] == 200 && $_->[1] =~ /^\d+$/ } @down_fc), $conns,
		"memcached down: a request on each of the $conns connections, all 200 with X-RateLimit-Remaining");
	is_deeply([pids_of(\@down_fc)], \@worker_pids, 'memcached down: every worker served during the outage');
} else {
	# The processes that served during the outage are those Apache started.
	@worker_pids = sort { $a <=> $b } keys %{ { map { $_->{pid} => 1 } values %{ lines_of($t, map { $_->[4] } @down) } } };
}
my @unreachable = memcached_lines(qr/memcached unreachable/);
ok(@unreachable <= @worker_pids, 'at most one "memcached unreachable" line per worker process, not one per request ('
	. scalar(@unreachable) . ' lines for ' . (120 + @down_fc) . ' requests)');
my %unreachable_pids;
$unreachable_pids{ $_->{pid} }++ for @unreachable;
ok(!(grep { $_ > 1 } values %unreachable_pids), 'no worker logs the outage twice');
is_deeply([sort { $a <=> $b } keys %unreachable_pids], \@worker_pids, 'each worker logged the outage, once');

# Back: counting resumes (a fresh memcached: a new count), and it is logged.
$t->start('memcached');
my $new_mc = $t->pid_of('memcached');
ok($new_mc && $new_mc != $mc, "memcached restarted (pid $new_mc)");
my ($before, $after);
ok($t->wait_until(15, sub {
	$before = me($t, sub => 2002);
	$after = me($t, sub => 2002);
	my ($b, $a) = (remaining($before), remaining($after));
	defined $b && defined $a && $b < 100 && $a == $b - 1;
}), 'memcached back: X-RateLimit-Remaining decreases again (' . (remaining($before) // '-') . ' then ' . (remaining($after) // '-') . ')');
ok($t->wait_until(10, sub { memcached_lines(qr/memcached is back/) }), 'the end of the outage is logged');
# Every worker counts again (libmemcached retries a failed server after 1 s).
SKIP: {
skip 'per-worker FastCGI connections need the masters\' sockets: under mod_fcgid only Apache has them', 1 if $fcgid;
my ($round, @back) = (0);
ok($t->wait_until(15, sub {
	@back = fcgi_round(2100 + ++$round, "back$round");
	(grep { $_->[0] == 200 } @back) == $conns
		&& join(',', sort { $a <=> $b } map { $_->[1] } @back) eq join(',', 100 - $conns .. 99);
}), "memcached back: every worker counts again ($conns requests: Remaining " . (100 - $conns) . ' .. 99, each once)');
my %back_pids;
$back_pids{ $_->{pid} }++ for memcached_lines(qr/memcached is back/);
is_deeply([sort { $a <=> $b } keys %back_pids], \@worker_pids, 'each worker logged "memcached is back"');
ok(!(grep { $_ > 1 } values %back_pids), '... once');
}
is(scalar(memcached_lines(qr/memcached unreachable/)), scalar(@unreachable), 'no new outage lines once it is back');
$_->close for map { @$_ } values %fc;

$t->finish;
done_testing;
