#!/usr/bin/env perl
# An app instance (a host: its master, workers and job runner) SIGKILLed
# under load behind the nginx upstream of the replicated topology: the
# other instance serves; no acknowledged write is lost; the index jobs
# the dead instance's runner had claimed are run by the other runner once
# their lease ends.
# fronts: nginx only — the topology is the point, not the front
#
# So that the dead runner holds claimed jobs when it dies, instance 1's
# runner is stopped (SIGSTOP) meanwhile, and the embedding server (a stub,
# embedder = http) does not answer until the kill: instance 2's runner
# claims the jobs and waits on the stub. Requests in flight on the killed
# instance when it dies may fail (nginx does not resend a POST); every
# request after it must not.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp ();
use IO::Socket::INET;
use JSON::PP;
use Markets::Load;
use Markets::Test;
use POSIX ();
use Test::More;
Markets::Test::fronts_only(['nginx'], 'the topology is the point, not the front');

# ---- a stub embedding server: hangs while $stub_dir/hang exists ---------------
my $stub_dir = File::Temp::tempdir('markets-stub62-XXXXXX', TMPDIR => 1, CLEANUP => 1);
open my $flag, '>', "$stub_dir/hang" or die $!;
close $flag;
my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 64, ReuseAddr => 1)
	or die "stub: $!";
my $stub_port = $listen->sockport;
my $stub_pid = fork // die "fork: $!";
if ($stub_pid == 0) {
	$SIG{CHLD} = 'IGNORE';
	while (my $c = $listen->accept) {
		my $pid = fork // next;
		if ($pid) { close $c; next }
		local $/ = "\r\n\r\n";
		while (defined(my $head = <$c>)) {
			my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
			my $body = '';
			while (length $body < ($len // 0)) { read($c, $body, $len - length $body, length $body) or last }
			sleep 1 while -e "$stub_dir/hang";
			my $answer = encode_json({ object => 'list', model => 'stub',
				data => [{ object => 'embedding', index => 0, embedding => [1, 2, 0, 0, 0, 0, 0, 1] }] });
			print {$c} "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
				. length($answer) . "\r\n\r\n$answer";
		}
		POSIX::_exit(0);
	}
	POSIX::_exit(0);
}
close $listen;
END { kill 'KILL', $stub_pid if $stub_pid }

my $t = Markets::Test->new(topology => 'replicated', env => {
	MARKETS_WORKERS => 2, MARKETS_RATE_LIMIT => '1000000/60', MARKETS_EMBEDDER => 'http',
	MARKETS_EMBEDDER_URL => "http://127.0.0.1:$stub_port/v1/embeddings", MARKETS_EMBEDDER_MODEL => 'stub',
	MARKETS_EMBEDDING_DIM => 8, MARKETS_EMBEDDER_TIMEOUT => '60s', MARKETS_JOB_LEASE => '3s' });
my $root = $t->root;

# The processes of app instance n: its master and the master's children.
sub instance_pids {
	my ($n) = @_;
	my $master = $t->master_pid($n);
	my @pids = ($master);
	for my $stat (glob '/proc/[0-9]*/stat') {
		my $line = Markets::Test::slurp($stat) or next;
		my ($pid, $comm, $rest) = $line =~ /^(\d+) \((.*)\) (.*)$/s or next;
		my (undef, $ppid) = split ' ', $rest;
		push @pids, [$pid, $comm] if $ppid == $master;
	}
	return @pids;
}
my ($master1, @children1) = instance_pids(1);
my ($runner1) = map { $_->[0] } grep { $_->[1] eq 'markets-runner' } @children1;
ok($runner1, "instance 1's runner runs ($runner1)");
kill 'STOP', $runner1;

my $body = encode_json({ name => 'Written under load', description => 'acknowledged writes must stay' });
my $load = Markets::Load->start(port => $t->port, connections => 4, status_file => "$root/load.status",
	requests => [
		{ method => 'GET', path => '/api/markets?limit=5' },
		{ method => 'POST', path => '/api/markets', body => $body,
		  headers => { %{ $t->bearer(sub => 606) }, 'Content-Type' => 'application/json' } },
	]);
ok($t->wait_until(30, sub { $load->answered > 200 }), 'the load runs through both instances');

# Instance 2's runner has claimed index jobs and waits on the embedder.
my ($master2, @children2) = instance_pids(2);
my @claimed;
ok($t->wait_until(30, sub {
	@claimed = map { $_->[0] } $t->sql(q{SELECT id FROM jobs WHERE status = 'running'});
	@claimed > 0;
}), 'instance 2\'s runner holds claimed jobs (' . scalar(@claimed) . ')');

kill 'KILL', $master2, map { $_->[0] } @children2;
unlink "$stub_dir/hang";
ok($t->wait_until(10, sub { !kill 0, $master2 }), 'instance 2 is gone');
kill 'CONT', $runner1;

# After the kill every request is answered by instance 1.
my $after = $load->answered;
ok($t->wait_until(30, sub { $load->answered > $after + 300 }), 'the load goes on after the kill');
my $clean = 1;
for (1 .. 40) {
	my $r = $t->get('/api/markets?limit=1');
	$clean &&= $r->{status} == 200;
}
ok($clean, 'forty requests after the kill: all answered 200 by the other instance');

my $res = $load->stop;
my $acknowledged = $res->{statuses}{201} // 0;
ok($acknowledged > 0, "acknowledged writes: $acknowledged");
my ($stored) = map { $_->[0] } $t->sql(q{SELECT COUNT(*) FROM markets WHERE name = 'Written under load'});
ok($stored >= $acknowledged, "no acknowledged write was lost: $stored stored, $acknowledged acknowledged");
ok($stored <= $acknowledged + ($res->{non_2xx} // 0) + ($res->{errors} // 0),
	'and none stored that neither was acknowledged nor failed in flight');
diag("load: " . JSON::PP->new->canonical->encode({ statuses => $res->{statuses}, error_kinds => $res->{error_kinds} }));
my @bad = grep { $_ ne '200' && $_ ne '201' } keys %{ $res->{statuses} };
ok(!grep({ $_ ne '502' } @bad), 'no failure but a 502 for a request in flight on the killed instance');

# The claimed jobs: taken over by instance 1's runner after their lease.
my $list = join ',', @claimed;
ok($t->wait_until(60, sub {
	my ($left) = map { $_->[0] } $t->sql("SELECT COUNT(*) FROM jobs WHERE id IN ($list) AND status <> 'done'");
	$left == 0;
}), 'every job the dead runner had claimed is done, by the other runner');
my ($retried) = map { $_->[0] } $t->sql("SELECT COUNT(*) FROM jobs WHERE id IN ($list) AND attempts >= 2");
ok($retried >= 1, "a claimed job ran again after its lease ($retried with two attempts)");
my ($stuck) = map { $_->[0] } $t->sql(q{SELECT COUNT(*) FROM jobs WHERE status IN ('running', 'dead')});
ok($t->wait_until(60, sub {
	($stuck) = map { $_->[0] } $t->sql(q{SELECT COUNT(*) FROM jobs WHERE status <> 'done'});
	$stuck == 0;
}), 'the whole queue drains (every write\'s index job done)');

# The dead instance's log lines are not a crash of this stack's workers.
$t->finish;
done_testing;
