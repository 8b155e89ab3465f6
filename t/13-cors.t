#!/usr/bin/perl
# CORS (API.md "CORS"), through nginx. An Origin listed in cors_origins
# gets Access-Control-Allow-Origin (and the headers a script may read) on
# every answer, errors included — 401, 404, 405, 413, 429 — and a preflight
# OPTIONS on a known path is a 204 with the path's methods, the request
# headers the API takes and Max-Age, before authentication and without
# being counted by the rate limiter. Origins are compared exactly as
# browsers serialize them, so another scheme, host, port or case gets no
# Access-Control-* header at all; every answer says Vary: Origin. Never
# Access-Control-Allow-Credentials (bearer tokens, not cookies). Without
# cors_origins there is no CORS header, nor Vary. A wildcard or an origin
# with a path is a configuration error that stops the start.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use Markets::Test;

my $app = 'https://app.example.org';
my $local = 'http://localhost:5173';
my $expose = 'X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, Location, ETag, Link';
my $allow_headers = 'Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match, X-Request-Id';

sub h { Markets::Test::header(@_) }
# Every value of a header, joined (HTTP::Tiny gives an array for repeats).
sub all_of {
	my ($r, $name) = @_;
	my $v = $r->{headers}{ lc $name };
	return ref $v ? join(', ', @$v) : $v;
}
sub cors_names { my ($r) = @_; sort grep { /^access-control-/ } keys %{ $r->{headers} } }

# A listed origin's actual (non-preflight) answer.
sub has_cors {
	my ($r, $origin, $name) = @_;
	is(h($r, 'Access-Control-Allow-Origin'), $origin, "$name: Access-Control-Allow-Origin is the origin");
	is(all_of($r, 'Vary'), 'Origin', "$name: Vary: Origin");
	is(h($r, 'Access-Control-Expose-Headers'), $expose, "$name: Access-Control-Expose-Headers");
	ok(!exists $r->{headers}{'access-control-allow-credentials'}, "$name: no Access-Control-Allow-Credentials");
	ok(!exists $r->{headers}{'access-control-allow-methods'}, "$name: no preflight headers");
}
# Any other answer of a stack with cors_origins.
sub no_cors {
	my ($r, $name) = @_;
	is_deeply([cors_names($r)], [], "$name: no Access-Control-* header");
	is(all_of($r, 'Vary'), 'Origin', "$name: still Vary: Origin");
}

my $t = Markets::Test->new(services => [qw(memcached app nginx)],
	env => { MARKETS_CORS_ORIGINS => "$app, $local", MARKETS_RATE_LIMIT => '30/60', MARKETS_MAX_BODY => '1k' });
my $o = { Origin => $app };

# Success and error answers to a listed origin.
my $r = $t->get('/healthz', { headers => $o });
is($r->{status}, 200, 'GET /healthz from a listed origin: 200');
has_cors($r, $app, 'GET /healthz');
$r = $t->get('/healthz', { headers => { Origin => $local } });
has_cors($r, $local, 'the second listed origin (http, with a port)');

$r = $t->get('/api/me', { headers => { %$o, %{ $t->bearer(sub => 7) } } });
is($r->{status}, 200, 'GET /api/me with a token: 200');
is($r->{json}{data}{id}, 7, 'the caller is sub 7') or diag($r->{content});
has_cors($r, $app, 'GET /api/me with a token');
ok(defined h($r, 'X-RateLimit-Remaining'), 'GET /api/me with a token: rate-limit headers (exposed)');

$r = $t->get('/api/me', { headers => $o });
$t->is_error($r, 401, 'unauthorized', 'GET /api/me without a token');
is(h($r, 'WWW-Authenticate'), 'Bearer', '401: WWW-Authenticate: Bearer');
has_cors($r, $app, '401 without a token');
$r = $t->get('/api/me', { headers => { %$o, Authorization => 'Bearer not.a.token' } });
$t->is_error($r, 401, 'unauthorized', 'GET /api/me with a bad token');
has_cors($r, $app, '401 with a bad token');

$r = $t->get('/nope', { headers => $o });
$t->is_error($r, 404, 'not_found', 'GET /nope');
has_cors($r, $app, '404');

$r = $t->request('DELETE', '/healthz', { headers => $o });
$t->is_error($r, 405, 'method_not_allowed', 'DELETE /healthz');
is(h($r, 'Allow'), 'GET, HEAD, OPTIONS', '405: Allow');
has_cors($r, $app, '405');
$r = $t->request('POST', '/api/me', { headers => $o });
$t->is_error($r, 405, 'method_not_allowed', 'POST /api/me');
has_cors($r, $app, '405 on a limited path');

# An error the app knows before routing (the body is over max_body).
$r = $t->request('POST', '/healthz', { headers => { %$o, 'Content-Type' => 'application/json' },
	content => '"' . ('x' x 2000) . '"' });
