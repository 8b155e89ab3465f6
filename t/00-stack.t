#!/usr/bin/perl
# The harness itself: a private MariaDB, memcached, app and nginx come up
# on sockets under a temp dir (never the system's), the schema is there,
# and the app answers /healthz through nginx with the contract's envelope.
# `scripts/stack status` answers by its exit code what `scripts/dev up`
# decides on: with memcached SIGKILLed it is 3, and `stack start` (what `up`
# then runs) brings memcached back while leaving the rest alone.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);
use Test::More;
use Markets::Test;

my $t = Markets::Test->new;
my $root = $t->root;

# Under the mod_fcgid fronts Apache starts the app: no master, no socket
# of its own, and the cron stand-in runs the jobs.
for my $sock (qw(mysql.sock memcached.sock), $t->mod_fcgid ? () : 'markets.sock') {
	ok(-S "$root/run/$sock", "$sock is a unix socket under the test's temp dir");
}
for my $pid (qw(mysqld memcached), $t->app_pid_name, $t->front_pid_name) {
	my $p = $t->pid_of($pid);
	ok($p && kill(0, $p), "$pid runs (pid $p)");
}

# MariaDB: the schema from sql/ is applied and recorded.
my @tables = map { $_->[0] } $t->sql('SHOW TABLES');
ok((grep { $_ eq 'users' } @tables), 'users table exists');
my @versions = $t->sql('SELECT version, name FROM schema_version ORDER BY version');
is($versions[0][1], '001_users.sql', 'migration 001 recorded');
my @charset = $t->sql("SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'markets'");
is($charset[0][0], 'utf8mb4', 'database is utf8mb4');

# memcached answers on its private socket.
my $mc = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => "$root/run/memcached.sock");
ok($mc, 'memcached socket accepts');
print $mc "version\r\n";
like(scalar <$mc>, qr/^VERSION \d/, 'memcached answers');

# The app, through the front.
my $r = $t->get('/healthz');
is($r->{status}, 200, '/healthz is 200');
is_deeply($r->{json}, { success => JSON::PP::true, data => { status => 'ok' } }, '/healthz envelope');
like(Markets::Test::header($r, 'Content-Type'), qr{^application/json; charset=utf-8$}, 'JSON content type');
like(Markets::Test::header($r, 'X-Request-Id'), qr/^[0-9a-f]{32}$/, 'a fresh request id');
if ($t->front eq 'apache-proxy') {
	# mod_proxy_fcgi streams the body (chunked) whatever length the app gave.
	ok(!defined Markets::Test::header($r, 'Content-Length') || Markets::Test::header($r, 'Content-Length') == length $r->{content},
		'Content-Length, if any, is exact');
} else {
	is(Markets::Test::header($r, 'Content-Length'), length $r->{content}, 'Content-Length is exact');
}

my $h = $t->request('HEAD', '/healthz');
is($h->{status}, 200, 'HEAD /healthz is 200');
is($h->{content}, '', 'HEAD has no body');

# One structured log line per request, with the fields the contract names.
my $line = $t->access_line(Markets::Test::header($r, 'X-Request-Id'));
ok($line, 'the request has an access log line');
is($line->{$_->[0]}, $_->[1], "log line $_->[0]") for (
	[level => 'info'], [method => 'GET'], [route => '/healthz'], [status => 200]);
like($line->{time}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'log time is RFC 3339 UTC');
like($line->{duration_us}, qr/^\d+$/, 'log duration_us is an integer');

# The workers the configuration asks for (MARKETS_WORKERS=2 from the harness).
is(scalar $t->worker_pids, 2, 'two workers') unless $t->mod_fcgid;

# What `scripts/dev up` relies on, on a stack with one service crashed. (Not
# `scripts/dev up` itself: it builds var/build and runs the stack under var/.)
sub status {
	my $out = `'${\ Markets::Test::repo()}/scripts/stack' status '$root' 2>&1`;
	return ($? >> 8, $out);
}
my ($code, $out) = status();
is($code, 0, 'stack status: exit 0 while everything runs') or diag($out);
my $nginx = $t->pid_of($t->front_pid_name);
kill 'KILL', $t->pid_of('memcached');
ok($t->wait_until(10, sub { (status())[0] != 0 }), 'memcached SIGKILLed: stack status no longer exits 0');
($code, $out) = status();
is($code, 3, 'it exits 3 (not running)');
like($out, qr/^memcached: stopped$/m, 'and says memcached stopped');
like($out, qr/^MariaDB: running/m, 'and the rest still runs');
$t->start;
($code, $out) = status();
is($code, 0, 'after stack start: everything runs again') or diag($out);
$mc = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => "$root/run/memcached.sock");
ok($mc && print($mc "version\r\n") && scalar(<$mc>) =~ /^VERSION \d/, 'memcached answers again');
is($t->pid_of($t->front_pid_name), $nginx, 'what ran was left alone (the front has the same pid)');
is($t->get('/healthz')->{status}, 200, '/healthz still 200');

$t->finish;
ok(!-e "$root/run/markets.sock", 'the app removed its socket on stop') unless $t->mod_fcgid;
done_testing;
