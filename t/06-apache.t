#!/usr/bin/perl
# Behind Apache httpd with mod_fcgid, using conf/apache-markets.conf as
# shipped: Apache starts the app itself (FastCGI socket on fd 0, no
# --listen), the contract holds through it, Apache's own errors are JSON,
# /metrics says which mod_fcgid process answered (each counts alone), and
# the app processes exit cleanly when Apache stops them.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Markets::Test;

my $apache = '/usr/sbin/apache2';
my $modules = '/usr/lib/apache2/modules';
plan skip_all => 'apache2 with mod_fcgid is not installed (scripts/dev test installs it)'
	unless -x $apache && -e "$modules/mod_fcgid.so";

my $t = Markets::Test->new(services => []);
my $root = $t->root;
my $repo = Markets::Test::repo();
my $build = Markets::Test::build_dir();
my $port = $t->port;
my $as_root = $> == 0;

# Apache's children (and so the app) run as www-data when we are root.
chmod 0755, $root;
mkdir "$root/$_" for qw(apache apache/fcgid apache/public log run);
chmod 0777, "$root/log", "$root/apache/fcgid";

sub spew { my ($path, $text) = @_; open my $fh, '>', $path or die "$path: $!"; print $fh $text; close $fh or die $! }

spew("$root/conf/apache-app.conf", "log_file = $root/log/markets.log\ncursor_secret = apache-test-cursor-secret-0123456789abcdef\n");
chmod 0644, "$root/conf/apache-app.conf";

my $vhost = Markets::Test::slurp("$repo/conf/apache-markets.conf");
my %subst = (
	'<VirtualHost *:80>' => "<VirtualHost 127.0.0.1:$port>",
	'/usr/local/sbin/markets' => "$build/markets",
	'/etc/markets/markets.conf' => "$root/conf/apache-app.conf",
	'/usr/local/share/markets/apache-errors/' => "$repo/conf/apache-errors/",
	'/usr/local/share/markets/public' => "$root/apache/public",
);
for my $from (sort keys %subst) {
	my $n = ($vhost =~ s/\Q$from\E/$subst{$from}/g);
	ok($n, "the shipped vhost has '$from' to render") or BAIL_OUT('conf/apache-markets.conf changed shape');
}
spew("$root/apache/vhost.conf", $vhost);

spew("$root/apache/httpd.conf", <<"CONF");
ServerRoot $root/apache
ServerName localhost
Listen 127.0.0.1:$port
PidFile $root/run/apache.pid
ErrorLog $root/log/apache-error.log
LogLevel warn
@{[ $as_root ? "User www-data\nGroup www-data" : '' ]}
LoadModule mpm_event_module $modules/mod_mpm_event.so
LoadModule authz_core_module $modules/mod_authz_core.so
LoadModule alias_module $modules/mod_alias.so
LoadModule headers_module $modules/mod_headers.so
LoadModule rewrite_module $modules/mod_rewrite.so
LoadModule mime_module $modules/mod_mime.so
LoadModule unique_id_module $modules/mod_unique_id.so
LoadModule fcgid_module $modules/mod_fcgid.so
TypesConfig /etc/mime.types
FcgidIPCDir $root/apache/fcgid
FcgidProcessTableFile $root/apache/fcgid/shm
@{[ join "\n", map { "FcgidInitialEnv $_ \"$ENV{$_}:log_path=$root/log/sanitizer\"" } grep { $ENV{$_} } qw(ASAN_OPTIONS UBSAN_OPTIONS) ]}
Include $root/apache/vhost.conf
CONF

is(system($apache, '-f', "$root/apache/httpd.conf", '-t') >> 8, 0, 'apache accepts the configuration')
	or BAIL_OUT('apache config rejected');
is(system($apache, '-f', "$root/apache/httpd.conf", '-k', 'start') >> 8, 0, 'apache starts');
ok($t->wait_until(10, sub { my $r = $t->get('/healthz'); $r->{status} == 200 }), '/healthz through Apache');

