#!/usr/bin/perl
# What a crash leaves behind, under load: 48 clients buy with an
# Idempotency-Key each and retry the same key and body on 409, any 5xx and
# a dropped connection until they get their 201, while MariaDB is
# SIGKILLed (and started again), a worker is SIGKILLed, memcached is
# SIGKILLed (and started again), and MariaDB once more. Afterwards every
# acknowledged buy exists exactly once (by position id and by key), no
# position exists without the key that made it, each market's volume is
# the sum of its positions, nobody waited more than 10 s in a row on a 409
# (a dead request's reservation is taken over at once, not after a
# minute), and nothing answered 500.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use POSIX qw(_exit);
use Test::More;
use Time::HiRes qw(sleep time);
use Markets::Test;

my $CLIENTS = 48;
my $FIRST_USER = 9000;
my $t = Markets::Test->new(seed => 1, env => { MARKETS_RATE_LIMIT => '1000000/60' });
my $dir = tempdir(CLEANUP => 1);
my $users = "user_id BETWEEN $FIRST_USER AND " . ($FIRST_USER + $CLIENTS - 1);
sub count { my @r = eval { $t->sql($_[0]) }; @r ? $r[0][0] : undef }
sub alive { my $pid = shift; kill(0, $pid) && (Markets::Test::slurp("/proc/$pid/stat") =~ /^\d+ \(.*\) (\S)/s)[0] ne 'Z' }

# Fresh markets, so that a volume is exactly the sum of the positions here.
my @markets;
for my $n (1 .. 4) {
	my $r = $t->request('POST', '/api/markets', { headers => { %{ $t->bearer(sub => '8999') },
		'Content-Type' => 'application/json' }, content => qq({"name":"Crash market $n"}) });
	is($r->{status}, 201, "market $n created") or BAIL_OUT($r->{content});
	push @markets, $r->{json}{data}{id};
}
$t->sql('UPDATE markets SET status = \'active\' WHERE id IN (' . join(',', @markets) . ')');

