#!/usr/bin/perl
# The master's process management, seen from outside: a worker killed with
# SIGKILL is replaced and service goes on; workers dying young are respawned
# with a growing back-off; SIGHUP reloads the configuration gracefully (a
# request in flight on an old worker still completes) and refuses a bad one
# with file, line and reason; SIGUSR1 reopens the log; SIGTERM stops
# accepting at once but lets requests in flight finish.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep);
use Markets::FastCGI;
use Markets::Test;

Markets::Test::fronts_only([qw(nginx apache-proxy)],
	"the pre-forked master's process management; under mod_fcgid Apache starts and replaces the app's processes, there is no master");

# Workers come from the config file here, so that SIGHUP can change them.
my $t = Markets::Test->new(services => [qw(app nginx)], env => { MARKETS_WORKERS => undef },
	local_conf => "workers = 2\n");
my $master = $t->master_pid;

sub healthy { my $r = $t->get('/healthz'); $r->{status} == 200 }
sub alive { my $pid = shift; kill(0, $pid) && (Markets::Test::slurp("/proc/$pid/stat") =~ /^\d+ \(.*\) (\S)/s)[0] ne 'Z' }

# SIGKILL a worker: replaced, and the next requests succeed.
my @before = $t->worker_pids;
is(scalar @before, 2, 'two workers at start');
kill 'KILL', $before[0];
ok($t->wait_until(5, sub { my @w = $t->worker_pids; @w == 2 && !grep { $_ == $before[0] } @w }),
	'the killed worker is replaced');
ok(healthy(), "request after the respawn: 200") for 1 .. 10;
ok((grep { /worker $before[0] died by signal 9; replacing it/ } $t->log_text_lines), 'the death is logged');

# Workers dying young: the respawn backs off, doubling.
for my $round (1 .. 2) {
	my @w = $t->wait_until(5, sub { my @p = $t->worker_pids; @p == 2 ? \@p : undef });
	kill 'KILL', @{ $w[0] || [] };
	sleep 0.05;
}
ok($t->wait_until(15, sub { scalar(() = $t->worker_pids) == 2 }), 'workers come back after young deaths');
my @delays = map { /next spawn in (\d+) ms/ ? $1 : () } $t->log_text_lines;
ok(@delays >= 2, 'young deaths are logged with a back-off') or diag(join "\n", $t->log_text_lines);
ok((grep { $delays[$_] > $delays[$_ - 1] } 1 .. $#delays), 'the back-off grows: ' . join(',', @delays));
ok(healthy(), 'serving again after the back-off');

# SIGHUP: a new generation with the new settings; a request in flight on an
# old worker still completes.
@before = $t->worker_pids;
my $slow = Markets::FastCGI->connect($t->app_socket);
my $bytes = Markets::FastCGI::request_bytes(keep => 1);
$slow->send_bytes(substr($bytes, 0, 30));
sleep 0.2;
$t->write_local_conf("workers = 3\n");
kill 'HUP', $master;
ok($t->wait_until(10, sub {
	my @w = $t->worker_pids;
	my %old = map { $_ => 1 } @before;
	(grep { !$old{$_} } @w) == 3;
}), 'SIGHUP: three new workers');
$slow->send_bytes(substr($bytes, 30));
my $resp = $slow->read_response(id => 1);
is(Markets::FastCGI::parse_cgi($resp->{stdout})->{status}, 200, 'the request in flight across the reload completed');
ok($t->wait_until(10, sub { !grep { alive($_) } @before }), 'the old workers exited after draining');
ok(healthy(), 'serving after the reload');
ok((grep { /configuration reloaded: generation 1 with 3 workers/ } $t->log_text_lines), 'reload logged');

# A bad configuration is refused, with file, line and reason; service goes on.
@before = $t->worker_pids;
$t->write_local_conf("# a comment\nworkers = lots\n");
kill 'HUP', $master;
my $conf = $t->root . '/conf/markets.local.conf';
ok($t->wait_until(5, sub { grep { /reload refused.*\Q$conf\E:2: workers: not a non-negative integer/ } $t->log_text_lines }),
	'bad reload refused with file:line: reason');
is_deeply([$t->worker_pids], \@before, 'the running workers are kept');
ok(healthy(), 'serving after a refused reload');
ok(alive($master), 'the master lives on');

# SIGUSR1: the log is reopened after rotation.
my $log = $t->app_log;
rename $log, "$log.1" or die "rename: $!";
kill 'USR1', $master;
ok($t->wait_until(5, sub {
	my $r = $t->get('/healthz');
	my $id = Markets::Test::header($r, 'X-Request-Id');
	-e $log && Markets::Test::slurp($log) =~ /\Q$id\E/;
}), 'after SIGUSR1 new lines go to a new file');

# SIGTERM: new connections are refused at once, requests in flight finish,
# idle kept-alive connections are closed, then everything exits.
$t->write_local_conf("workers = 2\nshutdown_timeout = 20s\n");
kill 'HUP', $master;
ok($t->wait_until(10, sub { scalar(() = $t->worker_pids) == 2 }), 'back to two workers');
sleep 0.3;
my $inflight = Markets::FastCGI->connect($t->app_socket);
my $idle = Markets::FastCGI->connect($t->app_socket);
$bytes = Markets::FastCGI::request_bytes(keep => 1);
$inflight->send_bytes(substr($bytes, 0, 40));
sleep 0.3;
kill 'TERM', $master;
ok($t->wait_until(5, sub { !-e $t->app_socket }), 'SIGTERM: the socket is gone at once');
sleep 0.5;
ok(alive($master), 'the master waits for the request in flight');
my $eof = $idle->read_response(timeout => 5);
ok($eof->{eof}, 'an idle connection is closed');
$inflight->send_bytes(substr($bytes, 40));
$resp = $inflight->read_response(id => 1);
is(Markets::FastCGI::parse_cgi($resp->{stdout})->{status}, 200, 'the request in flight completed during the drain');
ok($t->wait_until(10, sub { !alive($master) }), 'the master exits once drained');
ok(!-e $t->root . '/run/markets.pid', 'the pid file is removed');
ok((grep { /"stopped"/ } $t->log_text_lines), 'stop logged');

$t->finish;
done_testing;
