#!/usr/bin/perl
# Behind Apache httpd, with the shipped configuration as scripts/stack
# renders it: conf/apache-markets.conf (mod_fcgid: Apache starts the app
# itself, FastCGI socket on fd 0, no --listen), conf/apache-proxy-fcgi.conf
# (mod_proxy_fcgi in front of the master's socket) or the shared-hosting
# owner's files (conf/shared-hosting/: .htaccess and markets.fcgi under the
# host's Apache, the app running as the owner through suEXEC). Under the
# nginx front (MARKETS_TEST_FRONT unset) it checks the mod_fcgid one. The
# contract holds through Apache, Apache's own errors are JSON,
# Authorization reaches the app, and under mod_fcgid /metrics says which
# process answered (each counts alone) and the app processes exit cleanly
# when Apache stops them.
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

my $front = Markets::Test::test_front();
$front = 'apache' if $front eq 'nginx';
my $t = Markets::Test->new(front => $front, services => [qw(app nginx)],
	local_conf => "cursor_secret = apache-test-cursor-secret-0123456789abcdef\n");
my $root = $t->root;
my $repo = Markets::Test::repo();
my $build = Markets::Test::build_dir();

# What runs is what is shipped: the rendered files are the shipped ones
# with the stack's paths put in, and nothing else changed.
sub unrender {
	my ($path, @pairs) = @_;
	my $text = Markets::Test::slurp($path);
	while (my ($to, $from) = splice @pairs, 0, 2) { $text =~ s/\Q$from\E/$to/g }
	return $text;
}
if ($front eq 'apache') {
	my $vhost = "$root/apache/vhost.conf";
	like(Markets::Test::slurp($vhost), qr{^\s*FcgidWrapper \Q$build\E/markets virtual$}m, 'the vhost runs the built markets');
	is(unrender($vhost, '<VirtualHost *:80>' => "<VirtualHost 127.0.0.1:${\ $t->port}>",
			'/usr/local/sbin/markets' => "$build/markets", '/etc/markets/markets.conf' => "$root/conf/markets.fcgid.conf",
			'/usr/local/share/markets/public' => "$root/apache/public"),
		Markets::Test::slurp("$repo/conf/apache-markets.conf"), 'the vhost is conf/apache-markets.conf with paths put in');
} elsif ($front eq 'apache-proxy') {
	my $vhost = "$root/apache/vhost.conf";
	is(unrender($vhost, '<VirtualHost *:80>' => "<VirtualHost 127.0.0.1:${\ $t->port}>",
			'unix:/run/markets/markets.sock|' => "unix:$root/run/markets.sock|",
			'/usr/local/share/markets/public' => "$root/apache/public"),
		Markets::Test::slurp("$repo/conf/apache-proxy-fcgi.conf"), 'the vhost is conf/apache-proxy-fcgi.conf with paths put in');
} else {
	my ($owner) = $t->base_path =~ m{^/~([^/]+)/markets$} or BAIL_OUT('no /~owner/markets base path: ' . $t->base_path);
	my $home = (getpwnam $owner)[7];
	my $site = "$home/public_html/markets";
	is(Markets::Test::slurp("$site/.htaccess"), Markets::Test::slurp("$repo/conf/shared-hosting/htaccess"),
		'.htaccess is the shipped one as it is');
	my $wrapper = Markets::Test::slurp("$site/markets.fcgi");
	$wrapper =~ s/^export (?:ASAN|UBSAN)_OPTIONS=.*\n//mg;   # the tests' sanitizer options
	(my $shipped = Markets::Test::slurp("$repo/conf/shared-hosting/markets.fcgi"))
		=~ s{/usr/local/sbin/markets}{$home/markets/sbin/markets}; $shipped =~ s{/etc/markets/}{$home/markets/etc/markets/};
	is($wrapper, $shipped, 'markets.fcgi is the shipped one with the paths put in');
	my @st = stat "$home/markets/etc/markets/markets.conf";
	is(sprintf('%04o', $st[2] & 07777), '0600', "the configuration is the owner's alone (0600)");
	is($st[4], scalar getpwnam($owner), 'and the owner owns it');
}
ok(kill(0, $t->pid_of('apache')), 'Apache runs');

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

# Authorization reaches the app (Apache withholds it unless told).
my $me = $t->get('/api/me', { headers => $t->bearer(sub => '42') });
is($me->{status}, 200, 'GET /api/me with a token is 200: Authorization reached the app') or diag($me->{content});
is($me->{json} && $me->{json}{data}{id}, 42, 'the caller is sub 42');

my $big = $t->request('POST', '/healthz', { headers => { 'Content-Type' => 'application/json' }, content => 'x' x (1024 * 1024 + 1) });
is($big->{status}, 413, 'Apache refuses a body over 1 MiB');
is($big->{json} && $big->{json}{code}, 'payload_too_large', "Apache's 413 is the JSON envelope");
like(Markets::Test::header($big, 'Content-Type') // '', qr{^application/json}, "Apache's 413 is application/json");
my $fits = $t->request('POST', '/healthz', { headers => { 'Content-Type' => 'application/json' }, content => '"' . ('x' x (1024 * 1024 - 2)) . '"' });
$t->is_error($fits, 405, 'method_not_allowed', 'a body of exactly 1 MiB reaches the app whole');
my ($line) = grep { ($_->{request_id} // '') eq Markets::Test::header($fits, 'X-Request-Id') } $t->log_lines;
is($line && $line->{status}, 405, 'the app answered the 1 MiB body');
my @lines = grep { ($_->{request_id} // '') eq 'apache-test.1' } $t->log_lines;
is(scalar @lines, 1, "the app logged the request");

if ($front eq 'apache-proxy') {
	# The master's workers answer; Apache only proxies.
	my %workers = map { $_ => 1 } $t->worker_pids;
	ok($lines[0] && $workers{ $lines[0]{pid} }, "one of the master's workers answered (pid " . ($lines[0] && $lines[0]{pid}) . ')');
} else {
	# The app runs as Apache's FastCGI child, without --listen.
	my ($exe, $user) = $front eq 'apache' ? ("$build/markets", $> == 0 ? scalar(getpwnam("www-data")) : $>)
		: do { my ($o) = $t->base_path =~ m{^/~([^/]+)/}; ((getpwnam $o)[7] . '/markets/sbin/markets', scalar getpwnam($o)) };
	my @apps = grep {
		my $cmd = Markets::Test::slurp("/proc/$_/cmdline");
		$cmd =~ /^\Q$exe\E(?:\0|$)/ && $cmd !~ /\0--listen\0/;
	} map { m{/proc/(\d+)/} } glob '/proc/[0-9]*/cmdline';
	ok(@apps >= 1, 'mod_fcgid started the app: ' . join(',', @apps));
	is((stat "/proc/$apps[0]")[4], $user, "the app runs as " . getpwuid($user)) if @apps;
	ok($lines[0] && grep({ $_ == $lines[0]{pid} } @apps), 'one of them answered');
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

	# Stopping Apache stops the app processes cleanly.
	ok(kill('TERM', $t->pid_of('apache')), 'Apache told to stop');
	ok($t->wait_until(15, sub { !grep { kill 0, $_ } @apps }), 'the app processes exited');
}

$t->finish;
done_testing;
