#!/usr/bin/perl
# Many clients at once, through the front: 64 simultaneous requests are each
# answered once, with their own request id and their own access-log line;
# 64 keep-alive clients doing 20 requests each all get 200 and none hangs;
# and a worker killed with SIGKILL under load is replaced by the master,
# costing at most the requests that were on its connections — each of
# those still answered in the JSON envelope — and nothing after. (Under
# mod_fcgid Apache, not a master, starts the app's processes: the kill
# part does not apply there.)
#
# Clients are forked children released together by a barrier; each writes
# its results as JSON to a file and leaves with POSIX::_exit, so a child
# never runs the harness's destructor (which would stop the stack).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(_exit :sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);
use Markets::Test;

my $t = Markets::Test->new;
my $results_dir = tempdir('markets-conc-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $port = $t->port;
my $url = $t->base_url . $t->path('/healthz');
my $healthz = { success => JSON::PP::true, data => { status => 'ok' } };

# Forks $n clients that start together; each runs $code->($i) (under a
# 60 s alarm) and its hashref result comes back. A child that dies or
# hangs comes back as { died => reason }.
sub run_clients {
	my ($tag, $n, $code) = @_;
	pipe(my $gate_r, my $gate_w) or die "pipe: $!";
	my %kids;
	for my $i (1 .. $n) {
		my $pid = fork;
		die "fork: $!" unless defined $pid;
		if (!$pid) {
			close $gate_w;
			sysread($gate_r, my $x, 1); # EOF when the parent opens the gate
			alarm 60;
			my $res = eval { $code->($i) } || { died => "$@" };
			if (open my $fh, '>', "$results_dir/$tag-$i.json") {
				print $fh encode_json($res);
				close $fh;
			}
			_exit(0);
		}
		$kids{$pid} = $i;
	}
	close $gate_r;
	close $gate_w; # go
	my $deadline = time + 90;
	while (%kids && time < $deadline) {
		my $pid = waitpid(-1, WNOHANG);
		if ($pid > 0) { delete $kids{$pid}; next }
		sleep 0.05;
	}
	if (%kids) {
		diag("$tag: " . scalar(keys %kids) . ' client(s) hung; killing them');
		kill 'KILL', keys %kids;
		waitpid($_, 0) for keys %kids;
	}
	my @out;
	for my $i (1 .. $n) {
		my $text = Markets::Test::slurp("$results_dir/$tag-$i.json");
		push @out, (length $text ? decode_json($text) : { died => 'no result' });
	}
	return @out;
}

sub died_ok {
	my ($name, @res) = @_;
	my @died = grep { $_->{died} } @res;
	is(scalar @died, 0, "$name: every client finished") or diag(explain([map { $_->{died} } @died[0 .. ($#died < 4 ? $#died : 4)]]));
}

# One raw HTTP/1.1 request with Connection: close; reads to EOF.
sub raw_get {
	my ($path) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 10)
		or return { died => "connect: $!" };
	my $req = "GET $path HTTP/1.1\r\nHost: 127.0.0.1:$port\r\nConnection: close\r\n\r\n";
	syswrite($s, $req) == length $req or return { died => "write: $!" };
	my $raw = '';
	while (1) {
		my $n = sysread($s, $raw, 65536, length $raw);
		return { died => "read: $!" } unless defined $n;
		last if $n == 0;
	}
	my ($head, $body) = split /\r\n\r\n/, $raw, 2;
	my ($status_line, @lines) = split /\r\n/, $head // '';
	my %h;
	for (@lines) { my ($k, $v) = split /:\s*/, $_, 2; $h{lc $k} = $v }
	my ($status) = ($status_line // '') =~ m{^HTTP/1\.[01] (\d{3}) };
	$body //= '';
	if (lc($h{'transfer-encoding'} // '') eq 'chunked') {
		my $decoded = '';
		while ($body =~ s/^([0-9a-fA-F]+)[^\r]*\r\n//) {
			my $n = hex $1;
			last if $n == 0;
			$decoded .= substr($body, 0, $n, '');
			$body =~ s/^\r\n//;
		}
		$body = $decoded;
	}
	return { status => $status, headers => \%h, body => $body };
}

# Whether a non-200 answer is the contract's error envelope.
sub envelope_problem {
	my ($status, $ctype, $rid, $body) = @_;
	return 'content type ' . ($ctype // 'none') unless ($ctype // '') =~ m{^application/json; charset=utf-8$};
	my $j = eval { decode_json($body) };
	return "not JSON: $body" unless $j && ref $j eq 'HASH';
	return 'success is not false' unless defined $j->{success} && !$j->{success} && JSON::PP::is_bool($j->{success});
	return 'no code' unless defined $j->{code} && $j->{code} =~ /^[a-z_]+$/;
	return 'no message' unless defined $j->{error} && length $j->{error};
	return 'request_id differs from X-Request-Id' unless defined $rid && defined $j->{request_id} && $j->{request_id} eq $rid;
	return undef;
}

# --- 64 simultaneous requests, one connection each -----------------------------

{
	my @res = run_clients(burst => 64, sub {
		return raw_get($t->path('/healthz'));
	});
	died_ok('64 concurrent GET /healthz', @res);
	my @ok = grep { ($_->{status} // 0) == 200 } @res;
	is(scalar @ok, 64, '64 concurrent GET /healthz: all 200')
		or diag(explain([map { [$_->{status}, $_->{body}] } grep { ($_->{status} // 0) != 200 } @res]));
	my @bad_env = grep { !eval { is_deeply_quiet(decode_json($_->{body}), $healthz) } } @ok;
	is(scalar @bad_env, 0, '64 concurrent GET /healthz: every body is the healthz envelope')
		or diag(explain([map { $_->{body} } @bad_env[0 .. 2]]));
	my @bad_type = grep { ($_->{headers}{'content-type'} // '') ne 'application/json; charset=utf-8' } @ok;
	is(scalar @bad_type, 0, '64 concurrent GET /healthz: JSON content type');
	# mod_proxy_fcgi streams the app's answer (chunked, no Content-Length);
	# the other fronts pass the app's Content-Length on.
	my @bad_len = $t->front eq 'apache-proxy'
		? grep { lc($_->{headers}{'transfer-encoding'} // '') ne 'chunked' } @ok
		: grep { ($_->{headers}{'content-length'} // -1) != length $_->{body} } @ok;
	is(scalar @bad_len, 0, '64 concurrent GET /healthz: ' . ($t->front eq 'apache-proxy' ? 'chunked (Apache mod_proxy_fcgi)' : 'exact Content-Length'));
	my @ids = map { $_->{headers}{'x-request-id'} // '' } @ok;
	is(scalar(grep { /^[0-9a-f]{32}$/ } @ids), 64, '64 concurrent GET /healthz: each has a 32-hex X-Request-Id');
	my %distinct = map { $_ => 1 } @ids;
	is(scalar keys %distinct, 64, '64 concurrent GET /healthz: 64 distinct request ids');

	my (@missing, @wrong);
	for my $id (sort keys %distinct) {
		my $line = $t->access_line($id);
		if (!$line) { push @missing, $id; next }
		push @wrong, $line unless ($line->{status} // 0) == 200 && ($line->{method} // '') eq 'GET'
			&& ($line->{route} // '') eq '/healthz' && ($line->{level} // '') eq 'info';
	}
	is(scalar @missing, 0, '64 concurrent GET /healthz: an access-log line for every id') or diag("@missing[0 .. 4]");
	is(scalar @wrong, 0, '64 concurrent GET /healthz: each line says GET /healthz 200') or diag(explain($wrong[0]));
	my %count;
	$count{ $_->{request_id} // '' }++ for grep { $distinct{ $_->{request_id} // '' } } $t->log_lines;
	is(scalar(grep { $_ != 1 } values %count), 0, '64 concurrent GET /healthz: exactly one log line per id');
}

# Deep comparison without emitting a test.
sub is_deeply_quiet {
	my ($got, $want) = @_;
	return JSON::PP->new->canonical->encode($got) eq JSON::PP->new->canonical->encode($want);
}

# --- 64 keep-alive clients x 20 requests --------------------------------------

{
	my @res = run_clients(keepalive => 64, sub {
		my $http = HTTP::Tiny->new(keep_alive => 1, timeout => 15);
		my (%status, $slowest, $bad_body);
		$slowest = 0;
		$bad_body = 0;
		for (1 .. 20) {
			my $t0 = time;
			my $r = $http->get($url);
			my $took = time - $t0;
			$slowest = $took if $took > $slowest;
			$status{ $r->{status} }++;
			$bad_body++ unless $r->{status} == 200 && is_deeply_quiet(eval { decode_json($r->{content}) }, $healthz);
		}
		return { status => \%status, slowest => $slowest, bad_body => $bad_body };
	});
	died_ok('64 keep-alive clients', @res);
	my %total;
	for my $r (@res) { $total{$_} += $r->{status}{$_} for keys %{ $r->{status} || {} } }
	is_deeply(\%total, { 200 => 64 * 20 }, '64 keep-alive clients x 20 requests: all 200');
	my $bad = 0;
	$bad += $_->{bad_body} // 1 for @res;
	is($bad, 0, '64 keep-alive clients x 20 requests: every body is the healthz envelope');
	my ($slowest) = sort { $b <=> $a } map { $_->{slowest} // 99 } @res;
	# A hang guard, not a benchmark.
	cmp_ok($slowest, '<', 10, '64 keep-alive clients: no request took 10 s (hang guard)');
}

# --- A worker killed under load ---------------------------------------------

sub socket_inodes {
	my ($pid) = @_;
	my %inodes;
	for my $fd (glob "/proc/$pid/fd/*") {
		my $l = readlink $fd // next;
		$inodes{$1} = 1 if $l =~ /^socket:\[(\d+)\]$/;
	}
	return \%inodes;
}

SKIP: {
	skip 'no master to replace a killed worker: under mod_fcgid Apache manages the app processes', 1 if $t->mod_fcgid;
	my @before = $t->worker_pids;
	is(scalar @before, 2, 'two workers before the kill');
	my $victim = $before[0];
	my $hammer_for = 4; # seconds each client keeps going
	my $killed_at = 0;

	my $held;
	my $pid = fork;
	die "fork: $!" unless defined $pid;
	if (!$pid) {
		# The clients live in a sub-process so the parent can kill meanwhile.
		my @res = run_clients(hammer => 32, sub {
			my $http = HTTP::Tiny->new(keep_alive => 1, timeout => 15);
			my (%status, @bad, $slowest);
			$slowest = 0;
			my $stop = time + $hammer_for;
			while (time < $stop) {
				my $t0 = time;
				my $r = $http->get($url);
				my $took = time - $t0;
				$slowest = $took if $took > $slowest;
				$status{ $r->{status} }++;
				next if $r->{status} == 200;
				my $h = $r->{headers};
				push @bad, {
					status => $r->{status},
					ctype => ref $h->{'content-type'} ? $h->{'content-type'}[0] : $h->{'content-type'},
					rid => ref $h->{'x-request-id'} ? $h->{'x-request-id'}[0] : $h->{'x-request-id'},
					body => substr($r->{content} // '', 0, 2000),
				} if @bad < 50;
			}
			return { status => \%status, bad => \@bad, slowest => $slowest };
		});
		open my $fh, '>', "$results_dir/hammer.json" or _exit(1);
		print $fh encode_json(\@res);
		close $fh;
		_exit(0);
	}
	sleep 1.2; # let the clients get going
	# The connections the victim holds now: its sockets but the listener
	# (shared with the master). No more requests than this can die with it.
	my $master_socks = socket_inodes($t->master_pid);
	$held = grep { !$master_socks->{$_} } keys %{ socket_inodes($victim) };
	ok(kill('KILL', $victim), "SIGKILL sent to worker $victim (holding $held connection(s))");
	my @after;
	my $back = $t->wait_until(5, sub {
		@after = $t->worker_pids;
		@after == 2 && !grep { $_ == $victim } @after;
	});
	ok($back, 'the master is back to two workers within 5 s') or diag("workers now: @after");
	my ($new) = grep { my $p = $_; !grep { $_ == $p } @before } @after;
	ok($new, 'the replacement has a new pid' . ($new ? " ($new)" : ''));
	ok((grep { $_ == $before[1] } @after), 'the other worker was not touched');
	ok($t->wait_until(5, sub { grep { /worker $victim died by signal 9; replacing it/ } $t->log_text_lines }),
		'the master logged the death and the replacement');

	my $deadline = time + 60;
	my $done;
	while (time < $deadline) { $done = waitpid($pid, WNOHANG); last if $done == $pid; sleep 0.05 }
	if ($done != $pid) { kill 'KILL', $pid; waitpid($pid, 0) }
	is($done, $pid, 'the hammering clients finished');
	my $res = eval { decode_json(Markets::Test::slurp("$results_dir/hammer.json")) } || [];
	is(scalar @$res, 32, '32 hammering clients reported');
	died_ok('hammering clients', @$res);
	my (%total, @bad);
	for my $r (@$res) {
		$total{$_} += $r->{status}{$_} for keys %{ $r->{status} || {} };
		push @bad, @{ $r->{bad} || [] };
	}
	my $all = 0;
	$all += $_ for values %total;
	my $failed = $all - ($total{200} // 0);
	cmp_ok($total{200} // 0, '>', 32, "hammering: requests went through ($all in all)");
	cmp_ok($failed, '<=', $held, "hammering: failures ($failed) at most the victim's connections ($held)")
		or diag(explain(\%total));
	# A backend connection lost: nginx's 502; Apache's mod_proxy 503 (t/01-errors.t).
	my ($gw_status, $gw_code) = $t->front eq 'nginx' ? (502, 'bad_gateway') : (503, 'unavailable');
	my @not_gateway = grep { $_ != 200 && $_ != $gw_status } keys %total;
	is_deeply(\@not_gateway, [], "hammering: the only failures are ${gw_status}s") or diag(explain(\%total));
	my @problems = grep { defined } map { envelope_problem($_->{status}, $_->{ctype}, $_->{rid}, $_->{body}) } @bad;
	is(scalar @problems, 0, 'hammering: every non-200 answer is the JSON error envelope') or diag(explain(\@problems));
	my @not_bad_gateway = grep {
		$_->{status} == $gw_status && (eval { decode_json($_->{body})->{code} } // '') ne $gw_code
	} @bad;
	is(scalar @not_bad_gateway, 0, "hammering: a $gw_status says $gw_code");
	my ($slowest) = sort { $b <=> $a } map { $_->{slowest} // 99 } @$res;
	cmp_ok($slowest, '<', 10, 'hammering: no request took 10 s (hang guard)');
	if ($failed) { note("$failed request(s) failed when the worker died: " . join ', ', map { "$_ x $total{$_}" } sort keys %total) }

	# After the replacement: everything is 200 again.
	my @res2 = run_clients(after => 32, sub {
		my $http = HTTP::Tiny->new(keep_alive => 1, timeout => 15);
		my %status;
		$status{ $http->get($url)->{status} }++ for 1 .. 10;
		return { status => \%status };
	});
	died_ok('after the replacement', @res2);
	my %after_total;
	for my $r (@res2) { $after_total{$_} += $r->{status}{$_} for keys %{ $r->{status} || {} } }
	is_deeply(\%after_total, { 200 => 320 }, 'after the replacement: 32 clients x 10 requests all 200');
	is_deeply([$t->worker_pids], [sort { $a <=> $b } @after], 'after the replacement: the same two workers');
}

$t->finish;
done_testing;