$t->is_error($r, 413, 'payload_too_large', 'a body over max_body');
has_cors($r, $app, "the app's 413");

$r = $t->request('HEAD', '/healthz', { headers => $o });
is($r->{status}, 200, 'HEAD /healthz: 200');
has_cors($r, $app, 'HEAD');

# Origins that are not listed, byte for byte.
for my $other ('https://evil.example.org', 'https://app.example.org.evil.com', 'http://app.example.org',
	'https://APP.example.org', 'https://app.example.org:443', 'https://app.example.org/', 'null', '',
	"$app, $local", 'http://localhost:5174') {
	my $name = "Origin '$other'";
	no_cors($t->get('/healthz', { headers => { Origin => $other } }), "$name, GET /healthz");
	my $e = $t->get('/nope', { headers => { Origin => $other } });
	is($e->{status}, 404, "$name, GET /nope: 404");
	no_cors($e, "$name, 404");
}
no_cors($t->get('/healthz'), 'no Origin');
no_cors($t->get('/api/me'), 'no Origin, 401');

# Preflight: a listed origin on a known path gets the path's methods.
my %pre = (%$o, 'Access-Control-Request-Method' => 'PATCH',
	'Access-Control-Request-Headers' => 'authorization, content-type, if-match');
for my $path ('/api/markets/1', '/api/markets', '/healthz', '/api/me') {
	$r = $t->request('OPTIONS', $path, { headers => \%pre });
	is($r->{status}, 204, "preflight $path: 204");
	is($r->{content}, '', "preflight $path: no body");
	my $allow = h($r, 'Allow');
	ok($allow && $allow =~ /\bOPTIONS\b/, "preflight $path: Allow ($allow)");
	is(h($r, 'Access-Control-Allow-Origin'), $app, "preflight $path: Access-Control-Allow-Origin");
	is(h($r, 'Access-Control-Allow-Methods'), $allow, "preflight $path: Access-Control-Allow-Methods is Allow");
	is(h($r, 'Access-Control-Allow-Headers'), $allow_headers, "preflight $path: Access-Control-Allow-Headers");
	is(h($r, 'Access-Control-Max-Age'), '600', "preflight $path: Access-Control-Max-Age 600");
	is(all_of($r, 'Vary'), 'Origin', "preflight $path: Vary: Origin");
	ok(!exists $r->{headers}{'access-control-allow-credentials'}, "preflight $path: no Allow-Credentials");
	ok(!exists $r->{headers}{'x-ratelimit-limit'}, "preflight $path: not counted (no X-RateLimit-*)");
}
is(h($t->request('OPTIONS', '/api/markets/1', { headers => \%pre }), 'Access-Control-Allow-Methods'),
	'GET, HEAD, PUT, PATCH, DELETE, OPTIONS', 'a market takes GET, HEAD, PUT, PATCH, DELETE, OPTIONS')
	or diag('the route table changed?');
# A method the path does not take: still the path's methods; the browser decides.
$r = $t->request('OPTIONS', '/healthz', { headers => { %pre, 'Access-Control-Request-Method' => 'DELETE' } });
is($r->{status}, 204, 'preflight for a method the path does not take: 204');
is(h($r, 'Access-Control-Allow-Methods'), 'GET, HEAD, OPTIONS', 'with the methods it does take');
# A preflight with a bad token is still answered: no token is looked at.
$r = $t->request('OPTIONS', '/api/me', { headers => { %pre, Authorization => 'Bearer not.a.token' } });
is($r->{status}, 204, 'a preflight is answered before authentication');
# Preflights are never counted: more than the limit, then a counted request passes.
my @statuses = map { $t->request('OPTIONS', '/api/me', { headers => \%pre })->{status} } 1 .. 35;
is_deeply([grep { $_ != 204 } @statuses], [], '35 preflights over a 30/60 limit: all 204');
$r = $t->get('/api/me', { headers => $o });
is($r->{status}, 401, 'the address is not limited by them');
# Preflight on an unknown path: the 404, with the origin's headers.
$r = $t->request('OPTIONS', '/nope', { headers => \%pre });
$t->is_error($r, 404, 'not_found', 'preflight on an unknown path');
is(h($r, 'Access-Control-Allow-Origin'), $app, 'preflight 404: Access-Control-Allow-Origin');
ok(!exists $r->{headers}{'access-control-allow-methods'}, 'preflight 404: no Access-Control-Allow-Methods');
# OPTIONS without Access-Control-Request-Method is no preflight.
$r = $t->request('OPTIONS', '/healthz', { headers => $o });
is($r->{status}, 204, 'a plain OPTIONS from a listed origin: 204');
has_cors($r, $app, 'a plain OPTIONS');