# A client: buys until told to stop, each buy retried until its 201 (or
# the hard deadline); writes what it saw to its file.
my $started = time;
my $hard_deadline = $started + 75;
sub client {
	my ($i) = @_;
	my $user = $FIRST_USER + $i;
	my $http = HTTP::Tiny->new(timeout => 20, keep_alive => 1);
	my %headers = (Authorization => 'Bearer ' . $t->token(sub => $user), 'Content-Type' => 'application/json');
	open my $out, '>', "$dir/client-$i" or _exit(1);
	$out->autoflush(1);
	my ($n, $max409, %statuses) = (0, 0);
	while (!-e "$dir/stop" && time < $hard_deadline) {
		$n++;
		my $market = $markets[($i + $n) % @markets];
		my $amount = sprintf '%d.%02d', 1 + $n % 5, $i;
		my $key = "crash-$i-$n";
		my %req = (headers => { %headers, 'Idempotency-Key' => $key }, content => qq({"side":"yes","amount":"$amount"}));
		my $since409;
		while (1) {
			my $res = $http->request('POST', $t->base_url . $t->path("/api/markets/$market/positions"), \%req);
			my $status = $res->{status};
			# A 500 whose request id is not one the app makes (32 hex digits;
			# none is sent) is the front's: mod_fcgid's answer when the
			# process it gave the request to dies before it answers.
			my $rid = $res->{headers}{'x-request-id'} // '';
			$rid = $rid->[0] if ref $rid;
			$statuses{ $status == 500 && $rid !~ /^[0-9a-f]{32}$/ ? '500-front' : $status }++;
			if ($status == 409) {
				$since409 //= time;
			} elsif (defined $since409) {
				$max409 = time - $since409 if time - $since409 > $max409;
				undef $since409;
			}
			if ($status == 201) {
				my $id = eval { decode_json($res->{content})->{data}{id} } // 'none';
				print $out "ok $key $user $market $id $amount\n";
				last;
			}
			if (time > $hard_deadline) {
				$max409 = time - $since409 if defined $since409 && time - $since409 > $max409;
				print $out "gave-up $key $status\n";
				last;
			}
			if ($status != 409 && $status < 500) {
				(my $body = $res->{content} // '') =~ s/\s+/ /g;
				print $out "unexpected $key $status $body\n";
				last;
			}
			sleep 0.1;
		}
		sleep 0.05;
	}
	print $out "max409 $max409\n";
	print $out "status $_ $statuses{$_}\n" for sort keys %statuses;
	close $out;
	_exit(0);
}

my %kids;
for my $i (0 .. $CLIENTS - 1) {
	my $pid = fork // die "fork: $!";
	client($i) if $pid == 0;
	$kids{$pid} = $i;
}

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

# The crashes, each after the buys made progress since the last one (the
# clients' retries ride through every outage).
my $progress = sub {
	my $target = (count("SELECT COUNT(*) FROM positions WHERE $users") // 0) + 60;
	return $t->wait_until(40, sub { (count("SELECT COUNT(*) FROM positions WHERE $users") // 0) >= $target });
};
my $kill_mariadb = sub {
	my ($what) = @_;
	ok($progress->(), "buys went on before $what");
	my $mysqld = $t->pid_of('mysqld');
	ok(kill('KILL', $mysqld), "$what: MariaDB SIGKILLed");
	$t->wait_until(10, sub { !alive($mysqld) });
	$t->start('mariadb');
	ok(defined count('SELECT 1'), "$what: MariaDB started again");
};
$kill_mariadb->('first crash');
ok($progress->(), 'buys went on after MariaDB came back');
my ($victim) = app_pids();
ok($victim && kill('KILL', $victim), 'a worker SIGKILLed (pid ' . ($victim // 'none') . ')');
ok($progress->(), 'buys went on after the worker died');
my $memcached = $t->pid_of('memcached');
ok(kill('KILL', $memcached), 'memcached SIGKILLed');
$t->wait_until(10, sub { !alive($memcached) });
$t->start('memcached');
ok(alive($t->pid_of('memcached')), 'memcached started again');
$kill_mariadb->('second crash');
ok($progress->(), 'buys went on after the second crash');
open my $stop, '>', "$dir/stop" or die $!;
close $stop;

# Every client finishes its last buy (retrying as long as it takes).
my $waited = $t->wait_until($hard_deadline - time + 15, sub {
	while ((my $pid = waitpid(-1, POSIX::WNOHANG())) > 0) { delete $kids{$pid} }
	!%kids;
});
ok($waited, 'every client finished') or do { kill 'KILL', keys %kids; waitpid($_, 0) for keys %kids };
diag(sprintf('chaos run: %.1f s', time - $started));

# What the clients saw.
my (@acked, @gave_up, @unexpected, %statuses);
my $max409 = 0;
for my $i (0 .. $CLIENTS - 1) {
	for (split /\n/, Markets::Test::slurp("$dir/client-$i")) {
		my @f = split / /, $_, 2;
		if ($f[0] eq 'ok') { push @acked, [split / /, $f[1]] }
		elsif ($f[0] eq 'gave-up') { push @gave_up, $f[1] }
		elsif ($f[0] eq 'unexpected') { push @unexpected, $f[1] }
		elsif ($f[0] eq 'max409') { $max409 = $f[1] if $f[1] > $max409 }
		elsif ($f[0] eq 'status') { my ($s, $c) = split / /, $f[1]; $statuses{$s} += $c }
	}
}
diag(scalar(@acked) . ' buys acknowledged; answers seen: ' . join(', ', map { "$_ x$statuses{$_}" } sort keys %statuses));
diag(sprintf('longest stretch of 409s on one key: %.2f s', $max409));
ok(@acked > 300, 'hundreds of buys were acknowledged');
is_deeply(\@unexpected, [], 'no answer but 201, 409 or 5xx');
is_deeply(\@gave_up, [], 'no buy left unacknowledged');
ok(!$statuses{500}, 'no 500 from the app') or diag("$statuses{500} x 500");
# nginx and mod_proxy_fcgi answer 502 or 503 for a worker that died; under
# mod_fcgid Apache answers 500 ("End of script output before headers") for
# the one request the killed process had (it gives a process one at a time).
ok(($statuses{'500-front'} // 0) <= ($t->mod_fcgid ? 1 : 0),
	'no 500 from the front' . ($t->mod_fcgid ? ' but for the killed process\'s one request' : ''))
	or diag(($statuses{'500-front'} // 0) . ' x 500 from the front');
ok($max409 <= 10, 'no retry waited more than 10 s on 409');

# Exactly once, by position id: every acknowledged buy is a row of its own.
my %position = map { $_->[0] => $_ } $t->sql("SELECT id, user_id, market_id, amount FROM positions WHERE $users");
my (%seen_id, @bad);
for my $a (@acked) {
	my ($key, $user, $market, $id, $amount) = @$a;
	push @bad, "$key: id $id twice" if $seen_id{$id}++;
	my $p = $position{$id};
	push @bad, "$key: position $id missing or not it" unless $p && $p->[1] == $user && $p->[2] == $market && $p->[3] eq $amount;
}
is_deeply(\@bad, [], 'every acknowledged buy exists, once, as acknowledged');

# And by key: each position was made by exactly one key, whose stored
# response names it; each acknowledged key stored the position it answered.
my (%by_key, %made_by, @orphans);
for my $row ($t->sql("SELECT user_id, idem_key, status, response FROM idempotency_keys WHERE $users")) {
	my ($user, $key, $status, $response) = @$row;
	next unless $status == 201;
	my $id = eval { decode_json($response)->{id} } // eval { decode_json($response)->{data}{id} };
	$by_key{"$user $key"} = $id;
	push @{ $made_by{$id // 'none'} }, $key;
}
is(count("SELECT COUNT(*) FROM idempotency_keys WHERE $users AND status = 0"), 0, 'no reservation left running');
is(scalar(keys %position), scalar(keys %by_key), 'as many positions as completed keys');
push @orphans, grep { !$made_by{$_} || @{ $made_by{$_} } != 1 } keys %position;
is_deeply(\@orphans, [], 'every position was made by exactly one key (no second effect)');
is_deeply([grep { ($by_key{"$_->[1] $_->[0]"} // '') ne $_->[3] } @acked], [], 'each acknowledged key stored the position it answered');

# Volume is the sum of the positions, market by market.
my @volumes = $t->sql('SELECT m.id, m.volume, COALESCE(SUM(p.amount), 0.00) FROM markets m LEFT JOIN positions p '
	. 'ON p.market_id = m.id WHERE m.id IN (' . join(',', @markets) . ') GROUP BY m.id, m.volume');
is(scalar @volumes, scalar @markets, 'the four markets');
is($_->[1], $_->[2], "market $_->[0]: volume $_->[1] is the sum of its positions") for @volumes;
my $takeovers = grep { /left by a request that died is taken over/ } $t->log_text_lines;
my $rollbacks = grep { /completed by another request: this run is rolled back/ } $t->log_text_lines;
diag("reservations taken over: $takeovers; second runs rolled back: $rollbacks");

$t->finish;
done_testing;