my $r = $t->get('/healthz', { headers => { 'X-Request-Id' => 'apache-test.1' } });
is($r->{status}, 200, 'GET /healthz is 200');
is_deeply($r->{json}, { success => JSON::PP::true, data => { status => 'ok' } }, 'the envelope');
is(Markets::Test::header($r, 'X-Request-Id'), 'apache-test.1', 'a sane request id is kept');
ok(!ref $r->{headers}{'x-request-id'}, 'exactly one X-Request-Id header');

$t->is_error($t->get('/nope'), 404, 'not_found', 'unknown route through Apache');
$t->is_error($t->get('/healthz?a=%zz'), 400, 'bad_request', 'bad escape through Apache');
my $m = $t->request('DELETE', '/healthz');
$t->is_error($m, 405, 'method_not_allowed', 'wrong method through Apache');
is(Markets::Test::header($m, 'Allow'), 'GET, HEAD, OPTIONS', 'Allow through Apache');
$t->is_error($t->request('POST', '/healthz', { headers => { 'Content-Type' => 'text/plain' }, content => 'x' }),
	415, 'unsupported_media_type', '415 through Apache');

my $big = $t->request('POST', '/healthz', { headers => { 'Content-Type' => 'application/json' }, content => 'x' x (1024 * 1024 + 1) });
is($big->{status}, 413, 'Apache refuses a body over 1 MiB');
is($big->{json} && $big->{json}{code}, 'payload_too_large', "Apache's 413 is the JSON envelope");
like(Markets::Test::header($big, 'Content-Type') // '', qr{^application/json}, "Apache's 413 is application/json");
my $fits = $t->request('POST', '/healthz', { headers => { 'Content-Type' => 'application/json' }, content => '"' . ('x' x (1024 * 1024 - 2)) . '"' });
$t->is_error($fits, 405, 'method_not_allowed', 'a body of exactly 1 MiB reaches the app whole');
my ($line) = grep { ($_->{request_id} // '') eq Markets::Test::header($fits, 'X-Request-Id') } $t->log_lines;
is($line && $line->{status}, 405, 'the app answered the 1 MiB body');

# The app runs as Apache's FastCGI child, without --listen.
my @apps = grep {
	my $cmd = Markets::Test::slurp("/proc/$_/cmdline");
	$cmd =~ /^\Q$build\E\/markets\0?$/;
} map { m{/proc/(\d+)/} } glob '/proc/[0-9]*/cmdline';
ok(@apps >= 1, 'mod_fcgid started the app: ' . join(',', @apps));
# /metrics says which process answered: each mod_fcgid process counts alone.
my $metrics = $t->get('/metrics');
is($metrics->{status}, 200, 'GET /metrics through Apache');
my ($mpid, $mode, $started) = $metrics->{content} =~ /^markets_process_info\{pid="(\d+)",mode="([a-z-]+)",started="(\d+)"\} 1$/m;
is($mode, 'fcgid', 'markets_process_info: mode="fcgid" under mod_fcgid');
ok($mpid && grep({ $_ == $mpid } @apps), 'its pid is one of the processes mod_fcgid started (' . ($mpid // '?') . ')');
like($metrics->{content}, qr/^# markets: mode fcgid \(Apache mod_fcgid\): every count below is this process's own \(pid \Q$mpid\E\)/m,
	'a comment line says the counts are this process\'s own');
my ($master_start) = $metrics->{content} =~ /^markets_start_time_seconds (\d+)$/m;
is($master_start, $started, 'with no master, the start time is the process\'s own');
my @lines = grep { ($_->{request_id} // '') eq 'apache-test.1' } $t->log_lines;
is(scalar @lines, 1, "the app logged the request");

# Stopping Apache stops the app processes cleanly.
is(system($apache, '-f', "$root/apache/httpd.conf", '-k', 'stop') >> 8, 0, 'apache stops');
ok($t->wait_until(15, sub { !grep { kill 0, $_ } @apps }), 'the app processes exited');

$t->finish;
done_testing;