# Preflight from origins that are not listed: the plain OPTIONS answer.
for my $other ('https://evil.example.org', 'https://APP.example.org', 'http://app.example.org') {
	$r = $t->request('OPTIONS', '/api/markets/1', { headers => { %pre, Origin => $other } });
	is($r->{status}, 204, "preflight from '$other': 204");
	like(h($r, 'Allow') // '', qr/PATCH/, "preflight from '$other': Allow");
	no_cors($r, "preflight from '$other'");
}

# Over the rate limit, a listed origin still reads the 429 and its headers.
my $limited;
for (1 .. 100) {
	$r = $t->get('/api/me', { headers => { %$o, %{ $t->bearer(sub => 4242) } } });
	last if ($limited = $r->{status} == 429);
}
ok($limited, 'sub 4242 reaches the limit');
$t->is_error($r, 429, 'rate_limited', 'over the limit');
ok(defined h($r, 'Retry-After'), '429: Retry-After');
has_cors($r, $app, '429');

# The app's log has nothing to say about CORS: no error lines.
ok(!grep({ ($_->{level} // '') eq 'error' } $t->log_lines), 'no error in the log');
$t->finish;

# Without cors_origins: no CORS header and no Vary, preflight or not.
my $plain = Markets::Test->new(services => [qw(app nginx)]);
for my $case (['GET', '/healthz', {}], ['GET', '/nope', {}], ['OPTIONS', '/healthz', { 'Access-Control-Request-Method' => 'GET' }]) {
	my ($method, $path, $extra) = @$case;
	$r = $plain->request($method, $path, { headers => { Origin => $app, %$extra } });
	ok($r->{status} == 200 || $r->{status} == 204 || $r->{status} == 404, "no cors_origins: $method $path answers");
	is_deeply([cors_names($r)], [], "no cors_origins: $method $path: no Access-Control-* header");
	ok(!exists $r->{headers}{vary}, "no cors_origins: $method $path: no Vary");
}
$plain->finish;

# Entries that could never match, or would allow every origin, stop the start.
my $bin = Markets::Test::build_dir() . '/markets';
my $dir = tempdir(CLEANUP => 1);
sub run {
	my ($env, @args) = @_;
	local %ENV = (%ENV, %$env);
	my $out = `'$bin' @args 2>&1`;
	return ($? >> 8, $out);
}
sub conf { my ($name, $text) = @_; open my $fh, '>', "$dir/$name" or die $!; print $fh $text; close $fh; "$dir/$name" }

# Keys are not this test's subject: every file gets a cursor_secret.
my ($rc, $out) = run({ MARKETS_CURSOR_SECRET => 'cors-test-cursor-secret-0123456789abcdef' },
	'--config', conf('good.conf', "cors_origins = $app, $local http://[::1]:8080\n"), '--test-config');
is($rc, 0, 'good origins pass --test-config') or diag($out);
my @bad = (
	['*', 'a wildcard is not allowed'],
	['https://a.example.org/path', 'must have no path'],
	["$app/", 'must have no path, query or fragment (nor a trailing slash)'],
	["$app?x=1", 'must have no path, query'],
	['https://APP.example.org', 'the host must be lower case'],
	['HTTPS://app.example.org', 'the scheme must be lower case'],
	['https://app.example.org:443', "the scheme's default port must be left out"],
	['https://app.example.org:99999', 'the port must be 1-65535'],
	['ftp://app.example.org', 'must be http://host or https://host'],
	['app.example.org', 'must be http://host or https://host'],
	['null', 'not allowed'],
	['https://user@app.example.org', 'must have no user name'],
	['https://', 'has no host'],
);
for my $case (@bad) {
	my ($value, $want) = @$case;
	my $file = conf('bad.conf', "# CORS\ncors_origins = $local, $value\n");
	($rc, $out) = run({}, '--config', $file, '--test-config');
	is($rc, 1, "cors_origins '$value': --test-config exits 1");
	like($out, qr/\Q$file:2: cors_origins: '$value': $want\E/, "cors_origins '$value': file, line and reason (names the entry)")
		or diag($out);
}
($rc, $out) = run({ MARKETS_CORS_ORIGINS => '*' }, '--config', conf('ok.conf', "workers = 1\n"), '--test-config');
is($rc, 1, 'MARKETS_CORS_ORIGINS=* exits 1');
like($out, qr/environment MARKETS_CORS_ORIGINS: '\*': a wildcard is not allowed/, 'and is named');
my $sock = "$dir/never.sock";
($rc, $out) = run({}, '--config', conf('star.conf', "cors_origins = *\n"), '--listen', "unix:$sock");
is($rc, 1, 'cors_origins = * stops a real start');
ok(!-e $sock, 'before any socket is opened');

done_testing;
